//! Fixed log-linear histograms.
//!
//! Values are nanoseconds. Below 128 ns every value has its own bucket; above, each power of two
//! is cut into 64 equal buckets, up to 2^42 ns (about 73 minutes; larger values land in the last
//! bucket, `max` stays exact). A bucket is at most 1/64 of its lower bound wide and quantiles are
//! reported at the bucket midpoint, so a reported quantile is within 0.8% of the true sample
//! quantile. The bounds are constants: every process and every run uses the same buckets.
//!
//! [`quantile_ns`] is the one quantile rule: [`HistogramSnapshot`], the profile writer and
//! perf-gate (through [`crate::profile`]) all call it.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const LINEAR: u64 = 128;
const SUB_BITS: u32 = 6;
const FIRST_EXP: u32 = 7;
const LAST_EXP: u32 = 41;
/// Number of buckets of every histogram.
pub const BUCKETS: usize = LINEAR as usize + (((LAST_EXP - FIRST_EXP + 1) as usize) << SUB_BITS);
const MAX_TRACKED: u64 = (1 << (LAST_EXP + 1)) - 1;

/// Index of the bucket holding `ns`.
#[inline(always)]
pub(crate) fn bucket_index(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    let v = ns.min(MAX_TRACKED);
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + (((exp - FIRST_EXP) as usize) << SUB_BITS) + sub as usize
}

/// `[lower, upper)` bounds in ns of bucket `i`.
pub fn bucket_bounds(i: usize) -> (u64, u64) {
    if (i as u64) < LINEAR {
        return (i as u64, i as u64 + 1);
    }
    let k = i - LINEAR as usize;
    let exp = FIRST_EXP + (k >> SUB_BITS) as u32;
    let sub = (k & ((1 << SUB_BITS) - 1)) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    let lower = ((1u64 << SUB_BITS) + sub) * width;
    (lower, lower + width)
}

/// The default upper bounds (in milliseconds) of the Prometheus buckets of every duration
/// metric, in force unless `trace.prometheus_buckets_ms` sets others ([`prometheus_bounds_ms`]).
///
/// From 0.04 ms to 14 s neighbouring bounds differ by at most 20% (the round values 1, 1.2, 1.4,
/// 1.6, 1.8, 2, 2.2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9 of every decade), so PromQL's
/// `histogram_quantile` stays within 10% of the in-process quantile for stages from 50 µs to
/// 10 s, whatever the loop's deadline (`tests/prometheus_buckets.rs` measures it: at most 8.5%
/// for p95 over log-normal, uniform and bimodal stages). Every bound of the first, coarser set
/// (0.001 … 60 000 ms, with 75, 150 and 750 ms) is kept, so existing dashboards, rules and their
/// tests read the same `le` values. 105 bounds: 108 series per stage (`+Inf`, `_sum`, `_count`).
///
/// How a bound counts samples: see [`HistogramSnapshot::prometheus_cumulative_at`].
pub const PROMETHEUS_BOUNDS_MS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.04, 0.045, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2,
    0.22, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.5, 3.0, 3.5, 4.0,
    4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 60.0,
    70.0, 75.0, 80.0, 90.0, 100.0, 120.0, 140.0, 150.0, 160.0, 180.0, 200.0, 220.0, 250.0, 300.0, 350.0, 400.0, 450.0,
    500.0, 600.0, 700.0, 750.0, 800.0, 900.0, 1000.0, 1200.0, 1400.0, 1600.0, 1800.0, 2000.0, 2200.0, 2500.0, 3000.0,
    3500.0, 4000.0, 4500.0, 5000.0, 6000.0, 7000.0, 8000.0, 9000.0, 10000.0, 12000.0, 14000.0, 30000.0, 60000.0,
];

/// The bounds installed by `init` (`None`: [`PROMETHEUS_BOUNDS_MS`]).
static BOUNDS_IN_FORCE: RwLock<Option<Vec<f64>>> = RwLock::new(None);

/// The upper bounds (ms) of the Prometheus buckets in force: `trace.prometheus_buckets_ms` of the
/// configuration installed by `init`, else [`PROMETHEUS_BOUNDS_MS`]. Every exposition rendered in
/// this process uses them, so processes sharing a config export identical `le` values.
///
/// ```
/// use mm_trace::histogram::{PROMETHEUS_BOUNDS_MS, prometheus_bounds_ms};
/// assert_eq!(prometheus_bounds_ms(), PROMETHEUS_BOUNDS_MS); // before init, or without the key
/// ```
pub fn prometheus_bounds_ms() -> Vec<f64> {
    let installed = BOUNDS_IN_FORCE.read().unwrap_or_else(|e| e.into_inner());
    installed.as_deref().unwrap_or(PROMETHEUS_BOUNDS_MS).to_vec()
}

/// Installs the bounds of a (validated) configuration; `None`: the defaults.
pub(crate) fn set_prometheus_bounds_ms(bounds: Option<&[f64]>) {
    *BOUNDS_IN_FORCE.write().unwrap_or_else(|e| e.into_inner()) = bounds.map(<[f64]>::to_vec);
}

/// Number of fine buckets lying wholly at or below `bound_ms` (taken to the nanosecond): the
/// ones a Prometheus bucket `le=bound_ms` counts. The last fine bucket also holds everything
/// past 2^42 ns and is never under a finite bound.
fn prometheus_cut(bound_ms: f64) -> usize {
    let ns = (bound_ms * 1e6).round();
    if ns.is_nan() || ns < 0.0 {
        return 0;
    }
    if ns >= MAX_TRACKED as f64 {
        return BUCKETS - 1;
    }
    let ns = ns as u64;
    let i = bucket_index(ns);
    if bucket_bounds(i).1 - 1 == ns { i + 1 } else { i }
}

/// The duration (ns) from which a sample is no longer counted under `le=bound_ms`: samples below
/// it are, samples at or above it are not. It is the fine-bucket edge at or below the bound
/// (at most 1/64 below it; the bound plus one nanosecond when the bound is the last nanosecond
/// of a fine bucket, and the bound itself below 128 ns, where every nanosecond has its bucket).
///
/// ```
/// use mm_trace::histogram::prometheus_edge_ns;
/// assert_eq!(prometheus_edge_ns(200.0), 199_229_440); // le="200" counts samples below 199.229 ms
/// assert_eq!(prometheus_edge_ns(0.0001), 101);        // 100 ns: counted up to 100 ns included
/// ```
pub fn prometheus_edge_ns(bound_ms: f64) -> u64 {
    let cut = prometheus_cut(bound_ms);
    if cut == 0 { 0 } else { bucket_bounds(cut - 1).1 }
}

/// The `q` quantile (0.0..=1.0, clamped), in ns, of a histogram given as its non-empty
/// `(lower_ns, upper_ns, count)` buckets, ascending, with `count` the sum of their counts and
/// `max_ns` the exact largest value; 0 when `count` is 0.
///
/// Nearest rank: the bucket holding the `ceil(q * count)`-th smallest sample (at least the
/// first) is reported at its midpoint, or at its lower bound when it is one nanosecond wide (it
/// then holds that single value), and never above `max_ns` (the top bucket's midpoint can lie
/// past the largest sample). This is the rule of [`HistogramSnapshot::quantile_ns`], of the
/// `pXX_ms` fields of `perf_profile.json` and of perf-gate, which all call this function.
///
/// ```
/// use mm_trace::profile::quantile_ns;
/// // 2 samples of 5 ns (a one-ns bucket), 1 in [999424, 1007616) ns; the largest is 1_000_003 ns.
/// let buckets = [(5, 6, 2), (999_424, 1_007_616, 1)];
/// assert_eq!(quantile_ns(buckets, 3, 1_000_003, 0.5), 5.0);
/// // The top bucket's midpoint (1_003_520) is above the largest sample: clamped to it.
/// assert_eq!(quantile_ns(buckets, 3, 1_000_003, 0.99), 1_000_003.0);
/// assert_eq!(quantile_ns([], 0, 0, 0.5), 0.0);
/// ```
pub fn quantile_ns(buckets: impl IntoIterator<Item = (u64, u64, u64)>, count: u64, max_ns: u64, q: f64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    for (lo, hi, c) in buckets {
        seen = seen.saturating_add(c);
        if seen >= rank {
            return representative_ns(lo, hi).min(max_ns as f64);
        }
    }
    max_ns as f64
}

/// The value a bucket's samples are reported at: its midpoint, or its only value when it is one
/// nanosecond wide.
fn representative_ns(lo: u64, hi: u64) -> f64 {
    if hi.saturating_sub(lo) <= 1 { lo as f64 } else { (u128::from(lo) + u128::from(hi)) as f64 / 2.0 }
}

/// The recording side: one writer (the owning thread), any number of readers.
pub(crate) struct AtomicHistogram {
    /// Fixed length, so that indexing with `bucket_index` (always below `BUCKETS`) is checked
    /// once by the compiler instead of on every record.
    counts: Box<[AtomicU64; BUCKETS]>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl AtomicHistogram {
    pub(crate) fn new() -> Self {
        Self {
            counts: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    /// Records one value. Only the owning thread calls this, so a load and a store (no locked
    /// read-modify-write) cannot lose an update; readers may see a value one record late.
    #[inline(always)]
    pub(crate) fn record(&self, ns: u64) {
        let c = &self.counts[bucket_index(ns)];
        c.store(c.load(Relaxed) + 1, Relaxed);
        self.sum_ns.store(self.sum_ns.load(Relaxed).wrapping_add(ns), Relaxed);
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.store(ns, Relaxed);
        }
    }

    /// Adds this histogram into `into`.
    pub(crate) fn read_into(&self, into: &mut HistogramSnapshot) {
        for (dst, src) in into.counts.iter_mut().zip(self.counts.iter()) {
            *dst += src.load(Relaxed);
        }
        into.sum_ns = into.sum_ns.wrapping_add(self.sum_ns.load(Relaxed));
        into.max_ns = into.max_ns.max(self.max_ns.load(Relaxed));
    }

    /// Forgets the maximum (used by `reset`; counts and sums are reset by subtracting a baseline).
    pub(crate) fn clear_max(&self) {
        self.max_ns.store(0, Relaxed);
    }
}

/// A plain copy of a histogram: merge, subtract, quantiles, Prometheus buckets.
#[derive(Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    counts: Vec<u64>,
    sum_ns: u64,
    max_ns: u64,
}

impl std::fmt::Debug for HistogramSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistogramSnapshot")
            .field("count", &self.count())
            .field("sum_ns", &self.sum_ns)
            .field("max_ns", &self.max_ns)
            .finish_non_exhaustive()
    }
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        Self::new()
    }
}

impl HistogramSnapshot {
    /// An empty histogram.
    pub fn new() -> Self {
        Self { counts: vec![0; BUCKETS], sum_ns: 0, max_ns: 0 }
    }

    /// Records one value (for tests and synthetic data; the collector records lock-free).
    ///
    /// ```
    /// let mut h = mm_trace::HistogramSnapshot::new();
    /// for ms in 1..=100 { h.record_ns(ms * 1_000_000); }
    /// assert!((h.quantile_ms(0.95) - 95.0).abs() / 95.0 < 0.01);
    /// ```
    pub fn record_ns(&mut self, ns: u64) {
        self.counts[bucket_index(ns)] += 1;
        self.sum_ns = self.sum_ns.wrapping_add(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of all values, ns.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// Largest value recorded, ns (exact).
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Removes a baseline taken earlier from the same counters (the max is kept as is).
    pub(crate) fn subtract(&mut self, baseline: &HistogramSnapshot) {
        for (a, b) in self.counts.iter_mut().zip(&baseline.counts) {
            *a = a.saturating_sub(*b);
        }
        self.sum_ns = self.sum_ns.wrapping_sub(baseline.sum_ns);
        if self.count() == 0 {
            self.sum_ns = 0;
            self.max_ns = 0;
        }
    }

    /// The `q` quantile (0.0..=1.0) in ns by [`quantile_ns`]: nearest rank, at the bucket
    /// midpoint (a one-ns bucket: its value), never above the exact max; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> f64 {
        quantile_ns(self.buckets(), self.count(), self.max_ns, q)
    }

    /// The `q` quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.quantile_ns(q) / 1e6
    }

    /// Non-empty buckets, ascending: `(lower_ns, upper_ns, count)`.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, &c)| {
            let (lo, hi) = bucket_bounds(i);
            (lo, hi, c)
        })
    }

    /// Rebuilds a histogram from `(lower_ns, upper_ns, count)` buckets (as written in profiles).
    /// Buckets that do not match the fixed bounds are placed by their lower bound.
    pub fn from_buckets(buckets: impl IntoIterator<Item = (u64, u64, u64)>, sum_ns: u64, max_ns: u64) -> Self {
        let mut h = Self::new();
        for (lo, _hi, c) in buckets {
            h.counts[bucket_index(lo)] += c;
        }
        h.sum_ns = sum_ns;
        h.max_ns = max_ns;
        h
    }

    /// Cumulative counts for each bound in force ([`prometheus_bounds_ms`]), then `+Inf` (== count).
    pub fn prometheus_cumulative(&self) -> Vec<u64> {
        self.prometheus_cumulative_at(&prometheus_bounds_ms())
    }

    /// Cumulative counts for each of `bounds_ms` (ascending), then `+Inf` (== count): what the
    /// `_bucket` series of the exposition carry.
    ///
    /// A bound counts the samples of every fine bucket lying wholly at or below it, so `le` never
    /// counts a sample above its bound and every process counts the same way. A fine bucket that
    /// straddles the bound is counted under the next one: samples between the fine-bucket edge at
    /// or below the bound ([`prometheus_edge_ns`], at most 1/64 below it) and the bound itself
    /// land one bucket up. A bound on a fine-bucket edge (every nanosecond below 128 ns) counts
    /// exactly the samples at or below it.
    ///
    /// ```
    /// let mut h = mm_trace::HistogramSnapshot::new();
    /// for ms in [0.9, 1.5, 199.0, 199.5, 250.0] { h.record_ns((ms * 1e6) as u64); }
    /// // 199.5 ms lies in the fine bucket [199.229, 201.327) ms, which straddles 200.
    /// assert_eq!(h.prometheus_cumulative_at(&[1.0, 200.0, 300.0]), [1, 3, 5, 5]);
    /// ```
    pub fn prometheus_cumulative_at(&self, bounds_ms: &[f64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds_ms.len() + 1);
        let (mut acc, mut next) = (0u64, 0usize);
        for &bound in bounds_ms {
            let cut = prometheus_cut(bound).max(next);
            acc += self.counts[next..cut].iter().sum::<u64>();
            next = cut;
            out.push(acc);
        }
        out.push(self.count());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_contiguous_and_indexes_roundtrip() {
        let mut prev_hi = 0;
        for i in 0..BUCKETS {
            let (lo, hi) = bucket_bounds(i);
            assert_eq!(lo, prev_hi, "bucket {i}");
            assert!(hi > lo);
            assert_eq!(bucket_index(lo), i);
            assert_eq!(bucket_index(hi - 1), i);
            if lo >= LINEAR {
                assert!((hi - lo) as f64 / lo as f64 <= 1.0 / 64.0 + 1e-12);
            }
            prev_hi = hi;
        }
        assert_eq!(prev_hi, MAX_TRACKED + 1);
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_within_one_percent_from_1us_to_60s() {
        // Geometric sweep of single values: the reported quantile of one value is that value.
        let mut v = 1_000u64;
        while v <= 120_000_000_000 {
            let mut h = HistogramSnapshot::new();
            h.record_ns(v);
            h.record_ns(v * 100); // max elsewhere so the clamp to max does not hide the error
            let got = h.quantile_ns(0.5);
            assert!(((got - v as f64) / v as f64).abs() <= 0.008, "v={v} got={got}");
            v = v * 1013 / 1000 + 1;
        }
    }

    #[test]
    fn p50_p95_p99_of_uniform_distribution() {
        let mut h = HistogramSnapshot::new();
        for i in 1..=100_000u64 {
            h.record_ns(i * 10_000); // 10 us .. 1 s
        }
        for (q, want) in [(0.5, 500_000_000.0), (0.95, 950_000_000.0), (0.99, 990_000_000.0)] {
            let got = h.quantile_ns(q);
            assert!(((got - want) / want).abs() <= 0.01, "q={q} got={got} want={want}");
        }
        assert_eq!(h.count(), 100_000);
        assert_eq!(h.max_ns(), 1_000_000_000);
    }

    #[test]
    fn prometheus_cumulative_is_monotone_and_ends_at_count() {
        let mut h = HistogramSnapshot::new();
        for ms in [0.0005, 0.003, 0.7, 3.0, 199.0, 201.0, 70_000.0] {
            h.record_ns((ms * 1e6) as u64);
        }
        let cum = h.prometheus_cumulative();
        assert!(cum.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*cum.last().unwrap(), h.count());
        let idx200 = PROMETHEUS_BOUNDS_MS.iter().position(|&b| b == 200.0).unwrap();
        assert_eq!(cum[idx200], 5);
        assert_eq!(cum[PROMETHEUS_BOUNDS_MS.len() - 1], 6);
    }

    /// `le=B` counts exactly the samples below `prometheus_edge_ns(B)`, that edge is a fine-bucket
    /// edge at most 1/64 below B (or B + 1 ns), and so `le` never counts a sample above B.
    #[test]
    fn prometheus_bounds_count_exactly_below_their_edge() {
        let mut bounds: Vec<f64> = PROMETHEUS_BOUNDS_MS.to_vec();
        bounds.extend([0.0001, 0.000127, 0.000128, 0.000129, 1.048575, 1.048576, 3_600_000.0]);
        for b in bounds {
            let ns = (b * 1e6).round() as u64;
            let edge = prometheus_edge_ns(b);
            assert!(edge <= ns + 1 && edge as f64 >= ns as f64 * (1.0 - 1.0 / 64.0), "{b} ms: edge {edge}");
            assert_eq!(bucket_bounds(bucket_index(edge)).0, edge, "{b} ms: {edge} is a fine-bucket edge");
            let mut h = HistogramSnapshot::new();
            let probes = [edge.saturating_sub(2), edge.saturating_sub(1), edge, edge + 1, ns, ns + 1];
            for v in probes {
                h.record_ns(v);
            }
            let below = probes.iter().filter(|&&v| v < edge).count() as u64;
            let at_or_below_b = probes.iter().filter(|&&v| v <= ns).count() as u64;
            let cum = h.prometheus_cumulative_at(&[b]);
            assert_eq!(cum, [below, 6], "{b} ms");
            assert!(cum[0] <= at_or_below_b, "{b} ms: le counts a sample above its bound");
        }
        // Below 128 ns every nanosecond has its bucket: exact at the bound.
        let mut h = HistogramSnapshot::new();
        for v in [99, 100, 101] {
            h.record_ns(v);
        }
        assert_eq!(h.prometheus_cumulative_at(&[0.0001]), [2, 3]);
        // Values past the tracked range stay above every finite bound.
        let mut h = HistogramSnapshot::new();
        h.record_ns(u64::MAX);
        assert_eq!(h.prometheus_cumulative_at(&[3_600_000.0]), [0, 1]);
    }

    #[test]
    fn default_bounds_are_dense_and_keep_the_first_set() {
        assert!(PROMETHEUS_BOUNDS_MS.windows(2).all(|w| w[0] < w[1]));
        for w in PROMETHEUS_BOUNDS_MS.windows(2).filter(|w| w[0] >= 0.04 && w[1] <= 14_000.0) {
            assert!(w[1] / w[0] <= 1.2 + 1e-9, "{} -> {}", w[0], w[1]);
        }
        let first = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0,
            150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
        ];
        for b in first {
            assert!(PROMETHEUS_BOUNDS_MS.contains(&b), "{b} ms left the default set");
        }
        assert_eq!(PROMETHEUS_BOUNDS_MS.len(), 105);
    }

    #[test]
    fn subtract_baseline() {
        let mut a = HistogramSnapshot::new();
        a.record_ns(5_000);
        let base = a.clone();
        a.record_ns(7_000);
        a.subtract(&base);
        assert_eq!(a.count(), 1);
        assert_eq!(a.sum_ns(), 7_000);
    }
}

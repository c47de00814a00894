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

/// The fixed upper bounds (in milliseconds) of the Prometheus buckets of every duration metric.
///
/// Chosen around the reference loop: a 200 ms deadline, sub-millisecond stages, multi-second
/// outliers. A sample is counted under the first bound at or above its fine bucket's midpoint.
pub const PROMETHEUS_BOUNDS_MS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0,
    200.0, 250.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
];

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

    /// Cumulative counts for each bound of [`PROMETHEUS_BOUNDS_MS`], then `+Inf` (== count).
    pub fn prometheus_cumulative(&self) -> Vec<u64> {
        let bounds_ns: Vec<f64> = PROMETHEUS_BOUNDS_MS.iter().map(|b| b * 1e6).collect();
        let mut out = vec![0u64; bounds_ns.len() + 1];
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let (lo, hi) = bucket_bounds(i);
            let mid = representative_ns(lo, hi);
            let slot = bounds_ns.iter().position(|&b| mid <= b).unwrap_or(bounds_ns.len());
            out[slot] += c;
        }
        let mut acc = 0;
        for v in &mut out {
            acc += *v;
            *v = acc;
        }
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

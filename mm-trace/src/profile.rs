//! The `perf_profile.json` document (schema version 1, `docs/PROFILE_SCHEMA.md`) as types, and
//! the rules its numbers follow: the one definition that [`crate::write_profile`] writes through
//! and perf-gate reads through.
//!
//! ```
//! use mm_trace::profile::{Profile, SCHEMA, SCHEMA_VERSION};
//!
//! let doc: Profile = serde_json::from_str(&mm_trace::profile_json()).unwrap();
//! assert_eq!((doc.schema.as_str(), doc.schema_version), (SCHEMA, SCHEMA_VERSION));
//! for (name, stage) in &doc.stages {
//!     assert_eq!(stage.p95_ms, stage.quantile_ms(0.95), "{name}: written with the same rule");
//! }
//! ```
//!
//! Deserializing checks the shape only (the keys a profile must have and the JSON type of every
//! value). Whether the values make sense — a known `schema_version`, no negative durations,
//! bucket counts that add up to `count` — is the reader's to check (perf-gate reports each
//! problem naming the file and the key). Keys that older or hand-written profiles may lack are
//! optional: `generator`, `created_unix_ms`, `sample_rate`, `labels`, `exchange`, `guard_trips`,
//! and `verb`/`api` of an exchange entry.
//!
//! Available with the `enabled` feature off: nothing here records anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::histogram::HistogramSnapshot;
pub use crate::histogram::quantile_ns;
use crate::summary::StageStats;

/// The `schema` value of every profile.
pub const SCHEMA: &str = "mm-trace/perf-profile";
/// The `schema_version` this mm-trace writes (and the only one its types describe).
pub const SCHEMA_VERSION: u64 = 1;

/// A whole `perf_profile.json` document.
///
/// Serialized with serde_json's default map, keys come out sorted; the profile writer prints it
/// with two-space indentation and one bucket per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`SCHEMA_VERSION`] when written by this mm-trace; a reader rejects versions it does not know.
    pub schema_version: u64,
    /// The writer, e.g. `mm-trace 0.1.0` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// When the profile was written, ms since the Unix epoch (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_unix_ms: Option<u64>,
    /// Free-form labels, e.g. `track = canary` (optional: absent or `null` reads as empty).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub labels: BTreeMap<String, String>,
    /// The tick deadline in force, ms.
    pub deadline_ms: f64,
    /// Ticks completed.
    pub ticks: u64,
    /// Ticks whose `tick_total` exceeded the deadline.
    pub deadline_misses: u64,
    /// `deadline_misses` as a percentage of `ticks` (0 when there are no ticks).
    pub deadline_miss_pct: f64,
    /// Ticks with some failed symbols.
    pub partial_fails: u64,
    /// `partial_fails` as a percentage of `ticks` (0 when there are no ticks).
    pub partial_fail_pct: f64,
    /// The sample rate in force (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// Per stage, by name; contains `tick_total` when at least one tick was recorded.
    pub stages: BTreeMap<String, StageProfile>,
    /// Per exchange request kind, keyed `"VERB api"` (optional).
    #[serde(default)]
    pub exchange: BTreeMap<String, ExchangeProfile>,
    /// Guard trips by reason (optional).
    #[serde(default)]
    pub guard_trips: BTreeMap<String, u64>,
    /// Named kinds of tick by name (absent when the process has only the unnamed kind); each
    /// kind's `tick_total` is also in `stages` as `tick_total:<name>`, so the gate compares it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tick_kinds: BTreeMap<String, TickKindProfile>,
    /// Each stage's quantiles in consecutive windows of the run, oldest first (optional: absent
    /// unless the program that wrote the profile recorded them). perf-gate reads how much a
    /// stage's quantile wanders inside one run from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowProfile>,
}

/// One window of a run: the ticks it holds and each stage's quantiles over them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowProfile {
    /// Ticks completed in the window.
    pub ticks: u64,
    /// Per stage, by name (stages with no sample in the window are left out).
    pub stages: BTreeMap<String, WindowStage>,
}

/// A stage's quantiles over one window, by [`quantile_ns`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStage {
    /// Samples in the window.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// One named kind of tick in a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickKindProfile {
    /// Its ticks.
    pub ticks: u64,
    /// Its deadline, ms.
    pub deadline_ms: f64,
    /// Its ticks over the deadline.
    pub deadline_misses: u64,
    /// `deadline_misses` as a percentage of `ticks`.
    pub deadline_miss_pct: f64,
}

/// The timing statistics of one stage (or of one exchange request kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageProfile {
    /// Samples recorded.
    pub count: u64,
    /// Sum of all samples, ms.
    pub sum_ms: f64,
    /// Median, ms, by [`quantile_ns`].
    pub p50_ms: f64,
    /// 95th percentile, ms, by [`quantile_ns`].
    pub p95_ms: f64,
    /// 99th percentile, ms, by [`quantile_ns`].
    pub p99_ms: f64,
    /// Largest sample, ms (exact).
    pub max_ms: f64,
    /// Samples whose function returned `Err` (included in `count`); absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// Non-empty buckets of the fixed histogram, ascending; their counts sum to `count`.
    pub buckets: Vec<Bucket>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StageProfile {
    /// The statistics of a histogram, as the profile writer computes them for a stage.
    ///
    /// ```
    /// let mut h = mm_trace::HistogramSnapshot::new();
    /// for ms in 1..=100 { h.record_ns(ms * 1_000_000); }
    /// let stage = mm_trace::profile::StageProfile::from_histogram(&h);
    /// assert_eq!((stage.count, stage.max_ms, stage.sum_ms), (100, 100.0, 5050.0));
    /// assert_eq!(stage.p95_ms, h.quantile_ms(0.95));
    /// assert_eq!(stage.buckets.iter().map(|b| b.count).sum::<u64>(), 100);
    /// ```
    pub fn from_histogram(h: &HistogramSnapshot) -> Self {
        Self::from_stats(&StageStats::from_histogram("", h.clone()))
    }

    /// The profile entry of a stage's statistics (the statistics are derived once, by
    /// [`StageStats::from_histogram`]).
    pub fn from_stats(s: &StageStats) -> Self {
        StageProfile {
            count: s.count,
            sum_ms: s.sum_ms,
            p50_ms: s.p50_ms,
            p95_ms: s.p95_ms,
            p99_ms: s.p99_ms,
            max_ms: s.max_ms,
            errors: s.errors,
            buckets: s.histogram.buckets().map(Bucket::from).collect(),
        }
    }

    /// The exact maximum in nanoseconds (`max_ms` is written as `max_ns / 1e6`, which this
    /// inverts exactly for any duration the histogram tracks).
    pub fn max_ns(&self) -> u64 {
        (self.max_ms * 1e6).round() as u64
    }

    /// The `q` quantile (0.0..=1.0) in ms from the buckets, by [`quantile_ns`] (the runtime's
    /// rule, so `p95_ms == quantile_ms(0.95)` for every profile mm-trace writes); 0 when empty.
    ///
    /// ```
    /// use mm_trace::profile::{Bucket, StageProfile};
    /// let stage = StageProfile {
    ///     count: 3, sum_ms: 1.000013, p50_ms: 0.0, p95_ms: 0.0, p99_ms: 0.0, max_ms: 1.000003, errors: 0,
    ///     buckets: vec![Bucket { lower_ns: 5, upper_ns: 6, count: 2 }, Bucket { lower_ns: 999_424, upper_ns: 1_007_616, count: 1 }],
    /// };
    /// assert_eq!(stage.quantile_ms(0.5), 5e-6); // a one-ns bucket: its value, not 5.5 ns
    /// assert_eq!(stage.quantile_ms(0.99), 1.000003); // not above the exact max
    /// ```
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let buckets = self.buckets.iter().map(|b| (b.lower_ns, b.upper_ns, b.count));
        quantile_ns(buckets, self.count, self.max_ns(), q) / 1e6
    }

    /// Adds another histogram of the same stage into this one (bucket bounds are the same in
    /// every process and run, so buckets with equal bounds add up) and recomputes `p50_ms`,
    /// `p95_ms` and `p99_ms` with [`StageProfile::quantile_ms`].
    ///
    /// ```
    /// use mm_trace::profile::{Bucket, StageProfile};
    /// let one = |lower_ns, count, max_ms| StageProfile {
    ///     count, sum_ms: 0.0, p50_ms: 0.0, p95_ms: 0.0, p99_ms: 0.0, max_ms, errors: 0,
    ///     buckets: vec![Bucket { lower_ns, upper_ns: lower_ns + 1, count }],
    /// };
    /// let mut a = one(7, 3, 7e-6);
    /// a.merge(&one(100, 1, 1e-4));
    /// assert_eq!((a.count, a.max_ms, a.buckets.len()), (4, 1e-4, 2));
    /// assert_eq!((a.p50_ms, a.p99_ms), (7e-6, 1e-4));
    /// ```
    pub fn merge(&mut self, other: &StageProfile) {
        let mut counts: BTreeMap<(u64, u64), u64> =
            self.buckets.iter().map(|b| ((b.lower_ns, b.upper_ns), b.count)).collect();
        for b in &other.buckets {
            let c = counts.entry((b.lower_ns, b.upper_ns)).or_default();
            *c = c.saturating_add(b.count);
        }
        self.buckets =
            counts.into_iter().map(|((lower_ns, upper_ns), count)| Bucket { lower_ns, upper_ns, count }).collect();
        self.errors = self.errors.saturating_add(other.errors);
        self.count = self.count.saturating_add(other.count);
        self.sum_ms += other.sum_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
        self.p50_ms = self.quantile_ms(0.50);
        self.p95_ms = self.quantile_ms(0.95);
        self.p99_ms = self.quantile_ms(0.99);
    }
}

/// The statistics of one exchange request kind: a stage's fields plus `verb` and `api`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeProfile {
    /// HTTP-style verb, e.g. `POST` (optional: empty when absent).
    #[serde(default)]
    pub verb: String,
    /// API name, e.g. `order` (optional: empty when absent).
    #[serde(default)]
    pub api: String,
    /// Run-time label values by label name (absent when the request has none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The latency statistics, written beside `verb` and `api` in the same object.
    #[serde(flatten)]
    pub stats: StageProfile,
}

/// One histogram bucket, written as `[lower_ns, upper_ns, count]`: `count` samples with
/// `lower_ns <= v < upper_ns`.
///
/// ```
/// use mm_trace::profile::Bucket;
/// let b: Bucket = serde_json::from_str("[5, 6, 2]").unwrap();
/// assert_eq!(b, Bucket { lower_ns: 5, upper_ns: 6, count: 2 });
/// assert_eq!(serde_json::to_string(&b).unwrap(), "[5,6,2]");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u64, u64, u64)", into = "(u64, u64, u64)")]
pub struct Bucket {
    /// Inclusive lower bound, nanoseconds.
    pub lower_ns: u64,
    /// Exclusive upper bound, nanoseconds.
    pub upper_ns: u64,
    /// Samples in the bucket.
    pub count: u64,
}

impl From<(u64, u64, u64)> for Bucket {
    fn from((lower_ns, upper_ns, count): (u64, u64, u64)) -> Self {
        Bucket { lower_ns, upper_ns, count }
    }
}

impl From<Bucket> for (u64, u64, u64) {
    fn from(b: Bucket) -> Self {
        (b.lower_ns, b.upper_ns, b.count)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_quantiles_equal_the_histogram_quantiles() {
        let mut h = HistogramSnapshot::new();
        for v in [0, 1, 1, 5, 127, 128, 130, 1_000_003, 40_000_123, 40_000_124, 250_000_000] {
            h.record_ns(v);
        }
        let stage = StageProfile::from_histogram(&h);
        assert_eq!(stage.max_ns(), 250_000_000);
        for i in 0..=1000 {
            let q = i as f64 / 1000.0;
            assert_eq!(stage.quantile_ms(q), h.quantile_ms(q), "q = {q}");
        }
    }

    #[test]
    fn max_ns_inverts_max_ms_for_every_tracked_magnitude() {
        let mut ns = 1u64;
        while ns < 1 << 43 {
            for v in [ns - 1, ns, ns + 1, ns * 3 / 2] {
                let stage = StageProfile {
                    count: 0,
                    sum_ms: 0.0,
                    p50_ms: 0.0,
                    p95_ms: 0.0,
                    p99_ms: 0.0,
                    max_ms: v as f64 / 1e6,
                    errors: 0,
                    buckets: vec![],
                };
                assert_eq!(stage.max_ns(), v);
            }
            ns *= 2;
        }
    }

    #[test]
    fn optional_keys_may_be_missing_and_labels_null() {
        let text = r#"{"schema":"mm-trace/perf-profile","schema_version":1,"labels":null,"deadline_ms":200,
            "ticks":0,"deadline_misses":0,"deadline_miss_pct":0,"partial_fails":0,"partial_fail_pct":0,"stages":{},
            "exchange":{"GET quote":{"count":0,"sum_ms":0,"p50_ms":0,"p95_ms":0,"p99_ms":0,"max_ms":0,"buckets":[]}}}"#;
        let doc: Profile = serde_json::from_str(text).unwrap();
        assert_eq!((doc.generator, doc.created_unix_ms, doc.sample_rate), (None, None, None));
        assert!(doc.labels.is_empty() && doc.guard_trips.is_empty());
        assert_eq!(doc.exchange["GET quote"].verb, "");
        let e = serde_json::from_str::<Profile>(&text.replace(r#""ticks":0,"#, "")).unwrap_err();
        assert!(e.to_string().contains("missing field `ticks`"), "{e}");
        assert!(serde_json::from_str::<Bucket>("[1, 2, 3, 4]").is_err());
        assert!(serde_json::from_str::<Bucket>("[1, 2]").is_err());
        assert!(doc.windows.is_empty());
        let with = text.replacen(
            '{',
            r#"{"windows":[{"ticks":2,"stages":{"a":{"count":2,"p50_ms":1,"p95_ms":2,"p99_ms":2}}}],"#,
            1,
        );
        let doc: Profile = serde_json::from_str(&with).unwrap();
        assert_eq!((doc.windows[0].ticks, doc.windows[0].stages["a"].p95_ms), (2, 2.0));
    }
}

//! `TraceConfig`: the `trace:` section of `config.yaml`, or built in code.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Runtime configuration. Field names are the YAML keys of the `trace:` section.
///
/// ```
/// use mm_trace::TraceConfig;
/// let cfg = TraceConfig::from_yaml_str("trace:\n  sample_rate: 0.5\n  deadline_ms: 150\n").unwrap();
/// assert_eq!(cfg.sample_rate, 0.5);
/// assert_eq!(cfg.golden_trace_interval, 100); // default
/// let in_code = TraceConfig { sample_rate: 1.0, ..Default::default() };
/// assert!(in_code.validate().is_ok());
/// ```
///
/// It is also `Deserialize`, so it can be a field of an application's own config; the same
/// parser and checks run, and their message is the deserializer's error:
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct AppConfig {
///     trace: mm_trace::TraceConfig,
///     symbols: Vec<String>,
/// }
/// let yaml = "symbols: [BTC-USD]\ntrace:\n  deadline_ms: 6\n";
/// let app: AppConfig = serde_norway::from_str(yaml).unwrap();
/// assert_eq!(app.trace.deadline_ms, 6.0);
/// let bad = serde_norway::from_str::<AppConfig>("symbols: []\ntrace:\n  sample_rat: 0.5\n");
/// assert!(bad.err().unwrap().to_string().contains("did you mean `sample_rate`?"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// Runtime switch; `false` leaves one predictable branch per stage.
    pub enabled: bool,
    /// Share of ticks traced in detail, `0.0..=1.0`, deterministic per tick id.
    pub sample_rate: f64,
    /// A tick whose `tick_total` is above this counts as a deadline miss (ms, > 0).
    pub deadline_ms: f64,
    /// Write a golden trace (`golden_trace_<tick>-<run>.json`) every `golden_trace_interval`
    /// sampled ticks. Slow-tick files do not depend on it (see `capture_slow_ticks`).
    pub export_golden: bool,
    /// See `export_golden` (>= 1).
    pub golden_trace_interval: u64,
    /// Directory of golden and slow-tick trace files; `<run>` in their names is the writing
    /// process's run id (8 hex digits), so runs sharing the directory keep each other's files.
    pub golden_dir: PathBuf,
    /// Keep the full trace of a tick that missed its deadline even when it was not sampled, and
    /// write it to `slow_trace_<tick>-<run>.json` whatever `export_golden` says (bounded by
    /// `slow_ticks_per_sec`).
    pub capture_slow_ticks: bool,
    /// Also keep ticks slower than this quantile of recent ticks (e.g. 0.99); `None`: deadline only.
    pub slow_tick_quantile: Option<f64>,
    /// At most this many slow-tick traces kept per second; the rest are counted (>= 1).
    pub slow_ticks_per_sec: u32,
    /// Cap on spans kept in one tick's trace; later spans still feed histograms (>= 1).
    pub max_spans_per_tick: usize,
    /// Number of recent traced ticks kept for the Chrome/Perfetto export (>= 1).
    pub chrome_ring_ticks: usize,
    /// Distinct values per label before new ones are folded into `other` (`1..=256`).
    pub label_cardinality_cap: usize,
    /// Annotations kept in one tick's trace; [`crate::annotate`] past this is counted in
    /// `Health::annotations_dropped`, not kept (`0..=65536`).
    pub max_annotations_per_tick: usize,
    /// Prometheus names and values in base units (`mm_stage_duration_seconds`, seconds).
    pub prometheus_base_units: bool,
    /// Upper bounds in milliseconds of the Prometheus buckets (`le`) of every duration histogram;
    /// `None`: [`crate::histogram::PROMETHEUS_BOUNDS_MS`], dense enough for loops from 50 µs to
    /// 10 s. Each from 0.000001 (1 ns) to 3600000 (1 h), strictly increasing, 1 to 128 of them
    /// (each is one series per stage); counted as
    /// [`HistogramSnapshot::prometheus_cumulative_at`](crate::HistogramSnapshot::prometheus_cumulative_at) describes.
    pub prometheus_buckets_ms: Option<Vec<f64>>,
    /// Write `perf_profile.json` here on [`crate::shutdown`].
    pub profile_on_shutdown: Option<PathBuf>,
    /// Settings of named kinds of tick (`#[traced_tick(name = "router")]`), by name (YAML
    /// `ticks: { router: { deadline_ms: 6 } }`).
    pub ticks: BTreeMap<String, TickConfig>,
    /// The OpenTelemetry resource's `service.name` of exported traces; `None`:
    /// `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else the binary's name.
    pub service_name: Option<String>,
    /// OTLP/HTTP export of kept ticks (feature `otlp`); `None`: no export.
    pub otlp: Option<OtlpConfig>,
}

/// Settings of one named kind of tick (`trace.ticks.<name>`).
///
/// ```
/// let cfg = mm_trace::TraceConfig::from_yaml_str("trace:\n  ticks:\n    router:\n      deadline_ms: 6\n").unwrap();
/// assert_eq!(cfg.ticks["router"].deadline_ms, Some(6.0));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TickConfig {
    /// This kind's deadline, ms (above 0, at most 3600000); `None`: `deadline_ms`.
    pub deadline_ms: Option<f64>,
}

/// The default of every setting, defined once: [`TraceConfig::default`] and the collector's
/// switches before `init` both read these.
pub(crate) mod defaults {
    pub(crate) const ENABLED: bool = true;
    pub(crate) const SAMPLE_RATE: f64 = 0.2;
    pub(crate) const DEADLINE_MS: f64 = 200.0;
    pub(crate) const EXPORT_GOLDEN: bool = true;
    pub(crate) const GOLDEN_TRACE_INTERVAL: u64 = 100;
    pub(crate) const GOLDEN_DIR: &str = "artifacts/traces";
    pub(crate) const CAPTURE_SLOW_TICKS: bool = true;
    pub(crate) const SLOW_TICKS_PER_SEC: u32 = 10;
    pub(crate) const MAX_SPANS_PER_TICK: usize = 4096;
    pub(crate) const CHROME_RING_TICKS: usize = 32;
    pub(crate) const LABEL_CARDINALITY_CAP: usize = 64;
    pub(crate) const MAX_ANNOTATIONS_PER_TICK: usize = 64;
}

/// Most distinct values a label can have before `other` (the guard-reason table holds 512
/// distinct reasons over the process's life and gives a window at most half of them).
pub(crate) const MAX_LABEL_CARDINALITY_CAP: usize = 256;
/// Most annotations one tick's trace can keep.
pub(crate) const MAX_ANNOTATIONS_CAP: usize = 65_536;
/// Most bounds `prometheus_buckets_ms` may list: each is one series per stage and label set.
pub(crate) const MAX_PROMETHEUS_BUCKETS: usize = 128;
/// Range of one Prometheus bound, ms: the internal histogram resolves 1 ns and tracks 73 minutes.
const PROMETHEUS_BOUND_RANGE_MS: std::ops::RangeInclusive<f64> = 0.000_001..=3_600_000.0;

/// Milliseconds to whole nanoseconds (saturating), as the deadline switch stores them.
pub(crate) const fn ms_to_ns(ms: f64) -> u64 {
    (ms * 1e6) as u64
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self {
            enabled: defaults::ENABLED,
            sample_rate: defaults::SAMPLE_RATE,
            deadline_ms: defaults::DEADLINE_MS,
            export_golden: defaults::EXPORT_GOLDEN,
            golden_trace_interval: defaults::GOLDEN_TRACE_INTERVAL,
            golden_dir: PathBuf::from(defaults::GOLDEN_DIR),
            capture_slow_ticks: defaults::CAPTURE_SLOW_TICKS,
            slow_tick_quantile: None,
            slow_ticks_per_sec: defaults::SLOW_TICKS_PER_SEC,
            max_spans_per_tick: defaults::MAX_SPANS_PER_TICK,
            chrome_ring_ticks: defaults::CHROME_RING_TICKS,
            label_cardinality_cap: defaults::LABEL_CARDINALITY_CAP,
            max_annotations_per_tick: defaults::MAX_ANNOTATIONS_PER_TICK,
            prometheus_base_units: false,
            prometheus_buckets_ms: None,
            profile_on_shutdown: None,
            ticks: BTreeMap::new(),
            service_name: None,
            otlp: None,
        }
    }
}

mod error;
mod otlp;
mod parse;
#[cfg(test)]
mod tests;
mod words;

pub use error::{ConfigError, ConfigIssue};
pub use otlp::OtlpConfig;
#[cfg_attr(not(feature = "otlp"), allow(unused_imports))]
pub(crate) use otlp::{HttpUrl, OtlpTarget};

impl TraceConfig {
    /// Checks every value's range; the error lists every bad field with what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut issues = Vec::new();
        let mut check = |ok: bool, key: &str, value: String, allowed: &str| {
            if !ok {
                issues.push(ConfigIssue { key: format!("trace.{key}"), value, allowed: allowed.to_owned() });
            }
        };
        check(
            self.sample_rate.is_finite() && (0.0..=1.0).contains(&self.sample_rate),
            "sample_rate",
            self.sample_rate.to_string(),
            "must be a number from 0.0 to 1.0",
        );
        check(
            self.deadline_ms.is_finite() && self.deadline_ms > 0.0 && self.deadline_ms <= 3_600_000.0,
            "deadline_ms",
            self.deadline_ms.to_string(),
            "must be a number of milliseconds above 0 and at most 3600000",
        );
        check(
            self.golden_trace_interval >= 1,
            "golden_trace_interval",
            self.golden_trace_interval.to_string(),
            "must be a whole number >= 1",
        );
        if let Some(q) = self.slow_tick_quantile {
            check(
                q.is_finite() && q > 0.0 && q < 1.0,
                "slow_tick_quantile",
                q.to_string(),
                "must be a number strictly between 0.0 and 1.0 (e.g. 0.99), or null",
            );
        }
        check(
            self.slow_ticks_per_sec >= 1,
            "slow_ticks_per_sec",
            self.slow_ticks_per_sec.to_string(),
            "must be a whole number >= 1",
        );
        check(
            (1..=1 << 20).contains(&self.max_spans_per_tick),
            "max_spans_per_tick",
            self.max_spans_per_tick.to_string(),
            "must be a whole number from 1 to 1048576",
        );
        check(
            (1..=4096).contains(&self.chrome_ring_ticks),
            "chrome_ring_ticks",
            self.chrome_ring_ticks.to_string(),
            "must be a whole number from 1 to 4096",
        );
        check(
            (1..=MAX_LABEL_CARDINALITY_CAP).contains(&self.label_cardinality_cap),
            "label_cardinality_cap",
            self.label_cardinality_cap.to_string(),
            "must be a whole number from 1 to 256 (the label tables hold 512 distinct values, a window at most half)",
        );
        check(
            self.max_annotations_per_tick <= MAX_ANNOTATIONS_CAP,
            "max_annotations_per_tick",
            self.max_annotations_per_tick.to_string(),
            "must be a whole number from 0 to 65536",
        );
        check(!self.golden_dir.as_os_str().is_empty(), "golden_dir", String::new(), "must be a non-empty path");
        if let Some(bounds) = &self.prometheus_buckets_ms {
            check(
                (1..=MAX_PROMETHEUS_BUCKETS).contains(&bounds.len()),
                "prometheus_buckets_ms",
                format!("a list of {} bounds", bounds.len()),
                "must list 1 to 128 bucket bounds (each is one series per stage)",
            );
            for (i, &b) in bounds.iter().enumerate() {
                let key = format!("prometheus_buckets_ms[{i}]");
                if !PROMETHEUS_BOUND_RANGE_MS.contains(&b) {
                    check(
                        false,
                        &key,
                        b.to_string(),
                        "must be a number of milliseconds from 0.000001 (1 ns) to 3600000 (1 h)",
                    );
                } else if let Some(&prev) = i.checked_sub(1).and_then(|p| bounds.get(p)) {
                    check(
                        b > prev,
                        &key,
                        b.to_string(),
                        &format!("must be above the bound before it ({prev}): bounds are strictly increasing"),
                    );
                }
            }
        }
        for (name, tick) in &self.ticks {
            check(
                !name.is_empty() && name.len() <= 128 && !name.chars().any(|c| c.is_whitespace() || c.is_control()),
                &format!("ticks.{name}"),
                format!("{name:?}"),
                "a tick name is not empty, at most 128 bytes, without whitespace (as in #[traced_tick(name = \"router\")])",
            );
            if let Some(d) = tick.deadline_ms {
                check(
                    d.is_finite() && d > 0.0 && d <= 3_600_000.0,
                    &format!("ticks.{name}.deadline_ms"),
                    d.to_string(),
                    "must be a number of milliseconds above 0 and at most 3600000",
                );
            }
        }
        otlp::check(self, &mut check);
        if issues.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { origin: "<in code>".into(), issues }) }
    }
}

//! `TraceConfig`: the `trace:` section of `config.yaml`, or built in code.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_norway::Value;

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
    /// Write `perf_profile.json` here on [`crate::shutdown`].
    pub profile_on_shutdown: Option<PathBuf>,
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
            profile_on_shutdown: None,
        }
    }
}

/// One rejected key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Full key, e.g. `trace.sample_rate`.
    pub key: String,
    /// The value as written (YAML), or empty for a missing value.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

/// A rejected configuration: unreadable file, invalid YAML, or keys with bad values.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not YAML, or `trace:` is not a mapping.
    Syntax {
        /// Where the text came from.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// Every bad key at once.
    Invalid {
        /// Where the text came from (a path, or `<in code>`).
        origin: String,
        /// One entry per bad key.
        issues: Vec<ConfigIssue>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, source } => {
                write!(f, "{}: cannot read config: {source}", path.display())
            }
            ConfigError::Syntax { origin, message } => {
                write!(f, "{origin}: invalid YAML: {message}")
            }
            ConfigError::Invalid { origin, issues } => {
                for (i, issue) in issues.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{origin}: {} = {}: {}", issue.key, issue.value, issue.allowed)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

const KEYS: &[&str] = &[
    "enabled",
    "sample_rate",
    "deadline_ms",
    "export_golden",
    "golden_trace_interval",
    "golden_dir",
    "capture_slow_ticks",
    "slow_tick_quantile",
    "slow_ticks_per_sec",
    "max_spans_per_tick",
    "chrome_ring_ticks",
    "label_cardinality_cap",
    "max_annotations_per_tick",
    "prometheus_base_units",
    "profile_on_shutdown",
];

impl TraceConfig {
    /// Reads the `trace:` section of a YAML file; other top-level sections are ignored.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Reads the `trace:` section of YAML text; other top-level sections are ignored.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, "<yaml>")
    }

    fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax { origin: origin.to_owned(), message };
        let doc: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_norway::from_str(text).map_err(|e| syntax(e.to_string()))?
        };
        let section = match &doc {
            Value::Null => return Ok(Self::default()),
            Value::Mapping(m) => match m.get("trace") {
                None | Some(Value::Null) => return Ok(Self::default()),
                Some(Value::Mapping(s)) => s.clone(),
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        origin: origin.to_owned(),
                        issues: vec![ConfigIssue {
                            key: "trace".into(),
                            value: show(other),
                            allowed: "must be a mapping of trace settings".into(),
                        }],
                    });
                }
            },
            other => {
                return Err(syntax(format!(
                    "the document must be a mapping with a `trace:` key, found {}",
                    show(other)
                )));
            }
        };
        let mut cfg = Self::default();
        let mut issues = Vec::new();
        for (k, v) in &section {
            let Some(key) = k.as_str() else {
                issues.push(ConfigIssue {
                    key: format!("trace.{}", show(k)),
                    value: show(v),
                    allowed: format!("keys are strings, one of: {}", KEYS.join(", ")),
                });
                continue;
            };
            let mut bad = |allowed: &str| {
                issues.push(ConfigIssue { key: format!("trace.{key}"), value: show(v), allowed: allowed.to_owned() })
            };
            match key {
                "enabled" => {
                    set_bool(v, &mut cfg.enabled, &mut bad);
                }
                "export_golden" => {
                    set_bool(v, &mut cfg.export_golden, &mut bad);
                }
                "capture_slow_ticks" => {
                    set_bool(v, &mut cfg.capture_slow_ticks, &mut bad);
                }
                "prometheus_base_units" => {
                    set_bool(v, &mut cfg.prometheus_base_units, &mut bad);
                }
                "sample_rate" => {
                    set_f64(v, &mut cfg.sample_rate, &mut bad);
                }
                "deadline_ms" => {
                    set_f64(v, &mut cfg.deadline_ms, &mut bad);
                }
                "slow_tick_quantile" => {
                    if v.is_null() {
                        cfg.slow_tick_quantile = None;
                    } else {
                        let mut q = 0.0;
                        if set_f64(v, &mut q, &mut bad) {
                            cfg.slow_tick_quantile = Some(q);
                        }
                    }
                }
                "golden_trace_interval" => {
                    set_uint(v, &mut cfg.golden_trace_interval, &mut bad);
                }
                "slow_ticks_per_sec" => {
                    let mut n = 0u64;
                    if set_uint(v, &mut n, &mut bad) {
                        match u32::try_from(n) {
                            Ok(n) => cfg.slow_ticks_per_sec = n,
                            Err(_) => bad("must be a whole number from 1 to 4294967295"),
                        }
                    }
                }
                "max_spans_per_tick" => {
                    set_usize(v, &mut cfg.max_spans_per_tick, &mut bad);
                }
                "chrome_ring_ticks" => {
                    set_usize(v, &mut cfg.chrome_ring_ticks, &mut bad);
                }
                "label_cardinality_cap" => {
                    set_usize(v, &mut cfg.label_cardinality_cap, &mut bad);
                }
                "max_annotations_per_tick" => {
                    set_usize(v, &mut cfg.max_annotations_per_tick, &mut bad);
                }
                "golden_dir" => match v.as_str() {
                    Some(s) if !s.is_empty() => cfg.golden_dir = PathBuf::from(s),
                    _ => bad("must be a non-empty path string"),
                },
                "profile_on_shutdown" => match v {
                    Value::Null => cfg.profile_on_shutdown = None,
                    Value::String(s) if !s.is_empty() => cfg.profile_on_shutdown = Some(PathBuf::from(s)),
                    _ => bad("must be a non-empty path string or null"),
                },
                _ => bad(&format!("unknown key; allowed keys: {}", KEYS.join(", "))),
            }
        }
        if let Err(ConfigError::Invalid { issues: more, .. }) = cfg.validate() {
            for m in more {
                if !issues.iter().any(|i| i.key == m.key) {
                    issues.push(m);
                }
            }
        }
        if issues.is_empty() { Ok(cfg) } else { Err(ConfigError::Invalid { origin: origin.to_owned(), issues }) }
    }

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
        if issues.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { origin: "<in code>".into(), issues }) }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => format!("{s:?}"),
        other => {
            serde_norway::to_string(other).map(|s| s.trim_end().to_owned()).unwrap_or_else(|_| format!("{other:?}"))
        }
    }
}

fn set_bool(v: &Value, dst: &mut bool, bad: &mut impl FnMut(&str)) -> bool {
    match v.as_bool() {
        Some(b) => {
            *dst = b;
            true
        }
        None => {
            bad("must be true or false");
            false
        }
    }
}

fn set_f64(v: &Value, dst: &mut f64, bad: &mut impl FnMut(&str)) -> bool {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) => {
                *dst = x;
                true
            }
            None => {
                bad("must be a number");
                false
            }
        },
        _ => {
            bad("must be a number");
            false
        }
    }
}

fn set_uint(v: &Value, dst: &mut u64, bad: &mut impl FnMut(&str)) -> bool {
    match v.as_u64() {
        Some(n) => {
            *dst = n;
            true
        }
        None => {
            bad("must be a whole number >= 1");
            false
        }
    }
}

fn set_usize(v: &Value, dst: &mut usize, bad: &mut impl FnMut(&str)) -> bool {
    let mut n = 0u64;
    if !set_uint(v, &mut n, bad) {
        return false;
    }
    match usize::try_from(n) {
        Ok(n) => {
            *dst = n;
            true
        }
        Err(_) => {
            bad("is too large");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_other_sections_ignored() {
        let cfg = TraceConfig::from_yaml_str("bot:\n  symbols: [A, B]\ntrace:\n  sample_rate: 0.2\n").unwrap();
        assert_eq!(cfg, TraceConfig::default());
        assert_eq!(TraceConfig::from_yaml_str("").unwrap(), TraceConfig::default());
        assert_eq!(TraceConfig::from_yaml_str("other: 1\n").unwrap(), TraceConfig::default());
    }

    #[test]
    fn full_section() {
        let yaml = "trace:\n  enabled: false\n  sample_rate: 1\n  deadline_ms: 150.5\n  export_golden: false\n  golden_trace_interval: 7\n  golden_dir: out/t\n  capture_slow_ticks: false\n  slow_tick_quantile: 0.99\n  slow_ticks_per_sec: 3\n  max_spans_per_tick: 10\n  chrome_ring_ticks: 4\n  label_cardinality_cap: 5\n  prometheus_base_units: true\n  profile_on_shutdown: p.json\n";
        let cfg = TraceConfig::from_yaml_str(yaml).unwrap();
        assert!(!cfg.enabled);
        assert_eq!(cfg.sample_rate, 1.0);
        assert_eq!(cfg.deadline_ms, 150.5);
        assert_eq!(cfg.golden_trace_interval, 7);
        assert_eq!(cfg.golden_dir, PathBuf::from("out/t"));
        assert_eq!(cfg.slow_tick_quantile, Some(0.99));
        assert_eq!(cfg.slow_ticks_per_sec, 3);
        assert_eq!(cfg.max_spans_per_tick, 10);
        assert_eq!(cfg.profile_on_shutdown, Some(PathBuf::from("p.json")));
        assert!(cfg.prometheus_base_units);
    }

    #[test]
    fn every_bad_key_is_named_with_value_and_allowed() {
        let yaml = "trace:\n  sample_rate: 1.5\n  deadline_ms: fast\n  golden_trace_interval: 0\n  colour: red\n  enabled: 3\n";
        let err = TraceConfig::from_yaml_str(yaml).unwrap_err();
        let msg = err.to_string();
        for want in [
            "trace.sample_rate = 1.5: must be a number from 0.0 to 1.0",
            "trace.deadline_ms = \"fast\": must be a number",
            "trace.golden_trace_interval = 0: must be a whole number >= 1",
            "trace.colour = \"red\": unknown key; allowed keys: enabled, sample_rate",
            "trace.enabled = 3: must be true or false",
        ] {
            assert!(msg.contains(want), "missing {want:?} in {msg}");
        }
        let ConfigError::Invalid { issues, .. } = err else { panic!("{err:?}") };
        assert_eq!(issues.len(), 5);
    }

    #[test]
    fn syntax_and_shape_errors() {
        let e = TraceConfig::from_yaml_str("trace: [1, 2\n").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        let e = TraceConfig::from_yaml_str("trace: 5\n").unwrap_err();
        assert!(e.to_string().contains("trace = 5: must be a mapping"), "{e}");
        let e = TraceConfig::from_yaml_str("- a\n- b\n").unwrap_err();
        assert!(e.to_string().contains("must be a mapping with a `trace:` key"), "{e}");
        let e = TraceConfig::from_yaml_file("/nonexistent/config.yaml").unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/config.yaml: cannot read config"), "{e}");
    }

    #[test]
    fn validate_in_code() {
        let bad = TraceConfig { sample_rate: f64::NAN, max_spans_per_tick: 0, ..Default::default() };
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("trace.sample_rate = NaN"), "{msg}");
        assert!(msg.contains("trace.max_spans_per_tick = 0"), "{msg}");
    }

    /// The label tables hold 512 distinct values and give a window at most half: a larger cap
    /// was accepted and silently clamped to 256; now it is refused, naming what is allowed.
    #[test]
    fn label_cardinality_cap_beyond_what_the_tables_hold_is_refused() {
        for (cap, ok) in [(1, true), (256, true), (257, false), (100_000, false), (0, false)] {
            let cfg = TraceConfig { label_cardinality_cap: cap, ..Default::default() };
            match cfg.validate() {
                Ok(()) => assert!(ok, "cap {cap} accepted"),
                Err(e) => {
                    assert!(!ok, "cap {cap} refused: {e}");
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&format!(
                            "trace.label_cardinality_cap = {cap}: must be a whole number from 1 to 256"
                        )),
                        "{msg}"
                    );
                }
            }
        }
        let e = TraceConfig::from_yaml_str("trace:\n  label_cardinality_cap: 1000\n").unwrap_err();
        assert!(e.to_string().contains("label_cardinality_cap = 1000"), "{e}");
    }

    #[test]
    fn max_annotations_per_tick_defaults_to_64_and_is_bounded() {
        assert_eq!(TraceConfig::default().max_annotations_per_tick, 64);
        let cfg = TraceConfig::from_yaml_str("trace:\n  max_annotations_per_tick: 0\n").unwrap();
        assert_eq!(cfg.max_annotations_per_tick, 0);
        let e = TraceConfig::from_yaml_str("trace:\n  max_annotations_per_tick: 70000\n").unwrap_err();
        assert!(
            e.to_string().contains("trace.max_annotations_per_tick = 70000: must be a whole number from 0 to 65536"),
            "{e}"
        );
    }
}

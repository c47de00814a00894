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

/// A rejected configuration: unreadable file, invalid YAML, no `trace:` section, or keys with bad
/// values. `Debug` prints the same message as `Display`, so `fn main() -> Result<(), Box<dyn Error>>`
/// with `?` shows it readably.
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not YAML, or not a mapping of sections.
    Syntax {
        /// Where the text came from.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// The document has no `trace` key (only the `trace:` section is read; an empty `trace:`
    /// gives the defaults).
    MissingSection {
        /// Where the text came from.
        origin: String,
        /// The top-level keys found instead, in document order (empty: an empty document).
        found: Vec<String>,
        /// The found key that looks like a misspelt `trace` (`Trace`, `traec`), if any.
        near_miss: Option<String>,
    },
    /// Every bad key at once.
    Invalid {
        /// Where the text came from (a path, `<yaml>`, `<in code>`, or empty inside a deserializer).
        origin: String,
        /// One entry per bad key.
        issues: Vec<ConfigIssue>,
    },
}

/// `origin: ` before a message, or nothing for an empty origin (inside a deserializer, which
/// adds its own position).
struct At<'a>(&'a str);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { Ok(()) } else { write!(f, "{}: ", self.0) }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DEFAULTS: &str = "an empty `trace:` or `trace: {}` gives the defaults";
        match self {
            ConfigError::Io { path, source } => {
                write!(f, "{}: cannot read config: {source}", path.display())
            }
            ConfigError::Syntax { origin, message } => {
                write!(f, "{}invalid YAML: {message}", At(origin))
            }
            ConfigError::MissingSection { origin, found, near_miss } => {
                write!(f, "{}no `trace:` section", At(origin))?;
                if found.is_empty() {
                    return write!(f, " (the document is empty): add a `trace:` section ({DEFAULTS})");
                }
                let keys: Vec<String> = found.iter().map(|k| format!("`{k}`")).collect();
                write!(f, "; found top-level keys {}", keys.join(", "))?;
                match near_miss {
                    Some(k) => write!(
                        f,
                        ": did you mean `trace`? (only the `trace:` section is read, so `{k}` is ignored; {DEFAULTS})"
                    ),
                    None => write!(f, ": add a `trace:` section ({DEFAULTS}; other sections are ignored)"),
                }
            }
            ConfigError::Invalid { origin, issues } => {
                for (i, issue) in issues.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{}{} = {}: {}", At(origin), issue.key, issue.value, issue.allowed)?;
                }
                Ok(())
            }
        }
    }
}

/// The message, as `Display` gives it: what `main` returning `Err` and `unwrap` print.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
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
    "prometheus_buckets_ms",
    "profile_on_shutdown",
];

impl TraceConfig {
    /// Reads the `trace:` section of a YAML file; other top-level sections are ignored. A file
    /// without a `trace` key is an error ([`ConfigError::MissingSection`]); an empty `trace:`
    /// gives the defaults.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Reads the `trace:` section of YAML text; other top-level sections are ignored. Text
    /// without a `trace` key (empty, or only other sections) is an error naming the keys found
    /// and, for a near miss such as `Trace:` or `traec:`, suggesting `trace`.
    ///
    /// ```
    /// use mm_trace::TraceConfig;
    /// assert_eq!(TraceConfig::from_yaml_str("bot: {}\ntrace:\n").unwrap(), TraceConfig::default());
    /// let e = TraceConfig::from_yaml_str("bot: {}\ntraec:\n  sample_rate: 0.5\n").unwrap_err();
    /// assert!(e.to_string().contains("found top-level keys `bot`, `traec`: did you mean `trace`"), "{e}");
    /// ```
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
        let missing = |found: Vec<String>| {
            let near_miss = found
                .iter()
                .filter_map(|k| distance_if_near(k, "trace").map(|d| (d, k)))
                .min_by_key(|(d, _)| *d)
                .map(|(_, k)| k.clone());
            ConfigError::MissingSection { origin: origin.to_owned(), found, near_miss }
        };
        match &doc {
            Value::Null => Err(missing(Vec::new())),
            Value::Mapping(m) => match m.get("trace") {
                Some(section) => Self::from_section(section, origin),
                None => Err(missing(m.keys().map(|k| k.as_str().map_or_else(|| show(k), str::to_owned)).collect())),
            },
            other => Err(syntax(format!("the document must be a mapping with a `trace:` key, found {}", show(other)))),
        }
    }

    /// Reads the value of the `trace` key (`null`: the defaults), then [`validate`](Self::validate)s.
    fn from_section(section: &Value, origin: &str) -> Result<Self, ConfigError> {
        let section = match section {
            Value::Null => return Ok(Self::default()),
            Value::Mapping(s) => s,
            other => {
                return Err(ConfigError::Invalid {
                    origin: origin.to_owned(),
                    issues: vec![ConfigIssue {
                        key: "trace".into(),
                        value: show(other),
                        allowed: "must be a mapping of trace settings".into(),
                    }],
                });
            }
        };
        let mut cfg = Self::default();
        let mut issues = Vec::new();
        let mut not_numbers = Vec::new();
        for (k, v) in section {
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
                "prometheus_buckets_ms" => match v {
                    Value::Null => cfg.prometheus_buckets_ms = None,
                    Value::Sequence(items) => {
                        let bounds: Vec<Option<f64>> =
                            items.iter().map(|x| if let Value::Number(n) = x { n.as_f64() } else { None }).collect();
                        let mut all = true;
                        for (i, (item, bound)) in items.iter().zip(&bounds).enumerate() {
                            if bound.is_none() {
                                all = false;
                                not_numbers.push(ConfigIssue {
                                    key: format!("trace.prometheus_buckets_ms[{i}]"),
                                    value: show(item),
                                    allowed: "must be a number of milliseconds".into(),
                                });
                            }
                        }
                        if all {
                            cfg.prometheus_buckets_ms = Some(bounds.into_iter().flatten().collect());
                        }
                    }
                    _ => bad("must be a list of bucket upper bounds in milliseconds (e.g. [1, 2.5, 5, 10]), \
                              or null for the defaults"),
                },
                _ => {
                    let hint = KEYS
                        .iter()
                        .filter_map(|known| distance_if_near(key, known).map(|d| (d, known)))
                        .min_by_key(|(d, _)| *d)
                        .map(|(_, known)| format!(" did you mean `{known}`?"))
                        .unwrap_or_default();
                    bad(&format!("unknown key;{hint} allowed keys: {}", KEYS.join(", ")))
                }
            }
        }
        issues.append(&mut not_numbers);
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
        if issues.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { origin: "<in code>".into(), issues }) }
    }
}

/// Reads the value of a `trace` field through the same parser and checks as
/// [`TraceConfig::from_yaml_str`] (`null`: the defaults); a rejected value is the deserializer's
/// custom error with the usual message (`trace.sample_rate = 1.5: must be …`).
impl<'de> serde::Deserialize<'de> for TraceConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let section = <Value as serde::Deserialize>::deserialize(deserializer)?;
        Self::from_section(&section, "").map_err(serde::de::Error::custom)
    }
}

/// How far `word` is from `known` (case-insensitive edit distance, a swap of neighbours counting
/// one), when it is near enough to suggest: within a third of `known`'s length (at least 1), or
/// one a prefix of the other with at least 4 letters in common (`deadline` for `deadline_ms`).
fn distance_if_near(word: &str, known: &str) -> Option<usize> {
    let (a, b): (Vec<char>, Vec<char>) = (word.to_lowercase().chars().collect(), known.chars().collect());
    let d = edit_distance(&a, &b);
    let prefix = a.len().min(b.len()) >= 4 && (a.starts_with(&b) || b.starts_with(&a));
    (d <= (b.len() / 3).max(1) || prefix).then_some(d)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each cost one.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut rows: Vec<Vec<usize>> = (0..=a.len()).map(|i| vec![i; b.len() + 1]).collect();
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
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
        // An empty `trace:` section (null) or an empty mapping: the defaults.
        for yaml in ["trace:\n", "trace: {}\n", "bot: 1\ntrace:\n", "trace: ~\n"] {
            assert_eq!(TraceConfig::from_yaml_str(yaml).unwrap(), TraceConfig::default(), "{yaml:?}");
        }
    }

    /// Issue "Fit users' loops, not the demo's": a misspelt or missing `trace` section silently
    /// gave the defaults (a 200 ms deadline for a 6 ms loop); now it is an error naming the keys
    /// found, suggesting `trace` for a near miss.
    mod issue_fit_users_loops {
        use super::*;

        fn missing(yaml: &str) -> (String, Vec<String>, Option<String>) {
            match TraceConfig::from_yaml_str(yaml) {
                Err(e @ ConfigError::MissingSection { .. }) => {
                    let msg = e.to_string();
                    let ConfigError::MissingSection { found, near_miss, .. } = e else { unreachable!() };
                    (msg, found, near_miss)
                }
                other => panic!("{yaml:?}: expected MissingSection, got {other:?}"),
            }
        }

        #[test]
        fn misspelt_trace_section_is_an_error_suggesting_trace() {
            for (yaml, key) in [
                ("traec:\n  sample_rate: 0.5\n", "traec"),
                ("Trace:\n  deadline_ms: 6\n", "Trace"),
                ("bot:\n  symbols: [A]\nTRACE: {}\n", "TRACE"),
                ("bot: {}\ntraces:\n  enabled: true\n", "traces"),
                ("trac:\n  enabled: true\n", "trac"),
            ] {
                let (msg, found, near_miss) = missing(yaml);
                assert_eq!(near_miss.as_deref(), Some(key), "{yaml:?}");
                assert!(found.contains(&key.to_owned()), "{found:?}");
                assert!(msg.starts_with("<yaml>: no `trace:` section; found top-level keys "), "{msg}");
                assert!(msg.contains(&format!("`{key}`: did you mean `trace`?")), "{msg}");
                assert!(msg.contains("an empty `trace:` or `trace: {}` gives the defaults"), "{msg}");
            }
            let (msg, _, _) = missing("bot:\n  symbols: [A]\ntraec:\n  sample_rate: 0.5\n");
            assert_eq!(
                msg,
                "<yaml>: no `trace:` section; found top-level keys `bot`, `traec`: did you mean `trace`? \
                 (only the `trace:` section is read, so `traec` is ignored; an empty `trace:` or `trace: {}` \
                 gives the defaults)"
            );
        }

        #[test]
        fn no_trace_section_is_an_error_naming_what_was_found() {
            let (msg, found, near_miss) = missing("bot:\n  symbols: [A, B]\nexchange:\n  venue: x\n");
            assert_eq!(found, ["bot", "exchange"]);
            assert_eq!(near_miss, None);
            assert_eq!(
                msg,
                "<yaml>: no `trace:` section; found top-level keys `bot`, `exchange`: add a `trace:` section \
                 (an empty `trace:` or `trace: {}` gives the defaults; other sections are ignored)"
            );
            for empty in ["", "\n", "# only a comment\n", "---\n"] {
                let (msg, found, _) = missing(empty);
                assert!(found.is_empty());
                assert_eq!(
                    msg,
                    "<yaml>: no `trace:` section (the document is empty): add a `trace:` section \
                     (an empty `trace:` or `trace: {}` gives the defaults)",
                    "{empty:?}"
                );
            }
            let (msg, found, _) = missing("{}\n");
            assert!(found.is_empty() && msg.contains("add a `trace:` section"), "{msg}");
            // Not a key anyone would take for `trace`: no suggestion.
            assert_eq!(missing("tracing: {}\nbot: 1\n").2, None);
            let path = std::env::temp_dir().join(format!("mm-trace-config-{}.yaml", std::process::id()));
            std::fs::write(&path, "Trace:\n  sample_rate: 0.5\n").unwrap();
            let e = TraceConfig::from_yaml_file(&path).unwrap_err();
            std::fs::remove_file(&path).unwrap();
            assert!(e.to_string().starts_with(&format!("{}: no `trace:` section", path.display())), "{e}");
        }

        #[test]
        fn unknown_keys_get_did_you_mean() {
            for (key, want) in [
                ("sample_rat", "sample_rate"),
                ("Sample_Rate", "sample_rate"),
                ("samplerate", "sample_rate"),
                ("deadline", "deadline_ms"),
                ("dedline_ms", "deadline_ms"),
                ("enable", "enabled"),
                ("golden_dri", "golden_dir"),
                ("prometheus_bucket_ms", "prometheus_buckets_ms"),
                ("max_spans", "max_spans_per_tick"),
            ] {
                let e = TraceConfig::from_yaml_str(&format!("trace:\n  {key}: 1\n")).unwrap_err();
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&format!(
                        "<yaml>: trace.{key} = 1: unknown key; did you mean `{want}`? allowed keys: enabled, sample_rate, "
                    )),
                    "{key}: {msg}"
                );
            }
            let e = TraceConfig::from_yaml_str("trace:\n  colour: red\n").unwrap_err();
            assert!(e.to_string().contains("trace.colour = \"red\": unknown key; allowed keys: enabled,"), "{e}");
        }

        #[test]
        fn debug_reads_like_display() {
            let errors = [
                TraceConfig::from_yaml_str("traec: {}\n").unwrap_err(),
                TraceConfig::from_yaml_str("trace:\n  sample_rate: 2\n  colour: red\n").unwrap_err(),
                TraceConfig::from_yaml_str("trace: [1, 2\n").unwrap_err(),
                TraceConfig::from_yaml_file("/nonexistent/config.yaml").unwrap_err(),
                TraceConfig { deadline_ms: 0.0, ..Default::default() }.validate().unwrap_err(),
            ];
            for e in errors {
                assert_eq!(format!("{e:?}"), e.to_string());
                // What `fn main() -> Result<(), Box<dyn Error>>` prints after `Error: `.
                let boxed: Box<dyn std::error::Error> = Box::new(e);
                assert_eq!(format!("{boxed:?}"), boxed.to_string());
                assert!(!format!("{boxed:?}").contains("Invalid {"), "{boxed:?}");
            }
        }

        #[derive(Debug, serde::Deserialize)]
        struct AppConfig {
            trace: TraceConfig,
            other: String,
        }

        #[test]
        fn trace_config_deserializes_inside_an_application_config() {
            let app: AppConfig =
                serde_norway::from_str("other: x\ntrace:\n  sample_rate: 0.5\n  deadline_ms: 6\n").unwrap();
            assert_eq!(app.other, "x");
            assert_eq!(app.trace, TraceConfig { sample_rate: 0.5, deadline_ms: 6.0, ..Default::default() });
            let app: AppConfig = serde_norway::from_str("other: x\ntrace:\n").unwrap();
            assert_eq!(app.trace, TraceConfig::default());
            let app: AppConfig = serde_json::from_str(
                r#"{"other": "y", "trace": {"prometheus_buckets_ms": [1, 2.5, 6], "enabled": false}}"#,
            )
            .unwrap();
            assert_eq!(app.trace.prometheus_buckets_ms, Some(vec![1.0, 2.5, 6.0]));
            assert!(!app.trace.enabled);

            // A bad value inside: the usual message, as the deserializer's error.
            let e = serde_norway::from_str::<AppConfig>("other: x\ntrace:\n  sample_rate: 1.5\n").unwrap_err();
            assert!(e.to_string().contains("trace.sample_rate = 1.5: must be a number from 0.0 to 1.0"), "{e}");
            let e = serde_json::from_str::<AppConfig>(r#"{"other": "y", "trace": {"sample_rat": 0.5}}"#).unwrap_err();
            assert!(
                e.to_string().starts_with("trace.sample_rat = 0.5: unknown key; did you mean `sample_rate`?"),
                "{e}"
            );
            let e = serde_json::from_str::<AppConfig>(r#"{"other": "y", "trace": {"deadline_ms": -1}}"#).unwrap_err();
            assert!(e.to_string().contains("trace.deadline_ms = -1: must be a number of milliseconds above 0"), "{e}");
            let e = serde_json::from_str::<AppConfig>(r#"{"other": "y", "trace": 3}"#).unwrap_err();
            assert!(e.to_string().contains("trace = 3: must be a mapping of trace settings"), "{e}");
            // The application's struct decides whether `trace` may be missing: here it may not.
            let e = serde_json::from_str::<AppConfig>(r#"{"other": "y"}"#).unwrap_err();
            assert!(e.to_string().contains("missing field `trace`"), "{e}");
        }

        #[test]
        fn prometheus_buckets_ms_is_read_and_validated() {
            let cfg = TraceConfig::from_yaml_str("trace:\n  prometheus_buckets_ms: [0.05, 0.1, 1, 2.5, 6]\n").unwrap();
            assert_eq!(cfg.prometheus_buckets_ms, Some(vec![0.05, 0.1, 1.0, 2.5, 6.0]));
            let cfg = TraceConfig::from_yaml_str("trace:\n  prometheus_buckets_ms: null\n").unwrap();
            assert_eq!(cfg.prometheus_buckets_ms, None);
            assert_eq!(TraceConfig::default().prometheus_buckets_ms, None);
            for (list, want) in [
                (
                    "[1, 5, 2]",
                    "trace.prometheus_buckets_ms[2] = 2: must be above the bound before it (5): bounds are strictly increasing",
                ),
                ("[1, 1]", "trace.prometheus_buckets_ms[1] = 1: must be above the bound before it (1)"),
                (
                    "[0, 1]",
                    "trace.prometheus_buckets_ms[0] = 0: must be a number of milliseconds from 0.000001 (1 ns) to 3600000 (1 h)",
                ),
                ("[-2.5]", "trace.prometheus_buckets_ms[0] = -2.5: must be a number of milliseconds from 0.000001"),
                ("[1, .inf]", "trace.prometheus_buckets_ms[1] = inf: must be a number of milliseconds from"),
                ("[1, .nan]", "trace.prometheus_buckets_ms[1] = NaN: must be a number of milliseconds from"),
                ("[1, 4000000]", "trace.prometheus_buckets_ms[1] = 4000000: must be a number of milliseconds from"),
                ("[1, 2ms]", "trace.prometheus_buckets_ms[1] = \"2ms\": must be a number of milliseconds"),
                ("[]", "trace.prometheus_buckets_ms = a list of 0 bounds: must list 1 to 128 bucket bounds"),
                ("5", "trace.prometheus_buckets_ms = 5: must be a list of bucket upper bounds in milliseconds"),
            ] {
                let e = TraceConfig::from_yaml_str(&format!("trace:\n  prometheus_buckets_ms: {list}\n")).unwrap_err();
                assert!(e.to_string().contains(want), "{list}: {e}");
            }
            let many: Vec<String> = (1..=129).map(|i| i.to_string()).collect();
            let e = TraceConfig::from_yaml_str(&format!("trace:\n  prometheus_buckets_ms: [{}]\n", many.join(", ")))
                .unwrap_err();
            assert!(
                e.to_string().contains("trace.prometheus_buckets_ms = a list of 129 bounds: must list 1 to 128"),
                "{e}"
            );
            let in_code = TraceConfig { prometheus_buckets_ms: Some(vec![2.0, f64::NAN]), ..Default::default() };
            assert!(in_code.validate().unwrap_err().to_string().contains("trace.prometheus_buckets_ms[1] = NaN"));
        }
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

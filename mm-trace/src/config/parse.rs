//! Reading the `trace:` section from YAML (and through serde), with every mistake named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::words::{distance_if_near, show};
use super::{ConfigError, ConfigIssue, TickConfig, TraceConfig};

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
    "ticks",
    "profile_on_shutdown",
    "service_name",
    "otlp",
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
                "ticks" => parse_ticks(v, &mut cfg.ticks, &mut not_numbers),
                "service_name" => match v {
                    Value::Null => cfg.service_name = None,
                    Value::String(s) => cfg.service_name = Some(s.clone()),
                    _ => bad("must be a name string (e.g. mm-bot), or null for the default"),
                },
                "otlp" => cfg.otlp = super::otlp::parse_otlp(v, &mut not_numbers),
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

/// `ticks: { <name>: { deadline_ms: <ms> } }`: every bad entry is one issue naming its key.
fn parse_ticks(v: &Value, ticks: &mut BTreeMap<String, TickConfig>, issues: &mut Vec<ConfigIssue>) {
    let mut bad = |key: String, value: &Value, allowed: &str| {
        issues.push(ConfigIssue { key, value: show(value), allowed: allowed.to_owned() })
    };
    let entries = match v {
        Value::Null => return,
        Value::Mapping(m) => m,
        other => {
            return bad(
                "trace.ticks".into(),
                other,
                "must be a mapping of tick names to their settings, e.g. ticks: { router: { deadline_ms: 6 } }",
            );
        }
    };
    for (name, settings) in entries {
        let Some(name) = name.as_str() else {
            bad(
                format!("trace.ticks.{}", show(name)),
                name,
                "tick names are strings, as in #[traced_tick(name = \"router\")]",
            );
            continue;
        };
        let mut tick = TickConfig::default();
        match settings {
            Value::Null => {}
            Value::Mapping(m) => {
                for (k, value) in m {
                    match k.as_str() {
                        Some("deadline_ms") => match value {
                            Value::Number(n) if n.as_f64().is_some() => tick.deadline_ms = n.as_f64(),
                            Value::Null => tick.deadline_ms = None,
                            _ => bad(
                                format!("trace.ticks.{name}.deadline_ms"),
                                value,
                                "must be a number of milliseconds",
                            ),
                        },
                        _ => {
                            let key = k.as_str().map_or_else(|| show(k), str::to_owned);
                            let hint =
                                distance_if_near(&key, "deadline_ms").map_or("", |_| " did you mean `deadline_ms`?");
                            bad(
                                format!("trace.ticks.{name}.{key}"),
                                value,
                                &format!("unknown key;{hint} allowed keys: deadline_ms"),
                            );
                        }
                    }
                }
            }
            other => bad(format!("trace.ticks.{name}"), other, "must be a mapping, e.g. { deadline_ms: 6 }"),
        }
        ticks.insert(name.to_owned(), tick);
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

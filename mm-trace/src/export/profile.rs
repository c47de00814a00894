//! `perf_profile.json`, schema version 1 (`docs/PROFILE_SCHEMA.md`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use crate::summary::{StageStats, Summary};

/// The `schema` value of every profile.
pub(crate) const SCHEMA: &str = "mm-trace/perf-profile";
/// The `schema_version` written.
pub(crate) const SCHEMA_VERSION: u64 = 1;

static LABELS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

pub(crate) fn set_label(key: &str, value: &str) {
    LABELS.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), value.to_owned());
}

pub(crate) fn clear_labels() {
    LABELS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

pub(crate) fn labels() -> BTreeMap<String, String> {
    LABELS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Renders a profile of `summary`.
pub(crate) fn render(summary: &Summary, labels: &BTreeMap<String, String>, created_unix_ms: u64) -> String {
    let stages: Map<String, Value> = summary.stages.iter().map(|s| (s.name.clone(), stage(s))).collect();
    let exchange: Map<String, Value> = summary
        .exchange
        .iter()
        .map(|e| {
            let mut v = stage(&e.stats);
            if let Value::Object(m) = &mut v {
                m.insert("verb".into(), json!(e.verb));
                m.insert("api".into(), json!(e.api));
            }
            (format!("{} {}", e.verb, e.api), v)
        })
        .collect();
    let guard_trips: Map<String, Value> = summary.guard_trips.iter().map(|(r, n)| (r.clone(), json!(n))).collect();
    let doc = json!({
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generator": concat!("mm-trace ", env!("CARGO_PKG_VERSION")),
        "created_unix_ms": created_unix_ms,
        "labels": labels,
        "deadline_ms": summary.deadline_ms,
        "ticks": summary.ticks,
        "deadline_misses": summary.deadline_misses,
        "deadline_miss_pct": summary.deadline_miss_pct,
        "partial_fails": summary.partial_fails,
        "partial_fail_pct": crate_pct(summary.partial_fails, summary.ticks),
        "sample_rate": summary.sample_rate,
        "stages": stages,
        "exchange": exchange,
        "guard_trips": guard_trips,
    });
    super::to_pretty(doc)
}

fn stage(s: &StageStats) -> Value {
    let buckets: Vec<Value> = s.histogram.buckets().map(|(lo, hi, c)| json!([lo, hi, c])).collect();
    json!({
        "count": s.count,
        "sum_ms": s.sum_ms,
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "p99_ms": s.p99_ms,
        "max_ms": s.max_ms,
        "buckets": buckets,
    })
}

fn crate_pct(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 }
}

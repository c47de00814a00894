//! Exporters: Prometheus text, perf profile JSON, golden traces, Chrome trace events, and the
//! optional `/metrics` endpoint.
//!
//! Every renderer is a pure function of collected data ([`crate::Summary`],
//! [`crate::TickTrace`]), so they work unchanged when instrumentation is compiled out (they then
//! render empty data).

pub(crate) mod chrome;
#[cfg(feature = "http")]
pub(crate) mod http;
pub(crate) mod json;
pub(crate) mod profile;
pub(crate) mod prometheus;

use serde_json::{Map, Value};

/// Rebuilds every object of `v` with its keys inserted in sorted order, so the output is sorted
/// whether or not serde_json's `preserve_order` feature is switched on somewhere in the build.
pub(crate) fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect::<Map<String, Value>>())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Pretty JSON with sorted keys and a final newline.
pub(crate) fn to_pretty(v: Value) -> String {
    // Serializing a `Value` cannot fail (its keys are strings, its numbers finite or null).
    let mut out = serde_json::to_string_pretty(&sorted(v)).unwrap_or_default();
    out.push('\n');
    out
}

//! Exporters: Prometheus text, perf profile JSON, golden traces, Chrome trace events, and the
//! optional `/metrics` endpoint.
//!
//! Every renderer is a pure function of collected data ([`crate::Summary`],
//! [`crate::TickTrace`]), so they work unchanged when instrumentation is compiled out (they then
//! render empty data).

pub(crate) mod chrome;
pub(crate) mod exposition;
pub(crate) mod folded;
#[cfg(feature = "http")]
pub(crate) mod http;
pub(crate) mod json;
pub(crate) mod lanes;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;
pub(crate) mod profile;
pub(crate) mod prometheus;
pub(crate) mod svg;
#[cfg(feature = "http")]
pub(crate) mod trace_list;

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

/// Pretty JSON (two-space indent) with sorted keys and a final newline. Arrays of scalars stay
/// on one line (`[lower_ns, upper_ns, count]` buckets read as rows).
pub(crate) fn to_pretty(v: Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, &sorted(v), 0);
    out.push('\n');
    out
}

fn write_pretty(out: &mut String, v: &Value, depth: usize) {
    let pad = |out: &mut String, d: usize| out.extend(std::iter::repeat_n("  ", d));
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str("{\n");
            for (i, (k, v)) in m.iter().enumerate() {
                pad(out, depth + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_pretty(out, v, depth + 1);
                out.push_str(if i + 1 < m.len() { ",\n" } else { "\n" });
            }
            pad(out, depth);
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() && a.iter().any(|x| x.is_array() || x.is_object()) => {
            out.push_str("[\n");
            for (i, v) in a.iter().enumerate() {
                pad(out, depth + 1);
                write_pretty(out, v, depth + 1);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            pad(out, depth);
            out.push(']');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&v.to_string());
            }
            out.push(']');
        }
        // Scalars and empty objects: serde_json's compact form (`{}`, strings escaped).
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_output_is_json_with_sorted_keys_and_inline_scalar_arrays() {
        let v = serde_json::json!({ "b": [[1, 2, 3], [4, 5, 6]], "a": { "z": "q\"", "y": [] }, "c": {} });
        let text = to_pretty(v.clone());
        assert_eq!(
            text,
            "{\n  \"a\": {\n    \"y\": [],\n    \"z\": \"q\\\"\"\n  },\n  \"b\": [\n    [1, 2, 3],\n    [4, 5, 6]\n  ],\n  \"c\": {}\n}\n"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }
}

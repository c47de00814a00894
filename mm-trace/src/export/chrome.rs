//! Chrome trace-event JSON of recent kept ticks (Perfetto, chrome://tracing).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::summary::TickTrace;

/// Renders `traces` as a trace-event document: one `ph:"X"` complete event per tick (category
/// `tick`) and per span (category `stage` or `exchange`), `ts`/`dur` in microseconds with
/// nanosecond precision, `tid` the collector's thread ordinal, plus `ph:"M"` metadata naming the
/// process and every thread.
pub(crate) fn render(traces: &[TickTrace], pid: u32) -> String {
    let mut events = Vec::new();
    let mut threads: BTreeMap<u32, &str> = BTreeMap::new();
    for t in traces {
        for (ordinal, name) in &t.threads {
            threads.entry(*ordinal).or_insert(name);
        }
        threads.entry(t.thread).or_insert("");
        let mut annotations: Map<String, Value> = Map::new();
        for (k, v) in &t.annotations {
            // Repeated keys keep every value, in call order.
            let joined = match annotations.get(k).and_then(Value::as_str) {
                Some(prev) => format!("{prev}, {v}"),
                None => v.clone(),
            };
            annotations.insert(k.clone(), json!(joined));
        }
        events.push(json!({
            "ph": "X",
            "name": t.name,
            "cat": "tick",
            "ts": micros(t.start_ns),
            "dur": micros(t.duration_ns),
            "pid": pid,
            "tid": t.thread,
            "args": {
                "tick_id": t.tick_id,
                "trace_id": t.trace_id,
                "span_id": t.span_id,
                "parent_span_id": t.parent_span_id,
                "reason": t.reason.as_str(),
                "deadline_missed": t.deadline_missed,
                "partial_fail": t.partial_fail,
                "error": t.error,
                "spans_dropped": t.spans_dropped,
                "annotations": annotations,
            },
        }));
        for s in &t.spans {
            threads.entry(s.thread).or_insert("");
            events.push(json!({
                "ph": "X",
                "name": s.name,
                "cat": s.kind,
                "ts": micros(t.start_ns + s.start_ns),
                "dur": micros(s.end_ns.saturating_sub(s.start_ns)),
                "pid": pid,
                "tid": s.thread,
                "args": {
                    "tick_id": t.tick_id,
                    "trace_id": t.trace_id,
                    "span_id": s.span_id,
                    "parent_span_id": s.parent_span_id,
                    "cancelled": s.cancelled,
                    "error": s.error,
                    "labels": s.labels.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                },
            }));
        }
    }
    let mut meta = vec![json!({
        "ph": "M", "name": "process_name", "pid": pid, "tid": 0,
        "args": { "name": format!("mm-trace (pid {pid})") },
    })];
    for (ordinal, name) in threads {
        let name = if name.is_empty() { format!("thread-{ordinal}") } else { name.to_owned() };
        meta.push(json!({ "ph": "M", "name": "thread_name", "pid": pid, "tid": ordinal, "args": { "name": name } }));
        meta.push(json!({ "ph": "M", "name": "thread_sort_index", "pid": pid, "tid": ordinal, "args": { "sort_index": ordinal } }));
    }
    meta.extend(events);
    // Compact: a ring of busy ticks can hold many thousands of events.
    let doc = super::sorted(json!({ "traceEvents": meta, "displayTimeUnit": "ms" }));
    let mut out = serde_json::to_string(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// Nanoseconds as microseconds, keeping every nanosecond (`1234567` → `1234.567`).
fn micros(ns: u64) -> Value {
    // Below 10^15 ns (11 days after the trace epoch) the quotient has at most 15 significant
    // digits, so shortest round-trip printing gives exactly the three decimals.
    json!(ns as f64 / 1e3)
}

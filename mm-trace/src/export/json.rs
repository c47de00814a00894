//! Golden trace JSON: one tick's span tree, deterministic.

use serde_json::{Map, Value, json};

use crate::summary::{TickTrace, TraceSpan};

/// Renders a golden trace: stable key order (sorted), integer nanoseconds relative to the tick's
/// start, children ordered by start time, threads renumbered in order of first appearance (the
/// tick's own thread is 0). Nothing in it depends on wall-clock time or thread ids, so with the
/// test clock the bytes are identical across runs.
pub fn golden_trace_json(trace: &TickTrace) -> String {
    let mut order: Vec<u32> = vec![trace.thread];
    for s in &trace.spans {
        if !order.contains(&s.thread) {
            order.push(s.thread);
        }
    }
    let thread_no = |t: u32| order.iter().position(|&x| x == t).unwrap_or(0) as u64;
    let names: Vec<Value> = order
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = trace.threads.iter().find(|(o, _)| o == t).map_or(String::new(), |(_, n)| n.clone());
            json!({ "thread": i, "name": name })
        })
        .collect();
    let roots: Vec<Value> = children(trace, None, &thread_no);
    let doc = json!({
        "schema": "mm-trace/golden-trace",
        "schema_version": 1,
        "tick_id": trace.tick_id,
        "name": trace.name,
        "reason": trace.reason.as_str(),
        "duration_ns": trace.duration_ns,
        "deadline_missed": trace.deadline_missed,
        "partial_fail": trace.partial_fail,
        "annotations": trace.annotations.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
        "spans_dropped": trace.spans_dropped,
        "threads": names,
        "spans": roots,
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

fn children(trace: &TickTrace, parent: Option<u32>, thread_no: &dyn Fn(u32) -> u64) -> Vec<Value> {
    let mut kids: Vec<&TraceSpan> = trace.spans.iter().filter(|s| s.parent == parent).collect();
    kids.sort_by_key(|s| (s.start_ns, s.end_ns, s.name.clone()));
    kids.into_iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("name".into(), json!(s.name));
            m.insert("kind".into(), json!(s.kind));
            m.insert("start_ns".into(), json!(s.start_ns));
            m.insert("end_ns".into(), json!(s.end_ns));
            m.insert("duration_ns".into(), json!(s.end_ns.saturating_sub(s.start_ns)));
            m.insert("thread".into(), json!(thread_no(s.thread)));
            if s.cancelled {
                m.insert("cancelled".into(), json!(true));
            }
            let sub = children(trace, Some(s.id), thread_no);
            if !sub.is_empty() {
                m.insert("children".into(), Value::Array(sub));
            }
            Value::Object(m)
        })
        .collect()
}

//! Golden trace JSON: one tick's span tree, deterministic.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::summary::{TickTrace, TraceSpan};

/// Renders the golden trace of `trace` (see `crate::golden_trace_json_from`).
pub(crate) fn render(trace: &TickTrace) -> String {
    let mut by_parent: HashMap<Option<u32>, Vec<&TraceSpan>> = HashMap::new();
    for s in &trace.spans {
        by_parent.entry(s.parent).or_default().push(s);
    }
    for kids in by_parent.values_mut() {
        kids.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    }
    let mut in_time_order: Vec<&TraceSpan> = trace.spans.iter().collect();
    in_time_order.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    let mut order: Vec<u32> = vec![trace.thread];
    for s in in_time_order {
        if !order.contains(&s.thread) {
            order.push(s.thread);
        }
    }
    let thread_no = |t: u32| order.iter().position(|&x| x == t).unwrap_or(0) as u64;
    let threads: Vec<Value> = order
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let name = trace.threads.iter().find(|(o, _)| *o == t).map(|(_, n)| n.as_str()).unwrap_or("");
            // The collector names unnamed threads after their process-wide ordinal, which depends
            // on what ran before: use the trace-local number instead.
            let name =
                if name.is_empty() || name == format!("thread-{t}") { format!("thread-{i}") } else { name.to_owned() };
            json!({ "thread": i, "name": name })
        })
        .collect();
    let doc = json!({
        "schema": "mm-trace/golden-trace",
        "schema_version": 1,
        "tick_id": trace.tick_id,
        "trace_id": trace.trace_id,
        "span_id": trace.span_id,
        "parent_span_id": trace.parent_span_id,
        "name": trace.name,
        "reason": trace.reason.as_str(),
        "duration_ns": trace.duration_ns,
        "deadline_missed": trace.deadline_missed,
        "partial_fail": trace.partial_fail,
        "annotations": trace.annotations.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
        "spans_dropped": trace.spans_dropped,
        "threads": threads,
        "spans": children(&by_parent, None, &thread_no),
    });
    let mut doc = doc;
    if trace.error {
        // Only when set, so the files of ticks that returned no `Err` keep their bytes.
        doc["error"] = json!(true);
    }
    super::to_pretty(doc)
}

fn order_key(s: &TraceSpan) -> (u64, u64, &str, &str) {
    (s.start_ns, s.end_ns, s.name.as_str(), s.kind)
}

fn children(
    by_parent: &HashMap<Option<u32>, Vec<&TraceSpan>>,
    parent: Option<u32>,
    thread_no: &dyn Fn(u32) -> u64,
) -> Vec<Value> {
    let Some(kids) = by_parent.get(&parent) else {
        return Vec::new();
    };
    kids.iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("name".into(), json!(s.name));
            m.insert("span_id".into(), json!(s.span_id));
            m.insert("kind".into(), json!(s.kind));
            m.insert("start_ns".into(), json!(s.start_ns));
            m.insert("end_ns".into(), json!(s.end_ns));
            m.insert("duration_ns".into(), json!(s.end_ns.saturating_sub(s.start_ns)));
            m.insert("thread".into(), json!(thread_no(s.thread)));
            if s.cancelled {
                m.insert("cancelled".into(), json!(true));
            }
            if s.error {
                m.insert("error".into(), json!(true));
            }
            if !s.labels.is_empty() {
                let labels: Map<String, Value> = s.labels.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
                m.insert("labels".into(), Value::Object(labels));
            }
            let sub = children(by_parent, Some(s.id), thread_no);
            if !sub.is_empty() {
                m.insert("children".into(), Value::Array(sub));
            }
            Value::Object(m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::KeepReason;

    fn span(id: u32, parent: Option<u32>, name: &str, start_ns: u64, end_ns: u64, thread: u32) -> TraceSpan {
        TraceSpan { id, parent, name: name.into(), kind: "stage", start_ns, end_ns, thread, ..TraceSpan::default() }
    }

    fn trace(spans: Vec<TraceSpan>) -> TickTrace {
        TickTrace {
            tick_id: 3,
            name: "tick".into(),
            reason: KeepReason::Sampled,
            start_ns: 99,
            duration_ns: 100,
            spans,
            spans_dropped: 0,
            threads: vec![(9, "bot".into()), (12, "thread-12".into()), (40, "thread-40".into())],
            thread: 9,
            ..TickTrace::default()
        }
    }

    #[test]
    fn children_by_start_threads_by_first_span_and_ids_do_not_matter() {
        let a = trace(vec![
            span(1, None, "late", 50, 60, 9),
            span(2, None, "early", 10, 40, 40),
            span(3, Some(2), "inner_b", 30, 35, 12),
            span(4, Some(2), "inner_a", 20, 25, 9),
        ]);
        // Same spans, other ids and input order, other process-wide thread ordinals.
        let b = trace(vec![
            span(20, Some(10), "inner_a", 20, 25, 9),
            span(11, None, "late", 50, 60, 9),
            span(10, None, "early", 10, 40, 12),
            span(30, Some(10), "inner_b", 30, 35, 40),
        ]);
        let (ja, jb) = (render(&a), render(&b));
        assert_eq!(ja, jb);
        let v: Value = serde_json::from_str(&ja).unwrap();
        assert_eq!(v["spans"][0]["name"], "early");
        assert_eq!(v["spans"][0]["children"][0]["name"], "inner_a");
        assert_eq!(v["spans"][0]["thread"], 1);
        assert_eq!(v["threads"][1]["name"], "thread-1");
        assert_eq!(v["threads"][0]["name"], "bot");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort();
        assert_eq!(keys, sorted_keys);
    }
}

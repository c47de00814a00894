//! Chrome trace-event JSON of recent kept ticks (`trace.json`: Perfetto, chrome://tracing,
//! speedscope).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::lanes::{self, Item, Step};
use crate::summary::{TickTrace, TraceSpan};

/// `tid` of lane `k > 0` of thread `t`: `k * LANE_TID_STRIDE + t`, so lanes never collide with
/// real thread ordinals (far below it) and read as "lane k of thread t".
pub(crate) const LANE_TID_STRIDE: u64 = 1_000_000;

/// Renders `traces` as a trace-event document.
///
/// Every tick (category `tick`) and span (category `stage` or `exchange`) is a slice named after
/// its stage, on a track of the thread that recorded it: `tid` is the thread's ordinal, or, for
/// spans that overlap others of that thread without nesting (concurrent futures polled on one
/// worker thread), the ordinal plus a lane offset, named "<thread> (lane N)". On every track the
/// slices nest or are disjoint, which Perfetto and speedscope require.
///
/// A slice is a begin (`B`) event without arguments and an end (`E`) event carrying its ids and
/// flags (`tick_id`, `trace_id`, `span_id`, `parent_span_id`, ...): viewers merge the end's
/// arguments into the slice, and speedscope, which names frames after `name` plus the begin
/// event's arguments, groups every span of a stage into one frame. A zero-length slice is one
/// complete (`X`) event with its arguments. `ts` is in microseconds with nanosecond precision;
/// `M` events name the process and every track.
pub(crate) fn render(traces: &[TickTrace], pid: u32) -> String {
    let mut items = Vec::new();
    let mut what: Vec<(&TickTrace, Option<&TraceSpan>)> = Vec::new();
    let mut names: BTreeMap<u32, &str> = BTreeMap::new();
    for t in traces {
        for (ordinal, name) in &t.threads {
            names.entry(*ordinal).or_insert(name);
        }
        let tick = items.len();
        items.push(Item { start: t.start_ns, end: t.start_ns + t.duration_ns, thread: t.thread, parent: None });
        what.push((t, None));
        let index: HashMap<u32, usize> = t.spans.iter().enumerate().map(|(k, s)| (s.id, tick + 1 + k)).collect();
        for s in &t.spans {
            let parent = s.parent.and_then(|p| index.get(&p).copied()).unwrap_or(tick);
            let (start, end) = (t.start_ns + s.start_ns, t.start_ns + s.end_ns.max(s.start_ns));
            items.push(Item { start, end, thread: s.thread, parent: Some(parent) });
            what.push((t, Some(s)));
        }
    }
    let placed = lanes::assign(&items);
    let tid = |i: usize| u64::from(items[i].thread) + u64::from(placed[i].lane) * LANE_TID_STRIDE;

    let mut tracks: BTreeSet<(u32, u32)> = names.keys().map(|&t| (t, 0)).collect();
    let mut events = Vec::with_capacity(items.len() * 2);
    lanes::walk(&placed, |i, step| {
        let (t, span) = what[i];
        let it = items[i];
        tracks.insert((it.thread, placed[i].lane));
        let (name, cat) = match span {
            Some(s) => (s.name.as_str(), s.kind),
            None => (t.name.as_str(), "tick"),
        };
        let head = |ph: &str, ns: u64| json!({ "ph": ph, "name": name, "cat": cat, "ts": micros(ns), "pid": pid, "tid": tid(i) });
        match (step, it.start == it.end) {
            (Step::Open, true) => {
                let mut x = head("X", it.start);
                x["dur"] = json!(0);
                x["args"] = args(t, span);
                events.push(x);
            }
            (Step::Close, true) => {}
            (Step::Open, false) => events.push(head("B", it.start)),
            (Step::Close, false) => {
                let mut e = head("E", it.end);
                e["args"] = args(t, span);
                events.push(e);
            }
        }
    });

    let mut meta = vec![json!({
        "ph": "M", "name": "process_name", "pid": pid, "tid": 0,
        // Viewers add the pid themselves (speedscope: "mm-trace (pid 123), bot (tid 1)").
        "args": { "name": "mm-trace" },
    })];
    for &(thread, lane) in &tracks {
        let base = match names.get(&thread) {
            Some(n) if !n.is_empty() => (*n).to_owned(),
            _ => format!("thread-{thread}"),
        };
        let name = if lane == 0 { base } else { format!("{base} (lane {})", lane + 1) };
        let tid = u64::from(thread) + u64::from(lane) * LANE_TID_STRIDE;
        let sort = u64::from(thread) * 1000 + u64::from(lane.min(999));
        meta.push(json!({ "ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": { "name": name } }));
        meta.push(
            json!({ "ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": { "sort_index": sort } }),
        );
    }
    meta.extend(events);
    // Compact: a ring of busy ticks can hold many thousands of events.
    let doc = super::sorted(json!({ "traceEvents": meta, "displayTimeUnit": "ms" }));
    let mut out = serde_json::to_string(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// The arguments of a tick's or span's slice: ids, flags, labels, annotations.
fn args(t: &TickTrace, span: Option<&TraceSpan>) -> Value {
    match span {
        Some(s) => json!({
            "tick_id": t.tick_id,
            "trace_id": t.trace_id,
            "span_id": s.span_id,
            "parent_span_id": s.parent_span_id,
            "cancelled": s.cancelled,
            "error": s.error,
            "labels": s.labels.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<Map<_, _>>(),
        }),
        None => {
            let mut annotations: Map<String, Value> = Map::new();
            for (k, v) in &t.annotations {
                // Repeated keys keep every value, in call order.
                let joined = match annotations.get(k).and_then(Value::as_str) {
                    Some(prev) => format!("{prev}, {v}"),
                    None => v.clone(),
                };
                annotations.insert(k.clone(), json!(joined));
            }
            json!({
                "tick_id": t.tick_id,
                "trace_id": t.trace_id,
                "span_id": t.span_id,
                "parent_span_id": t.parent_span_id,
                "reason": t.reason.as_str(),
                "deadline_missed": t.deadline_missed,
                "deadline_ms": t.deadline_ns.map(|d| d as f64 / 1e6),
                "partial_fail": t.partial_fail,
                "error": t.error,
                "spans_dropped": t.spans_dropped,
                "annotations": annotations,
            })
        }
    }
}

/// Nanoseconds as microseconds, keeping every nanosecond (`1234567` → `1234.567`).
fn micros(ns: u64) -> Value {
    // Below 10^15 ns (11 days after the trace epoch) the quotient has at most 15 significant
    // digits, so shortest round-trip printing gives exactly the three decimals.
    json!(ns as f64 / 1e3)
}

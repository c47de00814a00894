//! Reading Chrome trace-event documents as a viewer does: begin/end pairs per track, complete
//! events, and the rule Perfetto and speedscope need (slices of one track nest or are disjoint).

#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::collections::BTreeMap;

use serde_json::Value;

/// One slice: a `B`/`E` pair or an `X` event.
#[derive(Debug, Clone)]
pub struct Slice {
    pub name: String,
    pub cat: String,
    pub pid: u64,
    pub tid: u64,
    /// Start and end, ns (the file's µs with three decimals, exact).
    pub start: i64,
    pub end: i64,
    /// The end event's arguments (a `B` event carries none), or the `X` event's.
    pub args: Value,
}

fn ns(v: &Value) -> i64 {
    (v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")) * 1000.0).round() as i64
}

/// Every slice of `doc`, in the order their events close. Panics unless each track (pid, tid)
/// is a well-formed stack in file order: an `E` closes the innermost open `B` of its track, with
/// the same name and category, not before it began; no `B` stays open; timestamps on a track
/// never go back; `B` events have no arguments (speedscope names frames by name plus them).
pub fn slices(doc: &Value) -> Vec<Slice> {
    let mut open: BTreeMap<(u64, u64), Vec<Slice>> = BTreeMap::new();
    let mut last: BTreeMap<(u64, u64), i64> = BTreeMap::new();
    let mut out = Vec::new();
    for e in doc["traceEvents"].as_array().expect("traceEvents") {
        let ph = e["ph"].as_str().unwrap_or_else(|| panic!("no ph: {e}"));
        if ph == "M" {
            continue;
        }
        let (pid, tid) = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        let ts = ns(&e["ts"]);
        let track = (pid, tid);
        let prev = last.insert(track, ts).unwrap_or(i64::MIN);
        assert!(ts >= prev, "timestamps go back on track {track:?}: {e}");
        let name = e["name"].as_str().unwrap_or_else(|| panic!("no name: {e}")).to_owned();
        let cat = e["cat"].as_str().unwrap_or_default().to_owned();
        match ph {
            "B" => {
                assert!(e.get("args").is_none(), "a begin event with arguments: {e}");
                let s = Slice { name, cat, pid, tid, start: ts, end: ts, args: Value::Null };
                open.entry(track).or_default().push(s);
            }
            "E" => {
                let mut s = open.get_mut(&track).and_then(Vec::pop).unwrap_or_else(|| panic!("E without B: {e}"));
                assert_eq!((&s.name, &s.cat), (&name, &cat), "E closes another slice: {e}");
                s.end = ts;
                s.args = e["args"].clone();
                out.push(s);
            }
            "X" => {
                let end = ts + ns(&e["dur"]);
                out.push(Slice { name, cat, pid, tid, start: ts, end, args: e["args"].clone() });
            }
            other => panic!("unexpected phase {other}: {e}"),
        }
    }
    for (track, left) in open {
        assert!(left.is_empty(), "slices left open on {track:?}: {left:?}");
    }
    out
}

/// `(trace_id, span_id)` of a slice, from its arguments.
fn key(s: &Slice) -> Option<(String, String)> {
    Some((s.args["trace_id"].as_str()?.to_owned(), s.args["span_id"].as_str()?.to_owned()))
}

/// Panics if two slices of one track partly overlap (neither contains the other and they are
/// not disjoint), or if a slice lies within one that is not its ancestor (siblings stacked as
/// caller and callee: a wrong call tree in Perfetto and speedscope); returns how many tracks
/// were checked.
pub fn assert_nested_per_track(slices: &[Slice]) -> usize {
    let parent: BTreeMap<(String, String), String> =
        slices.iter().filter_map(|s| Some((key(s)?, s.args["parent_span_id"].as_str()?.to_owned()))).collect();
    let is_ancestor = |a: &Slice, b: &Slice| {
        let (Some((ta, sa)), Some((tb, mut at))) = (key(a), key(b)) else { return true };
        for _ in 0..=slices.len() {
            match parent.get(&(tb.clone(), at.clone())) {
                Some(p) if *p == sa && ta == tb => return true,
                Some(p) => at = p.clone(),
                None => return false,
            }
        }
        false
    };
    let mut by_track: BTreeMap<(u64, u64), Vec<&Slice>> = BTreeMap::new();
    for s in slices {
        by_track.entry((s.pid, s.tid)).or_default().push(s);
    }
    for (track, mut list) in by_track.clone() {
        list.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
        let mut stack: Vec<&Slice> = Vec::new();
        for s in list {
            while stack.last().is_some_and(|top| top.end <= s.start) {
                stack.pop();
            }
            if let Some(top) = stack.last() {
                assert!(s.end <= top.end, "on track {track:?}, {s:?} partly overlaps {top:?}");
                assert!(is_ancestor(top, s), "on track {track:?}, {s:?} lies within {top:?}, not its ancestor");
            }
            stack.push(s);
        }
    }
    by_track.len()
}

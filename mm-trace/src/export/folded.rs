//! Folded stacks (`tick;fetch_md;GET book 63015`) of kept ticks, for flame-graph tools
//! (inferno, Brendan Gregg's flamegraph.pl, speedscope).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::svg::self_times;
use crate::summary::TickTrace;

/// One line per distinct stack (the tick's name, then each stage from the outermost down,
/// joined by `;`), then a space and the stack's self time in microseconds summed over
/// `traces`, rounded (a stack whose total rounds to 0 is left out). Self time is a span's wall
/// time minus what its children cover (children on other threads included, overlapping ones
/// counted once); the tick's own line is its time outside every top-level span. Concurrent
/// children each count in full, so a stage with parallel children is wider than its wall time
/// (as a CPU flame graph of several threads is). Lines are sorted by stack.
pub(crate) fn render(traces: &[TickTrace]) -> String {
    let mut ns: BTreeMap<String, u64> = BTreeMap::new();
    for t in traces {
        let index: HashMap<u32, usize> = t.spans.iter().enumerate().map(|(k, s)| (s.id, k)).collect();
        let parent_of: Vec<Option<usize>> =
            t.spans.iter().map(|s| s.parent.and_then(|p| index.get(&p).copied())).collect();
        let self_ns = self_times(t, &parent_of);
        let tick = frame(&t.name);
        let mut paths: Vec<Option<String>> = vec![None; t.spans.len()];
        for (i, own) in self_ns.iter().enumerate() {
            let path = path_of(i, t, &parent_of, &mut paths, &tick);
            *ns.entry(path).or_default() += own;
        }
        // The tick's self time: its duration minus what its top-level spans cover.
        let mut top: Vec<(u64, u64)> = t
            .spans
            .iter()
            .zip(&parent_of)
            .filter(|(_, p)| p.is_none())
            .map(|(s, _)| (s.start_ns, s.end_ns.min(t.duration_ns)))
            .collect();
        top.sort_unstable();
        let (mut covered, mut upto) = (0, 0);
        for (a, b) in top {
            let a = a.max(upto);
            if b > a {
                covered += b - a;
                upto = b;
            }
        }
        *ns.entry(tick).or_default() += t.duration_ns.saturating_sub(covered);
    }
    let mut out = String::new();
    for (stack, total) in ns {
        let us = (total + 500) / 1000;
        if us > 0 {
            let _ = writeln!(out, "{stack} {us}");
        }
    }
    out
}

/// The stack of span `i`, memoised; a parent chain that loops is cut at the tick.
fn path_of(i: usize, t: &TickTrace, parent_of: &[Option<usize>], paths: &mut [Option<String>], tick: &str) -> String {
    let mut chain = vec![i];
    let mut at = parent_of[i];
    while let Some(p) = at {
        if paths[p].is_some() || chain.len() > t.spans.len() {
            break;
        }
        chain.push(p);
        at = parent_of[p];
    }
    let mut prefix = at.and_then(|p| paths[p].clone()).unwrap_or_else(|| tick.to_owned());
    for &j in chain.iter().rev() {
        prefix = format!("{prefix};{}", frame(&t.spans[j].name));
        paths[j] = Some(prefix.clone());
    }
    prefix
}

/// A frame name with the format's separators replaced: `;` splits frames and a line ends at a
/// line feed (a space is fine: the count follows the last one).
fn frame(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ';' => ':',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::TraceSpan;

    fn span(id: u32, parent: Option<u32>, name: &str, start_ns: u64, end_ns: u64) -> TraceSpan {
        TraceSpan { id, parent, name: name.into(), kind: "stage", start_ns, end_ns, ..TraceSpan::default() }
    }

    #[test]
    fn self_time_in_microseconds_summed_over_ticks_with_parallel_children_counted_once() {
        let t = TickTrace {
            name: "tick".into(),
            duration_ns: 100_000,
            spans: vec![
                span(1, None, "fetch_md", 10_000, 70_000),
                span(2, Some(1), "GET book", 20_000, 50_000),
                span(3, Some(1), "GET book", 30_000, 60_000),
                span(4, None, "quote;x", 70_000, 90_000),
            ],
            ..TickTrace::default()
        };
        let text = render(&[t.clone(), t]);
        assert_eq!(text, "tick 40\ntick;fetch_md 40\ntick;fetch_md;GET book 120\ntick;quote:x 40\n");
    }
}

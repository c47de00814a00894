//! Lanes: the tracks of one thread on which its intervals nest properly.
//!
//! A thread's spans need not nest: the futures of one tokio worker thread interleave, so two
//! concurrent `fetch_md` stages recorded there overlap without either containing the other.
//! Viewers (Perfetto, chrome://tracing, speedscope) and a timeline picture both need, per
//! track, intervals that are nested or disjoint. [`assign`] splits each thread into as few
//! lanes as a greedy first-fit gives, keeping a span on its parent's lane when it fits there.

use std::cmp::Reverse;

/// An interval to place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// The track family (a thread ordinal); lanes are numbered per thread.
    pub(crate) thread: u32,
    /// Index of the parent item, if any (on any thread).
    pub(crate) parent: Option<usize>,
}

/// Where an item went: its lane within its thread, the item it nests in on that lane, and its
/// rank in the placing order (by thread, then start; a parent before its children).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) lane: u32,
    pub(crate) enclosing: Option<usize>,
    pub(crate) rank: usize,
}

/// Places every item on a lane of its thread such that on each lane any two items are nested
/// (one contains the other, ends included, and is its ancestor) or disjoint (touching ends
/// allowed).
///
/// Items are taken by start time (zero-length ones first, then longer first, parents before
/// children); each goes to its parent's lane if it nests there, else to the first lane where it
/// does, else to a new lane.
pub(crate) fn assign(items: &[Item]) -> Vec<Placed> {
    let depth = depths(items);
    let mut order: Vec<usize> = (0..items.len()).collect();
    // At one start, zero-length items first: they nest in what ends there rather than in what
    // begins there (which may be deeper or shallower than their parent).
    order.sort_by_key(|&i| {
        let it = &items[i];
        (it.thread, it.start, it.end > it.start, Reverse(it.end), depth[i], i)
    });
    let mut placed = vec![Placed { lane: 0, enclosing: None, rank: 0 }; items.len()];
    // A parent placed after its child (a clock that stepped back between threads) is no hint.
    let mut done = vec![false; items.len()];
    // Per lane of the current thread: the stack of open items (index, end).
    let mut lanes: Vec<Vec<(usize, u64)>> = Vec::new();
    let mut thread = None;
    for (rank, i) in order.into_iter().enumerate() {
        let it = items[i];
        if thread != Some(it.thread) {
            thread = Some(it.thread);
            lanes.clear();
        }
        for stack in &mut lanes {
            while stack.last().is_some_and(|&(_, end)| end < it.start || (end == it.start && it.end > it.start)) {
                stack.pop();
            }
        }
        // Nesting on a track reads as a call tree (Perfetto's slices, speedscope's stacks): an
        // item may only nest in one of its ancestors, never in a sibling that happens to span it.
        let fits = |stack: &Vec<(usize, u64)>| {
            stack.last().is_none_or(|&(top, end)| end >= it.end && is_ancestor(items, top, i))
        };
        let preferred = it
            .parent
            .filter(|&p| items[p].thread == it.thread && done[p])
            .map(|p| placed[p].lane as usize)
            .filter(|&l| fits(&lanes[l]));
        let lane = match preferred.or_else(|| lanes.iter().position(fits)) {
            Some(l) => l,
            None => {
                lanes.push(Vec::new());
                lanes.len() - 1
            }
        };
        placed[i] = Placed { lane: lane as u32, enclosing: lanes[lane].last().map(|&(j, _)| j), rank };
        lanes[lane].push((i, it.end));
        done[i] = true;
    }
    placed
}

/// Whether `a` is on the parent chain of `b` (a chain that loops is cut).
fn is_ancestor(items: &[Item], a: usize, b: usize) -> bool {
    let mut at = items[b].parent;
    for _ in 0..items.len() {
        match at {
            Some(p) if p == a => return true,
            Some(p) if p < items.len() => at = items[p].parent,
            _ => return false,
        }
    }
    false
}

/// Nesting depth of each item along its parent chain (a chain that loops is cut).
fn depths(items: &[Item]) -> Vec<u32> {
    let mut depth: Vec<Option<u32>> = vec![None; items.len()];
    for i in 0..items.len() {
        let mut chain = Vec::new();
        let mut at = Some(i);
        let mut top = 0;
        while let Some(j) = at {
            if let Some(d) = depth[j] {
                top = d + 1;
                break;
            }
            if chain.len() > items.len() {
                break;
            }
            chain.push(j);
            at = items[j].parent.filter(|&p| p < items.len());
        }
        for (k, &j) in chain.iter().rev().enumerate() {
            depth[j].get_or_insert(top + k as u32);
        }
    }
    depth.into_iter().map(Option::unwrap_or_default).collect()
}

/// The items of each lane in nesting order: per `(thread, lane)`, a depth-first walk where an
/// item comes before what nests in it and after what ended before it. Emitting begin/end
/// events in this order gives every viewer a well-formed stack per track.
pub(crate) fn walk(placed: &[Placed], mut visit: impl FnMut(usize, Step)) {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); placed.len()];
    let mut roots = Vec::new();
    for (i, p) in placed.iter().enumerate() {
        match p.enclosing {
            Some(e) => children[e].push(i),
            None => roots.push(i),
        }
    }
    for c in &mut children {
        c.sort_by_key(|&i| placed[i].rank);
    }
    roots.sort_by_key(|&i| placed[i].rank);
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in roots {
        visit(root, Step::Open);
        stack.push((root, 0));
        while let Some((i, next)) = stack.last_mut() {
            if let Some(&c) = children[*i].get(*next) {
                *next += 1;
                visit(c, Step::Open);
                stack.push((c, 0));
            } else {
                visit(*i, Step::Close);
                stack.pop();
            }
        }
    }
}

/// A step of [`walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Open,
    Close,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(start: u64, end: u64, parent: Option<usize>) -> Item {
        Item { start, end, thread: 0, parent }
    }

    /// No two items on one lane of one thread partly overlap.
    fn check(items: &[Item], placed: &[Placed]) {
        for (i, a) in items.iter().enumerate() {
            for (j, b) in items.iter().enumerate().skip(i + 1) {
                if a.thread != b.thread || placed[i].lane != placed[j].lane {
                    continue;
                }
                let nested = (a.start <= b.start && b.end <= a.end) || (b.start <= a.start && a.end <= b.end);
                let disjoint = a.end <= b.start || b.end <= a.start;
                assert!(nested || disjoint, "{a:?} and {b:?} partly overlap on lane {}", placed[i].lane);
                if !disjoint {
                    assert!(is_ancestor(items, i, j) || is_ancestor(items, j, i), "{a:?} and {b:?} nest unrelated");
                }
            }
        }
    }

    #[test]
    fn nested_spans_share_a_lane_and_overlapping_ones_do_not() {
        // tick [0,100] > quote [10,90] > fetch a [20,60], fetch b [30,70] (overlaps a), c [60,80].
        let items = [
            item(0, 100, None),
            item(10, 90, Some(0)),
            item(20, 60, Some(1)),
            item(30, 70, Some(1)),
            item(60, 80, Some(1)),
        ];
        let placed = assign(&items);
        check(&items, &placed);
        let lanes: Vec<u32> = placed.iter().map(|p| p.lane).collect();
        assert_eq!(lanes, [0, 0, 0, 1, 0]);
        assert_eq!(placed[2].enclosing, Some(1));
        assert_eq!(placed[3].enclosing, None, "alone on its lane");
        assert_eq!(placed[4].enclosing, Some(1), "after a ended, c nests in quote again");
    }

    #[test]
    fn a_sibling_spanning_another_does_not_become_its_parent() {
        // quote [0,100] > fetch a [10,90], fetch b [20,80]: b lies within a but is its sibling.
        let items = [item(0, 100, None), item(10, 90, Some(0)), item(20, 80, Some(0)), item(30, 40, Some(2))];
        let placed = assign(&items);
        check(&items, &placed);
        assert_eq!(placed.iter().map(|p| p.lane).collect::<Vec<_>>(), [0, 0, 1, 1]);
        assert_eq!(placed[3].enclosing, Some(2), "b's child nests in b on b's lane");
    }

    #[test]
    fn equal_intervals_nest_parent_first_and_touching_ones_share_a_lane() {
        let items = [item(5, 5, Some(3)), item(0, 5, None), item(5, 9, None), item(0, 5, Some(1))];
        let placed = assign(&items);
        check(&items, &placed);
        assert!(placed.iter().all(|p| p.lane == 0), "{placed:?}");
        assert_eq!(placed[3].enclosing, Some(1), "the child of an equal parent nests in it");
        assert_eq!(placed[2].enclosing, None, "what starts where another ends follows it");
        assert_eq!(placed[0].enclosing, Some(3), "a zero-length item nests in its parent ending where it is");
    }

    #[test]
    fn many_random_intervals_never_partly_overlap_on_a_lane() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let items: Vec<Item> = (0..400)
            .map(|i| {
                let start = next() % 1000;
                let len = next() % 200;
                Item { start, end: start + len, thread: (next() % 3) as u32, parent: (i > 0).then_some(i / 2) }
            })
            .collect();
        let placed = assign(&items);
        check(&items, &placed);
    }
}

//! Guard-trip reasons: the process's reason table, with a cardinality cap per measurement window.
//!
//! The table is a fixed lock-free [`ReasonTable`] (see `reasons` for the algorithm and its
//! invariants): past the cap, trips count under `other` and the overflow is counted, so a bug that
//! puts ids in reasons cannot grow memory or the exposition without bound. `reset` starts a new
//! cap window. Limit: names from earlier windows keep their slots, so after windows totalling more
//! than 512 distinct reasons new reasons fold into `other` (the table is bounded, by design).

use super::lockfree::reasons::ReasonTable;

/// The slots of the process's table: distinct reasons over the process's life. The cap is at most
/// half of them.
const SLOTS: usize = 512;

/// The process's reason table.
static TABLE: ReasonTable<SLOTS> = ReasonTable::new();

/// Sets the label cardinality cap (clamped to `1..=256`).
pub(crate) fn set_cap(cap: usize) {
    TABLE.set_cap(cap);
}

/// The label cardinality cap in force.
pub(crate) fn cap() -> usize {
    TABLE.cap()
}

/// Counts one label (of any kind) refused by the cap.
pub(crate) fn count_overflow() {
    TABLE.count_overflow();
}

/// Labels refused by the cap so far.
pub(crate) fn overflow() -> u64 {
    TABLE.overflow()
}

/// Starts a new cap window (on `reset`): every reason must reserve a place again.
pub(crate) fn reset() {
    TABLE.reset();
}

/// Counts one trip of `reason`.
pub(crate) fn trip(reason: &str) {
    TABLE.trip(reason);
}

/// Every reason with its count (zero counts included), `other` last if used; sorted by reason.
pub(crate) fn guard_trips() -> Vec<(String, u64)> {
    TABLE.guard_trips()
}

#[cfg(test)]
mod tests {
    use super::ReasonTable;

    /// The cap, its windows and `other`, one trip at a time (the loom model in `tests/loom.rs`
    /// checks the same invariants under concurrency).
    #[test]
    fn cap_per_window() {
        let t = ReasonTable::<8>::new();
        assert_eq!(t.cap(), 4, "the default cap is clamped to half the slots");
        t.set_cap(2);
        for r in ["a", "b", "a", "c", "other"] {
            t.trip(r);
        }
        assert_eq!(t.check_invariants(), 5);
        let trips = t.guard_trips();
        assert_eq!(trips, [("a".to_owned(), 2), ("b".to_owned(), 1), ("other".to_owned(), 2)]);
        assert_eq!(t.overflow(), 1, "`c` overflowed; `other` itself is no overflow");
        t.reset();
        // A new window: `c` gets a place, `a` (from the old window) must reserve again and is refused.
        for r in ["c", "b", "a"] {
            t.trip(r);
        }
        assert_eq!(t.check_invariants(), 8);
        let trips = t.guard_trips();
        let of = |r: &str| trips.iter().find(|(n, _)| n == r).map_or(0, |(_, n)| *n);
        assert_eq!((of("a"), of("b"), of("c"), of("other")), (2, 2, 1, 3));
        // Past the cap of a window, and past the table: both fold into `other`.
        t.set_cap(4);
        t.reset();
        for i in 0..10 {
            t.trip(&format!("r{i}"));
        }
        assert_eq!(t.check_invariants(), 18);
        assert_eq!(t.guard_trips().len(), 3 + 4 + 1, "four of ten new reasons fit under the cap");
        t.reset();
        for i in 0..4 {
            t.trip(&format!("s{i}"));
        }
        assert_eq!(t.check_invariants(), 22);
        assert_eq!(t.guard_trips().len(), 8 + 1, "one of four new reasons fits in the table");
        assert_eq!(t.overflow(), 1 + 1 + 6 + 3);
    }
}

//! The guard-trip reason table: a fixed lock-free open-addressing table of named counters with a
//! cardinality cap per measurement window.
//!
//! A reason is looked up by hash with linear probing; a new reason claims an empty slot with one
//! compare-and-swap on the slot's name pointer (its name is allocated once, on that first trip).
//! Names are never freed while the table lives (readers may hold pointers to them), so a slot,
//! once named, keeps its name for good. Past the cap, trips count under `other` and the overflow
//! is counted, so a bug that puts ids in reasons cannot grow memory or the exposition without
//! bound.
//!
//! The cap applies per window (`reset` starts a new one). `window` packs the current window
//! number (high 32 bits, starts at 1) and the places used under the cap in it (low 32 bits) in one
//! word, so that a place is always reserved in, and given back to, the window it was counted in.
//! Each slot records the window in which it last got a place (0: none yet). A trip of a named
//! reason whose slot has no place in the current window *activates* it: it reserves a place
//! (compare-and-swap on `window`, refused at the cap), then moves the slot's window to the
//! reserved one with a compare-and-swap; if another trip of the same reason won that race, it
//! gives its place back. A new reason reserves a place *before* naming a slot, so a reason past
//! the cap never takes a slot. `reset` bumps the window number and zeroes the places used: a
//! reason from an earlier window that does not recur costs nothing in the new one.
//!
//! Invariants (checked by `check_invariants` in the loom model of `tests/loom.rs`):
//! - at most `cap` slots hold a place in any window, and once trips are done, the places used in
//!   the current window are exactly the slots that hold one (no place is lost or counted twice);
//! - every trip is counted once: in its reason's slot or in `other`;
//! - a reason occupies at most one slot (all trips of a reason probe the same sequence of
//!   slots, and a slot's name never changes once set);
//! - a slot's window only moves forward, and only a named slot has one.
//!
//! Counts are monotonic; what a window counted is the baseline difference taken by `summary`.
//!
//! Limits:
//! - names from earlier windows keep their slots, so after windows totalling more than `SLOTS`
//!   distinct reasons, new reasons fold into `other` (the table is bounded, by design);
//! - the cap is meant to stay fixed within a window: lowering it does not evict places already
//!   used;
//! - near the cap, a trip may count under `other` although its reason ends up with a place: a
//!   place is reserved before it is taken, so a reservation that a concurrent trip is about to
//!   use for the same reason (or to give back, having lost an activation race) can make the cap
//!   read as reached. Totals stay exact: such a racing trip is only attributed to `other`.

use std::ptr;

use crate::sync::{
    AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed},
};

/// The cap of a new table, if the table has room for it (the cap is at most half the slots).
const DEFAULT_CAP: usize = 64;
/// The places used under the cap, in `window`.
const USED_MASK: u64 = 0xffff_ffff;

/// One reason: its name (null until claimed), count and window.
struct Slot {
    name: AtomicPtr<String>,
    count: AtomicU64,
    /// The window in which this reason holds a place under the cap (0: none yet).
    window: AtomicU32,
}

impl Slot {
    crate::sync::const_fn! {
        /// An unnamed slot.
        fn new() -> Self {
            Slot { name: AtomicPtr::new(ptr::null_mut()), count: AtomicU64::new(0), window: AtomicU32::new(0) }
        }
    }
}

/// Counts per reason for up to `SLOTS` reasons, at most `cap` of them per window.
pub(crate) struct ReasonTable<const SLOTS: usize> {
    slots: [Slot; SLOTS],
    /// Trips past the cap, of reasons with no slot left, and of the reason `other` itself.
    other: AtomicU64,
    /// The current window (high 32 bits, starts at 1) and the places used under the cap in it
    /// (low 32 bits).
    window: AtomicU64,
    cap: AtomicUsize,
    /// Labels refused by the cap: trips counted under `other` and the caller's own overflows.
    overflow: AtomicU64,
}

impl<const SLOTS: usize> ReasonTable<SLOTS> {
    crate::sync::const_fn! {
        /// An empty table in window 1, with the default cap (or half the slots if fewer).
        pub(crate) fn new() -> Self {
            const { assert!(SLOTS >= 2, "a table needs room for a cap of at least 1") };
            ReasonTable {
                slots: crate::sync::array![Slot::new(); SLOTS],
                other: AtomicU64::new(0),
                window: AtomicU64::new(1 << 32),
                cap: AtomicUsize::new(if DEFAULT_CAP < SLOTS / 2 { DEFAULT_CAP } else { SLOTS / 2 }),
                overflow: AtomicU64::new(0),
            }
        }
    }

    /// Sets the cap, clamped to `1..=SLOTS / 2`.
    pub(crate) fn set_cap(&self, cap: usize) {
        self.cap.store(cap.clamp(1, SLOTS / 2), Relaxed);
    }

    /// The cardinality cap in force.
    pub(crate) fn cap(&self) -> usize {
        self.cap.load(Relaxed)
    }

    /// Counts one label refused by the cap.
    pub(crate) fn count_overflow(&self) {
        self.overflow.fetch_add(1, Relaxed);
    }

    /// Labels refused by the cap so far.
    pub(crate) fn overflow(&self) -> u64 {
        self.overflow.load(Relaxed)
    }

    /// Reserves a place under the cap in the current window; returns the window.
    fn reserve(&self) -> Option<u32> {
        let mut v = self.window.load(Relaxed);
        loop {
            if (v & USED_MASK) as usize >= self.cap() {
                return None;
            }
            match self.window.compare_exchange_weak(v, v + 1, Relaxed, Relaxed) {
                Ok(_) => return Some((v >> 32) as u32),
                Err(x) => v = x,
            }
        }
    }

    /// Gives back a place reserved in `window` (nothing if a reset started a new window since).
    fn unreserve(&self, window: u32) {
        let mut v = self.window.load(Relaxed);
        while (v >> 32) as u32 == window && v & USED_MASK > 0 {
            match self.window.compare_exchange_weak(v, v - 1, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(x) => v = x,
            }
        }
    }

    /// Makes sure `slot` (already named) holds a place under the cap in the current window;
    /// false if the cap is reached.
    fn activate(&self, slot: &Slot) -> bool {
        loop {
            let w = slot.window.load(Relaxed);
            if w == (self.window.load(Relaxed) >> 32) as u32 {
                return true;
            }
            let Some(g) = self.reserve() else { return false };
            if slot.window.compare_exchange(w, g, Relaxed, Relaxed).is_ok() {
                return true;
            }
            // Another trip of the same reason activated it first.
            self.unreserve(g);
        }
    }

    /// Starts a new cap window (on `reset`): every reason must reserve a place again.
    pub(crate) fn reset(&self) {
        let next = |v: u64| Some(u64::from(((v >> 32) as u32).wrapping_add(1).max(1)) << 32);
        let _ = self.window.fetch_update(Relaxed, Relaxed, next);
    }

    /// Counts a trip under `other`, as an overflow.
    fn count_other(&self) {
        self.other.fetch_add(1, Relaxed);
        self.count_overflow();
    }

    /// Counts a trip on an already named slot, under the cap of the current window.
    fn count_in(&self, slot: &Slot) {
        if self.activate(slot) {
            slot.count.fetch_add(1, Relaxed);
        } else {
            self.count_other();
        }
    }

    /// Counts one trip of `reason`.
    pub(crate) fn trip(&self, reason: &str) {
        if reason == "other" {
            self.other.fetch_add(1, Relaxed);
            return;
        }
        let start = hash(reason) % SLOTS;
        for i in 0..SLOTS {
            let slot = &self.slots[(start + i) % SLOTS];
            let p = slot.name.load(Acquire);
            if p.is_null() {
                // Reserve a place under the cap before claiming the slot.
                let Some(g) = self.reserve() else {
                    self.count_other();
                    return;
                };
                let mine = Box::into_raw(Box::new(reason.to_owned()));
                match slot.name.compare_exchange(ptr::null_mut(), mine, AcqRel, Acquire) {
                    Ok(_) => {
                        // A concurrent trip of the same reason may have activated the slot already.
                        if slot.window.compare_exchange(0, g, Relaxed, Relaxed).is_err() {
                            self.unreserve(g);
                        }
                        self.count_in(slot);
                        return;
                    }
                    Err(winner) => {
                        self.unreserve(g);
                        // SAFETY: `mine` lost the race and was never shared.
                        drop(unsafe { Box::from_raw(mine) });
                        // SAFETY: published names are never freed while the table lives.
                        if unsafe { &*winner } == reason {
                            self.count_in(slot);
                            return;
                        }
                    }
                }
            } else if
            // SAFETY: published names are never freed while the table lives.
            unsafe { &*p } == reason {
                self.count_in(slot);
                return;
            }
        }
        self.count_other();
    }

    /// Every reason with its count (zero counts included), `other` last if used; sorted by reason.
    pub(crate) fn guard_trips(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .slots
            .iter()
            .filter_map(|s| {
                let p = s.name.load(Acquire);
                // SAFETY: published names are never freed while the table lives.
                (!p.is_null()).then(|| (unsafe { &*p }.clone(), s.count.load(Relaxed)))
            })
            .collect();
        out.sort();
        let other = self.other.load(Relaxed);
        if other > 0 {
            out.push(("other".to_owned(), other));
        }
        out
    }

    /// Asserts the invariants of the module docs, once no trip or reset is running (and the cap
    /// unchanged since the current window began); returns the trips counted, `other` included.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> u64 {
        let v = self.window.load(Relaxed);
        let (current, used) = ((v >> 32) as u32, (v & USED_MASK) as usize);
        assert!(used <= self.cap(), "{used} places used in window {current}, cap {}", self.cap());
        let mut names = Vec::new();
        let mut windows = Vec::new();
        let mut counted = self.other.load(Relaxed);
        for s in &self.slots {
            let (p, w, n) = (s.name.load(Acquire), s.window.load(Relaxed), s.count.load(Relaxed));
            counted += n;
            assert!(w <= current, "a slot holds a place in window {w}, after the current {current}");
            if p.is_null() {
                assert_eq!((w, n), (0, 0), "an unnamed slot has a window or a count");
                continue;
            }
            // SAFETY: published names are never freed while the table lives.
            names.push(unsafe { &*p }.as_str());
            if w != 0 {
                windows.push(w);
            }
        }
        let active = windows.iter().filter(|&&w| w == current).count();
        assert_eq!(active, used, "slots holding a place in window {current} != places used");
        for &w in &windows {
            let n = windows.iter().filter(|&&x| x == w).count();
            assert!(n <= self.cap(), "{n} slots hold a place in window {w}, cap {}", self.cap());
        }
        names.sort_unstable();
        let distinct = names.len();
        names.dedup();
        assert_eq!(names.len(), distinct, "a reason occupies two slots");
        counted
    }
}

impl<const SLOTS: usize> Drop for ReasonTable<SLOTS> {
    fn drop(&mut self) {
        // `&mut self`: no trip or reader is running, nor can one start.
        for s in &self.slots {
            let p = s.name.load(Relaxed);
            if !p.is_null() {
                // SAFETY: allocated by `trip` with `Box::into_raw` and published once; nothing can
                // reach it any more.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// The probe start of a reason: FNV-1a (short strings, no allocation, stable).
pub(crate) fn hash(s: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as usize
}

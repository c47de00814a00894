//! Guard-trip reasons: a fixed lock-free table with a cardinality cap.
//!
//! A reason is looked up by hash with linear probing; a new reason claims an empty slot with one
//! compare-and-swap (its name is allocated once, on that first trip). Past the cap, trips count
//! under `other` and the overflow is counted, so a bug that puts ids in reasons cannot grow
//! memory or the exposition without bound.
//!
//! The cap applies per measurement window (`reset` starts a new one). Names are never freed
//! (readers may hold pointers to them), so a slot keeps its name for good; what a reset frees is
//! the cap budget: each slot records the window in which it was last counted under the cap, and
//! the first trip of a reason in a new window reserves a place under the cap again. A reason from
//! an earlier window that does not recur costs nothing in the new one. Counts are monotonic; the
//! window's counts are the baseline difference taken by `summary`. Limit: names from earlier
//! windows keep their slots, so after windows totalling more than 512 distinct reasons new
//! reasons fold into `other` (the table is bounded, by design).

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

const SLOTS: usize = 512;
const MAX_CAP: usize = SLOTS / 2;

struct Slot {
    name: AtomicPtr<String>,
    count: AtomicU64,
    /// The window in which this reason holds a place under the cap (0: none yet).
    window: AtomicU32,
}

static TABLE: [Slot; SLOTS] =
    [const { Slot { name: AtomicPtr::new(ptr::null_mut()), count: AtomicU64::new(0), window: AtomicU32::new(0) } };
        SLOTS];
static OTHER: AtomicU64 = AtomicU64::new(0);
/// The current window (high 32 bits, starts at 1) and the places used under the cap in it (low
/// 32 bits), in one word so that a reservation always belongs to the window it was counted in.
static WINDOW: AtomicU64 = AtomicU64::new(1 << 32);
static CAP: AtomicUsize = AtomicUsize::new(64);
static OVERFLOW: AtomicU64 = AtomicU64::new(0);

pub(crate) fn set_cap(cap: usize) {
    CAP.store(cap.clamp(1, MAX_CAP), Relaxed);
}

/// The label cardinality cap in force.
pub(crate) fn cap() -> usize {
    CAP.load(Relaxed)
}

pub(crate) fn count_overflow() {
    OVERFLOW.fetch_add(1, Relaxed);
}

pub(crate) fn overflow() -> u64 {
    OVERFLOW.load(Relaxed)
}

const USED_MASK: u64 = 0xffff_ffff;

/// Reserves a place under the cap in the current window; returns the window.
fn reserve() -> Option<u32> {
    let mut v = WINDOW.load(Relaxed);
    loop {
        if (v & USED_MASK) as usize >= cap() {
            return None;
        }
        match WINDOW.compare_exchange_weak(v, v + 1, Relaxed, Relaxed) {
            Ok(_) => return Some((v >> 32) as u32),
            Err(x) => v = x,
        }
    }
}

/// Gives back a place reserved in `window` (nothing if a reset started a new window since).
fn unreserve(window: u32) {
    let mut v = WINDOW.load(Relaxed);
    while (v >> 32) as u32 == window && v & USED_MASK > 0 {
        match WINDOW.compare_exchange_weak(v, v - 1, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(x) => v = x,
        }
    }
}

/// Makes sure `slot` (already named) holds a place under the cap in the current window; false
/// if the cap is reached.
fn activate(slot: &Slot) -> bool {
    loop {
        let w = slot.window.load(Relaxed);
        if w == (WINDOW.load(Relaxed) >> 32) as u32 {
            return true;
        }
        let Some(g) = reserve() else { return false };
        if slot.window.compare_exchange(w, g, Relaxed, Relaxed).is_ok() {
            return true;
        }
        // Another trip of the same reason activated it first.
        unreserve(g);
    }
}

/// Starts a new cap window (on `reset`): every reason must reserve a place again.
pub(crate) fn reset() {
    let next = |v: u64| Some(u64::from(((v >> 32) as u32).wrapping_add(1).max(1)) << 32);
    let _ = WINDOW.fetch_update(Relaxed, Relaxed, next);
}

/// Counts a trip on an already named slot, under the cap of the current window.
fn count_in(slot: &Slot) {
    if activate(slot) {
        slot.count.fetch_add(1, Relaxed);
    } else {
        OTHER.fetch_add(1, Relaxed);
        count_overflow();
    }
}

fn hash(s: &str) -> usize {
    // FNV-1a: short strings, no allocation, stable.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as usize
}

/// Counts one trip of `reason`.
pub(crate) fn trip(reason: &str) {
    if reason == "other" {
        OTHER.fetch_add(1, Relaxed);
        return;
    }
    let start = hash(reason) % SLOTS;
    for i in 0..SLOTS {
        let slot = &TABLE[(start + i) % SLOTS];
        let p = slot.name.load(Acquire);
        if p.is_null() {
            // Reserve a place under the cap before claiming the slot.
            let Some(g) = reserve() else {
                OTHER.fetch_add(1, Relaxed);
                count_overflow();
                return;
            };
            let mine = Box::into_raw(Box::new(reason.to_owned()));
            match slot.name.compare_exchange(ptr::null_mut(), mine, AcqRel, Acquire) {
                Ok(_) => {
                    // A concurrent trip of the same reason may have activated the slot already.
                    if slot.window.compare_exchange(0, g, Relaxed, Relaxed).is_err() {
                        unreserve(g);
                    }
                    count_in(slot);
                    return;
                }
                Err(winner) => {
                    unreserve(g);
                    // SAFETY: `mine` lost the race and was never shared.
                    drop(unsafe { Box::from_raw(mine) });
                    // SAFETY: published names are never freed.
                    if unsafe { &*winner } == reason {
                        count_in(slot);
                        return;
                    }
                }
            }
        } else if
        // SAFETY: published names are never freed.
        unsafe { &*p } == reason {
            count_in(slot);
            return;
        }
    }
    OTHER.fetch_add(1, Relaxed);
    count_overflow();
}

/// Every reason with its count (zero counts included), `other` last if used; sorted by reason.
pub(crate) fn guard_trips() -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = TABLE
        .iter()
        .filter_map(|s| {
            let p = s.name.load(Acquire);
            // SAFETY: published names are never freed.
            (!p.is_null()).then(|| (unsafe { &*p }.clone(), s.count.load(Relaxed)))
        })
        .collect();
    out.sort();
    let other = OTHER.load(Relaxed);
    if other > 0 {
        out.push(("other".to_owned(), other));
    }
    out
}

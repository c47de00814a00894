//! Guard-trip reasons: a fixed lock-free table with a cardinality cap.
//!
//! A reason is looked up by hash with linear probing; a new reason claims an empty slot with one
//! compare-and-swap (its name is allocated once, on that first trip). Past the cap, trips count
//! under `other` and the overflow is counted, so a bug that puts ids in reasons cannot grow
//! memory or the exposition without bound.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};

const SLOTS: usize = 512;
const MAX_CAP: usize = SLOTS / 2;

struct Slot {
    name: AtomicPtr<String>,
    count: AtomicU64,
}

static TABLE: [Slot; SLOTS] =
    [const { Slot { name: AtomicPtr::new(ptr::null_mut()), count: AtomicU64::new(0) } }; SLOTS];
static OTHER: AtomicU64 = AtomicU64::new(0);
static USED: AtomicUsize = AtomicUsize::new(0);
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
            if USED.fetch_add(1, Relaxed) >= cap() {
                USED.fetch_sub(1, Relaxed);
                OTHER.fetch_add(1, Relaxed);
                count_overflow();
                return;
            }
            let mine = Box::into_raw(Box::new(reason.to_owned()));
            match slot.name.compare_exchange(ptr::null_mut(), mine, AcqRel, Acquire) {
                Ok(_) => {
                    slot.count.fetch_add(1, Relaxed);
                    return;
                }
                Err(winner) => {
                    USED.fetch_sub(1, Relaxed);
                    // SAFETY: `mine` lost the race and was never shared.
                    drop(unsafe { Box::from_raw(mine) });
                    // SAFETY: published names are never freed.
                    if unsafe { &*winner } == reason {
                        slot.count.fetch_add(1, Relaxed);
                        return;
                    }
                }
            }
        } else if
        // SAFETY: published names are never freed.
        unsafe { &*p } == reason {
            slot.count.fetch_add(1, Relaxed);
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

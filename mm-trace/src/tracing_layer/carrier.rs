//! Carriers: what takes a tick to the threads its spans may run on, without an atomic operation
//! per span.
//!
//! A span made inside a tick with no `tracing` parent in it (a library's span called from a
//! `#[stage]`, say) may be entered later on a thread where the tick is not installed (a task
//! spawned with `tokio::spawn`, work handed to a pool), and must then join the tick there. For
//! that it keeps a reference to the tick's context. Taking one `Arc` clone per span for this
//! (two atomic read-modify-writes, one at the make and one at the close) measured about 20 ns a
//! span in peer-bench, most of the layer's cost inside a tick, for something most spans never use.
//!
//! Instead each thread keeps one [`Carrier`] for the tick it makes spans in, holding the tick's
//! context once, and the spans it makes take a reference to the carrier with biased reference
//! counting: the thread that made the carrier (its owner) counts the references it hands out in
//! its own thread-local [`Held`], other threads give theirs back through an atomic counter in the
//! carrier. When the owner moves on to another tick (or exits) it merges its count into the
//! atomic one; whoever brings the merged count to zero frees the carrier. A span made and closed
//! on the thread that runs its tick, the common case, touches no atomic for it, nor the carrier
//! itself: only its thread's `Held`, a line the layer reads anyway.

use std::ptr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::*};

use crate::collector::bridge::{self, TickContext};

/// Set in [`Carrier::shared`] once the owner merged its count: the carrier is freed when the
/// counter reads exactly this.
const MERGED: i64 = 1 << 62;

/// One thread's hold on one tick's context, shared by the spans the thread makes in that tick.
pub(super) struct Carrier {
    ctx: TickContext,
    /// References given back on other threads or after the merge (negative), plus [`MERGED`]
    /// and the owner's count once merged.
    shared: AtomicI64,
    /// The tick (read only in tests, to tell carriers apart).
    #[cfg_attr(not(test), allow(dead_code, reason = "read by the tests' free log"))]
    tick_id: u64,
}

impl Carrier {
    /// The tick's context, with `parent` as the parent of what runs under it.
    pub(super) fn context(&self, parent: u32) -> TickContext {
        self.ctx.with_parent(parent)
    }
}

/// A thread's current carrier and the references to it this thread handed out (kept in its
/// thread-local stack), and the thread's token.
#[derive(Debug)]
pub(super) struct Held {
    carrier: *mut Carrier,
    /// The tick of `carrier`.
    tick_id: u64,
    /// References to `carrier` not given back: this thread's own, and its slots'.
    biased: u32,
    token: u64,
}

impl Default for Held {
    fn default() -> Held {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        // Once per thread; tokens are never reused (the span table tells its regions' owners
        // apart by them).
        Held { carrier: ptr::null_mut(), tick_id: 0, biased: 0, token: NEXT.fetch_add(1, Relaxed) }
    }
}

impl Held {
    /// This thread's token.
    #[inline]
    pub(super) fn token(&self) -> u64 {
        self.token
    }

    /// A reference to this thread's carrier for tick `tick_id` (made on first use), for a span
    /// made here in that tick. Give it back with [`release`].
    #[inline]
    pub(super) fn acquire(&mut self, tick_id: u64) -> *mut Carrier {
        if self.carrier.is_null() || self.tick_id != tick_id {
            self.renew(tick_id);
        }
        self.biased += 1;
        self.carrier
    }

    /// Gives up this thread's carrier and takes one for the tick installed here.
    #[cold]
    #[inline(never)]
    fn renew(&mut self, tick_id: u64) {
        self.retire();
        let carrier = Carrier { ctx: bridge::carry(None), shared: AtomicI64::new(0), tick_id };
        self.carrier = Box::into_raw(Box::new(carrier));
        (self.tick_id, self.biased) = (tick_id, 1);
    }

    /// Gives up this thread's own reference to its carrier and merges the count (on moving to
    /// another tick, and at thread exit): references given back from now on go to the carrier's
    /// counter, on any thread.
    pub(super) fn retire(&mut self) {
        let c = std::mem::replace(&mut self.carrier, ptr::null_mut());
        if c.is_null() {
            return;
        }
        let owned = i64::from(std::mem::take(&mut self.biased)) - 1;
        // SAFETY: held by this thread's reference until the merge below.
        let carrier = unsafe { &*c };
        // AcqRel: the thread that frees sees every use of the carrier before each release.
        let now = carrier.shared.fetch_add(owned + MERGED, AcqRel) + owned + MERGED;
        if now == MERGED {
            // SAFETY: the count is zero: no slot refers to it and no thread holds it.
            drop(unsafe { Box::from_raw(c) });
        }
    }
}

/// Gives back a span's reference to a carrier, on a thread whose `Held` is `held` (`None`: a
/// thread without one, e.g. one that is exiting).
///
/// # Safety
/// `c` came from [`Held::acquire`], and this reference was not given back before.
#[inline]
pub(super) unsafe fn release(c: *mut Carrier, held: Option<&mut Held>) {
    // The carrier this thread holds (so it is its owner, before merging; it cannot be another
    // carrier at the same address: `c` is alive until this reference is given back). Its own
    // reference keeps the count above zero.
    if let Some(held) = held
        && held.carrier == c
    {
        held.biased -= 1;
        return;
    }
    // SAFETY: as the caller promises.
    unsafe { release_shared(c) }
}

/// Gives back a reference on a thread other than the owner, or after the owner merged.
///
/// # Safety
/// As for [`release`].
#[cold]
#[inline(never)]
unsafe fn release_shared(c: *mut Carrier) {
    // SAFETY: the caller's reference keeps the carrier alive until the count below.
    let carrier = unsafe { &*c };
    if carrier.shared.fetch_sub(1, AcqRel) - 1 == MERGED {
        // SAFETY: merged, and this was the last reference.
        drop(unsafe { Box::from_raw(c) });
    }
}

/// Carriers freed in this test process, by tick id (to check each is freed exactly once).
#[cfg(test)]
static FREED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

#[cfg(test)]
impl Drop for Carrier {
    fn drop(&mut self) {
        FREED.lock().unwrap().push(self.tick_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tick ids no real tick has (ticks count up from 1), unique per test.
    const BASE: u64 = 1 << 60;

    fn freed(tick_id: u64) -> usize {
        FREED.lock().unwrap().iter().filter(|&&t| t == tick_id).count()
    }

    #[test]
    fn the_owner_alone_frees_on_moving_on_once_its_spans_closed() {
        let (t1, t2) = (BASE + 1, BASE + 2);
        let mut held = Held::default();
        let a = held.acquire(t1);
        let b = held.acquire(t1);
        assert_eq!(a, b, "one carrier per tick on a thread");
        // SAFETY: each reference given back once, on the owner.
        unsafe { release(a, Some(&mut held)) };
        // SAFETY: as above.
        unsafe { release(b, Some(&mut held)) };
        assert_eq!(freed(t1), 0, "the owner's own reference keeps it");
        let c = held.acquire(t2);
        assert_eq!(freed(t1), 1, "a new tick, a new carrier; the old one merged with no reference left: freed");
        // SAFETY: `c` is referenced.
        assert_eq!(unsafe { (*c).tick_id }, t2);
        // SAFETY: once.
        unsafe { release(c, Some(&mut held)) };
        held.retire();
        assert_eq!(freed(t2), 1);
    }

    #[test]
    fn references_given_back_after_the_merge_or_on_other_threads_free_it_once() {
        let (t1, t2, t3) = (BASE + 11, BASE + 12, BASE + 13);
        let mut held = Held::default();
        let spans: Vec<usize> = (0..64).map(|_| held.acquire(t1) as usize).collect();
        // Half given back on other threads before the owner merges, half after (some on the
        // owner, after its merge: the atomic path).
        let (before, after) = spans.split_at(32);
        let remote: Vec<_> = before
            .chunks(8)
            .map(|chunk| {
                let chunk = chunk.to_vec();
                // SAFETY: each reference given back once.
                std::thread::spawn(move || chunk.into_iter().for_each(|c| unsafe { release(c as *mut Carrier, None) }))
            })
            .collect();
        remote.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(freed(t1), 0, "the owner still holds it");
        let _ = held.acquire(t2); // moves on: merges t1 with 32 references left
        let (mine, theirs) = after.split_at(8);
        for &c in mine {
            // SAFETY: once; on the owner thread, after its merge.
            unsafe { release(c as *mut Carrier, Some(&mut held)) };
        }
        assert_eq!(freed(t1), 0);
        let theirs = theirs.to_vec();
        std::thread::spawn(move || {
            // Another thread's hold: not the carrier's owner.
            let mut other = Held::default();
            for c in theirs {
                // SAFETY: once, on a thread that does not own the carrier.
                unsafe { release(c as *mut Carrier, Some(&mut other)) };
            }
        })
        .join()
        .unwrap();
        assert_eq!(freed(t1), 1, "the last reference frees it, once");
        // The t2 carrier: one reference out, given back after the owner moved on again.
        let c = held.acquire(t2);
        let d = held.acquire(t3);
        assert_eq!(freed(t2), 0);
        // SAFETY: the t2 reference just taken, and the one `acquire(t2)` above left out.
        unsafe { release(c, Some(&mut held)) };
        // SAFETY: as above (the one left out).
        unsafe { release(c, Some(&mut held)) };
        assert_eq!(freed(t2), 1);
        held.retire();
        assert_eq!(freed(t3), 0, "a span's reference is still out");
        // SAFETY: once, after the owner retired it.
        unsafe { release(d, Some(&mut held)) };
        assert_eq!(freed(t3), 1);
    }
}

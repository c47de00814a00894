//! A thread's ring of kept traces: one producer (the thread holding the slot), one consumer (the
//! trace worker), no compare-and-swap and no cache line written by both.
//!
//! A kept tick writes its trace into the next free slot and publishes it by storing the new
//! `tail` (`Release`); the worker, once a millisecond or so, reads the slots from `head` to
//! `tail` (`Acquire`), copies them out, and stores the new `head` (`Release`). The producer
//! reads `head` (`Acquire`) only when its cached copy says the ring is full. So per kept tick the
//! tick thread only stores into lines the worker at most read; the lines the worker writes (its
//! `head`) are read once per worker pass, not once per tick, which keeps cross-core cache misses
//! off the hot path. The slots (and the span buffers in them) are reused: no allocation once warm.
//!
//! A full ring (the worker is behind by `N` traces) refuses the trace: the caller counts it as
//! dropped; the tick never waits. Memory is `N` slots per thread slot, allocated on the first
//! kept trace.
//!
//! Invariants (checked by the loom model in `tests/loom.rs`): the consumer sees every published
//! trace exactly once, in order, with everything the producer wrote into it; the producer never
//! writes a slot the consumer has not finished reading.

use std::ptr;

use crate::sync::{
    AtomicPtr, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
    UnsafeCell,
};

/// What the producer writes, alone on its (pair of) cache lines.
#[repr(align(128))]
struct ProducerLine {
    /// Entries published so far.
    tail: AtomicUsize,
    /// The consumer's `head` as the producer last read it.
    seen_head: AtomicUsize,
}

/// What the consumer writes, alone on its (pair of) cache lines.
#[repr(align(128))]
struct ConsumerLine {
    /// Entries consumed so far.
    head: AtomicUsize,
}

/// A single-producer, single-consumer ring of `N` reusable `T` slots.
pub(crate) struct TraceRing<T, const N: usize> {
    /// `N` slots, allocated by the producer on first use and published with `Release`.
    slots: AtomicPtr<UnsafeCell<T>>,
    producer: ProducerLine,
    consumer: ConsumerLine,
}

// SAFETY: slots are written by the one producer and read by the one consumer, never at the same
// time (the indices hand each slot over with Release/Acquire), so `T` must be `Send`.
unsafe impl<T: Send, const N: usize> Sync for TraceRing<T, N> {}
// SAFETY: as above.
unsafe impl<T: Send, const N: usize> Send for TraceRing<T, N> {}

impl<T, const N: usize> TraceRing<T, N> {
    crate::sync::const_fn! {
        /// An empty ring (no slots allocated yet).
        pub(crate) fn new() -> Self {
            TraceRing {
                slots: AtomicPtr::new(ptr::null_mut()),
                producer: ProducerLine { tail: AtomicUsize::new(0), seen_head: AtomicUsize::new(0) },
                consumer: ConsumerLine { head: AtomicUsize::new(0) },
            }
        }
    }

    /// Writes the next entry with `fill` (given the slot's previous entry, whose buffers it can
    /// reuse) and publishes it; false, without calling `fill`, if the ring is full.
    ///
    /// # Safety
    /// Only one thread at a time may push (the producer).
    pub(crate) unsafe fn push(&self, make: impl Fn() -> T, fill: impl FnOnce(&mut T)) -> bool {
        let mut slots = self.slots.load(Relaxed);
        if slots.is_null() {
            slots = self.allocate(make);
        }
        let tail = self.producer.tail.load(Relaxed);
        if tail.wrapping_sub(self.producer.seen_head.load(Relaxed)) >= N {
            let head = self.consumer.head.load(Acquire);
            self.producer.seen_head.store(head, Relaxed);
            if tail.wrapping_sub(head) >= N {
                return false;
            }
        }
        // SAFETY: `slots` holds `N` cells; the consumer has finished with this one (its `head`,
        // read with Acquire, is past the entry that used it last).
        let cell = unsafe { &*slots.add(tail % N) };
        // SAFETY: as above: nothing else reads or writes this slot until `tail` is published.
        cell.with_mut(|p| fill(unsafe { &mut *p }));
        self.producer.tail.store(tail.wrapping_add(1), Release);
        true
    }

    /// Asks the CPU to bring the slot the next `push` writes into its cache. A slot is reused only
    /// after `N` more kept traces (2.5 ms of 10 µs ticks at rate 1.0), long enough for it to have
    /// left the cache, and `push` reads the slot's old buffers: prefetched at the start of a tick,
    /// that read no longer waits for memory at its end. Producer only; a no-op before the first
    /// push.
    #[inline(always)]
    pub(crate) fn prefetch_next(&self) {
        let slots = self.slots.load(Relaxed);
        if !slots.is_null() {
            let slot = slots.wrapping_add(self.producer.tail.load(Relaxed) % N);
            prefetch(slot as *const u8, std::mem::size_of::<UnsafeCell<T>>());
        }
    }

    #[cold]
    fn allocate(&self, make: impl Fn() -> T) -> *mut UnsafeCell<T> {
        let slots: Box<[UnsafeCell<T>]> = (0..N).map(|_| UnsafeCell::new(make())).collect();
        let p = Box::into_raw(slots) as *mut UnsafeCell<T>;
        // Release: a consumer that sees an entry published after this sees initialised slots.
        self.slots.store(p, Release);
        p
    }

    /// Reads every published entry not read yet, oldest first; returns how many.
    ///
    /// # Safety
    /// Only one thread at a time may consume (the consumer).
    pub(crate) unsafe fn consume(&self, mut each: impl FnMut(&T)) -> usize {
        let tail = self.producer.tail.load(Acquire);
        let head = self.consumer.head.load(Relaxed);
        if head == tail {
            return 0;
        }
        // Published before any entry (Release), seen through the Acquire load of `tail`.
        let slots = self.slots.load(Acquire);
        let mut i = head;
        while i != tail {
            // SAFETY: entries `head..tail` are published and the producer does not touch their
            // slots until `head` moves past them (below).
            let cell = unsafe { &*slots.add(i % N) };
            // SAFETY: as above.
            cell.with(|p| each(unsafe { &*p }));
            i = i.wrapping_add(1);
        }
        self.consumer.head.store(tail, Release);
        tail.wrapping_sub(head)
    }
}

/// Hints the CPU to load the cache lines of `bytes` bytes at `p` (at most 8 lines). A hint only:
/// it never faults, whatever `p` is, and has no effect visible to the program.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in 0..bytes.div_ceil(64).min(8) {
        // SAFETY: `prefetcht0` is a hint: it does not fault on any address and changes no state
        // the program can observe.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                p.wrapping_add(line * 64).cast::<i8>(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

impl<T, const N: usize> Drop for TraceRing<T, N> {
    fn drop(&mut self) {
        let p = self.slots.load(Relaxed);
        if !p.is_null() {
            // SAFETY: allocated in `allocate` as a boxed slice of `N` cells, freed only here.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, N)) });
        }
    }
}

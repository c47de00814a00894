//! Where the counters of `crate::health`'s table are counted: each thread counts into its own
//! [`ThreadCounters`] (single writer: a relaxed load and store, no locked instruction), and
//! code off the tick's thread (the worker, carried work arriving late) into the process-wide
//! [`add`]. A counter's value is the sum of both, read by [`read_into`].

use std::sync::atomic::{AtomicU64, Ordering::*};

pub(crate) use crate::health::{Counter, Counts};

/// A thread's counts, written by that thread only.
pub(crate) struct ThreadCounters([AtomicU64; Counter::COUNT]);

impl Default for ThreadCounters {
    fn default() -> Self {
        ThreadCounters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl ThreadCounters {
    /// Adds `by` to counter `c` (only the thread owning these counts may call it).
    #[inline(always)]
    pub(crate) fn bump(&self, c: Counter, by: u64) {
        let a = &self.0[c as usize];
        a.store(a.load(Relaxed).wrapping_add(by), Relaxed);
    }

    /// The count of `c`, with Acquire (what the owning thread wrote before it is visible).
    pub(crate) fn get(&self, c: Counter) -> u64 {
        self.0[c as usize].load(Acquire)
    }
}

/// Process-wide counts, for code that holds no thread's counts.
static GLOBAL: [AtomicU64; Counter::COUNT] = [const { AtomicU64::new(0) }; Counter::COUNT];

/// Adds `by` to counter `c` from any thread (a locked add: never on a span's path).
pub(crate) fn add(c: Counter, by: u64) {
    GLOBAL[c as usize].fetch_add(by, Relaxed);
}

/// Adds every thread's counts and the process-wide ones into `into`.
pub(crate) fn read_into(into: &mut Counts, threads: impl Iterator<Item = &'static ThreadCounters>) {
    for t in threads {
        for (sum, a) in into.0.iter_mut().zip(&t.0) {
            *sum += a.load(Relaxed);
        }
    }
    for (sum, a) in into.0.iter_mut().zip(&GLOBAL) {
        *sum += a.load(Relaxed);
    }
}

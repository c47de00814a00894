//! Per-thread data: each thread records into a [`PerThread`] (histogram cells, counters, its
//! ring of kept traces) that only it writes, with plain relaxed loads and stores, so a span
//! costs no locked instruction and no shared cache line. Readers (the merged view, the worker)
//! walk every thread's data. Thread data is never freed: when a thread exits its slot is marked
//! free and the next new thread takes it over, keeping the counts (they are additive), so
//! nothing recorded is lost and memory is bounded by the peak number of live threads.

use std::collections::VecDeque;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};

use super::counters::ThreadCounters;
use super::keys::MAX_KEYS;
use super::lockfree::registry::{Node, Registry};
use super::lockfree::trace_ring::TraceRing;
use super::trace_record::{RawTrace, TRACE_RING};
use crate::histogram::AtomicHistogram;

/// One key's histogram in one thread.
pub(crate) struct Cell {
    pub(crate) hist: AtomicHistogram,
    /// Async stage futures dropped before completion.
    pub(crate) cancelled: AtomicU64,
    /// Spans whose function returned `Err` (they are in the histogram too).
    pub(crate) errors: AtomicU64,
    /// For a `tick_total` key: ticks of that kind that missed their deadline.
    pub(crate) misses: AtomicU64,
}

impl Cell {
    /// Adds one to a count of this cell (only the owning thread calls it).
    #[inline(always)]
    pub(crate) fn bump(count: &AtomicU64) {
        count.store(count.load(Relaxed) + 1, Relaxed);
    }
}

/// One thread's data: a node of the thread registry, which derefs to [`PerThread`]. The node's
/// `ordinal` is the thread's id in traces: fresh on every claim, so a reused slot never gives a
/// second thread the id (and name) of one whose spans are still in a trace.
pub(crate) type ThreadData = Node<PerThread>;

/// What a thread records into: only its holder writes it; it outlives the thread (the registry
/// hands it, counts and all, to the next thread that claims the node).
pub(crate) struct PerThread {
    /// One slot per key (a fixed length, so indexing with a masked key needs no bounds check).
    cells: Box<[AtomicPtr<Cell>; MAX_KEYS]>,
    pub(crate) counters: ThreadCounters,
    pub(crate) name: Mutex<String>,
    /// Kept traces on their way to the worker: the holder of this slot produces, the worker
    /// consumes.
    pub(crate) traces: TraceRing<RawTrace, TRACE_RING>,
}

/// Every thread's data, live or exited.
static THREADS: Registry<PerThread> = Registry::new();

impl PerThread {
    fn new() -> Self {
        PerThread {
            cells: Box::new(std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut()))),
            counters: ThreadCounters::default(),
            name: Mutex::new(String::new()),
            traces: TraceRing::new(),
        }
    }

    /// This thread's cell for `key`, allocated on first use (once per thread and key).
    #[inline(always)]
    pub(crate) fn cell(&self, key: u32) -> &Cell {
        // Keys are below `MAX_KEYS` (a power of two) by construction: the mask only tells the
        // compiler so.
        let slot = &self.cells[key as usize & (MAX_KEYS - 1)];
        let p = slot.load(Acquire);
        if p.is_null() {
            return self.new_cell(slot);
        }
        // SAFETY: cells are allocated once, published with Release, and never freed.
        unsafe { &*p }
    }

    #[cold]
    #[inline(never)]
    fn new_cell(&self, slot: &AtomicPtr<Cell>) -> &Cell {
        let cell = Box::into_raw(Box::new(Cell {
            hist: AtomicHistogram::new(),
            cancelled: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }));
        // Release: readers that see the pointer see the zeroed histogram.
        slot.store(cell, Release);
        // SAFETY: just allocated and never freed.
        unsafe { &*cell }
    }

    /// The cell of `key` if this thread has recorded into it.
    pub(crate) fn cell_if_any(&self, key: usize) -> Option<&Cell> {
        let p = self.cells[key].load(Acquire);
        // SAFETY: as in `cell`.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

/// Iterates every thread's data, live or exited.
pub(crate) fn threads() -> impl Iterator<Item = &'static ThreadData> {
    THREADS.iter()
}

/// Takes a free slot (left by an exited thread) or allocates a new one.
#[cold]
pub(crate) fn claim_thread_data() -> &'static ThreadData {
    crate::clock::ensure_calibrated();
    let name = std::thread::current().name().unwrap_or("").to_owned();
    let t = THREADS.claim(PerThread::new);
    *t.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    t
}

/// Called from the thread-exit hook: the slot becomes reusable, its counts stay.
pub(crate) fn release_thread_data(t: &ThreadData) {
    let name = t.name.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut exited = EXITED_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if exited.len() == EXITED_NAMES_KEPT {
        exited.pop_front();
    }
    exited.push_back((t.ordinal.load(Relaxed), name));
    drop(exited);
    THREADS.release(t);
}

/// Names of the most recently exited threads, so traces read after a thread exited still name
/// it (bounded: a process spawning a thread per tick does not grow it). Cold path only.
static EXITED_NAMES: Mutex<VecDeque<(u32, String)>> = Mutex::new(VecDeque::new());
const EXITED_NAMES_KEPT: usize = 4096;

/// The name of the thread with `ordinal`, for traces.
pub(crate) fn thread_name(ordinal: u32) -> String {
    let live = threads()
        .find(|t| t.ordinal.load(Relaxed) == ordinal)
        .map(|t| t.name.lock().unwrap_or_else(|e| e.into_inner()).clone());
    let name = live.or_else(|| {
        let exited = EXITED_NAMES.lock().unwrap_or_else(|e| e.into_inner());
        exited.iter().rev().find(|(o, _)| *o == ordinal).map(|(_, n)| n.clone())
    });
    name.filter(|n| !n.is_empty()).unwrap_or_else(|| format!("thread-{ordinal}"))
}

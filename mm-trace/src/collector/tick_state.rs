//! The state of a tick while it runs: what its spans open from ([`TickState`], installed on the
//! thread running the tick or a lane of it) and what carried work reaches ([`Shared`]).

use std::cell::{Cell, RefCell, UnsafeCell};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::*};
use std::sync::{Arc, Mutex};

use super::counters::{self, Counter};
use super::lockfree::chunks::ChunkStack;
use super::site::Site;
use super::switches::{ANNOTATION_CAP, SPAN_CAP};
use super::trace_ids::{TraceId, new_trace_id};
use super::trace_record::SpanRec;

/// How the tick a span opens in records it.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// No tick: spans feed histograms only.
    Free = 0,
    /// Unsampled tick, slow-tick capture off: stages record nothing.
    Count = 1,
    /// Unsampled tick with capture on: spans go to the trace buffer only, kept if the tick is slow.
    Shadow = 2,
    /// Sampled tick: histograms and trace.
    Record = 3,
    /// A span that records nothing (never the mode of a tick).
    Off = 255,
}

impl Mode {
    /// Whether a tick in this mode may keep a trace (so annotations and carried work count).
    pub(crate) fn may_keep(self) -> bool {
        matches!(self, Mode::Shadow | Mode::Record)
    }
}

/// Where a span starts: how it records, in which tick, its id and its parent's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanOpening {
    pub(crate) mode: Mode,
    pub(crate) tick_id: u64,
    pub(crate) ids: SpanIds,
}

impl SpanOpening {
    /// A span that records nothing.
    pub(crate) const OFF: SpanOpening = SpanOpening { mode: Mode::Off, tick_id: 0, ids: SpanIds(0) };
    /// A span outside any tick (histogram only).
    pub(crate) const FREE: SpanOpening = SpanOpening { mode: Mode::Free, tick_id: 0, ids: SpanIds(0) };
}

/// A span's id and its parent's, packed in one word: a guard's span then stays in few enough
/// registers that the hot loop keeps the thread-local base in one (measured: unpacked, the
/// unsampled stage went from 0.55 to 1.2 ns in `benches/hot_path.rs`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpanIds(u64);

impl SpanIds {
    #[inline(always)]
    pub(crate) fn new(id: u32, parent: u32) -> Self {
        SpanIds(u64::from(id) | (u64::from(parent) << 32))
    }

    /// The span's id.
    #[inline(always)]
    pub(crate) fn id(self) -> u32 {
        self.0 as u32
    }

    /// Its parent's id (0: the tick).
    #[inline(always)]
    pub(crate) fn parent(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Span ids are `lane << LANE_SHIFT | n`: the lane (0 for the tick's own thread, then one per
/// carried context entered) keeps ids unique across threads without coordination.
const LANE_SHIFT: u32 = 20;

/// The part of a tick that carried work (other threads, spawned tasks) reaches.
pub(crate) struct Shared {
    pub(crate) tick_id: u64,
    /// The continued trace, if any (lanes report the tick's trace id).
    pub(crate) trace: TraceId,
    pub(crate) mode: Mode,
    next_lane: AtomicU32,
    pub(crate) partial_fail: AtomicBool,
    /// What a tick's trace is assembled from: the tick thread's spans plus carried work's chunks.
    chunks: ChunkStack<Vec<SpanRec>>,
    pub(crate) annotations: Mutex<Vec<(String, String)>>,
}

impl Shared {
    /// A lane for one carried context.
    pub(crate) fn next_lane(&self) -> u32 {
        self.next_lane.fetch_add(1, Relaxed) & ((1 << (32 - LANE_SHIFT)) - 1)
    }

    /// Pushes spans recorded by carried work; after the tick closed they are late (counted).
    pub(crate) fn push(&self, spans: Vec<SpanRec>) {
        if spans.is_empty() {
            return;
        }
        if let Err(spans) = self.chunks.push(spans) {
            counters::add(Counter::LateSpans, spans.len() as u64);
        }
    }

    /// Closes the tick to carried work and takes every chunk pushed so far.
    pub(crate) fn close(&self) -> Vec<SpanRec> {
        let mut out = Vec::new();
        self.chunks.close(|spans| out.extend_from_slice(&spans));
        out
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Chunks pushed between `close`'s swap and the pusher's own check arrive here: late.
        self.chunks.drain(|spans| counters::add(Counter::LateSpans, spans.len() as u64));
    }
}

/// A tick installed on a thread: the tick itself, or a lane of it carried into another thread.
pub(crate) struct TickState {
    pub(crate) tick_id: u64,
    pub(crate) site: &'static Site,
    pub(crate) mode: Mode,
    pub(crate) start: u64,
    lane: u32,
    /// Spans kept in the trace (`max_spans_per_tick`).
    pub(crate) cap: u32,
    pub(crate) annotation_cap: u32,
    /// The open span, parent of the next one (0: the tick itself).
    pub(crate) parent: Cell<u32>,
    next_id: Cell<u32>,
    spans: UnsafeCell<Vec<SpanRec>>,
    /// Spans left out by the cap.
    pub(crate) dropped: Cell<u32>,
    pub(crate) partial_fail: Cell<bool>,
    pub(crate) annotations: RefCell<Vec<(String, String)>>,
    /// Annotations left out by the cap.
    pub(crate) annotations_dropped: Cell<u32>,
    pub(crate) shared: RefCell<Option<Arc<Shared>>>,
    /// The tick installed on this thread before this one (restored when this one leaves).
    pub(crate) prev: Cell<*mut TickState>,
    /// The trace this tick continues (`traceparent`), or `NONE`: a fresh one from the tick id.
    pub(crate) trace: Cell<TraceId>,
    /// The incoming parent span (0: none).
    pub(crate) remote_parent: Cell<u64>,
}

impl TickState {
    pub(crate) fn new(site: &'static Site) -> Self {
        TickState {
            tick_id: 0,
            site,
            mode: Mode::Count,
            start: 0,
            lane: 0,
            cap: 0,
            annotation_cap: 0,
            parent: Cell::new(0),
            next_id: Cell::new(0),
            spans: UnsafeCell::new(Vec::new()),
            dropped: Cell::new(0),
            partial_fail: Cell::new(false),
            annotations: RefCell::new(Vec::new()),
            annotations_dropped: Cell::new(0),
            shared: RefCell::new(None),
            prev: Cell::new(ptr::null_mut()),
            trace: Cell::new(TraceId::NONE),
            remote_parent: Cell::new(0),
        }
    }

    /// Makes this (cleared) buffer the state of tick `tick_id` on `lane`, spans opening under
    /// `parent`, with the caps in force now.
    pub(crate) fn begin(&mut self, tick_id: u64, site: &'static Site, mode: Mode, lane: u32, parent: u32) {
        (self.tick_id, self.site, self.mode, self.lane) = (tick_id, site, mode, lane);
        self.cap = SPAN_CAP.load(Relaxed);
        self.annotation_cap = ANNOTATION_CAP.load(Relaxed);
        self.parent.set(parent);
        self.next_id.set(0);
        self.dropped.set(0);
        self.partial_fail.set(false);
        self.annotations_dropped.set(0);
        self.trace.set(TraceId::NONE);
        self.remote_parent.set(0);
    }

    /// The tick's trace id: the continued one, or the fresh one of its tick id.
    pub(crate) fn trace_id(&self) -> TraceId {
        let t = self.trace.get();
        if t.is_none() { new_trace_id(self.tick_id) } else { t }
    }

    /// Opens a span in this tick as a child of the open one.
    #[inline(always)]
    pub(crate) fn open_child(&self) -> SpanOpening {
        let n = self.next_id.get().wrapping_add(1);
        self.next_id.set(n);
        let id = (self.lane << LANE_SHIFT) | (n & ((1 << LANE_SHIFT) - 1));
        SpanOpening { mode: self.mode, tick_id: self.tick_id, ids: SpanIds::new(id, self.parent.replace(id)) }
    }

    /// Adds a closed span to the trace buffer, or counts it past the cap.
    #[inline(always)]
    pub(crate) fn push(&self, rec: SpanRec) {
        // SAFETY: only the thread this state is installed on touches `spans`, and no reference
        // to the vector outlives this call.
        let spans = unsafe { &mut *self.spans.get() };
        if spans.len() < self.cap as usize {
            spans.push(rec);
        } else {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    /// The trace buffer.
    ///
    /// # Safety
    /// The caller is the thread that owns this state, and no other reference to the buffer is
    /// alive while the returned one is (the tick is uninstalled, or not yet installed).
    #[allow(clippy::mut_from_ref, reason = "the buffer is reached through an UnsafeCell, as documented")]
    pub(crate) unsafe fn spans_mut(&self) -> &mut Vec<SpanRec> {
        // SAFETY: as the caller promises.
        unsafe { &mut *self.spans.get() }
    }

    /// Adds an annotation if under the cap, else counts it; `value` is formatted only if kept.
    pub(crate) fn annotate(&self, key: &str, value: &dyn std::fmt::Display) {
        let mut annotations = self.annotations.borrow_mut();
        if annotations.len() < self.annotation_cap as usize {
            annotations.push((key.to_owned(), value.to_string()));
        } else {
            self.annotations_dropped.set(self.annotations_dropped.get().saturating_add(1));
        }
    }

    /// Empties the buffers for reuse by the next tick.
    pub(crate) fn clear(&self) {
        // SAFETY: called by the owning thread on an uninstalled state.
        unsafe { self.spans_mut() }.clear();
        self.annotations.borrow_mut().clear();
        *self.shared.borrow_mut() = None;
    }

    /// What carried work of this tick reaches, made on first use.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared
            .borrow_mut()
            .get_or_insert_with(|| {
                Arc::new(Shared {
                    tick_id: self.tick_id,
                    trace: self.trace.get(),
                    mode: self.mode,
                    next_lane: AtomicU32::new(1),
                    partial_fail: AtomicBool::new(false),
                    chunks: ChunkStack::new(),
                    annotations: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }
}

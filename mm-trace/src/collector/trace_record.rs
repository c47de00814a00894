//! The record of a kept tick as the tick thread writes it and the worker reads it: raw clock
//! readings and metric keys, converted to a `TickTrace` only off the hot path (`trace_convert`).

use super::site::Site;
use super::trace_ids::TraceId;
use crate::summary::KeepReason;

/// How a span ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Outcome {
    /// Completed (a function returning `Ok`, or one that returns no `Result`).
    Done,
    /// Completed with `Err`: counted in the key's errors, still in its histogram.
    Failed,
    /// An async stage dropped before completion: counted, not in the histogram.
    Cancelled,
}

/// Kept traces a thread can have waiting for the worker (its ring's slots): past that the next
/// one is dropped (counted) instead of growing memory.
pub(crate) const TRACE_RING: usize = 256;
/// Span capacity a reused span buffer keeps (larger ones are shrunk by the tick thread), so the
/// slots of a thread hold at most `TRACE_RING` x this many spans between traces.
const KEPT_SPAN_CAPACITY: usize = 1024;

/// The top bit of a [`SpanRec`]'s key: the span is an async stage dropped before completion.
const CANCELLED: u32 = 1 << 31;
/// The next bit: the span's function returned `Err`.
const FAILED: u32 = 1 << 30;
/// The flag bits (keys are below `MAX_KEYS`, far under them).
const FLAGS: u32 = CANCELLED | FAILED;

/// One closed span, as raw clock readings (converted off the hot path).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanRec {
    /// Metric key; the top bits mark a cancelled async stage and a failed one.
    key: u32,
    pub(crate) id: u32,
    pub(crate) parent: u32,
    pub(crate) thread: u32,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl SpanRec {
    /// A span of metric key `key`.
    #[inline(always)]
    pub(crate) fn new(key: u32, outcome: Outcome, id: u32, parent: u32, thread: u32, start: u64, end: u64) -> Self {
        let flag = match outcome {
            Outcome::Done => 0,
            Outcome::Failed => FAILED,
            Outcome::Cancelled => CANCELLED,
        };
        SpanRec { key: key | flag, id, parent, thread, start, end }
    }

    /// The metric key.
    pub(crate) fn key(&self) -> u32 {
        self.key & !FLAGS
    }

    /// Whether the span's function returned `Err`.
    pub(crate) fn failed(&self) -> bool {
        self.key & FAILED != 0
    }

    /// Whether this is an async stage dropped before completion.
    pub(crate) fn cancelled(&self) -> bool {
        self.key & CANCELLED != 0
    }
}

/// Empties the span buffer a tick thread got back from its ring, and keeps its capacity bounded.
#[inline]
pub(crate) fn trim(spans: &mut Vec<SpanRec>) {
    spans.clear();
    if spans.capacity() > KEPT_SPAN_CAPACITY {
        spans.shrink_to(KEPT_SPAN_CAPACITY);
    }
}

/// A kept tick as recorded: raw readings and keys, converted only when exported.
#[derive(Clone)]
pub(crate) struct RawTrace {
    pub(crate) tick_id: u64,
    pub(crate) site: &'static Site,
    pub(crate) reason: KeepReason,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) missed: bool,
    pub(crate) partial: bool,
    /// The tick's function returned `Err`.
    pub(crate) failed: bool,
    /// Its W3C trace id, and the incoming parent span it continues (0: none).
    pub(crate) trace_id: TraceId,
    pub(crate) remote_parent: u64,
    /// Spans recorded on the tick's own thread.
    pub(crate) local: Vec<SpanRec>,
    /// Spans recorded by carried work (other threads and tasks).
    pub(crate) remote: Vec<SpanRec>,
    /// Spans left out by the cap so far (the conversion may cut more, see `trace_convert`).
    pub(crate) dropped: u64,
    pub(crate) cap: usize,
    pub(crate) annotations: Vec<(String, String)>,
    pub(crate) thread: u32,
    /// The clock's ns-per-reading factor (32.32 fixed point) and the tick's start in ns since the
    /// process epoch, captured when the worker receives the trace (0 until then), so that reading
    /// the ring later, under another clock (test clock uninstalled, time scale changed), still
    /// converts with the clock the readings were taken with.
    pub(crate) mult: u64,
    pub(crate) start_epoch_ns: u64,
}

impl RawTrace {
    /// An empty slot of a thread's trace ring.
    pub(crate) fn empty() -> Self {
        static NONE: Site = Site::tick("");
        RawTrace {
            tick_id: 0,
            site: &NONE,
            reason: KeepReason::Sampled,
            start: 0,
            end: 0,
            missed: false,
            partial: false,
            failed: false,
            trace_id: TraceId::NONE,
            remote_parent: 0,
            local: Vec::new(),
            remote: Vec::new(),
            dropped: 0,
            cap: 0,
            annotations: Vec::new(),
            thread: 0,
            mult: 0,
            start_epoch_ns: 0,
        }
    }

    /// Makes this a copy of `src`, reusing this one's buffers.
    pub(crate) fn copy_from(&mut self, src: &RawTrace) {
        let (mut local, mut remote, mut annotations) =
            (std::mem::take(&mut self.local), std::mem::take(&mut self.remote), std::mem::take(&mut self.annotations));
        local.clone_from(&src.local);
        remote.clone_from(&src.remote);
        annotations.clone_from(&src.annotations);
        // Every other field is `Copy` and comes from `src` (a new non-`Copy` field fails to compile
        // here rather than being left stale).
        *self = RawTrace { local, remote, annotations, ..*src };
    }

    /// Converts a difference of this trace's readings to ns.
    pub(crate) fn ticks_to_ns(&self, ticks: u64) -> u64 {
        u64::try_from((u128::from(ticks) * u128::from(self.mult)) >> 32).unwrap_or(u64::MAX)
    }
}

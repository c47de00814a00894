//! Stage and exchange spans: [`StageGuard`] (sync) and [`Instrumented`] (async), and the one
//! rule of what a span records ([`open`]) and how it is recorded ([`close`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use super::local::local;
use super::site::Site;
use super::switches::ENABLED;
use super::thread_data::Cell;
use super::tick_state::{Mode, SpanIds, SpanOpening};
use super::trace_record::{Outcome, SpanRec};
use crate::clock;

/// Opens a span: what it records, decided here alone.
///
/// - Recording off: nothing.
/// - Outside a tick: the histogram only.
/// - In an unsampled tick with slow-tick capture off: nothing for a stage; an exchange request
///   is recorded in every tick, so it feeds its histogram as if outside a tick.
/// - In a sampled tick, or an unsampled one with capture on: a span of the tick, opened as the
///   child of the open one (histogram and trace, or trace only: see [`close`]).
///
/// The thread-local mode byte is read first, so a stage in an unsampled tick with capture off
/// is decided by one byte; `exchange` is a constant wherever the kind of site is known.
#[inline(always)]
fn open(exchange: bool) -> SpanOpening {
    let l = local();
    let mode = l.mode();
    if (mode == Mode::Count && !exchange) || !ENABLED.load(Relaxed) {
        return SpanOpening::OFF;
    }
    match l.current() {
        Some(t) if mode != Mode::Count => t.open_child(),
        _ => SpanOpening::FREE,
    }
}

/// Closes a span opened by [`open`] (not `Mode::Off`): its histogram (unless cancelled, or a
/// stage of a shadow tick: exchange requests always feed theirs), and the trace of its tick if
/// that tick is installed here.
#[inline(always)]
pub(crate) fn close(site: &'static Site, span: SpanOpening, start: u64, end: u64, outcome: Outcome) {
    let l = local();
    let Some(th) = l.thread_data() else { return };
    let key = site.key();
    if outcome == Outcome::Cancelled {
        Cell::bump(&th.cell(key).cancelled);
    } else if span.mode != Mode::Shadow || site.is_exchange() {
        let cell = th.cell(key);
        cell.hist.record(clock::ticks_to_ns(end.saturating_sub(start)));
        if outcome == Outcome::Failed {
            Cell::bump(&cell.errors);
        }
    }
    if span.mode == Mode::Free {
        return;
    }
    if let Some(t) = l.current()
        && t.tick_id == span.tick_id
    {
        let (id, parent) = (span.ids.id(), span.ids.parent());
        if t.parent.get() == id {
            t.parent.set(parent);
        }
        let thread = th.ordinal.load(Relaxed);
        t.push(SpanRec::new(key, outcome, id, parent, thread, start, end));
    }
}

// ---------------------------------------------------------------------------------------------
// Sync stage

/// Times a synchronous stage until dropped (also during unwinding).
#[must_use = "a stage guard times its scope: bind it with `let _g = ...`"]
#[derive(Debug)]
pub struct StageGuard {
    site: &'static Site,
    span: SpanOpening,
    start: u64,
}

impl StageGuard {
    /// Opens a span for `site` (a stage or an exchange request).
    #[inline(always)]
    pub fn enter(site: &'static Site) -> StageGuard {
        Self::open(site, open(site.is_exchange()))
    }

    /// [`StageGuard::enter`] for a site made with `Site::stage` (what `#[stage]`, `in_stage!`
    /// and `stage_guard!` expand to): the kind is known, so it is not read.
    #[inline(always)]
    pub fn enter_stage(site: &'static Site) -> StageGuard {
        debug_assert!(!site.is_exchange(), "enter_stage on an exchange site");
        Self::open(site, open(false))
    }

    #[inline(always)]
    fn open(site: &'static Site, span: SpanOpening) -> StageGuard {
        let start = if span.mode == Mode::Off { 0 } else { clock::now() };
        StageGuard { site, span, start }
    }
}

/// Closes a guard's span. Out of line, so that the drop glue stays small enough to be inlined at
/// every call site (a guard that records nothing then costs one compare, a recording one one
/// call), and taking the fields by value (in registers), so that the guard never has to be
/// written to memory: a guard that records nothing stays a few registers.
#[inline(never)]
fn close_guard(site: &'static Site, tick_id: u64, start: u64, ids: SpanIds, mode: Mode, end: u64) {
    close(site, SpanOpening { mode, tick_id, ids }, start, end, Outcome::Done);
}

impl StageGuard {
    /// Closes the span as failed: its function returned `Err` (what the attributes expand to
    /// for a function returning `Result`). Counted in the stage's errors, still in its histogram.
    #[cold]
    pub fn close_failed(self) {
        let guard = std::mem::ManuallyDrop::new(self);
        if guard.span.mode != Mode::Off {
            close(guard.site, guard.span, guard.start, clock::now(), Outcome::Failed);
        }
    }
}

impl Drop for StageGuard {
    #[inline(always)]
    fn drop(&mut self) {
        let span = self.span;
        if span.mode != Mode::Off {
            close_guard(self.site, span.tick_id, self.start, span.ids, span.mode, clock::now());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Async stage

/// Where a wrapped future is in its life.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    /// Not polled yet.
    New,
    /// Polled, not complete: its span is open.
    Running,
    /// Complete, or recording nothing.
    Done,
}

/// Times a future from its first poll to its completion; a future dropped before completing is
/// counted as cancelled (not in the latency histogram) and marked so in the trace.
#[must_use = "futures do nothing unless polled"]
pub struct Instrumented<F: Future> {
    fut: F,
    site: &'static Site,
    span: SpanOpening,
    start: u64,
    phase: Phase,
    /// Whether an output is a failure (`Result::is_err` for a function returning `Result`).
    failed: Option<fn(&F::Output) -> bool>,
}

impl<F: Future> std::fmt::Debug for Instrumented<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented").field("site", &self.site.name()).finish_non_exhaustive()
    }
}

impl<F: Future> Instrumented<F> {
    /// Wraps `fut`.
    pub fn new(site: &'static Site, fut: F) -> Self {
        Instrumented { fut, site, span: SpanOpening::OFF, start: 0, phase: Phase::New, failed: None }
    }
}

impl<F: Future<Output: super::outcome::Outcome>> Instrumented<F> {
    /// Wraps `fut`, whose `Err` outputs are counted as the stage's errors.
    pub fn fallible(site: &'static Site, fut: F) -> Self {
        Instrumented {
            fut,
            site,
            span: SpanOpening::OFF,
            start: 0,
            phase: Phase::New,
            failed: Some(super::outcome::Outcome::is_failure),
        }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned (never moved, dropped in place); the other fields
        // are plain data.
        let this = unsafe { self.get_unchecked_mut() };
        if this.phase == Phase::New {
            let span = open(this.site.is_exchange());
            this.span = span;
            this.phase = if span.mode == Mode::Off { Phase::Done } else { Phase::Running };
            if span.mode != Mode::Off {
                // The span was opened as the current parent; stages inside the future become
                // children only while it is being polled, so give the parent back for now.
                if let Some(t) = local().current()
                    && t.tick_id == span.tick_id
                    && t.parent.get() == span.ids.id()
                {
                    t.parent.set(span.ids.parent());
                }
                this.start = clock::now();
            }
        }
        if this.phase != Phase::Running {
            // SAFETY: see above.
            return unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx);
        }
        let span = this.span;
        let restore = match local().current() {
            Some(t) if t.tick_id == span.tick_id && span.tick_id != 0 => Some(t.parent.replace(span.ids.id())),
            _ => None,
        };
        // SAFETY: see above.
        let out = unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx);
        if let Some(prev) = restore
            && let Some(t) = local().current()
            && t.tick_id == span.tick_id
        {
            t.parent.set(prev);
        }
        if let Poll::Ready(value) = &out {
            let end = clock::now();
            this.phase = Phase::Done;
            let outcome = if this.failed.is_some_and(|failed| failed(value)) { Outcome::Failed } else { Outcome::Done };
            close(this.site, span, this.start, end, outcome);
        }
        out
    }
}

impl<F: Future> Drop for Instrumented<F> {
    fn drop(&mut self) {
        if self.phase == Phase::Running {
            let end = clock::now();
            close(self.site, self.span, self.start, end, Outcome::Cancelled);
        }
    }
}

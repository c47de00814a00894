//! Ticks: [`TickGuard`] (sync) and [`TickFuture`] (async) begin a tick on a thread and end it
//! (`tick_total`, the deadline, counters, and the trace handed to the worker if it is kept).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use super::counters::Counter;
use super::local::{Local, local};
use super::site::Site;
use super::span::{Phase, StageGuard};
use super::switches::{CAPTURE_SLOW, ENABLED, NEXT_TICK, SAMPLE_THRESHOLD, SLOW_QUANTILE_NS};
use super::thread_data::{Cell, ThreadData};
use super::tick_state::{Mode, TickState};
use super::trace_ids::{self, IntoTraceparent};
use super::trace_record::{RawTrace, SpanRec, trim};
use super::{counters, lockfree, tick_kinds, worker};
use crate::clock;
use crate::summary::KeepReason;

fn begin_tick(l: &Local, site: &'static Site, parent: Option<&str>) -> Box<TickState> {
    let tick_id = NEXT_TICK.fetch_add(1, Relaxed);
    let continued = parent.and_then(|p| continue_trace(l, p));
    // A sampled parent makes the tick kept: the caller's trace asks for this span.
    let sampled =
        continued.is_some_and(|p| p.sampled) || crate::sampling::sampled(tick_id, SAMPLE_THRESHOLD.load(Relaxed));
    let mode = if sampled {
        Mode::Record
    } else if CAPTURE_SLOW.load(Relaxed) {
        Mode::Shadow
    } else {
        Mode::Count
    };
    let mut state = l.take_state(site);
    state.begin(tick_id, site, mode, 0, 0);
    if let Some(p) = continued {
        state.trace.set(p.trace_id);
        state.remote_parent.set(p.span_id);
    }
    if mode != Mode::Count
        && let Some(th) = l.thread_data()
    {
        warm_up(th, &state);
    }
    state.start = clock::now();
    state
}

/// The incoming trace of `traceparent`, or `None` (a malformed one is counted: the tick starts
/// a new trace).
#[cold]
fn continue_trace(l: &Local, traceparent: &str) -> Option<trace_ids::Parent> {
    let parent = trace_ids::parse_traceparent(traceparent);
    if parent.is_none()
        && let Some(th) = l.thread_data()
    {
        th.counters.bump(Counter::TraceparentInvalid, 1);
    }
    parent
}

/// Brings what a traced tick will write into the cache while its stages run: the span buffer
/// (after a kept tick it is the buffer of a ring slot last used `TRACE_RING` kept traces ago) and,
/// for a sampled tick, the ring slot its trace goes to. On a 10 µs tick at rate 1.0 the added time
/// went from 305 – 523 ns without it to 290 – 372 ns with it (`benches/tick_ab.rs`, see
/// docs/PERFORMANCE.md): the slot and buffer are otherwise read from memory left cold for
/// milliseconds.
#[inline]
fn warm_up(th: &ThreadData, state: &TickState) {
    // SAFETY: the tick is not installed yet: no other reference to its span vector exists.
    let spans = unsafe { state.spans_mut() };
    lockfree::trace_ring::prefetch(spans.as_ptr().cast(), 8 * std::mem::size_of::<SpanRec>());
    if state.mode == Mode::Record {
        th.traces.prefetch_next();
    }
}

/// Ends a tick: tick_total, deadline, counters, and the trace if sampled or slow. `failed`: the
/// tick's function returned `Err` (counted in tick_total's errors; the tick stays in tick_total).
fn finish_tick(l: &Local, state: &TickState, end: u64, failed: bool) {
    let Some(th) = l.thread_data() else { return };
    let counts = &th.counters;
    let total_ns = clock::ticks_to_ns(end.saturating_sub(state.start));
    let total_key = state.site.total_key();
    let cell = th.cell(total_key);
    cell.hist.record(total_ns);
    if failed {
        Cell::bump(&cell.errors);
    }
    counts.bump(Counter::TickNs, total_ns);
    let missed = total_ns > tick_kinds::deadline_ns(total_key);
    if missed {
        counts.bump(Counter::DeadlineMisses, 1);
        Cell::bump(&cell.misses);
    }
    let shared = state.shared.borrow_mut().take();
    let remote = shared.as_ref().map(|s| s.close()).unwrap_or_default();
    let partial = state.partial_fail.get() || shared.as_ref().is_some_and(|s| s.partial_fail.load(Relaxed));
    if partial {
        counts.bump(Counter::PartialFails, 1);
    }
    let reason = match state.mode {
        Mode::Record => Some(KeepReason::Sampled),
        Mode::Shadow if missed || total_ns > SLOW_QUANTILE_NS.load(Relaxed) => Some(KeepReason::Slow),
        _ => None,
    };
    let Some(reason) = reason else { return };
    let dropped = u64::from(state.dropped.get());
    // SAFETY: the tick is uninstalled; no other reference to its span vector exists.
    let spans = unsafe { state.spans_mut() };
    // The tick's own spans are capped as they are pushed; with carried spans the trace is cut
    // to the cap again when converted (`trace_convert`): count those here, once.
    let cut = if remote.is_empty() { 0 } else { (spans.len() + remote.len()).saturating_sub(state.cap as usize) };
    if dropped + cut as u64 > 0 {
        counts.bump(Counter::SpansDropped, dropped + cut as u64);
    }
    let mut annotations = std::mem::take(&mut *state.annotations.borrow_mut());
    if let Some(s) = &shared {
        annotations.extend(s.annotations.lock().unwrap_or_else(|e| e.into_inner()).drain(..));
    }
    // Each lane caps its own annotations; the tick keeps the cap over all of them.
    let cap = state.annotation_cap as usize;
    let annotations_dropped = u64::from(state.annotations_dropped.get()) + annotations.len().saturating_sub(cap) as u64;
    annotations.truncate(cap);
    if annotations_dropped > 0 {
        counts.bump(Counter::AnnotationsDropped, annotations_dropped);
    }
    let thread = th.ordinal.load(Relaxed);
    let fill = |t: &mut RawTrace| {
        (t.tick_id, t.site, t.reason, t.start, t.end) = (state.tick_id, state.site, reason, state.start, end);
        (t.missed, t.partial, t.failed, t.dropped, t.cap) = (missed, partial, failed, dropped, state.cap as usize);
        (t.remote, t.annotations, t.thread) = (remote, annotations, thread);
        // A continued trace's id; a fresh one (`NONE` here) is drawn by the worker, off this thread.
        (t.trace_id, t.remote_parent) = (state.trace.get(), state.remote_parent.get());
        // The kept spans go into the slot; the slot's previous span buffer (read by the worker
        // by now) comes back as this thread's, capacity and all.
        std::mem::swap(&mut t.local, spans);
    };
    // SAFETY: `th` is the slot this thread holds: the only producer of its ring.
    if unsafe { th.traces.push(RawTrace::empty, fill) } {
        worker::submitted(counts);
    } else {
        counters::add(Counter::TracesDropped, 1);
    }
    trim(spans);
}

/// The guard `#[traced_tick]` puts at the top of a synchronous tick.
#[must_use = "a tick guard times its scope: bind it with `let _g = ...`"]
#[derive(Debug)]
pub struct TickGuard {
    inner: TickInner,
}

#[derive(Debug)]
enum TickInner {
    Off,
    /// A tick inside a tick is timed as a stage of the outer one.
    Nested(#[allow(dead_code, reason = "held for its Drop, which closes the span")] StageGuard),
    Active(*mut TickState),
}

impl TickGuard {
    /// Starts a tick on this thread.
    #[inline]
    pub fn begin(site: &'static Site) -> TickGuard {
        Self::begin_in(site, None)
    }

    /// Starts a tick that continues the trace of an incoming W3C `traceparent`
    /// (`#[traced_tick(parent = EXPR)]`): `&str`, `String` or an `Option` of either.
    #[inline]
    pub fn begin_with_parent(site: &'static Site, parent: &impl IntoTraceparent) -> TickGuard {
        Self::begin_in(site, parent.traceparent())
    }

    #[inline]
    fn begin_in(site: &'static Site, parent: Option<&str>) -> TickGuard {
        if !ENABLED.load(Relaxed) {
            return TickGuard { inner: TickInner::Off };
        }
        let l = local();
        if l.current().is_some() {
            return TickGuard { inner: TickInner::Nested(StageGuard::enter(site)) };
        }
        let state = Box::into_raw(begin_tick(l, site, parent));
        // SAFETY: just created; freed only in `drop` below.
        l.install(unsafe { &*state });
        TickGuard { inner: TickInner::Active(state) }
    }
}

impl TickGuard {
    /// Ends the tick as failed: its function returned `Err` (what `#[traced_tick]` expands to
    /// for a function returning `Result`).
    #[cold]
    pub fn close_failed(mut self) {
        // Ended here; the drop that follows finds nothing left to end.
        self.end(true);
    }

    fn end(&mut self, failed: bool) {
        match std::mem::replace(&mut self.inner, TickInner::Off) {
            TickInner::Active(state) => {
                let end = clock::now();
                // SAFETY: created by `begin` with `Box::into_raw`; this guard is its only owner.
                let state = unsafe { Box::from_raw(state) };
                let l = local();
                l.uninstall(&state);
                finish_tick(l, &state, end, failed);
                l.give_state(state);
            }
            TickInner::Nested(stage) if failed => stage.close_failed(),
            TickInner::Nested(stage) => drop(stage),
            TickInner::Off => {}
        }
    }
}

impl Drop for TickGuard {
    fn drop(&mut self) {
        self.end(false);
    }
}

/// The future `#[traced_tick]` wraps an async tick in: the tick is installed on whichever
/// thread polls it, for the duration of each poll.
#[must_use = "futures do nothing unless polled"]
pub struct TickFuture<F: Future> {
    fut: F,
    site: &'static Site,
    /// The incoming `traceparent` to continue (read at the first poll).
    parent: Option<String>,
    state: Option<Box<TickState>>,
    phase: Phase,
    /// Whether an output is a failure (`Result::is_err` for a tick returning `Result`).
    failed: Option<fn(&F::Output) -> bool>,
}

impl<F: Future> std::fmt::Debug for TickFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickFuture").field("site", &self.site.name()).finish_non_exhaustive()
    }
}

// SAFETY: the tick state is only touched by the thread polling (or dropping) the future, one at a
// time, exactly like the future's own fields; its raw pointers refer to data owned by it.
unsafe impl<F: Future + Send> Send for TickFuture<F> {}

impl<F: Future> TickFuture<F> {
    /// Wraps the body of an async tick.
    pub fn new(site: &'static Site, fut: F) -> Self {
        TickFuture { fut, site, parent: None, state: None, phase: Phase::New, failed: None }
    }
}

impl<F: Future> TickFuture<F> {
    /// Continues the trace of an incoming W3C `traceparent` (`#[traced_tick(parent = EXPR)]`).
    pub fn with_parent(mut self, parent: &impl IntoTraceparent) -> Self {
        self.parent = parent.traceparent().map(str::to_owned);
        self
    }
}

impl<F: Future<Output: super::outcome::Outcome>> TickFuture<F> {
    /// Wraps the body of an async tick whose `Err` outputs are counted as failed ticks.
    pub fn fallible(site: &'static Site, fut: F) -> Self {
        TickFuture {
            fut,
            site,
            parent: None,
            state: None,
            phase: Phase::New,
            failed: Some(super::outcome::Outcome::is_failure),
        }
    }
}

impl<F: Future> Future for TickFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned; other fields are not.
        let this = unsafe { self.get_unchecked_mut() };
        let l = local();
        if this.phase == Phase::New {
            this.phase = Phase::Done;
            if ENABLED.load(Relaxed) && l.current().is_none() {
                this.state = Some(begin_tick(l, this.site, this.parent.as_deref()));
                this.phase = Phase::Running;
            }
        }
        let Some(state) = this.state.as_deref() else {
            // SAFETY: as above.
            return unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx);
        };
        l.install(state);
        struct Uninstall<'a>(&'a TickState);
        impl Drop for Uninstall<'_> {
            fn drop(&mut self) {
                local().uninstall(self.0);
            }
        }
        let guard = Uninstall(state);
        // SAFETY: as above.
        let out = unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx);
        drop(guard);
        if let Poll::Ready(value) = &out {
            let end = clock::now();
            this.phase = Phase::Done;
            if let Some(state) = this.state.take() {
                finish_tick(l, &state, end, this.failed.is_some_and(|failed| failed(value)));
                l.give_state(state);
            }
        }
        out
    }
}

impl<F: Future> Drop for TickFuture<F> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let l = local();
            if let Some(th) = l.thread_data() {
                th.counters.bump(Counter::TicksCancelled, 1);
            }
            if let Some(s) = state.shared.borrow_mut().take() {
                s.close();
            }
        }
    }
}

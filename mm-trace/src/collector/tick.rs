//! Ticks, stage spans and carried tick contexts: the hot path.
//!
//! A thread's state is one const-initialised thread local without a destructor (so reaching it
//! is a single TLS-relative access, no lazy-init check): a pointer to the thread's data, a
//! pointer to the tick installed on this thread (if any) and one spare tick buffer. A separate
//! thread local with a destructor returns the thread's data slot when the thread exits.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::chunks::ChunkStack;
use super::{
    CAPTURE_SLOW, DEADLINE_NS, ENABLED, NEXT_TICK, SAMPLE_THRESHOLD, SLOW_QUANTILE_NS, SPAN_CAP, TICK_TOTAL,
    ThreadData, bump, claim_thread_data, release_thread_data, worker,
};
use crate::clock;
use crate::site::Site;
use crate::summary::KeepReason;

/// No tick: spans feed histograms only.
pub(crate) const MODE_FREE: u8 = 0;
/// Unsampled tick, slow-tick capture off: stages record nothing.
pub(crate) const MODE_COUNT: u8 = 1;
/// Unsampled tick with capture on: spans go to the trace buffer only, kept if the tick is slow.
pub(crate) const MODE_SHADOW: u8 = 2;
/// Sampled tick: histograms and trace.
pub(crate) const MODE_RECORD: u8 = 3;
/// Guard that records nothing.
const MODE_OFF: u8 = 255;

const CANCELLED: u32 = 1 << 31;
const LANE_SHIFT: u32 = 20;

pub(crate) static LATE_SPANS: AtomicU64 = AtomicU64::new(0);

/// One closed span, as raw clock readings (converted off the hot path).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanRec {
    /// Metric key; the top bit marks a cancelled async stage.
    pub(crate) key: u32,
    pub(crate) id: u32,
    pub(crate) parent: u32,
    pub(crate) thread: u32,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl SpanRec {
    pub(crate) fn key(&self) -> u32 {
        self.key & !CANCELLED
    }
    pub(crate) fn cancelled(&self) -> bool {
        self.key & CANCELLED != 0
    }
}

/// The part of a tick that carried work (other threads, spawned tasks) reaches.
pub(crate) struct Shared {
    tick_id: u64,
    mode: u8,
    next_lane: AtomicU32,
    partial_fail: AtomicBool,
    /// What a tick's trace is assembled from: the tick thread's spans plus carried work's chunks.
    chunks: ChunkStack<Vec<SpanRec>>,
    annotations: Mutex<Vec<(String, String)>>,
}

impl Shared {
    /// Pushes spans recorded by carried work; after the tick closed they are late (counted).
    fn push(&self, spans: Vec<SpanRec>) {
        if spans.is_empty() {
            return;
        }
        if let Err(spans) = self.chunks.push(spans) {
            LATE_SPANS.fetch_add(spans.len() as u64, Relaxed);
        }
    }

    /// Closes the tick to carried work and takes every chunk pushed so far.
    fn close(&self) -> Vec<SpanRec> {
        let mut out = Vec::new();
        self.chunks.close(|spans| out.extend_from_slice(&spans));
        out
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Chunks pushed between `close`'s swap and the pusher's own check arrive here: late.
        self.chunks.drain(|spans| {
            LATE_SPANS.fetch_add(spans.len() as u64, Relaxed);
        });
    }
}

/// A tick installed on a thread: the tick itself, or a lane of it carried into another thread.
pub(crate) struct TickState {
    tick_id: u64,
    site: &'static Site,
    mode: u8,
    start: u64,
    lane: u32,
    cap: u32,
    parent: Cell<u32>,
    next_id: Cell<u32>,
    spans: UnsafeCell<Vec<SpanRec>>,
    dropped: Cell<u32>,
    partial_fail: Cell<bool>,
    annotations: RefCell<Vec<(String, String)>>,
    shared: RefCell<Option<Arc<Shared>>>,
    prev: Cell<*mut TickState>,
}

impl TickState {
    fn new(site: &'static Site) -> Self {
        TickState {
            tick_id: 0,
            site,
            mode: MODE_COUNT,
            start: 0,
            lane: 0,
            cap: 0,
            parent: Cell::new(0),
            next_id: Cell::new(0),
            spans: UnsafeCell::new(Vec::new()),
            dropped: Cell::new(0),
            partial_fail: Cell::new(false),
            annotations: RefCell::new(Vec::new()),
            shared: RefCell::new(None),
            prev: Cell::new(ptr::null_mut()),
        }
    }

    /// Opens a span in this tick as a child of the open one: `(mode, tick id, id, parent)`.
    #[inline(always)]
    fn open_child(&self) -> (u8, u64, u32, u32) {
        let n = self.next_id.get().wrapping_add(1);
        self.next_id.set(n);
        let id = (self.lane << LANE_SHIFT) | (n & ((1 << LANE_SHIFT) - 1));
        (self.mode, self.tick_id, id, self.parent.replace(id))
    }

    #[inline(always)]
    fn push(&self, rec: SpanRec) {
        // SAFETY: only the thread this state is installed on touches `spans`, and no reference
        // to the vector outlives this call.
        let spans = unsafe { &mut *self.spans.get() };
        if spans.len() < self.cap as usize {
            spans.push(rec);
        } else {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    fn clear_spans(&self) {
        // SAFETY: as in `push`.
        unsafe { (*self.spans.get()).clear() };
    }

    fn shared(&self) -> Arc<Shared> {
        self.shared
            .borrow_mut()
            .get_or_insert_with(|| {
                Arc::new(Shared {
                    tick_id: self.tick_id,
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

struct Local {
    thread: Cell<*const ThreadData>,
    tick: Cell<*mut TickState>,
    /// The mode of `tick` (`MODE_FREE` when none), kept next to it so that a stage in an
    /// unsampled tick with capture off is decided by one thread-local byte.
    mode: Cell<u8>,
    spare: Cell<*mut TickState>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            thread: Cell::new(ptr::null()),
            tick: Cell::new(ptr::null_mut()),
            mode: Cell::new(MODE_FREE),
            spare: Cell::new(ptr::null_mut()),
        }
    };
    static EXIT: ExitHook = const { ExitHook };
}

struct ExitHook;

impl Drop for ExitHook {
    fn drop(&mut self) {
        LOCAL.with(|l| {
            let t = l.thread.replace(ptr::null());
            if !t.is_null() {
                // SAFETY: thread data is never freed.
                release_thread_data(unsafe { &*t });
            }
            let spare = l.spare.replace(ptr::null_mut());
            if !spare.is_null() {
                // SAFETY: the spare is owned by this thread's `Local` alone.
                drop(unsafe { Box::from_raw(spare) });
            }
        });
    }
}

impl Local {
    #[inline(always)]
    fn thread_data(&self) -> Option<&'static ThreadData> {
        let t = self.thread.get();
        if t.is_null() {
            return self.claim();
        }
        // SAFETY: thread data is never freed.
        Some(unsafe { &*t })
    }

    #[cold]
    #[inline(never)]
    fn claim(&self) -> Option<&'static ThreadData> {
        // Registering the exit hook fails only while this thread's locals are being destroyed;
        // then nothing is recorded rather than leaking a slot.
        EXIT.try_with(|_| ()).ok()?;
        let t = claim_thread_data();
        self.thread.set(t);
        Some(t)
    }

    /// A tick buffer: the spare one if any, else a new one (once per thread in steady state).
    fn take_state(&self, site: &'static Site) -> Box<TickState> {
        let p = self.spare.replace(ptr::null_mut());
        if p.is_null() {
            Box::new(TickState::new(site))
        } else {
            // SAFETY: the spare pointer came from `Box::into_raw` in `give_state`.
            unsafe { Box::from_raw(p) }
        }
    }

    fn give_state(&self, state: Box<TickState>) {
        state.clear_spans();
        state.annotations.borrow_mut().clear();
        *state.shared.borrow_mut() = None;
        if self.spare.get().is_null() {
            self.spare.set(Box::into_raw(state));
        }
    }

    #[inline(always)]
    fn current(&self) -> Option<&TickState> {
        let t = self.tick.get();
        // SAFETY: an installed tick stays alive until it is uninstalled from this thread.
        (!t.is_null()).then(|| unsafe { &*t })
    }

    /// Installs a tick (or a carried lane of one) on this thread. The thread's data slot (its
    /// ordinal and name in traces) is claimed here, before any span of the tick opens: a slot
    /// claimed at span close could be one that a short-lived sibling freed while this thread was
    /// still inside an overlapping span, and both spans would share a Chrome tid.
    fn install(&self, state: &TickState) {
        let _ = self.thread_data();
        state.prev.set(self.tick.get());
        self.set_tick(state as *const TickState as *mut TickState);
    }

    fn uninstall(&self, state: &TickState) {
        if ptr::eq(self.tick.get(), state) {
            self.set_tick(state.prev.get());
        }
    }

    fn set_tick(&self, tick: *mut TickState) {
        self.tick.set(tick);
        // SAFETY: an installed tick stays alive until it is uninstalled from this thread.
        self.mode.set(if tick.is_null() { MODE_FREE } else { unsafe { (*tick).mode } });
    }
}

/// This thread's `Local`. `LocalKey::with` with a closure this small always inlines to one
/// TLS-relative address computation; the hot path then works on the reference directly, which
/// keeps large closures (that LLVM would call out of line) away from `with`.
#[inline(always)]
fn local() -> &'static Local {
    // SAFETY: `LOCAL` is const-initialised and has no destructor, so it lives as long as the
    // thread and is never moved; callers use the reference on this thread only, within the call
    // (no reference is stored anywhere that could outlive the thread or reach another thread).
    LOCAL.with(|l| unsafe { &*(l as *const Local) })
}

/// The state a span needs from where it starts: mode, tick id, its id and parent.
///
/// Exchange requests are recorded always (SPEC): in an unsampled tick with capture off, an
/// exchange span feeds its histogram as if outside a tick (and stays out of the trace).
#[inline(always)]
fn open_span(site: &'static Site) -> (u8, u64, u32, u32) {
    let exchange = site.is_exchange();
    if !ENABLED.load(Relaxed) {
        return (MODE_OFF, 0, 0, 0);
    }
    match local().current() {
        None => (MODE_FREE, 0, 0, 0),
        Some(t) if t.mode == MODE_COUNT => {
            if exchange {
                (MODE_FREE, 0, 0, 0)
            } else {
                (MODE_OFF, 0, 0, 0)
            }
        }
        Some(t) => t.open_child(),
    }
}

/// Closes a span: histogram (unless cancelled, or a stage of a shadow tick: exchange requests
/// always feed theirs), trace of its tick if installed here.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn close_span(
    site: &'static Site,
    mode: u8,
    tick_id: u64,
    id: u32,
    parent: u32,
    start: u64,
    end: u64,
    cancelled: bool,
) {
    let l = local();
    let Some(th) = l.thread_data() else { return };
    let key = site.key();
    if cancelled {
        bump(&th.cell(key).cancelled, 1);
    } else if mode != MODE_SHADOW || site.is_exchange() {
        th.cell(key).hist.record(clock::ticks_to_ns(end.saturating_sub(start)));
    }
    if mode == MODE_FREE {
        return;
    }
    if let Some(t) = l.current()
        && t.tick_id == tick_id
    {
        if t.parent.get() == id {
            t.parent.set(parent);
        }
        let flag = if cancelled { CANCELLED } else { 0 };
        t.push(SpanRec { key: key | flag, id, parent, thread: th.ordinal.load(Relaxed), start, end });
    }
}

// ---------------------------------------------------------------------------------------------
// Sync stage

/// Times a synchronous stage until dropped (also during unwinding).
#[must_use = "a stage guard times its scope: bind it with `let _g = ...`"]
#[derive(Debug)]
pub struct StageGuard {
    site: &'static Site,
    tick_id: u64,
    start: u64,
    id: u32,
    parent: u32,
    mode: u8,
}

impl StageGuard {
    /// Opens a span for `site`.
    #[inline(always)]
    pub fn enter(site: &'static Site) -> StageGuard {
        let (mode, tick_id, id, parent) = open_span(site);
        let start = if mode == MODE_OFF { 0 } else { clock::now() };
        StageGuard { site, tick_id, start, id, parent, mode }
    }

    /// [`StageGuard::enter`] for a site made with `Site::stage` (what `#[stage]`, `in_stage!`
    /// and `stage_guard!` expand to): the kind is known, so it is not read.
    #[inline(always)]
    pub fn enter_stage(site: &'static Site) -> StageGuard {
        debug_assert!(!site.is_exchange(), "enter_stage on an exchange site");
        // An unsampled tick with capture off records no stage whatever the switches say, so one
        // thread-local byte decides it before anything else is read.
        let l = local();
        if l.mode.get() == MODE_COUNT || !ENABLED.load(Relaxed) {
            return StageGuard { site, tick_id: 0, start: 0, id: 0, parent: 0, mode: MODE_OFF };
        }
        let (mode, tick_id, id, parent) = l.current().map_or((MODE_FREE, 0, 0, 0), TickState::open_child);
        StageGuard { site, tick_id, start: clock::now(), id, parent, mode }
    }
}

/// Closes a guard's span. Out of line, so that the drop glue stays small enough to be inlined at
/// every call site (a guard that records nothing then costs one compare, a recording one one
/// call), and taking the fields by value (in registers), so that the guard never has to be
/// written to memory: a guard that records nothing stays a few registers.
#[inline(never)]
fn close_guard(site: &'static Site, tick_id: u64, start: u64, ids: u64, mode: u8, end: u64) {
    close_span(site, mode, tick_id, ids as u32, (ids >> 32) as u32, start, end, false);
}

impl Drop for StageGuard {
    #[inline(always)]
    fn drop(&mut self) {
        if self.mode != MODE_OFF {
            let ids = u64::from(self.id) | (u64::from(self.parent) << 32);
            close_guard(self.site, self.tick_id, self.start, ids, self.mode, clock::now());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Async stage

/// Times a future from its first poll to its completion; a future dropped before completing is
/// counted as cancelled (not in the latency histogram) and marked so in the trace.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Instrumented<F> {
    fut: F,
    site: &'static Site,
    tick_id: u64,
    start: u64,
    id: u32,
    parent: u32,
    mode: u8,
    phase: u8,
}

const NEW: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

impl<F: Future> Instrumented<F> {
    /// Wraps `fut`.
    pub fn new(site: &'static Site, fut: F) -> Self {
        Instrumented { fut, site, tick_id: 0, start: 0, id: 0, parent: 0, mode: MODE_OFF, phase: NEW }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned (never moved, dropped in place); the other fields
        // are plain data.
        let this = unsafe { self.get_unchecked_mut() };
        if this.phase == NEW {
            let (mode, tick_id, id, parent) = open_span(this.site);
            (this.mode, this.tick_id, this.id, this.parent) = (mode, tick_id, id, parent);
            this.phase = if mode == MODE_OFF { DONE } else { RUNNING };
            if mode != MODE_OFF {
                // The span was opened as the current parent; stages inside the future become
                // children only while it is being polled, so give the parent back for now.
                LOCAL.with(|l| {
                    if let Some(t) = l.current()
                        && t.tick_id == tick_id
                        && t.parent.get() == id
                    {
                        t.parent.set(parent);
                    }
                });
                this.start = clock::now();
            }
        }
        if this.phase != RUNNING {
            // SAFETY: see above.
            return unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx);
        }
        let restore = LOCAL.with(|l| match l.current() {
            Some(t) if t.tick_id == this.tick_id && this.tick_id != 0 => Some(t.parent.replace(this.id)),
            _ => None,
        });
        // SAFETY: see above.
        let out = unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx);
        if let Some(prev) = restore {
            LOCAL.with(|l| {
                if let Some(t) = l.current()
                    && t.tick_id == this.tick_id
                {
                    t.parent.set(prev);
                }
            });
        }
        if out.is_ready() {
            let end = clock::now();
            this.phase = DONE;
            close_span(this.site, this.mode, this.tick_id, this.id, this.parent, this.start, end, false);
        }
        out
    }
}

impl<F> Drop for Instrumented<F> {
    fn drop(&mut self) {
        if self.phase == RUNNING {
            let end = clock::now();
            close_span(self.site, self.mode, self.tick_id, self.id, self.parent, self.start, end, true);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ticks

fn begin_tick(l: &Local, site: &'static Site) -> Box<TickState> {
    let tick_id = NEXT_TICK.fetch_add(1, Relaxed);
    let sampled = crate::sampling::sampled(tick_id, SAMPLE_THRESHOLD.load(Relaxed));
    let mode = if sampled {
        MODE_RECORD
    } else if CAPTURE_SLOW.load(Relaxed) {
        MODE_SHADOW
    } else {
        MODE_COUNT
    };
    let mut state = l.take_state(site);
    state.tick_id = tick_id;
    state.site = site;
    state.mode = mode;
    state.lane = 0;
    state.cap = SPAN_CAP.load(Relaxed);
    state.parent.set(0);
    state.next_id.set(0);
    state.dropped.set(0);
    state.partial_fail.set(false);
    if mode != MODE_COUNT
        && let Some(th) = l.thread_data()
    {
        warm_up(th, &state);
    }
    state.start = clock::now();
    state
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
    let spans = unsafe { &*state.spans.get() };
    super::trace_ring::prefetch(spans.as_ptr().cast(), 8 * std::mem::size_of::<SpanRec>());
    if state.mode == MODE_RECORD {
        th.traces.prefetch_next();
    }
}

/// Ends a tick: tick_total, deadline, counters, and the trace if sampled or slow.
fn finish_tick(l: &Local, state: &TickState, end: u64) {
    let Some(th) = l.thread_data() else { return };
    let total_ns = clock::ticks_to_ns(end.saturating_sub(state.start));
    th.cell(TICK_TOTAL).hist.record(total_ns);
    bump(&th.counters.tick_ns, total_ns);
    let missed = total_ns > DEADLINE_NS.load(Relaxed);
    if missed {
        bump(&th.counters.deadline_misses, 1);
    }
    let shared = state.shared.borrow_mut().take();
    let remote = shared.as_ref().map(|s| s.close()).unwrap_or_default();
    let partial = state.partial_fail.get() || shared.as_ref().is_some_and(|s| s.partial_fail.load(Relaxed));
    if partial {
        bump(&th.counters.partial_fails, 1);
    }
    let reason = match state.mode {
        MODE_RECORD => Some(KeepReason::Sampled),
        MODE_SHADOW if missed || total_ns > SLOW_QUANTILE_NS.load(Relaxed) => Some(KeepReason::Slow),
        _ => None,
    };
    let dropped = u64::from(state.dropped.get());
    if let Some(reason) = reason {
        // SAFETY: the tick is uninstalled; no other reference to its span vector exists.
        let spans = unsafe { &mut *state.spans.get() };
        // The tick's own spans are capped as they are pushed; with carried spans the trace is cut
        // to the cap again when converted (`worker::to_trace`): count those here, once.
        let cut = if remote.is_empty() { 0 } else { (spans.len() + remote.len()).saturating_sub(state.cap as usize) };
        if dropped + cut as u64 > 0 {
            bump(&th.counters.spans_dropped, dropped + cut as u64);
        }
        if reason == KeepReason::Slow {
            bump(&th.counters.slow_kept, 1);
        }
        let mut annotations = std::mem::take(&mut *state.annotations.borrow_mut());
        if let Some(s) = &shared {
            annotations.extend(s.annotations.lock().unwrap_or_else(|e| e.into_inner()).drain(..));
        }
        let thread = th.ordinal.load(Relaxed);
        let fill = |t: &mut worker::RawTrace| {
            (t.tick_id, t.site, t.reason, t.start, t.end) = (state.tick_id, state.site, reason, state.start, end);
            (t.missed, t.partial, t.dropped, t.cap) = (missed, partial, dropped, state.cap as usize);
            (t.remote, t.annotations, t.thread) = (remote, annotations, thread);
            // The kept spans go into the slot; the slot's previous span buffer (read by the worker
            // by now) comes back as this thread's, capacity and all.
            std::mem::swap(&mut t.local, spans);
        };
        // SAFETY: `th` is the slot this thread holds: the only producer of its ring.
        if unsafe { th.traces.push(worker::RawTrace::empty, fill) } {
            worker::submitted(&th.counters.traces_submitted);
        } else {
            worker::TRACES_DROPPED.fetch_add(1, Relaxed);
        }
        worker::trim(spans);
    }
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
        if !ENABLED.load(Relaxed) {
            return TickGuard { inner: TickInner::Off };
        }
        let l = local();
        if l.current().is_some() {
            return TickGuard { inner: TickInner::Nested(StageGuard::enter(site)) };
        }
        let state = Box::into_raw(begin_tick(l, site));
        // SAFETY: just created; freed only in `drop` below.
        l.install(unsafe { &*state });
        TickGuard { inner: TickInner::Active(state) }
    }
}

impl Drop for TickGuard {
    fn drop(&mut self) {
        if let TickInner::Active(state) = self.inner {
            let end = clock::now();
            // SAFETY: created by `begin` with `Box::into_raw`; this guard is its only owner.
            let state = unsafe { Box::from_raw(state) };
            let l = local();
            l.uninstall(&state);
            finish_tick(l, &state, end);
            l.give_state(state);
        }
    }
}

/// The future `#[traced_tick]` wraps an async tick in: the tick is installed on whichever
/// thread polls it, for the duration of each poll.
#[must_use = "futures do nothing unless polled"]
pub struct TickFuture<F> {
    fut: F,
    site: &'static Site,
    state: Option<Box<TickState>>,
    phase: u8,
}

impl<F> std::fmt::Debug for TickFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickFuture").field("site", &self.site.name()).finish_non_exhaustive()
    }
}

// SAFETY: the tick state is only touched by the thread polling (or dropping) the future, one at a
// time, exactly like the future's own fields; its raw pointers refer to data owned by it.
unsafe impl<F: Send> Send for TickFuture<F> {}

impl<F: Future> TickFuture<F> {
    /// Wraps the body of an async tick.
    pub fn new(site: &'static Site, fut: F) -> Self {
        TickFuture { fut, site, state: None, phase: NEW }
    }
}

impl<F: Future> Future for TickFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned; other fields are not.
        let this = unsafe { self.get_unchecked_mut() };
        if this.phase == NEW {
            this.phase = DONE;
            if ENABLED.load(Relaxed) {
                LOCAL.with(|l| {
                    if l.current().is_none() {
                        this.state = Some(begin_tick(l, this.site));
                        this.phase = RUNNING;
                    }
                });
            }
        }
        let Some(state) = this.state.as_deref() else {
            // SAFETY: as above.
            return unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx);
        };
        LOCAL.with(|l| l.install(state));
        struct Uninstall<'a>(&'a TickState);
        impl Drop for Uninstall<'_> {
            fn drop(&mut self) {
                LOCAL.with(|l| l.uninstall(self.0));
            }
        }
        let guard = Uninstall(state);
        // SAFETY: as above.
        let out = unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx);
        drop(guard);
        if out.is_ready() {
            let end = clock::now();
            this.phase = DONE;
            if let Some(state) = this.state.take() {
                LOCAL.with(|l| {
                    finish_tick(l, &state, end);
                    l.give_state(state);
                });
            }
        }
        out
    }
}

impl<F> Drop for TickFuture<F> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            LOCAL.with(|l| {
                if let Some(th) = l.thread_data() {
                    bump(&th.counters.ticks_cancelled, 1);
                }
                if let Some(s) = state.shared.borrow_mut().take() {
                    s.close();
                }
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Carried contexts

/// A handle on the current tick that work handed to other threads or tasks carries along, so
/// their stages join the tick's trace (with the right parent) and feed its histograms.
///
/// ```
/// use mm_trace::{TickContext, stage, traced_tick};
///
/// #[stage]
/// fn fetch_md(symbol: &str) -> usize { symbol.len() }
///
/// #[traced_tick]
/// fn tick(symbols: &[&str]) -> usize {
///     let ctx = TickContext::current();
///     std::thread::scope(|s| {
///         let handles: Vec<_> = symbols
///             .iter()
///             .map(|sym| {
///                 let ctx = ctx.clone();
///                 s.spawn(move || ctx.in_scope(|| fetch_md(sym)))
///             })
///             .collect();
///         handles.into_iter().map(|h| h.join().unwrap()).sum()
///     })
/// }
/// assert_eq!(tick(&["BTC", "ETH"]), 6);
/// ```
#[derive(Clone, Default)]
pub struct TickContext {
    shared: Option<Arc<Shared>>,
    parent: u32,
}

impl std::fmt::Debug for TickContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickContext").field("tick_id", &self.shared.as_ref().map(|s| s.tick_id)).finish()
    }
}

impl TickContext {
    /// The tick running on this thread (and the span open in it, which becomes the parent of
    /// carried stages). Outside a tick, an empty context that carries nothing.
    pub fn current() -> TickContext {
        if !ENABLED.load(Relaxed) {
            return TickContext::default();
        }
        LOCAL.with(|l| match l.current() {
            Some(t) if t.mode != MODE_COUNT => TickContext { shared: Some(t.shared()), parent: t.parent.get() },
            _ => TickContext::default(),
        })
    }

    /// The id of the tick this context belongs to, if any.
    pub fn tick_id(&self) -> Option<u64> {
        self.shared.as_ref().map(|s| s.tick_id)
    }

    /// Joins the tick on this thread until the guard drops.
    pub fn enter(&self) -> ContextGuard {
        let Some(shared) = &self.shared else {
            return ContextGuard { state: None };
        };
        LOCAL.with(|l| {
            let mut state = l.take_state(&NO_SITE);
            state.tick_id = shared.tick_id;
            state.mode = shared.mode;
            state.lane = shared.next_lane.fetch_add(1, Relaxed) & ((1 << (32 - LANE_SHIFT)) - 1);
            state.cap = SPAN_CAP.load(Relaxed);
            state.parent.set(self.parent);
            state.next_id.set(0);
            state.dropped.set(0);
            state.partial_fail.set(false);
            *state.shared.borrow_mut() = Some(shared.clone());
            let state = Box::into_raw(state);
            // SAFETY: just created; freed in `ContextGuard::drop`.
            l.install(unsafe { &*state });
            ContextGuard { state: Some(state) }
        })
    }

    /// Runs `f` as part of the tick.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.enter();
        f()
    }

    /// Makes `fut` part of the tick wherever it is polled (e.g. in `tokio::spawn`).
    pub fn wrap<F: Future>(self, fut: F) -> WithContext<F> {
        WithContext { fut, ctx: self }
    }
}

static NO_SITE: Site = Site::stage("carried");

/// Keeps a carried [`TickContext`] installed on this thread; dropping it hands the spans
/// recorded meanwhile to the tick.
#[must_use = "the context is left when the guard drops"]
#[derive(Debug)]
pub struct ContextGuard {
    state: Option<*mut TickState>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        // SAFETY: created in `TickContext::enter` with `Box::into_raw`; this guard owns it.
        let state = unsafe { Box::from_raw(state) };
        LOCAL.with(|l| {
            l.uninstall(&state);
            let shared = state.shared.borrow_mut().take();
            if let Some(shared) = shared {
                let dropped = state.dropped.get();
                if dropped > 0
                    && let Some(th) = l.thread_data()
                {
                    bump(&th.counters.spans_dropped, u64::from(dropped));
                }
                if state.partial_fail.get() {
                    shared.partial_fail.store(true, Relaxed);
                }
                let annotations = std::mem::take(&mut *state.annotations.borrow_mut());
                if !annotations.is_empty() {
                    shared.annotations.lock().unwrap_or_else(|e| e.into_inner()).extend(annotations);
                }
                // SAFETY: uninstalled above; no other reference to the vector exists.
                let spans = unsafe { &mut *state.spans.get() };
                if !spans.is_empty() {
                    shared.push(spans.clone());
                }
            }
            l.give_state(state);
        });
    }
}

/// A future that joins a carried tick for each poll. See [`TickContext::wrap`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WithContext<F> {
    fut: F,
    ctx: TickContext,
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned; `ctx` is never moved out while pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let _g = this.ctx.enter();
        // SAFETY: as above.
        unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// Events on the current tick

/// Marks the current tick as partially failed.
pub(crate) fn partial_fail() {
    if !ENABLED.load(Relaxed) {
        return;
    }
    LOCAL.with(|l| match l.current() {
        Some(t) => t.partial_fail.set(true),
        None => {
            if let Some(th) = l.thread_data() {
                bump(&th.counters.partial_fails, 1);
            }
        }
    })
}

/// Adds metadata to the current tick's trace (kept only if the trace is kept).
pub(crate) fn annotate(key: &str, value: &str) {
    if !ENABLED.load(Relaxed) {
        return;
    }
    LOCAL.with(|l| {
        if let Some(t) = l.current()
            && (t.mode == MODE_RECORD || t.mode == MODE_SHADOW)
        {
            t.annotations.borrow_mut().push((key.to_owned(), value.to_owned()));
        }
    })
}

/// The id of the tick running on this thread.
pub(crate) fn current_tick_id() -> Option<u64> {
    LOCAL.with(|l| l.current().map(|t| t.tick_id))
}

/// Time one full recorded span costs here (two clock reads, histogram, trace push), in ns.
pub(crate) fn measure_span_cost() -> f64 {
    static CAL: Site = Site::stage("__mm_calibration");
    const N: u32 = 20_000;
    let l0 = clock::now();
    let mut state = TickState::new(&CAL);
    state.mode = MODE_RECORD;
    state.cap = N;
    state.tick_id = u64::MAX;
    LOCAL.with(|l| l.install(&state));
    for _ in 0..N {
        drop(StageGuard::enter(&CAL));
    }
    LOCAL.with(|l| l.uninstall(&state));
    state.clear_spans();
    let l1 = clock::now();
    // Saturating: a clock switch (test clock) between the reads must not panic the worker.
    clock::ticks_to_ns(l1.saturating_sub(l0)) as f64 / f64::from(N)
}

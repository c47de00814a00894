//! The narrow hook the `tracing` layer (feature `tracing`, `crate::tracing_layer`) drives the
//! collector through. A `tracing` span does not live in one scope as a `StageGuard` does: it is
//! made, entered and exited (maybe many times, on several threads) and closed as separate
//! callbacks, so the layer keeps what [`open`] returns ([`Opened`], plain integers) in its own
//! span table and hands it back at each step. What a span records is still decided by
//! `span::close`; ticks are still `TickGuard`s; work on other threads still joins its tick
//! through a [`TickContext`].

use std::sync::atomic::Ordering::Relaxed;

use super::counters::Counter;
use super::events;
use super::local::local;
use super::span::close as close_span;
use super::switches::ENABLED;
use super::tick::TickGuard;
use super::tick_state::{Mode, SpanIds, SpanOpening, TickState};
use super::trace_record::Outcome;
use crate::clock;

pub(crate) use super::context::{ContextGuard, TickContext};
pub(crate) use super::site::Site;

/// What the thread making a span is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Here {
    /// Recording off, or an unsampled tick with slow-tick capture off: a span made here records
    /// nothing (as a stage there does not).
    Off,
    /// No tick: histograms only.
    Free,
    /// A tick that may keep its trace; `innermost` is its open span (0: the tick itself).
    Tick { tick_id: u64, innermost: u32 },
}

/// Where a span being made is. One thread-local byte decides `Off` in an unsampled tick.
#[inline]
pub(crate) fn here() -> Here {
    let l = local();
    let mode = l.mode();
    if mode == Mode::Count || !ENABLED.load(Relaxed) {
        return Here::Off;
    }
    match l.current() {
        Some(t) => Here::Tick { tick_id: t.tick_id, innermost: t.parent.get() },
        None => Here::Free,
    }
}

/// Whether a tick (or a carried lane of one) is installed on this thread.
#[inline]
pub(crate) fn in_tick() -> bool {
    local().current().is_some()
}

/// A span as [`open`] opened it: what entering again, leaving and closing it need, as integers
/// the layer keeps in atomics (`mode` as `Mode`'s byte, `ids` as `SpanIds` packs them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Opened {
    pub(crate) mode: u8,
    pub(crate) tick_id: u64,
    pub(crate) ids: u64,
    pub(crate) start: u64,
}

impl Opened {
    /// A span that records nothing.
    pub(crate) const OFF: Opened = Opened { mode: Mode::Off as u8, tick_id: 0, ids: 0, start: 0 };

    fn new(span: SpanOpening, start: u64) -> Opened {
        let ids = u64::from(span.ids.id()) | (u64::from(span.ids.parent()) << 32);
        Opened { mode: span.mode as u8, tick_id: span.tick_id, ids, start }
    }

    fn span(self) -> SpanOpening {
        let mode = match self.mode {
            0 => Mode::Free,
            1 => Mode::Count,
            2 => Mode::Shadow,
            3 => Mode::Record,
            _ => Mode::Off,
        };
        SpanOpening { mode, tick_id: self.tick_id, ids: SpanIds::new(self.id(), (self.ids >> 32) as u32) }
    }

    /// Whether the span records anything.
    #[inline]
    pub(crate) fn records(self) -> bool {
        self.mode != Mode::Off as u8
    }

    /// Whether the span is part of a tick (not a histogram-only span).
    #[inline]
    pub(crate) fn in_a_tick(self) -> bool {
        self.records() && self.mode != Mode::Free as u8
    }

    /// The span's id in its tick's trace (0 outside a tick).
    #[inline]
    pub(crate) fn id(self) -> u32 {
        self.ids as u32
    }
}

/// How [`open`] went.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Open {
    /// Opened on this thread; `saved` is the open span it replaced (give it back on leaving).
    Here { opened: Opened, saved: u32 },
    /// The span's tick is not installed on this thread: carry it here first.
    Elsewhere,
}

/// Opens a span of tick `tick_id` (0: a span outside any tick, histogram only) at its first
/// enter, as a child of the span open in that tick on this thread (`parent` overrides that
/// parent's id). The span becomes the open one, as a stage does.
#[inline]
pub(crate) fn open(tick_id: u64, parent: Option<u32>) -> Open {
    if !ENABLED.load(Relaxed) {
        return Open::Here { opened: Opened::OFF, saved: 0 };
    }
    if tick_id == 0 {
        return Open::Here { opened: Opened::new(SpanOpening::FREE, clock::now()), saved: 0 };
    }
    match local().current() {
        Some(t) if t.tick_id == tick_id => {
            let saved = t.parent.get();
            let mut span = t.open_child();
            if let Some(p) = parent {
                span.ids = SpanIds::new(span.ids.id(), p);
            }
            Open::Here { opened: Opened::new(span, clock::now()), saved }
        }
        _ => Open::Elsewhere,
    }
}

/// Makes span `id` of tick `tick_id` (opened) the open one of its tick again: entered again, e.g.
/// the next poll of an instrumented future. `None`: that tick is not installed here.
#[inline]
pub(crate) fn reenter(tick_id: u64, id: u32) -> Option<u32> {
    match local().current() {
        Some(t) if t.tick_id == tick_id => Some(t.parent.replace(id)),
        _ => None,
    }
}

/// Span `id` of tick `tick_id` was exited: `saved` (what [`open`] or [`reenter`] returned) is the
/// open span again.
#[inline]
pub(crate) fn leave(tick_id: u64, id: u32, saved: u32) {
    if let Some(t) = local().current()
        && t.tick_id == tick_id
        && t.parent.get() == id
    {
        t.parent.set(saved);
    }
}

/// Closes an opened span at `end` (a reading of [`now`]): its histogram and, if its tick is
/// installed here, its tick's trace; otherwise the context `carry` gives (the span's tick
/// context, asked for only then) takes the record to the tick. `failed`: counted in the stage's
/// errors.
#[inline]
pub(crate) fn close<'a>(
    site: &'static Site,
    o: Opened,
    end: u64,
    failed: bool,
    carry: impl FnOnce() -> Option<&'a TickContext>,
) {
    if !o.records() {
        return;
    }
    let outcome = if failed { Outcome::Failed } else { Outcome::Done };
    if o.in_a_tick()
        && local().current().is_none_or(|t| t.tick_id != o.tick_id)
        && let Some(carry) = carry()
    {
        close_carried(site, o, end, outcome, carry);
        return;
    }
    close_span(site, o.span(), o.start, end, outcome);
}

#[cold]
#[inline(never)]
fn close_carried(site: &'static Site, o: Opened, end: u64, outcome: Outcome, carry: &TickContext) {
    let _lane = carry.enter();
    close_span(site, o.span(), o.start, end, outcome);
}

/// The tick installed on this thread as a context to carry elsewhere, with `parent` (default:
/// its open span) as the parent of what runs under it. Empty outside a tick, or in one that
/// keeps no trace.
pub(crate) fn carry(parent: Option<u32>) -> TickContext {
    let Some(t) = local().current() else { return TickContext::default() };
    match parent {
        None => TickContext::current(),
        Some(p) => {
            let open = t.parent.replace(p);
            let ctx = TickContext::current();
            t.parent.set(open);
            ctx
        }
    }
}

/// Counts a span the layer could not keep (its span table had no room).
#[cold]
pub(crate) fn untracked() {
    super::counters::add(Counter::UntrackedSpans, 1);
}

/// Spans the layer could not keep, since start or the last reset (`Health::untracked_spans`).
pub(crate) fn untracked_count() -> u64 {
    super::merged::counter(Counter::UntrackedSpans)
}

/// One reading of the spans' clock.
#[inline(always)]
pub(crate) fn now() -> u64 {
    clock::now()
}

/// Adds an annotation to the tick installed here (if it may keep its trace; bounded by the cap).
pub(crate) fn annotate(key: &str, value: &dyn std::fmt::Display) {
    events::annotate(key, value)
}

/// A tick begun by a `tracing` span (`tick_span`): installed while the span is entered, ended
/// when it closes, on whichever thread that is (as a `TickFuture` is installed per poll).
#[derive(Debug)]
pub(crate) struct TickSpan {
    guard: TickGuard,
    state: *const TickState,
}

// SAFETY: the tick's state is touched only by the thread that has it installed, one thread at a
// time (the layer installs it on enter only after winning the span's claim, and takes it back on
// exit), and it is ended only once the span is closed, when no thread has it entered: the same
// hand-over as a `TickFuture` moving between the threads that poll it.
unsafe impl Send for TickSpan {}

impl TickSpan {
    /// Begins a tick on this thread (installed), unless a tick is installed here already (the
    /// span is then a stage of it) or recording is off. Returns it with its tick id.
    pub(crate) fn begin(site: &'static Site) -> Option<(TickSpan, u64)> {
        let l = local();
        if l.current().is_some() || !ENABLED.load(Relaxed) {
            return None;
        }
        let guard = TickGuard::begin(site);
        let state = l.current()?;
        let tick_id = state.tick_id;
        Some((TickSpan { guard, state }, tick_id))
    }

    /// Installs the tick on this thread (the span is entered again).
    pub(crate) fn install(&self) {
        // SAFETY: the state lives until `guard` is dropped; see `unsafe impl Send` above.
        local().install(unsafe { &*self.state });
    }

    /// Uninstalls the tick from this thread (the span was exited).
    pub(crate) fn uninstall(&self) {
        // SAFETY: as in `install`.
        local().uninstall(unsafe { &*self.state });
    }

    /// Ends the tick on this thread: tick_total, deadline, the trace if kept. `failed`: an
    /// error happened in it (counted as an errored tick, as a `#[traced_tick]` returning `Err`).
    pub(crate) fn end(self, failed: bool) {
        if failed { self.guard.close_failed() } else { drop(self.guard) }
    }
}

/// A carried context entered on this thread until dropped (held while a span of another
/// thread's tick is entered here).
pub(crate) type Lane = ContextGuard;

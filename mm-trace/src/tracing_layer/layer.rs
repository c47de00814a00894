//! The layer's callbacks (instrumentation compiled in): each `tracing` span step becomes a step
//! of the collector through `collector::bridge`.
//!
//! - `on_new_span`: finds the callsite's `Site` (resolved at `register_callsite`), claims a slot,
//!   notes the tick the span is made in and its `tracing` parent in that tick; a span that may
//!   later run where its tick is not installed keeps the tick's context (one per parent span).
//! - `on_enter`: the first enter opens the span (its start, its id in the tick's trace, as a
//!   child of what is open there), or begins a tick for a `tick_span`; on a thread where the
//!   span's tick is not installed, it first joins the tick as a carried lane.
//! - `on_exit`: gives back the open span (and leaves the lane, or uninstalls the tick).
//! - `on_close`: the span's histogram and trace record, or the tick's end.
//! - `on_event`: ERROR marks the span failed; WARN and above annotate the tick.

use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::carrier::{self, Carrier};
use super::fields::EventText;
use super::role::Role;
use super::spans::{EXPLICIT, FAILED, IS_TICK, OPENED, Slot, TICK_SITE};
use super::stack::{self, Entry, Kind, Last};
use super::table::SpanTable;
use super::{MmTraceLayer, Tables};
use crate::collector::bridge::{self, Here, Lane, Open, Opened, TickContext, TickSpan};

impl MmTraceLayer {
    #[inline]
    fn spans(&self) -> &SpanTable {
        &self.tables.spans
    }

    /// This layer's tag on a thread's stack.
    #[inline]
    fn tag(&self) -> usize {
        &*self.tables as *const Tables as usize
    }

    fn role(&self, name: &str) -> Role {
        self.ticks.iter().find(|(n, _)| n == name).map_or(Role::Stage, |(_, role)| *role)
    }

    /// Span `id`'s slot: the one last made or exited on this thread if that is it, else a lookup.
    #[inline]
    fn find(&self, last: Option<Last>, id: u64) -> Option<u32> {
        match last {
            // Made here without a slot (recording off, say): nothing to look up.
            Some(l) if l.table == self.tag() && l.id == id && l.slot == Last::NOT_KEPT => None,
            Some(l) if l.table == self.tag() && l.id == id && self.spans().holds(l.slot, id) => Some(l.slot),
            _ => self.spans().find(id),
        }
    }

    /// Notes on this thread that span `id` has no slot, so that its enter and close, which
    /// usually come next here, return at once.
    #[inline]
    fn not_kept(&self, id: u64) {
        let table = self.tag();
        stack::with(|s| s.last = Last { table, id, slot: Last::NOT_KEPT });
    }

    #[inline]
    fn new_span(&self, attrs: &Attributes<'_>, id: &Id) {
        let here = bridge::here();
        if here == Here::Off {
            return self.not_kept(id.into_u64());
        }
        let meta = attrs.metadata();
        let (site, tick_site) = match self.tables.callsites.get(meta) {
            Some(found) => found,
            None => self.tables.callsites.register(meta, self.role(meta.name())),
        };
        let mut flags = if tick_site { TICK_SITE } else { 0 };
        let (tick_id, parent) = if attrs.is_root() {
            (0, 0)
        } else if let Some(p) = attrs.parent() {
            match self.spans().find(p.into_u64()) {
                Some(p) => {
                    flags |= EXPLICIT;
                    (self.spans().slot(p).tick_id(), p + 1)
                }
                None => self.contextual(here),
            }
        } else {
            self.contextual(here)
        };
        // Made where its tick runs: keep what carries the tick to another thread, in case the
        // span is entered there (spawned, say). A span under a parent of the same tick shares
        // the parent's context (and opens under the parent there); one directly under a stage
        // or the tick refers to this thread's carrier of the tick, with that stage or the tick
        // as its parent there.
        let mut under = None;
        if let Here::Tick { tick_id: here_tick, innermost } = here
            && tick_id == here_tick
        {
            match parent.checked_sub(1).map(|p| self.spans().slot(p)) {
                Some(p) if p.carry().is_none() => p.set_carry(bridge::carry(Some(p.trace_id()))),
                Some(_) => {}
                None => under = Some(innermost),
            }
        }
        let (id, table) = (id.into_u64(), self.tag());
        let made = stack::with(|s| {
            let index = self.tables.spans.insert(id, s.held.token(), |owned| s.owned.push(owned))?;
            let slot = self.spans().slot(index);
            slot.init(site, tick_id, flags, parent);
            s.last = Last { table, id, slot: index };
            if let Some(innermost) = under {
                slot.set_carrier(s.held.acquire(tick_id), innermost);
            }
            Some(())
        });
        match made {
            Some(Some(())) => {}
            Some(None) => {
                bridge::untracked();
                self.not_kept(id);
            }
            // The thread is exiting (its locals are being destroyed): the shared part only.
            None => match self.spans().insert_shared(id) {
                Some(index) => self.spans().slot(index).init(site, tick_id, flags, parent),
                None => {
                    bridge::untracked();
                }
            },
        }
    }

    /// The tick and parent of a span made in the current context: the tick running here, under
    /// the innermost entered span of this layer if that is the open span of the tick (not, say, a
    /// `#[stage]` inside it: then the span hangs under the stage).
    #[inline]
    fn contextual(&self, here: Here) -> (u64, u32) {
        let Here::Tick { tick_id, innermost } = here else { return (0, 0) };
        let top = stack::with(|s| s.top(self.tag()).copied()).flatten();
        let parent = top.and_then(|top| {
            let p = self.spans().slot(top.slot);
            let open = match top.kind {
                Kind::Span => p.tick_id() == tick_id && p.trace_id() == innermost,
                Kind::Tick => p.tick_id() == tick_id && innermost == 0,
                Kind::Plain => false,
            };
            open.then_some(top.slot + 1)
        });
        (tick_id, parent.unwrap_or(0))
    }

    #[inline]
    fn enter(&self, id: &Id) {
        let id = id.into_u64();
        let last = stack::with(|s| s.last);
        let Some(index) = self.find(last, id) else { return };
        let slot = self.spans().slot(index);
        let state = slot.state();
        // The usual first enter: a span of the tick installed here, or of none. (Where the tick
        // is not installed, `enter_rest` asks `open` again: it changes nothing when it says so.)
        if state & (OPENED | TICK_SITE | EXPLICIT) == 0
            && let Open::Here { opened, saved } = bridge::open(slot.tick_id(), None)
        {
            return self.push_entry(id, index, saved, opened_here(slot, opened), None);
        }
        self.enter_rest(id, index, slot, state);
    }

    /// Notes an enter on this thread's stack (and the lane it holds, if any), for its exit.
    #[inline]
    fn push_entry(&self, id: u64, index: u32, saved: u32, kind: Kind, lane: Option<Lane>) {
        let (table, has_lane) = (self.tag(), lane.is_some());
        stack::with(|s| {
            s.entries.push(Entry { table, id, slot: index, saved, kind, lane: has_lane });
            if let Some(lane) = lane {
                s.lanes.push((table, id, lane));
            }
        });
    }

    /// Every other enter: again, of a tick span, under an explicit parent, or on a thread where
    /// the span's tick is not installed.
    #[inline(never)]
    fn enter_rest(&self, id: u64, index: u32, slot: &Slot, state: u32) {
        let (kind, saved, lane) = if state & OPENED == 0 {
            self.first_enter(index, state)
        } else if state & IS_TICK != 0 {
            if slot.claim_tick() {
                // SAFETY: `IS_TICK`, and this thread holds the claim.
                unsafe { slot.tick() }.install();
                (Kind::Tick, 0, None)
            } else {
                (Kind::Plain, 0, None)
            }
        } else {
            self.reenter(index, slot)
        };
        self.push_entry(id, index, saved, kind, lane);
    }

    /// An opened span entered again: the open span of its tick here, or of a lane of it.
    #[inline]
    fn reenter(&self, index: u32, slot: &Slot) -> (Kind, u32, Option<Lane>) {
        let Some(opened) = slot.opened().filter(|o| o.in_a_tick()) else { return (Kind::Plain, 0, None) };
        if let Some(saved) = bridge::reenter(opened.tick_id, opened.id()) {
            return (Kind::Span, saved, None);
        }
        match self.carry_of(index) {
            Some(carry) => {
                let lane = carry.enter();
                let saved = bridge::reenter(opened.tick_id, opened.id()).unwrap_or(0);
                (Kind::Span, saved, Some(lane))
            }
            None => (Kind::Plain, 0, None),
        }
    }

    /// Opens a span at its first enter: a tick (a `tick_span` entered where no tick runs), or a
    /// span of its tick (joining the tick as a lane if it runs elsewhere), or a histogram-only span.
    #[inline]
    fn first_enter(&self, index: u32, state: u32) -> (Kind, u32, Option<Lane>) {
        let slot = self.spans().slot(index);
        let tick_id = slot.tick_id();
        if state & TICK_SITE != 0 && tick_id == 0 && !bridge::in_tick() && slot.claim_tick() {
            match TickSpan::begin(slot.site()) {
                Some((tick, tick_id)) => {
                    slot.set_tick(tick, tick_id);
                    return (Kind::Tick, 0, None);
                }
                None => slot.release_tick(),
            }
        }
        let parent = if state & EXPLICIT != 0 { self.explicit_parent(slot.parent()) } else { None };
        match bridge::open(tick_id, parent) {
            Open::Here { opened, saved } => (opened_here(slot, opened), saved, None),
            Open::Elsewhere => self.open_carried(index, tick_id),
        }
    }

    /// The trace parent of a span made with an explicit `tracing` parent: that parent's id, unless
    /// the parent is entered on this thread (then the innermost open span, which is the parent
    /// or a stage inside it, is the parent, as for any span).
    #[cold]
    fn explicit_parent(&self, parent: u32) -> Option<u32> {
        let p = parent.checked_sub(1)?;
        let table = self.tag();
        let entered_here = stack::with(|s| s.entries.iter().any(|e| e.table == table && e.slot == p)).unwrap_or(false);
        let p = self.spans().slot(p);
        (!entered_here && p.state() & OPENED != 0).then(|| p.trace_id())
    }

    /// What carries span `index`'s tick to this thread: its own context, or (kept as its own from
    /// then on) its parent's.
    #[cold]
    fn carry_of(&self, index: u32) -> Option<&TickContext> {
        let slot = self.spans().slot(index);
        if slot.carry().is_none() {
            if let Some(p) = slot.parent().checked_sub(1)
                && let Some(carry) = self.spans().slot(p).carry()
            {
                slot.set_carry(carry.clone());
            } else if let Some(ctx) = slot.carrier_context() {
                slot.set_carry(ctx);
            }
        }
        slot.carry()
    }

    /// First enter on a thread where the span's tick is not installed: join the tick there as a
    /// carried lane (the span's own context, or its parent's), then open in it.
    #[cold]
    fn open_carried(&self, index: u32, tick_id: u64) -> (Kind, u32, Option<Lane>) {
        let slot = self.spans().slot(index);
        if let Some(carry) = self.carry_of(index)
            && carry.tick_id() == Some(tick_id)
        {
            let lane = carry.enter();
            // Under its `tracing` parent; a span without one (made under a stage, or the tick)
            // carries its own context, whose parent is where it was made.
            let parent = slot.parent().checked_sub(1).map(|p| self.spans().slot(p).trace_id());
            if let Open::Here { opened, saved } = bridge::open(tick_id, parent) {
                return (opened_here(slot, opened), saved, Some(lane));
            }
        }
        // Nothing carries the tick here (it keeps no trace, or the span was made where it did
        // not run): a histogram-only span.
        if let Open::Here { opened, .. } = bridge::open(0, None) {
            slot.set_opened(opened);
        }
        (Kind::Plain, 0, None)
    }

    #[inline]
    fn exit(&self, id: &Id) {
        let (id, table) = (id.into_u64(), self.tag());
        let Some((entry, lane)) = stack::with(|s| {
            let entry = s.pop(table, id)?;
            s.last = Last { table, id, slot: entry.slot };
            let lane = if entry.lane { s.take_lane(table, id) } else { None };
            Some((entry, lane))
        })
        .flatten() else {
            return;
        };
        let slot = self.spans().slot(entry.slot);
        match entry.kind {
            Kind::Span => bridge::leave(slot.tick_id(), slot.trace_id(), entry.saved),
            Kind::Tick => {
                // SAFETY: `IS_TICK`, and this thread holds the claim since the enter.
                unsafe { slot.tick() }.uninstall();
                slot.release_tick();
            }
            Kind::Plain => {}
        }
        drop(lane);
    }

    #[inline]
    fn close(&self, id: &Id) {
        let id = id.into_u64();
        let last = stack::with(|s| s.last);
        let Some(index) = self.find(last, id) else { return };
        let slot = self.spans().slot(index);
        let state = slot.state();
        if state & IS_TICK == 0
            && let Some(opened) = slot.opened()
        {
            let end = bridge::now();
            bridge::close(slot.site(), opened, end, state & FAILED != 0, || self.carry_of(index));
        }
        let tick = slot.clear(give_back);
        self.spans().remove(index);
        if let Some(tick) = tick {
            tick.end(state & FAILED != 0);
        }
    }

    fn event(&self, event: &Event<'_>) {
        let level = *event.metadata().level();
        let annotate = self.annotate.is_some_and(|min| level <= min);
        if level != Level::ERROR && !annotate {
            return;
        }
        if level == Level::ERROR {
            let span = if event.is_root() {
                None
            } else if let Some(p) = event.parent() {
                self.spans().find(p.into_u64())
            } else {
                let table = self.tag();
                stack::with(|s| s.top(table).map(|e| e.slot)).flatten()
            };
            if let Some(index) = span {
                self.spans().slot(index).add_flags(FAILED);
            }
        }
        if annotate {
            bridge::annotate(level.as_str(), &EventText(event));
        }
    }
}

impl<S: Subscriber> Layer<S> for MmTraceLayer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() {
            self.tables.callsites.register(meta, self.role(meta.name()));
        }
        // Never `never`: that would silence the callsite for every other layer too.
        Interest::always()
    }

    #[inline]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        self.new_span(attrs, id)
    }

    #[inline]
    fn on_enter(&self, id: &Id, _: Context<'_, S>) {
        self.enter(id)
    }

    #[inline]
    fn on_exit(&self, id: &Id, _: Context<'_, S>) {
        self.exit(id)
    }

    #[inline]
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        self.close(&id)
    }

    #[inline]
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        self.event(event)
    }
}

/// Gives back a closed span's carrier reference with this thread's hold (a thread exiting has
/// none: then through the carrier's counter).
#[inline]
fn give_back(c: *mut Carrier) {
    // SAFETY: `Slot::clear` hands each slot's reference over once.
    if stack::with(|s| unsafe { carrier::release(c, Some(&mut s.held)) }).is_none() {
        // SAFETY: as above; not given back by the call above (the stack was gone).
        unsafe { carrier::release(c, None) };
    }
}

/// Records `opened` (opened on this thread) in its slot: what its enter made it.
#[inline]
fn opened_here(slot: &Slot, opened: Opened) -> Kind {
    slot.set_opened(opened);
    if opened.in_a_tick() { Kind::Span } else { Kind::Plain }
}

//! What the layer keeps for each selected `tracing` span: a [`Slot`] of the span table
//! (`table.rs`), written with plain atomic loads and stores.
//!
//! The registry's own per-span storage (`extensions_mut`) takes a lock and boxes each value:
//! measured in peer-bench, a layer that keeps a start time there on every enter costs several
//! times what this table does (docs on `tracing_layer` give the figures).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

use super::carrier::Carrier;
use crate::collector::bridge::{Opened, Site, TickContext, TickSpan};

/// `Slot::state`: the low byte is the opened span's mode, the flags are above it.
pub(super) const OPENED: u32 = 1 << 8;
/// An ERROR event happened inside the span: it closes as failed.
pub(super) const FAILED: u32 = 1 << 9;
/// The span's callsite names a tick (`tick_span`): it begins a tick if no tick is running where
/// it is first entered.
pub(super) const TICK_SITE: u32 = 1 << 10;
/// The span began a tick: `Slot::tick` holds it, `Slot::tick_id` is its id.
pub(super) const IS_TICK: u32 = 1 << 11;
/// The span was made with an explicit parent (`parent: &span`), in `Slot::parent`.
pub(super) const EXPLICIT: u32 = 1 << 12;

const CARRY_NONE: u32 = 0;
const CARRY_WRITING: u32 = 1;
const CARRY_SET: u32 = 2;

/// One selected span. Written by whichever thread makes, enters or closes the span; `tracing`
/// orders those steps (a span handle reaches another thread only through something that
/// synchronises), so relaxed atomics suffice for the fields, and they keep a span entered on two
/// threads at once (a `Span` is `Sync`) free of data races.
#[repr(C, align(64))]
pub(super) struct Slot {
    site: AtomicPtr<Site>,
    /// The tick the span belongs to (0: none), then its opened tick.
    tick_id: AtomicU64,
    ids: AtomicU64,
    start: AtomicU64,
    state: AtomicU32,
    /// Index + 1 of the slot of the span's `tracing` parent in the same tick (0: none).
    parent: AtomicU32,
    carry_state: AtomicU32,
    /// For a tick span: 1 while some thread has the tick installed.
    installed: AtomicU32,
    /// The carrier of the span's tick, for a span made in a tick under no `tracing` parent of
    /// it (a reference, given back in `clear`), and the id of the span open in the tick then.
    carrier: AtomicPtr<Carrier>,
    carry_parent: AtomicU32,
    // Second cache line: only for spans that cross threads, and for ticks.
    carry: UnsafeCell<MaybeUninit<TickContext>>,
    tick: UnsafeCell<MaybeUninit<TickSpan>>,
}

impl Slot {
    /// Fills a freshly claimed slot (only the claiming thread sees it yet).
    #[inline]
    pub(super) fn init(&self, site: &'static Site, tick_id: u64, flags: u32, parent: u32) {
        self.site.store(site as *const Site as *mut Site, Relaxed);
        self.tick_id.store(tick_id, Relaxed);
        self.parent.store(parent, Relaxed);
        self.state.store(flags, Release);
    }

    #[inline]
    pub(super) fn site(&self) -> &'static Site {
        // SAFETY: set in `init` from a `&'static Site` before the slot's id could be looked up.
        unsafe { &*self.site.load(Relaxed) }
    }

    #[inline]
    pub(super) fn state(&self) -> u32 {
        self.state.load(Acquire)
    }

    /// Adds flags (an event on another thread may be setting `FAILED` meanwhile).
    pub(super) fn add_flags(&self, flags: u32) {
        self.state.fetch_or(flags, Release);
    }

    #[inline]
    pub(super) fn tick_id(&self) -> u64 {
        self.tick_id.load(Relaxed)
    }

    /// The slot index + 1 of the span's parent in the same tick (0: none).
    #[inline]
    pub(super) fn parent(&self) -> u32 {
        self.parent.load(Relaxed)
    }

    /// The span as opened, if it was.
    #[inline]
    pub(super) fn opened(&self) -> Option<Opened> {
        let state = self.state();
        (state & OPENED != 0).then(|| Opened {
            mode: state as u8,
            tick_id: self.tick_id.load(Relaxed),
            ids: self.ids.load(Relaxed),
            start: self.start.load(Relaxed),
        })
    }

    /// Records the span as opened (its first enter).
    #[inline]
    pub(super) fn set_opened(&self, o: Opened) {
        self.tick_id.store(o.tick_id, Relaxed);
        self.ids.store(o.ids, Relaxed);
        self.start.store(o.start, Relaxed);
        let flags = self.state.load(Relaxed) & !0xff;
        self.state.store(flags | OPENED | u32::from(o.mode), Release);
    }

    /// The span's id in its tick's trace (0: the tick itself, or not opened).
    #[inline]
    pub(super) fn trace_id(&self) -> u32 {
        self.ids.load(Relaxed) as u32
    }

    /// The context that carries this span's tick to other threads, if one was taken.
    #[inline]
    pub(super) fn carry(&self) -> Option<&TickContext> {
        if self.carry_state.load(Acquire) != CARRY_SET {
            return None;
        }
        // SAFETY: written once before `CARRY_SET` was published (Release above pairs with it),
        // never written again until `clear`, which runs when no other thread can reach the slot.
        Some(unsafe { (*self.carry.get()).assume_init_ref() })
    }

    /// Keeps a reference to the carrier of the span's tick (the slot was just claimed), with
    /// `parent`, the span open in the tick, as the parent of the span where it is carried.
    #[inline]
    pub(super) fn set_carrier(&self, c: *mut Carrier, parent: u32) {
        self.carry_parent.store(parent, Relaxed);
        self.carrier.store(c, Release);
    }

    /// The context the span's carrier holds, with the parent noted in `set_carrier`.
    pub(super) fn carrier_context(&self) -> Option<TickContext> {
        // SAFETY: the slot's reference keeps the carrier alive until `clear`.
        let c = unsafe { self.carrier.load(Acquire).as_ref() }?;
        Some(c.context(self.carry_parent.load(Relaxed)))
    }

    /// Keeps `ctx` as the span's carried context unless one is kept already.
    pub(super) fn set_carry(&self, ctx: TickContext) {
        if self.carry_state.compare_exchange(CARRY_NONE, CARRY_WRITING, Acquire, Relaxed).is_ok() {
            // SAFETY: the compare-and-swap gives this thread the only right to write; readers
            // wait for `CARRY_SET`.
            unsafe { (*self.carry.get()).write(ctx) };
            self.carry_state.store(CARRY_SET, Release);
        }
    }

    /// Claims the tick span's tick for this thread (to install it). `false`: another thread has
    /// the span entered right now.
    #[inline]
    pub(super) fn claim_tick(&self) -> bool {
        self.installed.compare_exchange(0, 1, Acquire, Relaxed).is_ok()
    }

    /// Whether a thread has the tick span's tick installed now.
    pub(super) fn is_installed(&self) -> bool {
        self.installed.load(Relaxed) != 0
    }

    /// Gives the claim back (the tick was uninstalled).
    #[inline]
    pub(super) fn release_tick(&self) {
        self.installed.store(0, Release);
    }

    /// Stores the tick this span began (the thread holds the claim).
    pub(super) fn set_tick(&self, tick: TickSpan, tick_id: u64) {
        // SAFETY: this thread holds the claim; no other thread reads `tick` without it.
        unsafe { (*self.tick.get()).write(tick) };
        self.tick_id.store(tick_id, Relaxed);
        let flags = self.state.load(Relaxed);
        self.state.store(flags | OPENED | IS_TICK | u32::from(Opened::OFF.mode), Release);
    }

    /// The tick this span began.
    ///
    /// # Safety
    /// The state has `IS_TICK`, and the caller holds the claim (or is closing the span).
    pub(super) unsafe fn tick(&self) -> &TickSpan {
        // SAFETY: as the caller promises, `set_tick` wrote it.
        unsafe { (*self.tick.get()).assume_init_ref() }
    }

    /// Empties the slot of a closed span, returning the tick it began, if any. Only the closing
    /// thread reaches the slot now: the span's id is gone from `tracing`, and its children, which
    /// read their parent's carried context, all closed before it.
    /// `give_back` is handed the slot's carrier reference, if it holds one, to give back (with
    /// `carrier::release`).
    #[inline]
    pub(super) fn clear(&self, give_back: impl FnOnce(*mut Carrier)) -> Option<TickSpan> {
        let c = self.carrier.load(Relaxed);
        if !c.is_null() {
            // Handed over once: the pointer is cleared.
            self.carrier.store(std::ptr::null_mut(), Relaxed);
            give_back(c);
        }
        let state = self.state.load(Relaxed);
        if state & IS_TICK != 0 || self.carry_state.load(Acquire) != CARRY_NONE {
            return self.clear_rest(state);
        }
        // Plain store, no read-modify-write: nothing else writes the slot any more.
        self.state.store(0, Relaxed);
        None
    }

    /// The rest of `clear` for a span that began a tick or kept a carried context.
    #[cold]
    #[inline(never)]
    fn clear_rest(&self, state: u32) -> Option<TickSpan> {
        if self.carry_state.load(Acquire) == CARRY_SET {
            // SAFETY: set, and no other thread reaches the slot (see above).
            unsafe { (*self.carry.get()).assume_init_drop() };
        }
        self.carry_state.store(CARRY_NONE, Relaxed);
        self.state.store(0, Relaxed);
        self.installed.store(0, Relaxed);
        // SAFETY: `IS_TICK` says `set_tick` wrote it; it is moved out exactly once, here.
        (state & IS_TICK != 0).then(|| unsafe { (*self.tick.get()).assume_init_read() })
    }
}

// The size `MmTraceLayer::max_open_spans` documents.
const _: () = assert!(std::mem::size_of::<Slot>() == 128);

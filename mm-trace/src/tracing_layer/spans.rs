//! The layer's span table: what it keeps for each selected `tracing` span, found by the span's
//! id with a few loads and no lock, claimed with one compare-and-swap when the span is made and
//! given back with one store when it closes.
//!
//! The registry's own per-span storage (`extensions_mut`) takes a lock and boxes each value:
//! measured in peer-bench, a layer that keeps a start time there on every enter costs several
//! times what this table does (docs on `tracing_layer` give the figures).

use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

use super::carrier::{self, Carrier};
use crate::collector::bridge::{Opened, Site, TickContext, TickSpan};

/// Keys per bucket: one cache line of ids, scanned whole.
const BUCKET: usize = 8;

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
    pub(super) fn clear(&self, token: u64) -> Option<TickSpan> {
        let c = self.carrier.load(Acquire);
        if !c.is_null() {
            self.carrier.store(std::ptr::null_mut(), Relaxed);
            // SAFETY: the slot's reference, given back once (the pointer is cleared).
            unsafe { carrier::release(c, token) };
        }
        if self.carry_state.load(Acquire) == CARRY_SET {
            // SAFETY: set, and no other thread reaches the slot (see above).
            unsafe { (*self.carry.get()).assume_init_drop() };
        }
        self.carry_state.store(CARRY_NONE, Relaxed);
        // Plain load and store, no read-modify-write: nothing else writes the slot any more.
        let state = self.state.load(Relaxed);
        self.state.store(0, Relaxed);
        self.installed.store(0, Relaxed);
        // SAFETY: `IS_TICK` says `set_tick` wrote it; it is moved out exactly once, here.
        (state & IS_TICK != 0).then(|| unsafe { (*self.tick.get()).assume_init_read() })
    }
}

/// One cache line of span ids.
#[repr(align(64))]
struct Bucket([AtomicU64; BUCKET]);

/// Selected spans by `tracing` id, at most `capacity` open at once.
pub(super) struct SpanTable {
    keys: Box<[Bucket]>,
    slots: Box<[Slot]>,
    mask: usize,
}

// SAFETY: `Slot`'s cells are written under the protocols documented on each method (a claim or
// a once-only publication); everything else is atomic.
unsafe impl Sync for SpanTable {}
// SAFETY: the table owns what its cells hold; `TickSpan` and `TickContext` are `Send`.
unsafe impl Send for SpanTable {}

impl SpanTable {
    /// A table for up to `capacity` spans open at once (rounded up to a power of two, at least
    /// two buckets).
    pub(super) fn new(capacity: usize) -> SpanTable {
        let buckets = capacity.div_ceil(BUCKET).next_power_of_two().max(2);
        let n = buckets * BUCKET;
        let keys = (0..buckets).map(|_| Bucket([const { AtomicU64::new(0) }; BUCKET])).collect();
        SpanTable { keys, slots: zeroed_slots(n), mask: buckets - 1 }
    }

    /// The first bucket an id is looked for in. `tracing-subscriber`'s registry makes an id of a
    /// slab key, `[generation | thread | address]` (sharded-slab's default layout: 38 address bits,
    /// then 13 of thread); addresses are small and reused, so address and thread alone keep a
    /// thread's open spans in a few hot lines, whatever the generation. For ids of another shape
    /// this is just a hash: correctness never depends on it.
    #[inline]
    fn home(&self, id: u64) -> usize {
        let x = id.wrapping_sub(1);
        let addr = (x & ((1 << 38) - 1)) as usize;
        let thread = ((x >> 38) & ((1 << 13) - 1)) as usize;
        (addr / BUCKET).wrapping_add(thread.wrapping_mul(0x9E37_79B9)) & self.mask
    }

    /// The slot index of span `id`, if the table has it: two buckets are scanned (an id is never
    /// put anywhere else), so a miss costs two lines.
    #[inline]
    pub(super) fn find(&self, id: u64) -> Option<u32> {
        let home = self.home(id);
        for b in [home, (home + 1) & self.mask] {
            for (i, key) in self.keys[b].0.iter().enumerate() {
                if key.load(Relaxed) == id {
                    return Some((b * BUCKET + i) as u32);
                }
            }
        }
        None
    }

    /// Claims a slot for span `id` (not in the table). `None`: both its buckets are full.
    #[inline]
    pub(super) fn insert(&self, id: u64) -> Option<u32> {
        let home = self.home(id);
        for b in [home, (home + 1) & self.mask] {
            for (i, key) in self.keys[b].0.iter().enumerate() {
                // Acquire: the slot's previous owner emptied it before giving it back (Release).
                if key.load(Relaxed) == 0 && key.compare_exchange(0, id, Acquire, Relaxed).is_ok() {
                    return Some((b * BUCKET + i) as u32);
                }
            }
        }
        None
    }

    /// Whether slot `index` holds span `id` (a cached index checked with one load).
    #[inline]
    pub(super) fn holds(&self, index: u32, id: u64) -> bool {
        let i = index as usize;
        self.keys.get(i / BUCKET).is_some_and(|b| b.0[i % BUCKET].load(Relaxed) == id)
    }

    /// Gives slot `index` back (its span closed and its slot was cleared).
    #[inline]
    pub(super) fn remove(&self, index: u32) {
        let i = index as usize;
        self.keys[i / BUCKET].0[i % BUCKET].store(0, Release);
    }

    #[inline]
    pub(super) fn slot(&self, index: u32) -> &Slot {
        &self.slots[index as usize]
    }
}

impl Drop for SpanTable {
    fn drop(&mut self) {
        // Spans still open when the layer goes (a subscriber dropped with spans alive): free
        // their contexts; a tick still installed somewhere is left to leak, not ended here.
        for (b, bucket) in self.keys.iter().enumerate() {
            for (i, key) in bucket.0.iter().enumerate() {
                if key.load(Relaxed) != 0 {
                    let slot = &self.slots[b * BUCKET + i];
                    let installed = slot.installed.load(Relaxed) != 0;
                    if let Some(tick) = slot.clear(0) {
                        if installed {
                            std::mem::forget(tick);
                        } else {
                            tick.end(false);
                        }
                    }
                }
            }
        }
    }
}

/// `n` slots, all zero: memory is taken from the allocator zeroed, so pages of the table that no
/// span reaches stay untouched (a table sized for bursts costs only what is used).
fn zeroed_slots(n: usize) -> Box<[Slot]> {
    let layout = Layout::array::<Slot>(n).expect("span table size");
    // SAFETY: `layout` has a non-zero size (n >= 16). Every field of `Slot` is an atomic (valid
    // when zero) or a `MaybeUninit` (valid whatever its bytes), so zeroed memory is `n` valid
    // slots; `Box<[Slot]>` frees it with `Layout::array::<Slot>(n)`, the layout allocated here.
    unsafe {
        let p = alloc_zeroed(layout).cast::<Slot>();
        if p.is_null() {
            handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n))
    }
}

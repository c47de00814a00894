//! The layer's span table: selected spans by `tracing` id, found with a few loads and no lock,
//! claimed when the span is made and given back with one store when it closes.
//!
//! `tracing-subscriber`'s registry makes a span id of a slab key, `[generation | thread |
//! address] + 1` (sharded-slab's default layout: 38 address bits, then 13 of thread), and only
//! the thread whose index is in the key makes spans with it. The table uses that, without
//! depending on it for correctness:
//!
//! - The owned part has one region per thread index (modulo [`REGIONS`]). The first thread that
//!   makes a span in a region owns it until it exits, and alone puts ids there, so claiming a key
//!   is a load and a store, no compare-and-swap (that one atomic read-modify-write per span cost
//!   about 3 ns in peer-bench). Within a region an id's address picks its bucket.
//! - The shared part takes every other span (a region owned by another thread, a full region,
//!   ids of another shape), claimed with a compare-and-swap.
//!
//! A span is looked for in its region, then in the shared part: two buckets each, one cache line
//! of ids a bucket.

use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Arc, Weak};

use super::spans::Slot;

/// Keys per bucket: one cache line of ids, scanned whole.
const BUCKET: usize = 8;
/// Regions of the owned part (a power of two): threads whose index is equal modulo this share
/// one, and all but its owner use the shared part.
const REGIONS: usize = 64;
/// Address bits and thread bits of sharded-slab's default key layout.
const ADDR_BITS: u32 = 38;
const THREAD_BITS: u32 = 13;

/// One cache line of span ids.
#[repr(align(64))]
struct Bucket([AtomicU64; BUCKET]);

impl Bucket {
    fn empty() -> Bucket {
        Bucket([const { AtomicU64::new(0) }; BUCKET])
    }
}

/// Selected spans by `tracing` id.
pub(super) struct SpanTable {
    /// `REGIONS * per_region` buckets of the owned part, then the shared part.
    keys: Box<[Bucket]>,
    slots: Box<[Slot]>,
    /// The owner of each region: a thread's token (`carrier::Held::token`), 0 for none.
    owners: Box<[AtomicU64]>,
    /// Buckets per region, minus one (a power of two, minus one).
    region_mask: usize,
    /// Buckets in the shared part, minus one.
    shared_mask: usize,
}

// SAFETY: `Slot`'s cells are written under the protocols documented on each method (a claim or
// a once-only publication); everything else is atomic.
unsafe impl Sync for SpanTable {}
// SAFETY: the table owns what its cells hold; `TickSpan` and `TickContext` are `Send`.
unsafe impl Send for SpanTable {}

/// A region a thread owns, given back when the thread exits (if the table still exists).
#[derive(Debug)]
pub(super) struct Owned {
    table: Weak<SpanTable>,
    region: usize,
}

impl Owned {
    /// Gives the region up: another thread with its index may own it from now on.
    pub(super) fn release(self, token: u64) {
        if let Some(table) = self.table.upgrade() {
            // Release: the next owner sees every key this thread put there.
            let _ = table.owners[self.region].compare_exchange(token, 0, Release, Relaxed);
        }
    }
}

impl SpanTable {
    /// A table with room for at least `capacity` spans open at once in its shared part (rounded
    /// up to a power of two, at least two buckets), plus as many again in the owned part.
    pub(super) fn new(capacity: usize) -> Arc<SpanTable> {
        let shared = capacity.div_ceil(BUCKET).next_power_of_two().max(2);
        let per_region = (shared / REGIONS).next_power_of_two().max(1);
        let buckets = REGIONS * per_region + shared;
        Arc::new(SpanTable {
            keys: (0..buckets).map(|_| Bucket::empty()).collect(),
            slots: zeroed_slots(buckets * BUCKET),
            owners: (0..REGIONS).map(|_| AtomicU64::new(0)).collect(),
            region_mask: per_region - 1,
            shared_mask: shared - 1,
        })
    }

    /// Span `id`'s region and its two buckets there.
    #[inline]
    fn in_region(&self, id: u64) -> (usize, [usize; 2]) {
        let (addr, thread) = slab_key(id);
        let region = thread & (REGIONS - 1);
        let base = region * (self.region_mask + 1);
        let home = (addr / BUCKET) & self.region_mask;
        (region, [base + home, base + ((home + 1) & self.region_mask)])
    }

    /// Span `id`'s two buckets in the shared part. Addresses are small and reused, so address
    /// and thread keep a thread's open spans in a few hot lines, whatever the generation; for
    /// ids of another shape this is just a hash.
    #[inline]
    fn in_shared(&self, id: u64) -> [usize; 2] {
        let (addr, thread) = slab_key(id);
        let home = (addr / BUCKET).wrapping_add(thread.wrapping_mul(0x9E37_79B9));
        let base = REGIONS * (self.region_mask + 1);
        [base + (home & self.shared_mask), base + ((home + 1) & self.shared_mask)]
    }

    #[inline]
    fn scan(&self, buckets: [usize; 2], id: u64) -> Option<u32> {
        for b in buckets {
            for (i, key) in self.keys[b].0.iter().enumerate() {
                if key.load(Relaxed) == id {
                    return Some((b * BUCKET + i) as u32);
                }
            }
        }
        None
    }

    /// The slot index of span `id`, if the table has it: its region's two buckets, then its two
    /// in the shared part (an id is never put anywhere else), so a miss costs four lines.
    #[inline]
    pub(super) fn find(&self, id: u64) -> Option<u32> {
        self.scan(self.in_region(id).1, id).or_else(|| self.scan(self.in_shared(id), id))
    }

    /// Claims a slot for span `id` (not in the table), made on the thread with token `token`
    /// (non-zero); `owned` is handed the region the thread comes to own, if it does now.
    /// `None`: no room in its buckets.
    #[inline]
    pub(super) fn insert(self: &Arc<Self>, id: u64, token: u64, owned: impl FnOnce(Owned)) -> Option<u32> {
        let (region, buckets) = self.in_region(id);
        let owner = self.owners[region].load(Relaxed);
        if owner == token || (owner == 0 && self.claim(region, token, owned)) {
            for b in buckets {
                for (i, key) in self.keys[b].0.iter().enumerate() {
                    // Only this thread puts ids in its region: a load and a store claim the key.
                    // Acquire: the slot's previous owner emptied it before giving it back.
                    if key.load(Acquire) == 0 {
                        key.store(id, Relaxed);
                        return Some((b * BUCKET + i) as u32);
                    }
                }
            }
        }
        self.insert_shared(id)
    }

    #[cold]
    fn claim(self: &Arc<Self>, region: usize, token: u64, owned: impl FnOnce(Owned)) -> bool {
        // Acquire: the previous owner's keys (Release in `Owned::release`).
        let won = self.owners[region].compare_exchange(0, token, Acquire, Relaxed).is_ok();
        if won {
            owned(Owned { table: Arc::downgrade(self), region });
        }
        won
    }

    /// Claims a slot for span `id` in the shared part (for a thread without a token).
    pub(super) fn insert_shared(&self, id: u64) -> Option<u32> {
        for b in self.in_shared(id) {
            for (i, key) in self.keys[b].0.iter().enumerate() {
                // Acquire: the slot's previous owner emptied it before giving it back (Release).
                if key.load(Relaxed) == 0 && key.compare_exchange(0, id, Acquire, Relaxed).is_ok() {
                    return Some((b * BUCKET + i) as u32);
                }
            }
        }
        None
    }

    /// The key of slot `index`, if the table has that slot.
    #[inline]
    fn key(&self, index: u32) -> Option<&AtomicU64> {
        let i = index as usize;
        self.keys.get(i / BUCKET).map(|b| &b.0[i % BUCKET])
    }

    /// Whether slot `index` holds span `id` (a cached index checked with one load).
    #[inline]
    pub(super) fn holds(&self, index: u32, id: u64) -> bool {
        self.key(index).is_some_and(|k| k.load(Relaxed) == id)
    }

    /// Gives slot `index` back (its span closed and its slot was cleared).
    #[inline]
    pub(super) fn remove(&self, index: u32) {
        if let Some(key) = self.key(index) {
            key.store(0, Release);
        }
    }

    /// Slot `index`, an index this table gave out (`find`, `insert`, or one `holds` confirmed).
    #[inline]
    pub(super) fn slot(&self, index: u32) -> &Slot {
        debug_assert!((index as usize) < self.slots.len());
        // SAFETY: every index the table gives out is below `slots.len()` (`keys.len() * BUCKET`
        // slots); the layer passes only those (or a parent's index + 1 minus one).
        unsafe { self.slots.get_unchecked(index as usize) }
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
                    let installed = slot.is_installed();
                    // SAFETY: the slot's reference, handed over once; no thread's hold is at hand here.
                    if let Some(tick) = slot.clear(|c| unsafe { super::carrier::release(c, None) }) {
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

/// The address and thread index of span `id` read as a registry id (sharded-slab's default key
/// layout; for ids of another shape, just bits of the id).
#[inline]
fn slab_key(id: u64) -> (usize, usize) {
    let x = id.wrapping_sub(1);
    ((x & ((1 << ADDR_BITS) - 1)) as usize, (x >> ADDR_BITS) as usize & ((1 << THREAD_BITS) - 1))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry-shaped id: thread index `thread`, address `addr`, generation `generation`.
    fn id(generation: u64, thread: u64, addr: u64) -> u64 {
        ((generation << (ADDR_BITS + THREAD_BITS)) | (thread << ADDR_BITS) | addr) + 1
    }

    #[test]
    fn owned_regions_shared_part_and_lookups_agree() {
        let table = SpanTable::new(4096);
        let mut owned = Vec::new();
        // Thread 1 (token 11) owns region 1; thread 65 (token 12) shares its region index and
        // uses the shared part.
        let a = table.insert(id(0, 1, 0), 11, |o| owned.push(o)).unwrap();
        assert_eq!(owned.len(), 1, "the region was claimed");
        let b = table.insert(id(0, 1, 1), 11, |o| owned.push(o)).unwrap();
        assert_eq!(owned.len(), 1, "claimed once");
        let c = table.insert(id(0, 65, 0), 12, |_| panic!("owned by another thread")).unwrap();
        let shared_start = (REGIONS * (table.region_mask + 1) * BUCKET) as u32;
        assert!(a < shared_start && b < shared_start && c >= shared_start, "{a} {b} {c}");
        for (index, span) in [(a, id(0, 1, 0)), (b, id(0, 1, 1)), (c, id(0, 65, 0))] {
            assert_eq!(table.find(span), Some(index));
            assert!(table.holds(index, span));
        }
        // Another generation of the same address is another span.
        assert_eq!(table.find(id(1, 1, 0)), None);
        table.remove(a);
        assert_eq!(table.find(id(0, 1, 0)), None);
        // Once thread 1 gives the region up, thread 65 may own it.
        owned.pop().unwrap().release(11);
        let mut got = None;
        let d = table.insert(id(0, 65, 1), 12, |o| got = Some(o)).unwrap();
        assert!(got.is_some() && d < shared_start);
        assert_eq!(table.find(id(0, 65, 1)), Some(d));
        assert_eq!(table.find(id(0, 1, 1)), Some(b), "keys put there before stay found");
    }

    #[test]
    fn a_full_region_spills_into_the_shared_part_and_the_rest_is_untracked() {
        let table = SpanTable::new(64);
        let mut owned = Vec::new();
        let region_keys = BUCKET * (table.region_mask + 1).min(2);
        let shared_keys = 2 * BUCKET;
        // Addresses that all fall in the same two buckets of the region and of the shared part.
        let ids: Vec<u64> = (0..100).map(|k| id(k, 3, 0)).collect();
        let got: Vec<Option<u32>> = ids.iter().map(|&i| table.insert(i, 7, |o| owned.push(o))).collect();
        let kept = got.iter().filter(|g| g.is_some()).count();
        assert_eq!(kept, region_keys + shared_keys, "{got:?}");
        for (i, g) in ids.iter().zip(&got) {
            assert_eq!(table.find(*i), *g);
        }
    }
}

//! Loom models of the collector's hand-written lock-free structures.
//!
//! The production files are compiled here unchanged (`#[path]` modules) against the `sync`
//! module below, which gives them loom's atomics where the crate's `crate::sync` gives std's:
//! what is checked is the code that ships. Loom runs each model under every interleaving (and
//! every value a relaxed or acquire load may read under the C11 memory model) within a bounded
//! number of preemptions, and fails on a broken assertion, a data race on a `loom::cell`, or a
//! deadlock. Each model states the invariants it checks.
//!
//! A normal integration test: `cargo test -p mm-trace --test loom` (no `--cfg loom`). The
//! preemption bound of each model is chosen so the file runs in seconds; `LOOM_MAX_PREEMPTIONS`
//! overrides it for a deeper (slower) search.

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;
use loom::thread;
use std::sync::atomic::Ordering::Relaxed;

/// The loom side of the crate's `sync` facade (`mm-trace/src/sync.rs`).
mod sync {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

    /// A plain `fn`: loom's atomics have no `const` constructors.
    macro_rules! const_fn {
        ($(#[$attr:meta])* $vis:vis fn $name:ident $($rest:tt)*) => {
            $(#[$attr])* $vis fn $name $($rest)*
        };
    }
    pub(crate) use const_fn;

    /// `[value; n]` built at run time.
    macro_rules! array {
        ($value:expr; $n:expr) => {
            std::array::from_fn(|_| $value)
        };
    }
    pub(crate) use array;
}

#[path = "../src/collector/lockfree/chunks.rs"]
mod chunks;
#[path = "../src/collector/lockfree/reasons.rs"]
mod reasons;
#[path = "../src/collector/lockfree/registry.rs"]
mod registry;
#[path = "../src/collector/lockfree/trace_ring.rs"]
mod trace_ring;

/// Runs `f` under loom with `preemptions` as the preemption bound (unless `LOOM_MAX_PREEMPTIONS`
/// sets one).
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}

// -------------------------------------------------------------------------------------------------
// Thread registry (`collector/lockfree/registry.rs`)

use registry::Registry;

/// What `make` writes into a new node before the registry publishes it.
const BORN: u32 = 0xb0a7;

/// A registry slot's data in the model, standing for production's `PerThread`.
struct Slot {
    /// Written by `make` before the node is published; read by iterating threads (loom flags a
    /// read that the write does not happen-before).
    born: UnsafeCell<u32>,
    /// The claim holding the slot. Not atomic: loom flags two holders whose accesses are not
    /// ordered by happens-before, and the asserts catch two ordered ones.
    holder: UnsafeCell<Option<u32>>,
    /// A single-writer counter, bumped as production bumps its counters (relaxed load + store).
    count: AtomicU64,
}

impl Slot {
    fn new() -> Slot {
        Slot { born: UnsafeCell::new(BORN), holder: UnsafeCell::new(None), count: AtomicU64::new(0) }
    }
}

/// Claims a slot `rounds` times; each time marks it held, bumps its counter `by`, unmarks it and
/// releases it. Returns the ordinals of the claims.
fn hold(reg: &Registry<Slot>, rounds: usize, by: u64) -> Vec<u32> {
    let mut ordinals = Vec::new();
    for _ in 0..rounds {
        let node = reg.claim(Slot::new);
        let me = node.ordinal.load(Relaxed);
        // SAFETY: loom checks that no other access to the cell is concurrent with this one.
        node.holder.with_mut(|h| unsafe {
            assert_eq!(*h, None, "claim {me} took a node held by claim {:?}", *h);
            *h = Some(me);
        });
        node.count.store(node.count.load(Relaxed) + by, Relaxed);
        // SAFETY: as above.
        node.holder.with_mut(|h| unsafe {
            assert_eq!(*h, Some(me), "claim {me} lost its node to claim {:?}", *h);
            *h = None;
        });
        reg.release(node);
        ordinals.push(me);
    }
    ordinals
}

/// Walks the registry as the exporters do: every node is initialised; returns the counters' sum.
fn read(reg: &Registry<Slot>) -> u64 {
    let mut sum = 0;
    for node in reg.iter() {
        // SAFETY: loom checks that the write in `make` happens-before this read.
        node.born.with(|b| assert_eq!(unsafe { *b }, BORN, "iteration reached an uninitialised node"));
        sum += node.count.load(Relaxed);
    }
    sum
}

/// After every holder joined: nothing held, every count found, ordinals `0..claims` each once.
fn check_quiescent(reg: &Registry<Slot>, mut ordinals: Vec<u32>, written: u64, max_nodes: usize) {
    let mut nodes = 0;
    for node in reg.iter() {
        nodes += 1;
        // SAFETY: every holder joined.
        node.holder.with(|h| assert_eq!(unsafe { *h }, None, "a node is still marked held"));
    }
    assert!(nodes <= max_nodes, "{nodes} nodes for at most {max_nodes} simultaneous holders");
    assert_eq!(read(reg), written, "counts lost or doubled across claims");
    ordinals.sort_unstable();
    let claims = ordinals.len() as u32;
    assert_eq!(ordinals, (0..claims).collect::<Vec<_>>(), "ordinals not distinct");
}

/// Two threads claim, bump, release and claim again while a third walks the registry: a node
/// has one holder at a time, a reused node's count carries over (nothing lost), a reader only
/// reaches initialised nodes, ordinals are distinct.
#[test]
fn registry_two_holders_reclaiming_and_a_reader() {
    model(3, || {
        let reg = Arc::new(Registry::new());
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let reg = reg.clone();
                thread::spawn(move || hold(&reg, 2, 1))
            })
            .collect();
        assert!(read(&reg) <= 4);
        let ordinals = holders.into_iter().flat_map(|h| h.join().unwrap()).collect();
        check_quiescent(&reg, ordinals, 4, 2);
    });
}

/// A slot released with counts on it before three threads race to claim: exactly one takes it
/// over and sees its count (the rest push new nodes), nothing is lost.
#[test]
fn registry_reuse_keeps_counts() {
    model(3, || {
        let reg = Arc::new(Registry::new());
        let first = hold(&reg, 1, 10);
        let holders: Vec<_> = (0..3)
            .map(|_| {
                let reg = reg.clone();
                thread::spawn(move || hold(&reg, 1, 1))
            })
            .collect();
        let ordinals = first.into_iter().chain(holders.into_iter().flat_map(|h| h.join().unwrap())).collect();
        check_quiescent(&reg, ordinals, 13, 3);
    });
}

// -------------------------------------------------------------------------------------------------
// Guard-trip reason table (`collector/lockfree/reasons.rs`)

use reasons::ReasonTable;

/// A table small enough for loom: 4 slots, so a cap of at most 2.
type Table = ReasonTable<4>;

/// What a thread does to the table.
#[derive(Clone, Copy, Debug)]
enum Op {
    Trip(&'static str),
    Reset,
}

/// Applies `ops` in order.
fn apply(table: &Table, ops: &[Op]) {
    for op in ops {
        match *op {
            Op::Trip(r) => table.trip(r),
            Op::Reset => table.reset(),
        }
    }
}

/// With cap `cap`, applies `setup` on one thread, then each of `threads` on a thread of its own;
/// once all joined checks the table's invariants (the cap held in every window, the places used
/// are the slots holding one, no reason in two slots) and that every trip was counted exactly
/// once, and returns the table's `guard_trips`.
fn run_reasons(cap: usize, setup: &[Op], threads: &[&'static [Op]]) -> Vec<(String, u64)> {
    let table = Arc::new(Table::new());
    table.set_cap(cap);
    apply(&table, setup);
    let handles: Vec<_> = threads
        .iter()
        .map(|&ops| {
            let table = table.clone();
            thread::spawn(move || apply(&table, ops))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let all = || setup.iter().chain(threads.iter().flat_map(|ops| ops.iter()));
    let trips = all().filter(|op| matches!(op, Op::Trip(_))).count() as u64;
    assert_eq!(table.check_invariants(), trips, "trips lost or counted twice");
    let out = table.guard_trips();
    let other = out.iter().find(|(r, _)| r == "other").map_or(0, |(_, n)| *n);
    let literal_other = all().filter(|op| matches!(op, Op::Trip("other"))).count() as u64;
    assert_eq!(table.overflow(), other - literal_other, "overflow != trips refused");
    out
}

/// The count of `reason` in `trips`.
fn count_of(trips: &[(String, u64)], reason: &str) -> u64 {
    trips.iter().find(|(r, _)| r == reason).map_or(0, |(_, n)| *n)
}

/// Two first trips of the same reason race to name a slot and take the one place (cap 1): one
/// slot, both trips counted once.
#[test]
fn reasons_same_new_reason() {
    model(3, || {
        let trips = run_reasons(1, &[], &[&[Op::Trip("a")], &[Op::Trip("a")]]);
        assert_eq!(count_of(&trips, "a") + count_of(&trips, "other"), 2);
    });
}

/// As above with room for both (cap 2): the trip that finds the slot named activates it while
/// the namer's own activation (`0 -> window`) races it; the loser gives its place back.
#[test]
fn reasons_same_new_reason_cap_two() {
    model(3, || {
        run_reasons(2, &[], &[&[Op::Trip("a")], &[Op::Trip("a")]]);
    });
}

/// Two new reasons race for one place (cap 1): exactly one gets a slot, the other trip counts
/// under `other`.
#[test]
fn reasons_two_new_reasons_one_place() {
    model(3, || {
        let trips = run_reasons(1, &[], &[&[Op::Trip("a")], &[Op::Trip("b")]]);
        assert_eq!(trips.len(), 2, "one reason and `other`: {trips:?}");
        assert_eq!(count_of(&trips, "other"), 1);
    });
}

/// A reason named in window 1 re-activates in window 2 on two threads at once (cap 2): both
/// reserve, one wins the slot's window, the other gives its place back.
#[test]
fn reasons_same_reason_reactivates() {
    model(3, || {
        run_reasons(2, &[Op::Trip("a"), Op::Reset], &[&[Op::Trip("a")], &[Op::Trip("a"), Op::Trip("other")]]);
    });
}

/// Three threads, cap 2: two trips of one new reason and one of another.
#[test]
fn reasons_cap_two_three_threads() {
    model(1, || {
        run_reasons(2, &[], &[&[Op::Trip("a")], &[Op::Trip("a")], &[Op::Trip("b")]]);
    });
}

/// A reason that held the place in window 1 re-activates in window 2 while a new reason competes
/// for the one place and a reset starts window 3 concurrently.
#[test]
fn reasons_reactivation_racing_reset() {
    model(2, || {
        run_reasons(1, &[Op::Trip("a"), Op::Reset], &[&[Op::Trip("a")], &[Op::Trip("b")], &[Op::Reset]]);
    });
}

/// Two trips of one reason and one of another in a fresh table while a reset runs (cap 2): places
/// reserved in window 1 and taken or given back in window 2.
#[test]
fn reasons_new_reasons_racing_reset() {
    model(1, || {
        run_reasons(2, &[], &[&[Op::Trip("a")], &[Op::Trip("a"), Op::Reset], &[Op::Trip("b")]]);
    });
}

/// A place reserved in window 1 and given back after a reset (its trip lost the naming race)
/// must not free a place of window 2, where another reason has taken one meanwhile (cap 2).
#[test]
fn reasons_stale_reservation_after_reset() {
    model(2, || {
        run_reasons(2, &[], &[&[Op::Trip("a")], &[Op::Trip("a"), Op::Reset, Op::Trip("b")]]);
    });
}

/// Reasons whose probe sequences start at the same slot (`r0` and `r4` do in a 4-slot table): the
/// second to name a slot probes past the first.
#[test]
fn reasons_colliding_probe() {
    assert_eq!(reasons::hash("r0") % 4, reasons::hash("r4") % 4, "`r0` and `r4` no longer collide");
    model(3, || {
        let trips = run_reasons(2, &[], &[&[Op::Trip("r0")], &[Op::Trip("r4"), Op::Trip("r0")]]);
        assert_eq!(count_of(&trips, "r4"), 1, "{trips:?}");
        // Both places may be reserved (by `r4` and the first `r0`) when the second `r0` finds the
        // slot still unnamed: it then counts under `other` (see "Limits" in `reasons.rs`).
        assert_eq!(count_of(&trips, "r0") + count_of(&trips, "other"), 2, "{trips:?}");
    });
}

// -------------------------------------------------------------------------------------------------
// Carried-span chunk stack (`collector/lockfree/chunks.rs`)

use chunks::ChunkStack;
use std::sync::Mutex;

/// How an item left the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Handed back by `push`: the stack was closed (late).
    Refused,
    /// Taken by `close` (in the trace).
    Closed,
    /// Taken by `drain` in the owner's `Drop` (late).
    Drained,
}

/// What happened to the items of one execution (plain std types: not part of the model).
#[derive(Default)]
struct Ledger {
    fates: Mutex<Vec<(u32, Fate)>>,
    drops: Mutex<u32>,
}

impl Ledger {
    /// Records `item`'s fate after checking its payload (loom flags a read that the pusher's
    /// write does not happen-before), then drops it.
    fn settle(&self, item: Item, fate: Fate) {
        // SAFETY: loom checks that the pusher's write happens-before this read.
        item.payload.with(|p| assert_eq!(unsafe { *p }, item.id + 100, "item {} torn", item.id));
        self.fates.lock().unwrap().push((item.id, fate));
    }
}

/// A pushed item: its payload is written by the pusher after creation.
struct Item {
    id: u32,
    payload: UnsafeCell<u32>,
    ledger: std::sync::Arc<Ledger>,
}

impl Item {
    fn new(id: u32, ledger: &std::sync::Arc<Ledger>) -> Item {
        let item = Item { id, payload: UnsafeCell::new(0), ledger: ledger.clone() };
        // SAFETY: the item is not shared yet.
        item.payload.with_mut(|p| unsafe { *p = id + 100 });
        item
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        *self.ledger.drops.lock().unwrap() += 1;
    }
}

/// Production's `Shared`, reduced to its stack: the last owner drains the late chunks.
struct Tick {
    stack: ChunkStack<Item>,
    ledger: std::sync::Arc<Ledger>,
}

impl Drop for Tick {
    fn drop(&mut self) {
        let ledger = self.ledger.clone();
        self.stack.drain(|item| ledger.settle(item, Fate::Drained));
    }
}

/// Pushers (each pushing its ids in order, then dropping its reference) race one `close` by the
/// owner, who then drops its reference; the last reference drains. Every item is settled exactly
/// once (refused, closed or drained), intact, and dropped exactly once. Returns the fates in the
/// order they were settled.
fn run_chunks(pushers: &'static [&'static [u32]]) -> Vec<(u32, Fate)> {
    let ledger = std::sync::Arc::new(Ledger::default());
    let tick = Arc::new(Tick { stack: ChunkStack::new(), ledger: ledger.clone() });
    let handles: Vec<_> = pushers
        .iter()
        .map(|&ids| {
            let (tick, ledger) = (tick.clone(), ledger.clone());
            thread::spawn(move || {
                for &id in ids {
                    if let Err(item) = tick.stack.push(Item::new(id, &ledger)) {
                        ledger.settle(item, Fate::Refused);
                    }
                }
            })
        })
        .collect();
    tick.stack.close(|item| ledger.settle(item, Fate::Closed));
    drop(tick);
    for h in handles {
        h.join().unwrap();
    }
    let fates = ledger.fates.lock().unwrap().clone();
    let mut settled: Vec<u32> = fates.iter().map(|&(id, _)| id).collect();
    settled.sort_unstable();
    let mut pushed: Vec<u32> = pushers.iter().flat_map(|ids| ids.iter().copied()).collect();
    pushed.sort_unstable();
    assert_eq!(settled, pushed, "items lost or settled twice");
    assert_eq!(*ledger.drops.lock().unwrap(), pushed.len() as u32, "items leaked or dropped twice");
    fates
}

/// Two pushers race `close`: every span is in the trace or counted late, exactly once.
#[test]
fn chunks_two_pushers_race_close() {
    model(3, || {
        run_chunks(&[&[1], &[2]]);
    });
}

/// A pusher pushing twice and another pushing once race `close`: the same, and a pusher's
/// chunks are closed in a prefix of its pushes (a later one never in the trace while an earlier
/// one is late), newest first.
#[test]
fn chunks_pushes_straddle_close() {
    model(2, || {
        let fates = run_chunks(&[&[1, 2], &[3]]);
        let closed: Vec<u32> =
            fates.iter().filter(|&&(id, f)| f == Fate::Closed && id != 3).map(|&(id, _)| id).collect();
        assert!(closed.is_empty() || closed == [1] || closed == [2, 1], "closed {closed:?} of pushes [1, 2]");
    });
}

// -------------------------------------------------------------------------------------------------
// A thread's ring of kept traces (`collector/lockfree/trace_ring.rs`)

use trace_ring::TraceRing;

/// An entry of the ring: `id` and a payload derived from it, both written by the producer into a
/// reused slot (loom checks every access of the slot cells against the indices' ordering).
#[derive(Default)]
struct Entry {
    id: u32,
    payload: u32,
}

/// The producer publishes `ids` in order into a ring of `N` slots (skipping an id when the ring
/// is full) while the consumer reads twice (racing the pushes, then after them): the consumer
/// gets exactly the accepted ids, in order, each with its payload; a refused push wrote nothing.
fn run_ring<const N: usize>(ids: &'static [u32]) {
    model(3, move || {
        let ring: Arc<TraceRing<Entry, N>> = Arc::new(TraceRing::new());
        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                // SAFETY: this thread is the ring's only consumer.
                let n = unsafe {
                    ring.consume(|e: &Entry| {
                        assert_eq!(e.payload, e.id * 10 + 7, "entry {} torn", e.id);
                        got.push(e.id);
                    })
                };
                assert_eq!(n, got.len());
                got
            })
        };
        let mut accepted = Vec::new();
        for &id in ids {
            // As a tick does at its start (a hint only: it must not change what the model sees).
            ring.prefetch_next();
            // SAFETY: this thread is the ring's only producer.
            let ok = unsafe {
                ring.push(Entry::default, |e| {
                    e.id = id;
                    e.payload = id * 10 + 7;
                })
            };
            if ok {
                accepted.push(id);
            }
        }
        let mut got = consumer.join().unwrap();
        // SAFETY: the consumer thread has finished: this thread is the only consumer now.
        unsafe {
            ring.consume(|e: &Entry| {
                assert_eq!(e.payload, e.id * 10 + 7, "entry {} torn", e.id);
                got.push(e.id);
            })
        };
        assert_eq!(got, accepted, "the consumer must see exactly the accepted entries, in order");
        assert!(accepted.len() >= ids.len().min(N), "a push was refused while the ring had room");
    });
}

#[test]
fn trace_ring_producer_races_consumer() {
    run_ring::<4>(&[1, 2, 3]);
}

/// With two slots and three entries the producer wraps around: it may reuse a slot only after the
/// consumer has finished reading it.
#[test]
fn trace_ring_wraps_only_past_the_consumer() {
    run_ring::<2>(&[1, 2, 3]);
}

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
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

    /// A plain `fn`: loom's atomics have no `const` constructors.
    macro_rules! const_fn {
        ($(#[$attr:meta])* $vis:vis fn $name:ident $($rest:tt)*) => {
            $(#[$attr])* $vis fn $name $($rest)*
        };
    }
    pub(crate) use const_fn;
}

#[path = "../src/collector/registry.rs"]
mod registry;

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
// Thread registry (`collector/registry.rs`)

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
    model(2, || {
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

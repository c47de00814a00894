//! The thread registry: a lock-free, never-shrinking list of per-thread slots that threads claim
//! and give back.
//!
//! The list is a singly linked list of heap nodes, pushed at the head with a compare-and-swap
//! and never unlinked or freed while the registry lives (the crate's registry is a `static`), so
//! a reader may walk it at any time without a lock and keep references to nodes for good.
//!
//! - **Claim.** A thread first walks the list and takes a free node by flipping its `in_use`
//!   flag `false -> true` with one compare-and-swap (`Acquire`); only if every node is in use does
//!   it allocate a node (`in_use` already `true`) and push it with a compare-and-swap on the head
//!   (`Release`, after the node is fully initialised). Either way the claim gets a fresh ordinal
//!   from a counter, so a reused node never hands a second thread the ordinal of an earlier one.
//! - **Release.** The holder stores `in_use = false` (`Release`); the node, its data included,
//!   stays in the list for the next claimer.
//! - **Iterate.** Readers load the head and every `next` with `Acquire`.
//!
//! Invariants (checked by the loom model in `tests/loom.rs`):
//! - a node has at most one holder at a time (the compare-and-swap admits one claimer per
//!   release), and everything the previous holder wrote happens-before the next holder's claim
//!   (the `Release` store pairs with the `Acquire` compare-and-swap), so data written by a single
//!   writer with plain relaxed load + store carries over to the next holder with nothing lost;
//! - a node reached by iteration is fully initialised (the `Release` push pairs with the
//!   `Acquire` loads), and every node ever pushed stays reachable;
//! - ordinals of claims are pairwise distinct.
//!
//! Memory is bounded by the peak number of simultaneous holders, not by the number of claims.

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr;

use crate::sync::{
    AtomicBool, AtomicPtr, AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};

/// One slot of the registry: the registry's bookkeeping around the holder's data.
pub(crate) struct Node<T> {
    next: AtomicPtr<Node<T>>,
    in_use: AtomicBool,
    /// The ordinal of the claim that holds (or last held) this node: fresh on every claim.
    pub(crate) ordinal: AtomicU32,
    data: T,
}

impl<T> Deref for Node<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.data
    }
}

/// A list of reusable slots, each holding a `T` that outlives its holders.
pub(crate) struct Registry<T> {
    head: AtomicPtr<Node<T>>,
    /// Claims so far: the next claim's ordinal.
    claims: AtomicU32,
    /// The registry owns its nodes (and drops them with it).
    _owns: PhantomData<Box<Node<T>>>,
}

// SAFETY: the registry hands out shared references to its nodes' data to every thread (so `T`
// must be `Sync`), and a node's data is created by the claiming thread and dropped by whichever
// thread drops the registry (so `T` must be `Send`). Everything else is atomics.
unsafe impl<T: Send + Sync> Sync for Registry<T> {}

impl<T> Registry<T> {
    crate::sync::const_fn! {
        /// An empty registry.
        pub(crate) fn new() -> Self {
            Registry { head: AtomicPtr::new(ptr::null_mut()), claims: AtomicU32::new(0), _owns: PhantomData }
        }
    }

    /// Every node, held or free, newest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Node<T>> {
        let mut p = self.head.load(Acquire);
        std::iter::from_fn(move || {
            if p.is_null() {
                return None;
            }
            // SAFETY: nodes are published with `Release` after initialisation (this `Acquire`
            // load, or the one of the previous node's `next`, pairs with it) and never freed
            // while the registry (borrowed for the iterator's life) lives.
            let node = unsafe { &*p };
            p = node.next.load(Acquire);
            Some(node)
        })
    }

    /// Takes a free node, or pushes a new one holding `make()`; the caller holds it until
    /// [`release`](Self::release). A reused node keeps its data as the previous holder left it.
    pub(crate) fn claim(&self, make: impl FnOnce() -> T) -> &Node<T> {
        for node in self.iter() {
            // Acquire: pairs with the previous holder's `Release` in `release`.
            if node.in_use.compare_exchange(false, true, Acquire, Relaxed).is_ok() {
                node.ordinal.store(self.claims.fetch_add(1, Relaxed), Relaxed);
                return node;
            }
        }
        let node = Box::into_raw(Box::new(Node {
            next: AtomicPtr::new(ptr::null_mut()),
            in_use: AtomicBool::new(true),
            ordinal: AtomicU32::new(self.claims.fetch_add(1, Relaxed)),
            data: make(),
        }));
        let mut head = self.head.load(Relaxed);
        loop {
            // SAFETY: `node` is ours alone until the compare-and-swap below publishes it.
            unsafe { (*node).next.store(head, Relaxed) };
            // Release: a reader that sees the node sees it initialised.
            match self.head.compare_exchange_weak(head, node, Release, Relaxed) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        // SAFETY: published above and never freed while the registry lives.
        unsafe { &*node }
    }

    /// Gives `node` back: the next claim may take it, data and all. Only its holder calls this.
    pub(crate) fn release(&self, node: &Node<T>) {
        // Release: the holder's writes happen-before the next holder's claim.
        node.in_use.store(false, Release);
    }
}

impl<T> Drop for Registry<T> {
    fn drop(&mut self) {
        // `&mut self`: no claim, release or iteration is running, nor can one start.
        let mut p = self.head.load(Relaxed);
        while !p.is_null() {
            // SAFETY: every node was allocated by `claim` with `Box::into_raw`, is linked once,
            // and nothing can reach it any more.
            let node = unsafe { Box::from_raw(p) };
            p = node.next.load(Relaxed);
        }
    }
}

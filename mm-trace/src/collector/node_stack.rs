//! A lock-free stack of heap nodes that move whole between threads: the queue of kept traces to
//! the worker, and the way back of their buffers to the thread that owns them.
//!
//! A tick thread hands each kept trace to the worker in a heap node its thread slot owns: it
//! pushes the node onto the worker's inbox; the worker takes the whole inbox at once, and when
//! done with a trace pushes its node back onto the owner's stack, where the owner's next kept
//! tick pops it and reuses its buffers. So a kept trace costs the tick thread one
//! compare-and-swap and no allocation in steady state.
//!
//! The stack is intrusive (a node's `next` is the link):
//! - **Push** (any thread): write the node's `next` = the current head, then compare-and-swap the
//!   head from that value to the node (`Release`, so the node's contents travel with it).
//! - **Take all** (any thread): swap the head with null (`Acquire`): the caller owns the list.
//! - **Pop** (one thread only, the stack's owner): load the head (`Acquire`), read its `next`,
//!   compare-and-swap the head from the node to `next` (`Acquire`). With one popper this has no
//!   ABA problem: the node read cannot be popped and pushed again before the compare-and-swap,
//!   because only the popper pops (taking all while another thread pops would break this: a
//!   stack is either popped by its owner or taken whole, never both).
//!
//! Invariants (checked by the loom model in `tests/loom.rs`): every node pushed is popped or
//! taken exactly once or is still in the stack; what the pusher wrote into a node is visible to
//! the thread that gets it; no node is lost or handed out twice.

use std::ptr;

use crate::sync::{
    AtomicPtr,
    Ordering::{Acquire, Relaxed, Release},
};

/// A node of a [`NodeStack`]: the value and the stack's link.
pub(crate) struct Node<T> {
    /// The buffers that travel.
    pub(crate) value: T,
    next: *mut Node<T>,
}

// SAFETY: `next` is only read or written by whoever owns the node (a `Box` moves whole between
// threads) or, while the node is in a stack, under the stack's protocol.
unsafe impl<T: Send> Send for Node<T> {}

impl<T> Node<T> {
    /// A node that is in no stack.
    pub(crate) fn new(value: T) -> Box<Node<T>> {
        Box::new(Node { value, next: ptr::null_mut() })
    }

    /// Detaches the rest of a list taken with [`NodeStack::take_all`] from this node.
    pub(crate) fn take_next(&mut self) -> Option<Box<Node<T>>> {
        let next = std::mem::replace(&mut self.next, ptr::null_mut());
        // SAFETY: a list taken whole is owned by its taker, node by node: `next` came from
        // `Box::into_raw` in `push` and no one else refers to it.
        (!next.is_null()).then(|| unsafe { Box::from_raw(next) })
    }
}

/// A lock-free stack of nodes: many pushers; one popper, or takers of the whole stack.
pub(crate) struct NodeStack<T> {
    head: AtomicPtr<Node<T>>,
}

// SAFETY: nodes move between threads whole (a `Box` given up by `push`, taken by `pop`), so `T`
// must be `Send`; the stack itself is atomics only.
unsafe impl<T: Send> Sync for NodeStack<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for NodeStack<T> {}

impl<T> NodeStack<T> {
    crate::sync::const_fn! {
        /// An empty stack.
        pub(crate) fn new() -> Self {
            NodeStack { head: AtomicPtr::new(ptr::null_mut()) }
        }
    }

    /// Pushes a node (any thread).
    pub(crate) fn push(&self, node: Box<Node<T>>) {
        let node = Box::into_raw(node);
        let mut head = self.head.load(Relaxed);
        loop {
            // SAFETY: `node` is ours until the compare-and-swap below publishes it.
            unsafe { (*node).next = head };
            match self.head.compare_exchange_weak(head, node, Release, Relaxed) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Takes every node, newest first (any thread; see the module docs for mixing with `pop`).
    pub(crate) fn take_all(&self) -> Option<Box<Node<T>>> {
        let head = self.head.swap(ptr::null_mut(), Acquire);
        // SAFETY: the swap made us the only owner of the list; its nodes came from `Box::into_raw`.
        (!head.is_null()).then(|| unsafe { Box::from_raw(head) })
    }

    /// Pops the newest node.
    ///
    /// # Safety
    /// Only one thread at a time may pop from a given stack (its owner); any number may push.
    pub(crate) unsafe fn pop(&self) -> Option<Box<Node<T>>> {
        let mut head = self.head.load(Acquire);
        loop {
            if head.is_null() {
                return None;
            }
            // SAFETY: `head` was published by a `Release` push that this `Acquire` load saw, and
            // it cannot be freed or popped meanwhile: only this thread pops (the caller's contract).
            let next = unsafe { (*head).next };
            match self.head.compare_exchange_weak(head, next, Acquire, Acquire) {
                // SAFETY: the compare-and-swap unlinked `head`: it is ours alone again.
                Ok(_) => return Some(unsafe { Box::from_raw(head) }),
                Err(h) => head = h,
            }
        }
    }
}

impl<T> Drop for NodeStack<T> {
    fn drop(&mut self) {
        let mut list = self.take_all();
        while let Some(mut node) = list {
            list = node.take_next();
        }
    }
}

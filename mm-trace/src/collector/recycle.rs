//! Give-back stack: buffers that one owner hands out and any thread gives back, without a lock
//! and without allocating once warm.
//!
//! A tick thread hands each kept trace to the worker in a heap node it owns; the worker, done
//! with it, pushes the node back onto the owner's stack, and the owner's next kept tick pops it
//! and reuses its buffers. So a kept trace costs no allocation and no cross-thread free on the
//! tick thread in steady state.
//!
//! The stack is intrusive (a node's `next` is the link) with one consumer:
//! - **Push** (any thread): write the node's `next` = the current head, then compare-and-swap the
//!   head from that value to the node (`Release`, so the node's contents travel with it).
//! - **Pop** (the owner only): load the head (`Acquire`), read its `next`, compare-and-swap the
//!   head from the node to `next` (`Acquire`). With one consumer this has no ABA problem: the
//!   node read cannot be popped and pushed again before the compare-and-swap, because only the
//!   consumer pops. A concurrent push only makes the compare-and-swap fail and retry.
//!
//! Invariants (checked by the loom model in `tests/loom.rs`): every node pushed is popped
//! exactly once or is still in the stack; what the pusher wrote into a node is visible to the
//! popper; no node is lost or handed out twice.

use std::ptr;

use std::sync::atomic::{
    AtomicPtr,
    Ordering::{Acquire, Relaxed, Release},
};

/// A node of a give-back stack: the value and the stack's link.
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
}

/// A lock-free stack with many pushers and one popper (the owner of the nodes).
pub(crate) struct GiveBack<T> {
    head: AtomicPtr<Node<T>>,
}

// SAFETY: nodes move between threads whole (a `Box` given up by `push`, taken by `pop`), so `T`
// must be `Send`; the stack itself is atomics only.
unsafe impl<T: Send> Sync for GiveBack<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for GiveBack<T> {}

impl<T> GiveBack<T> {
    /// An empty stack.
    pub(crate) const fn new() -> Self {
        GiveBack { head: AtomicPtr::new(ptr::null_mut()) }
    }

    /// Gives a node back (any thread).
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

    /// Takes a node back out.
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

impl<T> Drop for GiveBack<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can push or pop any more.
        while let Some(node) = unsafe { self.pop() } {
            drop(node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn pops_what_was_pushed_last_first() {
        let s = GiveBack::new();
        // SAFETY (for every `pop` below): this test is the only popper.
        assert!(unsafe { s.pop() }.is_none());
        for v in 0..3 {
            s.push(Node::new(v));
        }
        let popped: Vec<i32> = std::iter::from_fn(|| unsafe { s.pop() }.map(|n| n.value)).collect();
        assert_eq!(popped, [2, 1, 0]);
    }

    /// Four threads give nodes back while the owner pops: every node comes out exactly once.
    #[test]
    fn concurrent_pushes_and_one_popper_lose_nothing() {
        const PUSHERS: usize = 4;
        const EACH: usize = 20_000;
        let s = GiveBack::new();
        let done = AtomicBool::new(false);
        let mut seen = vec![false; PUSHERS * EACH];
        std::thread::scope(|scope| {
            let pushers: Vec<_> = (0..PUSHERS)
                .map(|p| {
                    let s = &s;
                    scope.spawn(move || (0..EACH).for_each(|i| s.push(Node::new(p * EACH + i))))
                })
                .collect();
            let done = &done;
            scope.spawn(move || {
                pushers.into_iter().for_each(|h| h.join().unwrap());
                done.store(true, Release);
            });
            loop {
                let finished = done.load(Acquire);
                // SAFETY: this thread is the only popper.
                while let Some(n) = unsafe { s.pop() } {
                    assert!(!std::mem::replace(&mut seen[n.value], true), "node {} popped twice", n.value);
                }
                if finished {
                    break;
                }
            }
        });
        assert!(seen.iter().all(|&s| s), "a node was lost");
    }
}

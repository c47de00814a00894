//! The carried-span chunk stack of a tick: a lock-free stack that many threads push to until one
//! thread closes it.
//!
//! Carried work (other threads, spawned tasks) hands its spans to the tick as one chunk per
//! context. A push checks the `closed` flag first: a closed stack refuses the item at once
//! (handed back, for the caller to count as late). Otherwise it links a heap chunk at the head
//! with a compare-and-swap (`Release`, a Treiber push). `close` sets `closed` and swaps the head
//! to null (`Acquire`), which makes it the sole owner of every chunk pushed so far. A push that
//! read `closed == false` just before the close may still link its chunk after the swap: such a
//! chunk stays on the stack until its owner drains it with [`ChunkStack::drain`] (the tick's
//! `Drop`, once the last reference is gone), and counts it late.
//!
//! Invariant (checked by the loom model in `tests/loom.rs`): every item pushed is exactly once
//! either handed back by `push`, taken by `close`, or taken by `drain` (or dropped with the
//! stack), and whoever takes it sees it as the pusher wrote it. The `closed` flag is only a fast
//! path; correctness rests on the swap.

use std::marker::PhantomData;
use std::ptr;

use crate::sync::{
    AtomicBool, AtomicPtr,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};

/// One pushed item and the chunk below it.
struct Chunk<T> {
    item: T,
    next: *mut Chunk<T>,
}

/// A stack of `T`s that pushers fill until one `close` takes them all.
pub(crate) struct ChunkStack<T> {
    head: AtomicPtr<Chunk<T>>,
    closed: AtomicBool,
    /// The stack owns its chunks (and drops them with it).
    _owns: PhantomData<Box<Chunk<T>>>,
}

// SAFETY: items move from the pushing thread to the thread that closes, drains or drops the
// stack, and the stack never hands out references to them: `T: Send` is all that sharing or
// sending the stack needs. The raw `next` pointers are only followed by the sole owner of a list.
unsafe impl<T: Send> Send for ChunkStack<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for ChunkStack<T> {}

impl<T> ChunkStack<T> {
    /// An open, empty stack.
    pub(crate) fn new() -> Self {
        ChunkStack { head: AtomicPtr::new(ptr::null_mut()), closed: AtomicBool::new(false), _owns: PhantomData }
    }

    /// Pushes `item`, or hands it back if the stack is closed (the caller counts it as late).
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        if self.closed.load(Acquire) {
            return Err(item);
        }
        let chunk = Box::into_raw(Box::new(Chunk { item, next: ptr::null_mut() }));
        let mut head = self.head.load(Relaxed);
        loop {
            // SAFETY: `chunk` is ours alone until the compare-and-swap publishes it.
            unsafe { (*chunk).next = head };
            // Release: whoever takes the chunk (after an `Acquire` swap or load) sees it whole.
            match self.head.compare_exchange_weak(head, chunk, Release, Relaxed) {
                Ok(_) => return Ok(()),
                Err(h) => head = h,
            }
        }
    }

    /// Closes the stack to new pushes and takes every item pushed so far, newest first.
    pub(crate) fn close(&self, mut each: impl FnMut(T)) {
        self.closed.store(true, SeqCst);
        let p = self.head.swap(ptr::null_mut(), Acquire);
        // SAFETY: the swap unlinked the list from the stack: we are its only owner.
        unsafe { take_list(p, &mut each) };
    }

    /// Takes the items pushed after `close` took its own (the late ones), newest first.
    pub(crate) fn drain(&mut self, mut each: impl FnMut(T)) {
        // `&mut self`: no push or close is running, nor can one start; the swap takes the list.
        let p = self.head.swap(ptr::null_mut(), Acquire);
        // SAFETY: as in `close`.
        unsafe { take_list(p, &mut each) };
    }
}

impl<T> Drop for ChunkStack<T> {
    fn drop(&mut self) {
        self.drain(drop);
    }
}

/// Frees every chunk of the list at `p`, passing each item to `each`.
///
/// # Safety
///
/// The caller owns the list: it is unlinked from the stack, and its chunks were allocated by
/// `push` with `Box::into_raw`.
unsafe fn take_list<T>(mut p: *mut Chunk<T>, each: &mut impl FnMut(T)) {
    while !p.is_null() {
        // SAFETY: per the contract, the chunk is ours and was allocated by `push`.
        let chunk = unsafe { Box::from_raw(p) };
        p = chunk.next;
        each(chunk.item);
    }
}

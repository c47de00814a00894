//! Unit tests of `node_stack` with std threads (kept out of `node_stack.rs`, which `tests/loom.rs`
//! compiles against loom's atomics, where these could not run).

use super::node_stack::*;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Release};

#[test]
fn take_all_gives_the_list_newest_first() {
    let s = NodeStack::new();
    assert!(s.take_all().is_none());
    for v in 0..3 {
        s.push(Node::new(v));
    }
    let mut list = s.take_all();
    let mut got = Vec::new();
    while let Some(mut n) = list {
        list = n.take_next();
        got.push(n.value);
    }
    assert_eq!(got, [2, 1, 0]);
    assert!(s.take_all().is_none());
}

#[test]
fn pops_what_was_pushed_last_first() {
    let s = NodeStack::new();
    // SAFETY: this test is the only popper.
    assert!(unsafe { s.pop() }.is_none());
    for v in 0..3 {
        s.push(Node::new(v));
    }
    // SAFETY: this test is the only popper.
    let popped: Vec<i32> = std::iter::from_fn(|| unsafe { s.pop() }.map(|n| n.value)).collect();
    assert_eq!(popped, [2, 1, 0]);
}

/// Four threads give nodes back while the owner pops: every node comes out exactly once.
#[test]
fn concurrent_pushes_and_one_popper_lose_nothing() {
    const PUSHERS: usize = 4;
    const EACH: usize = 20_000;
    let s = NodeStack::new();
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

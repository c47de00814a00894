//! mm-trace's `tracing` layer across threads, with real `tracing` and `tracing-subscriber`: spans
//! made in a tick and entered, run and dropped on other threads (under a `tracing` parent, or
//! under a `#[stage]` with none), spans kept past their tick, and many threads at once, more than
//! the span table has regions, coming and going.

use std::sync::Barrier;

use mm_trace::{MmTraceLayer, TraceSpan, stage, traced_tick};
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

#[path = "support/tracing_setup.rs"]
mod tracing_setup;
use tracing_setup::{count, sampled, setup, span, traces};

#[stage("leaf")]
fn leaf(n: u64) -> u64 {
    std::hint::black_box(n)
}

#[test]
fn a_span_made_in_a_tick_and_entered_on_another_thread_joins_the_tick_under_its_parent() {
    let _g = setup(sampled());
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(mm_trace::tracing_layer()));
    tracing::dispatcher::with_default(&dispatch, || {
        #[traced_tick]
        fn tick(dispatch: &Dispatch) {
            let parent = info_span!("fan_out");
            let _p = parent.enter();
            std::thread::scope(|s| {
                for _ in 0..3 {
                    let work = info_span!("worker");
                    s.spawn(move || {
                        // The span is dropped inside too: the registry closes a parent through
                        // the thread's default dispatcher.
                        tracing::dispatcher::with_default(dispatch, move || {
                            work.in_scope(|| {
                                // A stage and a span inside the carried span, on the thread.
                                leaf(1);
                                info_span!("step").in_scope(|| leaf(2));
                            })
                        })
                    });
                }
            });
        }
        tick(&dispatch);
    });
    let all = traces();
    let t = &all[0];
    let fan_out = span(t, "fan_out").id;
    let workers: Vec<&TraceSpan> = t.spans.iter().filter(|s| s.name == "worker").collect();
    assert_eq!(workers.len(), 3, "{:#?}", t.spans);
    for w in &workers {
        assert_eq!(w.parent, Some(fan_out));
        assert_ne!(w.thread, span(t, "fan_out").thread, "recorded on the worker thread");
        let kids: Vec<&str> = t.spans.iter().filter(|s| s.parent == Some(w.id)).map(|s| s.name.as_str()).collect();
        assert_eq!(kids, ["leaf", "step"]);
    }
    assert_eq!(t.spans.iter().filter(|s| s.name == "step").count(), 3);
    assert_eq!(count("worker"), 3);
}

/// A library's span made inside a `#[stage]` with no `tracing` parent, run and dropped on another
/// thread: it joins its tick there under the stage, tick after tick (the thread that made it
/// moves on to the next tick meanwhile), and a span still held when its thread has moved on to
/// another tick is recorded when it is run later.
#[test]
fn a_span_made_under_a_stage_and_run_on_another_thread_joins_the_tick_under_the_stage() {
    let _g = setup(sampled());
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(mm_trace::tracing_layer()));
    #[stage]
    fn hand_off(dispatch: &Dispatch, keep: &mut Vec<tracing::Span>) -> u64 {
        let work = info_span!("remote_call");
        keep.push(info_span!("kept"));
        std::thread::scope(|s| {
            s.spawn(move || tracing::dispatcher::with_default(dispatch, move || work.in_scope(|| leaf(3))))
                .join()
                .unwrap()
        })
    }
    #[traced_tick]
    fn tick(dispatch: &Dispatch, keep: &mut Vec<tracing::Span>) -> u64 {
        hand_off(dispatch, keep)
    }
    let mut kept = Vec::new();
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..3 {
            assert_eq!(tick(&dispatch, &mut kept), 3);
        }
    });
    // The spans kept from the three ticks, run on other threads after their ticks ended.
    std::thread::scope(|s| {
        for span in kept.drain(..) {
            let dispatch = &dispatch;
            s.spawn(move || tracing::dispatcher::with_default(dispatch, move || span.in_scope(|| leaf(1))));
        }
    });
    let all = traces();
    assert_eq!(all.len(), 3);
    for t in &all {
        let stage = span(t, "hand_off");
        let remote = span(t, "remote_call");
        assert_eq!(remote.parent, Some(stage.id), "{:#?}", t.spans);
        assert_ne!(remote.thread, stage.thread, "recorded on the other thread");
        let kids: Vec<&str> = t.spans.iter().filter(|s| s.parent == Some(remote.id)).map(|s| s.name.as_str()).collect();
        assert_eq!(kids, ["leaf"]);
        assert!(t.spans.iter().all(|s| s.name != "kept"), "run after its tick ended: not in the tick's trace");
    }
    assert_eq!(count("remote_call"), 3);
    assert_eq!(count("kept"), 3, "histograms still count spans run after their tick");
    assert_eq!(count("leaf"), 6);
}

/// Threads past the span table's 64 regions make spans at once, in two waves (the second
/// wave's threads take over regions the first gave up when they exited): every span is kept and
/// recorded, each under its own tick.
#[test]
fn many_threads_coming_and_going_keep_every_span() {
    const THREADS: usize = 80;
    const TICKS: usize = 3;
    let _g = setup(sampled());
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(mm_trace::tracing_layer()));
    let untracked = MmTraceLayer::untracked_spans();
    #[stage]
    fn calls() -> u64 {
        (0..4u64).map(|i| info_span!("call").in_scope(|| leaf(i))).sum()
    }
    #[traced_tick]
    fn tick() -> u64 {
        let held = info_span!("held");
        let _e = held.enter();
        calls()
    }
    for _wave in 0..2 {
        let start = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    tracing::dispatcher::with_default(&dispatch, || {
                        start.wait();
                        for _ in 0..TICKS {
                            assert_eq!(tick(), 6);
                        }
                    })
                });
            }
        });
    }
    let n = (2 * THREADS * TICKS) as u64;
    assert_eq!(MmTraceLayer::untracked_spans(), untracked);
    assert_eq!(count("held"), n);
    assert_eq!(count("call"), 4 * n);
    let all = traces();
    assert!(!all.is_empty());
    for t in &all {
        let held = span(t, "held");
        let calls = span(t, "calls");
        assert_eq!(calls.parent, Some(held.id));
        let under: Vec<&TraceSpan> = t.spans.iter().filter(|s| s.parent == Some(calls.id)).collect();
        assert_eq!(under.len(), 4, "{:#?}", t.spans);
        assert!(under.iter().all(|s| s.name == "call" && s.thread == calls.thread));
    }
}

//! The runtime collector through its public API: counts, merging across threads (exited ones
//! included), sampling, deadline, caps, events, reset and live switches.

use std::sync::Mutex;
use std::time::Duration;

use mm_trace::__private::{Site, TickGuard};
use mm_trace::TraceConfig;

static SERIAL: Mutex<()> = Mutex::new(());
static TICK: Site = Site::tick("tick");

fn setup(cfg: TraceConfig) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { export_golden: false, ..cfg }).unwrap();
    mm_trace::set_enabled(true);
    mm_trace::reset();
    g
}

fn tick(body: impl FnOnce()) {
    let _t = TickGuard::begin(&TICK);
    body();
}

#[test]
fn threads_recording_at_once_give_exact_counts_including_exited_threads() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    for threads in [2usize, 4, 8] {
        mm_trace::reset();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..100_000 {
                        mm_trace::stage_guard!("concurrent");
                    }
                });
            }
        });
        // Every thread above has exited: its counts must still be there.
        let s = mm_trace::summary();
        assert_eq!(s.stage("concurrent").unwrap().count, threads as u64 * 100_000, "{threads} threads");
    }
}

#[test]
fn exited_threads_slots_are_reused_and_counts_kept() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    for round in 1..=50u64 {
        std::thread::spawn(|| {
            mm_trace::stage_guard!("short_lived");
        })
        .join()
        .unwrap();
        assert_eq!(mm_trace::summary().stage("short_lived").unwrap().count, round);
    }
}

#[test]
fn sleeping_stage_records_at_least_its_sleep_and_ticks_count_deadline_misses() {
    let _g = setup(TraceConfig { sample_rate: 1.0, deadline_ms: 15.0, ..Default::default() });
    for ms in [1u64, 20, 30] {
        tick(|| {
            mm_trace::stage_guard!("sleep");
            std::thread::sleep(Duration::from_millis(ms));
        });
    }
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 3);
    assert_eq!(s.deadline_misses, 2);
    assert!((s.deadline_miss_pct - 66.666).abs() < 0.01);
    let st = s.stage("sleep").unwrap();
    assert_eq!(st.count, 3);
    assert!(st.max_ms >= 30.0, "max {}", st.max_ms);
    assert!(st.p50_ms >= 20.0 * 0.992, "p50 {}", st.p50_ms);
    let total = s.stage("tick_total").unwrap();
    assert!(total.max_ms >= st.max_ms);
}

#[test]
fn sampling_is_deterministic_and_unsampled_ticks_still_count() {
    let _g = setup(TraceConfig { sample_rate: 0.3, capture_slow_ticks: false, ..Default::default() });
    for _ in 0..1000 {
        tick(|| {
            mm_trace::stage_guard!("sampled_stage");
        });
    }
    let s = mm_trace::summary();
    let expected = (1..=1000u64).filter(|&id| mm_trace::is_sampled(id, 0.3)).count() as u64;
    assert_eq!(s.ticks, 1000, "every tick counts");
    assert_eq!(s.stage("sampled_stage").unwrap().count, expected, "stages only on sampled ticks");
    assert!((250..350).contains(&expected));
    // The same ids after a reset give the same decisions.
    mm_trace::reset();
    for _ in 0..1000 {
        tick(|| {
            mm_trace::stage_guard!("sampled_stage");
        });
    }
    assert_eq!(mm_trace::summary().stage("sampled_stage").unwrap().count, expected);
}

#[test]
fn live_switches_take_effect_without_restart() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    tick(|| {
        mm_trace::stage_guard!("live");
    });
    mm_trace::set_enabled(false);
    assert!(!mm_trace::is_enabled());
    tick(|| {
        mm_trace::stage_guard!("live");
    });
    mm_trace::guard_trip("while_off");
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1);
    assert_eq!(s.stage("live").unwrap().count, 1);
    assert_eq!(s.guard_trips("while_off"), 0);
    mm_trace::set_enabled(true);
    mm_trace::set_sample_rate(0.0).unwrap();
    tick(|| {
        mm_trace::stage_guard!("live");
    });
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 2);
    assert_eq!(s.stage("live").unwrap().count, 1, "rate 0: no stage recorded");
    assert_eq!(s.sample_rate, 0.0);
    assert!(mm_trace::set_sample_rate(-0.1).is_err());
    assert!(mm_trace::set_sample_rate(f64::NAN).is_err());
}

#[test]
fn span_cap_counts_overflow_and_keeps_histograms() {
    let _g = setup(TraceConfig { sample_rate: 1.0, max_spans_per_tick: 10, ..Default::default() });
    tick(|| {
        for _ in 0..25 {
            mm_trace::stage_guard!("many");
        }
    });
    let s = mm_trace::summary();
    assert_eq!(s.stage("many").unwrap().count, 25);
    assert_eq!(s.health.spans_dropped, 15);
    let trace = mm_trace::recent_traces().pop().unwrap();
    assert_eq!(trace.spans.len(), 10);
    assert_eq!(trace.spans_dropped, 15);
}

#[test]
fn events_guard_trips_gauge_partial_fail_annotate() {
    let _g = setup(TraceConfig { sample_rate: 1.0, label_cardinality_cap: 3, ..Default::default() });
    tick(|| {
        mm_trace::guard_trip("vol_soft");
        mm_trace::guard_trip("vol_soft");
        mm_trace::guard_trip("inventory");
        mm_trace::partial_fail();
        mm_trace::annotate("symbols", "BTC,ETH");
        mm_trace::set_parallel_symbols(8);
    });
    tick(|| {});
    let s = mm_trace::summary();
    assert_eq!(s.guard_trips("vol_soft"), 2);
    assert_eq!(s.guard_trips("inventory"), 1);
    assert_eq!(s.partial_fails, 1);
    assert_eq!(s.parallel_symbols, 8);
    let traces = mm_trace::recent_traces();
    let first = &traces[traces.len() - 2];
    assert!(first.partial_fail);
    assert_eq!(first.annotations, vec![("symbols".to_owned(), "BTC,ETH".to_owned())]);
    assert!(!traces[traces.len() - 1].partial_fail);
}

#[test]
fn guard_reason_cardinality_is_capped() {
    let _g = setup(TraceConfig { label_cardinality_cap: 64, ..Default::default() });
    for i in 0..500 {
        mm_trace::guard_trip(&format!("reason_{i}"));
    }
    let s = mm_trace::summary();
    let total: u64 = s.guard_trips.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 500, "nothing lost");
    assert!(s.guard_trips.len() <= 64 + 1, "{} reasons", s.guard_trips.len());
    assert!(s.guard_trips("other") >= 500 - 64);
    assert!(s.health.label_overflow > 0);
}

#[test]
fn reset_clears_everything_and_restarts_tick_ids() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    tick(|| {
        mm_trace::stage_guard!("before_reset");
    });
    mm_trace::guard_trip("r");
    mm_trace::reset();
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 0);
    assert!(s.stage("before_reset").is_none());
    assert_eq!(s.guard_trips("r"), 0);
    let _t = TickGuard::begin(&TICK);
    assert_eq!(mm_trace::current_tick_id(), Some(1));
}

#[test]
fn nested_spans_have_parents_in_the_trace() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    tick(|| {
        mm_trace::stage_guard!("outer");
        mm_trace::in_stage!("inner", {
            mm_trace::stage_guard!("deeper");
        });
        mm_trace::in_stage!("inner2", ());
    });
    let t = mm_trace::recent_traces().pop().unwrap();
    let by = |n: &str| t.spans.iter().find(|s| s.name == n).unwrap().clone();
    let (outer, inner, deeper, inner2) = (by("outer"), by("inner"), by("deeper"), by("inner2"));
    assert_eq!(outer.parent, None);
    assert_eq!(inner.parent, Some(outer.id));
    assert_eq!(deeper.parent, Some(inner.id));
    assert_eq!(inner2.parent, Some(outer.id));
    assert!(outer.start_ns <= inner.start_ns && inner.end_ns <= outer.end_ns);
}

#[test]
fn panics_close_the_span_and_end_the_tick() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    let r = std::panic::catch_unwind(|| {
        tick(|| {
            mm_trace::stage_guard!("panics");
            panic!("boom");
        })
    });
    assert!(r.is_err());
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1);
    assert_eq!(s.stage("panics").unwrap().count, 1);
    assert_eq!(mm_trace::current_tick_id(), None, "tick uninstalled during unwind");
}

static EXCHANGE_ORDER: Site = Site::exchange("POST", "order_bug1");

fn exchange_count(s: &mm_trace::Summary, api: &str) -> u64 {
    s.exchange.iter().find(|e| e.api == api).map_or(0, |e| e.stats.count)
}

/// Bug 1: exchange requests are recorded in every tick, sampled or not (README, "What is
/// measured": always), with slow-tick capture off or on; stages keep their sampled-only histograms.
#[test]
fn bug1_exchange_requests_recorded_in_unsampled_ticks() {
    for capture in [false, true] {
        let _g = setup(TraceConfig {
            sample_rate: 0.0,
            capture_slow_ticks: capture,
            deadline_ms: 10_000.0,
            ..Default::default()
        });
        for _ in 0..10 {
            tick(|| {
                let _x = mm_trace::__private::StageGuard::enter(&EXCHANGE_ORDER);
                mm_trace::stage_guard!("bug1_stage");
            });
        }
        let s = mm_trace::summary();
        assert_eq!(s.ticks, 10, "capture {capture}");
        assert_eq!(exchange_count(&s, "order_bug1"), 10, "capture {capture}");
        assert!(s.stage("bug1_stage").is_none(), "stages of unsampled ticks stay out of histograms");
        assert!(mm_trace::recent_traces().is_empty(), "unsampled fast ticks keep no trace");
    }
}

/// Bug 3: traces recorded under the test clock keep their times when read after `uninstall`.
#[test]
fn bug3_traces_keep_test_clock_times_after_uninstall() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    mm_trace::test_clock::install(1000);
    tick(|| {
        mm_trace::stage_guard!("bug3_stage");
    });
    mm_trace::test_clock::uninstall();
    // A scale makes the real clock's factor differ from the test clock's on every machine.
    mm_trace::test_clock::set_time_scale(4.0).unwrap();
    let traces = mm_trace::recent_traces();
    mm_trace::test_clock::set_time_scale(1.0).unwrap();
    let t = traces.last().expect("a sampled trace");
    assert_eq!(t.duration_ns, 3000, "tick: 3 reads of 1000 ns steps");
    assert_eq!(t.spans.len(), 1);
    assert_eq!((t.spans[0].start_ns, t.spans[0].end_ns), (1000, 2000));
}

/// Bug 5: reset frees the guard-reason cardinality budget: a new set of reasons up to the cap
/// gets its own labels, and a reason seen before the reset counts again.
#[test]
fn bug5_reset_frees_guard_reason_cardinality() {
    let _g = setup(TraceConfig { label_cardinality_cap: 4, ..Default::default() });
    for round in 0..3 {
        for i in 0..4 {
            mm_trace::guard_trip(&format!("bug5_r{round}_{i}"));
        }
        mm_trace::guard_trip("bug5_r0_0");
        let s = mm_trace::summary();
        for i in 0..4 {
            let want = if round == 0 && i == 0 { 2 } else { 1 };
            assert_eq!(s.guard_trips(&format!("bug5_r{round}_{i}")), want, "round {round}: {:?}", s.guard_trips);
        }
        if round == 0 {
            assert_eq!(s.guard_trips("other"), 0, "{:?}", s.guard_trips);
        } else {
            // The fifth reason of the window (bug5_r0_0 again) is over the cap.
            assert_eq!(s.guard_trips("other"), 1, "round {round}: {:?}", s.guard_trips);
        }
        mm_trace::reset();
    }
}

/// Bug 6: spans cut when a tick's own plus carried spans exceed `max_spans_per_tick` count in
/// `mm_trace_spans_dropped_total`, as in the trace.
#[test]
fn bug6_spans_cut_at_tick_cap_are_counted_in_health() {
    let _g = setup(TraceConfig { sample_rate: 1.0, max_spans_per_tick: 10, ..Default::default() });
    tick(|| {
        for _ in 0..6 {
            {
                mm_trace::stage_guard!("bug6_local");
            };
        }
        let ctx = mm_trace::TickContext::current();
        std::thread::scope(|s| {
            s.spawn(|| {
                ctx.in_scope(|| {
                    for _ in 0..8 {
                        {
                            mm_trace::stage_guard!("bug6_remote");
                        };
                    }
                })
            });
        });
    });
    let traces = mm_trace::recent_traces();
    let t = traces.last().unwrap();
    assert_eq!(t.spans.len(), 10);
    assert_eq!(t.spans_dropped, 4);
    assert_eq!(mm_trace::summary().health.spans_dropped, 4);
}

/// A thread that runs an unsampled, capture-off tick (whose stages record nothing) and joins a
/// sampled tick's carried context in the middle of it: stages inside the context belong to the
/// sampled tick, and once the context is left the thread is back to recording nothing.
#[test]
fn carried_context_inside_an_unsampled_tick_records_then_stops() {
    let _g = setup(TraceConfig { sample_rate: 1.0, capture_slow_ticks: false, ..Default::default() });
    let sampled = TickGuard::begin(&TICK);
    let ctx = mm_trace::TickContext::current();
    assert!(ctx.tick_id().is_some());
    mm_trace::set_sample_rate(0.0).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            tick(|| {
                {
                    mm_trace::stage_guard!("before_context");
                };
                ctx.in_scope(|| {
                    mm_trace::stage_guard!("in_context");
                });
                {
                    mm_trace::stage_guard!("after_context");
                };
            });
        });
    });
    drop(sampled);
    mm_trace::set_sample_rate(1.0).unwrap();
    let s = mm_trace::summary();
    assert_eq!(s.stage("in_context").map(|st| st.count), Some(1));
    assert!(s.stage("before_context").is_none(), "a stage of an unsampled tick was recorded");
    assert!(s.stage("after_context").is_none(), "leaving the context did not restore the unsampled tick");
    assert_eq!(s.ticks, 2);
}

/// A loop that starts ticking after a quiet spell (the trace worker has backed off to its longest
/// sleep) keeps its traces: 1000 sampled ticks of 10 µs are 4x a thread's 256 waiting traces,
/// so they are all kept only if the worker looks again within a few milliseconds. (With a 20 ms
/// back-off, 680 - 750 of them were dropped; the bound leaves room for a worker delayed on a busy
/// machine.)
#[test]
fn burst_after_idling_keeps_its_traces() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..1000 {
        tick(|| {
            mm_trace::stage_guard!("burst_work");
            let t0 = std::time::Instant::now();
            while t0.elapsed() < Duration::from_micros(10) {
                std::hint::spin_loop();
            }
        });
    }
    mm_trace::flush();
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1000);
    assert!(s.health.traces_dropped < 200, "{} of 1000 traces dropped", s.health.traces_dropped);
}

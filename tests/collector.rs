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
                        let _g = mm_trace::stage_guard!("concurrent");
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
            let _g = mm_trace::stage_guard!("short_lived");
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
            let _g = mm_trace::stage_guard!("sleep");
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
            let _g = mm_trace::stage_guard!("sampled_stage");
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
            let _g = mm_trace::stage_guard!("sampled_stage");
        });
    }
    assert_eq!(mm_trace::summary().stage("sampled_stage").unwrap().count, expected);
}

#[test]
fn live_switches_take_effect_without_restart() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    tick(|| drop(mm_trace::stage_guard!("live")));
    mm_trace::set_enabled(false);
    assert!(!mm_trace::is_enabled());
    tick(|| drop(mm_trace::stage_guard!("live")));
    mm_trace::guard_trip("while_off");
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1);
    assert_eq!(s.stage("live").unwrap().count, 1);
    assert_eq!(s.guard_trips("while_off"), 0);
    mm_trace::set_enabled(true);
    mm_trace::set_sample_rate(0.0).unwrap();
    tick(|| drop(mm_trace::stage_guard!("live")));
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
            let _g = mm_trace::stage_guard!("many");
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
    tick(|| drop(mm_trace::stage_guard!("before_reset")));
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
        let _outer = mm_trace::stage_guard!("outer");
        mm_trace::in_stage!("inner", {
            let _deeper = mm_trace::stage_guard!("deeper");
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
            let _g = mm_trace::stage_guard!("panics");
            panic!("boom");
        })
    });
    assert!(r.is_err());
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1);
    assert_eq!(s.stage("panics").unwrap().count, 1);
    assert_eq!(mm_trace::current_tick_id(), None, "tick uninstalled during unwind");
}

//! Compiled out, the public API still compiles and reports nothing.

use compile_out::*;

#[test]
fn instrumented_code_runs_and_nothing_is_recorded() {
    mm_trace::init(mm_trace::TraceConfig { sample_rate: 1.0, ..Default::default() }).unwrap();
    let mut v = vec![1, 2, 3];
    assert_eq!(instrumented_tick(&mut v.clone()), plain_tick(&mut v));
    assert_eq!(instrumented_exchange(3, 0), Err("empty order".to_owned()));
    assert_eq!(instrumented_sections(5), plain_sections(5));
    assert_eq!(poll_instrumented_async(1), 2);
    mm_trace::guard_trip("vol_soft");
    mm_trace::partial_fail();
    mm_trace::annotate("symbols", 8);
    mm_trace::set_parallel_symbols(8);
    mm_trace::set_enabled(true);
    mm_trace::set_sample_rate(1.0).unwrap();
    assert!(mm_trace::set_sample_rate(7.0).is_err(), "arguments are still checked");
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 0);
    assert!(s.stages.is_empty());
    assert!(s.guard_trips.is_empty());
    assert!(mm_trace::recent_traces().is_empty());
    assert_eq!(mm_trace::current_tick_id(), None);
    assert!(!mm_trace::is_enabled());
    let ctx = mm_trace::TickContext::current();
    assert_eq!(ctx.tick_id(), None);
    assert_eq!(ctx.in_scope(|| 7), 7);
    mm_trace::reset();
}

#[test]
fn guards_are_zero_sized() {
    mm_trace::stage_guard!("guards");
    assert_eq!(std::mem::size_of::<mm_trace::__private::NoopGuard>(), 0);
    assert_eq!(std::mem::size_of::<mm_trace::ContextGuard>(), 0);
    assert_eq!(std::mem::size_of::<mm_trace::TickContext>(), 0);
}

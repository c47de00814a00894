//! The default configuration is in force before `init` (issue: the sample threshold started at 0,
//! so no tick was sampled and `Summary.sample_rate` read 0.0 until `init`). Its own test binary:
//! `init` must never have been called in this process.

use mm_trace::__private::{Site, StageGuard, TickGuard};
use mm_trace::{KeepReason, TraceConfig};

static TICK: Site = Site::tick("tick");
static STAGE: Site = Site::stage("work");

#[test]
fn defaults_hold_before_init() {
    // The default config writes golden traces to a relative directory: keep them out of the tree.
    let dir = std::env::temp_dir().join(format!("mm-trace-before-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_current_dir(&dir).unwrap();

    let defaults = TraceConfig::default();
    assert_eq!(mm_trace::summary().sample_rate, defaults.sample_rate);
    assert_eq!(mm_trace::summary().deadline_ms, defaults.deadline_ms);
    const TICKS: u64 = 1000;
    for _ in 0..TICKS {
        let _t = TickGuard::begin(&TICK);
        drop(StageGuard::enter_stage(&STAGE));
    }
    mm_trace::flush();
    let s = mm_trace::summary();
    assert_eq!(s.ticks, TICKS);
    assert_eq!(s.sample_rate, 0.2);
    // Exactly the ticks `is_sampled` picks at the default rate fed the stage histogram.
    let expected = (1..=TICKS).filter(|&id| mm_trace::is_sampled(id, defaults.sample_rate)).count() as u64;
    assert!((150..250).contains(&expected), "{expected}");
    assert_eq!(s.stage("work").map_or(0, |st| st.count), expected);
    let kept = mm_trace::recent_traces();
    assert!(!kept.is_empty() && kept.iter().all(|t| t.reason == KeepReason::Sampled));
    assert!(kept.iter().all(|t| mm_trace::is_sampled(t.tick_id, 0.2)));
    let _ = std::fs::remove_dir_all(&dir);
}

//! What `hot_path` (criterion), `tick_ab` (interleaved ticks) and `perf_probe` (callgrind)
//! measure: the same sites, spans per tick, tick workload and configurations, so their figures
//! describe one workload. (Each bench uses part of it.)
#![allow(dead_code, reason = "each bench target uses part of this module")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use mm_trace::__private::{Site, StageGuard, TickGuard};
use mm_trace::TraceConfig;

pub static TICK: Site = Site::tick("tick");
pub static STAGE: Site = Site::stage("fetch_md");
/// The five stages of a tick.
pub static WORK: [Site; 5] =
    [Site::stage("fetch_md"), Site::stage("spread"), Site::stage("guards"), Site::stage("quote"), Site::stage("emit")];

/// Spans per tick in the span cases: well under the default cap of 4096 spans per trace.
pub const SPANS_PER_TICK: u64 = 1000;

/// Re-initialises the collector for one case and clears what earlier cases recorded.
pub fn configure(enabled: bool, sample_rate: f64, capture_slow_ticks: bool) {
    mm_trace::init(TraceConfig {
        enabled,
        sample_rate,
        capture_slow_ticks,
        export_golden: false,
        ..Default::default()
    })
    .expect("valid config");
    mm_trace::reset();
}

/// The configurations a tick is measured under: `(id, enabled, sample_rate, capture_slow_ticks,
/// target)`; `target` is the bound on the time this adds to a 10 µs tick, if any.
pub const TICK_CASES: [(&str, bool, f64, bool, &str); 5] = [
    ("rate_1.0", true, 1.0, true, "<= 2%"),
    ("rate_0.2_capture_on", true, 0.2, true, "<= 0.5%"),
    ("rate_0.2_capture_off", true, 0.2, false, "<= 0.5%"),
    ("rate_0.0_capture_off", true, 0.0, false, ""),
    ("runtime_disabled", false, 1.0, true, ""),
];

/// Busy work that the compiler cannot remove: `n` dependent multiply-adds.
#[inline(never)]
pub fn spin(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    x
}

/// Spin iterations that take about 2 µs here (found once, then fixed for every variant).
pub fn spin_iters_for_2us() -> u64 {
    let mut n = 1_000u64;
    loop {
        let t0 = Instant::now();
        for _ in 0..100 {
            spin(n);
        }
        let per = t0.elapsed() / 100;
        if per >= Duration::from_micros(1) {
            return (n as f64 * 2_000.0 / per.as_nanos() as f64) as u64;
        }
        n *= 2;
    }
}

/// A tick of five stages of `spin(n)` each, uninstrumented.
#[inline(never)]
pub fn tick_bare(n: u64) -> u64 {
    (0..WORK.len()).fold(0u64, |acc, _| acc.wrapping_add(spin(n)))
}

/// The same tick as `#[traced_tick]` and `#[stage]` expand it.
#[inline(never)]
pub fn tick_traced(n: u64) -> u64 {
    let _t = TickGuard::begin(&TICK);
    WORK.iter().fold(0u64, |acc, site| {
        let _g = StageGuard::enter_stage(site);
        acc.wrapping_add(spin(n))
    })
}

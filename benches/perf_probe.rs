//! A fixed workload for instruction counting (`.ci/perf_guard.sh`) and the memory check.
//!
//! ```text
//! perf_probe <case> <n>     run n operations of one case (see CASES), then exit
//! perf_probe rss [secs]     record 10 M spans/s for secs (default 10) and check peak RSS
//! ```
//!
//! Each case runs its operations inside `probe_loop` (in slices of 200 with the trace worker
//! drained between them), a function that is never inlined so that
//! callgrind can count only its instructions (`--toggle-collect=*probe_loop*`): start-up, clock
//! calibration and the trace worker thread are left out, and the count of `n` operations is an
//! exact, machine-independent number. The guard runs two values of `n` and divides the
//! difference, which cancels whatever a run does once.
//!
//! Built as a `harness = false` bench so it is compiled with the bench profile like the
//! criterion benches: `cargo bench --bench perf_probe --no-run`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mm_trace::__private::{StageGuard, TickGuard, clock_source};

mod common;
use common::{SPANS_PER_TICK, STAGE, TICK, WORK, configure};

/// `(name, enabled, sample_rate, capture_slow_ticks, what one operation is)`.
const CASES: &[(&str, bool, f64, bool, &str)] = &[
    ("recorded", true, 1.0, true, "stage span in a sampled tick (histogram + trace)"),
    ("unsampled_capture_on", true, 0.0, true, "stage span in an unsampled tick, slow-tick capture on"),
    ("unsampled_capture_off", true, 0.0, false, "stage span in an unsampled tick, capture off"),
    ("disabled", false, 1.0, true, "stage span with enabled: false"),
    ("tick_sampled", true, 1.0, true, "tick of 5 empty stages, sampled"),
    ("tick_unsampled", true, 0.0, true, "tick of 5 empty stages, unsampled, capture on"),
];

#[inline(never)]
fn probe_loop(case: &str, n: u64) {
    if case.starts_with("tick") {
        for _ in 0..n {
            let _t = TickGuard::begin(&TICK);
            for site in &WORK {
                let _g = StageGuard::enter_stage(site);
                black_box(site);
            }
        }
        return;
    }
    let mut left = n;
    while left > 0 {
        let k = left.min(SPANS_PER_TICK);
        let _t = TickGuard::begin(&TICK);
        for _ in 0..k {
            let _g = StageGuard::enter_stage(&STAGE);
            // A stage body the compiler cannot see through (see `hot_path::opaque_body`).
            std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        }
        left -= k;
    }
}

/// Records `rate` spans per second (5-stage sampled ticks) for `secs`; returns peak RSS in kB.
fn rss(secs: u64, rate: u64) -> (u64, u64, u64, Duration) {
    configure(true, 1.0, true);
    let start = Instant::now();
    let mut spans = 0u64;
    let mut rss_after_1s = 0;
    for second in 0..secs {
        let second_end = start + Duration::from_secs(second + 1);
        let mut done = 0;
        // 100 slices a second keep the rate even.
        for slice in 0..100u64 {
            let target = rate * (slice + 1) / 100;
            while done < target {
                let _t = TickGuard::begin(&TICK);
                for site in &WORK {
                    let _g = StageGuard::enter_stage(site);
                }
                done += WORK.len() as u64;
            }
            let slice_end = start + Duration::from_millis(second * 1000 + (slice + 1) * 10);
            if let Some(d) = slice_end.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
        spans += done;
        if second == 0 {
            rss_after_1s = status_kb("VmRSS");
        }
        if Instant::now() > second_end + Duration::from_millis(50) {
            eprintln!("note: second {second} overran: this machine could not keep {rate} spans/s then");
        }
    }
    (spans, status_kb("VmHWM"), rss_after_1s, start.elapsed())
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let case = args.first().map_or("", String::as_str);
    if case == "rss" {
        let secs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
        let limit_mb = 32;
        let (spans, hwm_kb, after_1s, elapsed) = rss(secs, 10_000_000);
        let s = mm_trace::summary();
        println!(
            "rss: {spans} spans in {:.2} s ({:.1} M/s), sampled ticks {}, traces kept {} dropped (worker behind) {}, \
             peak RSS (VmHWM) {:.1} MB, RSS after 1 s {:.1} MB, limit {limit_mb} MB",
            elapsed.as_secs_f64(),
            spans as f64 / elapsed.as_secs_f64() / 1e6,
            s.ticks,
            s.ticks.saturating_sub(s.health.traces_dropped),
            s.health.traces_dropped,
            hwm_kb as f64 / 1024.0,
            after_1s as f64 / 1024.0
        );
        if hwm_kb > limit_mb * 1024 {
            eprintln!("FAIL: peak RSS {hwm_kb} kB > {limit_mb} MB");
            std::process::exit(1);
        }
        return;
    }
    let Some(&(_, enabled, rate, capture, _)) = CASES.iter().find(|c| c.0 == case) else {
        if case.is_empty() {
            // `cargo bench` runs every bench binary with `--bench`: nothing to do then.
            return;
        }
        eprintln!("usage: perf_probe <case> <n> | perf_probe rss [secs]; cases:");
        for c in CASES {
            eprintln!("  {:<24} {}", c.0, c.4);
        }
        std::process::exit(2);
    };
    let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    configure(enabled, rate, capture);
    let _ = clock_source();
    // Warm up: thread slot, cells, spare tick buffer (a constant, cancelled by the difference).
    probe_loop(case, 2 * SPANS_PER_TICK);
    // In slices, with the trace worker drained between them outside `probe_loop`: a slice keeps
    // fewer traces than a thread has trace buffers (`MAX_TRACE_BUFS`, 256), so the worker's
    // queue never fills and every kept trace takes the same path (buffers given back by the
    // worker, allocated during the warm-up) whatever the machine's speed; a full queue or an
    // exhausted pool would drop the trace on the tick thread, which costs other instructions.
    let mut left = n;
    while left > 0 {
        let k = left.min(200);
        probe_loop(case, k);
        mm_trace::flush();
        left -= k;
    }
}

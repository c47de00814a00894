//! Hot-path cost of mm-trace, every case in one run so the ratios between them mean something.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench hot_path
//! ```
//!
//! Groups (see docs/PERFORMANCE.md for the results and what each case measures):
//! - `clock`: two raw reads of mm-trace's clock, two `Instant::now()`.
//! - `stage`: one stage span (enter + drop) recorded in a sampled tick, in an unsampled tick with
//!   slow-tick capture on and off, outside any tick, with the runtime switched off, and an
//!   exchange span. Spans run 1000 to a tick; the tick's own begin and end (trace hand-over
//!   included) are timed too, so work deferred to the tick's end is not hidden.
//! - `tick_5_empty`: a tick of five empty stages (per tick): what instrumentation adds to a tick;
//!   the report divides it by the bare `tick_5x2us` time for the overhead share.
//! - `tick_5x2us`: a tick of five stages of ~2 µs spin each, uninstrumented vs sample rates
//!   (the direct measurement; at this size criterion's noise is about ±1%).
//! - `threads`: per-thread cost of a recorded span with one thread vs two at once, in thread
//!   CPU time (what the target is about: shared cache lines) and in wall time.
//! - `async`: a stage future inside a tokio task next to the same stage as a sync guard.
//! - `exemplars`: the trace worker's exemplar work per kept trace (one slot write per span and
//!   for tick_total), for a trace of 1 and of 8 spans. It runs on the worker only: the tick
//!   paths above include none of it (an unsampled tick's cases are unchanged by it).
//!
//! After the groups, a ratio table is printed from criterion's own estimates
//! (`target/criterion/**/new/estimates.json`).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use mm_trace::__private::{
    Instrumented, Site, StageGuard, TickFuture, TickGuard, clock_now, clock_source, exemplar_bench_record,
};

mod common;
use common::{SPANS_PER_TICK, STAGE, TICK, TICK_CASES, configure, spin_iters_for_2us, tick_bare, tick_traced};

static EXCHANGE: Site = Site::exchange("POST", "order");

/// Times `iters` spans of `site`, run `SPANS_PER_TICK` to a tick (`in_tick`) or with no tick.
fn spans(iters: u64, site: &'static Site, in_tick: bool) -> Duration {
    if std::ptr::eq(site, &EXCHANGE) {
        spans_of::<true>(iters, site, in_tick)
    } else {
        spans_of::<false>(iters, site, in_tick)
    }
}

/// What the macros expand to for each kind of site: `#[exchange_req]` -> `enter`, stages -> `enter_stage`.
///
/// Spans run eight to a loop iteration, so the loop's own counter and branch (and where the
/// linker happens to place the loop: a sub-nanosecond case moved between 0.4 and 1.1 ns with the
/// alignment of a two-instruction loop) weigh an eighth as much as with one span per iteration.
fn spans_of<const EXCHANGE_SITE: bool>(iters: u64, site: &'static Site, in_tick: bool) -> Duration {
    let span = || {
        let _g = if EXCHANGE_SITE { StageGuard::enter(site) } else { StageGuard::enter_stage(site) };
        opaque_body();
    };
    let mut left = iters;
    let mut total = Duration::ZERO;
    while left > 0 {
        let n = left.min(SPANS_PER_TICK);
        let t0 = Instant::now();
        let tick = in_tick.then(|| TickGuard::begin(&TICK));
        for _ in 0..n / 8 {
            span();
            span();
            span();
            span();
            span();
            span();
            span();
            span();
        }
        for _ in 0..n % 8 {
            span();
        }
        drop(tick);
        total += t0.elapsed();
        left -= n;
    }
    total
}

/// An empty stage body the compiler cannot see through (as a real stage's body is): without it,
/// LLVM hoists the thread-local reads of an empty loop body out of the loop, and the unsampled
/// and disabled cases would measure nothing.
#[inline(always)]
fn opaque_body() {
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

fn clock(c: &mut Criterion) {
    let mut g = c.benchmark_group("clock");
    g.bench_function("mm_trace_2_reads", |b| b.iter(|| black_box(clock_now()).wrapping_sub(black_box(clock_now()))));
    g.bench_function("instant_now_2_reads", |b| b.iter(|| black_box(Instant::now()) - black_box(Instant::now())));
    g.finish();
}

fn stage(c: &mut Criterion) {
    let mut g = c.benchmark_group("stage");
    configure(true, 1.0, true);
    g.bench_function("recorded_sampled_tick", |b| b.iter_custom(|n| spans(n, &STAGE, true)));
    g.bench_function("exchange_sampled_tick", |b| b.iter_custom(|n| spans(n, &EXCHANGE, true)));
    g.bench_function("no_tick_histogram_only", |b| b.iter_custom(|n| spans(n, &STAGE, false)));
    configure(true, 0.0, true);
    g.bench_function("unsampled_capture_on", |b| b.iter_custom(|n| spans(n, &STAGE, true)));
    configure(true, 0.0, false);
    g.bench_function("unsampled_capture_off", |b| b.iter_custom(|n| spans(n, &STAGE, true)));
    configure(false, 1.0, true);
    g.bench_function("runtime_disabled", |b| b.iter_custom(|n| spans(n, &STAGE, true)));
    g.finish();
}

/// Times `iters` calls of `tick`, 200 at a time, letting the trace worker drain its queue
/// between batches (untimed). Back to back, empty sampled ticks hand the worker millions of
/// traces a second, and the tick thread's time then mostly measures that contention (the
/// queue overflowing, the worker freeing buffers on the other core), which swings from run to
/// run; a real tick of micro- to milliseconds hands over orders of magnitude fewer.
fn ticks(iters: u64, tick: fn(u64) -> u64) -> Duration {
    let mut left = iters;
    let mut total = Duration::ZERO;
    while left > 0 {
        let n = left.min(200);
        let t0 = Instant::now();
        for _ in 0..n {
            black_box(tick(black_box(0)));
        }
        total += t0.elapsed();
        mm_trace::flush();
        left -= n;
    }
    total
}

/// The instrumentation of a 5-stage tick alone (no work): what a tick adds to any tick.
fn tick_5_empty(c: &mut Criterion) {
    let mut g = c.benchmark_group("tick_5_empty");
    g.bench_function("bare", |b| b.iter_custom(|n| ticks(n, tick_bare)));
    for (id, enabled, rate, capture, _) in TICK_CASES {
        configure(enabled, rate, capture);
        g.bench_function(id, |b| b.iter_custom(|n| ticks(n, tick_traced)));
    }
    configure(true, 1.0, true);
    g.bench_function("rate_1.0_back_to_back", |b| b.iter(|| tick_traced(black_box(0))));
    g.finish();
}

fn tick_5x2us(c: &mut Criterion) {
    let n = spin_iters_for_2us();
    let mut g = c.benchmark_group("tick_5x2us");
    g.bench_function("bare", |b| b.iter(|| tick_bare(black_box(n))));
    for (id, enabled, rate, capture, _) in TICK_CASES {
        configure(enabled, rate, capture);
        g.bench_function(id, |b| b.iter(|| tick_traced(black_box(n))));
    }
    g.bench_function("bare_again", |b| b.iter(|| tick_bare(black_box(n))));
    g.finish();
}

/// CPU time this thread has run (`CLOCK_THREAD_CPUTIME_ID`, ns). Unlike wall time it does not
/// count time the thread waited for a core, so two threads on a busy 2-vCPU machine are compared
/// on what they cost, not on how the host shared its cores. (`/proc/thread-self/schedstat`, used
/// before, is only brought up to date at scheduler events, so a short sample could read zero.)
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Mean per-thread time of `iters` recorded spans with `threads` threads recording at once:
/// each thread's own CPU time (`cpu`), or wall time, which also counts waiting for a core.
fn spans_on_threads(iters: u64, threads: usize, cpu: bool) -> Duration {
    let start = Barrier::new(threads);
    let total: Duration = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // Warm this thread's data (first span claims the slot and its cells).
                    spans(SPANS_PER_TICK, &STAGE, true);
                    start.wait();
                    if !cpu {
                        return spans(iters, &STAGE, true);
                    }
                    let t0 = thread_cpu();
                    spans(iters, &STAGE, true);
                    thread_cpu() - t0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).sum()
    });
    total / threads as u32
}

fn threads(c: &mut Criterion) {
    configure(true, 1.0, true);
    let mut g = c.benchmark_group("threads");
    g.bench_function("recorded_1_thread", |b| b.iter_custom(|n| spans_on_threads(n, 1, true)));
    g.bench_function("recorded_2_threads", |b| b.iter_custom(|n| spans_on_threads(n, 2, true)));
    g.bench_function("recorded_1_thread_wall", |b| b.iter_custom(|n| spans_on_threads(n, 1, false)));
    g.bench_function("recorded_2_threads_wall", |b| b.iter_custom(|n| spans_on_threads(n, 2, false)));
    g.finish();
}

fn async_stage(c: &mut Criterion) {
    configure(true, 1.0, true);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().expect("tokio runtime");
    let mut g = c.benchmark_group("async");
    g.bench_function("sync_stage_sampled_tick", |b| b.iter_custom(|n| spans(n, &STAGE, true)));
    g.bench_function("async_stage_in_task_sampled_tick", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut left = iters;
                    let mut total = Duration::ZERO;
                    while left > 0 {
                        let n = left.min(SPANS_PER_TICK);
                        total += TickFuture::new(&TICK, async move {
                            let t0 = Instant::now();
                            for i in 0..n {
                                black_box(Instrumented::new(&STAGE, async move { black_box(i) }).await);
                            }
                            t0.elapsed()
                        })
                        .await;
                        left -= n;
                    }
                    total
                })
                .await
                .expect("bench task")
            })
        })
    });
    g.bench_function("async_bare_future_in_task", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    for i in 0..iters {
                        black_box(async move { black_box(i) }.await);
                    }
                    t0.elapsed()
                })
                .await
                .expect("bench task")
            })
        })
    });
    g.finish();
}

static EX_SITES: [Site; 8] = [
    Site::stage("ex_fetch_md"),
    Site::stage("ex_decode"),
    Site::stage("ex_spread"),
    Site::stage("ex_guards"),
    Site::stage("ex_quote"),
    Site::exchange("GET", "ex_book"),
    Site::exchange("POST", "ex_order"),
    Site::stage("ex_emit"),
];

fn exemplars(c: &mut Criterion) {
    let mut g = c.benchmark_group("exemplars");
    let sites: Vec<&'static Site> = EX_SITES.iter().collect();
    g.bench_function("per_kept_trace_1_span", |b| b.iter_custom(|n| exemplar_bench_record(&TICK, &sites[..1], n)));
    g.bench_function("per_kept_trace_8_spans", |b| b.iter_custom(|n| exemplar_bench_record(&TICK, &sites, n)));
    g.finish();
}

criterion_group!(benches, clock, stage, tick_5_empty, tick_5x2us, threads, async_stage, exemplars);

// ---------------------------------------------------------------------------------------------
// Ratio table

fn median_ns(group: &str, id: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), std::path::PathBuf::from);
    let path = dir.join("criterion").join(group).join(id).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn report() {
    let get = |g: &str, id: &str| median_ns(g, id);
    let clock2 = get("clock", "mm_trace_2_reads");
    println!("\n== mm-trace hot path (clock source: {}) ==", clock_source());
    let mut rows: Vec<(String, Option<f64>, String)> = Vec::new();
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    };
    let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:+.2}%", (a / b - 1.0) * 100.0),
        _ => "-".into(),
    };
    rows.push(("clock: two mm-trace reads".into(), clock2, "1.00x".into()));
    let instant = get("clock", "instant_now_2_reads");
    rows.push(("clock: two Instant::now".into(), instant, ratio(instant, clock2)));
    for (id, what, target) in [
        ("recorded_sampled_tick", "stage recorded (sampled tick)", "<= 1.5x clock"),
        ("exchange_sampled_tick", "exchange span (sampled tick)", ""),
        ("no_tick_histogram_only", "stage outside a tick (histogram only)", ""),
        ("unsampled_capture_on", "stage, unsampled tick, capture on", "<= 1.2x recorded"),
        ("unsampled_capture_off", "stage, unsampled tick, capture off", "<= 1 ns"),
        ("runtime_disabled", "stage, enabled: false", "<= 1 ns"),
    ] {
        let v = get("stage", id);
        rows.push((format!("{what} [{target}]"), v, format!("{} of clock", ratio(v, clock2))));
    }
    let rec = get("stage", "recorded_sampled_tick");
    let on = get("stage", "unsampled_capture_on");
    rows.push(("capture on / recorded".into(), None, ratio(on, rec)));
    let bare = get("tick_5x2us", "bare");
    let empty_bare = get("tick_5_empty", "bare");
    // The configurations of `TICK_CASES` with their targets, then one case of the group's own.
    let tick_rows = |extra: &'static str, note: &'static str| {
        TICK_CASES
            .iter()
            .map(|&(id, .., target)| (id, if target.is_empty() { String::new() } else { format!(" [{target}]") }))
            .chain([(extra, note.to_owned())])
    };
    for (id, target) in tick_rows("rate_1.0_back_to_back", " (worker contention)") {
        let v = get("tick_5_empty", id);
        let added = v.zip(empty_bare).map(|(v, b)| v - b);
        let share = match (added, bare) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:+.2}% of a bare 5x2 us tick", a / b * 100.0),
            _ => "-".into(),
        };
        rows.push((format!("5 empty stages + tick, added: {id}{target}"), added, share));
    }
    for (id, target) in [("bare", String::new())].into_iter().chain(tick_rows("bare_again", "")) {
        let v = get("tick_5x2us", id);
        rows.push((format!("5-stage ~10 us tick: {id}{target}"), v, format!("{} vs bare", pct(v, bare))));
    }
    let one = get("threads", "recorded_1_thread");
    let two = get("threads", "recorded_2_threads");
    rows.push(("recorded, 1 thread, CPU time per thread".into(), one, "1.00x".into()));
    rows.push(("recorded, 2 threads, CPU time per thread [<= 1.2x]".into(), two, ratio(two, one)));
    let one_w = get("threads", "recorded_1_thread_wall");
    let two_w = get("threads", "recorded_2_threads_wall");
    rows.push(("recorded, 1 thread, wall time".into(), one_w, "1.00x".into()));
    rows.push(("recorded, 2 threads, wall time".into(), two_w, ratio(two_w, one_w)));
    let sync = get("async", "sync_stage_sampled_tick");
    let asy = get("async", "async_stage_in_task_sampled_tick");
    let bare_fut = get("async", "async_bare_future_in_task");
    rows.push(("sync stage (sampled tick)".into(), sync, "1.00x".into()));
    rows.push(("async stage in tokio task (sampled tick)".into(), asy, ratio(asy, sync)));
    rows.push(("bare future .await in tokio task".into(), bare_fut, String::new()));
    let ex1 = get("exemplars", "per_kept_trace_1_span");
    let ex8 = get("exemplars", "per_kept_trace_8_spans");
    rows.push(("worker: exemplars of a kept trace, 1 span + tick_total".into(), ex1, String::new()));
    rows.push(("worker: exemplars of a kept trace, 8 spans + tick_total".into(), ex8, ratio(ex8, ex1)));
    println!("{:<58} {:>10}  ratio", "case", "ns");
    for (what, v, r) in rows {
        let v = v.map_or("-".into(), |v| format!("{v:.2}"));
        println!("{what:<58} {v:>10}  {r}");
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report();
}

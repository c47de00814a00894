//! mm-trace next to fastrace, tracing (+ timing layer) and puffin on the same workloads, in one
//! run. `cargo bench --manifest-path peer-bench/Cargo.toml` (see docs/PERFORMANCE.md).
//!
//! Groups:
//! - `off`: one span with each library's runtime switched off (mm-trace `enabled: false`,
//!   fastrace without a root, tracing without a subscriber, puffin `set_scopes_on(false)`).
//!   Runs first, before any subscriber or collector is installed.
//! - `span_in_root`: per span, 1000 spans to a root (mm-trace tick, fastrace root `Span` +
//!   `LocalSpan`, tracing root span + child spans, puffin frame + nested `profile_scope!`); the
//!   root's begin and end are timed too. fastrace's collected spans are flushed to a reporter
//!   that keeps them, and drained, between measurements (outside the timing).
//! - `fn_in_root`: the same through each library's function attribute (`#[trace]`,
//!   `#[instrument]`, `profile_function!`; for mm-trace what `#[stage]` expands to).
//! - `tick_5`: a root with five empty stages, per root; 200 roots, then (untimed) mm-trace's
//!   worker and fastrace's collector drain what they were handed.
//! - `tracing_layer`: per span (made, entered, exited, closed), `tracing` with three layers in one
//!   run, each under its own dispatcher: `floor` (a no-op layer: `tracing`'s dispatch and
//!   registry alone), `timing` (the extensions-based timing layer of the `tracing` rows), and
//!   mm-trace's `tracing_layer()` (sample rate 1.0: histograms and trace); the interleaved report
//!   adds a clock-only layer (two TSC reads into a thread-local histogram: the least any timing
//!   layer does, and a gauge of the machine's state: it does not move when the host is loaded,
//!   the others do). Three shapes: spans under
//!   a root span that is a `tick_span` (`root_*`), spans with no `tracing` parent inside an mm-trace
//!   tick (`in_tick_*`), spans outside any tick (`free_*`); `root_mm_trace_unsampled` is the root
//!   shape at sample rate 0 (slow-tick capture on: trace buffer only).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use mm_trace_peer_bench::{SPANS_PER_ROOT, ft, mm, pf, tr};

/// Per-span time of `iters` spans, `SPANS_PER_ROOT` to a root, with `after` run between roots
/// outside the timing.
fn per_span(iters: u64, work: fn(u64), after: fn()) -> Duration {
    let mut left = iters;
    let mut total = Duration::ZERO;
    while left > 0 {
        let n = left.min(SPANS_PER_ROOT);
        let t0 = Instant::now();
        work(n);
        total += t0.elapsed();
        after();
        left -= n;
    }
    total
}

fn per_tick(iters: u64, work: fn(), after: fn()) -> Duration {
    let mut left = iters;
    let mut total = Duration::ZERO;
    while left > 0 {
        let n = left.min(200);
        let t0 = Instant::now();
        for _ in 0..n {
            work();
        }
        total += t0.elapsed();
        after();
        left -= n;
    }
    total
}

/// Whether a `tracing` case of `on` ran (a filtered run may skip them all).
static TRACING_RAN: AtomicBool = AtomicBool::new(false);

fn nothing() {}
/// Lets mm-trace's trace worker drain its queue (untimed), as fastrace's flush below: both then
/// measure the recording thread, not contention with their background thread.
fn drain_mm_trace() {
    mm_trace::flush();
}
fn drain_fastrace() {
    black_box(ft::drain());
}

fn off(c: &mut Criterion) {
    mm::init(false);
    pf::init(false);
    let mut g = c.benchmark_group("off");
    macro_rules! off_loop {
        ($f:path) => {
            |n: u64| {
                for _ in 0..n {
                    $f();
                }
            }
        };
    }
    g.bench_function("mm_trace", |b| b.iter_custom(|n| per_span(n, off_loop!(mm::span_off), nothing)));
    g.bench_function("fastrace", |b| b.iter_custom(|n| per_span(n, off_loop!(ft::span_off), nothing)));
    g.bench_function("tracing", |b| b.iter_custom(|n| per_span(n, off_loop!(tr::span_off), nothing)));
    g.bench_function("puffin", |b| b.iter_custom(|n| per_span(n, off_loop!(pf::span_off), nothing)));
    g.finish();
}

fn on(c: &mut Criterion) {
    mm::init(true);
    ft::init();
    tr::init();
    pf::init(true);
    let mut g = c.benchmark_group("span_in_root");
    g.bench_function("mm_trace", |b| b.iter_custom(|n| per_span(n, mm::spans_in_root, drain_mm_trace)));
    g.bench_function("fastrace", |b| b.iter_custom(|n| per_span(n, ft::spans_in_root, drain_fastrace)));
    g.bench_function("fastrace_incl_flush", |b| {
        b.iter_custom(|n| {
            per_span(
                n,
                |n| {
                    ft::spans_in_root(n);
                    drain_fastrace();
                },
                nothing,
            )
        })
    });
    g.bench_function("tracing", |b| {
        TRACING_RAN.store(true, Relaxed);
        b.iter_custom(|n| per_span(n, tr::spans_in_root, nothing))
    });
    g.bench_function("puffin", |b| b.iter_custom(|n| per_span(n, pf::spans_in_root, nothing)));
    g.finish();
    let mut g = c.benchmark_group("fn_in_root");
    g.bench_function("mm_trace", |b| b.iter_custom(|n| per_span(n, mm::fns_in_root, drain_mm_trace)));
    g.bench_function("fastrace", |b| b.iter_custom(|n| per_span(n, ft::fns_in_root, drain_fastrace)));
    g.bench_function("tracing", |b| b.iter_custom(|n| per_span(n, tr::fns_in_root, nothing)));
    g.bench_function("puffin", |b| b.iter_custom(|n| per_span(n, pf::fns_in_root, nothing)));
    g.finish();
    let mut g = c.benchmark_group("tick_5");
    g.bench_function("mm_trace", |b| b.iter_custom(|n| per_tick(n, mm::tick_5, drain_mm_trace)));
    g.bench_function("fastrace", |b| b.iter_custom(|n| per_tick(n, ft::tick_5, drain_fastrace)));
    g.bench_function("fastrace_incl_flush", |b| {
        b.iter_custom(|n| {
            // 200 ticks, then the flush to the reporter, all timed.
            let t0 = Instant::now();
            per_tick(n, ft::tick_5, drain_fastrace);
            t0.elapsed()
        })
    });
    g.bench_function("tracing", |b| b.iter_custom(|n| per_tick(n, tr::tick_5, nothing)));
    g.bench_function("puffin", |b| b.iter_custom(|n| per_tick(n, pf::tick_5, nothing)));
    g.finish();
    // Only when criterion's filter let a `tracing` case run.
    assert!(tr::recorded() > 0 || !TRACING_RAN.load(Relaxed), "the tracing timing layer saw no span");
}

fn layers(c: &mut Criterion) {
    use mm_trace_peer_bench::layers;
    mm::init(true);
    let floor = layers::floor();
    let timing = layers::timing();
    let mm_layer = layers::mm_trace();
    let mut g = c.benchmark_group("tracing_layer");
    type Work = fn(u64);
    let cases: [(&str, &tracing::Dispatch, Work, fn()); 9] = [
        ("root_floor", &floor, layers::spans_in_root_span, nothing),
        ("root_timing", &timing, layers::spans_in_root_span, nothing),
        ("root_mm_trace", &mm_layer, layers::spans_in_root_span, drain_mm_trace),
        ("in_tick_floor", &floor, layers::spans_in_mm_tick, drain_mm_trace),
        ("in_tick_timing", &timing, layers::spans_in_mm_tick, drain_mm_trace),
        ("in_tick_mm_trace", &mm_layer, layers::spans_in_mm_tick, drain_mm_trace),
        ("free_floor", &floor, layers::spans_free, nothing),
        ("free_timing", &timing, layers::spans_free, nothing),
        ("free_mm_trace", &mm_layer, layers::spans_free, nothing),
    ];
    for (id, dispatch, work, after) in cases {
        g.bench_function(id, |b| {
            b.iter_custom(|n| tracing::dispatcher::with_default(dispatch, || per_span(n, work, after)))
        });
    }
    mm_trace::set_sample_rate(0.0).expect("a valid rate");
    g.bench_function("root_mm_trace_unsampled", |b| {
        b.iter_custom(|n| {
            tracing::dispatcher::with_default(&mm_layer, || per_span(n, layers::spans_in_root_span, drain_mm_trace))
        })
    });
    mm_trace::set_sample_rate(1.0).expect("a valid rate");
    g.finish();
}

criterion_group!(benches, off, on, layers);

fn median_ns(group: &str, id: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"), Into::into);
    let text = std::fs::read_to_string(dir.join("criterion").join(group).join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn report() {
    println!("\n== peers (ns, median; ratio = peer / mm-trace) ==");
    println!("{:<14} {:>10} {:>10} {:>10} {:>10}   peer/mm", "group", "mm_trace", "fastrace", "tracing", "puffin");
    if let (Some(m), Some(f)) =
        (median_ns("span_in_root", "mm_trace"), median_ns("span_in_root", "fastrace_incl_flush"))
    {
        println!("fastrace span incl. flush to the reporter: {f:.2} ns ({:.1}x mm-trace)", f / m);
    }
    if let (Some(m), Some(f)) = (median_ns("tick_5", "mm_trace"), median_ns("tick_5", "fastrace_incl_flush")) {
        println!("fastrace 5-stage tick incl. flush to the reporter: {f:.2} ns ({:.1}x mm-trace)", f / m);
    }
    for g in ["off", "span_in_root", "fn_in_root", "tick_5"] {
        let v: Vec<Option<f64>> =
            ["mm_trace", "fastrace", "tracing", "puffin"].iter().map(|id| median_ns(g, id)).collect();
        let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}"));
        let r = |x: Option<f64>| match (x, v[0]) {
            (Some(x), Some(m)) if m > 0.0 => format!("{:.1}x", x / m),
            _ => "-".into(),
        };
        println!(
            "{g:<14} {:>10} {:>10} {:>10} {:>10}   fastrace {} tracing {} puffin {}",
            f(v[0]),
            f(v[1]),
            f(v[2]),
            f(v[3]),
            r(v[1]),
            r(v[2]),
            r(v[3])
        );
    }
}

/// mm-trace's part per span on top of `tracing` (case − floor of the same shape), next to the
/// extensions-based timing layer's.
fn report_layers() {
    println!("\n== tracing layers (ns per span, median; part = case - floor of the same shape) ==");
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>10} {:>11} {:>9}",
        "shape", "floor", "timing", "mm", "mm part", "timing part", "mm/floor"
    );
    for shape in ["root", "in_tick", "free"] {
        let get = |l: &str| median_ns("tracing_layer", &format!("{shape}_{l}"));
        let (Some(f), Some(t), Some(m)) = (get("floor"), get("timing"), get("mm_trace")) else { continue };
        println!(
            "{shape:<10} {f:>8.1} {t:>8.1} {m:>8.1} {:>10.1} {:>11.1} {:>8.2}x   timing/mm {:.2}x",
            m - f,
            t - f,
            m / f,
            t / m
        );
    }
    if let (Some(f), Some(u)) =
        (median_ns("tracing_layer", "root_floor"), median_ns("tracing_layer", "root_mm_trace_unsampled"))
    {
        println!("root, unsampled tick (capture on): mm {u:.1} ns, part {:.1} ns", u - f);
    }
}

/// The same cases again, interleaved: each round times one root of every case of a shape back to
/// back (order rotated), so all cases of a round share the machine's state; the part is the median
/// over rounds of (case - floor). On a shared machine this holds still where the medians of
/// separate criterion runs drift by tens of nanoseconds.
fn report_layers_interleaved() {
    use mm_trace_peer_bench::layers;
    const ROUNDS: usize = 3000;
    mm::init(true);
    let dispatches = layers::all();
    let shapes: [(&str, fn(u64), fn()); 3] = [
        ("root", layers::spans_in_root_span, drain_mm_trace),
        ("in_tick", layers::spans_in_mm_tick, drain_mm_trace),
        ("free", layers::spans_free, nothing),
    ];
    println!("\n== tracing layers, interleaved ({ROUNDS} rounds of {SPANS_PER_ROOT} spans; ns per span) ==");
    println!("{}", layers::Interleaved::HEADER);
    for (shape, work, after) in shapes {
        let m = layers::interleave(&dispatches, work, after, ROUNDS);
        println!(
            "{}   mm/floor {:.2}x, timing part / mm part {:.1}x",
            m.row(shape),
            m.mm / m.floor,
            m.timing_part / m.mm_part
        );
    }
    assert!(mm_trace::summary().stage("fetch_md").is_some_and(|s| s.count > 0), "mm-trace's layer recorded nothing");
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report();
    report_layers();
    report_layers_interleaved();
}

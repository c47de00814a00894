//! The `tracing` layers span by span, outside criterion.
//!
//! - `layer_probe count <floor|timing|mm> <root|in_tick|free> <n>`: `n` spans of a shape once (after
//!   100 to warm up), for instruction counts under callgrind (the machines here have no cycle
//!   counters): run it with two values of `n` and take the difference, e.g.
//!   `valgrind --tool=callgrind --toggle-collect='mm_trace_peer_bench::layers::spans_*' ...`.
//! - `layer_probe time [rounds]`: the interleaved comparison of the `peers` bench alone (floor,
//!   timing and mm-trace rounds back to back, the part as the median over rounds of case - floor),
//!   the root shape again at sample rate 0 (slow-tick capture on), and the in-tick shape at rate 0
//!   with capture off (the layer records nothing there).
use std::time::Instant;

use mm_trace_peer_bench::{SPANS_PER_ROOT, layers, mm};

fn shape(name: &str) -> fn(u64) {
    match name {
        "root" => layers::spans_in_root_span,
        "in_tick" => layers::spans_in_mm_tick,
        _ => layers::spans_free,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    mm::init(true);
    match args.get(1).map(String::as_str) {
        Some("count") => {
            let (layer, work, n) = (args[2].as_str(), shape(&args[3]), args[4].parse::<u64>().expect("n"));
            let d = match layer {
                "floor" => layers::floor(),
                "timing" => layers::timing(),
                _ => layers::mm_trace(),
            };
            tracing::dispatcher::with_default(&d, || {
                work(100);
                mm_trace::flush();
                work(n);
            });
        }
        _ => time(args.get(2).map_or(1000, |r| r.parse().expect("rounds"))),
    }
}

fn time(rounds: usize) {
    let dispatches = [layers::floor(), layers::timing(), layers::mm_trace(), layers::clock_only()];
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>10} {:>11} {:>11}",
        "shape", "floor", "timing", "mm", "mm part", "timing part", "clock part"
    );
    for name in ["root", "in_tick", "free", "root_unsampled", "in_tick_off"] {
        let work = shape(name.trim_end_matches("_unsampled").trim_end_matches("_off"));
        let (rate, capture) = match name {
            "root_unsampled" => (0.0, true),
            "in_tick_off" => (0.0, false),
            _ => (1.0, true),
        };
        let config = mm_trace::TraceConfig { sample_rate: rate, capture_slow_ticks: capture, export_golden: false, ..Default::default() };
        mm_trace::init(config).expect("a valid config");
        let mut times: [Vec<f64>; 4] = Default::default();
        let mut parts: [Vec<f64>; 3] = Default::default();
        for r in 0..rounds + 100 {
            let mut round = [0.0; 4];
            for k in 0..4 {
                let i = (r + k) % 4;
                round[i] = tracing::dispatcher::with_default(&dispatches[i], || {
                    let t0 = Instant::now();
                    work(SPANS_PER_ROOT);
                    let ns = t0.elapsed().as_nanos() as f64 / SPANS_PER_ROOT as f64;
                    mm_trace::flush();
                    ns
                });
            }
            if r >= 100 {
                for i in 0..4 {
                    times[i].push(round[i]);
                }
                parts[0].push(round[1] - round[0]);
                parts[1].push(round[2] - round[0]);
                parts[2].push(round[3] - round[0]);
            }
        }
        let [f, t, m, _] = times.each_mut().map(&median);
        let [tp, mp, cp] = parts.each_mut().map(&median);
        println!("{name:<10} {f:>8.1} {t:>8.1} {m:>8.1} {mp:>10.1} {tp:>11.1} {cp:>11.1}");
    }
}


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
use mm_trace_peer_bench::{layers, mm};

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
    let dispatches = layers::all();
    println!("{}", layers::Interleaved::HEADER);
    for name in ["root", "in_tick", "free", "root_unsampled", "in_tick_off"] {
        let work = shape(name.trim_end_matches("_unsampled").trim_end_matches("_off"));
        let (rate, capture) = match name {
            "root_unsampled" => (0.0, true),
            "in_tick_off" => (0.0, false),
            _ => (1.0, true),
        };
        let config = mm_trace::TraceConfig {
            sample_rate: rate,
            capture_slow_ticks: capture,
            export_golden: false,
            ..Default::default()
        };
        mm_trace::init(config).expect("a valid config");
        println!("{}", layers::interleave(&dispatches, work, mm_trace::flush, rounds).row(name));
    }
}

//! Peak RSS while recording spans at a fixed rate: `rss <mm-trace|fastrace> [secs] [spans/s]`.
//!
//! Records 5-stage roots (sample rate 1.0 for mm-trace; a root `Span` with five `LocalSpan`s for
//! fastrace, whose reporter counts and drops what it is given, so only fastrace's own backlog
//! can grow) at up to `spans/s` (default 10 M) for `secs` (default 10), then prints the peak RSS
//! (VmHWM). Exits 1 if mm-trace's peak RSS is above 32 MB.

use std::time::{Duration, Instant};

use mm_trace_peer_bench::{ft, mm, peak_rss_kb, rss_kb};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lib = args.first().map_or("mm-trace", String::as_str).to_owned();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let tick: fn() = match lib.as_str() {
        "mm-trace" => {
            mm::init(true);
            mm::tick_5
        }
        "fastrace" => {
            ft::init_counting();
            ft::tick_5
        }
        other => {
            eprintln!("unknown library {other:?}: use mm-trace or fastrace");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let mut spans = 0u64;
    let mut rss_per_sec = Vec::new();
    for slice in 0..secs * 100 {
        let target = rate * (slice + 1) / 100;
        while spans < target {
            tick();
            spans += 5;
        }
        if let Some(d) = (start + Duration::from_millis((slice + 1) * 10)).checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        if slice % 100 == 99 {
            rss_per_sec.push(rss_kb() / 1024);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let peak_mb = peak_rss_kb() as f64 / 1024.0;
    println!(
        "{lib}: {spans} spans in {elapsed:.1} s ({:.1} M spans/s), peak RSS {peak_mb:.1} MB, RSS each second (MB): {rss_per_sec:?}",
        spans as f64 / elapsed / 1e6
    );
    if lib == "mm-trace" && peak_mb > 32.0 {
        eprintln!("FAIL: peak RSS above 32 MB");
        std::process::exit(1);
    }
}

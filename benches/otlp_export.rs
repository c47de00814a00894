//! OTLP export throughput: how many kept spans per second one core turns into OTLP requests.
//!
//! ```text
//! cargo bench --bench otlp_export
//! ```
//!
//! The whole process is pinned to one CPU before mm-trace starts a thread, so the ticking
//! thread, the trace worker (conversion), the exporter (encoding, HTTP) and the in-process sink
//! that reads the requests all share that core. Groups:
//! - `otlp_export/encode_512_ticks`: encoding one batch (512 kept ticks of 11 spans) to the
//!   protobuf body, per span.
//! - `otlp_export/pipeline`: kept ticks of 11 spans (the tick and 10 stages) at sample rate 1.0,
//!   from the tick to the sink's 200, per span: tick recording, hand-over, conversion to
//!   `TickTrace` on the worker, queueing, encoding, one `POST` per 512 ticks over loopback.
//!
//! - `otlp_export/tick_5_stages`: what a kept tick of five empty stages costs its own thread at
//!   sample rate 1.0 with export off and on, the ticking thread moved to the other CPU (where
//!   there is one) while the worker and the exporter stay on the first, as in production on two
//!   cores; 200 ticks are timed per batch, the worker drained between batches (as `hot_path`'s
//!   `tick_5_empty`).
//!
//! `pipeline` is timed in the process's CPU time (every thread: ticking, worker, exporter, sink),
//! not wall time: the worker polls its rings every millisecond and the exporter waits for a
//! batch, and those idle waits are no work. One CPU-second of it is one core fully busy, so
//! criterion's `thrpt` is the kept spans per second one core sustains.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mm_trace::__private::{Site, StageGuard, TickGuard, otlp_body};
use mm_trace::{OtlpConfig, TraceConfig};

static TICK: Site = Site::tick("tick");
static STAGES: [Site; 10] = [
    Site::stage("fetch_md"),
    Site::stage("book"),
    Site::stage("spread"),
    Site::stage("fair"),
    Site::stage("skew"),
    Site::stage("guards"),
    Site::stage("risk"),
    Site::stage("quote"),
    Site::stage("orders"),
    Site::stage("emit"),
];
const SPANS_PER_TICK: u64 = 11;

fn tick() {
    let _t = TickGuard::begin(&TICK);
    for s in &STAGES {
        let _g = StageGuard::enter_stage(s);
        black_box(s);
    }
}

/// Pins this thread, and so every thread it starts afterwards, to `cpu` (`None`: the CPU it
/// runs on). Returns the CPU, or `None` if it could not.
fn pin(cpu: Option<usize>) -> Option<usize> {
    // SAFETY: sched_getcpu has no preconditions; cpu_set_t is plain data, zeroed is the empty
    // set, CPU_SET writes inside it, and sched_setaffinity reads `size_of::<cpu_set_t>()` bytes.
    unsafe {
        let cpu = cpu.unwrap_or(libc::sched_getcpu().max(0) as usize);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0).then_some(cpu)
    }
}

fn tick_5() {
    let _t = TickGuard::begin(&TICK);
    for s in &STAGES[..5] {
        let _g = StageGuard::enter_stage(s);
        black_box(s);
    }
}

/// Times `iters` ticks of five stages, 200 to a batch, draining the worker between batches.
fn ticks_5(iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(200);
        let t0 = Instant::now();
        for _ in 0..n {
            tick_5();
        }
        total += t0.elapsed();
        mm_trace::flush();
        left -= n;
    }
    total
}

/// An OTLP receiver that reads each request whole and answers 200 (no decoding: the measured
/// side is mm-trace's).
fn sink() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::with_capacity(1 << 20);
                let mut chunk = vec![0u8; 1 << 16];
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + len);
                    if conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// CPU time of the whole process (all its threads).
fn cpu_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn exported() -> u64 {
    mm_trace::summary().health.otlp_exported_ticks
}

fn otlp_export(c: &mut Criterion) {
    let cpu = pin(None);
    let endpoint = sink();
    let config = |export: bool| TraceConfig {
        sample_rate: 1.0,
        capture_slow_ticks: false,
        export_golden: false,
        chrome_ring_ticks: 512,
        service_name: Some("otlp-bench".into()),
        otlp: export.then(|| OtlpConfig {
            endpoint: Some(endpoint.clone()),
            timeout_ms: Some(10_000),
            max_queue_ticks: 1 << 16,
            ..Default::default()
        }),
        ..Default::default()
    };
    // Starts the worker and the exporter here, on the pinned CPU.
    mm_trace::init(config(true)).unwrap();
    match cpu {
        Some(cpu) => println!("otlp_export: pinned to CPU {cpu}; {SPANS_PER_TICK} spans per kept tick"),
        None => println!("otlp_export: could not pin to one CPU: the figures are not one core's"),
    }

    for _ in 0..4 {
        for _ in 0..128 {
            tick();
        }
        mm_trace::flush();
    }
    let batch = mm_trace::recent_traces();
    assert_eq!(batch.len(), 512);
    let spans: u64 = batch.iter().map(|t| t.spans.len() as u64 + 1).sum();
    let mut g = c.benchmark_group("otlp_export");
    g.throughput(Throughput::Elements(spans));
    g.bench_function("encode_512_ticks", |b| b.iter(|| otlp_body(black_box(&batch), "otlp-bench")));

    g.throughput(Throughput::Elements(SPANS_PER_TICK));
    g.bench_function("pipeline", |b| {
        b.iter_custom(|iters| {
            mm_trace::shutdown().unwrap();
            let target = exported() + iters;
            let (t0, cpu0) = (Instant::now(), cpu_now());
            let mut left = iters;
            while left > 0 {
                // A thread's ring holds 256 kept ticks: hand them over in chunks the worker drains.
                let n = left.min(128);
                for _ in 0..n {
                    tick();
                }
                mm_trace::flush();
                left -= n;
            }
            mm_trace::shutdown().unwrap();
            while exported() < target && t0.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_micros(100));
            }
            let took = cpu_now() - cpu0;
            let h = mm_trace::summary().health;
            assert!(
                exported() >= target,
                "not all exported: {} of {target} (dropped {}, failed {}, ring-dropped {})",
                exported(),
                h.otlp_dropped_ticks,
                h.otlp_failed_ticks,
                h.traces_dropped
            );
            took
        })
    });
    g.finish();

    // The tick's own cost, on the other CPU, with export off and on.
    let other = cpu.and_then(|c| pin(Some(if c == 0 { 1 } else { 0 })));
    println!("otlp_export: ticks on CPU {other:?}, worker and exporter on CPU {cpu:?}");
    let mut g = c.benchmark_group("otlp_export/tick_5_stages");
    for (id, export) in [("export_off", false), ("export_on", true)] {
        mm_trace::init(config(export)).unwrap();
        g.bench_function(id, |b| b.iter_custom(ticks_5));
        mm_trace::shutdown().unwrap();
    }
    let h = mm_trace::summary().health;
    assert_eq!((h.otlp_dropped_ticks, h.otlp_failed_ticks), (0, 0), "every kept tick exported");
    g.finish();
}

criterion_group!(benches, otlp_export);
criterion_main!(benches);

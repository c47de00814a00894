//! Async and multi-threaded ticks on a real multi-threaded tokio runtime and real threads:
//! stages across `.await`, spawned tasks and threads that join their tick, cancellation, late
//! work, and many concurrent ticks that never mix their spans.

use std::sync::Mutex;
use std::time::Duration;

use mm_trace::__private::{Instrumented, Site, TickFuture, TickGuard};
use mm_trace::{TickContext, TickTrace, TraceConfig};

static SERIAL: Mutex<()> = Mutex::new(());
static TICK: Site = Site::tick("tick");
static FETCH: Site = Site::stage("fetch_md");
static QUOTE: Site = Site::stage("quote");
static SLOW: Site = Site::stage("slow_leg");

fn setup(cfg: TraceConfig) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { export_golden: false, chrome_ring_ticks: 256, ..cfg }).unwrap();
    mm_trace::set_enabled(true);
    mm_trace::reset();
    g
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

async fn fetch(ms: u64) -> u64 {
    Instrumented::new(&FETCH, async move {
        // Yield a few times so the future is polled many times, possibly on several workers.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    })
    .await
}

fn trace_of(tick_id: u64) -> TickTrace {
    mm_trace::recent_traces().into_iter().find(|t| t.tick_id == tick_id).expect("trace kept")
}

#[test]
fn async_stage_is_timed_from_first_poll_to_completion_across_awaits() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    rt().block_on(async {
        for _ in 0..5 {
            tokio::spawn(TickFuture::new(&TICK, async { fetch(20).await })).await.unwrap();
        }
    });
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 5);
    let f = s.stage("fetch_md").unwrap();
    assert_eq!(f.count, 5);
    assert!(f.p50_ms >= 20.0 * 0.992, "p50 {}", f.p50_ms);
    assert!(f.max_ms < 1000.0);
}

#[test]
fn spawned_tasks_join_their_tick_with_the_right_parent_and_overlap() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    let tick_id = rt().block_on(async {
        tokio::spawn(TickFuture::new(&TICK, async {
            let id = mm_trace::current_tick_id().unwrap();
            Instrumented::new(&QUOTE, async {
                mm_trace::set_parallel_symbols(8);
                let tasks: Vec<_> = (0..8).map(|_| mm_trace::spawn(fetch(30))).collect();
                for t in tasks {
                    assert_eq!(t.await.unwrap(), 30);
                }
            })
            .await;
            id
        }))
        .await
        .unwrap()
    });
    let s = mm_trace::summary();
    assert_eq!(s.stage("fetch_md").unwrap().count, 8);
    assert_eq!(s.parallel_symbols, 8);
    let t = trace_of(tick_id);
    let quote = t.spans.iter().find(|s| s.name == "quote").unwrap();
    let fetches: Vec<_> = t.spans.iter().filter(|s| s.name == "fetch_md").collect();
    assert_eq!(fetches.len(), 8, "{t:#?}");
    assert!(fetches.iter().all(|f| f.parent == Some(quote.id)), "fetches hang under quote: {t:#?}");
    assert!(fetches.iter().all(|f| f.start_ns >= quote.start_ns && f.end_ns <= quote.end_ns));
    // Eight 30 ms fetches in parallel: they overlap, so the quote took far less than 8 x 30 ms.
    let latest_start = fetches.iter().map(|f| f.start_ns).max().unwrap();
    let earliest_end = fetches.iter().map(|f| f.end_ns).min().unwrap();
    assert!(latest_start < earliest_end, "all eight overlap");
    assert!(quote.end_ns - quote.start_ns < 200_000_000);
    let ids: std::collections::HashSet<u32> = t.spans.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), t.spans.len(), "span ids unique within the tick");
}

#[test]
fn many_concurrent_ticks_never_mix_spans() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    let ids = rt().block_on(async {
        let ticks: Vec<_> = (0..40u64)
            .map(|i| {
                tokio::spawn(TickFuture::new(&TICK, async move {
                    let id = mm_trace::current_tick_id().unwrap();
                    mm_trace::annotate("tick", id);
                    let n = 1 + i % 5;
                    let tasks: Vec<_> = (0..n).map(|_| mm_trace::spawn(fetch(1 + i % 3))).collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    (id, n)
                }))
            })
            .collect();
        let mut out = Vec::new();
        for t in ticks {
            out.push(t.await.unwrap());
        }
        out
    });
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 40);
    let expected: u64 = ids.iter().map(|(_, n)| n).sum();
    assert_eq!(s.stage("fetch_md").unwrap().count, expected);
    assert_eq!(s.health.late_spans, 0);
    for (id, n) in ids {
        let t = trace_of(id);
        assert_eq!(t.annotations, vec![("tick".to_owned(), id.to_string())]);
        assert_eq!(t.spans.iter().filter(|s| s.name == "fetch_md").count() as u64, n, "tick {id}");
    }
}

#[test]
fn a_cancelled_stage_is_counted_as_cancelled_not_as_a_completion() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    let tick_id = rt().block_on(async {
        TickFuture::new(&TICK, async {
            let slow = Instrumented::new(&SLOW, tokio::time::sleep(Duration::from_secs(10)));
            assert!(tokio::time::timeout(Duration::from_millis(20), slow).await.is_err());
            fetch(1).await;
            mm_trace::current_tick_id().unwrap()
        })
        .await
    });
    let s = mm_trace::summary();
    let slow = s.stage("slow_leg").unwrap();
    assert_eq!(slow.count, 0, "not a completion");
    assert_eq!(slow.cancelled, 1);
    assert_eq!(s.stage("fetch_md").unwrap().count, 1, "the tick goes on normally");
    assert_eq!(s.ticks, 1);
    let t = trace_of(tick_id);
    let span = t.spans.iter().find(|s| s.name == "slow_leg").unwrap();
    assert!(span.cancelled);
    assert!(span.end_ns - span.start_ns >= 20_000_000);
}

#[test]
fn threads_scoped_threads_and_a_pool_join_the_tick() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    // A small job pool, as rayon-style pools run work on threads they own.
    let (tx, rx) = std::sync::mpsc::channel::<(TickContext, std::sync::mpsc::Sender<()>)>();
    let rx = std::sync::Arc::new(Mutex::new(rx));
    let pool: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                loop {
                    let job = rx.lock().unwrap().recv();
                    let Ok((ctx, done)) = job else { break };
                    ctx.in_scope(|| {
                        mm_trace::stage_guard!("pool_job");
                    });
                    done.send(()).unwrap();
                }
            })
        })
        .collect();
    let tick_id;
    {
        let _t = TickGuard::begin(&TICK);
        tick_id = mm_trace::current_tick_id().unwrap();
        mm_trace::stage_guard!("outer");
        let ctx = TickContext::current();
        let c = ctx.clone();
        std::thread::spawn(move || {
            let _in = c.enter();
            mm_trace::stage_guard!("std_thread");
        })
        .join()
        .unwrap();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    ctx.in_scope(|| {
                        mm_trace::stage_guard!("scoped");
                    })
                });
            }
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            tx.send((ctx.clone(), done_tx.clone())).unwrap();
        }
        for _ in 0..4 {
            done_rx.recv().unwrap();
        }
    }
    drop(tx);
    for p in pool {
        p.join().unwrap();
    }
    let t = trace_of(tick_id);
    let outer = t.spans.iter().find(|s| s.name == "outer").unwrap();
    for (name, n) in [("std_thread", 1), ("scoped", 3), ("pool_job", 4)] {
        let spans: Vec<_> = t.spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(spans.len(), n, "{name}");
        assert!(spans.iter().all(|s| s.parent == Some(outer.id)), "{name} under outer");
        assert!(spans.iter().all(|s| s.thread != t.thread), "{name} ran on another thread");
    }
    let s = mm_trace::summary();
    assert_eq!(s.stage("pool_job").unwrap().count, 4);
    assert_eq!(s.stage("scoped").unwrap().count, 3);
}

#[test]
fn work_carried_after_its_tick_ended_is_late_never_attached_to_another_tick() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    let (ctx, first) = {
        let _t = TickGuard::begin(&TICK);
        (TickContext::current(), mm_trace::current_tick_id().unwrap())
    };
    let second = {
        let _t = TickGuard::begin(&TICK);
        let c = ctx.clone();
        std::thread::spawn(move || {
            c.in_scope(|| {
                mm_trace::stage_guard!("late_job");
            })
        })
        .join()
        .unwrap();
        mm_trace::current_tick_id().unwrap()
    };
    assert_ne!(first, second);
    let s = mm_trace::summary();
    assert_eq!(s.stage("late_job").unwrap().count, 1, "late work still feeds histograms");
    assert_eq!(s.health.late_spans, 1);
    for id in [first, second] {
        assert!(trace_of(id).spans.iter().all(|s| s.name != "late_job"), "tick {id}");
    }
}

/// Stress model of the lock-free hand-over between carried work and the end of its tick: spans
/// pushed while the tick closes are either in the tick's trace or counted as late, never lost
/// and never double counted, whatever the interleaving.
#[test]
fn racing_carried_work_and_tick_end_lose_nothing() {
    let _g = setup(TraceConfig { sample_rate: 1.0, chrome_ring_ticks: 4096, ..Default::default() });
    let rounds = 200; // the ring keeps the last 256 traces
    let workers = 4;
    let mut ids = Vec::new();
    for _ in 0..rounds {
        let start = std::sync::Barrier::new(workers + 1);
        std::thread::scope(|s| {
            let t = TickGuard::begin(&TICK);
            ids.push(mm_trace::current_tick_id().unwrap());
            let ctx = TickContext::current();
            for _ in 0..workers {
                let (ctx, start) = (ctx.clone(), &start);
                s.spawn(move || {
                    start.wait();
                    for _ in 0..3 {
                        ctx.in_scope(|| {
                            mm_trace::stage_guard!("racer");
                        });
                    }
                });
            }
            start.wait();
            drop(t); // ends while the workers push
        });
    }
    mm_trace::flush();
    let s = mm_trace::summary();
    let total = (rounds * workers * 3) as u64;
    assert_eq!(s.stage("racer").unwrap().count, total, "histograms see every span");
    let traces = mm_trace::recent_traces();
    let in_traces: u64 = traces
        .iter()
        .filter(|t| ids.contains(&t.tick_id))
        .map(|t| t.spans.iter().filter(|s| s.name == "racer").count() as u64)
        .sum();
    assert_eq!(
        in_traces + s.health.late_spans,
        total,
        "in trace {in_traces} + late {}; {:?}; {} traces",
        s.health.late_spans,
        s.health,
        traces.len()
    );
}

//! mm-trace's `tracing` layer (feature `tracing`) with real `tracing` and `tracing-subscriber`:
//! `#[instrument]` sync and async functions nested inside `#[stage]`s and around them on a
//! multi-threaded tokio runtime, spans of another crate (tests/tracing-lib, instrumented with
//! `tracing` alone), spans outside any tick, `tick_span` ticks (sampled, slow, async), per-layer
//! filters, layers beside it that must keep seeing everything, several subscribers in one
//! process, and recording switched off.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mm_trace::{MmTraceLayer, TickTrace, TraceConfig, TraceSpan, stage, traced_tick};
use mm_trace_tracing_lib as lib;
use tracing::{Dispatch, Instrument, Level, Subscriber, info_span, instrument};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;

#[path = "support/tracing_setup.rs"]
mod tracing_setup;
use tracing_setup::{count, sampled, setup, span, traces};

/// A multi-threaded runtime whose workers use `dispatch` (as the process-wide default would be).
fn rt(dispatch: &Dispatch) -> tokio::runtime::Runtime {
    let d = dispatch.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&d)))
        .build()
        .unwrap()
}

/// The name of a span's parent in its trace (`"tick"` for a direct child of the tick).
fn parent_of(t: &TickTrace, name: &str) -> String {
    match span(t, name).parent {
        None => "tick".to_owned(),
        Some(p) => t.spans.iter().find(|s| s.id == p).map_or_else(|| format!("missing {p}"), |s| s.name.clone()),
    }
}

/// A layer beside mm-trace's that counts everything it is shown.
#[derive(Clone, Default)]
struct Counting(Arc<Counts>);

#[derive(Default)]
struct Counts {
    spans: AtomicU64,
    enters: AtomicU64,
    closes: AtomicU64,
    events: AtomicU64,
    names: Mutex<BTreeMap<String, u64>>,
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Counting {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, _: &tracing::span::Id, _: Context<'_, S>) {
        self.0.spans.fetch_add(1, Relaxed);
        *self.0.names.lock().unwrap().entry(attrs.metadata().name().to_owned()).or_default() += 1;
    }
    fn on_enter(&self, _: &tracing::span::Id, _: Context<'_, S>) {
        self.0.enters.fetch_add(1, Relaxed);
    }
    fn on_close(&self, _: tracing::span::Id, _: Context<'_, S>) {
        self.0.closes.fetch_add(1, Relaxed);
    }
    fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
        self.0.events.fetch_add(1, Relaxed);
    }
}

impl Counting {
    fn totals(&self) -> (u64, u64, u64, u64) {
        let c = &self.0;
        (c.spans.load(Relaxed), c.enters.load(Relaxed), c.closes.load(Relaxed), c.events.load(Relaxed))
    }
}

// ---------------------------------------------------------------------------------------------
// The instrumented code: #[instrument] inside #[stage] and around it, sync and async.

#[stage("outer")]
fn outer() -> u64 {
    inner_sync(3)
}

#[instrument]
fn inner_sync(n: u64) -> u64 {
    leaf(n)
}

#[stage("leaf")]
fn leaf(n: u64) -> u64 {
    std::hint::black_box(n)
}

#[instrument]
fn around() -> u64 {
    outer()
}

#[traced_tick]
fn sync_tick() -> u64 {
    outer() + around()
}

#[test]
fn instrument_spans_are_stages_nested_under_and_around_mm_trace_stages() {
    let _g = setup(sampled());
    let subscriber = tracing_subscriber::registry().with(mm_trace::tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..3 {
            assert_eq!(sync_tick(), 6);
        }
    });
    assert_eq!(count("inner_sync"), 6);
    assert_eq!(count("around"), 3);
    assert_eq!(count("outer"), 6);
    assert_eq!(count("leaf"), 6);
    let all = traces();
    assert_eq!(all.len(), 3);
    let t = &all[0];
    // tick → outer → inner_sync → leaf, and tick → around → outer → inner_sync → leaf.
    let tree: Vec<(String, String)> = t.spans.iter().map(|s| (s.name.clone(), parent_name(t, s))).collect();
    assert_eq!(
        tree,
        [
            ("outer", "tick"),
            ("inner_sync", "outer"),
            ("leaf", "inner_sync"),
            ("around", "tick"),
            ("outer", "around"),
            ("inner_sync", "outer"),
            ("leaf", "inner_sync"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    for s in &t.spans {
        assert!(s.start_ns <= s.end_ns && s.end_ns <= t.duration_ns, "{s:?} within the tick");
    }
}

fn parent_name(t: &TickTrace, s: &TraceSpan) -> String {
    match s.parent {
        None => "tick".to_owned(),
        Some(p) => t.spans.iter().find(|x| x.id == p).map_or("missing".into(), |x| x.name.clone()),
    }
}

#[stage("parse")]
async fn parse(n: u64) -> u64 {
    tokio::task::yield_now().await;
    n
}

/// An async span polled many times, possibly on several workers, with a stage inside.
#[instrument]
async fn io_call(ms: u64) -> u64 {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    parse(ms).await
}

#[stage("fetch")]
async fn fetch(ms: u64) -> u64 {
    io_call(ms).await
}

#[stage("handoff")]
async fn handoff() -> u64 {
    // Plain tokio::spawn (no mm-trace context): the span made here carries the tick along.
    let task = tokio::spawn(
        async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            leaf(7) + io_call(1).await
        }
        .instrument(info_span!("spawned")),
    );
    task.await.unwrap()
}

#[traced_tick]
async fn async_tick() -> u64 {
    fetch(5).await + handoff().await
}

#[test]
fn async_instrument_spans_on_a_multi_threaded_runtime_join_their_tick_across_awaits_and_tasks() {
    let _g = setup(sampled());
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(mm_trace::tracing_layer()));
    let rt = rt(&dispatch);
    tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            for _ in 0..4 {
                assert_eq!(tokio::spawn(async_tick()).await.unwrap(), 5 + 7 + 1);
            }
        })
    });
    drop(rt);
    assert_eq!(count("fetch"), 4);
    assert_eq!(count("io_call"), 8);
    assert_eq!(count("spawned"), 4);
    assert_eq!(count("parse"), 8);
    let io = mm_trace::summary().stage("io_call").unwrap().clone();
    // Wall time from first poll to completion, sleeps included (1 ms and 5 ms calls).
    assert!(io.max_ms >= 5.0 * 0.99, "io_call max {} ms", io.max_ms);
    let all = traces();
    assert_eq!(all.len(), 4);
    for t in &all {
        let names: Vec<&str> = t.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fetch", "io_call", "parse", "handoff", "spawned", "leaf", "io_call", "parse"]);
        assert_eq!(parent_of(t, "fetch"), "tick");
        let fetch_io = t.spans.iter().find(|s| s.name == "io_call" && parent_name(t, s) == "fetch");
        assert!(fetch_io.is_some(), "io_call under fetch: {:#?}", t.spans);
        assert_eq!(parent_of(t, "handoff"), "tick");
        assert_eq!(parent_of(t, "spawned"), "handoff");
        let spawned = span(t, "spawned").id;
        let under_spawned: Vec<&str> =
            t.spans.iter().filter(|s| s.parent == Some(spawned)).map(|s| s.name.as_str()).collect();
        assert_eq!(under_spawned, ["leaf", "io_call"], "{:#?}", t.spans);
        // Every io_call has its parse stage under it, whichever thread polled it.
        for io in t.spans.iter().filter(|s| s.name == "io_call") {
            assert!(t.spans.iter().any(|s| s.name == "parse" && s.parent == Some(io.id)), "{:#?}", t.spans);
            assert!(io.end_ns - io.start_ns >= 1_000_000 * 99 / 100);
        }
        for s in &t.spans {
            assert!(s.end_ns <= t.duration_ns, "{s:?} inside the tick");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A library's spans (tests/tracing-lib: tracing only).

#[traced_tick]
async fn lib_tick() -> Result<usize, String> {
    let n = lib::connect("venue-a");
    let book = lib::fetch_book("BTC-USD").await?;
    let _ = lib::place_order(0);
    Ok(n + book)
}

#[test]
fn spans_of_a_library_crate_become_stages_errors_and_annotations_of_the_tick() {
    let _g = setup(sampled());
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(mm_trace::tracing_layer()));
    let rt = rt(&dispatch);
    tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            for _ in 0..2 {
                assert_eq!(tokio::spawn(lib_tick()).await.unwrap(), Ok(7 + 7));
            }
        })
    });
    drop(rt);
    let s = mm_trace::summary();
    for name in ["connect", "fetch_book", "decode_book", "place_order"] {
        assert_eq!(s.stage(name).map(|s| s.count), Some(2), "{name}");
    }
    assert!(s.stage("connect").unwrap().p50_ms >= 0.05 * 0.99);
    // `#[instrument(err)]` logs the Err at ERROR inside the span: counted as the stage's error.
    assert_eq!(s.stage("place_order").unwrap().errors, 2);
    assert_eq!(s.stage("connect").unwrap().errors, 0);
    let all = traces();
    let t = &all[0];
    assert_eq!(parent_of(t, "decode_book"), "fetch_book");
    assert!(span(t, "place_order").error);
    assert!(!span(t, "fetch_book").error);
    let warn = t.annotations.iter().find(|(k, _)| k == "WARN").expect("WARN annotation");
    assert_eq!(warn.1, "mm_trace_tracing_lib: book fetch retried symbol=BTC-USD attempt=1");
    let error = t.annotations.iter().find(|(k, _)| k == "ERROR").expect("ERROR annotation");
    assert!(error.1.contains("zero quantity"), "{error:?}");
}

#[test]
fn spans_outside_any_tick_feed_histograms_only() {
    let _g = setup(sampled());
    let subscriber = tracing_subscriber::registry().with(mm_trace::tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..5 {
            info_span!("background").in_scope(|| lib::connect("x"));
        }
        // Made outside a tick, entered inside one: still not part of the tick.
        let early = info_span!("made_early");
        sync_tick_with(|| early.in_scope(|| leaf(1)));
    });
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1);
    assert_eq!(count("background"), 5);
    assert_eq!(count("connect"), 5);
    assert_eq!(count("made_early"), 1);
    let t = &traces()[0];
    assert!(t.spans.iter().all(|s| s.name != "made_early"), "{:#?}", t.spans);
    assert_eq!(parent_of(t, "leaf"), "tick");
}

#[traced_tick]
fn sync_tick_with(f: impl FnOnce() -> u64) -> u64 {
    f()
}

// ---------------------------------------------------------------------------------------------
// tick_span: ticks without mm-trace's attributes.

#[instrument(name = "request")]
async fn handle(id: u64) -> u64 {
    let a = io_call(1).await;
    let b = tokio::spawn(async move { leaf(id) }.instrument(info_span!("respond"))).await.unwrap();
    a + b
}

#[test]
fn tick_span_spans_are_ticks_sync_and_async() {
    let _g = setup(sampled());
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(mm_trace::tracing_layer().tick_span("request")));
    let rt = rt(&dispatch);
    tracing::dispatcher::with_default(&dispatch, || {
        // Sync: the span is the tick, stages and spans inside are its stages.
        for _ in 0..3 {
            info_span!("request").in_scope(|| {
                outer();
                info_span!("db").in_scope(|| leaf(1));
            });
        }
        // Async, on the runtime: polled on several workers, one task spawned from it.
        rt.block_on(async {
            let tasks: Vec<_> = (0..4).map(|i| tokio::spawn(handle(i))).collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
    });
    drop(rt);
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 7);
    assert_eq!(count("tick_total"), 7);
    assert_eq!(count("request"), 0, "a tick is in tick_total, not a stage");
    assert_eq!(count("db"), 3);
    assert_eq!(count("outer"), 3);
    assert_eq!(count("respond"), 4);
    let all = traces();
    assert_eq!(all.len(), 7);
    assert!(all.iter().all(|t| t.name == "request"));
    let sync_trace = all.iter().find(|t| t.spans.iter().any(|s| s.name == "db")).unwrap();
    assert_eq!(parent_of(sync_trace, "outer"), "tick");
    assert_eq!(parent_of(sync_trace, "inner_sync"), "outer");
    assert_eq!(parent_of(sync_trace, "db"), "tick");
    let db = span(sync_trace, "db").id;
    assert!(sync_trace.spans.iter().any(|s| s.name == "leaf" && s.parent == Some(db)), "{:#?}", sync_trace.spans);
    for t in all.iter().filter(|t| t.spans.iter().any(|s| s.name == "respond")) {
        assert_eq!(parent_of(t, "io_call"), "tick");
        assert_eq!(parent_of(t, "parse"), "io_call");
        assert_eq!(parent_of(t, "respond"), "tick");
        assert_eq!(parent_of(t, "leaf"), "respond");
        assert!(t.duration_ns >= 1_000_000 * 99 / 100, "wall time of the request");
    }
}

#[test]
fn a_slow_unsampled_tick_span_keeps_its_trace_and_counts_its_deadline_miss() {
    let _g = setup(TraceConfig { sample_rate: 0.0, deadline_ms: 2.0, capture_slow_ticks: true, ..Default::default() });
    let subscriber = tracing_subscriber::registry().with(mm_trace::tracing_layer().tick_kind("job"));
    tracing::subscriber::with_default(subscriber, || {
        info_span!("job").in_scope(|| info_span!("quick").in_scope(|| leaf(1)));
        info_span!("job").in_scope(|| {
            info_span!("sleepy").in_scope(|| std::thread::sleep(Duration::from_millis(5)));
            tracing::warn!("slow job");
        });
    });
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 2);
    assert_eq!(s.deadline_misses, 1);
    let kind = s.tick_kinds.iter().find(|k| k.name == "job").expect("a kind of its own");
    assert_eq!(kind.stats.count, 2);
    // Unsampled: stages feed no histogram; the slow tick keeps its trace.
    assert_eq!(count("sleepy"), 0);
    let all = traces();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].reason, mm_trace::KeepReason::Slow);
    assert_eq!(parent_of(&all[0], "sleepy"), "tick");
    assert_eq!(all[0].annotations, [("WARN".to_owned(), "tracing_bridge: slow job".to_owned())]);
}

// ---------------------------------------------------------------------------------------------
// Filters, other layers, several subscribers, switched off.

#[test]
fn a_per_layer_filter_excludes_a_target_and_other_layers_still_see_everything() {
    let _g = setup(sampled());
    let counting = Counting::default();
    let mm = mm_trace::tracing_layer().with_filter(
        Targets::new().with_default(LevelFilter::TRACE).with_target("mm_trace_tracing_lib", LevelFilter::OFF),
    );
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let fmt = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(BufWriter(buf.clone()));
    let subscriber = tracing_subscriber::registry().with(mm).with(counting.clone()).with(fmt);
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..2 {
            sync_tick_with(|| {
                let _app = info_span!("app_span").entered();
                lib::connect("v") as u64 + lib::place_order(1).unwrap() as u64
            });
        }
        tracing::info!("an info event the fmt layer prints");
    });
    assert_eq!(count("app_span"), 2);
    assert_eq!(count("connect"), 0, "filtered out by target");
    assert_eq!(count("place_order"), 0);
    let (spans, enters, closes, events) = counting.totals();
    assert_eq!((spans, enters, closes, events), (6, 6, 6, 1));
    let names = counting.0.names.lock().unwrap().clone();
    assert_eq!(names.get("connect"), Some(&2));
    let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert!(out.contains("an info event the fmt layer prints"), "{out}");
    let t = &traces()[0];
    assert_eq!(t.spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["app_span"]);
}

#[derive(Clone)]
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufWriter {
    type Writer = BufWriter;
    fn make_writer(&'a self) -> BufWriter {
        self.clone()
    }
}

#[test]
fn a_layer_beside_it_sees_the_same_spans_and_events_with_and_without_it() {
    let _g = setup(sampled());
    let run = |with_mm: bool| {
        let counting = Counting::default();
        let mm = with_mm.then(|| mm_trace::tracing_layer().tick_span("request"));
        let subscriber = tracing_subscriber::registry().with(mm).with(counting.clone());
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..3 {
                info_span!("request").in_scope(|| {
                    tracing::debug!(i, "debug event");
                    tracing::warn!(i, "warn event");
                    lib::place_order(i).ok();
                });
            }
            tracing::trace!("trace event outside");
        });
        counting.totals()
    };
    let without = run(false);
    let with = run(true);
    assert_eq!(with, without);
    assert_eq!(with, (6, 6, 6, 8));
    assert_eq!(mm_trace::summary().ticks, 3);
}

#[test]
fn several_subscribers_in_one_process_keep_their_spans_apart() {
    let _g = setup(sampled());
    let a = tracing_subscriber::registry().with(mm_trace::tracing_layer().tick_span("a_tick"));
    let b = tracing_subscriber::registry().with(mm_trace::tracing_layer().tick_span("b_tick"));
    let db = Dispatch::new(b);
    tracing::subscriber::with_default(a, || {
        let _a = info_span!("a_tick").entered();
        let _x = info_span!("a_work").entered();
        // A second subscriber inside: its span ids collide with the first's (each registry starts
        // at the same slab keys), its layer has its own table.
        tracing::dispatcher::with_default(&db, || {
            let _b = info_span!("b_tick").entered();
            info_span!("b_work").in_scope(|| leaf(1));
        });
        info_span!("a_more").in_scope(|| leaf(2));
    });
    let s = mm_trace::summary();
    // b_tick ran on a thread where a_tick was installed: a stage of it, as nested ticks are.
    assert_eq!(s.ticks, 1);
    let t = &traces()[0];
    assert_eq!(t.name, "a_tick");
    assert_eq!(parent_of(t, "a_work"), "tick");
    assert_eq!(parent_of(t, "b_tick"), "a_work");
    assert_eq!(parent_of(t, "b_work"), "b_tick");
    assert_eq!(parent_of(t, "a_more"), "a_work");
    // Then apart: each its own tick.
    mm_trace::reset();
    tracing::dispatcher::with_default(&db, || info_span!("b_tick").in_scope(|| leaf(1)));
    assert_eq!(mm_trace::summary().ticks, 1);
}

#[test]
fn recording_switched_off_records_nothing_and_breaks_nothing() {
    let _g = setup(sampled());
    mm_trace::set_enabled(false);
    let counting = Counting::default();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry().with(mm_trace::tracing_layer().tick_span("request")).with(counting.clone()),
    );
    let rt = rt(&dispatch);
    tracing::dispatcher::with_default(&dispatch, || {
        assert_eq!(sync_tick(), 6);
        info_span!("request").in_scope(|| lib::connect("v"));
        rt.block_on(async {
            assert_eq!(tokio::spawn(handle(1)).await.unwrap(), 2);
            assert_eq!(tokio::spawn(lib_tick()).await.unwrap(), Ok(14));
        });
    });
    drop(rt);
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 0);
    assert!(s.stages.iter().all(|st| st.count == 0), "{:?}", s.stages);
    assert!(traces().is_empty());
    let (spans, _, closes, _) = counting.totals();
    assert!(spans > 10 && spans == closes, "the other layer saw {spans} spans");
    // Switched on again, live: recorded from then on.
    mm_trace::set_enabled(true);
    tracing::dispatcher::with_default(&dispatch, || info_span!("request").in_scope(|| lib::connect("v")));
    assert_eq!(mm_trace::summary().ticks, 1);
    assert_eq!(count("connect"), 1);
}

#[test]
fn a_full_span_table_counts_the_spans_it_cannot_keep() {
    let _g = setup(sampled());
    let layer = mm_trace::tracing_layer().max_open_spans(16);
    let before = MmTraceLayer::untracked_spans();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let open: Vec<_> = (0..40).map(|_| info_span!("held").entered()).collect();
        drop(open);
        // Every slot was given back: spans are tracked again.
        info_span!("after").in_scope(|| ());
    });
    let untracked = MmTraceLayer::untracked_spans() - before;
    // Room for at least 16 (a thread may keep more in a region of its own), and every span past
    // the room is counted.
    assert!(untracked > 0 && untracked <= 40 - 16, "untracked {untracked}");
    assert_eq!(mm_trace::summary().health.untracked_spans, untracked, "a health counter");
    assert!(mm_trace::prometheus_text().contains(&format!("\nmm_trace_untracked_spans_total {untracked}\n")));
    assert_eq!(count("held"), 40 - untracked);
    assert_eq!(count("after"), 1);
}

#[test]
fn events_below_warn_are_not_annotations_and_the_level_is_configurable() {
    let _g = setup(sampled());
    let layer = mm_trace::tracing_layer().tick_span("request").annotate_events(Some(Level::INFO));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("request").in_scope(|| {
            tracing::debug!("not kept");
            tracing::info!(n = 1, "kept at info");
        });
    });
    let t = &traces()[0];
    assert_eq!(t.annotations, [("INFO".to_owned(), "tracing_bridge: kept at info n=1".to_owned())]);
    mm_trace::reset();
    let layer = mm_trace::tracing_layer().tick_span("request").annotate_events(None);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("request").in_scope(|| tracing::error!("an error, not annotated"));
    });
    let all = traces();
    assert_eq!(all.len(), 1);
    assert!(all[0].annotations.is_empty());
    // An ERROR inside a tick span marks the tick errored, as a `#[traced_tick]` returning `Err`.
    assert!(all[0].error);
    assert_eq!(mm_trace::summary().stage("tick_total").unwrap().errors, 1);
}

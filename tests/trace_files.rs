//! Trace files end to end: golden traces (deterministic, against the committed files, and an
//! unwritable directory counted and reported once) and Chrome trace events (nesting, thread
//! names, parallel spans on lanes, short-lived threads).
//!
//! Tests share the global collector, so they run one at a time (`setup`).

#[path = "support/exporters_setup.rs"]
mod exporters_setup;
mod support;
#[path = "support/trace_events.rs"]
mod trace_events;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use exporters_setup::{FETCH_MD, GET_BOOK, POST_ORDER, TICK, cfg, setup, wait_for_worker};
use mm_trace::__private::{StageGuard, TickGuard};
use mm_trace::{TickContext, TraceConfig, test_clock};
use serde_json::Value;
use support::{Exposition, TempDir};

// ---------------------------------------------------------------------------------------------
// Golden traces

const GOLDEN_TICKS: u64 = 7;
const GOLDEN_INTERVAL: u64 = 3;

/// Runs the golden program with the test clock on a thread named `bot` (one carried thread per
/// tick, run to completion inside the tick, so the clock reads are in a fixed order) and returns
/// the files written, by name.
fn golden_run(dir: &Path) -> BTreeMap<String, String> {
    mm_trace::init(TraceConfig {
        export_golden: true,
        golden_trace_interval: GOLDEN_INTERVAL,
        golden_dir: dir.to_owned(),
        ..cfg()
    })
    .unwrap();
    mm_trace::reset();
    wait_for_worker();
    std::thread::Builder::new()
        .name("bot".into())
        .spawn(|| {
            test_clock::install(1_000);
            for i in 0..GOLDEN_TICKS {
                let _t = TickGuard::begin(&TICK);
                mm_trace::annotate("symbols", "BTC-USD,ETH-USD");
                {
                    let _g = StageGuard::enter(&FETCH_MD);
                    test_clock::advance(120_000);
                    let _b = StageGuard::enter(&GET_BOOK);
                    test_clock::advance(30_000 + i * 1_000);
                }
                let ctx = TickContext::current();
                std::thread::Builder::new()
                    .name("md-worker".into())
                    .spawn(move || {
                        ctx.in_scope(|| {
                            mm_trace::stage_guard!("spread");
                            test_clock::advance(40_000);
                        })
                    })
                    .unwrap()
                    .join()
                    .unwrap();
                mm_trace::stage_guard!("quote");
                test_clock::advance(10_000);
                let _e = StageGuard::enter(&POST_ORDER);
                test_clock::advance(500_000);
            }
            // As documented: uninstall, then read the results.
            test_clock::uninstall();
        })
        .unwrap()
        .join()
        .unwrap();
    mm_trace::flush();
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        files.insert(e.file_name().into_string().unwrap(), std::fs::read_to_string(e.path()).unwrap());
    }
    files
}

#[test]
fn golden_traces_are_deterministic_and_equal_the_committed_files() {
    let _g = setup(cfg());
    let (a, b) = (TempDir::new("golden-a"), TempDir::new("golden-b"));
    let (first, run_a) = without_run_id(golden_run(a.path()));
    let (second, run_b) = without_run_id(golden_run(b.path()));
    assert_eq!(run_a, run_b, "one run id per process");
    let want_names: Vec<String> =
        (1..=GOLDEN_TICKS).step_by(GOLDEN_INTERVAL as usize).map(|t| format!("golden_trace_{t}.json")).collect();
    assert_eq!(first.keys().cloned().collect::<Vec<_>>(), want_names, "every {GOLDEN_INTERVAL}rd sampled tick");
    assert_eq!(first, second, "byte-identical across runs");
    let written: Vec<PathBuf> = mm_trace::trace_files_written();
    let with_run = |n: &String| n.replace(".json", &format!("-{run_b}.json"));
    assert_eq!(written, want_names.iter().map(|n| b.path().join(with_run(n))).collect::<Vec<_>>());

    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    if std::env::var_os("MM_BLESS").is_some() {
        std::fs::create_dir_all(&committed).unwrap();
        for (name, text) in &first {
            std::fs::write(committed.join(name), text).unwrap();
        }
    }
    for (name, text) in &first {
        let want = std::fs::read_to_string(committed.join(name)).unwrap_or_else(|e| {
            panic!("{}: {e} (regenerate with MM_BLESS=1 and review)", committed.join(name).display())
        });
        assert_eq!(text, &want, "{name} differs from tests/golden/{name} (MM_BLESS=1 regenerates it)");
    }
    check_golden_shape(&first["golden_trace_4.json"]);
}

/// Trace files are named `golden_trace_<tick>-<run>.json`, `<run>` the writing process's run id
/// (8 lowercase hex digits); the committed files are named `golden_trace_<tick>.json`. Returns
/// the files by their name without the run id, and the one run id they all carry.
fn without_run_id(files: BTreeMap<String, String>) -> (BTreeMap<String, String>, String) {
    let mut runs = BTreeSet::new();
    let files = files
        .into_iter()
        .map(|(name, text)| {
            let (tick, run) =
                name.strip_suffix(".json").and_then(|s| s.rsplit_once('-')).unwrap_or_else(|| panic!("{name}"));
            assert!(run.len() == 8 && run.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{name}");
            runs.insert(run.to_owned());
            (format!("{tick}.json"), text)
        })
        .collect();
    assert_eq!(runs.len(), 1, "one run id: {runs:?}");
    (files, runs.pop_first().unwrap())
}

fn check_golden_shape(text: &str) {
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["schema"], "mm-trace/golden-trace");
    assert_eq!(v["tick_id"], 4);
    assert_eq!(v["threads"], serde_json::json!([{ "name": "bot", "thread": 0 }, { "name": "md-worker", "thread": 1 }]));
    fn walk(spans: &Value, parent: (u64, u64), names: &mut Vec<String>) {
        let mut prev_start = 0;
        for s in spans.as_array().unwrap() {
            let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys sorted: {keys:?}");
            let (start, end) = (s["start_ns"].as_u64().unwrap(), s["end_ns"].as_u64().unwrap());
            assert_eq!(s["duration_ns"].as_u64().unwrap(), end - start);
            assert!(start >= prev_start, "children by start");
            assert!(start >= parent.0 && end <= parent.1, "child inside its parent");
            prev_start = start;
            names.push(s["name"].as_str().unwrap().to_owned());
            if let Some(kids) = s.get("children") {
                walk(kids, (start, end), names);
            }
        }
    }
    let mut names = Vec::new();
    walk(&v["spans"], (0, v["duration_ns"].as_u64().unwrap()), &mut names);
    assert_eq!(names, ["fetch_md", "GET book", "spread", "quote", "POST order"]);
    assert_eq!(v["spans"][0]["children"][0]["duration_ns"], 33_000 + 1_000);
}

/// Set in the child process of the next test: the golden directory that cannot be created.
const GOLDEN_CHILD_ENV: &str = "MM_TRACE_FILES_CHILD_GOLDEN_DIR";

/// The test runs its ticks in a child process (this test binary, filtered to this test, with
/// `GOLDEN_CHILD_ENV` set), where the once-per-process error report is on a stderr of its own.
#[test]
fn unwritable_golden_dir_is_counted_reported_once_and_never_blocks_a_tick() {
    if let Some(dir) = std::env::var_os(GOLDEN_CHILD_ENV) {
        golden_dir_errors_child(dir.into());
        return;
    }
    let tmp = TempDir::new("golden-bad");
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let dir = file.join("traces");
    let out = support::child_running("unwritable_golden_dir_is_counted_reported_once_and_never_blocks_a_tick")
        .env(GOLDEN_CHILD_ENV, &dir)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("CHILD-OK"), "child failed:\n{stdout}\n{stderr}");
    let reports: Vec<&str> = stderr.lines().filter(|l| l.starts_with("mm-trace:")).collect();
    assert_eq!(reports.len(), 1, "reported exactly once: {stderr}");
    assert!(reports[0].contains(&dir.display().to_string()), "names the path: {}", reports[0]);
}

/// The child's half: five ticks whose golden traces cannot be written are five counted export
/// errors, no tick waits on the failing writes, and no file is reported written.
fn golden_dir_errors_child(dir: PathBuf) {
    let _g = setup(TraceConfig { export_golden: true, golden_trace_interval: 1, golden_dir: dir, ..cfg() });
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t0 = Instant::now();
        {
            let _t = TickGuard::begin(&TICK);
            let _s = StageGuard::enter(&FETCH_MD);
        }
        slowest = slowest.max(t0.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    mm_trace::flush();
    let s = mm_trace::summary();
    assert_eq!(s.health.export_errors, 5);
    assert_eq!(Exposition::parse(&mm_trace::prometheus_text()).value("mm_trace_export_errors_total", &[]), Some(5.0));
    assert!(slowest < Duration::from_millis(500), "a tick waited {slowest:?}");
    assert!(mm_trace::trace_files_written().is_empty());
    println!("CHILD-OK");
}

// ---------------------------------------------------------------------------------------------
// Chrome trace events

#[test]
fn chrome_trace_has_nested_slices_thread_names_and_8_overlapping_parallel_spans() {
    let _g = setup(TraceConfig { chrome_ring_ticks: 4, ..cfg() });
    const THREADS: usize = 8;
    for _ in 0..6 {
        let _t = TickGuard::begin(&TICK);
        mm_trace::stage_guard!("fan_out");
        let ctx = TickContext::current();
        let barrier = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for i in 0..THREADS {
                let (ctx, barrier) = (ctx.clone(), &barrier);
                std::thread::Builder::new()
                    .name(format!("symbol-{i}"))
                    .spawn_scoped(s, move || {
                        ctx.in_scope(|| {
                            mm_trace::stage_guard!("per_symbol");
                            barrier.wait();
                            std::thread::sleep(Duration::from_millis(5));
                        });
                        // Like pool workers, stay alive until every span is closed: see
                        // `issue3_short_lived_parallel_threads_get_distinct_tids`.
                        barrier.wait();
                    })
                    .unwrap();
            }
        });
    }
    let text = mm_trace::chrome_trace_json();
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let events = doc["traceEvents"].as_array().unwrap();
    let pid = u64::from(std::process::id());
    let mut thread_names: BTreeMap<u64, String> = BTreeMap::new();
    for e in events {
        assert_eq!(e["pid"], pid, "{e}");
        if e["ph"] == "M" && e["name"] == "thread_name" {
            thread_names.insert(e["tid"].as_u64().unwrap(), e["args"]["name"].as_str().unwrap().to_owned());
        }
    }
    // Read as a viewer does: B/E pairs per track, every track a well-formed stack.
    let all = trace_events::slices(&doc);
    trace_events::assert_nested_per_track(&all);
    let mut ticks: BTreeMap<u64, (i64, i64, u64)> = BTreeMap::new();
    let mut spans = Vec::new();
    for s in &all {
        assert!(s.start >= 0 && s.end >= s.start, "{s:?}");
        if s.cat == "tick" {
            ticks.insert(s.args["tick_id"].as_u64().unwrap(), (s.start, s.end, s.tid));
        } else {
            spans.push(s);
        }
    }
    assert_eq!(ticks.keys().copied().collect::<Vec<_>>(), vec![3, 4, 5, 6], "the last chrome_ring_ticks ticks");
    for s in &spans {
        let (tstart, tend, _) = ticks[&s.args["tick_id"].as_u64().unwrap()];
        assert!(s.start >= tstart && s.end <= tend, "span outside its tick: {s:?}");
        assert!(thread_names.contains_key(&s.tid), "no thread_name for {s:?}");
    }
    for (_, _, tid) in ticks.values() {
        assert!(thread_names.contains_key(tid));
    }
    for tick_id in 3..=6u64 {
        let of_tick: Vec<_> = spans.iter().filter(|s| s.args["tick_id"] == tick_id).collect();
        let fan_out = of_tick.iter().find(|s| s.name == "fan_out").expect("fan_out span");
        let per_symbol: Vec<_> = of_tick.iter().filter(|s| s.name == "per_symbol").collect();
        assert_eq!(per_symbol.len(), THREADS, "tick {tick_id}");
        let tids: BTreeSet<u64> = per_symbol.iter().map(|s| s.tid).collect();
        assert_eq!(tids.len(), THREADS, "one thread each");
        let names: BTreeSet<&str> = tids.iter().map(|t| thread_names[t].as_str()).collect();
        assert_eq!(
            names,
            (0..THREADS).map(|i| format!("symbol-{i}")).collect::<BTreeSet<_>>().iter().map(String::as_str).collect()
        );
        let latest_start = per_symbol.iter().map(|s| s.start).max().unwrap();
        let earliest_end = per_symbol.iter().map(|s| s.end).min().unwrap();
        assert!(latest_start < earliest_end, "all {THREADS} spans overlap in time (tick {tick_id})");
        for s in &per_symbol {
            // `ts` is in microseconds: a 5 ms span spans 5000 of them (`slices` gives ns).
            let dur = s.end - s.start;
            assert!((5_000_000..1_000_000_000).contains(&dur), "ts is in microseconds: {dur} ns");
            assert_eq!(s.args["parent_span_id"], fan_out.args["span_id"], "carried spans hang under fan_out");
        }
    }
    let dir = TempDir::new("chrome");
    let path = dir.path().join("traces/recent.trace.json");
    mm_trace::write_chrome_trace(&path).unwrap();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(written["traceEvents"].as_array().unwrap().len(), events.len());
}

/// Known collector bug (mm-trace/src/collector/tick.rs, not an exporter): a thread claims its
/// data slot (ordinal, name) when its first span *closes*, and gives it back when it exits. So a
/// short-lived thread that closes its span and exits first hands its ordinal to a sibling that
/// is still inside an overlapping span: both spans get the same `tid` (and thread name) in the
/// Chrome trace and Perfetto draws them as one track. Claiming the slot when the span opens
/// (or in `TickContext::enter`) fixes it.
#[test]
fn issue3_short_lived_parallel_threads_get_distinct_tids() {
    let _g = setup(cfg());
    for _ in 0..5 {
        let _t = TickGuard::begin(&TICK);
        let ctx = TickContext::current();
        let barrier = Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (ctx, barrier) = (ctx.clone(), &barrier);
                s.spawn(move || {
                    ctx.in_scope(|| {
                        mm_trace::stage_guard!("per_symbol");
                        barrier.wait();
                    })
                });
            }
        });
    }
    for t in mm_trace::recent_traces() {
        let tids: BTreeSet<u32> = t.spans.iter().map(|s| s.thread).collect();
        assert_eq!(tids.len(), 8, "tick {}: overlapping spans share a thread ordinal", t.tick_id);
    }
}

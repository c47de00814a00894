//! Issue 17, "Look, don't read": Chrome traces whose tracks nest (what Perfetto and speedscope
//! need) even when one thread runs concurrent spans, tick SVGs read back by a real XML parser
//! (Python's expat) with every span once and nested in its parent in time and on screen, folded
//! stacks, and headless Chromium screenshots of a tick and of the perf-gate chart that are not
//! blank.
//!
//! Set `MM_TRACE_SCREENSHOTS=<dir>` to keep the screenshots (and the SVGs they show).

mod support;
#[path = "support/trace_events.rs"]
mod trace_events;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mm_trace::{KeepReason, TickTrace, TraceConfig, TraceSpan, exchange_req, stage, traced_tick};
use serde::Deserialize;
use support::TempDir;

static SERIAL: Mutex<()> = Mutex::new(());

#[derive(Debug)]
struct BotError;

fn venue(sym: &str) -> &'static str {
    if sym.starts_with('E') { "kraken <&> \"x\"" } else { "binance" }
}

#[exchange_req(verb = "GET", api = "book", venue = venue(sym))]
fn get_book(sym: &str) -> Result<u64, BotError> {
    std::thread::sleep(Duration::from_micros(300));
    if sym == "ETH" { Err(BotError) } else { Ok(1) }
}

/// A fetch as the demo's async mode does it, but awaiting a timer: the futures of one worker
/// thread interleave, so their `fetch_md` spans overlap on that thread without nesting.
#[stage("fetch_md")]
async fn fetch_md(sym: String, ms: u64) -> Result<u64, BotError> {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    get_book(&sym)
}

#[stage("quote")]
async fn quote(symbols: &[&str]) -> usize {
    let tasks: Vec<_> =
        symbols.iter().enumerate().map(|(i, s)| mm_trace::spawn(fetch_md((*s).to_owned(), 2 + i as u64 % 3))).collect();
    let mut failed = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(_))) {
            failed += 1;
        }
    }
    failed
}

#[stage("slow_leg")]
async fn slow_leg() {
    tokio::time::sleep(Duration::from_secs(10)).await;
}

#[traced_tick]
async fn tick(i: u64) -> Result<(), BotError> {
    mm_trace::annotate("mode", "async <test> & \"quotes\"");
    let failed = quote(&["BTC", "ETH", "SOL", "XRP", "ADA", "DOT", "AVAX", "LINK"]).await;
    // Cancelled by the timeout: a span marked cancelled.
    let _ = tokio::time::timeout(Duration::from_millis(2), slow_leg()).await;
    mm_trace::in_stage!("spread", std::thread::sleep(Duration::from_micros(200)));
    if failed > 0 {
        mm_trace::partial_fail();
    }
    if i.is_multiple_of(3) { Err(BotError) } else { Ok(()) }
}

/// Six async ticks on a runtime of two workers, kept (sampled), with a 5 ms deadline that every
/// one of them misses (the slowest fetch sleeps 4 ms, the cancelled leg 2 ms more).
fn concurrent_traces() -> Vec<TickTrace> {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = TraceConfig {
        sample_rate: 1.0,
        deadline_ms: 5.0,
        export_golden: false,
        chrome_ring_ticks: 64,
        ..Default::default()
    };
    mm_trace::init(cfg).unwrap();
    mm_trace::set_enabled(true);
    mm_trace::reset();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        for i in 0..6 {
            let _ = tokio::spawn(tick(i)).await.unwrap();
        }
    });
    let traces = mm_trace::recent_traces();
    assert_eq!(traces.len(), 6);
    traces
}

/// Whether two spans of one thread overlap without either containing the other.
fn partly_overlap(a: &TraceSpan, b: &TraceSpan) -> bool {
    let nested =
        (a.start_ns <= b.start_ns && b.end_ns <= a.end_ns) || (b.start_ns <= a.start_ns && a.end_ns <= b.end_ns);
    let disjoint = a.end_ns <= b.start_ns || b.end_ns <= a.start_ns;
    !nested && !disjoint
}

#[test]
fn chrome_tracks_nest_even_where_one_thread_ran_concurrent_spans() {
    let traces = concurrent_traces();
    let concurrent = traces.iter().any(|t| {
        t.spans
            .iter()
            .enumerate()
            .any(|(i, a)| t.spans[i + 1..].iter().any(|b| a.thread == b.thread && partly_overlap(a, b)))
    });
    assert!(concurrent, "the test needs spans of one thread that partly overlap: {traces:#?}");
    let doc: serde_json::Value = serde_json::from_str(&mm_trace::chrome_trace_json_from(&traces)).unwrap();
    let slices = trace_events::slices(&doc);
    let tracks = trace_events::assert_nested_per_track(&slices);
    assert!(tracks > traces[0].threads.len(), "lanes were added: {tracks} tracks");
    // Lanes are named after their thread.
    let names: Vec<&str> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(" (lane 2)")), "{names:?}");
    // Every span exactly once, named after its stage, its ids in the arguments.
    let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
    let of_spans: Vec<_> = slices.iter().filter(|s| s.cat != "tick").collect();
    assert_eq!(of_spans.len(), spans);
    let ids: BTreeSet<&str> = of_spans.iter().map(|s| s.args["span_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), spans, "span ids unique");
    let stage_names: BTreeSet<&str> = of_spans.iter().map(|s| s.name.as_str()).collect();
    let want: BTreeSet<&str> = ["fetch_md", "quote", "slow_leg", "spread", "GET book"].into();
    assert_eq!(stage_names, want, "names are the stages' (speedscope groups by name)");
    assert!(of_spans.iter().any(|s| s.name == "slow_leg" && s.args["cancelled"] == true));
    assert!(of_spans.iter().any(|s| s.name == "GET book" && s.args["error"] == true));
    let ticks: Vec<_> = slices.iter().filter(|s| s.cat == "tick").collect();
    assert_eq!(ticks.len(), 6);
    assert!(ticks.iter().all(|t| t.args["trace_id"].as_str().is_some_and(|id| id.len() == 32)));
}

/// An element of an SVG as `tests/support/svg_to_json.py` gives it.
#[derive(Debug, Deserialize)]
struct El {
    tag: String,
    ns: String,
    attrs: BTreeMap<String, String>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn attr(&self, k: &str) -> &str {
        self.attrs.get(k).map_or_else(|| panic!("<{}> has no {k}: {:?}", self.tag, self.attrs), String::as_str)
    }

    fn num(&self, k: &str) -> f64 {
        self.attr(k).parse().unwrap_or_else(|e| panic!("{k}={:?}: {e}", self.attr(k)))
    }

    fn child(&self, tag: &str) -> Option<&El> {
        self.children.iter().find(|c| c.tag == tag)
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a El>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }
}

/// Finds a tool; missing: `None` after a notice, or a failure when `CI=true`.
fn require(tool: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(tool))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("`{tool}` is not installed but CI=true: install the Debian package `{package}`");
        }
        eprintln!("NOTICE: `{tool}` not found on PATH; skipping (install the Debian package `{package}`)");
    }
    found
}

/// Parses SVG files with Python's XML parser (expat).
fn parse_svgs(python: &Path, files: &[PathBuf]) -> Vec<El> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/svg_to_json.py");
    let out = Command::new(python).arg(script).args(files).output().unwrap();
    assert!(out.status.success(), "not well-formed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// No script, no external reference, nothing a browser would fetch.
fn assert_self_contained(root: &El) {
    assert_eq!((root.tag.as_str(), root.ns.as_str()), ("svg", "http://www.w3.org/2000/svg"));
    let mut all = Vec::new();
    root.walk(&mut all);
    for e in all {
        assert!(!["script", "foreignObject", "image", "use", "a", "iframe"].contains(&e.tag.as_str()), "<{}>", e.tag);
        for (k, v) in &e.attrs {
            assert!(k != "href" && !k.starts_with("on"), "<{} {k}>", e.tag);
            assert!(!v.contains("url(") && !v.contains("://"), "<{} {k}={v:?}>", e.tag);
        }
        assert!(!e.text.contains("@import") && !e.text.contains("url("), "{}", e.text);
    }
}

/// A name as the picture shows it: characters XML does not allow replaced by U+FFFD.
fn shown(name: &str) -> String {
    name.chars().map(|c| if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') { '\u{fffd}' } else { c }).collect()
}

/// The checks of one tick's picture against its trace.
fn check_tick_svg(t: &TickTrace, root: &El) {
    assert_self_contained(root);
    let mut all = Vec::new();
    root.walk(&mut all);
    let groups: Vec<&El> =
        all.iter().copied().filter(|e| e.tag == "g" && e.attrs.get("class").is_some_and(|c| c == "span")).collect();
    let by_id: HashMap<u32, &TraceSpan> = t.spans.iter().map(|s| (s.id, s)).collect();
    let mut drawn: HashMap<u32, &El> = HashMap::new();
    for g in &groups {
        let id: u32 = g.attr("data-id").parse().unwrap();
        assert!(drawn.insert(id, g).is_none(), "span {id} drawn twice");
        let s = by_id.get(&id).unwrap_or_else(|| panic!("span {id} is not in the trace"));
        // Its name: the tooltip's first line, and the start of the label when there is one.
        let title = &g.child("title").expect("a tooltip").text;
        let name = shown(&s.name);
        assert_eq!(title.lines().next(), Some(name.as_str()), "tooltip of {id}");
        assert!(title.contains("duration ") && title.contains("thread "), "{title}");
        if s.error {
            assert!(title.contains("returned Err"), "{title}");
        }
        if s.cancelled {
            assert!(title.contains("cancelled"), "{title}");
        }
        for (k, v) in &s.labels {
            assert!(title.contains(&format!("{k} = {v}")), "{title}");
        }
        if let Some(text) = g.child("text") {
            let label = &text.text;
            // `name 12.3 ms`, or cut: `name 12.3ms`, `na… 12.3ms`, `name`, `na…`.
            match label.rsplit_once('…') {
                _ if label.starts_with(&format!("{name} ")) || *label == name => {}
                Some((cut, _)) => assert!(name.starts_with(cut) || cut.starts_with(&name), "{label:?} for {name}"),
                None => panic!("{label:?} for {name}"),
            }
        }
        let parent = g.attr("data-parent");
        assert_eq!(parent, s.parent.map_or("tick".to_owned(), |p| p.to_string()), "parent of {id}");
    }
    assert_eq!(drawn.len(), t.spans.len(), "every span exactly once");

    let rect = |g: &El| {
        let r = g.child("rect").expect("a bar");
        (r.num("x"), r.num("y"), r.num("width"))
    };
    let tick = all.iter().find(|e| e.attrs.get("class").is_some_and(|c| c == "tick")).expect("the tick's bar");
    let (tx, _, tw) = rect(tick);
    const EPS: f64 = 0.011;
    for (id, g) in &drawn {
        let s = by_id[id];
        let (x, y, w) = rect(g);
        assert!(w >= 0.0);
        let (px, py, pw, same_row) = match s.parent {
            Some(p) => {
                let (ps, pg) = (by_id[&p], drawn[&p]);
                // In time (as recorded and as drawn) ...
                assert!(ps.start_ns <= s.start_ns && s.end_ns <= ps.end_ns, "{s:?} outside {ps:?}");
                let ns = |g: &El, k| g.attr(k).parse::<u64>().unwrap();
                assert!(
                    ns(pg, "data-start-ns") <= ns(g, "data-start-ns") && ns(g, "data-end-ns") <= ns(pg, "data-end-ns")
                );
                let (px, py, pw) = rect(pg);
                let same =
                    pg.attr("data-thread") == g.attr("data-thread") && pg.attr("data-lane") == g.attr("data-lane");
                (px, py, pw, same)
            }
            None => (tx, f64::NEG_INFINITY, tw, false),
        };
        // ... and on screen: within the parent's extent, below it on a shared row.
        assert!(x >= px - EPS && x + w <= px + pw + EPS, "span {id} ({x}+{w}) outside its parent ({px}+{pw})");
        if same_row {
            assert!(y > py, "span {id} not below its parent on their row");
        }
    }
    // A bar drawn below others on its row hangs under one of its ancestors, never a sibling.
    for (id, g) in &drawn {
        let depth: u32 = g.attr("data-depth").parse().unwrap();
        if depth == 0 {
            continue;
        }
        let mut at = by_id[id].parent;
        let mut found = false;
        while let Some(p) = at {
            let pg = drawn[&p];
            let same_row =
                pg.attr("data-thread") == g.attr("data-thread") && pg.attr("data-lane") == g.attr("data-lane");
            if same_row && pg.attr("data-depth") == (depth - 1).to_string() {
                found = true;
                break;
            }
            at = by_id[&p].parent;
        }
        assert!(found, "span {id} at depth {depth} is not under an ancestor of its row");
    }
    // Bars at one height of one row never overlap.
    let mut levels: BTreeMap<(String, String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for g in drawn.values() {
        let (x, y, w) = rect(g);
        let key = (g.attr("data-thread").to_owned(), g.attr("data-lane").to_owned(), format!("{y:.2}"));
        levels.entry(key).or_default().push((x, x + w));
    }
    for (key, mut bars) in levels {
        bars.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for w in bars.windows(2) {
            assert!(w[0].1 <= w[1].0 + EPS, "bars overlap at {key:?}: {w:?}");
        }
    }
    let deadline = all.iter().find(|e| e.attrs.get("class").is_some_and(|c| c == "deadline"));
    match t.deadline_ns {
        Some(d) => assert_eq!(deadline.expect("the deadline is marked").attr("data-ns"), d.to_string()),
        None => assert!(deadline.is_none()),
    }
}

/// A trace made by hand with what a picture must survive: markup and control characters in
/// names and labels, spans of zero length and spans sharing a start, an unnamed thread, a
/// child on another thread, a deadline far beyond the tick.
fn hand_made() -> TickTrace {
    let span = |id, parent, name: &str, start_ns, end_ns, thread| TraceSpan {
        id,
        parent,
        name: name.into(),
        kind: if name.starts_with("GET") { "exchange" } else { "stage" },
        start_ns,
        end_ns,
        thread,
        ..Default::default()
    };
    let mut spans = vec![
        span(1, None, "fetch<&>\"md\"", 0, 6_000_000, 1),
        span(2, Some(1), "GET book", 0, 6_000_000, 1),
        span(3, Some(2), "zero", 3_000_000, 3_000_000, 1),
        span(4, Some(1), "carried\u{1}", 1_000_000, 5_000_000, 7),
        span(5, None, "a_stage_with_a_very_long_name_that_cannot_fit", 6_000_000, 6_050_000, 1),
        span(6, None, "tiny", 6_050_000, 6_051_000, 1),
        span(7, None, "last", 7_000_000, 10_000_000, 1),
    ];
    spans[1].labels = vec![("venue".into(), "k<r>&\"a\"'n".into())];
    spans[1].error = true;
    spans[6].cancelled = true;
    TickTrace {
        tick_id: 42,
        name: "tick".into(),
        reason: KeepReason::Slow,
        duration_ns: 10_000_000,
        deadline_missed: false,
        deadline_ns: Some(1_000_000_000),
        annotations: vec![("note".into(), "<b>&amp;</b>".into())],
        spans,
        threads: vec![(1, "bot".into()), (7, String::new())],
        thread: 1,
        ..Default::default()
    }
}

#[test]
fn every_tick_svg_parses_and_draws_each_span_once_within_its_parent() {
    let Some(python) = require("python3", "python3") else { return };
    let mut traces = concurrent_traces();
    traces.push(hand_made());
    traces.push(TickTrace { deadline_ns: None, spans: Vec::new(), ..hand_made() });
    let dir = TempDir::new("pictures-svg");
    let files: Vec<PathBuf> = traces
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let path = dir.path().join(format!("tick-{i}.svg"));
            std::fs::write(&path, mm_trace::tick_svg(t)).unwrap();
            path
        })
        .collect();
    if let Some(keep) = std::env::var_os("MM_TRACE_SCREENSHOTS").map(PathBuf::from) {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&files[6], keep.join("hand_made_tick.svg")).unwrap();
    }
    let roots = parse_svgs(&python, &files);
    assert_eq!(roots.len(), traces.len());
    for (t, root) in traces.iter().zip(&roots) {
        check_tick_svg(t, root);
    }
    let missed = traces.iter().find(|t| t.deadline_missed).expect("a tick missed the 5 ms deadline");
    let svg = mm_trace::tick_svg(missed);
    assert!(svg.contains("missed its 5.00 ms deadline by ") && svg.contains(r#"class="overrun""#));
    let far = mm_trace::tick_svg(&traces[6]);
    assert!(far.contains("deadline 1.00 s (beyond the right edge)"));
    assert!(far.contains("fetch&lt;&amp;&gt;&quot;md&quot;") && !far.contains("\u{1}"));
}

#[test]
fn folded_stacks_have_one_line_per_stack_with_self_time_in_microseconds() {
    let traces = concurrent_traces();
    let text = mm_trace::folded_stacks(&traces);
    let mut total = 0u64;
    let mut stacks = BTreeSet::new();
    for line in text.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let count: u64 = count.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(count > 0 && stack.split(';').all(|f| !f.is_empty()), "{line:?}");
        assert!(stack == "tick" || stack.starts_with("tick;"), "{line:?}");
        assert!(stacks.insert(stack.to_owned()), "one line per stack: {line:?}");
        total += count;
    }
    assert!(stacks.contains("tick;quote;fetch_md;GET book"), "{text}");
    assert!(stacks.contains("tick;slow_leg") && stacks.contains("tick;spread"), "{text}");
    // Parallel fetches count in full, so the total is at least the ticks' wall time.
    let wall_us: u64 = traces.iter().map(|t| t.duration_ns / 1000).sum();
    assert!(total + text.lines().count() as u64 >= wall_us, "{total} µs < {wall_us} µs");
    // Sequential work: the lines add up to the tick, to rounding.
    let seq = TickTrace { spans: hand_made().spans.into_iter().filter(|s| s.thread == 1).collect(), ..hand_made() };
    let sum: u64 =
        mm_trace::folded_stacks(&[seq]).lines().map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap()).sum();
    assert!((9_998..=10_002).contains(&sum), "{sum}");
}

/// Runs `cmd`, killing it past `limit`; its exit status.
fn run_bounded(cmd: &mut Command, limit: Duration) -> std::process::ExitStatus {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A screenshot of `svg` by headless Chromium, at the picture's own size.
fn screenshot(chromium: &Path, svg: &Path, root: &El, png: &Path) {
    let (w, h) = (root.num("width").ceil() as u32, (root.num("height").ceil() as u32).min(4000));
    let profile = png.with_extension("chromium-profile");
    let status = run_bounded(
        Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={w},{h}"))
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("file://{}", svg.display())),
        Duration::from_secs(120),
    );
    assert!(status.success() && png.is_file(), "chromium failed on {}: {status}", svg.display());
}

#[derive(Debug, Deserialize)]
struct PngStats {
    width: u32,
    height: u32,
    nonwhite: f64,
    colours: usize,
}

fn png_stats(python: &Path, png: &Path) -> PngStats {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/png_stats.py");
    let out = Command::new(python).arg(script).arg(png).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Profiles of `runs` runs of three stages; `fetch_scale` stretches fetch_md.
fn write_profiles(dir: &Path, side: &str, runs: u64, fetch_scale: f64) -> Vec<PathBuf> {
    (0..runs)
        .map(|run| {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (run + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            let mut uniform = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut stage = |name: &str, median_ms: f64| {
                let mut h = mm_trace::HistogramSnapshot::new();
                for _ in 0..2000 {
                    // Log-normal-ish: exp of a sum of uniforms.
                    let z = (0..4).map(|_| uniform()).sum::<f64>() - 2.0;
                    h.record_ns((median_ms * 1e6 * (z * 0.6).exp()) as u64);
                }
                mm_trace::StageStats::from_histogram(name, h)
            };
            let stages = vec![
                stage("fetch_md", 6.0 * fetch_scale),
                stage("quote", 0.08),
                stage("tick_total", 40.0 * fetch_scale.sqrt()),
            ];
            let summary = mm_trace::Summary { ticks: 2000, stages, ..Default::default() };
            let path = dir.join(format!("{side}-{run}/perf_profile.json"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, mm_trace::profile_json_from(&summary)).unwrap();
            path
        })
        .collect()
}

#[test]
fn headless_chromium_renders_a_tick_and_the_gate_chart() {
    let Some(python) = require("python3", "python3") else { return };
    let Some(chromium) = require("chromium", "chromium") else { return };
    let dir = TempDir::new("pictures-png");

    // The slowest of the concurrent ticks.
    let traces = concurrent_traces();
    let slowest = traces.iter().max_by_key(|t| t.duration_ns).unwrap();
    let tick_svg = dir.path().join("tick.svg");
    std::fs::write(&tick_svg, mm_trace::tick_svg(slowest)).unwrap();

    // perf-gate on three runs per side, fetch_md 30% slower in current.
    let base = write_profiles(dir.path(), "baseline", 3, 1.0);
    let cur = write_profiles(dir.path(), "current", 3, 1.3);
    let report = dir.path().join("ci/perf_gate_report.md");
    let mut args: Vec<std::ffi::OsString> = vec!["perf-gate".into()];
    for p in &base {
        args.extend(["--baseline".into(), p.clone().into_os_string()]);
    }
    for p in &cur {
        args.extend(["--current".into(), p.clone().into_os_string()]);
    }
    args.extend(["--report".into(), report.clone().into_os_string()]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = perf_gate::run_with_output(args, &mut out, &mut err);
    assert!(code != perf_gate::EXIT_ERROR, "{}", String::from_utf8_lossy(&err));
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("](perf_gate_report.svg)"), "the report links its chart:\n{md}");
    let chart_svg = dir.path().join("ci/perf_gate_report.svg");

    let roots = parse_svgs(&python, &[tick_svg.clone(), chart_svg.clone()]);
    check_tick_svg(slowest, &roots[0]);
    assert_self_contained(&roots[1]);
    let mut all = Vec::new();
    roots[1].walk(&mut all);
    let stages: Vec<&str> = all
        .iter()
        .filter(|e| e.attrs.get("class").is_some_and(|c| c == "stage"))
        .map(|e| e.attr("data-stage"))
        .collect();
    assert_eq!(stages, ["fetch_md", "quote", "tick_total"]);
    assert_eq!(
        all.iter().filter(|e| e.attrs.get("class").is_some_and(|c| c == "box")).count(),
        6,
        "two boxes per stage"
    );

    let keep = std::env::var_os("MM_TRACE_SCREENSHOTS").map(PathBuf::from);
    for (svg, root, name) in [(&tick_svg, &roots[0], "tick"), (&chart_svg, &roots[1], "perf_gate_chart")] {
        let png = dir.path().join(format!("{name}.png"));
        screenshot(&chromium, svg, root, &png);
        let stats = png_stats(&python, &png);
        assert_eq!(stats.width, root.num("width").ceil() as u32, "{stats:?}");
        assert!(stats.height > 100, "{stats:?}");
        assert!(stats.nonwhite > 0.03 && stats.colours >= 8, "{name}: a blank screenshot? {stats:?}");
        if let Some(keep) = &keep {
            std::fs::create_dir_all(keep).unwrap();
            std::fs::copy(&png, keep.join(format!("{name}.png"))).unwrap();
            std::fs::copy(svg, keep.join(format!("{name}.svg"))).unwrap();
        }
    }
}

//! The README's main command in a short run: every artefact is written and well-formed, the
//! /metrics endpoint answers while the bot runs, async batching beats sequential, and each of the
//! two canary verdicts is the one the run's figures call for (async batching promotes, the
//! deliberately regressed canary rolls back); `--help` says what mm-bot is.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

#[path = "support/trace_events.rs"]
mod trace_events;

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn http_get(addr: &str, path: &str) -> String {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn help_opens_with_what_mm_bot_is() {
    let out = Command::new(env!("CARGO_BIN_EXE_mm-bot")).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.lines().next(),
        Some("The mm-trace demo: a simulated market-making bot, run in sequential and in async-batching mode."),
        "{text}"
    );
    assert!(text.contains("Exits 0 whichever verdict the canary gives"), "{text}");
}

/// The demo's trace settings, but a 300 ms deadline. With the default 200 ms one, whether async
/// batching (p95 near 187 ms) misses more than 2% of 60 ticks depends on the machine's load
/// (it needs 2 misses). At 300 ms async batching misses none unless the host slows it by
/// half, so its canary must promote: p95 is half the sequential one, no deadline misses, and the
/// partial failures are fixed by the seed (each symbol draws from its own seeded stream: 1 of
/// the 60 ticks, 1.7% < 5%). The canary regressed by --regress-canary-pct 100 doubles every
/// exchange latency (p95 near 370 ms): nearly every tick misses 300 ms, so it must roll back on
/// the deadline-miss rule. The run uses `--time-scale 0.2` (1 real ms records as 5 ms): at 0.05 a
/// 1 ms scheduling delay of a loaded machine recorded as 20 ms and pushed async ticks over 300 ms
/// (4 of 60 under a parallel build); at 0.2 it records as 5 ms.
const CONFIG: &str = "\
trace:
  sample_rate: 0.2
  deadline_ms: 300.0
  export_golden: true
  golden_trace_interval: 10
  chrome_ring_ticks: 16
";

#[test]
fn short_demo_run_writes_every_artefact_and_async_beats_sequential() {
    let out = std::env::temp_dir().join(format!("mm-bot-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let config = out.join("config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mm-bot"))
        .args(["--ticks", "60", "--time-scale", "0.2", "--listen", "127.0.0.1:0", "--regress-canary-pct", "100"])
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .strip_prefix("serving http://")
        .and_then(|r| r.split("/metrics").next())
        .unwrap_or_else(|| panic!("first line announces the endpoint: {first:?}"))
        .to_owned();
    let scrape = http_get(&addr, "/metrics");
    assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
    assert!(scrape.contains("# TYPE mm_stage_duration_ms histogram"), "{scrape}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    // Exit 0 although one canary says roll back: the verdict is the demo's result.
    assert!(status.success(), "mm-bot failed: {status}\n{rest}\n{stderr}");

    // Progress went to stderr; both tables and the comparison to stdout.
    assert!(stderr.contains("sequential:") && stderr.contains("60/60 ticks"), "{stderr}");
    for needle in ["== sequential mode", "== async mode", "tick_total", "fetch_md", "spread", "guards", "emit"] {
        assert!(rest.contains(needle), "stdout lacks {needle:?}:\n{rest}");
    }
    assert!(rest.contains("deadline misses"), "{rest}");

    let mut p95 = Vec::new();
    for mode in ["sequential", "async"] {
        let dir = out.join(mode);
        let profile = json(&dir.join("perf_profile.json"));
        assert_eq!(profile["schema"], "mm-trace/perf-profile");
        assert_eq!(profile["ticks"], 60);
        assert_eq!(profile["labels"]["mode"], mode);
        // Ten windows of 6 ticks: perf-gate's within-run noise.
        let windows = profile["windows"].as_array().unwrap();
        assert_eq!(windows.len(), 10, "{mode}");
        assert!(windows.iter().all(|w| w["ticks"] == 6 && w["stages"]["tick_total"]["count"] == 6), "{mode}");
        for stage in ["tick_total", "fetch_md", "spread", "guards", "emit"] {
            assert!(profile["stages"][stage]["count"].as_u64().unwrap() > 0, "{mode}: {stage}");
        }
        assert!(profile["exchange"]["GET book"]["count"].as_u64().unwrap() > 0);
        // Orders carry their venue (a run-time label): one entry per venue.
        for venue in ["binance", "kraken"] {
            let entry = &profile["exchange"][format!("POST order{{venue={venue}}}")];
            assert!(entry["count"].as_u64().unwrap() > 0, "{mode}: {venue}");
            assert_eq!(entry["labels"]["venue"], venue);
        }
        p95.push(profile["stages"]["tick_total"]["p95_ms"].as_f64().unwrap());

        let prom = std::fs::read_to_string(dir.join("metrics.prom")).unwrap();
        assert!(prom.contains("\nmm_ticks_total 60\n"), "{prom}");
        assert!(prom.contains("mm_exchange_req_ms_count{verb=\"GET\",api=\"book\"}"));
        assert!(prom.contains("mm_exchange_req_ms_count{verb=\"POST\",api=\"order\",venue=\"kraken\"}"), "{prom}");
        assert!(prom.contains("# TYPE mm_stage_errors_total counter"), "{prom}");

        let chrome = json(&dir.join("trace.json"));
        let events = chrome["traceEvents"].as_array().unwrap();
        assert!(events.iter().any(|e| e["ph"] == "M" && e["name"] == "thread_name"));
        // Issue 17: as Perfetto and speedscope read it, every track a well-formed stack.
        let slices = trace_events::slices(&chrome);
        assert!(slices.iter().any(|s| s.name == "fetch_md"), "{mode}: no fetch_md span");
        trace_events::assert_nested_per_track(&slices);

        let traces: Vec<_> = std::fs::read_dir(dir.join("traces")).unwrap().flatten().collect();
        assert!(!traces.is_empty(), "{mode}: no golden or slow traces");
        for t in traces {
            let name = t.file_name().into_string().unwrap();
            assert!(name.starts_with("golden_trace_") || name.starts_with("slow_trace_"), "{name}");
            if let Some(stem) = name.strip_suffix(".svg") {
                // A slow trace's picture, beside its JSON.
                assert!(stem.starts_with("slow_trace_") && dir.join("traces").join(format!("{stem}.json")).is_file());
                assert!(std::fs::read_to_string(t.path()).unwrap().starts_with("<svg "), "{name}");
                continue;
            }
            let v = json(&t.path());
            assert!(v.is_object(), "{name}");
        }
        let folded = std::fs::read_to_string(dir.join("stacks.folded")).unwrap();
        assert!(folded.lines().any(|l| l.starts_with("tick;") && l.contains(";GET book ")), "{mode}: {folded}");
        let svg = std::fs::read_to_string(dir.join("slowest_tick.svg")).unwrap();
        assert!(svg.starts_with("<svg ") && svg.contains("fetch_md"), "{mode}");
    }
    let (seq, asy) = (p95[0], p95[1]);
    // 1.96 - 2.3x on a quiet 2-vCPU machine; 1.30 - 1.64x with both cores saturated by other
    // processes (the async mode's many tasks feel CPU contention more): 1.2x keeps the check
    // meaningful without failing on a busy CI host.
    assert!(asy * 1.2 < seq, "async batching p95 {asy} ms should clearly beat sequential {seq} ms");

    // Async mode overlaps its symbols' fetches within a tick.
    let chrome = json(&out.join("async/trace.json"));
    let fetches: Vec<(i64, i64, u64)> = trace_events::slices(&chrome)
        .into_iter()
        .filter(|s| s.name == "fetch_md")
        .map(|s| (s.start, s.end, s.args["tick_id"].as_u64().unwrap()))
        .collect();
    let first_tick = fetches.iter().map(|f| f.2).min().unwrap();
    let same: Vec<_> = fetches.iter().filter(|f| f.2 == first_tick).collect();
    assert_eq!(same.len(), 8, "8 symbols fetched in one tick");
    let latest_start = same.iter().map(|f| f.0).max().unwrap();
    let earliest_end = same.iter().map(|f| f.1).min().unwrap();
    assert!(latest_start < earliest_end, "the 8 fetch_md spans overlap");

    let report = std::fs::read_to_string(out.join("perf_gate_report.md")).unwrap();
    assert!(report.contains("tick_total"), "{report}");
    // The compare report names where its noise came from (one run a side: within-run).
    assert!(report.contains("within-run"), "{report}");

    let canary = std::fs::read_to_string(out.join("canary_verdict.md")).unwrap();
    assert!(canary.contains("\n**PROMOTE** — all three rules within limits\n"), "{canary}");
    assert!(canary.contains("\n| deadline-miss rate | "), "{canary}");
    assert!(!canary.contains("ROLLBACK") && !canary.contains("🔴"), "{canary}");
    assert!(
        rest.contains(
            "\n== perf-gate canary: async batching as the canary ==\nPROMOTE: all three rules within limits\n"
        ),
        "{rest}"
    );

    let regressed = json(&out.join("async-regressed/perf_profile.json"));
    assert_eq!((regressed["ticks"].as_u64(), regressed["labels"]["latency_factor"].as_str()), (Some(60), Some("2")));
    let canary = std::fs::read_to_string(out.join("canary_regressed_verdict.md")).unwrap();
    assert!(canary.contains("\n**ROLLBACK** — deadline-miss rate "), "{canary}");
    let miss_row = canary.lines().find(|l| l.starts_with("| deadline-miss rate |")).unwrap_or_default();
    assert!(miss_row.ends_with("| 2.0% | 🔴 rollback |"), "{canary}");
    assert!(!canary.contains("PROMOTE"), "{canary}");
    assert!(
        rest.contains("\n== perf-gate canary: the regressed async canary ==\nROLLBACK: deadline-miss rate "),
        "{rest}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

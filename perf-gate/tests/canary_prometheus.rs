//! `perf-gate canary --prometheus` against a real Prometheus server on loopback that scrapes
//! four instrumented processes (this test binary re-executed as children):
//! scenario "slow": baseline 4 ms ticks vs canary 15 ms ticks missing a 10 ms deadline → rollback;
//! scenario "same": both 4 ms ticks → promote.
//!
//! Needs `prometheus` on PATH (Debian package `prometheus`): without it the test fails when
//! CI=true and is skipped with a notice otherwise.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mm_trace::__private::{Site, TickGuard};

/// Set in the children: `slow` or `fast`. A child is this test binary filtered to
/// `canary_verdicts_from_a_real_prometheus`, which then runs `child` instead of the test.
const CHILD_ENV: &str = "MM_CANARY_CHILD";

/// An instrumented bot for Prometheus to scrape: 15 ms (`slow`) or 4 ms (`fast`) ticks against a
/// 10 ms deadline, until the parent kills it. It checks its first tick before it announces its
/// address, so a child that does not record what the scenarios rely on fails at once.
fn child(kind: &str) {
    let tick_ms = match kind {
        "slow" => 15,
        "fast" => 4,
        other => panic!("{CHILD_ENV}={other:?}: expected `slow` or `fast`"),
    };
    mm_trace::init(mm_trace::TraceConfig {
        deadline_ms: 10.0,
        export_golden: false,
        sample_rate: 1.0,
        ..Default::default()
    })
    .unwrap();
    static TICK: Site = Site::tick("tick");
    let tick = || {
        let _t = TickGuard::begin(&TICK);
        std::thread::sleep(Duration::from_millis(tick_ms));
    };
    tick();
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1, "{kind}: the tick was counted");
    if kind == "slow" {
        assert_eq!(s.deadline_misses, 1, "a 15 ms tick misses the 10 ms deadline");
    }
    let server = mm_trace::serve_metrics("127.0.0.1:0").unwrap();
    println!("METRICS_ADDR={}", server.local_addr());
    // Orphan protection: a child never outlives 3 minutes.
    let end = Instant::now() + Duration::from_secs(180);
    while Instant::now() < end {
        tick();
    }
}

/// Kills and reaps its processes on drop (every path, panics included).
#[derive(Default)]
struct Procs(Vec<Child>, Option<PathBuf>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = &self.1 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn spawn_child(kind: &str, procs: &mut Procs) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "canary_verdicts_from_a_real_prometheus", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, kind)
        .stdout(Stdio::piped())
        // A failing child's panic message shows in the test's output.
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    procs.0.push(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        // The harness may print "test canary_verdicts_from_a_real_prometheus ... " on the same line first.
        .find_map(|l| l.split_once("METRICS_ADDR=").map(|(_, a)| a.trim().to_owned()))
        .expect("child printed its metrics address");
    // Keep draining the child's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn canary(url: &str, scenario: &str) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = perf_gate::run_with_output(
        [
            "perf-gate",
            "canary",
            "--prometheus",
            url,
            "--canary-selector",
            &format!("track=\"canary\",scenario=\"{scenario}\""),
            "--baseline-selector",
            &format!("{{track=\"baseline\",scenario=\"{scenario}\"}}"),
            "--window",
            "30s",
        ],
        &mut out,
        &mut err,
    );
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn canary_verdicts_from_a_real_prometheus() {
    if let Ok(kind) = std::env::var(CHILD_ENV) {
        child(&kind);
        return;
    }
    let found = Command::new("prometheus").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if found.is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prometheus is not on PATH (install the Debian package `prometheus`)"
        );
        eprintln!("NOTICE: prometheus not on PATH; skipping the live canary test");
        return;
    }
    let dir = std::env::temp_dir().join(format!("perf-gate-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut procs = Procs(Vec::new(), Some(dir.clone()));

    let targets = [
        ("slow", "baseline", "fast"),
        ("slow", "canary", "slow"),
        ("same", "baseline", "fast"),
        ("same", "canary", "fast"),
    ];
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: bots\n    static_configs:\n",
    );
    for (scenario, track, kind) in targets {
        let addr = spawn_child(kind, &mut procs);
        config.push_str(&format!(
            "      - targets: ['{addr}']\n        labels: {{track: '{track}', scenario: '{scenario}'}}\n"
        ));
    }
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("start prometheus");
    procs.0.push(prom);
    let url = format!("http://127.0.0.1:{port}");

    // Wait until every track has a rate over at least a few scrapes (bounded).
    let client = perf_gate::prom::Client::new(&url, Duration::from_secs(2)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        let ok = client
            .query(
                "count(rate(mm_ticks_total[30s]) > 0) >= 4 and count(count_over_time(mm_ticks_total[30s]) >= 5) >= 4",
            )
            .map(|v| !v.is_empty())
            .unwrap_or(false);
        if ok || Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    assert!(ready, "Prometheus had no data after 60 s; log:\n{}", log());

    let (code, out, err) = canary(&url, "slow");
    assert_eq!(code, 1, "slow canary must roll back: {out}{err}");
    assert!(out.starts_with("ROLLBACK: tick_total p95 increase"), "{out}");
    assert!(out.contains("deadline-miss rate") && out.contains("<- rollback"), "{out}");

    let (code, out, err) = canary(&url, "same");
    assert_eq!(code, 0, "equal canary must be promoted: {out}{err}");
    assert!(out.starts_with("PROMOTE: all three rules within limits"), "{out}");

    // A selector that matches nothing is an error naming the selector and window.
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = perf_gate::run_with_output(
        [
            "perf-gate",
            "canary",
            "--prometheus",
            &url,
            "--canary-selector",
            "track=\"nope\"",
            "--baseline-selector",
            "track=\"baseline\"",
            "--window",
            "30s",
        ],
        &mut o,
        &mut e,
    );
    let e = String::from_utf8(e).unwrap();
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("track=\"nope\" in the last 30s"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

//! The command line end to end: exit codes, one-line errors, reports, and a seeded fuzz loop
//! over mutated profiles and random argument vectors (never a panic, always exit 0, 1 or 2).

mod common;

use std::path::{Path, PathBuf};

use perf_gate::stats::Rng;

fn run(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut argv = vec!["perf-gate"];
    argv.extend_from_slice(args);
    let code = perf_gate::run_with_output(argv, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("perf-gate-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `runs` profiles whose tick_total/fetch_md are scaled by `factor`, with per-run noise.
fn write_runs(d: &Path, prefix: &str, runs: usize, factor: f64, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..runs)
        .map(|i| {
            let noise = 1.0 + 0.01 * rng.normal();
            let tick = common::lognormal_stage(&mut rng, 3000, 20.0, 0.3, factor * noise);
            let fetch = common::lognormal_stage(&mut rng, 3000, 5.0, 0.3, noise);
            let path = d.join(format!("{prefix}{i}.json"));
            std::fs::write(&path, common::profile_json(&[("tick_total", &tick), ("fetch_md", &fetch)], 3000, 30, 3))
                .unwrap();
            path.display().to_string()
        })
        .collect()
}

#[test]
fn regression_fails_with_a_report_and_identical_runs_pass() {
    let d = dir("reg");
    let base = write_runs(&d, "base", 5, 1.0, 1);
    let slow = write_runs(&d, "slow", 5, 1.25, 2);
    let same = write_runs(&d, "same", 5, 1.0, 3);
    let report = d.join("out/report.md");
    let mut args = vec!["--baseline"];
    args.extend(base.iter().map(String::as_str));
    args.push("--current");
    args.extend(slow.iter().map(String::as_str));
    args.extend(["--report", report.to_str().unwrap(), "--metric", "p50,p95", "--metric", "p99"]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("FAIL — "), "{out}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("**FAIL** — "), "{md}");
    assert!(md.contains("## p50") && md.contains("## p95") && md.contains("## p99"), "{md}");
    assert!(md.contains("| `tick_total` |") && md.contains("🔴 regression") && md.contains("`▲█"), "{md}");
    assert!(md.contains("| `fetch_md` |"), "{md}");

    // Same runs given as repeated flags; identical distributions: a 3% rise cannot be told
    // apart on tick_total with 5 runs (undecided, not a pass), a 6% one can (pass).
    let mut args = Vec::new();
    for b in &base {
        args.extend(["--baseline", b.as_str()]);
    }
    for s in &same {
        args.extend(["-c", s.as_str()]);
    }
    let (code, out, _) = run(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("UNDECIDED — 1 of 2 compared stages not decided at 3.0% with 99% confidence: tick_total p95"),
        "{out}"
    );
    // Deterministic.
    assert_eq!(run(&args).1, out);
    args.extend(["--threshold-pct", "6"]);
    let (code, out, _) = run(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("PASS — all 2 compared stages decided: none rose more than 6.0% with 99% confidence\n"),
        "{out}"
    );
}

/// Issue 18: PASS only when every compared stage was decided; otherwise UNDECIDED with the
/// stages, what the data could show and the interleaved pairs that would decide it (exit 0, 1
/// with --strict); the noise says where it came from; the --paired fallback is named.
#[test]
fn issue18_the_headline_says_what_the_data_can_see() {
    let d = dir("issue18");
    let one = write_runs(&d, "one", 1, 1.0, 11);
    let two = write_runs(&d, "two", 1, 1.0, 12);
    let report = d.join("r.md");
    let r = report.to_str().unwrap();
    let (code, out, err) = run(&["-b", &one[0], "-c", &two[0], "-r", r]);
    assert_eq!(code, 0, "{out}{err}");
    let head = out.lines().next().unwrap();
    assert!(head.starts_with("UNDECIDED — 2 of 2 compared stages not decided at 3.0% with 99% confidence: "), "{head}");
    assert!(head.contains("fetch_md p95") && head.contains("tick_total p95"), "{head}");
    assert!(head.contains("interleaved pairs would decide it") && head.contains("could show ≥ +"), "{head}");
    assert!(!out.contains("PASS"), "{out}");
    assert_eq!(
        out.lines().nth(1).unwrap(),
        "  1 baseline run vs 1 current run, unpaired; threshold 3.0%, 99% confidence; run-to-run noise: assumed \
         (--noise-pct): too few runs to measure it"
    );
    assert!(out.contains("; noise 20% (assumed); could show a rise of +"), "{out}");
    assert!(out.contains(" interleaved pairs decide 3.0%"), "{out}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.starts_with("# perf-gate\n\n**UNDECIDED** — "), "{md}");
    assert!(md.contains("| could show | pairs to decide 3.0% |") && md.contains("| 20% (assumed) | ≥ +"), "{md}");
    // --strict: undecided fails.
    let (code, out, _) = run(&["-b", &one[0], "-c", &two[0], "--strict"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("UNDECIDED — "), "{out}");

    // --paired with fewer pairs than --min-runs: the fallback is named.
    let base = write_runs(&d, "pb", 2, 1.0, 13);
    let cur = write_runs(&d, "pc", 2, 1.0, 14);
    let (code, out, _) = run(&["--paired", "-b", &base[0], &base[1], "-c", &cur[0], &cur[1], "-r", r]);
    assert_eq!(code, 0, "{out}");
    let want = "unpaired: --paired fell back to the unpaired comparison (2 pairs < --min-runs 3)";
    assert!(out.lines().nth(1).unwrap().contains(want), "{out}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains(want) && !md.contains("(paired)"), "{md}");
    let more_base = write_runs(&d, "qb", 3, 1.0, 15);
    let more_cur = write_runs(&d, "qc", 3, 1.0, 16);
    let mut args = vec!["--paired", "-b"];
    args.extend(more_base.iter().map(String::as_str));
    args.push("-c");
    args.extend(more_cur.iter().map(String::as_str));
    let (_, out, _) = run(&args);
    assert!(out.lines().nth(1).unwrap().contains("3 current runs, paired;"), "{out}");

    // Five runs of main and one of the PR: main's measured noise is used for both.
    let main = write_runs(&d, "main", 5, 1.0, 17);
    let slow = write_runs(&d, "slow", 1, 1.5, 18);
    let mut args = vec!["-b"];
    args.extend(main.iter().map(String::as_str));
    args.extend(["-c", &slow[0]]);
    let (code, out, _) = run(&args);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("run-to-run noise: measured on the baseline runs, used for both sides"), "{out}");
    assert!(out.contains("\n  regression   p95 tick_total: ") && out.contains("(from baseline runs)"), "{out}");
}

#[test]
fn issue18_single_runs_with_windows_use_within_run_noise() {
    let d = dir("windows");
    let mut rng = Rng::new(21);
    let mut write = |name: &str, factor: f64| {
        let (mut stage, mut windows) = common::windowed_stage(&mut rng, "tick_total", 10, 300, 20.0, 0.02);
        if factor != 1.0 {
            // The current run: every window slower by `factor`.
            let (s, w) = common::windowed_stage(&mut rng, "tick_total", 10, 300, 20.0 * factor, 0.02);
            (stage, windows) = (s, w);
        }
        let p = d.join(name);
        std::fs::write(&p, common::profile_json_with_windows(&[("tick_total", &stage)], 3000, 0, 0, windows)).unwrap();
        p.display().to_string()
    };
    let (a, b, slow) = (write("a.json", 1.0), write("b.json", 1.0), write("slow.json", 1.3));
    let (code, out, _) = run(&["-b", &a, "-c", &b]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("run-to-run noise: within-run (from the windows the profiles record)"), "{out}");
    assert!(out.contains("(within-run)"), "{out}");
    let (code, out, _) = run(&["-b", &a, "-c", &slow]);
    assert_eq!(code, 1, "one run a side decides +30% from within-run noise: {out}");
    assert!(out.starts_with("FAIL — 1 regression (tick_total p95 +"), "{out}");
    let (code, out, _) = run(&["-b", &a, "-c", &slow, "--no-within-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("UNDECIDED — ") && out.contains("noise 20% (assumed)"), "{out}");
}

#[test]
fn issue18_a_quantile_between_two_clusters_is_marked_bimodal() {
    let d = dir("bimodal");
    let mut rng = Rng::new(31);
    // 95% of the samples near 3 µs, 5% near 15 ms: p95 sits on the split.
    let mut ns: Vec<u64> = (0..1900).map(|_| (3_000.0 * (0.1 * rng.normal()).exp()) as u64).collect();
    ns.extend((0..100).map(|_| (15e6 * (0.1 * rng.normal()).exp()) as u64));
    let guards = common::stage_from_ns(&ns);
    let tick = common::lognormal_stage(&mut rng, 2000, 20.0, 0.3, 1.0);
    let p = d.join("g.json");
    std::fs::write(&p, common::profile_json(&[("tick_total", &tick), ("guards", &guards)], 2000, 0, 0)).unwrap();
    let p = p.display().to_string();
    let report = d.join("r.md");
    let (code, out, _) = run(&["-b", &p, "-c", &p, "-r", report.to_str().unwrap(), "-m", "p50,p95"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().next().unwrap().contains("guards p95 ±0.0% (99% CI"), "{out}");
    assert!(out.lines().next().unwrap().contains("bimodal p95: try another quantile or more ticks"), "{out}");
    let line = out.lines().find(|l| l.contains(" p95 guards: ")).unwrap();
    assert!(line.contains("; bimodal: p95 falls between two clusters (95% of samples up to "), "{line}");
    assert!(line.ends_with("compare another quantile (--metric p50 or p99) or run more ticks"), "{line}");
    assert!(!out.lines().find(|l| l.contains(" p50 guards: ")).unwrap().contains("bimodal"), "{out}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("· ⚠️ bimodal") && md.contains("- `guards`: bimodal: p95 falls between two clusters"), "{md}");
}

#[test]
fn new_stages_are_informational_and_removed_ones_pass_only_when_allowed() {
    let d = dir("new");
    let mut rng = Rng::new(5);
    let tick = common::lognormal_stage(&mut rng, 500, 20.0, 0.3, 1.0);
    let a = d.join("a.json");
    let b = d.join("b.json");
    std::fs::write(&a, common::profile_json(&[("tick_total", &tick), ("old", &tick)], 500, 0, 0)).unwrap();
    std::fs::write(&b, common::profile_json(&[("tick_total", &tick), ("fresh", &tick)], 500, 0, 0)).unwrap();
    let report = d.join("r.md");
    let (a, b, r) = (a.to_str().unwrap(), b.to_str().unwrap(), report.to_str().unwrap());
    let (code, out, err) = run(&["-b", a, "-c", b, "-r", r, "--allow-removed-stages"]);
    assert_eq!(code, 0, "{out}{err}");
    // One run a side without windows: tick_total cannot be decided (assumed noise).
    assert!(out.starts_with("UNDECIDED — ") && out.contains("1 stage removed (old;"), "{out}");
    assert!(out.contains("\n  removed      p95 old: "), "{out}");
    assert!(out.contains("\n  new          p95 fresh: "), "{out}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("🆕 new") && md.contains("➖ removed (allowed)"), "{md}");
    // A stage that only the current runs have stays informational without the option too.
    let (code, out, err) = run(&["-b", a, "-c", a, "-r", r]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&["-b", b, "-c", b]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A stage the baseline measured that the current runs never recorded (absent, or present
/// with 0 samples) fails the gate and is named on stdout and in the report, unless
/// `--allow-removed-stages` says the removal is intended. Before the fix it was a silent pass
/// (exit 0, "PASS — ...", a "removed" row among the others).
#[test]
fn a_stage_missing_in_current_fails_the_gate_unless_allowed() {
    let d = dir("missing");
    let mut rng = Rng::new(6);
    let tick = common::lognormal_stage(&mut rng, 2000, 20.0, 0.3, 1.0);
    let risk = common::lognormal_stage(&mut rng, 2000, 2.0, 0.3, 1.0);
    let none = common::stage_from_ns(&[]);
    let write = |name: &str, stages: &[(&str, &perf_gate::profile::StageProfile)]| {
        let p = d.join(name);
        std::fs::write(&p, common::profile_json(stages, 2000, 0, 0)).unwrap();
        p.display().to_string()
    };
    let base = write("base.json", &[("tick_total", &tick), ("risk_guards", &risk)]);
    let absent = write("absent.json", &[("tick_total", &tick)]);
    let empty = write("empty.json", &[("tick_total", &tick), ("risk_guards", &none)]);
    let report = d.join("r.md");
    let r = report.to_str().unwrap();
    for current in [&absent, &empty] {
        let (code, out, err) = run(&["-b", &base, "-c", current, "-r", r, "-m", "p50,p95"]);
        assert_eq!(code, 1, "{current}: {out}{err}");
        assert!(err.is_empty(), "{err}");
        let head = out.lines().next().unwrap();
        assert!(head.starts_with("FAIL — "), "{out}");
        assert!(head.contains("missing in current") && head.contains("risk_guards"), "{head}");
        assert!(head.contains("--allow-removed-stages"), "the headline says how to accept it: {head}");
        assert!(out.contains("\n  missing in current p95 risk_guards: "), "{out}");
        assert!(out.contains("\n  missing in current p50 risk_guards: "), "{out}");
        let md = std::fs::read_to_string(&report).unwrap();
        assert!(md.starts_with("# perf-gate\n\n**FAIL** — "), "{md}");
        assert!(md.contains("| `risk_guards` |") && md.contains("⛔ missing in current"), "{md}");
        assert!(!md.contains("➖ removed"), "{md}");

        let (code, out, err) = run(&["-b", &base, "-c", current, "-r", r, "--allow-removed-stages"]);
        assert_eq!(code, 0, "{current}: {out}{err}");
        assert!(out.starts_with("UNDECIDED — ") && out.contains("\n  removed      p95 risk_guards: "), "{out}");
        assert!(out.lines().next().unwrap().contains("risk_guards"), "allowed, still named on top: {out}");
        assert!(std::fs::read_to_string(&report).unwrap().contains("➖ removed (allowed)"));
    }
    // With several runs a side, the stage counts as missing only when no current run has it.
    let (code, out, err) = run(&["-b", &base, &base, "-c", &absent, &empty]);
    assert_eq!(code, 1, "{out}{err}");
    let (code, out, err) = run(&["-b", &base, &base, "-c", &absent, &base]);
    assert!(code <= 1 && !out.contains("missing in current"), "{out}{err}");
}

/// A profile with no ticks (the app was built with mm-trace `default-features = false`, so it
/// recorded nothing; or the benchmark did not run) is an input error naming the file, on
/// either side. Before the fix it passed with every stage "removed" (or "new").
#[test]
fn a_profile_with_no_ticks_is_an_error_not_a_pass() {
    let d = dir("noticks");
    let good = write_runs(&d, "good", 2, 1.0, 12);
    let empty_stages = d.join("compiled_out.json");
    std::fs::write(&empty_stages, common::profile_json(&[], 0, 0, 0)).unwrap();
    let zero_tick_total = d.join("zero_tick_total.json");
    let none = common::stage_from_ns(&[]);
    std::fs::write(&zero_tick_total, common::profile_json(&[("tick_total", &none)], 0, 0, 0)).unwrap();
    let report = d.join("r.md");
    let r = report.to_str().unwrap();
    for empty in [&empty_stages, &zero_tick_total] {
        let e = empty.to_str().unwrap();
        for args in [
            vec!["-b", &good[0], "-c", e, "-r", r],
            vec!["-b", e, "-c", &good[0], "-r", r],
            vec!["-b", &good[0], &good[1], "-c", &good[1], e, "-r", r, "--allow-removed-stages"],
            vec!["-b", &good[0], "-c", e, "-r", r, "--paired"],
        ] {
            let (code, out, err) = run(&args);
            assert_eq!(code, 2, "{args:?}: {out}{err}");
            assert!(out.is_empty(), "no verdict on stdout: {out}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.starts_with(&format!("perf-gate: {e}: has no ticks")), "{err}");
            assert!(err.contains("compiled out") && err.contains("default-features = false"), "{err}");
            assert!(err.contains("did not run"), "{err}");
            assert!(!report.exists(), "no report on error");
        }
    }
}

/// Durations are printed with a unit chosen per value (ns, µs, ms, s; 3 significant digits),
/// on stdout and in the report alike. Before the fix stdout showed a 250 ns stage as
/// `0.000 -> 0.000 ms` and the report a 1.5 s stage as `1500.0 ms`.
#[test]
fn durations_are_shown_with_a_unit_per_value() {
    let d = dir("units");
    let write = |name: &str| {
        let n = |ns: u64| common::stage_from_ns(&[ns; 2000]);
        let (tiny, small, mid, big) = (n(250), n(12_345), n(20_000_000), n(1_500_000_000));
        let p = d.join(name);
        let stages = [("a_tiny", &tiny), ("b_small", &small), ("tick_total", &mid), ("z_big", &big)];
        std::fs::write(&p, common::profile_json(&stages, 2000, 0, 0)).unwrap();
        p.display().to_string()
    };
    let (b, c) = (write("b.json"), write("c.json"));
    let report = d.join("r.md");
    let (code, out, err) = run(&["-b", &b, "-c", &c, "-r", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("0.000 -> 0.000 ms"), "{out}");
    for want in [
        " p95 a_tiny: 250 ns -> 250 ns (",
        " p95 b_small: 12.3 µs -> 12.3 µs (",
        " p95 tick_total: 20.0 ms -> 20.0 ms (",
        " p95 z_big: 1.50 s -> 1.50 s (",
    ] {
        assert!(out.contains(want), "stdout lacks {want:?}: {out}");
    }
    let md = std::fs::read_to_string(&report).unwrap();
    for want in [
        "| `a_tiny` | 250 ns | 250 ns |",
        "| `b_small` | 12.3 µs | 12.3 µs |",
        "| `tick_total` | 20.0 ms | 20.0 ms |",
        "| `z_big` | 1.50 s | 1.50 s |",
    ] {
        assert!(md.contains(want), "report lacks {want:?}: {md}");
    }
}

#[test]
fn input_errors_are_one_line_exit_2_and_leave_no_report() {
    let d = dir("err");
    let good = write_runs(&d, "good", 1, 1.0, 9).remove(0);
    let text = std::fs::read_to_string(&good).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty.json", String::new(), "empty file"),
        ("notjson.json", "hello".into(), "not valid JSON"),
        ("v2.json", text.replace("\"schema_version\": 1", "\"schema_version\": 2"), "unsupported schema_version 2"),
        ("neg.json", text.replacen("\"sum_ms\": ", "\"sum_ms\": -", 1), "is negative"),
        ("other.json", "{\"schema\": \"x\"}".into(), "schema is \"x\""),
    ];
    let report = d.join("r.md");
    for (name, body, want) in cases {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        let (code, out, err) = run(&["-b", &good, "-c", p.to_str().unwrap(), "-r", report.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(err.starts_with(&format!("perf-gate: {}: ", p.display())), "{err}");
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!report.exists(), "no report on error");
    }
    let (code, _, err) = run(&["-b", &good, "-c", "/nonexistent/x.json"]);
    assert_eq!((code, err.as_str()), (2, "perf-gate: /nonexistent/x.json: file not found\n"));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for args in [
        &[][..],
        &["--baseline", "a.json"],
        &["--current"],
        &["-b", "a", "-c", "b", "--threshold-pct", "NaN"],
        &["-b", "a", "-c", "b", "--metric", "p42"],
        &["canary"],
        &["canary", "--prometheus", "http://x"],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(!err.is_empty());
    }
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for want in [
        "--baseline",
        "--current",
        "--report",
        "--threshold-pct",
        "--metric",
        "--paired",
        "--noise-pct",
        "Exit status",
        "canary",
    ] {
        assert!(out.contains(want), "help lacks {want}: {out}");
    }
    let (code, out, _) = run(&["canary", "--help"]);
    assert_eq!(code, 0);
    for want in [
        "--prometheus",
        "--canary-selector",
        "--window",
        "--max-p95-increase-pct",
        "--max-deadline-miss-pct",
        "--max-partial-fail-pct",
    ] {
        assert!(out.contains(want), "canary help lacks {want}");
    }
}

#[test]
fn canary_from_profiles() {
    let d = dir("canary");
    let mut rng = Rng::new(11);
    let base = common::lognormal_stage(&mut rng, 1000, 20.0, 0.2, 1.0);
    let slow = common::lognormal_stage(&mut rng, 1000, 20.0, 0.2, 1.3);
    let same = common::lognormal_stage(&mut rng, 1000, 20.0, 0.2, 1.0);
    let write = |name: &str, s: &perf_gate::profile::StageProfile, misses, fails| {
        let p = d.join(name);
        std::fs::write(&p, common::profile_json(&[("tick_total", s)], 1000, misses, fails)).unwrap();
        p.display().to_string()
    };
    let b = write("b.json", &base, 5, 5);
    let report = d.join("canary.md");
    let cases = [
        (write("slow.json", &slow, 0, 0), 1, "ROLLBACK: tick_total p95 increase"),
        (write("miss.json", &same, 30, 0), 1, "ROLLBACK: deadline-miss rate 3.00% > 2.00%"),
        (write("fail.json", &same, 0, 60), 1, "ROLLBACK: partial-fail rate 6.00% > 5.00%"),
        (write("ok.json", &same, 10, 10), 0, "PROMOTE: all three rules within limits"),
    ];
    for (c, want_code, want) in cases {
        let (code, out, err) = run(&["canary", "--baseline", &b, "--canary", &c, "--report", report.to_str().unwrap()]);
        assert_eq!(code, want_code, "{out}{err}");
        assert!(out.starts_with(want), "{out}");
        assert!(std::fs::read_to_string(&report).unwrap().contains(if want_code == 0 {
            "**PROMOTE**"
        } else {
            "**ROLLBACK**"
        }));
    }
    let (code, out, _) = run(&[
        "canary",
        "--baseline",
        &b,
        "--canary",
        &d.join("slow.json").display().to_string(),
        "--max-p95-increase-pct",
        "50",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = run(&[
        "canary",
        "--prometheus",
        "https://x:9090",
        "--canary-selector",
        "a=\"1\"",
        "--baseline-selector",
        "a=\"2\"",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("only http://"), "{err}");
}

/// Seeded fuzzing: mutate a valid profile (byte flips, truncation, value swaps) and feed random
/// argument vectors; every outcome must be an exit code, never a panic.
#[test]
fn fuzz_profiles_and_arguments_never_panic() {
    let d = dir("fuzz");
    let good = write_runs(&d, "g", 1, 1.0, 21).remove(0);
    let text = std::fs::read_to_string(&good).unwrap();
    let mut rng = Rng::new(0xf022);
    let tokens = [
        "null",
        "-1",
        "1e400",
        "0",
        "18446744073709551616",
        "\"x\"",
        "[]",
        "{}",
        "[1,2]",
        "[[1,0,1]]",
        "true",
        "-0.0",
        "1.5",
        "[[0,1,18446744073709551615],[1,2,1]]",
    ];
    let mut codes = [0usize; 3];
    for i in 0..400 {
        let mut bytes = text.clone().into_bytes();
        match i % 4 {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.below(256) as u8;
                }
            }
            1 => bytes.truncate(rng.below(bytes.len())),
            _ => {
                // Replace one JSON value after a random key with a hostile token.
                let s = String::from_utf8_lossy(&bytes).into_owned();
                let colons: Vec<usize> = s.match_indices(": ").map(|(i, _)| i + 2).collect();
                let at = colons[rng.below(colons.len())];
                let end = s[at..].find([',', '\n', '}']).map_or(s.len(), |e| at + e);
                let tok = tokens[rng.below(tokens.len())];
                bytes = format!("{}{}{}", &s[..at], tok, &s[end..]).into_bytes();
            }
        }
        let p = d.join("m.json");
        std::fs::write(&p, &bytes).unwrap();
        let parsed = perf_gate::profile::parse(&bytes, &p);
        let (code, _, err) = run(&["-b", &good, "-c", p.to_str().unwrap(), "-m", "p50,p95,p99", "--bootstrap", "200"]);
        assert!(code <= 2);
        // Exit 2 exactly when the file does not parse, or parses with no ticks (never a pass).
        assert_eq!(parsed.as_ref().map_or(true, |p| p.doc.ticks == 0), code == 2, "{err}");
        if code == 2 {
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        let (ccode, _, _) = run(&["canary", "--baseline", &good, "--canary", p.to_str().unwrap()]);
        assert!(ccode <= 2);
        codes[code as usize] += 1;
    }
    assert!(codes[2] > 100 && codes[0] + codes[1] > 10, "mutations should both break and keep profiles: {codes:?}");

    let words = [
        "--baseline",
        "--current",
        "-b",
        "-c",
        "--report",
        "--metric",
        "p95",
        "p50,p99",
        "--threshold-pct",
        "3",
        "-1",
        "nan",
        "--paired",
        "--noise-pct",
        "1e308",
        "--min-runs",
        "1",
        "--bootstrap",
        "200",
        "canary",
        "--canary",
        "--prometheus",
        "http://127.0.0.1:1",
        "--window",
        "0s",
        "5m",
        "--confidence-pct",
        "99.99",
        "--help-x",
        "",
        "--seed",
        "18446744073709551615",
    ];
    for _ in 0..500 {
        let mut args: Vec<String> = (0..rng.below(8)).map(|_| words[rng.below(words.len())].to_owned()).collect();
        if rng.below(2) == 0 {
            args.extend(["-b".into(), good.clone(), "-c".into(), good.clone()]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, _) = run(&argv);
        assert!(code <= 2, "{argv:?}");
    }
}

/// Two writers of one report path in one process (e.g. the demo bot running perf-gate
/// in-process from two threads): each report is replaced whole, never torn, and no write fails.
/// With a temporary name made of the pid alone the writers share one temporary file: one
/// rename moves the other's half-written file, or finds it gone.
#[test]
fn concurrent_reports_to_one_path_are_whole_and_never_fail() {
    let d = dir("race");
    let mut rng = Rng::new(17);
    let base = common::lognormal_stage(&mut rng, 1000, 20.0, 0.2, 1.0);
    let slow = common::lognormal_stage(&mut rng, 1000, 20.0, 0.2, 1.3);
    let write = |name: &str, s: &perf_gate::profile::StageProfile| {
        let p = d.join(name);
        std::fs::write(&p, common::profile_json(&[("tick_total", s)], 1000, 0, 0)).unwrap();
        p.display().to_string()
    };
    let (b, c) = (write("b.json", &base), write("slow.json", &slow));
    let report = d.join("out/canary.md");
    let r = report.to_str().unwrap();
    let argv = [
        ["canary", "--baseline", &b, "--canary", &c, "--report", r],
        ["canary", "--baseline", &c, "--canary", &b, "--report", r],
    ];
    let whole: Vec<String> = argv
        .iter()
        .map(|args| {
            run(args);
            std::fs::read_to_string(&report).unwrap()
        })
        .collect();
    assert_ne!(whole[0], whole[1]);
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = argv
            .iter()
            .map(|args| {
                s.spawn(|| {
                    let mut failures = Vec::new();
                    for _ in 0..300 {
                        let (code, out, err) = run(args);
                        if code == 2 {
                            failures.push(format!("exit 2: {out}{err}"));
                        }
                        match std::fs::read_to_string(&report) {
                            Ok(text) if whole.contains(&text) => {}
                            Ok(text) => failures.push(format!("torn report of {} bytes", text.len())),
                            Err(e) => failures.push(format!("cannot read the report: {e}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{} failures, first: {:?}", failures.len(), failures.first());
    let left: Vec<_> = std::fs::read_dir(report.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["canary.md"], "no temporary file left");
}

//! perf-gate on real `mm-bot` runs recorded on this repository's 2-core CI-class machine.
//!
//! `tests/data/` holds profiles recorded by `perf-gate/scripts/record-real-runs.sh` (sequential
//! mode, 120 ticks, `--time-scale 0.1`, every tick sampled, 10 windows per run; the `exchange`
//! section is stripped to keep the repository small, perf-gate does not read it):
//! `aa-<i>-a.json`/`aa-<i>-b.json` are A/A pairs (the same binary run back to back, a distinct
//! seed per run) and `slow-<i>.json` runs with every book fetch 30% slower
//! (`--slow-fetch-pct 30`: fetch_md +30%), recorded between the pairs.
//!
//! The checked-in test fails when a single-run verdict (one run per side, the noise estimated
//! within each run) is a false alarm on an A/A pair, or misses the +30% on fetch_md. The ignored
//! one computes the figures of docs/PERF_GATE.md from a full recording:
//!
//! ```text
//! cargo build --release --bin mm-bot
//! perf-gate/scripts/record-real-runs.sh artifacts/real-runs 50 20     # ~10 min
//! PERF_GATE_REAL_RUNS=artifacts/real-runs cargo test -p perf-gate --release --test real_runs -- --ignored --nocapture
//! ```

use std::path::{Path, PathBuf};

use perf_gate::compare::{Comparison, Metric, Noise, Settings, Verdict, compare};
use perf_gate::power::pairs_needed;
use perf_gate::profile::{Profile, load};
use perf_gate::stats::t_quantile;

const ALL: [Metric; 3] = [Metric::P50, Metric::P95, Metric::P99];

struct Runs {
    /// A/A pairs, in recording order.
    pairs: Vec<(Profile, Profile)>,
    /// fetch_md +30%, each recorded right after the pair of the same index.
    slow: Vec<Profile>,
}

fn read(dir: &Path) -> Runs {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    let get = |prefix: &str, suffix: &str| -> Vec<Profile> {
        names
            .iter()
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n.starts_with(prefix) && n.ends_with(suffix)
            })
            .map(|p| load(p).unwrap())
            .collect()
    };
    let (a, b) = (get("aa-", "-a.json"), get("aa-", "-b.json"));
    assert_eq!(a.len(), b.len(), "every A/A pair has both runs");
    Runs { pairs: a.into_iter().zip(b).collect(), slow: get("slow-", ".json") }
}

fn gate(baseline: &[&Profile], current: &[&Profile], metrics: &[Metric], settings: &Settings) -> Vec<Comparison> {
    let own = |ps: &[&Profile]| ps.iter().map(|p| (*p).clone()).collect::<Vec<_>>();
    compare(&own(baseline), &own(current), metrics, settings)
}

fn regressions(rows: &[Comparison]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.verdict == Verdict::Regression)
        .map(|r| {
            let (lo, hi) = r.interval.unwrap_or((1.0, 1.0));
            format!(
                "{} {} {:+.1}% ({:+.1}%..{:+.1}%)",
                r.stage,
                r.metric,
                (r.ratio.unwrap_or(1.0) - 1.0) * 100.0,
                (lo - 1.0) * 100.0,
                (hi - 1.0) * 100.0
            )
        })
        .collect()
}

fn fetch_md_p95(rows: &[Comparison]) -> &Comparison {
    rows.iter().find(|r| r.stage == "fetch_md" && r.metric == Metric::P95).unwrap()
}

/// Single runs per side: (A/A gates with a false alarm, both directions, every metric; +30%
/// runs whose fetch_md p95 was caught), with the noise estimated within each run.
fn single_runs(runs: &Runs, settings: &Settings, verbose: bool) -> (usize, usize, usize) {
    let mut alarms = 0;
    for (i, (a, b)) in runs.pairs.iter().enumerate() {
        for (x, y) in [(a, b), (b, a)] {
            let rows = gate(&[x], &[y], &ALL, settings);
            for r in rows.iter().filter(|r| r.interval.is_some()) {
                let within = matches!(r.noise, Some(Noise::WithinRun(_)));
                assert!(!settings.within_run || within, "{r:?}");
            }
            let bad = regressions(&rows);
            if !bad.is_empty() {
                alarms += 1;
                if verbose {
                    println!("  false alarm, pair {}: {}", i + 1, bad.join(", "));
                }
            }
        }
    }
    let mut caught = 0;
    for (i, slow) in runs.slow.iter().enumerate().take(runs.pairs.len()) {
        let rows = gate(&[&runs.pairs[i].0], &[slow], &[Metric::P95], settings);
        let row = fetch_md_p95(&rows);
        if row.verdict == Verdict::Regression {
            caught += 1;
        } else if verbose {
            println!("  missed +30%, run {}: {row:?}", i + 1);
        }
    }
    (alarms, 2 * runs.pairs.len(), caught)
}

#[test]
fn checked_in_real_runs_single_run_verdicts() {
    let runs = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"));
    assert!(runs.pairs.len() >= 10 && runs.slow.len() >= 5, "{} pairs, {} slow", runs.pairs.len(), runs.slow.len());
    let (alarms, gates, caught) = single_runs(&runs, &Settings::default(), true);
    assert_eq!(alarms, 0, "A/A false alarms from one run per side ({gates} gates)");
    assert_eq!(caught, runs.slow.len(), "fetch_md +30% must be caught from one run per side");

    // Without windows, one run per side stays undecided: never a pass, never a false alarm.
    let assumed = Settings { within_run: false, ..Settings::default() };
    let rows = gate(&[&runs.pairs[0].0], &[&runs.slow[0]], &[Metric::P95], &assumed);
    assert_eq!(fetch_md_p95(&rows).noise, Some(Noise::Assumed(0.20)));
    assert_eq!(fetch_md_p95(&rows).verdict, Verdict::Inconclusive);

    // Five runs of main and one run of the PR: the noise measured on main is used for both.
    let main: Vec<&Profile> = runs.pairs.iter().take(5).map(|p| &p.0).collect();
    let off = Settings { within_run: false, ..Settings::default() };
    for (_, b) in runs.pairs.iter().skip(5) {
        let rows = gate(&main, &[b], &ALL, &off);
        assert!(regressions(&rows).is_empty(), "{:?}", regressions(&rows));
    }
    let mut caught = 0;
    for slow in runs.slow.iter() {
        let rows = gate(&main, &[slow], &[Metric::P95], &off);
        let row = fetch_md_p95(&rows);
        assert!(matches!(row.noise, Some(Noise::Borrowed { .. })), "{row:?}");
        assert_ne!(row.verdict, Verdict::Ok, "a +30% is never ruled out: {row:?}");
        caught += usize::from(row.verdict == Verdict::Regression);
    }
    // Five runs measure the noise with 4 degrees of freedom (t = 4.6 at 99%): wider than the
    // within-run figure, so not every +30% is decided (16/20 on the full recording).
    assert!(caught * 2 >= runs.slow.len(), "5 + 1 runs caught {caught}/{} of the +30%", runs.slow.len());
}

fn sd(xs: &[f64]) -> f64 {
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// The figures of docs/PERF_GATE.md ("Measured on real runs").
#[test]
#[ignore = "needs a recording: see the module docs"]
fn recorded_real_runs_figures() {
    let dir = std::env::var_os("PERF_GATE_REAL_RUNS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts/real-runs"));
    let runs = read(&dir);
    let s = Settings::default();
    println!("{}: {} A/A pairs, {} runs with fetch_md +30%", dir.display(), runs.pairs.len(), runs.slow.len());

    let (alarms, gates, caught) = single_runs(&runs, &s, true);
    println!(
        "one run per side, within-run noise: A/A gates with a false alarm {alarms}/{gates} (p50, p95, p99, every \
         stage); fetch_md +30% caught {caught}/{}",
        runs.slow.len()
    );
    let (alarms_off, _, caught_off) = single_runs(&runs, &Settings { within_run: false, ..s.clone() }, false);
    println!(
        "one run per side, assumed 20%:       A/A false alarms {alarms_off}/{gates}; fetch_md +30% caught {caught_off}/{}",
        runs.slow.len()
    );

    // N runs of main + one run of the PR (noise measured on main, used for both sides).
    let off = Settings { within_run: false, ..s.clone() };
    let main: Vec<&Profile> = runs.pairs.iter().take(5).map(|p| &p.0).collect();
    let aa = runs.pairs.iter().skip(5).filter(|(_, b)| !regressions(&gate(&main, &[b], &ALL, &off)).is_empty()).count();
    let hit = runs
        .slow
        .iter()
        .filter(|c| fetch_md_p95(&gate(&main, &[c], &[Metric::P95], &off)).verdict == Verdict::Regression)
        .count();
    println!(
        "5 runs of main + 1 run of the PR:    A/A false alarms {aa}/{}; fetch_md +30% caught {hit}/{}",
        runs.pairs.len() - 5,
        runs.slow.len()
    );

    // Noise per stage (p95): between runs, between the two runs of an interleaved pair, within a run.
    let stages = ["emit", "fetch_md", "guards", "spread", "tick_total"];
    let q95 = |p: &Profile, st: &str| p.doc.stages[st].quantile_ms(0.95).ln();
    let t = t_quantile(0.995, runs.pairs.len() as f64 - 1.0);
    println!("\n| stage (p95) | run-to-run sd | per-pair sd | within-run | pairs for +5% | +10% | +20% | +30% |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    let mut pair_sds = Vec::new();
    for st in stages {
        let all: Vec<f64> = runs.pairs.iter().flat_map(|(a, b)| [q95(a, st), q95(b, st)]).collect();
        let diffs: Vec<f64> = runs.pairs.iter().map(|(a, b)| q95(b, st) - q95(a, st)).collect();
        let pair_sd = sd(&diffs);
        pair_sds.push((st, pair_sd));
        let within: Vec<f64> = runs
            .pairs
            .iter()
            .map(|(a, b)| {
                let rows = gate(&[a], &[b], &[Metric::P95], &s);
                rows.iter().find(|r| r.stage == st).and_then(|r| r.noise).map_or(f64::NAN, |n| n.value())
            })
            .collect();
        let within_mean = within.iter().sum::<f64>() / within.len() as f64;
        let theta = s.threshold.ln_1p();
        let need = |delta: f64| {
            let margin = delta.ln_1p() - theta;
            let n = ((t + 1.645) * pair_sd / margin).powi(2).ceil() as usize;
            n.max(3)
        };
        println!(
            "| `{st}` | {:.1}% | {:.1}% | {:.1}% | {} | {} | {} | {} |",
            sd(&all) * 100.0,
            pair_sd * 100.0,
            within_mean * 100.0,
            need(0.05),
            need(0.10),
            need(0.20),
            need(0.30)
        );
    }
    println!(
        "\n(pairs ≈ ((t(0.995, n−1) + 1.645) · per-pair sd / (ln(1+Δ) − ln 1.03))²: Δ caught with 95% probability at 99% confidence)"
    );
    for (st, pair_sd) in pair_sds {
        println!(
            "{st}: ~{} interleaved pairs decide 3% (ok for no change, regression for +6%)",
            pairs_needed(pair_sd, s.threshold, s.confidence)
        );
    }
    assert_eq!(alarms, 0, "single-run A/A false alarms on real runs");
    assert_eq!(caught, runs.slow.len(), "fetch_md +30% missed from one run per side");
}

//! Accuracy of the verdict on seeded synthetic profiles: false alarms on A/A comparisons and
//! detection of a true +10% p95 regression, under run-to-run machine noise.
//!
//! Tick times are log-normal (median 20 ms, sigma 0.4, so p95 ≈ 38.6 ms). Every run is
//! multiplied by a machine factor exp(0.2 · Z) — "20% run-to-run noise": two identical runs
//! differ by 28% (one sd) and 2x apart happens. The regression multiplies every current sample
//! by 1.10. The gate runs with its defaults (threshold 3%, 95% intervals, 2000 iterations).
//!
//! Scenarios (printed as a table; the figures are in docs/PERF_GATE.md):
//! - `interleaved`: the CI recipe. Baseline run i and current run i run back to back on the same
//!   machine (`--paired`), so they share the machine factor; each run also has its own
//!   independent jitter exp(0.05 · Z). 40 pairs × 2000 ticks.
//! - `independent`: 10 runs per side, every run its own 20% machine factor, not paired.
//!   Detecting +10% under 20% independent noise needs ~250 runs per side (see the docs), so
//!   here only the false-alarm rate is asserted; the detection rate is printed.
//! - `single`: one run per side; run-to-run noise assumed (`--noise-pct 20`).
//! - `quiet`: 5 runs per side, independent 3% noise (a dedicated benchmark machine).

mod common;

use perf_gate::compare::{Metric, Settings, Verdict, compare_stage};
use perf_gate::profile::StageProfile;
use perf_gate::stats::Rng;

const TRIALS: usize = 200;
const MEDIAN_MS: f64 = 20.0;
const SIGMA: f64 = 0.4;

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    runs: usize,
    ticks: usize,
    /// Machine factor sd (log scale) per run, shared by the two runs of a pair when `paired`.
    machine: f64,
    /// Independent per-run jitter sd (log scale).
    jitter: f64,
    paired: bool,
}

fn trial(sc: Scenario, ratio: f64, seed: u64) -> Verdict {
    let mut rng = Rng::new(seed);
    let mut base = Vec::with_capacity(sc.runs);
    let mut cur = Vec::with_capacity(sc.runs);
    for _ in 0..sc.runs {
        let shared = (sc.machine * rng.normal()).exp();
        let fb = if sc.paired { shared } else { (sc.machine * rng.normal()).exp() };
        let fc = if sc.paired { shared } else { (sc.machine * rng.normal()).exp() };
        let jb = (sc.jitter * rng.normal()).exp();
        let jc = (sc.jitter * rng.normal()).exp();
        base.push(common::lognormal_stage(&mut rng, sc.ticks, MEDIAN_MS, SIGMA, fb * jb));
        cur.push(common::lognormal_stage(&mut rng, sc.ticks, MEDIAN_MS, SIGMA, fc * jc * ratio));
    }
    let b: Vec<Option<&StageProfile>> = base.iter().map(Some).collect();
    let c: Vec<Option<&StageProfile>> = cur.iter().map(Some).collect();
    let settings = Settings { paired: sc.paired, seed: seed ^ 0xabcdef, ..Settings::default() };
    compare_stage("tick_total", &b, &c, Metric::P95, &settings).verdict
}

/// (regressions, inconclusive) over `TRIALS` trials, on all cores.
fn rates(sc: Scenario, ratio: f64, seed: u64) -> (usize, usize) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
    let verdicts: Vec<Verdict> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..TRIALS)
                        .step_by(threads)
                        .map(|i| trial(sc, ratio, seed.wrapping_mul(1_000_003).wrapping_add(i as u64)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    (
        verdicts.iter().filter(|v| **v == Verdict::Regression).count(),
        verdicts.iter().filter(|v| **v == Verdict::Inconclusive).count(),
    )
}

struct Measured {
    false_alarms: usize,
    detected: usize,
}

fn measure(sc: Scenario, seed: u64) -> Measured {
    let (false_alarms, aa_inconclusive) = rates(sc, 1.0, seed);
    let (detected, reg_inconclusive) = rates(sc, 1.10, seed + 1);
    println!(
        "{:<12} {:>2} runs/side x {:>4} ticks, machine noise {:>2.0}%{} jitter {:>2.0}% | A/A false alarms {:>3}/{TRIALS} ({:.1}%), inconclusive {:>3} | +10% detected {:>3}/{TRIALS} ({:.1}%), inconclusive {:>3}",
        sc.name,
        sc.runs,
        sc.ticks,
        sc.machine * 100.0,
        if sc.paired { " (shared by pair)" } else { "" },
        sc.jitter * 100.0,
        false_alarms,
        false_alarms as f64 * 100.0 / TRIALS as f64,
        aa_inconclusive,
        detected,
        detected as f64 * 100.0 / TRIALS as f64,
        reg_inconclusive,
    );
    Measured { false_alarms, detected }
}

#[test]
fn interleaved_runs_meet_the_accuracy_targets() {
    let sc = Scenario { name: "interleaved", runs: 40, ticks: 2000, machine: 0.20, jitter: 0.05, paired: true };
    let m = measure(sc, 1);
    assert_eq!(m.false_alarms, 0, "A/A comparisons must never report a regression");
    assert!(m.detected * 100 >= 95 * TRIALS, "a true +10% p95 regression must be caught in >= 95% of trials");
}

#[test]
fn independent_noisy_runs_never_cry_wolf() {
    let sc = Scenario { name: "independent", runs: 10, ticks: 2000, machine: 0.20, jitter: 0.0, paired: false };
    let m = measure(sc, 2);
    assert!(m.false_alarms * 100 <= TRIALS, "{} false alarms", m.false_alarms);
    // Not a target: 20% independent noise hides +10% at 10 runs. Documented, and checked
    // here so the docs stay true if the method changes.
    assert!(m.detected * 100 <= 50 * TRIALS, "detection {} unexpectedly high: update docs/PERF_GATE.md", m.detected);
}

#[test]
fn single_runs_rarely_cry_wolf() {
    let sc = Scenario { name: "single", runs: 1, ticks: 2000, machine: 0.20, jitter: 0.0, paired: false };
    let m = measure(sc, 3);
    assert!(m.false_alarms * 100 <= 2 * TRIALS, "{} false alarms with one run per side", m.false_alarms);
}

#[test]
fn quiet_machines_need_few_runs() {
    let sc = Scenario { name: "quiet", runs: 15, ticks: 2000, machine: 0.03, jitter: 0.0, paired: false };
    let m = measure(sc, 4);
    assert_eq!(m.false_alarms, 0);
    assert!(m.detected * 100 >= 95 * TRIALS, "{} detected", m.detected);
}

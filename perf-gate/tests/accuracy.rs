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
//!
//! New modes (issue 18), each counted over 200 A/A trials and 200 trials of a true +30%:
//! - `one-sided`: 10 baseline runs (e.g. main's history) and 1 current run, 3% noise per run:
//!   the noise measured on the baseline runs is used for the current run too.
//! - `within-run`: one run per side of 2000 ticks recorded in 10 windows; the machine drifts
//!   within each run (5% per window) and adds 1% constant for a run; the noise is estimated
//!   from the windows.
//! - `within-run, constant machine noise`: the same with 5% of run-level noise the windows
//!   cannot see (printed, the limit documented in docs/PERF_GATE.md).

mod common;

use perf_gate::compare::{Metric, Noise, RunInput, Settings, Verdict, compare_runs, compare_stage};
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

/// A run of `ticks` ticks in `windows` windows: its stage and the p95 of each window. Every
/// window has its own drift factor `exp(drift · Z)` on top of `factor`.
fn windowed_run(rng: &mut Rng, ticks: usize, windows: usize, drift: f64, factor: f64) -> (StageProfile, Vec<f64>) {
    let per = ticks / windows;
    let mut run: Option<StageProfile> = None;
    let mut qs = Vec::with_capacity(windows);
    for _ in 0..windows {
        let f = factor * (drift * rng.normal()).exp();
        let w = common::lognormal_stage(rng, per, MEDIAN_MS, SIGMA, f);
        qs.push(w.quantile_ms(0.95));
        match &mut run {
            Some(r) => r.merge(&w),
            None => run = Some(w),
        }
    }
    (run.unwrap(), qs)
}

#[derive(Clone, Copy)]
enum Mode {
    /// `base_runs` baseline runs and one current run, `machine` noise per run, no windows.
    OneSided { base_runs: usize, machine: f64 },
    /// One run per side in 10 windows: `drift` per window, `constant` per run.
    WithinRun { drift: f64, constant: f64 },
}

fn mode_trial(mode: Mode, ratio: f64, seed: u64) -> (Verdict, Noise) {
    let mut rng = Rng::new(seed);
    let settings = Settings { seed: seed ^ 0x5eed, ..Settings::default() };
    let row = match mode {
        Mode::OneSided { base_runs, machine } => {
            let mut run = |f: f64| {
                let m = (machine * rng.normal()).exp();
                common::lognormal_stage(&mut rng, 2000, MEDIAN_MS, SIGMA, m * f)
            };
            let base: Vec<StageProfile> = (0..base_runs).map(|_| run(1.0)).collect();
            let cur = run(ratio);
            let b: Vec<Option<&StageProfile>> = base.iter().map(Some).collect();
            compare_stage("tick_total", &b, &[Some(&cur)], Metric::P95, &settings)
        }
        Mode::WithinRun { drift, constant } => {
            let mut run = |f: f64| {
                let c = (constant * rng.normal()).exp();
                windowed_run(&mut rng, 2000, 10, drift, c * f)
            };
            let (b, bw) = run(1.0);
            let (c, cw) = run(ratio);
            let b = [Some(RunInput { stage: &b, windows: &bw })];
            let c = [Some(RunInput { stage: &c, windows: &cw })];
            compare_runs("tick_total", &b, &c, Metric::P95, &settings)
        }
    };
    (row.verdict, row.noise.unwrap())
}

/// (regressions, noise kinds seen) over `TRIALS` trials of `mode` at `ratio`.
fn mode_rates(name: &str, mode: Mode, ratio: f64, seed: u64) -> usize {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
    let results: Vec<(Verdict, Noise)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..TRIALS)
                        .step_by(threads)
                        .map(|i| mode_trial(mode, ratio, seed.wrapping_mul(1_000_003).wrapping_add(i as u64)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let regressions = results.iter().filter(|r| r.0 == Verdict::Regression).count();
    let inconclusive = results.iter().filter(|r| r.0 == Verdict::Inconclusive).count();
    println!(
        "{name:<36} true change {:>+4.0}% | regressions {regressions:>3}/{TRIALS}, inconclusive {inconclusive:>3} | noise e.g. {:?}",
        (ratio - 1.0) * 100.0,
        results[0].1
    );
    regressions
}

#[test]
fn one_sided_runs_use_the_noise_the_other_side_measured() {
    let mode = Mode::OneSided { base_runs: 10, machine: 0.03 };
    let (verdict, noise) = mode_trial(mode, 1.0, 9);
    assert!(matches!(noise, Noise::Borrowed { from: perf_gate::compare::Side::Baseline, .. }), "{noise:?}");
    assert_ne!(verdict, Verdict::Regression);
    assert_eq!(mode_rates("one-sided (10 runs + 1 run)", mode, 1.0, 5), 0, "A/A false alarms");
    let caught = mode_rates("one-sided (10 runs + 1 run)", mode, 1.30, 6);
    assert!(caught * 100 >= 95 * TRIALS, "+30% caught {caught}/{TRIALS}");
}

#[test]
fn within_run_noise_decides_large_changes_from_one_run_per_side() {
    let mode = Mode::WithinRun { drift: 0.05, constant: 0.01 };
    assert!(matches!(mode_trial(mode, 1.0, 9).1, Noise::WithinRun(_)));
    assert_eq!(mode_rates("within-run (1 run a side, 10 windows)", mode, 1.0, 7), 0, "A/A false alarms");
    let caught = mode_rates("within-run (1 run a side, 10 windows)", mode, 1.30, 8);
    assert!(caught * 100 >= 95 * TRIALS, "+30% caught {caught}/{TRIALS}");
}

#[test]
fn within_run_noise_cannot_see_noise_constant_through_a_run() {
    // 5% of noise that stays the same for a whole run: the windows do not show it, so the
    // interval is too narrow for it. Documented (docs/PERF_GATE.md); checked so the docs stay true.
    let mode = Mode::WithinRun { drift: 0.02, constant: 0.05 };
    let alarms = mode_rates("within-run, 5% constant per run", mode, 1.0, 9);
    assert!(alarms > 0 && alarms * 100 <= 20 * TRIALS, "{alarms} false alarms: update docs/PERF_GATE.md");
}

//! Noise-aware verdicts: is a stage's quantile higher in the current runs than in the baseline
//! runs by more than the threshold, with confidence?
//!
//! The quantity compared is the ratio of the geometric means of the per-run quantiles
//! (current / baseline). Its confidence interval comes from a hierarchical bootstrap:
//!
//! 1. **Runs** (between-run, i.e. machine noise): with at least `min_runs` runs on a side the runs
//!    are resampled with replacement and the spread is widened by `sqrt(R/(R-1))` and by the
//!    Student t / normal quantile ratio for the Welch degrees of freedom, so that 3 to 10 runs
//!    give honest (not over-confident) intervals. With fewer runs a log-normal noise is added
//!    instead: the noise the other side measured from its runs, when it has `min_runs`
//!    ([`Noise::Borrowed`]); else the spread of the quantile between the windows of each run,
//!    when the profiles record windows ([`Noise::WithinRun`]); else the assumed `noise`
//!    ([`Noise::Assumed`]).
//! 2. **Samples** (within-run): the quantile of each chosen run is redrawn from its own histogram:
//!    the k-th order statistic of n samples has a Beta(k, n+1-k) position in the CDF, which is
//!    mapped through the run's bucket CDF (linear within a bucket). No samples are expanded.
//!
//! With `paired`, baseline run i and current run i are taken as run back to back on the same
//! machine; pairs are resampled together, so noise shared by the two runs of a pair cancels.
//!
//! The verdict compares the whole interval with `1 ± threshold` (as cargo-criterion's
//! `compare_to_threshold`): above → regression, below → improvement, inside → ok, and an
//! interval that reaches above `1 + threshold` without lying wholly above it → inconclusive.
//! Each row also says what its data could see ([`Power`]) and whether the quantile sits between
//! two clusters of samples ([`crate::shape::Bimodal`]).
//!
//! A stage the baseline runs measured but no current run recorded is *missing in current* and
//! fails the gate like a regression (a stage that silently stopped being measured is never a
//! pass), unless [`Settings::allow_removed_stages`] says the removal is intended; a stage only
//! the current runs have is *new*, shown for information.

use std::collections::BTreeSet;
use std::fmt;

use crate::profile::{Profile, StageProfile};
use crate::stats::{Rng, normal_quantile, sorted_quantile, t_quantile};

/// A quantile a gate can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Metric {
    /// The median.
    P50,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
}

impl Metric {
    /// The quantile as a fraction (0.95 for p95).
    pub fn quantile(self) -> f64 {
        match self {
            Metric::P50 => 0.50,
            Metric::P95 => 0.95,
            Metric::P99 => 0.99,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::P50 => "p50",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
        })
    }
}

/// How a comparison is made.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Relative change that matters, as a fraction (0.03 = 3%).
    pub threshold: f64,
    /// Confidence level of the interval, as a fraction (0.95).
    pub confidence: f64,
    /// Assumed run-to-run noise (one log-normal standard deviation, as a fraction: 0.20 = 20%)
    /// for sides with fewer than `min_runs` runs.
    pub noise: f64,
    /// Runs per side from which run-to-run noise is estimated from the data.
    pub min_runs: usize,
    /// Bootstrap iterations.
    pub iterations: usize,
    /// Seed of the bootstrap; the same inputs and seed give the same intervals.
    pub seed: u64,
    /// Baseline run i and current run i ran back to back on the same machine.
    pub paired: bool,
    /// A stage in the baseline with no samples in any current run is [`Verdict::Removed`]
    /// (informational) instead of [`Verdict::Missing`] (fails the gate).
    pub allow_removed_stages: bool,
    /// A side with fewer than `min_runs` runs takes its run-to-run noise from the windows its
    /// profiles record (how much each quantile wanders inside a run), when they have at least
    /// [`MIN_WINDOWS`] windows with the stage, instead of the assumed `noise`.
    pub within_run: bool,
    /// Quantiles below this many ms take the windows' spread whole as a run's noise (and at
    /// least `noise`), not scaled to the run: there, run-to-run noise that stays the same
    /// through a run (timer wake-ups, caches, CPU frequency) dominates, and one run cannot see
    /// it (measured on real runs: docs/PERF_GATE.md).
    pub within_run_min_ms: f64,
}

/// Windows a run needs for its within-run noise to be used.
pub const MIN_WINDOWS: usize = 5;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threshold: 0.03,
            confidence: 0.99,
            noise: 0.20,
            min_runs: 3,
            iterations: 2000,
            seed: 0x6d6d_2d74_7261_6365,
            paired: false,
            allow_removed_stages: false,
            within_run: true,
            within_run_min_ms: 1.0,
        }
    }
}

/// The outcome for one stage and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The whole interval lies above `1 + threshold`.
    Regression,
    /// Samples in the baseline runs, none in any current run (absent, or present with a count
    /// of 0), and [`Settings::allow_removed_stages`] not set: fails the gate.
    Missing,
    /// The interval reaches above `1 + threshold` but does not lie wholly above it.
    Inconclusive,
    /// The whole interval lies below `1 - threshold`.
    Improvement,
    /// The interval excludes a rise past the threshold.
    Ok,
    /// Only in the current runs.
    New,
    /// Only in the baseline runs, and [`Settings::allow_removed_stages`] set.
    Removed,
}

impl Verdict {
    /// Whether this verdict fails the gate (exit 1): a regression or a stage missing in current.
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Regression | Verdict::Missing)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Regression => "regression",
            Verdict::Missing => "missing in current",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Improvement => "improvement",
            Verdict::Ok => "ok",
            Verdict::New => "new",
            Verdict::Removed => "removed",
        })
    }
}

/// Where the run-to-run noise of an interval came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    /// Estimated from the runs: the standard deviation of the log per-run quantile (per side,
    /// the larger of the two; for paired runs, of the log per-pair ratio).
    Estimated(f64),
    /// One side had enough runs to measure it, the other did not: the figure measured on
    /// `from` (the standard deviation of its log per-run quantile) was used for both sides.
    Borrowed {
        /// The side it was measured on.
        from: Side,
        /// The figure.
        noise: f64,
    },
    /// Too few runs on a side, but its profiles record windows: the run-to-run noise of that
    /// side was estimated from how much the quantile wanders between windows of one run
    /// (standard deviation of the log window quantiles over the square root of the windows).
    WithinRun(f64),
    /// Too few runs: the assumed `Settings::noise` was used.
    Assumed(f64),
}

impl Noise {
    /// The figure, as a fraction.
    pub fn value(self) -> f64 {
        match self {
            Noise::Estimated(x) | Noise::WithinRun(x) | Noise::Assumed(x) | Noise::Borrowed { noise: x, .. } => x,
        }
    }
}

/// A side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The baseline runs.
    Baseline,
    /// The current runs.
    Current,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Baseline => "baseline",
            Side::Current => "current",
        })
    }
}

/// What the data of one row could see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Power {
    /// The smallest rise (current/baseline) that, measured, would have been a regression with
    /// this data: `(1 + threshold) · (center / lower end of the interval)`.
    pub detectable: f64,
    /// The run-to-run noise of the per-pair log ratio that interleaved pairs would see (measured
    /// with `--paired`; otherwise √2 times the per-run noise, sampling included: an upper bound,
    /// since pairs cancel the noise their two runs share).
    pub pair_sd: f64,
    /// Interleaved pairs that decide the threshold with 95% probability: a stage that did not
    /// change comes out ok, and one that rose by twice the threshold comes out a regression.
    pub pairs_needed: usize,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Stage name.
    pub stage: String,
    /// Compared quantile.
    pub metric: Metric,
    /// Geometric mean of the baseline runs' quantile, ms.
    pub baseline_ms: Option<f64>,
    /// Geometric mean of the current runs' quantile, ms.
    pub current_ms: Option<f64>,
    /// current / baseline.
    pub ratio: Option<f64>,
    /// Confidence interval of the ratio.
    pub interval: Option<(f64, f64)>,
    /// Runs that have the stage: (baseline, current).
    pub runs: (usize, usize),
    /// Run-to-run noise used for the interval.
    pub noise: Option<Noise>,
    /// The runs were compared as interleaved pairs (`--paired` with at least `--min-runs` pairs).
    pub paired: bool,
    /// What this data could see (with an interval).
    pub power: Option<Power>,
    /// The quantile falls between two clusters of samples (see [`crate::shape::Bimodal`]).
    pub bimodal: Option<crate::shape::Bimodal>,
    /// The decision.
    pub verdict: Verdict,
}

/// One run of a stage: its histogram and the stage's quantile in each window of the run
/// (empty when the profile records no windows).
#[derive(Debug, Clone, Copy)]
pub struct RunInput<'a> {
    /// The run's stage.
    pub stage: &'a StageProfile,
    /// The compared quantile in each window of the run, ms.
    pub windows: &'a [f64],
}

/// A run's quantile: its point estimate and a pool of bootstrap draws of it.
struct Run {
    /// Point estimate of the quantile (the runtime's rule, [`StageProfile::quantile_ms`]), ms.
    point_ms: f64,
    /// log of draws of the quantile from the run's own sampling distribution.
    pool: Vec<f64>,
    /// log of the quantile in each window of the run (windows with a positive quantile).
    windows: Vec<f64>,
}

impl Run {
    /// Prepares `draws` within-run draws: the k-th order statistic of n samples sits at a
    /// Beta(k, n+1-k) position of the CDF, mapped through the bucket CDF (linear in a bucket).
    fn new(stage: &StageProfile, q: f64, draws: usize, rng: &mut Rng) -> Option<Run> {
        let point_ms = stage.quantile_ms(q);
        if stage.count == 0 || point_ms <= 0.0 {
            return None;
        }
        let mut cum = Vec::with_capacity(stage.buckets.len());
        let mut total = 0.0;
        for b in &stage.buckets {
            total += b.count as f64;
            cum.push(total);
        }
        let n = stage.count as f64;
        let k = (q * n).ceil().clamp(1.0, n);
        let pool = (0..draws)
            .map(|_| {
                let u = if n <= 1.0 { rng.uniform() } else { rng.beta(k, n + 1.0 - k) };
                let x = u * n;
                let i = cum.partition_point(|&c| c < x).min(cum.len() - 1);
                let before = if i == 0 { 0.0 } else { cum[i - 1] };
                let frac = ((x - before) / (cum[i] - before)).clamp(0.0, 1.0);
                let b = &stage.buckets[i];
                let ms = (b.lower_ns as f64 + frac * (b.upper_ns - b.lower_ns) as f64) / 1e6;
                // A value of exactly 0 ns (the first linear bucket) would give log(0).
                ms.max(1e-7).ln()
            })
            .collect();
        Some(Run { point_ms, pool, windows: Vec::new() })
    }

    /// Variance of the log quantile from sampling alone (the pool's).
    fn sampling_var(&self) -> f64 {
        let m = mean(self.pool.iter().copied());
        mean(self.pool.iter().map(|x| (x - m).powi(2)))
    }

    /// log of one bootstrap draw of this run's quantile.
    fn draw_log(&self, rng: &mut Rng) -> f64 {
        self.pool[rng.below(self.pool.len())]
    }
}

/// Compares every stage of `baseline` against `current` for each metric. Stages are ordered
/// by name, metrics as given.
pub fn compare(baseline: &[Profile], current: &[Profile], metrics: &[Metric], settings: &Settings) -> Vec<Comparison> {
    let names: BTreeSet<&String> = baseline.iter().chain(current).flat_map(|p| p.doc.stages.keys()).collect();
    let mut out = Vec::new();
    for &metric in metrics {
        for name in &names {
            let (bw, cw) = (windows(baseline, name, metric), windows(current, name, metric));
            let (b, c) = (stage_runs(baseline, name, &bw), stage_runs(current, name, &cw));
            out.push(compare_runs(name, &b, &c, metric, settings));
        }
    }
    out
}

/// Per run, the stage's `metric` in each window that has at least 2 samples of it.
fn windows(profiles: &[Profile], name: &str, metric: Metric) -> Vec<Vec<f64>> {
    profiles
        .iter()
        .map(|p| {
            p.doc
                .windows
                .iter()
                .filter_map(|w| w.stages.get(name).filter(|s| s.count >= 2))
                .map(|s| match metric {
                    Metric::P50 => s.p50_ms,
                    Metric::P95 => s.p95_ms,
                    Metric::P99 => s.p99_ms,
                })
                .collect()
        })
        .collect()
}

fn stage_runs<'a>(profiles: &'a [Profile], name: &str, windows: &'a [Vec<f64>]) -> Vec<Option<RunInput<'a>>> {
    profiles
        .iter()
        .zip(windows)
        .map(|(p, w)| p.doc.stages.get(name).filter(|s| s.count > 0).map(|stage| RunInput { stage, windows: w }))
        .collect()
}

/// Compares one stage; `None` entries are runs that do not have it. In paired mode entry i of
/// each side belongs to pair i. The runs carry no windows: see [`compare_runs`].
pub fn compare_stage(
    name: &str,
    baseline: &[Option<&StageProfile>],
    current: &[Option<&StageProfile>],
    metric: Metric,
    settings: &Settings,
) -> Comparison {
    fn wrap<'a>(side: &[Option<&'a StageProfile>]) -> Vec<Option<RunInput<'a>>> {
        side.iter().map(|s| s.map(|stage| RunInput { stage, windows: &[] })).collect()
    }
    compare_runs(name, &wrap(baseline), &wrap(current), metric, settings)
}

/// Compares one stage from runs that may carry their window quantiles; `None` entries are runs
/// that do not have the stage. In paired mode entry i of each side belongs to pair i.
pub fn compare_runs(
    name: &str,
    baseline: &[Option<RunInput<'_>>],
    current: &[Option<RunInput<'_>>],
    metric: Metric,
    settings: &Settings,
) -> Comparison {
    let q = metric.quantile();
    let mut rng = Rng::new(settings.seed ^ fnv(name) ^ (metric as u64).wrapping_mul(0x9E37_79B9));
    let mut prep = |side: &[Option<RunInput<'_>>]| -> Vec<Option<Run>> {
        // Each run is drawn about 4 * iterations / runs times; a pool of that size (at least 64)
        // represents its sampling distribution without a Beta draw per use.
        let runs = side.iter().flatten().count().max(1);
        let draws = (4 * settings.iterations / runs).clamp(64, settings.iterations.max(64));
        side.iter()
            .map(|s| {
                let s = s.as_ref()?;
                let mut run = Run::new(s.stage, q, draws, &mut rng)?;
                run.windows = s.windows.iter().filter(|&&w| w > 0.0).map(|w| w.ln()).collect();
                Some(run)
            })
            .collect()
    };
    let (b_all, c_all) = (prep(baseline), prep(current));
    let b: Vec<&Run> = b_all.iter().flatten().collect();
    let c: Vec<&Run> = c_all.iter().flatten().collect();
    let gmean = |runs: &[&Run]| (!runs.is_empty()).then(|| mean(runs.iter().map(|r| r.point_ms.ln())).exp());
    let mut row = Comparison {
        stage: name.to_owned(),
        metric,
        baseline_ms: gmean(&b),
        current_ms: gmean(&c),
        ratio: None,
        interval: None,
        runs: (b.len(), c.len()),
        noise: None,
        paired: false,
        power: None,
        bimodal: crate::shape::bimodal(baseline.iter().chain(current).flatten().map(|r| (r.stage, r.windows.len())), q),
        verdict: Verdict::Ok,
    };
    match (b.is_empty(), c.is_empty()) {
        (true, true) => return row,
        (true, false) => {
            row.verdict = Verdict::New;
            return row;
        }
        (false, true) => {
            row.verdict = if settings.allow_removed_stages { Verdict::Removed } else { Verdict::Missing };
            return row;
        }
        (false, false) => {}
    }
    let center = (row.current_ms.unwrap_or(1.0) / row.baseline_ms.unwrap_or(1.0)).ln();
    let pairs: Vec<(&Run, &Run)> =
        b_all.iter().zip(&c_all).filter_map(|(x, y)| Some((x.as_ref()?, y.as_ref()?))).collect();
    row.paired = settings.paired && pairs.len() >= settings.min_runs.max(2);
    let (dev, df, noise, run_sd) =
        if row.paired { paired(&pairs, settings, &mut rng) } else { unpaired(&b, &c, settings, &mut rng) };
    let alpha = 1.0 - settings.confidence;
    let widen = t_quantile(1.0 - alpha / 2.0, df) / normal_quantile(1.0 - alpha / 2.0);
    let lo = (center + widen * sorted_quantile(&dev, alpha / 2.0)).exp();
    let hi = (center + widen * sorted_quantile(&dev, 1.0 - alpha / 2.0)).exp();
    row.ratio = Some(center.exp());
    row.interval = Some((lo, hi));
    row.noise = Some(noise);
    row.verdict = verdict((lo, hi), settings.threshold);
    let pair_sd = if row.paired { noise.value().ln_1p() } else { std::f64::consts::SQRT_2 * run_sd };
    row.power = Some(Power {
        detectable: (1.0 + settings.threshold) * center.exp() / lo,
        pair_sd,
        pairs_needed: crate::power::pairs_needed(pair_sd, settings.threshold, settings.confidence),
    });
    row
}

/// The verdict for an interval of the ratio current / baseline.
pub fn verdict((lo, hi): (f64, f64), threshold: f64) -> Verdict {
    if lo > 1.0 + threshold {
        Verdict::Regression
    } else if hi < 1.0 - threshold {
        Verdict::Improvement
    } else if hi > 1.0 + threshold {
        Verdict::Inconclusive
    } else {
        Verdict::Ok
    }
}

mod noise;
use noise::*;

#[cfg(test)]
mod tests;

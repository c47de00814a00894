//! How much a side's figure wanders between runs: measured across runs, within a run, or
//! assumed; and the unpaired and paired intervals of a change built from it.

use super::*;

/// How a side's run-to-run noise is obtained.
#[derive(Debug, Clone, Copy)]
pub(super) enum SideNoise {
    /// From its own runs (resampled).
    Measured,
    /// An added log-normal noise of this sd (log scale) whose estimate has `df` degrees of
    /// freedom (infinite: assumed), reported as `noise`.
    Added { sd: f64, df: f64, noise: Noise },
}

/// The noise of a side from its own runs: measured when it has `min_runs`; otherwise from its
/// windows when they are allowed and every run has [`MIN_WINDOWS`]; otherwise `None`.
pub(super) fn own_noise(runs: &[&Run], s: &Settings) -> Option<SideNoise> {
    if runs.len() >= s.min_runs.max(2) {
        return Some(SideNoise::Measured);
    }
    if !s.within_run || runs.is_empty() || runs.iter().any(|r| r.windows.len() < MIN_WINDOWS) {
        return None;
    }
    // Per run, the spread of the window quantiles scaled to a whole run (variance ÷ windows):
    // the run's sampling noise plus the machine's noise that varies within a run. Noise that
    // stays the same through a whole run is invisible to it; on real runs that noise dominates
    // sub-millisecond quantiles (timer wake-ups, caches, CPU frequency: identical runs 4x
    // apart), so for those the windows' spread is taken whole, and never below the assumed
    // figure. Pooled over the side's runs, with the degrees of freedom of the pooled variance.
    let assumed = s.noise.ln_1p().powi(2);
    let (mut num, mut df) = (0.0, 0.0);
    for r in runs {
        let w = r.windows.len() as f64;
        let v = sd(&r.windows).powi(2);
        let var = if r.point_ms >= s.within_run_min_ms { v / w } else { v.max(assumed) };
        num += var * (w - 1.0);
        df += w - 1.0;
    }
    let sd = (num / df).sqrt();
    Some(SideNoise::Added { sd, df, noise: Noise::WithinRun(sd.exp_m1()) })
}

/// Bootstrap of one side: returns the centred draws of the side's mean log quantile and their
/// degrees of freedom (infinite when the noise was assumed).
pub(super) fn side(runs: &[&Run], how: SideNoise, s: &Settings, rng: &mut Rng) -> (Vec<f64>, f64) {
    let r = runs.len();
    let mut draws: Vec<f64> = (0..s.iterations)
        .map(|_| match how {
            SideNoise::Measured => mean((0..r).map(|_| runs[rng.below(r)].draw_log(rng))),
            SideNoise::Added { sd, .. } => {
                mean(runs.iter().map(|run| run.draw_log(rng))) + sd * rng.normal() / (r as f64).sqrt()
            }
        })
        .collect();
    let m = mean(draws.iter().copied());
    let scale = if matches!(how, SideNoise::Measured) { (r as f64 / (r as f64 - 1.0)).sqrt() } else { 1.0 };
    for d in &mut draws {
        *d = (*d - m) * scale;
    }
    let df = match how {
        SideNoise::Measured => r as f64 - 1.0,
        SideNoise::Added { df, .. } => df,
    };
    (draws, df)
}

/// The standard deviation of the log per-run quantile of runs with measured noise.
pub(super) fn measured_sd(runs: &[&Run]) -> f64 {
    let logs: Vec<f64> = runs.iter().map(|x| x.point_ms.ln()).collect();
    sd(&logs)
}

/// Unpaired comparison: returns the sorted centred draws of the log ratio, their degrees of
/// freedom, the noise figure and the per-run noise (log scale, sampling included).
pub(super) fn unpaired(b: &[&Run], c: &[&Run], s: &Settings, rng: &mut Rng) -> (Vec<f64>, f64, Noise, f64) {
    let (ob, oc) = (own_noise(b, s), own_noise(c, s));
    let assumed = SideNoise::Added { sd: s.noise.ln_1p(), df: f64::INFINITY, noise: Noise::Assumed(s.noise) };
    // A side that cannot tell its noise takes the figure the other side measured from its runs.
    let borrow = |other: &[&Run], from: Side| {
        let sd = measured_sd(other);
        SideNoise::Added { sd, df: other.len() as f64 - 1.0, noise: Noise::Borrowed { from, noise: sd.exp_m1() } }
    };
    let (hb, hc) = match (ob, oc) {
        (Some(x), Some(y)) => (x, y),
        (Some(SideNoise::Measured), None) => (SideNoise::Measured, borrow(b, Side::Baseline)),
        (None, Some(SideNoise::Measured)) => (borrow(c, Side::Current), SideNoise::Measured),
        (Some(x), None) => (x, assumed),
        (None, Some(y)) => (assumed, y),
        (None, None) => (assumed, assumed),
    };
    let (db, dfb) = side(b, hb, s, rng);
    let (dc, dfc) = side(c, hc, s, rng);
    let (vb, vc) = (var0(&db), var0(&dc));
    // Welch-Satterthwaite; a side with assumed noise contributes no estimation uncertainty.
    let denom = vb * vb / dfb + vc * vc / dfc;
    let df = if denom > 0.0 { (vb + vc).powi(2) / denom } else { f64::INFINITY };
    let mut dev: Vec<f64> = dc.iter().zip(&db).map(|(x, y)| x - y).collect();
    dev.sort_by(f64::total_cmp);
    // The figure reported: the least trustworthy kind present, the larger value within a kind.
    let rank = |n: &Noise| match n {
        Noise::Estimated(_) => 0,
        Noise::Borrowed { .. } => 1,
        Noise::WithinRun(_) => 2,
        Noise::Assumed(_) => 3,
    };
    let figure = |h: SideNoise, runs: &[&Run]| match h {
        SideNoise::Measured => Noise::Estimated(measured_sd(runs).exp_m1()),
        SideNoise::Added { noise, .. } => noise,
    };
    let (nb, nc) = (figure(hb, b), figure(hc, c));
    let noise = match rank(&nb).cmp(&rank(&nc)) {
        std::cmp::Ordering::Greater => nb,
        std::cmp::Ordering::Less => nc,
        std::cmp::Ordering::Equal if nb.value() >= nc.value() => nb,
        std::cmp::Ordering::Equal => nc,
    };
    // One run's noise: the spread of measured runs (sampling included), or sampling plus the
    // added noise; the larger side's.
    let per_run = |h: SideNoise, runs: &[&Run]| match h {
        SideNoise::Measured => measured_sd(runs),
        SideNoise::Added { sd, .. } => (mean(runs.iter().map(|r| r.sampling_var())) + sd * sd).sqrt(),
    };
    (dev, df, noise, per_run(hb, b).max(per_run(hc, c)))
}

pub(super) fn paired(pairs: &[(&Run, &Run)], s: &Settings, rng: &mut Rng) -> (Vec<f64>, f64, Noise, f64) {
    let r = pairs.len();
    let mut draws: Vec<f64> = (0..s.iterations)
        .map(|_| {
            mean((0..r).map(|_| {
                let (b, c) = pairs[rng.below(r)];
                c.draw_log(rng) - b.draw_log(rng)
            }))
        })
        .collect();
    let m = mean(draws.iter().copied());
    let scale = (r as f64 / (r as f64 - 1.0)).sqrt();
    for d in &mut draws {
        *d = (*d - m) * scale;
    }
    draws.sort_by(f64::total_cmp);
    let diffs: Vec<f64> = pairs.iter().map(|(b, c)| c.point_ms.ln() - b.point_ms.ln()).collect();
    let pair_sd = sd(&diffs);
    (draws, r as f64 - 1.0, Noise::Estimated(pair_sd.exp_m1()), pair_sd / std::f64::consts::SQRT_2)
}

pub(super) fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in xs {
        s += x;
        n += 1;
    }
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// Variance of already centred values.
pub(super) fn var0(xs: &[f64]) -> f64 {
    mean(xs.iter().map(|x| x * x))
}

pub(super) fn sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs.iter().copied());
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

pub(super) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

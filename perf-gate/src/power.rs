//! What a comparison can see: interleaved pairs needed to decide a threshold.

use crate::stats::{normal_quantile, t_quantile};

/// Interleaved pairs with per-pair noise `pair_sd` (sd of the log per-pair ratio) that decide
/// `threshold` at `confidence` with 95% probability: with that many pairs the interval's half
/// width plus 1.645 standard errors is `ln(1 + threshold)`, so a stage that did not change comes
/// out ok, and one that rose by twice the threshold comes out a regression, 95 times in 100.
/// Solves `n = ((t(1 - α/2, n - 1) + z(0.95)) · pair_sd / ln(1 + threshold))²`; at least 3 (the
/// default `--min-runs`), at most 1 000 000.
///
/// ```
/// use perf_gate::power::pairs_needed;
/// // 7.5% per-pair noise, 3% threshold, 99% intervals: ((2.576 + 1.645) · 0.075 / ln 1.03)² ≈ 115.
/// let n = pairs_needed(0.075, 0.03, 0.99);
/// assert!((115..=122).contains(&n), "{n}");
/// assert_eq!(pairs_needed(0.0, 0.03, 0.99), 3);
/// ```
pub fn pairs_needed(pair_sd: f64, threshold: f64, confidence: f64) -> usize {
    const MAX: usize = 1_000_000;
    let margin = threshold.ln_1p();
    if !(pair_sd.is_finite() && margin > 0.0) {
        return MAX;
    }
    let p = 1.0 - (1.0 - confidence) / 2.0;
    let power = normal_quantile(0.95);
    let need = |t: f64| ((t + power) * pair_sd / margin).powi(2);
    let mut n = (need(normal_quantile(p)).ceil() as usize).clamp(3, MAX);
    while n < MAX && need(t_quantile(p, n as f64 - 1.0)) > n as f64 {
        n += 1;
    }
    n
}

//! Deterministic head sampling by tick id.

/// SplitMix64: a bijective mixer, so consecutive tick ids give independent-looking decisions.
#[inline(always)]
pub(crate) fn mix(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The threshold a tick's hash must stay under to be sampled at `rate` (`0.0..=1.0`).
pub(crate) fn threshold(rate: f64) -> u64 {
    if rate >= 1.0 {
        u64::MAX
    } else if rate <= 0.0 || rate.is_nan() {
        0
    } else {
        (rate * 18_446_744_073_709_551_616.0) as u64
    }
}

/// Whether tick `id` is sampled under `threshold`. Same id and rate, same answer, every run.
#[inline(always)]
pub(crate) fn sampled(id: u64, threshold: u64) -> bool {
    threshold == u64::MAX || mix(id) < threshold
}

/// Whether tick `id` is sampled at `rate`: the same decision the collector makes.
///
/// ```
/// assert_eq!(mm_trace::is_sampled(42, 0.2), mm_trace::is_sampled(42, 0.2));
/// assert!(mm_trace::is_sampled(7, 1.0));
/// assert!(!mm_trace::is_sampled(7, 0.0));
/// ```
pub fn is_sampled(tick_id: u64, rate: f64) -> bool {
    sampled(tick_id, threshold(rate))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rate_is_respected_and_deterministic() {
        for rate in [0.01, 0.2, 0.5, 0.9] {
            let n = (1..=100_000u64).filter(|&id| super::is_sampled(id, rate)).count() as f64;
            assert!((n / 100_000.0 - rate).abs() < 0.01, "rate {rate}: {n}");
        }
        let a: Vec<bool> = (1..1000).map(|i| super::is_sampled(i, 0.3)).collect();
        let b: Vec<bool> = (1..1000).map(|i| super::is_sampled(i, 0.3)).collect();
        assert_eq!(a, b);
    }
}

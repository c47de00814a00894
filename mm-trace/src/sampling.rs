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
pub(crate) const fn threshold(rate: f64) -> u64 {
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
    fn rate_is_respected() {
        for rate in [0.01, 0.2, 0.5, 0.9] {
            let n = (1..=100_000u64).filter(|&id| super::is_sampled(id, rate)).count() as f64;
            assert!((n / 100_000.0 - rate).abs() < 0.01, "rate {rate}: {n}");
        }
    }

    /// Decisions are a fixed function of the tick id, the same in every process and release: a
    /// fleet, or a bot and its restarted self, sample the same ticks. Expected values come from
    /// outside this code: `mix` is SplitMix64's output step, checked against the first outputs of
    /// Vigna's splitmix64.c seeded with 0 (its state advances by the golden gamma), and the
    /// sampled ids were computed by a separate (Python) model of `mix(id) < rate * 2^64`.
    /// Changing either changes which ticks are traced, so it must be a decision, not an accident.
    #[test]
    fn decisions_match_an_independent_model() {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        assert_eq!(super::mix(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(super::mix(GAMMA), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(super::mix(GAMMA.wrapping_mul(2)), 0x06C4_5D18_8009_454F);

        assert_eq!(super::threshold(0.5), 1 << 63);
        let sampled = |rate| (1..=40u64).filter(|&id| super::is_sampled(id, rate)).collect::<Vec<_>>();
        assert_eq!(sampled(0.3), [3, 10, 18, 20, 21, 33, 40]);
        assert_eq!(sampled(0.2), [3, 10, 18, 21, 33]);
        assert_eq!(sampled(1.0), (1..=40).collect::<Vec<_>>());
        assert_eq!(sampled(0.0), [] as [u64; 0]);
        assert_eq!((1..=1000u64).filter(|&id| super::is_sampled(id, 0.3)).count(), 301);
    }
}

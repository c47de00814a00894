//! The shape of a stage's distribution near the compared quantile: a quantile that falls
//! between two clusters of samples jumps from one cluster to the other between runs, so no
//! number of runs makes its comparison tight.

use crate::profile::StageProfile;

/// A quantile that sits in an empty gap between two clusters of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bimodal {
    /// The top of the lower cluster, ms.
    pub below_ms: f64,
    /// The bottom of the upper cluster, ms.
    pub above_ms: f64,
    /// Share of the samples in the lower cluster.
    pub share_below: f64,
}

/// Empty gaps at least this wide (upper / lower edge) separate clusters.
const GAP: f64 = 2.0;

/// The widest gap of the first run in `runs` whose `q` quantile lies near an empty gap of at least a factor 2
/// between two clusters: the gap's cumulative share is within `max(0.02, 3 se)` of `q`, with
/// at least 3 samples above it. `se` is the standard error of a quantile's share over the
/// samples of one window of the run when it records `windows` (its quantile then jumps between
/// the clusters from window to window), of the whole run otherwise.
pub fn bimodal<'a>(runs: impl IntoIterator<Item = (&'a StageProfile, usize)>, q: f64) -> Option<Bimodal> {
    runs.into_iter().find_map(|(s, windows)| gap_near(s, q, windows))
}

fn gap_near(s: &StageProfile, q: f64, windows: usize) -> Option<Bimodal> {
    if s.count < 20 {
        return None;
    }
    let per_window = s.count as f64 / windows.max(1) as f64;
    let d = (3.0 * (q * (1.0 - q) / per_window).sqrt()).max(0.02);
    let mut cum = 0u64;
    let mut widest: Option<(f64, Bimodal)> = None;
    for w in s.buckets.windows(2) {
        cum += w[0].count;
        let share = cum as f64 / s.count as f64;
        let above = s.count - cum;
        let ratio = w[1].lower_ns as f64 / w[0].upper_ns.max(1) as f64;
        if ratio >= GAP && (share - q).abs() <= d && above >= 3 && widest.is_none_or(|(r, _)| ratio > r) {
            let gap = Bimodal {
                below_ms: w[0].upper_ns as f64 / 1e6,
                above_ms: w[1].lower_ns as f64 / 1e6,
                share_below: share,
            };
            widest = Some((ratio, gap));
        }
    }
    widest.map(|(_, gap)| gap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Bucket;

    fn stage(parts: &[(u64, u64)]) -> StageProfile {
        let buckets: Vec<Bucket> =
            parts.iter().map(|&(ns, count)| Bucket { lower_ns: ns, upper_ns: ns + ns / 64 + 1, count }).collect();
        let count = buckets.iter().map(|b| b.count).sum();
        StageProfile {
            count,
            sum_ms: 0.0,
            p50_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            max_ms: parts.last().map_or(0.0, |p| p.0 as f64 / 1e6),
            errors: 0,
            buckets,
        }
    }

    #[test]
    fn a_quantile_on_the_split_of_two_clusters_is_bimodal() {
        // 95% near 2 µs, 5% near 15 ms: p95 sits on the split, p50 and p99 inside a cluster.
        let s = stage(&[(2_000, 500), (2_100, 450), (15_000_000, 30), (15_500_000, 20)]);
        let b = bimodal([(&s, 0)], 0.95).expect("p95 on the split");
        assert!((b.share_below - 0.95).abs() < 1e-9 && b.below_ms < 0.01 && b.above_ms == 15.0, "{b:?}");
        assert_eq!(bimodal([(&s, 0)], 0.50), None);
        assert_eq!(bimodal([(&s, 0)], 0.99), None);
        // 90% below the gap: p95 is inside the upper cluster for the run, but in windows of 100
        // samples it jumps between the clusters.
        let s = stage(&[(2_000, 500), (2_100, 400), (15_000_000, 60), (15_500_000, 40)]);
        assert_eq!(bimodal([(&s, 0)], 0.95), None);
        assert!(bimodal([(&s, 10)], 0.95).is_some());
        // A smooth spread of values is never bimodal.
        let smooth: Vec<(u64, u64)> = (0..200).map(|i| (1_000_000 + i * 20_000, 5)).collect();
        assert_eq!(bimodal([(&stage(&smooth), 10)], 0.95), None);
    }
}

//! Unit tests of `compare`.

use super::*;
use crate::profile::Bucket;

/// A stage whose samples are `values_ms`, bucketed at 1% width.
fn stage(values_ms: &[f64]) -> StageProfile {
    let mut buckets: Vec<Bucket> = Vec::new();
    let mut sorted = values_ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    for v in sorted {
        let ns = (v * 1e6) as u64;
        let lower = (ns / 10_000) * 10_000;
        match buckets.last_mut() {
            Some(b) if b.lower_ns == lower => b.count += 1,
            _ => buckets.push(Bucket { lower_ns: lower, upper_ns: lower + 10_000, count: 1 }),
        }
    }
    StageProfile {
        count: values_ms.len() as u64,
        sum_ms: values_ms.iter().sum(),
        p50_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        max_ms: values_ms.iter().copied().fold(0.0, f64::max),
        errors: 0,
        buckets,
    }
}

fn spread(center: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| center * (0.9 + 0.2 * i as f64 / n as f64)).collect()
}

#[test]
fn verdict_uses_the_whole_interval() {
    assert_eq!(verdict((1.04, 1.2), 0.03), Verdict::Regression);
    assert_eq!(verdict((1.02, 1.2), 0.03), Verdict::Inconclusive);
    assert_eq!(verdict((0.98, 1.02), 0.03), Verdict::Ok);
    assert_eq!(verdict((0.80, 1.01), 0.03), Verdict::Ok);
    assert_eq!(verdict((0.80, 0.96), 0.03), Verdict::Improvement);
}

#[test]
fn many_consistent_runs_detect_a_clear_rise() {
    let base: Vec<StageProfile> = (0..5).map(|i| stage(&spread(10.0 + i as f64 * 0.05, 2000))).collect();
    let cur: Vec<StageProfile> = (0..5).map(|i| stage(&spread(12.0 + i as f64 * 0.05, 2000))).collect();
    let b: Vec<Option<&StageProfile>> = base.iter().map(Some).collect();
    let c: Vec<Option<&StageProfile>> = cur.iter().map(Some).collect();
    let row = compare_stage("x", &b, &c, Metric::P95, &Settings::default());
    assert_eq!(row.verdict, Verdict::Regression, "{row:?}");
    let (lo, hi) = row.interval.unwrap();
    assert!(lo < 1.2 && hi > 1.19, "{row:?}");
    assert!(matches!(row.noise, Some(Noise::Estimated(_))));
    // Same data, same seed: same interval.
    assert_eq!(row, compare_stage("x", &b, &c, Metric::P95, &Settings::default()));
    let back = compare_stage("x", &c, &b, Metric::P95, &Settings::default());
    assert_eq!(back.verdict, Verdict::Improvement);
}

#[test]
fn single_runs_use_the_assumed_noise() {
    let b = stage(&spread(10.0, 2000));
    let c = stage(&spread(12.0, 2000));
    let row = compare_stage("x", &[Some(&b)], &[Some(&c)], Metric::P95, &Settings::default());
    // +20% with one run each and 20% assumed machine noise: cannot tell.
    assert_eq!(row.verdict, Verdict::Inconclusive, "{row:?}");
    assert_eq!(row.noise, Some(Noise::Assumed(0.20)));
    let quiet = Settings { noise: 0.01, ..Settings::default() };
    let row = compare_stage("x", &[Some(&b)], &[Some(&c)], Metric::P95, &quiet);
    assert_eq!(row.verdict, Verdict::Regression, "{row:?}");
    let c = stage(&spread(30.0, 2000));
    let row = compare_stage("x", &[Some(&b)], &[Some(&c)], Metric::P95, &Settings::default());
    assert_eq!(row.verdict, Verdict::Regression, "a 3x rise clears any plausible noise: {row:?}");
}

#[test]
fn paired_runs_cancel_shared_noise() {
    // Machine factor per slot swings 0.7..1.4, the change is +10%, identical within a slot.
    let factors = [1.0, 0.7, 1.4, 0.9, 1.2, 0.8];
    let base: Vec<StageProfile> = factors.iter().map(|f| stage(&spread(10.0 * f, 3000))).collect();
    let cur: Vec<StageProfile> = factors.iter().map(|f| stage(&spread(11.0 * f, 3000))).collect();
    let b: Vec<Option<&StageProfile>> = base.iter().map(Some).collect();
    let c: Vec<Option<&StageProfile>> = cur.iter().map(Some).collect();
    let unpaired = compare_stage("x", &b, &c, Metric::P95, &Settings::default());
    assert_eq!(unpaired.verdict, Verdict::Inconclusive, "{unpaired:?}");
    let paired = compare_stage("x", &b, &c, Metric::P95, &Settings { paired: true, ..Settings::default() });
    assert_eq!(paired.verdict, Verdict::Regression, "{paired:?}");
}

#[test]
fn stages_on_one_side_are_new_missing_or_removed() {
    let s = stage(&spread(10.0, 100));
    assert_eq!(compare_stage("x", &[None], &[Some(&s)], Metric::P50, &Settings::default()).verdict, Verdict::New);
    let missing = compare_stage("x", &[Some(&s)], &[None], Metric::P50, &Settings::default());
    assert_eq!(missing.verdict, Verdict::Missing);
    assert!(missing.verdict.fails() && Verdict::Regression.fails() && !Verdict::New.fails());
    let allow = Settings { allow_removed_stages: true, ..Settings::default() };
    let removed = compare_stage("x", &[Some(&s)], &[None], Metric::P50, &allow);
    assert_eq!(removed.verdict, Verdict::Removed);
    assert!(!removed.verdict.fails());
}

//! perf-gate's quantiles are the runtime's: a profile written by mm-trace and read back by
//! perf-gate gives, for every q, the quantile `mm_trace::HistogramSnapshot` gives for the same
//! samples — one-ns-wide buckets (reported at their value, not their midpoint) and quantiles
//! landing in the top bucket (clamped to the exact max) included — and so does a merge of
//! several runs (the canary track).

use std::path::Path;

use mm_trace::{HistogramSnapshot, StageStats, Summary};
use perf_gate::profile::{self, StageProfile};

fn histogram(values_ns: &[u64]) -> HistogramSnapshot {
    let mut h = HistogramSnapshot::new();
    for &v in values_ns {
        h.record_ns(v);
    }
    h
}

/// Writes a profile of `h` as `tick_total` with mm-trace's writer and reads it with perf-gate.
fn write_and_read(h: &HistogramSnapshot) -> perf_gate::profile::Profile {
    let tick_total = StageStats::from_histogram("tick_total", h.clone());
    let summary = Summary { ticks: h.count(), deadline_ms: 200.0, stages: vec![tick_total], ..Summary::default() };
    let text = mm_trace::profile_json_from(&summary);
    profile::parse(text.as_bytes(), Path::new("written.json")).unwrap()
}

/// Compares at `steps + 1` evenly spaced q from 0 to 1, and the written p50/p95/p99.
fn assert_same_quantiles(stage: &StageProfile, h: &HistogramSnapshot, steps: u32) {
    for i in 0..=steps {
        let q = f64::from(i) / f64::from(steps);
        assert_eq!(stage.quantile_ms(q), h.quantile_ms(q), "q = {q}");
    }
    for (q, written) in [(0.50, stage.p50_ms), (0.95, stage.p95_ms), (0.99, stage.p99_ms)] {
        assert_eq!(written, h.quantile_ms(q), "p{}", q * 100.0);
    }
}

/// 3 ns three times (the one-ns bucket [3, 4)), a spread of microsecond to millisecond values,
/// and a largest value of 40_000_123 ns in the bucket [39_845_888, 40_370_176), whose midpoint
/// (40_108_032) lies above it.
const SAMPLES: &[u64] = &[
    3, 3, 3, 90, 127, 128, 129, 4_000, 4_100, 250_000, 1_000_003, 1_000_004, 2_500_000, 9_999_999, 12_345_678,
    20_000_000, 30_000_000, 39_000_000, 39_900_000, 40_000_123,
];

#[test]
fn quantiles_of_a_written_profile_equal_the_runtime_histogram() {
    let h = histogram(SAMPLES);
    let stage = &write_and_read(&h).doc.stages["tick_total"];
    assert_same_quantiles(stage, &h, 1000);

    // The two places the rules used to differ, pinned to their values.
    assert_eq!(stage.quantile_ms(0.05), 3e-6, "a one-ns bucket is reported at its value (the midpoint says 3.5 ns)");
    assert_eq!(stage.quantile_ms(0.15), 3e-6);
    let top = stage.buckets.last().unwrap();
    assert_eq!((top.lower_ns, top.upper_ns), (39_845_888, 40_370_176));
    for q in [0.96, 0.99, 1.0] {
        assert_eq!(stage.quantile_ms(q), 40.000123, "q = {q}: clamped to max_ms, not the midpoint 40.108032");
    }
    assert_eq!(stage.p99_ms, 40.000123);
}

#[test]
fn quantiles_of_merged_runs_equal_the_runtime_merge() {
    let (first, second) = SAMPLES.split_at(9);
    let (a, b) = (histogram(first), histogram(second));
    let mut merged = a.clone();
    merged.merge(&b);

    let (pa, pb) = (write_and_read(&a), write_and_read(&b));
    let mut stage = pa.doc.stages["tick_total"].clone();
    stage.merge(&pb.doc.stages["tick_total"]);
    assert_eq!(stage.count, merged.count());
    assert_eq!(stage.max_ns(), merged.max_ns());
    assert_same_quantiles(&stage, &merged, 1000);

    // The canary track merges the runs the same way; its p95 lands in the top bucket.
    let track = perf_gate::canary::track_from_profiles(&[pa, pb]).unwrap();
    assert_eq!(track.p95_ms, merged.quantile_ms(0.95));
    assert_eq!(track.p95_ms, 40.000123);
}

/// The rule holds for any data, not only the sample above: seeded random histograms, from
/// nanoseconds to seconds, with their maximum anywhere in its bucket.
#[test]
fn quantiles_equal_the_runtime_on_random_histograms() {
    let mut rng = perf_gate::stats::Rng::new(0x9a17);
    for _ in 0..200 {
        let n = 1 + rng.below(300);
        let scale = 10f64.powi(rng.below(10) as i32);
        let values: Vec<u64> = (0..n).map(|_| (rng.uniform() * scale) as u64).collect();
        let h = histogram(&values);
        assert_same_quantiles(&write_and_read(&h).doc.stages["tick_total"], &h, 100);
    }
}

//! Synthetic profiles for the tests: histograms recorded with mm-trace's own
//! [`HistogramSnapshot`] (so the bucket layout and the quantiles are the runtime's), drawn from
//! a log-normal tick-time distribution with a seeded RNG.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::BTreeMap;

use mm_trace::HistogramSnapshot;
use mm_trace::profile::{Profile, SCHEMA, SCHEMA_VERSION};
use perf_gate::profile::StageProfile;
use perf_gate::stats::Rng;

/// A stage histogram of `n` samples `median_ms * exp(sigma * Z) * factor`.
pub fn lognormal_stage(rng: &mut Rng, n: usize, median_ms: f64, sigma: f64, factor: f64) -> StageProfile {
    let mut h = HistogramSnapshot::new();
    for _ in 0..n {
        h.record_ns((median_ms * 1e6 * factor * (sigma * rng.normal()).exp()).max(1.0) as u64);
    }
    StageProfile::from_histogram(&h)
}

/// A stage from nanosecond samples.
pub fn stage_from_ns(ns: &[u64]) -> StageProfile {
    let mut h = HistogramSnapshot::new();
    for &v in ns {
        h.record_ns(v);
    }
    StageProfile::from_histogram(&h)
}

/// The perf_profile.json text of a profile with the given stages (mm-trace's document type,
/// printed by serde_json: another layout than the runtime's writer, same schema).
pub fn profile_json(stages: &[(&str, &StageProfile)], ticks: u64, misses: u64, partial_fails: u64) -> String {
    let pct = |n: u64| if ticks == 0 { 0.0 } else { n as f64 * 100.0 / ticks as f64 };
    let doc = Profile {
        schema: SCHEMA.to_owned(),
        schema_version: SCHEMA_VERSION,
        generator: Some("perf-gate tests".to_owned()),
        created_unix_ms: Some(1_764_000_000_000),
        labels: BTreeMap::new(),
        deadline_ms: 200.0,
        ticks,
        deadline_misses: misses,
        deadline_miss_pct: pct(misses),
        partial_fails,
        partial_fail_pct: pct(partial_fails),
        sample_rate: Some(1.0),
        stages: stages.iter().map(|(name, s)| (name.to_string(), (*s).clone())).collect(),
        exchange: BTreeMap::new(),
        guard_trips: BTreeMap::new(),
        tick_kinds: BTreeMap::new(),
    };
    serde_json::to_string_pretty(&doc).unwrap()
}

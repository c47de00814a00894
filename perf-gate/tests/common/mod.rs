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
    profile_json_with_windows(stages, ticks, misses, partial_fails, Vec::new())
}

/// [`profile_json`] with per-window quantiles.
pub fn profile_json_with_windows(
    stages: &[(&str, &StageProfile)],
    ticks: u64,
    misses: u64,
    partial_fails: u64,
    windows: Vec<mm_trace::profile::WindowProfile>,
) -> String {
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
        windows,
    };
    serde_json::to_string_pretty(&doc).unwrap()
}

/// A run of `windows` windows of `per_window` ticks of one stage, log-normal, each window with
/// its own factor `exp(drift · Z)`: the merged stage and the windows' quantiles.
pub fn windowed_stage(
    rng: &mut Rng,
    name: &str,
    windows: usize,
    per_window: usize,
    median_ms: f64,
    drift: f64,
) -> (StageProfile, Vec<mm_trace::profile::WindowProfile>) {
    let mut run: Option<StageProfile> = None;
    let mut out = Vec::new();
    for _ in 0..windows {
        let f = (drift * rng.normal()).exp();
        let w = lognormal_stage(rng, per_window, median_ms, 0.3, f);
        let entry = mm_trace::profile::WindowStage {
            count: w.count,
            p50_ms: w.quantile_ms(0.5),
            p95_ms: w.quantile_ms(0.95),
            p99_ms: w.quantile_ms(0.99),
        };
        out.push(mm_trace::profile::WindowProfile {
            ticks: per_window as u64,
            stages: BTreeMap::from([(name.to_owned(), entry)]),
        });
        match &mut run {
            Some(r) => r.merge(&w),
            None => run = Some(w),
        }
    }
    (run.unwrap(), out)
}

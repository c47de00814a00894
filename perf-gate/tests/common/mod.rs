//! Synthetic profiles for the tests: histograms with mm-trace's bucket layout, drawn from a
//! log-normal tick-time distribution with a seeded RNG.

#![allow(dead_code, reason = "each test binary uses a different part")]

use perf_gate::profile::{Bucket, Stage};
use perf_gate::stats::Rng;

/// mm-trace's bucket of `ns`: exact below 128 ns, then 64 buckets per power of two.
pub fn bucket(ns: u64) -> (u64, u64) {
    if ns < 128 {
        return (ns, ns + 1);
    }
    let v = ns.min((1 << 42) - 1);
    let exp = 63 - v.leading_zeros();
    let width = 1u64 << (exp - 6);
    let lower = (v / width) * width;
    (lower, lower + width)
}

/// A stage histogram of `n` samples `median_ms * exp(sigma * Z) * factor`.
pub fn lognormal_stage(rng: &mut Rng, n: usize, median_ms: f64, sigma: f64, factor: f64) -> Stage {
    let mut counts = vec![0u64; 128 + 35 * 64];
    let mut sum_ms = 0.0;
    let mut max_ns = 0;
    for _ in 0..n {
        let v = (median_ms * 1e6 * factor * (sigma * rng.normal()).exp()).max(1.0) as u64;
        counts[index(v)] += 1;
        sum_ms += v as f64 / 1e6;
        max_ns = max_ns.max(v);
    }
    let buckets: Vec<Bucket> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &count)| {
            let (lower_ns, upper_ns) = bounds(i);
            Bucket { lower_ns, upper_ns, count }
        })
        .collect();
    finish(Stage {
        count: n as u64,
        sum_ms,
        p50_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        max_ms: max_ns as f64 / 1e6,
        buckets,
    })
}

fn index(ns: u64) -> usize {
    if ns < 128 {
        return ns as usize;
    }
    let v = ns.min((1 << 42) - 1);
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - 6)) & 63;
    128 + (((exp - 7) as usize) << 6) + sub as usize
}

fn bounds(i: usize) -> (u64, u64) {
    if i < 128 {
        return (i as u64, i as u64 + 1);
    }
    let k = i - 128;
    let exp = 7 + (k >> 6) as u32;
    let width = 1u64 << (exp - 6);
    let lower = (64 + (k & 63) as u64) * width;
    (lower, lower + width)
}

fn finish(mut s: Stage) -> Stage {
    s.p50_ms = s.quantile_ms(0.50).unwrap_or(0.0);
    s.p95_ms = s.quantile_ms(0.95).unwrap_or(0.0);
    s.p99_ms = s.quantile_ms(0.99).unwrap_or(0.0);
    s
}

/// A stage from sorted nanosecond samples.
pub fn stage_from_ns(sorted_ns: &[u64]) -> Stage {
    let mut buckets: Vec<Bucket> = Vec::new();
    for &v in sorted_ns {
        let (lower_ns, upper_ns) = bucket(v);
        match buckets.last_mut() {
            Some(b) if b.lower_ns == lower_ns => b.count += 1,
            _ => buckets.push(Bucket { lower_ns, upper_ns, count: 1 }),
        }
    }
    finish(Stage {
        count: sorted_ns.len() as u64,
        sum_ms: sorted_ns.iter().map(|&v| v as f64 / 1e6).sum(),
        p50_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        max_ms: sorted_ns.last().map_or(0.0, |&v| v as f64 / 1e6),
        buckets,
    })
}

/// The perf_profile.json text of a profile with the given stages.
pub fn profile_json(stages: &[(&str, &Stage)], ticks: u64, misses: u64, partial_fails: u64) -> String {
    let stages: serde_json::Map<String, serde_json::Value> = stages
        .iter()
        .map(|(name, s)| {
            let buckets: Vec<serde_json::Value> =
                s.buckets.iter().map(|b| serde_json::json!([b.lower_ns, b.upper_ns, b.count])).collect();
            (
                name.to_string(),
                serde_json::json!({
                    "count": s.count, "sum_ms": s.sum_ms, "p50_ms": s.p50_ms, "p95_ms": s.p95_ms,
                    "p99_ms": s.p99_ms, "max_ms": s.max_ms, "buckets": buckets,
                }),
            )
        })
        .collect();
    let pct = |n: u64| if ticks == 0 { 0.0 } else { n as f64 * 100.0 / ticks as f64 };
    serde_json::to_string_pretty(&serde_json::json!({
        "schema": "mm-trace/perf-profile",
        "schema_version": 1,
        "generator": "perf-gate tests",
        "created_unix_ms": 1_764_000_000_000u64,
        "labels": {},
        "deadline_ms": 200.0,
        "ticks": ticks,
        "deadline_misses": misses,
        "deadline_miss_pct": pct(misses),
        "partial_fails": partial_fails,
        "partial_fail_pct": pct(partial_fails),
        "sample_rate": 1.0,
        "stages": stages,
        "exchange": {},
        "guard_trips": {},
    }))
    .unwrap()
}

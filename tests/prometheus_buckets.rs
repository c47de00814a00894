//! The exported Prometheus buckets fit loops of any scale (issue "Fit users' loops, not the
//! demo's"): PromQL's `histogram_quantile`, computed here exactly as Prometheus does on the
//! exported cumulative buckets, stays within 10% of the in-process p95 for stages from 50 µs to
//! 10 s; and `trace.prometheus_buckets_ms` sets the `le` bounds of every duration histogram.
//!
//! `cargo test --test prometheus_buckets -- --nocapture` prints the measured errors.

mod support;

use mm_trace::__private::{Site, StageGuard, TickGuard};
use mm_trace::histogram::{PROMETHEUS_BOUNDS_MS, prometheus_bounds_ms, prometheus_edge_ns};
use mm_trace::{HistogramSnapshot, PrometheusUnits, TraceConfig, test_clock};
use support::{Exposition, parse_le};

/// The bounds before this issue, chosen around a 200 ms deadline.
const FIRST_BOUNDS_MS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0,
    200.0, 250.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
];

/// Prometheus' `histogram_quantile` (promql/quantile.go `bucketQuantile`) of one series:
/// `bounds` with their cumulative counts, `+Inf` last in `cumulative`.
fn histogram_quantile(q: f64, bounds: &[f64], cumulative: &[u64]) -> f64 {
    assert_eq!(cumulative.len(), bounds.len() + 1);
    let upper = |i: usize| bounds.get(i).copied().unwrap_or(f64::INFINITY);
    let count = |i: usize| cumulative[i] as f64;
    let observations = count(bounds.len());
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // sort.Search over every bucket but +Inf: the first whose cumulative count reaches the rank.
    let b = (0..bounds.len()).find(|&i| count(i) >= rank).unwrap_or(bounds.len());
    if b == bounds.len() {
        return upper(bounds.len() - 1);
    }
    if b == 0 && upper(0) <= 0.0 {
        return upper(0);
    }
    let (mut start, end, mut in_bucket) = (0.0, upper(b), count(b));
    if b > 0 {
        start = upper(b - 1);
        in_bucket -= count(b - 1);
        rank -= count(b - 1);
    }
    start + (end - start) * (rank / in_bucket)
}

/// SplitMix64: deterministic samples, no dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }

    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
}

/// The stage shapes measured, each around a scale `m` (ms).
const FAMILIES: &[&str] = &[
    "log-normal sigma 0.1",
    "log-normal sigma 0.2",
    "log-normal sigma 0.35",
    "log-normal sigma 0.5",
    "log-normal sigma 1.0",
    "uniform m/1.5 .. 1.5m",
    "uniform m/3 .. 3m",
    "uniform 0 .. 2m",
    "bimodal, 10% at 5x",
    "bimodal, 3% at 20x",
    "bimodal, 30% at 3x",
];

/// Also measured, not held to 10%: a stage that hardly varies sits inside one bucket, where
/// linear interpolation can be off by up to the bucket's width.
const TIGHT: &str = "log-normal sigma 0.05";

fn sample_ms(family: &str, m: f64, rng: &mut Rng) -> f64 {
    let bimodal = |rng: &mut Rng, share: f64, factor: f64| {
        let x = rng.lognormal(m, 0.15);
        if rng.unit() < share { x * factor } else { x }
    };
    match family {
        "log-normal sigma 0.05" => rng.lognormal(m, 0.05),
        "log-normal sigma 0.1" => rng.lognormal(m, 0.1),
        "log-normal sigma 0.2" => rng.lognormal(m, 0.2),
        "log-normal sigma 0.35" => rng.lognormal(m, 0.35),
        "log-normal sigma 0.5" => rng.lognormal(m, 0.5),
        "log-normal sigma 1.0" => rng.lognormal(m, 1.0),
        "uniform m/1.5 .. 1.5m" => m / 1.5 + (1.5 * m - m / 1.5) * rng.unit(),
        "uniform m/3 .. 3m" => m / 3.0 + (3.0 * m - m / 3.0) * rng.unit(),
        "uniform 0 .. 2m" => 2.0 * m * rng.unit(),
        "bimodal, 10% at 5x" => bimodal(rng, 0.10, 5.0),
        "bimodal, 3% at 20x" => bimodal(rng, 0.03, 20.0),
        "bimodal, 30% at 3x" => bimodal(rng, 0.30, 3.0),
        other => unreachable!("{other}"),
    }
}

/// The largest relative error of PromQL's quantile vs the in-process one over stages whose
/// in-process quantile lies in 0.05 ms ..= 10 s, with where it occurs.
#[derive(Debug, Clone, Copy, Default)]
struct Worst {
    error: f64,
    in_process_ms: f64,
    promql_ms: f64,
}

/// For one stage shape swept over scales from 0.02 ms to 20 s (3% apart, 4000 samples each):
/// the worst error of each `(bounds, q)`.
fn worst_errors<const N: usize>(family: &str, cases: [(&[f64], f64); N]) -> [Worst; N] {
    const SAMPLES: usize = 4000;
    let mut rng = Rng(0x5EED ^ family.len() as u64);
    let mut worst = [Worst::default(); N];
    let mut m = 0.02;
    while m <= 20_000.0 {
        let mut h = HistogramSnapshot::new();
        for _ in 0..SAMPLES {
            h.record_ns((sample_ms(family, m, &mut rng) * 1e6) as u64);
        }
        for ((bounds, q), worst) in cases.iter().zip(&mut worst) {
            let in_process = h.quantile_ms(*q);
            if !(0.05..=10_000.0).contains(&in_process) {
                continue;
            }
            let promql = histogram_quantile(*q, bounds, &h.prometheus_cumulative_at(bounds));
            let error = (promql - in_process).abs() / in_process;
            if error > worst.error {
                *worst = Worst { error, in_process_ms: in_process, promql_ms: promql };
            }
        }
        m *= 1.03;
    }
    worst
}

#[test]
fn promql_p95_within_10_percent_of_in_process_p95_from_50us_to_10s() {
    let (mut overall, mut first_overall) = (Worst::default(), Worst::default());
    let pct = |w: Worst| w.error * 100.0;
    eprintln!("worst |PromQL - in-process| / in-process over stages from 0.05 ms to 10 s:");
    eprintln!("{:<24} {:>7} {:>7} {:>7}   {:>14}", "stage shape", "p50", "p95", "p99", "p95, first set");
    for family in FAMILIES.iter().chain([&TIGHT]) {
        let d = PROMETHEUS_BOUNDS_MS;
        let [p50, p95, p99, first] = worst_errors(family, [(d, 0.5), (d, 0.95), (d, 0.99), (FIRST_BOUNDS_MS, 0.95)]);
        eprintln!(
            "{family:<24} {:>6.1}% {:>6.1}% {:>6.1}%   {:>13.1}%   p95 worst at {:.4} ms: PromQL {:.4} ms",
            pct(p50),
            pct(p95),
            pct(p99),
            pct(first),
            p95.in_process_ms,
            p95.promql_ms
        );
        if *family != TIGHT {
            if p95.error > overall.error {
                overall = p95;
            }
            if first.error > first_overall.error {
                first_overall = first;
            }
        }
    }
    eprintln!(
        "worst p95 error {:.1}% (in-process {:.4} ms, PromQL {:.4} ms), first set {:.1}%; {} bounds, {} series per stage",
        pct(overall),
        overall.in_process_ms,
        overall.promql_ms,
        pct(first_overall),
        PROMETHEUS_BOUNDS_MS.len(),
        PROMETHEUS_BOUNDS_MS.len() + 3
    );
    assert!(overall.error <= 0.10, "PromQL p95 off by {:.1}%: {overall:?}", pct(overall));
    // The measurement has teeth: the first set (around a 200 ms deadline) was far off.
    assert!(first_overall.error > 0.4, "first set: {first_overall:?}");
}

/// The loop: a 6 ms deadline. With the first bounds (5 and 10 ms around it) a tick_total
/// p95 of 5.5 ms read as 8.2 ms in PromQL (48% off); with the defaults within 5%.
#[test]
fn a_6ms_loop_reads_right() {
    let mut rng = Rng(6);
    let mut h = HistogramSnapshot::new();
    for _ in 0..20_000 {
        h.record_ns((rng.lognormal(4.0, 0.2) * 1e6) as u64);
    }
    let in_process = h.quantile_ms(0.95);
    let first = histogram_quantile(0.95, FIRST_BOUNDS_MS, &h.prometheus_cumulative_at(FIRST_BOUNDS_MS));
    let now = histogram_quantile(0.95, PROMETHEUS_BOUNDS_MS, &h.prometheus_cumulative_at(PROMETHEUS_BOUNDS_MS));
    eprintln!("6 ms loop: in-process p95 {in_process:.3} ms, PromQL {now:.3} ms (first bounds: {first:.3} ms)");
    assert!((now - in_process).abs() / in_process < 0.05, "{now} vs {in_process}");
    assert!((first - in_process).abs() / in_process > 0.3, "{first} vs {in_process}");
}

static TICK: Site = Site::tick("tick");
static FETCH_MD: Site = Site::stage("fetch_md");
static POST_ORDER: Site = Site::exchange("POST", "order");

/// `trace.prometheus_buckets_ms` sets the `le` values (and counts) of every duration histogram,
/// stage, tick_total and exchange, in both units; `init` without it restores the defaults.
#[test]
fn configured_bounds_are_the_exported_le_values_of_every_duration_histogram() {
    let bounds = vec![0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0];
    let yaml = "trace:\n  sample_rate: 1.0\n  export_golden: false\n  deadline_ms: 6\n  \
                prometheus_buckets_ms: [0.25, 0.5, 1, 2, 4, 6, 8, 12]\n";
    let cfg = TraceConfig::from_yaml_str(yaml).unwrap();
    assert_eq!(cfg.prometheus_buckets_ms.as_deref(), Some(&bounds[..]));
    mm_trace::init(cfg).unwrap();
    assert_eq!(prometheus_bounds_ms(), bounds);
    mm_trace::reset();
    test_clock::install(1_000);
    for i in 0..10u64 {
        let _t = TickGuard::begin(&TICK);
        {
            let _g = StageGuard::enter(&FETCH_MD);
            test_clock::advance(i * 500_000); // 0 .. 4.5 ms
        }
        let _e = StageGuard::enter(&POST_ORDER);
        test_clock::advance(1_500_000);
    }
    test_clock::uninstall();
    let summary = mm_trace::summary();
    for (units, ms_per_unit) in [(PrometheusUnits::Milliseconds, 1.0), (PrometheusUnits::Seconds, 1000.0)] {
        let exp = Exposition::parse(&mm_trace::prometheus_text_from(&summary, units));
        let suffix = if ms_per_unit == 1.0 { "ms" } else { "seconds" };
        let mut series = 0;
        for (fam, labels) in [
            (format!("mm_stage_duration_{suffix}"), vec![("stage", "tick_total")]),
            (format!("mm_stage_duration_{suffix}"), vec![("stage", "fetch_md")]),
            (format!("mm_exchange_req_{suffix}"), vec![("verb", "POST"), ("api", "order")]),
        ] {
            let buckets: Vec<(f64, f64)> = exp
                .family(&fam)
                .samples
                .iter()
                .filter(|s| s.name.ends_with("_bucket") && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
                .map(|s| (parse_le(s.label("le").unwrap()) * ms_per_unit, s.value))
                .collect();
            let les: Vec<f64> = buckets.iter().map(|b| b.0).collect();
            let want: Vec<f64> = bounds.iter().copied().chain([f64::INFINITY]).collect();
            assert_eq!(les.len(), want.len(), "{fam}{labels:?}");
            for (got, want) in les.iter().zip(&want) {
                assert!(got == want || (got - want).abs() <= want * 1e-12, "{fam}{labels:?}: le {got} vs {want}");
            }
            // The counts are the histogram's, at the same bounds.
            let stats = match labels[0].1 {
                "tick_total" | "fetch_md" => summary.stage(labels[0].1).unwrap(),
                _ => &summary.exchange[0].stats,
            };
            let counts: Vec<u64> = buckets.iter().map(|b| b.1 as u64).collect();
            assert_eq!(counts, stats.histogram.prometheus_cumulative_at(&bounds), "{fam}{labels:?}");
            series += 1;
        }
        assert_eq!(series, 3);
        // fetch_md: 0, 0.5, ..., 4.5 ms (+1 us clock step): under le=2, the samples up to 1.5 ms.
        let le2 = exp
            .value(
                &format!("mm_stage_duration_{suffix}_bucket"),
                &[("stage", "fetch_md"), ("le", if ms_per_unit == 1.0 { "2" } else { "0.002" })],
            )
            .unwrap();
        assert_eq!(le2, 4.0);
    }
    assert!(prometheus_edge_ns(2.0) <= 2_000_000);

    mm_trace::init(TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
    assert_eq!(prometheus_bounds_ms(), PROMETHEUS_BOUNDS_MS);
    let exp = Exposition::parse(&mm_trace::prometheus_text_from(&summary, PrometheusUnits::Milliseconds));
    let n = exp.family("mm_stage_duration_ms").samples.iter().filter(|s| s.label("stage") == Some("fetch_md")).count();
    assert_eq!(n, PROMETHEUS_BOUNDS_MS.len() + 3, "105 bounds, +Inf, _sum, _count");
}

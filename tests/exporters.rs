//! Exporters end to end: the Prometheus exposition (checked by the real `promtool` and by its
//! histogram invariants, parsed here), the label cardinality cap, the collector's health
//! metrics and the perf profile (golden traces and Chrome trace events: tests/trace_files.rs).
//!
//! Tests share the global collector, so they run one at a time (`setup`).

#[path = "support/exporters_setup.rs"]
mod exporters_setup;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use exporters_setup::{FETCH_MD, GET_BOOK, POST_ORDER, TICK, cfg, setup, wait_for_worker};
use mm_trace::__private::{StageGuard, TickGuard};
use mm_trace::histogram::PROMETHEUS_BOUNDS_MS;
use mm_trace::{PrometheusUnits, Summary, TraceConfig, test_clock};
use serde_json::Value;
use support::{Exposition, TempDir, parse_le, promtool_check, require_tool};

/// Every guard-trip reason of this file outside the cardinality test, with the trips
/// `populate` makes. Values that need escaping in the exposition: `\`, `"`, line feed.
const REASONS: &[(&str, u64)] =
    &[("vol_soft", 3), ("inventory", 1), (r"C:\risk\limit", 2), ("say \"hi\"", 4), ("line\nbreak", 5)];

/// 20 ticks with known durations (test clock): stages, nested exchange requests, one deadline
/// miss (tick 7, about 254 ms over the default 200 ms), partial failures in 4 ticks, guard trips
/// of `REASONS`, and the parallel-symbols gauge at 8.
fn populate() {
    wait_for_worker();
    test_clock::install(1_000);
    for i in 0..20u64 {
        let _t = TickGuard::begin(&TICK);
        {
            let _g = StageGuard::enter(&FETCH_MD);
            test_clock::advance(i * 100_000);
            let _b = StageGuard::enter(&GET_BOOK);
            test_clock::advance(50_000);
        }
        mm_trace::in_stage!("quote", test_clock::advance(1_500_000));
        {
            let _e = StageGuard::enter(&POST_ORDER);
            test_clock::advance(2_000_000 + i * 10_000);
        }
        if i % 5 == 0 {
            mm_trace::partial_fail();
        }
        if i == 7 {
            test_clock::advance(250_000_000);
        }
    }
    mm_trace::flush();
    test_clock::uninstall();
    for (reason, n) in REASONS {
        for _ in 0..*n {
            mm_trace::guard_trip(reason);
        }
    }
    mm_trace::set_parallel_symbols(8);
}

fn assert_close(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= want.abs() * 1e-12 + 1e-15, "{what}: got {got}, want {want}");
}

/// Per-unit names and scale: `(histogram suffix, ms per unit)`.
fn unit(units: PrometheusUnits) -> (&'static str, f64) {
    match units {
        PrometheusUnits::Milliseconds => ("ms", 1.0),
        PrometheusUnits::Seconds => ("seconds", 1000.0),
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus

#[test]
fn promtool_finds_only_the_ms_unit_lint_and_nothing_in_base_units() {
    let _g = setup(cfg());
    populate();
    let Some(promtool) = require_tool("promtool") else {
        return;
    };

    let text = mm_trace::prometheus_text_units(PrometheusUnits::Milliseconds);
    let (code, findings) = promtool_check(&promtool, &text);
    assert!(!findings.is_empty(), "promtool should lint the _ms names");
    for f in &findings {
        assert!(f.ends_with("metric names should not contain abbreviated units"), "unexpected promtool finding: {f}");
    }
    let linted: BTreeSet<&str> = findings.iter().filter_map(|f| f.split_whitespace().next()).collect();
    assert_eq!(linted, BTreeSet::from(["mm_exchange_req_ms", "mm_stage_duration_ms"]), "{findings:?}");
    assert_eq!(code, 3, "promtool exit code for lint findings only: {findings:?}");

    let text = mm_trace::prometheus_text_units(PrometheusUnits::Seconds);
    let (code, findings) = promtool_check(&promtool, &text);
    assert_eq!((code, findings), (0, vec![]), "base-unit naming must pass promtool untouched:\n{text}");
}

#[test]
fn exposition_histograms_hold_their_invariants_and_match_the_summary() {
    let _g = setup(cfg());
    populate();
    let s = mm_trace::summary();
    for units in [PrometheusUnits::Milliseconds, PrometheusUnits::Seconds] {
        let text = mm_trace::prometheus_text_units(units);
        let exp = Exposition::parse(&text);
        check_histogram_invariants(&exp, units);
        check_values_against_summary(&exp, &s, units);
        check_known_values(&exp, units);
    }
    assert!(!mm_trace::prometheus_text_units(PrometheusUnits::Seconds).contains("_ms"));

    // The configuration picks the units of `prometheus_text()`.
    assert!(mm_trace::prometheus_text().contains("# TYPE mm_stage_duration_ms histogram"));
    mm_trace::init(TraceConfig { prometheus_base_units: true, ..cfg() }).unwrap();
    let text = mm_trace::prometheus_text();
    assert!(text.contains("# TYPE mm_stage_duration_seconds histogram") && !text.contains("_ms"));
    assert_eq!(text, mm_trace::prometheus_text_units(PrometheusUnits::Seconds));
}

/// One histogram series: `(le, cumulative count)` buckets, `_sum`, `_count`.
type Series = (Vec<(f64, f64)>, Option<f64>, Option<f64>);

fn check_histogram_invariants(exp: &Exposition, units: PrometheusUnits) {
    let (suffix, ms_per_unit) = unit(units);
    let documented: Vec<f64> = PROMETHEUS_BOUNDS_MS.iter().map(|b| b / ms_per_unit).chain([f64::INFINITY]).collect();
    let mut histograms = 0;
    for (name, fam) in &exp.families {
        assert!(!fam.help.is_empty(), "{name} has no HELP text");
        if fam.kind != "histogram" {
            for smp in &fam.samples {
                assert!(smp.value.is_finite() && smp.value >= 0.0, "{name}: {smp:?}");
            }
            continue;
        }
        histograms += 1;
        assert!(name.ends_with(suffix), "{name} in {units:?}");
        let mut series: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
        for smp in &fam.samples {
            let entry = series.entry(smp.series_key()).or_default();
            if smp.name.ends_with("_bucket") {
                let le = smp.label("le").unwrap_or_else(|| panic!("{name}: bucket without le: {smp:?}"));
                assert!(entry.1.is_none() && entry.2.is_none(), "{name}: bucket after _sum/_count");
                entry.0.push((parse_le(le), smp.value));
            } else if smp.name.ends_with("_sum") {
                assert!(entry.1.replace(smp.value).is_none(), "{name}: two _sum for {:?}", smp.labels);
            } else {
                assert!(entry.2.replace(smp.value).is_none(), "{name}: two _count for {:?}", smp.labels);
            }
        }
        for (labels, (buckets, sum, count)) in &series {
            let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
            assert_eq!(bounds.len(), documented.len(), "{name}{labels:?}: bucket count");
            for (got, want) in bounds.iter().zip(&documented) {
                assert!(
                    got == want || (got - want).abs() <= want * 1e-12,
                    "{name}{labels:?}: le {got} differs from the documented bound {want}"
                );
            }
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{name}{labels:?}: bounds not ascending");
            assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{name}{labels:?}: buckets not cumulative");
            let count = count.unwrap_or_else(|| panic!("{name}{labels:?}: no _count"));
            assert!(sum.is_some(), "{name}{labels:?}: no _sum");
            assert_eq!(buckets.last().unwrap().1, count, "{name}{labels:?}: le=\"+Inf\" != _count");
            assert!(count > 0.0, "{name}{labels:?}: empty series exported");
        }
    }
    assert_eq!(histograms, 2, "stage and exchange histograms");
}

fn check_values_against_summary(exp: &Exposition, s: &Summary, units: PrometheusUnits) {
    let (suffix, ms_per_unit) = unit(units);
    let stage_fam = format!("mm_stage_duration_{suffix}");
    let series_names = |fam: &str| -> BTreeSet<String> {
        exp.family(fam)
            .samples
            .iter()
            .filter(|x| x.name.ends_with("_count"))
            .map(|x| format!("{:?}", x.labels))
            .collect()
    };
    assert_eq!(series_names(&stage_fam).len(), s.stages.len(), "one series per stage");
    let check = |fam: &str, labels: &[(&str, &str)], st: &mm_trace::StageStats| {
        let count = exp.value(&format!("{fam}_count"), labels).unwrap_or_else(|| panic!("{fam}{labels:?} missing"));
        assert_eq!(count, st.count as f64, "{fam}{labels:?} _count");
        let sum = exp.value(&format!("{fam}_sum"), labels).unwrap();
        assert_close(&format!("{fam}{labels:?} _sum"), sum, st.histogram.sum_ns() as f64 / 1e6 / ms_per_unit);
        assert_close(&format!("{fam}{labels:?} _sum vs sum_ms"), sum * ms_per_unit, st.sum_ms);
        let cumulative = st.histogram.prometheus_cumulative();
        let les = exp
            .family(fam)
            .samples
            .iter()
            .filter(|x| x.name.ends_with("_bucket") && labels.iter().all(|(k, v)| x.label(k) == Some(*v)))
            .map(|x| x.value as u64)
            .collect::<Vec<_>>();
        assert_eq!(les, cumulative, "{fam}{labels:?} buckets");
    };
    for st in &s.stages {
        check(&stage_fam, &[("stage", &st.name)], st);
    }
    let ex_fam = format!("mm_exchange_req_{suffix}");
    assert_eq!(series_names(&ex_fam).len(), s.exchange.len(), "one series per exchange request kind");
    for e in &s.exchange {
        check(&ex_fam, &[("verb", &e.verb), ("api", &e.api)], &e.stats);
    }
    let value = |name: &str| exp.value(name, &[]).unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(value("mm_ticks_total"), s.ticks as f64);
    assert_eq!(value("mm_tick_deadline_miss_total"), s.deadline_misses as f64);
    assert_eq!(value("mm_tick_partial_fail_total"), s.partial_fails as f64);
    assert_eq!(value("mm_parallel_symbols"), s.parallel_symbols as f64);
    let trips = &exp.family("mm_guard_trips_total").samples;
    assert_eq!(trips.len(), s.guard_trips.len());
    for (reason, n) in &s.guard_trips {
        assert_eq!(exp.value("mm_guard_trips_total", &[("reason", reason)]), Some(*n as f64), "reason {reason:?}");
    }
    assert_eq!(value("mm_trace_spans_dropped_total"), s.health.spans_dropped as f64);
    assert_eq!(value("mm_trace_export_errors_total"), s.health.export_errors as f64);
    assert_eq!(value("mm_trace_label_overflow_total"), s.health.label_overflow as f64);
    assert_eq!(value("mm_trace_overhead_ratio"), s.health.overhead_ratio);
}

/// What `populate` recorded, independently of the summary.
fn check_known_values(exp: &Exposition, units: PrometheusUnits) {
    let (suffix, ms_per_unit) = unit(units);
    let stage = format!("mm_stage_duration_{suffix}");
    let le = |ms: f64| {
        let b = ms / ms_per_unit;
        exp.family(&stage)
            .samples
            .iter()
            .find(|x| x.label("stage") == Some("tick_total") && x.label("le").is_some_and(|l| parse_le(l) == b))
            .unwrap_or_else(|| panic!("no tick_total bucket le={b}"))
            .value
    };
    for name in ["tick_total", "fetch_md", "quote"] {
        assert_eq!(exp.value(&format!("{stage}_count"), &[("stage", name)]), Some(20.0), "{name}");
    }
    for (verb, api) in [("GET", "book"), ("POST", "order")] {
        assert_eq!(exp.value(&format!("mm_exchange_req_{suffix}_count"), &[("verb", verb), ("api", api)]), Some(20.0));
    }
    // 19 ticks of about 2 to 6 ms, one of about 254 ms.
    assert_eq!((le(1.0), le(10.0), le(200.0), le(250.0), le(300.0)), (0.0, 19.0, 19.0, 19.0, 20.0));
    let sum_ms = exp.value(&format!("{stage}_sum"), &[("stage", "tick_total")]).unwrap() * ms_per_unit;
    // 20 x 3.55 ms + 19 ms + 1.9 ms + 250 ms, plus one 1 us clock step per reading.
    assert!((341.9..342.2).contains(&sum_ms), "tick_total sum {sum_ms} ms");
    // quote: exactly 1.5 ms plus one clock step per span.
    let quote = exp.value(&format!("{stage}_sum"), &[("stage", "quote")]).unwrap() * ms_per_unit;
    assert_close("quote sum", quote, 20.0 * 1.501);
    assert_eq!(exp.value("mm_ticks_total", &[]), Some(20.0));
    assert_eq!(exp.value("mm_tick_deadline_miss_total", &[]), Some(1.0));
    assert_eq!(exp.value("mm_tick_partial_fail_total", &[]), Some(4.0));
    assert_eq!(exp.value("mm_parallel_symbols", &[]), Some(8.0));
    for (reason, n) in REASONS {
        assert_eq!(exp.value("mm_guard_trips_total", &[("reason", reason)]), Some(*n as f64), "escaped {reason:?}");
    }
    for (fam, kind) in [
        ("mm_guard_trips_total", "counter"),
        ("mm_tick_deadline_miss_total", "counter"),
        ("mm_ticks_total", "counter"),
        ("mm_tick_partial_fail_total", "counter"),
        ("mm_parallel_symbols", "gauge"),
        ("mm_trace_spans_dropped_total", "counter"),
        ("mm_trace_export_errors_total", "counter"),
        ("mm_trace_label_overflow_total", "counter"),
        ("mm_trace_overhead_ratio", "gauge"),
    ] {
        assert_eq!(exp.family(fam).kind, kind, "{fam}");
    }
}

#[test]
fn label_cardinality_cap_folds_new_reasons_into_other_and_counts_them() {
    let _g = setup(cfg());
    // `reset` opens a new window: the first `cap` distinct reasons tripped after it get labels.
    mm_trace::init(TraceConfig { label_cardinality_cap: 3, ..cfg() }).unwrap();
    mm_trace::reset();
    let mut total = 0;
    for i in 0..10u64 {
        for _ in 0..=i {
            mm_trace::guard_trip(&format!("order_id_{i}"));
            total += 1;
        }
    }
    mm_trace::guard_trip("other"); // an explicit `other` is not an overflow
    total += 1;

    let s = mm_trace::summary();
    let want_kept = [("order_id_0".to_owned(), 1), ("order_id_1".to_owned(), 2), ("order_id_2".to_owned(), 3)];
    let overflow = (4..=10).sum::<u64>();
    let mut want = want_kept.to_vec();
    want.push(("other".to_owned(), overflow + 1));
    assert_eq!(s.guard_trips, want);
    assert_eq!(s.guard_trips.iter().map(|(_, n)| n).sum::<u64>(), total, "every trip counted once");
    assert_eq!(s.health.label_overflow, overflow);

    let exp = Exposition::parse(&mm_trace::prometheus_text());
    let trips: Vec<(String, f64)> = exp
        .family("mm_guard_trips_total")
        .samples
        .iter()
        .map(|x| (x.label("reason").unwrap().to_owned(), x.value))
        .collect();
    let want: Vec<(String, f64)> = want.into_iter().map(|(r, n)| (r, n as f64)).collect();
    assert_eq!(trips, want);
    assert_eq!(exp.value("mm_trace_label_overflow_total", &[]), Some(overflow as f64));
    // Reasons already known keep counting under their own name.
    mm_trace::guard_trip("order_id_1");
    assert_eq!(mm_trace::summary().guard_trips("order_id_1"), 3);
}

#[test]
fn collector_health_families_report_dropped_spans_export_errors_and_overhead() {
    let file = TempDir::new("health");
    let not_a_dir = file.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let _g = setup(TraceConfig {
        max_spans_per_tick: 3,
        export_golden: true,
        golden_trace_interval: 1,
        golden_dir: not_a_dir.join("traces"),
        ..cfg()
    });
    for _ in 0..5 {
        let _t = TickGuard::begin(&TICK);
        for _ in 0..10 {
            let _g = StageGuard::enter(&FETCH_MD);
            std::hint::black_box((0..1000u64).sum::<u64>());
        }
    }
    mm_trace::flush();
    let s = mm_trace::summary();
    assert_eq!(s.health.spans_dropped, 5 * 7, "10 spans per tick, 3 kept");
    assert_eq!(s.stage("fetch_md").unwrap().count, 50, "dropped spans still feed the histogram");
    assert_eq!(s.health.export_errors, 5, "one failed golden file per sampled tick");
    let text = mm_trace::prometheus_text();
    let exp = Exposition::parse(&text);
    assert_eq!(exp.value("mm_trace_spans_dropped_total", &[]), Some(35.0));
    assert_eq!(exp.value("mm_trace_spans_recorded_total", &[]), Some(50.0));
    assert_eq!(exp.value("mm_trace_export_errors_total", &[]), Some(5.0));
    let ratio = exp.value("mm_trace_overhead_ratio", &[]).unwrap();
    assert!(ratio > 0.0 && ratio <= 1.0, "overhead ratio {ratio}");
    assert_eq!(ratio, s.health.overhead_ratio);
    let cost = exp.value("mm_trace_span_cost_seconds", &[]).unwrap();
    assert!(cost > 0.0 && cost < 1e-3, "span cost {cost} s");
    for t in mm_trace::recent_traces() {
        assert_eq!((t.spans.len(), t.spans_dropped), (3, 7));
    }
}

// ---------------------------------------------------------------------------------------------
// Perf profile

#[test]
fn perf_profile_has_the_schema_and_matches_the_summary() {
    let _g = setup(cfg());
    populate();
    mm_trace::clear_profile_labels();
    mm_trace::set_profile_label("track", "canary");
    mm_trace::set_profile_label("build", "a\"b");
    let s = mm_trace::summary();
    let doc: Value = serde_json::from_str(&mm_trace::profile_json()).unwrap();
    mm_trace::clear_profile_labels();

    assert_eq!(doc["schema"], "mm-trace/perf-profile");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["labels"], serde_json::json!({ "track": "canary", "build": "a\"b" }));
    assert_eq!(doc["ticks"], 20);
    assert_eq!(doc["deadline_misses"], 1);
    assert_eq!(doc["deadline_miss_pct"], 5.0);
    assert_eq!(doc["partial_fails"], 4);
    assert_eq!(doc["deadline_ms"], 200.0);
    assert!(doc["created_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
    let stages = doc["stages"].as_object().unwrap();
    let names: BTreeSet<&str> = stages.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["fetch_md", "quote", "tick_total"]));
    for st in &s.stages {
        check_profile_stage(&st.name, &stages[&st.name], st);
    }
    let tick_total = &stages["tick_total"];
    assert_eq!(tick_total["count"], 20);
    assert!(tick_total["max_ms"].as_f64().unwrap() > 250.0);
    assert!(tick_total["p50_ms"].as_f64().unwrap() < 10.0);
    let order = &doc["exchange"]["POST order"];
    assert_eq!((&order["verb"], &order["api"]), (&Value::from("POST"), &Value::from("order")));
    check_profile_stage("POST order", order, &s.exchange("POST", "order").unwrap().stats);
    for (reason, n) in REASONS {
        assert_eq!(doc["guard_trips"][reason], *n, "{reason:?}");
    }
}

fn check_profile_stage(name: &str, v: &Value, st: &mm_trace::StageStats) {
    assert_eq!(v["count"], st.count, "{name}");
    for (key, want) in [
        ("p50_ms", st.p50_ms),
        ("p95_ms", st.p95_ms),
        ("p99_ms", st.p99_ms),
        ("max_ms", st.max_ms),
        ("sum_ms", st.sum_ms),
    ] {
        let got = v[key].as_f64().unwrap_or_else(|| panic!("{name}.{key} missing"));
        assert!((got - want).abs() <= want.abs() * 1e-9, "{name}.{key}: {got} vs {want}");
    }
    assert!(st.p50_ms <= st.p95_ms && st.p95_ms <= st.p99_ms && st.p99_ms <= st.max_ms, "{name}");
    let buckets = v["buckets"].as_array().unwrap();
    let mut sum = 0;
    let mut prev_hi = 0;
    for b in buckets {
        let [lo, hi, c] = [0, 1, 2].map(|i| b[i].as_u64().unwrap());
        assert!(lo < hi && lo >= prev_hi && c > 0, "{name}: bucket {b}");
        prev_hi = hi;
        sum += c;
    }
    assert_eq!(sum, st.count, "{name}: buckets sum to count");
}

#[test]
fn write_profile_is_atomic_into_nested_dirs_and_fails_with_the_path() {
    let _g = setup(cfg());
    populate();
    let dir = TempDir::new("profile");
    let path = dir.path().join("artifacts/audit/nested/perf_profile.json");
    mm_trace::write_profile(&path).unwrap();
    mm_trace::write_profile(&path).unwrap(); // replaces
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["ticks"], 20);
    let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("perf_profile.json")], "no temporary file left");

    // A regular file where a directory should be: fails even for root.
    let file = dir.path().join("plain_file");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("sub/perf_profile.json");
    let err = mm_trace::write_profile(&bad).unwrap_err();
    assert!(matches!(err, mm_trace::Error::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&file.join("sub").display().to_string()), "error names the path: {msg}");
    // The target is a directory: the rename fails, the temporary file is removed.
    let err = mm_trace::write_profile(dir.path().join("artifacts")).unwrap_err();
    assert!(err.to_string().contains(&dir.path().join("artifacts").display().to_string()), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
}

#[test]
fn concurrent_writers_of_one_file_never_leave_half_a_file() {
    let _g = setup(cfg());
    populate();
    let dir = TempDir::new("profile-race");
    let path = dir.path().join("perf_profile.json");
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (torn, errors) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut torn = 0;
            while done.load(std::sync::atomic::Ordering::Relaxed) < 4 && Instant::now() < deadline {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    torn += usize::from(serde_json::from_str::<Value>(&text).is_err());
                }
            }
            torn
        });
        let writers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let errors: Vec<String> =
                        (0..100).filter_map(|_| mm_trace::write_profile(&path).err().map(|e| e.to_string())).collect();
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    errors
                })
            })
            .collect();
        let errors: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        (reader.join().unwrap(), errors)
    });
    assert_eq!(errors, Vec::<String>::new(), "concurrent write_profile calls failed");
    assert_eq!(torn, 0, "a reader saw a torn file");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("perf_profile.json")], "no temporary file left");
}

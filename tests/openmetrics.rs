//! OpenMetrics 1.0 text with exemplars (`mm_trace::openmetrics_text`), checked by the reference
//! parser (`prometheus_client`'s, in Python), and the endpoint's content negotiation and
//! `/traces` (issue 15). The real Prometheus scraping exemplars: tests/prometheus_server.rs.
//!
//! Every exemplar is checked against the kept tick it names: that tick holds a span of the
//! series with exactly the exemplar's duration, the duration lands in the exemplar's bucket by
//! the histogram's own edge rule, the tick is the most recent one with a span in that bucket,
//! and the timestamp is the tick's end.

mod support;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use mm_trace::__private::{Site, StageGuard, TickGuard};
use mm_trace::histogram::prometheus_edge_ns;
use mm_trace::{TickTrace, TraceConfig, test_clock};
use serde_json::Value;
use support::{Exposition, http_get, http_raw, openmetrics_parse, parse_le, require_openmetrics_parser};

static SERIAL: Mutex<()> = Mutex::new(());
static TICK: Site = Site::tick("tick");
static QUOTE: Site = Site::tick_kind("quote");
static FETCH_MD: Site = Site::stage("fetch_md");
static SPREAD: Site = Site::stage("spread");
static POST_ORDER: Site = Site::exchange("POST", "order");

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn setup(cfg: TraceConfig) -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(cfg).unwrap();
    mm_trace::reset();
    // The worker measures its span cost once (the overhead gauges change until it has).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mm_trace::summary().health.span_cost_ns <= 0.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    g
}

fn config() -> TraceConfig {
    TraceConfig { sample_rate: 1.0, export_golden: false, chrome_ring_ticks: 256, ..Default::default() }
}

/// `n` ticks under the test clock: fetch_md 1..n ms (in a cycle of 7), spread 0.2 ms, an order
/// request of 2 or 30 ms, and a `quote` tick of 0.5 ms; guard trips with hostile label values.
fn record(n: u64) {
    test_clock::install(1_000);
    for i in 1..=n {
        {
            let _t = TickGuard::begin(&TICK);
            {
                let _g = StageGuard::enter(&FETCH_MD);
                test_clock::advance((i % 7 + 1) * 1_000_000);
            }
            {
                let _g = StageGuard::enter(&SPREAD);
                test_clock::advance(200_000);
            }
            let _e = StageGuard::enter(&POST_ORDER);
            test_clock::advance(if i % 5 == 0 { 30_000_000 } else { 2_000_000 });
        }
        {
            let _q = TickGuard::begin(&QUOTE);
            test_clock::advance(500_000);
        }
        mm_trace::guard_trip(if i % 2 == 0 { "vol_soft" } else { "say \"hi\"\\\nnow" });
    }
    test_clock::uninstall();
    mm_trace::flush();
}

/// One bucket sample of the parsed OpenMetrics text.
#[derive(Debug, Clone)]
struct Bucket {
    family: String,
    labels: BTreeMap<String, String>,
    le: f64,
    /// This bucket's own count (cumulative minus the previous bucket's).
    own: f64,
    /// The previous bucket's `le` (0 for the first).
    below: f64,
    exemplar: Option<(String, u64, f64, f64)>,
}

/// The bucket samples of every histogram, in order, with their exemplars.
fn buckets(families: &Value) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for f in families.as_array().unwrap() {
        if f["type"] != "histogram" {
            continue;
        }
        let family = f["name"].as_str().unwrap().to_owned();
        let mut prev: Option<(BTreeMap<String, String>, f64, f64)> = None;
        for s in f["samples"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            if !name.ends_with("_bucket") {
                assert!(s["exemplar"].is_null(), "exemplar on {name}: {s}");
                continue;
            }
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(s["labels"].clone()).expect("labels are strings");
            let le = parse_le(&labels.remove("le").unwrap());
            let value = s["value"].as_f64().unwrap();
            let (below, below_count) = match &prev {
                Some((l, le, count)) if *l == labels => (*le, *count),
                _ => (0.0, 0.0),
            };
            let exemplar = s["exemplar"].as_object().map(|e| {
                let l = &e["labels"];
                let trace_id = l["trace_id"].as_str().unwrap().to_owned();
                let tick_id = l["tick_id"].as_str().unwrap().parse().unwrap();
                (trace_id, tick_id, e["value"].as_f64().unwrap(), e["timestamp"].as_f64().unwrap())
            });
            out.push(Bucket {
                family: family.clone(),
                labels: labels.clone(),
                le,
                own: value - below_count,
                below,
                exemplar,
            });
            prev = Some((labels, le, value));
        }
    }
    out
}

/// The durations (ns) a kept tick recorded for a series: its spans of that stage or request,
/// or its whole duration for tick_total.
fn durations(t: &TickTrace, b: &Bucket) -> Vec<u64> {
    if b.labels.get("stage").map(String::as_str) == Some("tick_total") {
        let kind = b.labels.get("tick").map_or("tick", String::as_str);
        return if t.name == kind { vec![t.duration_ns] } else { vec![] };
    }
    let name = match (b.labels.get("stage"), b.labels.get("verb"), b.labels.get("api")) {
        (Some(stage), _, _) => stage.clone(),
        (None, Some(verb), Some(api)) => format!("{verb} {api}"),
        _ => panic!("series {:?}", b.labels),
    };
    t.spans.iter().filter(|s| s.name == name).map(|s| s.end_ns - s.start_ns).collect()
}

/// Whether `ns` lands in the bucket `(below, le]` by the histogram's rule.
fn lands_in(ns: u64, b: &Bucket, unit_ns: f64) -> bool {
    let to_ms = unit_ns / 1e6; // le values are in the exposition's unit, edges take ms
    let low = if b.below == 0.0 { 0 } else { prometheus_edge_ns(b.below * to_ms) };
    let high = if b.le.is_infinite() { u64::MAX } else { prometheus_edge_ns(b.le * to_ms) };
    low <= ns && ns < high
}

/// Checks every exemplar against the kept ticks (see the module docs); returns how many.
fn check_exemplars(bs: &[Bucket], traces: &[TickTrace], unit_ns: f64) -> usize {
    let mut checked = 0;
    for b in bs {
        let Some((trace_id, tick_id, value, ts)) = &b.exemplar else {
            // Every bucket holding samples of a kept tick's spans has its exemplar.
            let any = traces.iter().any(|t| durations(t, b).iter().any(|ns| lands_in(*ns, b, unit_ns)));
            assert!(!any || b.own == 0.0, "bucket le={} of {} {:?} has no exemplar", b.le, b.family, b.labels);
            continue;
        };
        assert!(b.own > 0.0, "exemplar on a bucket with no samples of its own: {b:?}");
        assert!(*value <= b.le, "exemplar value {value} above its le: {b:?}");
        let ns = (value * unit_ns).round() as u64;
        assert!(lands_in(ns, b, unit_ns), "{ns} ns not in its bucket by the histogram's rule: {b:?}");
        let t = traces
            .iter()
            .find(|t| t.tick_id == *tick_id)
            .unwrap_or_else(|| panic!("exemplar names tick {tick_id}, not kept: {b:?}"));
        assert_eq!(&t.trace_id, trace_id, "tick {tick_id}'s trace id");
        assert!(durations(t, b).contains(&ns), "tick {tick_id} has no {:?} span of {ns} ns: {b:?}", b.labels);
        // The most recent kept tick with a span in this bucket.
        let latest =
            traces.iter().filter(|t| durations(t, b).iter().any(|d| lands_in(*d, b, unit_ns))).map(|t| t.tick_id);
        assert_eq!(latest.max(), Some(*tick_id), "not the most recent tick of {b:?}");
        let end_s = (t.start_unix_ns + t.duration_ns) as f64 / 1e9;
        assert!((ts - end_s).abs() < 1e-6, "timestamp {ts} is not tick {tick_id}'s end {end_s}");
        checked += 1;
    }
    checked
}

/// The OpenMetrics text parses with the reference parser, holds the same samples as the 0.0.4
/// text (counters' families named without `_total`), and its exemplars lead to their ticks.
#[test]
fn openmetrics_text_passes_the_reference_parser_and_its_exemplars_lead_to_their_ticks() {
    let _g = setup(config());
    let Some(python) = require_openmetrics_parser() else { return };
    record(40);
    let traces = mm_trace::recent_traces();
    let om = mm_trace::openmetrics_text();
    assert!(om.ends_with("# EOF\n"));
    let families = openmetrics_parse(&python, &om).unwrap_or_else(|e| panic!("{e}\n{om}"));

    // Same samples as the 0.0.4 text (le compared as numbers: "10.0" here, "10" there).
    let text = Exposition::parse(&mm_trace::prometheus_text());
    let key = |name: &str, labels: Vec<(String, String)>| {
        let mut l: Vec<(String, String)> =
            labels.into_iter().map(|(k, v)| if k == "le" { (k, parse_le(&v).to_string()) } else { (k, v) }).collect();
        l.sort();
        (name.to_owned(), l)
    };
    let mut ours = BTreeMap::new();
    for f in text.families.values() {
        for s in &f.samples {
            ours.insert(key(&s.name, s.labels.clone()), s.value);
        }
    }
    let mut theirs = BTreeMap::new();
    for f in families.as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let text_name = if f["type"] == "counter" { format!("{name}_total") } else { name.to_owned() };
        let text_family = text.family(&text_name);
        assert_eq!(text_family.kind, f["type"].as_str().unwrap(), "{name}");
        if f["type"] == "counter" {
            assert!(!name.ends_with("_total"), "counter family {name}");
        }
        let unit = f["unit"].as_str().unwrap();
        assert_eq!(
            unit,
            if name.ends_with("_ms") {
                "ms"
            } else if name.ends_with("_seconds") {
                "seconds"
            } else {
                unit
            }
        );
        for s in f["samples"].as_array().unwrap() {
            let labels: BTreeMap<String, String> = serde_json::from_value(s["labels"].clone()).unwrap();
            let v = s["value"].as_f64().unwrap();
            theirs.insert(key(s["name"].as_str().unwrap(), labels.into_iter().collect()), v);
        }
    }
    let differ: Vec<_> = ours
        .iter()
        // serde_json reads floats to within an ulp (no `float_roundtrip`): compare closely, not exactly.
        .filter(|(k, v)| theirs.get(*k).is_none_or(|t| !(t == *v || (t - *v).abs() <= v.abs() * 1e-12)))
        .map(|(k, v)| (k.clone(), *v, theirs.get(k).copied()))
        .chain(theirs.iter().filter(|(k, _)| !ours.contains_key(*k)).map(|(k, v)| (k.clone(), f64::NAN, Some(*v))))
        .collect();
    assert!(differ.is_empty(), "the two formats hold different samples (0.0.4, OpenMetrics): {differ:#?}");
    assert!(ours.keys().any(|(n, l)| n == "mm_guard_trips_total" && l.iter().any(|(_, v)| v == "say \"hi\"\\\nnow")));

    let bs = buckets(&families);
    let checked = check_exemplars(&bs, &traces, 1e6);
    let series = |stage: &str| bs.iter().filter(|b| b.labels.get("stage").is_some_and(|s| s == stage)).count();
    assert!(series("fetch_md") > 0 && series("tick_total") > 0);
    let with = |f: &dyn Fn(&Bucket) -> bool| bs.iter().filter(|b| f(b) && b.exemplar.is_some()).count();
    assert_eq!(with(&|b| b.labels.get("stage").is_some_and(|s| s == "fetch_md")), 7, "fetch_md: 1..7 ms, 7 buckets");
    assert_eq!(with(&|b| b.labels.get("api").is_some_and(|s| s == "order")), 2, "order: 2 and 30 ms");
    assert!(with(&|b| b.labels.get("tick").is_some_and(|s| s == "quote")) == 1, "the quote kind's tick_total");
    eprintln!("{checked} exemplars checked against their ticks");

    // Base units: canonical le values in seconds, the same exemplars in seconds.
    mm_trace::init(TraceConfig { prometheus_base_units: true, ..config() }).unwrap();
    let om = mm_trace::openmetrics_text();
    assert!(om.contains("# UNIT mm_stage_duration_seconds seconds\n"), "{om}");
    assert!(om.contains("le=\"2.5e-06\""), "canonical le values: {om}");
    let families = openmetrics_parse(&python, &om).unwrap_or_else(|e| panic!("{e}\n{om}"));
    assert_eq!(check_exemplars(&buckets(&families), &traces, 1e9), checked);
}

/// Buckets of a configuration's own bounds get the exemplars: a new configuration with other
/// bounds retires the old ones, and `reset` forgets them all.
#[test]
fn exemplars_follow_the_configured_buckets_and_reset() {
    let bounds = vec![1.5, 3.0, 10.0, 50.0];
    let _g = setup(TraceConfig { prometheus_buckets_ms: Some(bounds), ..config() });
    let Some(python) = require_openmetrics_parser() else { return };
    record(14);
    let traces = mm_trace::recent_traces();
    let om = mm_trace::openmetrics_text();
    let families = openmetrics_parse(&python, &om).unwrap_or_else(|e| panic!("{e}\n{om}"));
    let bs = buckets(&families);
    assert!(bs.iter().all(|b| [1.5, 3.0, 10.0, 50.0, f64::INFINITY].contains(&b.le)));
    assert!(check_exemplars(&bs, &traces, 1e6) >= 4);
    mm_trace::reset();
    let om = mm_trace::openmetrics_text();
    assert!(!om.contains(" # {"), "exemplars after reset:\n{om}");
}

/// Only kept ticks give exemplars; a slow tick kept unsampled gives them only where its
/// histograms counted it (tick_total and exchange requests: its stages are in the trace only).
#[test]
fn only_kept_ticks_give_exemplars_and_only_where_they_were_counted() {
    let _g = setup(TraceConfig { sample_rate: 0.0, capture_slow_ticks: false, ..config() });
    record(20);
    let om = mm_trace::openmetrics_text();
    assert!(om.contains("mm_stage_duration_ms_count{stage=\"tick_total\"} 20\n"), "{om}");
    assert!(!om.contains(" # {"), "unsampled ticks gave exemplars:\n{om}");

    let _ = mm_trace::init(TraceConfig { sample_rate: 0.0, capture_slow_ticks: true, deadline_ms: 20.0, ..config() });
    mm_trace::reset();
    record(10); // the 5th and 10th `tick` (ids 9 and 19) are slow: a 30 ms order request
    let traces = mm_trace::recent_traces();
    assert_eq!(traces.iter().map(|t| t.tick_id).collect::<Vec<_>>(), [9, 19], "the slow ticks are kept");
    let om = mm_trace::openmetrics_text();
    let exemplars = om_exemplar_lines(&om);
    // tick_total: 36.2 and 34.2 ms, two buckets; the order requests (30 ms) share one.
    let tick_total: Vec<_> =
        exemplars.iter().filter(|l| l.starts_with("mm_stage_duration_ms_bucket{stage=\"tick_total\",le=")).collect();
    let order: Vec<_> =
        exemplars.iter().filter(|l| l.starts_with("mm_exchange_req_ms_bucket{verb=\"POST\",api=\"order\",")).collect();
    assert_eq!((tick_total.len(), order.len(), exemplars.len()), (2, 1, 3), "{exemplars:#?}");
    assert!(order[0].contains(&format!("trace_id=\"{}\",tick_id=\"19\"", traces[1].trace_id)), "{}", order[0]);
    assert!(
        !om.contains("mm_stage_duration_ms_bucket{stage=\"fetch_md\""),
        "stages of unsampled ticks are not in histograms"
    );
}

fn om_exemplar_lines(om: &str) -> Vec<&str> {
    om.lines().filter(|l| l.contains(" # {")).collect()
}

/// `/metrics` answers OpenMetrics to Prometheus' `Accept` and 0.0.4 otherwise; `/traces` lists
/// the ring; `/traces/<id>` answers golden JSON, Chrome events or SVG, and `404` once the tick
/// has left the ring; an exemplar's trace id resolves there.
#[test]
fn the_endpoint_negotiates_metrics_and_serves_the_kept_ticks() {
    let _g = setup(TraceConfig { chrome_ring_ticks: 4, ..config() });
    record(1);
    let first = mm_trace::recent_traces()[0].clone();
    assert_eq!(first.tick_id, 1);
    record(5); // ticks 1..=12 (a `tick` and a `quote` each time): the ring of 4 keeps 9..=12
    let server = mm_trace::serve_metrics("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let get = |path: &str, accept: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n");
        http_raw(addr, req.as_bytes()).unwrap()
    };

    let om = get("/metrics", PROMETHEUS_ACCEPT);
    assert_eq!(om.status, 200);
    assert_eq!(om.header("Content-Type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert_eq!(om.header("Vary"), Some("Accept"));
    assert!(om.body.ends_with("# EOF\n") && om.body.contains(" # {trace_id=\""), "{}", om.body);
    for accept in ["*/*", "text/plain;version=0.0.4"] {
        let text = get("/metrics", accept);
        assert!(text.header("Content-Type").unwrap().starts_with("text/plain; version=0.0.4"), "{accept}");
        assert!(!text.body.contains("# EOF") && !text.body.contains(" # {"), "{accept}");
        Exposition::parse(&text.body);
    }

    let traces = mm_trace::recent_traces();
    assert_eq!(traces.iter().map(|t| t.tick_id).collect::<Vec<_>>(), [9, 10, 11, 12]);
    let list = http_get(addr, "/traces").unwrap();
    assert_eq!((list.status, list.header("Content-Type")), (200, Some("application/json")));
    let list: Value = serde_json::from_str(&list.body).unwrap();
    let listed: Vec<u64> = list.as_array().unwrap().iter().map(|t| t["tick_id"].as_u64().unwrap()).collect();
    assert_eq!(listed, [12, 11, 10, 9], "newest first");
    let newest = &list[0];
    assert_eq!(newest["trace_id"], traces[3].trace_id);
    assert_eq!(newest["reason"], "sampled");
    assert_eq!(newest["duration_ns"], traces[3].duration_ns);

    let id = &traces[3].trace_id;
    let golden = http_get(addr, &format!("/traces/{id}")).unwrap();
    assert_eq!((golden.status, golden.header("Content-Type")), (200, Some("application/json")));
    assert_eq!(golden.body, mm_trace::golden_trace_json_from(&traces[3]));
    let chrome = http_get(addr, &format!("/traces/{id}?format=chrome&tick_id=12")).unwrap();
    let events: Value = serde_json::from_str(&chrome.body).unwrap();
    assert!(events["traceEvents"].as_array().is_some_and(|e| !e.is_empty()), "{}", chrome.body);
    let svg = http_get(addr, &format!("/traces/{}.svg", id.to_uppercase())).unwrap();
    assert_eq!((svg.status, svg.header("Content-Type")), (200, Some("image/svg+xml")));
    assert!(svg.body.starts_with("<svg"), "{}", svg.body);
    let head = http_raw(addr, format!("HEAD /traces/{id} HTTP/1.0\r\n\r\n").as_bytes()).unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(http_get(addr, &format!("/traces/{id}?tick_id=11")).unwrap().status, 404, "tick 11 has another id");

    // Tick 1 has left the ring of 4: gone. A malformed id is not found either.
    let r = http_get(addr, &format!("/traces/{}", first.trace_id)).unwrap();
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.body.contains("chrome_ring_ticks"), "{}", r.body);
    assert_eq!(http_get(addr, "/traces/xyz").unwrap().status, 404);

    // The trace id of every exemplar of the scrape resolves while its tick is in the ring.
    for line in om_exemplar_lines(&om.body) {
        let trace_id = line.split("trace_id=\"").nth(1).unwrap().split('"').next().unwrap();
        let tick_id: u64 = line.split("tick_id=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let status = http_get(addr, &format!("/traces/{trace_id}?tick_id={tick_id}")).unwrap().status;
        assert_eq!(status, if tick_id >= 9 { 200 } else { 404 }, "{line}");
    }
}

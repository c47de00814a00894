//! Label values known at run time (`#[exchange_req(.., venue = self.venue())]`) and several kinds
//! of tick (`#[traced_tick(name = "router")]`), through the public API and the exposition.

use std::sync::Mutex;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations;
use mm_trace::{TraceConfig, exchange_req, stage, traced_tick};

static SERIAL: Mutex<()> = Mutex::new(());

fn setup(cfg: TraceConfig) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { export_golden: false, capture_slow_ticks: false, ..cfg }).unwrap();
    mm_trace::reset();
    g
}

struct Venue {
    name: &'static str,
}

impl Venue {
    fn venue(&self) -> &str {
        self.name
    }

    #[exchange_req(verb = "GET", api = "quote", venue = self.venue())]
    fn quote(&self) -> u32 {
        7
    }

    #[exchange_req(verb = "POST", api = "order", venue = self.name, side = String::from("buy"))]
    async fn order(&self) -> Result<u32, String> {
        if self.name == "kraken" { Err("rejected".into()) } else { Ok(1) }
    }
}

#[test]
fn exchange_requests_are_recorded_per_run_time_label_value() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    let venues = [Venue { name: "binance" }, Venue { name: "kraken" }, Venue { name: "we\"ird\nvenue" }];
    for (i, v) in venues.iter().enumerate() {
        for _ in 0..=i {
            assert_eq!(v.quote(), 7);
        }
    }
    let s = mm_trace::summary();
    let count = |venue: &str| s.exchange_labeled("GET", "quote", &[("venue", venue)]).map_or(0, |e| e.stats.count);
    assert_eq!((count("binance"), count("kraken"), count("we\"ird\nvenue")), (1, 2, 3));
    let text = mm_trace::prometheus_text();
    assert!(text.contains("mm_exchange_req_ms_count{verb=\"GET\",api=\"quote\",venue=\"kraken\"} 2\n"), "{text}");
    assert!(text.contains(r#"mm_exchange_req_ms_count{verb="GET",api="quote",venue="we\"ird\nvenue"} 3"#), "{text}");

    // Several labels, an owned value, async, errors counted per label value.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let _ = venues[0].order().await;
        let _ = venues[1].order().await;
    });
    let s = mm_trace::summary();
    let kraken = s.exchange_labeled("POST", "order", &[("venue", "kraken"), ("side", "buy")]).unwrap();
    assert_eq!((kraken.stats.count, kraken.stats.errors), (1, 1));
    let text = mm_trace::prometheus_text();
    assert!(
        text.contains("mm_exchange_req_errors_total{verb=\"POST\",api=\"order\",venue=\"kraken\",side=\"buy\"} 1\n"),
        "{text}"
    );
}

#[traced_tick]
fn quote_tick(v: &Venue) -> u32 {
    v.quote()
}

#[test]
fn the_trace_carries_the_label_values_and_a_seen_value_costs_no_allocation() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    let v = Venue { name: "bybit" };
    quote_tick(&v);
    let trace = mm_trace::recent_traces().pop().unwrap();
    let span = trace.spans.iter().find(|s| s.name == "GET quote").unwrap();
    assert_eq!(span.labels, vec![("venue".to_owned(), "bybit".to_owned())]);
    let golden: serde_json::Value = serde_json::from_str(&mm_trace::golden_trace_json_from(&trace)).unwrap();
    assert_eq!(golden["spans"][0]["labels"]["venue"], "bybit", "{golden}");
    // Seen on this thread: the label lookup allocates nothing (outside a tick, so that no trace
    // buffer grows either).
    assert_eq!(allocations(|| (0..1000).for_each(|_| assert_eq!(v.quote(), 7))), 0);
}

#[test]
fn label_values_past_the_cardinality_cap_fold_into_other() {
    let _g = setup(TraceConfig { label_cardinality_cap: 3, ..Default::default() });
    let before = mm_trace::summary().health.label_overflow;
    let names: Vec<&'static str> = (0..8).map(|i| &*Box::leak(format!("cap-venue-{i}").into_boxed_str())).collect();
    for name in &names {
        Venue { name }.quote();
    }
    let s = mm_trace::summary();
    let quotes: Vec<_> = s.exchange.iter().filter(|e| e.verb == "GET" && e.api == "quote").collect();
    let values: Vec<&str> = quotes.iter().map(|e| e.labels[0].1.as_str()).collect();
    assert!(values.contains(&"other"), "{values:?}");
    assert!(quotes.len() <= 3 + 1, "{values:?}");
    let other = s.exchange_labeled("GET", "quote", &[("venue", "other")]).unwrap();
    assert!(other.stats.count >= 5, "{}", other.stats.count);
    assert!(s.health.label_overflow >= before + 5);
}

#[stage]
fn route() {}

#[traced_tick(name = "router")]
fn router_tick() {
    route();
}

#[traced_tick(name = "market_data")]
fn md_tick(slow: bool) -> Result<(), String> {
    if slow {
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    Ok(())
}

#[traced_tick]
fn plain_tick() {}

#[test]
fn named_kinds_of_tick_have_their_own_tick_total_and_misses() {
    let _g = setup(TraceConfig { sample_rate: 1.0, deadline_ms: 1.0, ..Default::default() });
    for _ in 0..5 {
        router_tick();
    }
    for i in 0..4 {
        md_tick(i == 0).unwrap();
    }
    plain_tick();
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 10, "every kind counts in the total");
    assert_eq!(s.stage("tick_total").unwrap().count, 1, "the unnamed kind");
    let router = s.tick_kind("router").unwrap();
    assert_eq!(router.stats.count, 5);
    let md = s.tick_kind("market_data").unwrap();
    assert_eq!((md.stats.count, md.deadline_misses), (4, 1));
    assert_eq!(md.deadline_ms, 1.0, "no ticks.market_data: the default deadline");
    let text = mm_trace::prometheus_text();
    assert!(text.contains("\nmm_ticks_total 1\n"), "{text}");
    assert!(text.contains("\nmm_ticks_total{tick=\"router\"} 5\n"), "{text}");
    assert!(text.contains("\nmm_tick_deadline_miss_total{tick=\"market_data\"} 1\n"), "{text}");
    assert!(text.contains("mm_stage_duration_ms_count{stage=\"tick_total\",tick=\"router\"} 5\n"), "{text}");
    let traces = mm_trace::recent_traces();
    assert!(traces.iter().any(|t| t.name == "router" && t.spans.iter().any(|s| s.name == "route")));
    let profile: serde_json::Value = serde_json::from_str(&mm_trace::profile_json()).unwrap();
    assert_eq!(profile["stages"]["tick_total:router"]["count"], 5);
    assert_eq!(profile["tick_kinds"]["market_data"]["deadline_misses"], 1);
}

#[test]
fn a_single_unnamed_tick_exposes_no_tick_label() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    plain_tick();
    let text = mm_trace::prometheus_text();
    assert!(text.contains("\nmm_ticks_total 1\n"), "{text}");
    let s = mm_trace::summary();
    // Kinds registered earlier in this process have no ticks in this window: none listed.
    assert!(s.tick_kinds.iter().all(|k| k.stats.count == 0), "{:?}", s.tick_kinds);
    assert!(!text.contains("tick="), "{text}");
    let profile: serde_json::Value = serde_json::from_str(&mm_trace::profile_json()).unwrap();
    assert!(profile.get("tick_kinds").is_none());
}

#[test]
fn each_named_kind_has_the_deadline_its_config_gives() {
    let mut cfg = TraceConfig { sample_rate: 1.0, deadline_ms: 1.0, ..Default::default() };
    cfg.ticks.insert("market_data".into(), mm_trace::TickConfig { deadline_ms: Some(50.0) });
    let _g = setup(cfg);
    for i in 0..4 {
        md_tick(i == 0).unwrap(); // one 3 ms tick: over 1 ms, under market_data's 50 ms
    }
    router_tick();
    let s = mm_trace::summary();
    let md = s.tick_kind("market_data").unwrap();
    assert_eq!((md.deadline_ms, md.deadline_misses), (50.0, 0));
    assert_eq!(s.tick_kind("router").unwrap().deadline_ms, 1.0);
    // Back to no per-kind deadline: the 3 ms tick misses the default 1 ms.
    let _ = mm_trace::init(TraceConfig {
        sample_rate: 1.0,
        deadline_ms: 1.0,
        export_golden: false,
        capture_slow_ticks: false,
        ..Default::default()
    });
    mm_trace::reset();
    md_tick(true).unwrap();
    assert_eq!(mm_trace::summary().tick_kind("market_data").unwrap().deadline_misses, 1);
}

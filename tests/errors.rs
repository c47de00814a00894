//! `Err` outcomes are counted: a stage, exchange request or tick whose function returns `Result`
//! counts its `Err` returns (summary, exposition, profile), the trace marks the span, and errored
//! ticks stay in `tick_total` but can be told apart.

use std::sync::Mutex;

use mm_trace::{TraceConfig, exchange_req, stage, traced_tick};

static SERIAL: Mutex<()> = Mutex::new(());

fn setup() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
    mm_trace::reset();
    g
}

#[derive(Debug)]
struct BotError;

#[stage("fetch_md")]
fn fetch_md(fail: bool) -> Result<u32, BotError> {
    if fail {
        return Err(BotError);
    }
    Ok(7)
}

#[stage("parse")]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = text.parse()?;
    Ok(n)
}

/// A `Result` behind an alias the attribute cannot see: counted with `err = true`.
type Outcome = Result<(), BotError>;

#[stage("aliased", err = true)]
fn aliased(fail: bool) -> Outcome {
    if fail { Err(BotError) } else { Ok(()) }
}

#[stage("not_counted", err = false)]
fn not_counted() -> Result<(), BotError> {
    Err(BotError)
}

#[exchange_req(verb = "POST", api = "order")]
fn place(fail: bool) -> Result<u64, BotError> {
    if fail { Err(BotError) } else { Ok(1) }
}

#[traced_tick]
fn tick(i: u32) -> Result<(), BotError> {
    let _ = fetch_md(i.is_multiple_of(4));
    let _ = parse(if i.is_multiple_of(5) { "x" } else { "12" });
    let _ = aliased(i.is_multiple_of(2));
    let _ = not_counted();
    let _ = place(i.is_multiple_of(10));
    if i.is_multiple_of(3) { Err(BotError) } else { Ok(()) }
}

#[test]
fn err_returns_are_counted_per_stage_exchange_and_tick() {
    let _g = setup();
    let mut failed_ticks = 0;
    for i in 0..60u32 {
        if tick(i).is_err() {
            failed_ticks += 1;
        }
    }
    let s = mm_trace::summary();
    let errors = |name: &str| s.stage(name).unwrap().errors;
    assert_eq!(s.ticks, 60, "errored ticks stay in tick_total");
    assert_eq!(failed_ticks, 20);
    assert_eq!(errors("tick_total"), 20);
    assert_eq!(errors("fetch_md"), 15);
    assert_eq!(s.stage("fetch_md").unwrap().count, 60, "errored stages stay in their histogram");
    assert_eq!(errors("parse"), 12, "`?` returns count");
    assert_eq!(errors("aliased"), 30);
    assert_eq!(errors("not_counted"), 0, "err = false");
    assert_eq!(s.exchange("POST", "order").unwrap().stats.errors, 6);

    let text = mm_trace::prometheus_text();
    assert!(text.contains("# TYPE mm_stage_errors_total counter"), "{text}");
    assert!(text.contains("# HELP mm_stage_errors_total "), "{text}");
    assert!(text.contains("\nmm_stage_errors_total{stage=\"fetch_md\"} 15\n"), "{text}");
    assert!(text.contains("\nmm_stage_errors_total{stage=\"tick_total\"} 20\n"), "{text}");
    assert!(text.contains("\nmm_exchange_req_errors_total{verb=\"POST\",api=\"order\"} 6\n"), "{text}");

    let profile: serde_json::Value = serde_json::from_str(&mm_trace::profile_json()).unwrap();
    assert_eq!(profile["stages"]["fetch_md"]["errors"], 15);
    assert_eq!(profile["stages"]["tick_total"]["errors"], 20);
}

#[test]
fn the_trace_marks_failed_spans_and_ticks() {
    let _g = setup();
    for i in 0..4u32 {
        let _ = tick(i);
    }
    let traces = mm_trace::recent_traces();
    // i = 0: fetch_md, parse ("x"), aliased, place and the tick fail.
    let t0 = traces.iter().find(|t| t.tick_id == 1).unwrap();
    assert!(t0.error);
    let span = |t: &mm_trace::TickTrace, name: &str| t.spans.iter().find(|s| s.name == name).unwrap().clone();
    assert!(span(t0, "fetch_md").error);
    assert!(span(t0, "aliased").error);
    assert!(span(t0, "POST order").error);
    assert!(span(t0, "parse").error, "\"x\" does not parse");
    assert!(!span(t0, "not_counted").error, "err = false marks nothing");
    // i = 1: nothing fails (not_counted returns Err, but with err = false).
    let t1 = traces.iter().find(|t| t.tick_id == 2).unwrap();
    assert!(!t1.error);
    assert!(t1.spans.iter().all(|s| !s.error), "{:?}", t1.spans);

    let golden: serde_json::Value = serde_json::from_str(&mm_trace::golden_trace_json_from(t0)).unwrap();
    assert_eq!(golden["error"], true);
    let fetch = golden["spans"].as_array().unwrap().iter().find(|s| s["name"] == "fetch_md").unwrap();
    assert_eq!(fetch["error"], true);
    let golden_ok: serde_json::Value = serde_json::from_str(&mm_trace::golden_trace_json_from(t1)).unwrap();
    assert!(golden_ok.get("error").is_none(), "a tick without Err keeps its golden bytes");

    let chrome: serde_json::Value =
        serde_json::from_str(&mm_trace::chrome_trace_json_from(std::slice::from_ref(t0))).unwrap();
    let ev = chrome["traceEvents"].as_array().unwrap();
    assert!(ev.iter().any(|e| e["name"] == "fetch_md" && e["args"]["error"] == true));
    assert!(ev.iter().any(|e| e["cat"] == "tick" && e["args"]["error"] == true));
}

#[stage("async_fetch")]
async fn async_fetch(fail: bool) -> Result<u32, BotError> {
    tokio::task::yield_now().await;
    if fail { Err(BotError) } else { Ok(1) }
}

#[traced_tick]
async fn async_tick(i: u32) -> Result<u32, BotError> {
    let a = async_fetch(i.is_multiple_of(2)).await.unwrap_or(0);
    if i.is_multiple_of(4) {
        return Err(BotError);
    }
    Ok(a)
}

#[test]
fn async_stages_and_ticks_count_err_on_a_multi_threaded_runtime() {
    let _g = setup();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let handles: Vec<_> = (0..40u32).map(|i| tokio::spawn(async_tick(i))).collect();
        for h in handles {
            let _ = h.await.unwrap();
        }
    });
    let s = mm_trace::summary();
    assert_eq!(s.stage("async_fetch").unwrap().errors, 20);
    assert_eq!(s.stage("tick_total").unwrap().errors, 10);
    assert_eq!(s.ticks, 40);
}

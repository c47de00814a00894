//! W3C trace context: every kept tick has a trace id and every span a span id, linked as the
//! tree; a tick continues an incoming `traceparent`; `traceparent()` gives the open span's.

use std::sync::Mutex;

use mm_trace::{TraceConfig, stage, test_clock, traced_tick};

static SERIAL: Mutex<()> = Mutex::new(());

fn setup(sample_rate: f64) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { sample_rate, export_golden: false, capture_slow_ticks: false, ..Default::default() })
        .unwrap();
    mm_trace::reset();
    g
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

#[stage]
fn inner() -> Option<String> {
    mm_trace::traceparent()
}

#[stage]
fn outer() -> Option<String> {
    inner()
}

#[traced_tick]
fn tick() -> (Option<String>, Option<String>) {
    (mm_trace::traceparent(), outer())
}

#[traced_tick(parent = incoming)]
fn continued(incoming: Option<&str>) -> Option<String> {
    outer()
}

#[traced_tick(parent = headers.traceparent.clone())]
async fn continued_async(headers: Headers) -> usize {
    tokio::task::yield_now().await;
    headers.body.len()
}

struct Headers {
    traceparent: Option<String>,
    body: String,
}

#[test]
fn kept_ticks_have_trace_ids_and_spans_link_by_span_id() {
    let _g = setup(1.0);
    let (at_tick, in_inner) = tick();
    let t = mm_trace::recent_traces().pop().unwrap();
    assert!(is_hex(&t.trace_id, 32) && t.trace_id != "0".repeat(32), "{}", t.trace_id);
    assert!(is_hex(&t.span_id, 16), "{}", t.span_id);
    assert_eq!(t.parent_span_id, None, "a fresh trace's root");
    let outer = t.spans.iter().find(|s| s.name == "outer").unwrap();
    let inner = t.spans.iter().find(|s| s.name == "inner").unwrap();
    assert!(is_hex(&outer.span_id, 16) && outer.span_id != inner.span_id);
    assert_eq!(outer.parent_span_id, t.span_id, "a direct child hangs on the tick's span");
    assert_eq!(inner.parent_span_id, outer.span_id);
    // traceparent() names the open span: the tick at its top, `inner` inside `inner`.
    assert_eq!(at_tick.unwrap(), format!("00-{}-{}-01", t.trace_id, t.span_id));
    assert_eq!(in_inner.unwrap(), format!("00-{}-{}-01", t.trace_id, inner.span_id));
    assert_eq!(mm_trace::traceparent(), None, "outside a tick");
    // In the golden and Chrome forms too.
    let golden: serde_json::Value = serde_json::from_str(&mm_trace::golden_trace_json_from(&t)).unwrap();
    assert_eq!(golden["trace_id"], t.trace_id.as_str());
    assert_eq!(golden["spans"][0]["span_id"], outer.span_id.as_str());
    let chrome: serde_json::Value =
        serde_json::from_str(&mm_trace::chrome_trace_json_from(std::slice::from_ref(&t))).unwrap();
    let events = chrome["traceEvents"].as_array().unwrap();
    assert!(events.iter().any(|e| e["name"] == "inner" && e["args"]["span_id"] == inner.span_id.as_str()));
}

#[test]
fn ids_differ_per_tick_and_repeat_under_the_test_clock() {
    let _g = setup(1.0);
    let run = || {
        mm_trace::reset();
        test_clock::install(1_000);
        for _ in 0..3 {
            tick();
        }
        test_clock::uninstall();
        mm_trace::recent_traces().into_iter().map(|t| (t.trace_id, t.spans[0].span_id.clone())).collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b, "deterministic under the test clock");
    assert_eq!(a.len(), 3);
    assert!(a[0].0 != a[1].0 && a[1].0 != a[2].0, "{a:?}");
    mm_trace::reset();
    tick();
    let real = mm_trace::recent_traces().pop().unwrap();
    assert_ne!(real.trace_id, a[0].0, "the real clock draws from a per-process seed");
}

#[test]
fn a_tick_continues_an_incoming_traceparent() {
    let _g = setup(0.0); // nothing is sampled by the tick id: only a sampled parent keeps a tick
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let out = continued(Some(incoming)).unwrap();
    let traces = mm_trace::recent_traces();
    assert_eq!(traces.len(), 1, "a sampled parent makes the tick kept");
    let t = &traces[0];
    assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{out}");

    // Not sampled upstream: the tick follows its own sampling (rate 0: not kept), but still
    // propagates the incoming trace id.
    let out = continued(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")).unwrap();
    assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && out.ends_with("-00"), "{out}");
    assert_eq!(mm_trace::recent_traces().len(), 1);

    // Malformed: a new trace, counted.
    let before = mm_trace::summary().health.traceparent_invalid;
    let out = continued(Some("00-not-a-trace")).unwrap();
    assert!(!out.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{out}");
    let _ = continued(None);
    assert_eq!(mm_trace::summary().health.traceparent_invalid, before + 1, "None is no traceparent, not a bad one");
    assert!(mm_trace::prometheus_text().contains("\nmm_trace_traceparent_invalid_total 1\n"));
}

#[test]
fn an_async_tick_continues_a_traceparent_it_owns() {
    let _g = setup(0.0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let headers = Headers {
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        body: "abc".into(),
    };
    assert_eq!(rt.block_on(continued_async(headers)), 3);
    let t = mm_trace::recent_traces().pop().unwrap();
    assert_eq!(t.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(t.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
}

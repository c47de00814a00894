//! OTLP export (feature `otlp`) against a receiver built on the official OpenTelemetry protobuf
//! definitions (`tests/otlp/receiver.py`, PyPI `opentelemetry-proto`): exactly the kept ticks
//! arrive, once each, as the tick's tree with its resource; a receiver that is down, busy (503),
//! refusing (400) or silent costs the ticks nothing, and every kept tick is counted exported,
//! dropped or failed.

mod otlp;
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mm_trace::{KeepReason, OtlpConfig, TickTrace, TraceConfig, exchange_req, stage, traced_tick};
use otlp::{Receiver, Span, free_port, python, rss_bytes, wait_for};
use support::TempDir;

static SERIAL: Mutex<()> = Mutex::new(());

const SPAN_KIND_INTERNAL: u64 = 1;
const SPAN_KIND_CLIENT: u64 = 3;
const STATUS_ERROR: u64 = 2;

fn otlp_to(endpoint: String, timeout_ms: u64, max_queue_ticks: usize) -> OtlpConfig {
    OtlpConfig {
        endpoint: Some(endpoint),
        timeout_ms: Some(timeout_ms),
        headers: BTreeMap::from([("x-test-token".to_owned(), "abc 123".to_owned())]),
        max_queue_ticks,
    }
}

/// Installs `cfg` with a clean export queue: switching export off first gives up (and counts)
/// whatever an earlier test left queued or in flight, so no tick of it reaches this test's receiver.
fn setup(cfg: TraceConfig) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::flush();
    mm_trace::init(TraceConfig { otlp: None, ..cfg.clone() }).unwrap();
    mm_trace::init(cfg).unwrap();
    mm_trace::set_enabled(true);
    mm_trace::reset();
    g
}

fn base(otlp: OtlpConfig) -> TraceConfig {
    TraceConfig {
        sample_rate: 1.0,
        capture_slow_ticks: false,
        export_golden: false,
        chrome_ring_ticks: 4096,
        service_name: Some("otlp-test-bot".into()),
        otlp: Some(otlp),
        ..Default::default()
    }
}

fn health() -> mm_trace::Health {
    mm_trace::summary().health
}

// The instrumented loop: a stage with an exchange request inside (an error now and then), a
// second stage, annotations, partial failures; `slow` ticks sleep past the 2 ms deadline.

#[exchange_req(verb = "POST", api = "order", venue = venue)]
fn place(venue: &str, fail: bool) -> Result<(), String> {
    if fail { Err("rejected".into()) } else { Ok(()) }
}

#[stage("fetch_md")]
fn fetch_md(i: u64) -> u64 {
    let _ = place(if i.is_multiple_of(2) { "binance" } else { "kraken" }, i.is_multiple_of(5));
    i * 3
}

#[stage]
fn quote(x: u64) -> u64 {
    std::hint::black_box(x + 1)
}

#[traced_tick]
fn bot_tick(i: u64, slow: bool) -> u64 {
    mm_trace::annotate("symbol", if i.is_multiple_of(2) { "BTC-USD" } else { "ETH-USD" });
    if i.is_multiple_of(7) {
        mm_trace::partial_fail();
    }
    let x = quote(fetch_md(i));
    if slow {
        std::thread::sleep(Duration::from_millis(3));
    }
    mm_trace::current_tick_id().unwrap_or(x)
}

#[traced_tick(parent = incoming)]
fn continued_tick(incoming: &str) -> u64 {
    quote(1);
    mm_trace::current_tick_id().unwrap()
}

/// A tick of about `us` microseconds of work (for the timing comparison).
#[traced_tick]
fn busy_tick(us: u64) {
    let t0 = Instant::now();
    quote(fetch_md(1));
    while t0.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

/// Spans of accepted requests, grouped by trace id, in arrival order.
fn arrived(rx: &Receiver) -> (Vec<otlp::Request>, HashMap<String, Vec<Span>>) {
    let reqs = rx.requests();
    let mut by_trace: HashMap<String, Vec<Span>> = HashMap::new();
    for r in reqs.iter().filter(|r| r.accepted()) {
        for s in &r.spans {
            by_trace.entry(s.trace_id.clone()).or_default().push(s.clone());
        }
    }
    (reqs, by_trace)
}

/// The exported spans of `t` match its tree one to one: ids, parents, names, kinds, times.
fn check_tick(t: &TickTrace, spans: &[Span]) {
    assert_eq!(spans.len(), t.spans.len() + 1, "tick {}: every span once, plus the tick's", t.tick_id);
    let mut ids = BTreeSet::new();
    for s in spans {
        assert!(ids.insert(s.span_id.clone()), "span {} arrived twice", s.span_id);
    }
    let root = spans.iter().find(|s| s.span_id == t.span_id).expect("the tick's span");
    assert_eq!(root.name, t.name);
    assert_eq!(root.kind, SPAN_KIND_INTERNAL);
    assert_eq!(root.parent_span_id, t.parent_span_id.clone().unwrap_or_default());
    assert_eq!(root.start, t.start_unix_ns);
    assert_eq!(root.end, t.start_unix_ns + t.duration_ns);
    assert_eq!(root.attr("mm_trace.tick_id").as_u64(), Some(t.tick_id));
    assert_eq!(root.attr("mm_trace.keep_reason").as_str(), Some(t.reason.as_str()));
    assert_eq!(root.attr("mm_trace.deadline_missed").as_bool(), Some(t.deadline_missed));
    assert_eq!(root.attr("mm_trace.partial_fail").as_bool(), Some(t.partial_fail));
    assert_eq!(root.scope, "mm-trace");
    // Marked in the status as the conventions suggest: a missed deadline or a partial failure is
    // an error of the tick, with a message saying which.
    if t.deadline_missed || t.partial_fail {
        assert_eq!(root.status_code, STATUS_ERROR, "tick {}", t.tick_id);
        assert_eq!(root.status_message.contains("deadline missed"), t.deadline_missed, "{}", root.status_message);
        assert_eq!(root.status_message.contains("partial failure"), t.partial_fail, "{}", root.status_message);
    } else {
        assert_eq!(root.status_code, 0, "success leaves the status unset");
    }
    for (k, v) in &t.annotations {
        assert_eq!(root.attr(k).as_str(), Some(v.as_str()), "annotation {k}");
    }
    for ts in &t.spans {
        let s = spans.iter().find(|s| s.span_id == ts.span_id).unwrap_or_else(|| panic!("span {}", ts.name));
        assert_eq!(s.parent_span_id, ts.parent_span_id, "{}: the parent as in the trace", ts.name);
        assert_eq!(s.name, ts.name);
        assert_eq!((s.start, s.end), (t.start_unix_ns + ts.start_ns, t.start_unix_ns + ts.end_ns));
        assert!(root.start <= s.start && s.start <= s.end && s.end <= root.end, "{} inside its tick", ts.name);
        assert!(spans.iter().any(|p| p.span_id == s.parent_span_id), "{}: its parent arrived too", ts.name);
        assert_eq!(s.flags & 0x1, 1, "sampled");
        if ts.kind == "exchange" {
            assert_eq!(s.kind, SPAN_KIND_CLIENT);
            assert_eq!(s.attr("mm_trace.exchange.verb").as_str(), Some("POST"));
            assert_eq!(s.attr("mm_trace.exchange.api").as_str(), Some("order"));
            let venue = &ts.labels.iter().find(|(k, _)| k == "venue").unwrap().1;
            assert_eq!(s.attr("venue").as_str(), Some(venue.as_str()));
        } else {
            assert_eq!(s.kind, SPAN_KIND_INTERNAL);
        }
        assert_eq!(s.status_code == STATUS_ERROR, ts.error, "{}: errored spans are marked", ts.name);
    }
}

#[test]
fn exactly_the_kept_ticks_arrive_once_with_their_spans_parents_times_and_resource() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("otlp-main");
    let rx = Receiver::start(&py, "200", 0, None, &dir.path().join("rx.jsonl"));
    let cfg = TraceConfig {
        sample_rate: 0.2,
        deadline_ms: 2.0,
        capture_slow_ticks: true,
        slow_ticks_per_sec: 10,
        ..base(otlp_to(rx.endpoint(), 2000, 2048))
    };
    let _g = setup(cfg);
    // 400 ticks, 30 of them slow in a burst: slow unsampled ticks past the rate limit (10 a
    // second) are not kept, so they must not arrive either.
    let mut slow_ids = BTreeSet::new();
    let mut all_ids = Vec::new();
    for i in 0..400u64 {
        let slow = (100..130).contains(&i);
        let id = bot_tick(i, slow);
        all_ids.push(id);
        if slow {
            slow_ids.insert(id);
        }
    }
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let continued_id = continued_tick(&format!("00-{parent_trace}-{parent_span}-01"));
    let kept = mm_trace::recent_traces();
    mm_trace::shutdown().unwrap();

    // What mm-trace kept: the sampled ticks, the slow ones let through, the continued one.
    let kept_ids: BTreeSet<u64> = kept.iter().map(|t| t.tick_id).collect();
    let sampled: BTreeSet<u64> = all_ids.iter().copied().filter(|&id| mm_trace::is_sampled(id, 0.2)).collect();
    let h = health();
    let slow_kept: Vec<&TickTrace> = kept.iter().filter(|t| t.reason == KeepReason::Slow).collect();
    assert_eq!(slow_kept.len() as u64, h.slow_ticks_kept);
    assert!(h.slow_ticks_rate_limited > 0, "the burst went past the rate limit");
    assert!(slow_kept.iter().all(|t| slow_ids.contains(&t.tick_id) && t.deadline_missed));
    assert!(sampled.iter().all(|id| kept_ids.contains(id)), "every sampled tick is kept");
    let not_kept: Vec<u64> = all_ids.iter().copied().filter(|id| !kept_ids.contains(id)).collect();
    assert!(not_kept.len() > 250, "most ticks are not kept: {}", not_kept.len());

    let (reqs, by_trace) = arrived(&rx);
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(r.path, "/v1/traces");
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["x-test-token"], "abc 123", "configured headers are sent");
        let res = &r.resource;
        assert_eq!(res["service.name"], "otlp-test-bot");
        assert!(res["service.instance.id"].as_str().is_some_and(|s| s.len() == 36), "{res}");
        assert!(res["host.name"].as_str().is_some_and(|s| !s.is_empty()), "{res}");
        assert_eq!(res["telemetry.sdk.name"], "mm-trace");
        assert_eq!(res["telemetry.sdk.language"], "rust");
        assert!(res["telemetry.sdk.version"].as_str().is_some_and(|v| !v.is_empty()));
        assert_eq!(res["service.instance.id"], reqs[0].resource["service.instance.id"], "one instance id per process");
    }
    // Exactly the kept ticks, each once with all its spans.
    let arrived_ids: BTreeSet<u64> =
        by_trace.values().flat_map(|spans| spans.iter().filter_map(|s| s.attr("mm_trace.tick_id").as_u64())).collect();
    assert_eq!(arrived_ids, kept_ids, "the exported ticks are exactly the kept ones");
    assert_eq!(by_trace.len(), kept.len(), "one trace per kept tick");
    for t in &kept {
        check_tick(t, &by_trace[&t.trace_id]);
    }
    for id in &not_kept {
        assert!(!arrived_ids.contains(id), "tick {id} was not kept but arrived");
    }
    assert!(kept.iter().any(|t| t.partial_fail) && kept.iter().any(|t| t.deadline_missed));
    assert!(kept.iter().any(|t| t.spans.iter().any(|s| s.error)), "an errored exchange request was exported");
    // The continued tick keeps the incoming trace id and hangs on the incoming span (remote).
    let cont = kept.iter().find(|t| t.tick_id == continued_id).expect("a sampled parent keeps the tick");
    assert_eq!(cont.trace_id, parent_trace);
    let root = by_trace[parent_trace].iter().find(|s| s.span_id == cont.span_id).unwrap();
    assert_eq!(root.parent_span_id, parent_span);
    assert_eq!(root.flags, 0x301, "sampled, parent known to be remote");

    assert_eq!((h.otlp_exported_ticks, h.otlp_dropped_ticks, h.otlp_failed_ticks), (kept.len() as u64, 0, 0));
    let text = mm_trace::prometheus_text();
    assert!(text.contains(&format!("\nmm_trace_otlp_exported_ticks_total {}\n", kept.len())), "{text}");
    assert!(text.contains("\nmm_trace_otlp_dropped_ticks_total 0\n"));
    assert!(text.contains("# TYPE mm_trace_otlp_failed_ticks_total counter"));
}

#[test]
fn receiver_down_costs_ticks_nothing_bounds_memory_counts_drops_and_export_resumes() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("otlp-down");
    // The ticks' cost with no export at all, for comparison.
    let _g = setup(TraceConfig { otlp: None, ..base(OtlpConfig::default()) });
    let time_ticks = |n: usize| {
        let mut d: Vec<Duration> = (0..n)
            .map(|_| {
                let t0 = Instant::now();
                busy_tick(20);
                t0.elapsed()
            })
            .collect();
        d.sort();
        (d[n / 2], d[n - 1])
    };
    let (median_off, _) = time_ticks(2000);
    drop(_g);

    let port = free_port();
    let _g = setup(base(otlp_to(format!("http://127.0.0.1:{port}"), 500, 32)));
    let rss0 = rss_bytes();
    let (median_down, max_down) = time_ticks(20_000);
    mm_trace::flush();
    let grown = rss_bytes().saturating_sub(rss0);
    let h = health();
    let kept = 20_000 - h.traces_dropped;
    // Nothing on the tick's thread waits for the receiver: not the connection attempts, not the
    // 500 ms timeout.
    assert!(max_down < Duration::from_millis(250), "a tick took {max_down:?} while the receiver was down");
    assert!(
        median_down < median_off * 3 / 2 + Duration::from_micros(10),
        "median tick {median_down:?} with the receiver down vs {median_off:?} without export"
    );
    // At most the queue (32) and one batch taken from it wait; the rest is dropped and counted.
    assert!(h.otlp_dropped_ticks >= kept - 64, "dropped {} of {kept}", h.otlp_dropped_ticks);
    assert_eq!(h.otlp_exported_ticks, 0);
    // Unbounded, 20000 queued ticks of four spans would hold over 20 MB.
    assert!(grown < 12 << 20, "RSS grew by {} MB", grown >> 20);

    // The receiver comes back on the same port: export resumes (the batch held back is retried
    // with backoff, so within a few seconds), and ticks from then on arrive, paced so that the
    // small queue (16 make a batch due) never fills.
    let rx = Receiver::start(&py, "200", port, None, &dir.path().join("rx.jsonl"));
    assert!(wait_for(Duration::from_secs(15), || health().otlp_exported_ticks > 0), "export resumed");
    for _ in 0..200 {
        busy_tick(20);
        std::thread::sleep(Duration::from_millis(2));
    }
    let recent = mm_trace::recent_traces();
    let after: BTreeSet<String> = recent[recent.len() - 200..].iter().map(|t| t.trace_id.clone()).collect();
    let arrived_all = wait_for(Duration::from_secs(30), || {
        let (_, by_trace) = arrived(&rx);
        after.iter().all(|id| by_trace.contains_key(id))
    });
    mm_trace::shutdown().unwrap();
    let (_, by_trace) = arrived(&rx);
    let missing = after.iter().filter(|id| !by_trace.contains_key(*id)).count();
    assert!(arrived_all, "{missing} of the 200 ticks after the receiver came back did not arrive");
    let h = health();
    let kept = 20_200 - h.traces_dropped;
    assert_eq!(
        h.otlp_exported_ticks + h.otlp_dropped_ticks + h.otlp_failed_ticks,
        kept,
        "every kept tick is counted once: exported {}, dropped {}, failed {}",
        h.otlp_exported_ticks,
        h.otlp_dropped_ticks,
        h.otlp_failed_ticks
    );
    assert_eq!(h.otlp_exported_ticks, by_trace.len() as u64);
}

#[test]
fn a_503_is_retried_after_its_retry_after_and_nothing_is_lost() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("otlp-503");
    let rx = Receiver::start(&py, "503,503,200", 0, Some(1), &dir.path().join("rx.jsonl"));
    let _g = setup(base(otlp_to(rx.endpoint(), 5000, 2048)));
    for i in 0..50 {
        bot_tick(i, false);
    }
    let kept = mm_trace::recent_traces();
    assert_eq!(kept.len(), 50);
    mm_trace::shutdown().unwrap();
    let (reqs, by_trace) = arrived(&rx);
    let answers: Vec<&str> = reqs.iter().map(|r| r.answer.as_str()).collect();
    assert_eq!(answers, ["503", "503", "200"], "one batch, retried twice");
    for w in reqs.windows(2) {
        assert!(w[1].t - w[0].t >= 0.9, "Retry-After: 1 honoured ({:.3} s)", w[1].t - w[0].t);
    }
    assert_eq!(reqs[0].spans.len(), reqs[2].spans.len(), "the same batch again");
    for t in &kept {
        check_tick(t, &by_trace[&t.trace_id]);
    }
    let h = health();
    assert_eq!((h.otlp_exported_ticks, h.otlp_dropped_ticks, h.otlp_failed_ticks), (50, 0, 0));
}

#[test]
fn a_400_is_not_retried_and_its_ticks_are_counted_failed() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("otlp-400");
    let rx = Receiver::start(&py, "400", 0, None, &dir.path().join("rx.jsonl"));
    let _g = setup(base(otlp_to(rx.endpoint(), 2000, 2048)));
    for i in 0..30 {
        bot_tick(i, false);
    }
    mm_trace::shutdown().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "refused for good: not retried");
    assert_eq!(reqs[0].spans.len(), 30 * 4, "30 ticks: the tick, two stages and an exchange request each");
    let h = health();
    assert_eq!((h.otlp_exported_ticks, h.otlp_failed_ticks), (0, 30));
    assert!(mm_trace::prometheus_text().contains("\nmm_trace_otlp_failed_ticks_total 30\n"));
}

#[test]
fn a_receiver_that_never_answers_is_timed_out_and_shutdown_returns() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("otlp-hang");
    let rx = Receiver::start(&py, "hang", 0, None, &dir.path().join("rx.jsonl"));
    let _g = setup(base(otlp_to(rx.endpoint(), 300, 2048)));
    let t0 = Instant::now();
    for i in 0..20 {
        bot_tick(i, false);
    }
    assert!(t0.elapsed() < Duration::from_millis(250), "ticks never wait for the receiver");
    // The batch goes out after at most a second; each attempt is cut at 300 ms and retried.
    assert!(wait_for(Duration::from_secs(5), || rx.requests().len() >= 2), "a timed-out request is retried");
    let reqs = rx.requests();
    assert!(reqs[1].t - reqs[0].t >= 0.29, "the first attempt waited out its timeout: {:.3} s", reqs[1].t - reqs[0].t);
    let t0 = Instant::now();
    mm_trace::shutdown().unwrap();
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(1300), "shutdown returned after {took:?} (timeout 300 ms)");
    let h = health();
    assert_eq!((h.otlp_exported_ticks, h.otlp_failed_ticks), (0, 20), "given up and counted");
    // Given up: no further attempts.
    let n = rx.requests().len();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(rx.requests().len(), n, "no attempt after shutdown gave the batch up");
}

/// Set in the child process a test starts (this test binary, filtered to that test).
const ENV_CHILD: &str = "MM_OTLP_ENV_CHILD";

/// The standard variables fill what the config leaves unset: the test runs its ticks in a child
/// process of this test binary, started with them (the environment is read once, at `init`).
#[test]
fn otel_environment_variables_set_endpoint_headers_and_service_name() {
    if std::env::var_os(ENV_CHILD).is_some() {
        return env_child();
    }
    let Some(py) = python() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("otlp-env");
    let rx = Receiver::start(&py, "200", 0, None, &dir.path().join("rx.jsonl"));
    let out = support::child_running("otel_environment_variables_set_endpoint_headers_and_service_name")
        .env(ENV_CHILD, "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%3Dcret,x-tenant=bots")
        .env("OTEL_SERVICE_NAME", "bot-from-env")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=canary")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/traces", "the generic endpoint gets /v1/traces");
    assert_eq!(reqs[0].headers["x-api-key"], "s=cret");
    assert_eq!(reqs[0].headers["x-tenant"], "bots");
    assert_eq!(reqs[0].resource["service.name"], "bot-from-env");
    assert_eq!(reqs[0].resource["deployment.environment"], "canary");
    assert_eq!(reqs[0].spans.len(), 3 * 4);
}

/// The child's half: three ticks exported with what the environment gave.
fn env_child() {
    let cfg = TraceConfig { service_name: None, ..base(OtlpConfig::default()) };
    let _g = setup(cfg);
    for i in 0..3 {
        bot_tick(i, false);
    }
    mm_trace::shutdown().unwrap();
    assert_eq!(health().otlp_exported_ticks, 3);
}

/// A malformed variable is `init`'s error, naming it (checked in a child too).
#[test]
fn a_malformed_variable_makes_init_fail_naming_it() {
    if std::env::var_os(ENV_CHILD).is_some() {
        return bad_env_child();
    }
    let out = support::child_running("a_malformed_variable_makes_init_fail_naming_it")
        .env(ENV_CHILD, "1")
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://tempo.example:4318/v1/traces")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// The child's half: `init` fails, naming the variable and what is allowed.
fn bad_env_child() {
    let e = mm_trace::init(base(OtlpConfig::default())).unwrap_err().to_string();
    assert!(
        e.starts_with("environment: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = \"https://tempo.example:4318/v1/traces\": must be an http:// URL"),
        "{e}"
    );
    assert!(e.contains("https is not supported"), "{e}");
}

/// The README's OTLP example is a valid config that shows the defaults it does not change.
#[test]
fn readme_otlp_example_parses() {
    let readme = include_str!("../README.md");
    let open = "```yaml\n# config.yaml of a bot exporting its kept ticks\n";
    let at = readme.find(open).expect("README has the OTLP config example");
    let body = &readme[at + "```yaml\n".len()..];
    let cfg = TraceConfig::from_yaml_str(&body[..body.find("```").unwrap()]).expect("valid");
    assert_eq!(cfg.service_name.as_deref(), Some("mm-bot"));
    let otlp = cfg.otlp.expect("otlp is set");
    assert_eq!(otlp.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
    assert_eq!(otlp.timeout_ms, Some(2000));
    assert_eq!((otlp.headers.len(), otlp.max_queue_ticks), (0, OtlpConfig::default().max_queue_ticks));
}

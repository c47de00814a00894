//! Export: every exporter in the same three forms — `…_text`/`…_json` of what was collected,
//! `…_from` of given data (a [`Summary`] or [`TickTrace`]s), and `write_…(path)` — plus the
//! endpoint serving `/metrics` and `/traces`.

use std::path::Path;

use crate::error::Error;
use crate::export;
use crate::fs::write_file;
use crate::histogram::prometheus_bounds_ms;
use crate::imp;
use crate::summary::{Summary, TickTrace};

#[cfg(feature = "http")]
pub use export::http::{MetricsServer, MetricsServerOptions};
pub use export::prometheus::PrometheusUnits;

/// The Prometheus text exposition (format 0.0.4) of everything collected: the metrics of the
/// table in `docs/PERFORMANCE_DASHBOARD.md`, in the units chosen by `TraceConfig::prometheus_base_units`.
///
/// Reads the same merged data as [`summary`](crate::summary()): it never stops or waits for recording threads.
///
/// ```
/// mm_trace::init(mm_trace::TraceConfig { export_golden: false, ..Default::default() }).unwrap();
/// mm_trace::guard_trip("vol_soft");
/// let text = mm_trace::prometheus_text();
/// assert!(text.contains("# TYPE mm_stage_duration_ms histogram"));
/// assert!(text.contains("# TYPE mm_ticks_total counter"));
/// # #[cfg(feature = "enabled")]
/// assert!(text.contains("mm_guard_trips_total{reason=\"vol_soft\"} 1"));
/// ```
pub fn prometheus_text() -> String {
    let units =
        if imp::config().prometheus_base_units { PrometheusUnits::Seconds } else { PrometheusUnits::Milliseconds };
    prometheus_text_units(units)
}

/// [`prometheus_text`] in the given units, whatever the configuration says.
///
/// ```
/// use mm_trace::PrometheusUnits;
/// let text = mm_trace::prometheus_text_units(PrometheusUnits::Seconds);
/// assert!(text.contains("mm_trace_overhead_ratio "));
/// assert!(!text.contains("_ms"));
/// ```
pub fn prometheus_text_units(units: PrometheusUnits) -> String {
    prometheus_text_from(&imp::summary(), units)
}

/// Renders the Prometheus exposition of a given [`Summary`] (for tests or synthetic data).
///
/// ```
/// use mm_trace::{PrometheusUnits, Summary};
/// let s = Summary { ticks: 3, guard_trips: vec![("say \"hi\"".into(), 2)], ..Summary::default() };
/// let text = mm_trace::prometheus_text_from(&s, PrometheusUnits::Milliseconds);
/// assert!(text.contains("\nmm_ticks_total 3\n"));
/// assert!(text.contains(r#"mm_guard_trips_total{reason="say \"hi\""} 2"#));
/// ```
pub fn prometheus_text_from(summary: &Summary, units: PrometheusUnits) -> String {
    export::prometheus::render(summary, units)
}

/// Writes [`prometheus_text`] to a file (e.g. for node_exporter's textfile collector).
///
/// ```
/// let path = std::env::temp_dir().join(format!("mm-trace-doc-{}.prom", std::process::id()));
/// mm_trace::write_prometheus_text(&path).unwrap();
/// assert!(std::fs::read_to_string(&path).unwrap().contains("mm_ticks_total"));
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_prometheus_text(path: impl AsRef<Path>) -> Result<(), Error> {
    write_file(path.as_ref(), &prometheus_text())
}

/// The same metrics as [`prometheus_text`] in OpenMetrics 1.0 text (what `/metrics` answers a
/// scraper whose `Accept` asks for `application/openmetrics-text`, as Prometheus does), with
/// **exemplars**: every bucket of `mm_stage_duration_*` (`tick_total` included) and
/// `mm_exchange_req_*` carries the most recent kept tick whose span landed in it, as
/// `# {trace_id="…",tick_id="…"} <duration> <tick end, Unix seconds>`. The trace id resolves at
/// the endpoint's `/traces/<trace_id>` while the tick is in the ring of recent traces
/// (`chrome_ring_ticks`).
///
/// Only kept ticks give exemplars, and only for spans their histograms counted: every span of a
/// sampled tick; of a slow tick kept unsampled, its `tick_total` and exchange requests. A span
/// lands in the bucket its histogram counts it in, so the value is at most the bucket's `le`
/// (and above the previous `le`, or at most 1/64 below it: histogram.rs's edge rule). The
/// exemplars are written by the trace worker; ticks never pay for them.
///
/// OpenMetrics spells the same series as the 0.0.4 text, except: counter families are declared
/// without `_total` (`# TYPE mm_ticks counter`, samples `mm_ticks_total`), `# UNIT` is given
/// where the name ends with its unit, `le` values are canonical (`"200.0"`, `"2.5e-06"`), and
/// the text ends with `# EOF`.
///
/// ```
/// mm_trace::init(mm_trace::TraceConfig { export_golden: false, ..Default::default() }).unwrap();
/// let text = mm_trace::openmetrics_text();
/// assert!(text.contains("# TYPE mm_ticks counter\n"));
/// assert!(text.contains("# TYPE mm_stage_duration_ms histogram\n"));
/// assert!(text.ends_with("# EOF\n"));
/// ```
pub fn openmetrics_text() -> String {
    let units =
        if imp::config().prometheus_base_units { PrometheusUnits::Seconds } else { PrometheusUnits::Milliseconds };
    let bounds = prometheus_bounds_ms();
    // The histograms first, then the exemplars: an exemplar newer than the histograms it belongs
    // to waits for the next scrape rather than pointing at a sample the counts do not have.
    let summary = imp::summary();
    export::prometheus::render_openmetrics(&summary, units, &bounds, &imp::exemplars(&bounds))
}

/// The OpenMetrics text of a given [`Summary`] (no exemplars: they are not part of a summary).
///
/// ```
/// use mm_trace::{PrometheusUnits, Summary};
/// let s = Summary { ticks: 3, ..Summary::default() };
/// let text = mm_trace::openmetrics_text_from(&s, PrometheusUnits::Milliseconds);
/// assert!(text.contains("\nmm_ticks_total 3\n") && text.ends_with("# EOF\n"));
/// ```
pub fn openmetrics_text_from(summary: &Summary, units: PrometheusUnits) -> String {
    export::prometheus::render_openmetrics(summary, units, &prometheus_bounds_ms(), &Default::default())
}

/// Writes [`openmetrics_text`] to a file.
///
/// ```
/// let path = std::env::temp_dir().join(format!("mm-trace-doc-{}.om.txt", std::process::id()));
/// mm_trace::write_openmetrics_text(&path).unwrap();
/// assert!(std::fs::read_to_string(&path).unwrap().ends_with("# EOF\n"));
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_openmetrics_text(path: impl AsRef<Path>) -> Result<(), Error> {
    write_file(path.as_ref(), &openmetrics_text())
}

/// Serves the metrics and the kept ticks over HTTP from a thread of its own. Binds exactly
/// `addr`; give a loopback address unless the port must be reachable from other hosts (a
/// Prometheus on another host). Dropping the returned handle stops the server.
///
/// - `GET /metrics` (and `HEAD`): [`openmetrics_text`], exemplars included, when the request's
///   `Accept` asks for `application/openmetrics-text` (Prometheus does); [`prometheus_text`]
///   (format 0.0.4) otherwise.
/// - `GET /traces`: the kept ticks still in memory (the ring of `chrome_ring_ticks`), newest
///   first, as a JSON array: `tick_id`, `trace_id`, `name`, `reason`, `duration_ns`,
///   `duration_ms`, `start_unix_ns`, `deadline_missed` and the paths below.
/// - `GET /traces/<trace_id>`: that tick's golden trace JSON ([`golden_trace_json_from`]);
///   `?format=chrome`: its Chrome trace events; `/traces/<trace_id>.svg`: its picture
///   ([`tick_svg`]). `&tick_id=N` picks one tick when several continued the same trace; without
///   it the most recent. `404` once the tick has left the ring.
///
/// Other paths get `404`, other methods `405` (with `Allow`), malformed requests `400`, a head
/// over 8 KiB `431`; a client that is too slow gets `408` and is closed. Every response closes
/// the connection. One thread serves every connection (an event loop over non-blocking sockets),
/// so clients that hold connections idle or trickle bytes cannot keep a scrape waiting: past 256
/// open connections a new one takes the place of the oldest that has not sent its request yet
/// (see [`serve_metrics_with`] and [`MetricsServerOptions`] for the limits). Recording threads are
/// never touched and never wait; no request waits for the trace worker.
///
/// ```
/// # fn main() -> Result<(), mm_trace::Error> {
/// use std::io::{Read, Write};
/// let server = mm_trace::serve_metrics("127.0.0.1:0")?; // e.g. "127.0.0.1:9898"
/// let mut conn = std::net::TcpStream::connect(server.local_addr()).unwrap();
/// conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
/// let mut response = String::new();
/// conn.read_to_string(&mut response).unwrap();
/// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(response.contains("mm_ticks_total"));
/// drop(server);
/// # Ok(()) }
/// ```
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub fn serve_metrics<A: std::net::ToSocketAddrs + std::fmt::Display>(addr: A) -> Result<MetricsServer, Error> {
    serve_metrics_with(addr, MetricsServerOptions::default())
}

/// [`serve_metrics`] with explicit limits.
///
/// ```
/// # fn main() -> Result<(), mm_trace::Error> {
/// use std::time::Duration;
/// let opts = mm_trace::MetricsServerOptions { read_timeout: Duration::from_secs(3), ..Default::default() };
/// let _server = mm_trace::serve_metrics_with("127.0.0.1:0", opts)?;
/// # Ok(()) }
/// ```
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub fn serve_metrics_with<A: std::net::ToSocketAddrs + std::fmt::Display>(
    addr: A,
    options: MetricsServerOptions,
) -> Result<MetricsServer, Error> {
    use export::http::{Endpoint, MetricsFormat, TraceFormat};
    fn metrics(format: MetricsFormat) -> String {
        match format {
            MetricsFormat::Prometheus => prometheus_text(),
            MetricsFormat::OpenMetrics => openmetrics_text(),
        }
    }
    fn traces() -> String {
        export::trace_list::render(&imp::kept_ticks())
    }
    fn trace(trace_id: &str, tick_id: Option<u64>, format: TraceFormat) -> Option<String> {
        let trace = imp::find_trace(trace_id, tick_id)?;
        Some(match format {
            TraceFormat::Golden => golden_trace_json_from(&trace),
            TraceFormat::Chrome => chrome_trace_json_from(std::slice::from_ref(&trace)),
            TraceFormat::Svg => tick_svg(&trace),
        })
    }
    export::http::serve(addr, options, Endpoint { metrics, traces, trace })
}

/// Sets a label written into every later profile's `labels` (e.g. `track = canary`); setting a
/// key again replaces its value. Labels are kept across [`reset`](crate::reset()).
///
/// ```
/// mm_trace::set_profile_label("track", "canary");
/// let profile: serde_json::Value = serde_json::from_str(&mm_trace::profile_json()).unwrap();
/// assert_eq!(profile["labels"]["track"], "canary");
/// # mm_trace::clear_profile_labels();
/// ```
pub fn set_profile_label(key: &str, value: impl std::fmt::Display) {
    export::profile::set_label(key, &value.to_string())
}

/// Removes every label set with [`set_profile_label`].
///
/// ```
/// mm_trace::set_profile_label("track", "baseline");
/// mm_trace::clear_profile_labels();
/// assert!(mm_trace::profile_json().contains("\"labels\": {}"));
/// ```
pub fn clear_profile_labels() {
    export::profile::clear_labels()
}

/// The `perf_profile.json` document (schema in `docs/PROFILE_SCHEMA.md`) of everything collected.
///
/// ```
/// let profile: serde_json::Value = serde_json::from_str(&mm_trace::profile_json()).unwrap();
/// assert_eq!(profile["schema"], "mm-trace/perf-profile");
/// assert_eq!(profile["schema_version"], 1);
/// ```
pub fn profile_json() -> String {
    profile_json_from(&imp::summary())
}

/// The profile document of a given [`Summary`], with the current labels and time.
///
/// ```
/// let s = mm_trace::Summary { ticks: 4, deadline_misses: 1, deadline_miss_pct: 25.0, ..Default::default() };
/// let profile: serde_json::Value = serde_json::from_str(&mm_trace::profile_json_from(&s)).unwrap();
/// assert_eq!(profile["deadline_miss_pct"], 25.0);
/// ```
pub fn profile_json_from(summary: &Summary) -> String {
    export::profile::render(summary, &export::profile::labels(), export::profile::now_unix_ms())
}

/// Writes `perf_profile.json` (see `docs/PROFILE_SCHEMA.md`), perf-gate's input. Parent
/// directories are created; the file is replaced atomically.
///
/// ```
/// let path = std::env::temp_dir().join(format!("mm-trace-doc-{}/perf_profile.json", std::process::id()));
/// mm_trace::write_profile(&path).unwrap();
/// assert!(std::fs::read_to_string(&path).unwrap().contains("\"schema_version\": 1"));
/// # std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
/// ```
pub fn write_profile(path: impl AsRef<Path>) -> Result<(), Error> {
    write_file(path.as_ref(), &profile_json())
}

/// Chrome trace-event JSON of the recent kept ticks ([`recent_traces`](crate::recent_traces())), to open in Perfetto
/// (ui.perfetto.dev, "Open trace file"), chrome://tracing or speedscope (`npx speedscope trace.json`,
/// offline). Name the file `trace.json`: speedscope picks its importer from the name.
///
/// Each tick and span is a slice named after its stage (`name` is the stage name, so viewers
/// that group by name, as speedscope does, see one frame per stage) on the track of the thread
/// that recorded it. Spans of one thread that overlap without nesting (concurrent futures
/// polled on one worker thread) go to lanes of that thread, tracks of their own named
/// `"<thread> (lane N)"`, so that on every track slices nest or are disjoint, as Perfetto needs.
/// A slice is a begin event (`"ph":"B"`, no arguments) and an end event (`"ph":"E"`) whose
/// arguments the viewers merge into the slice: `tick_id`, `trace_id`, `span_id`,
/// `parent_span_id`, `error`, `cancelled`, labels (ticks: reason, flags, annotations). A
/// zero-length slice is one `"ph":"X"` event. `ts` is in microseconds; `"ph":"M"` events name
/// the process and every track.
///
/// ```
/// let doc: serde_json::Value = serde_json::from_str(&mm_trace::chrome_trace_json()).unwrap();
/// assert!(doc["traceEvents"].is_array());
/// assert_eq!(doc["displayTimeUnit"], "ms");
/// ```
pub fn chrome_trace_json() -> String {
    chrome_trace_json_from(&imp::recent_traces())
}

/// The Chrome trace-event JSON of given traces.
///
/// ```
/// let doc: serde_json::Value = serde_json::from_str(&mm_trace::chrome_trace_json_from(&[])).unwrap();
/// assert_eq!(doc["traceEvents"][0]["name"], "process_name");
/// ```
pub fn chrome_trace_json_from(traces: &[TickTrace]) -> String {
    export::chrome::render(traces, std::process::id())
}

/// Writes [`chrome_trace_json`] to `path`.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("mm-trace-doc-chrome-{}", std::process::id()));
/// mm_trace::write_chrome_trace(dir.join("trace.json")).unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_chrome_trace(path: impl AsRef<Path>) -> Result<(), Error> {
    write_file(path.as_ref(), &chrome_trace_json())
}

/// The golden trace JSON (see [`golden_trace_json_from`]) of the most recent kept tick, if any
/// tick was kept (sampled or slow) since start or the last [`reset`](crate::reset())(crate::reset()).
///
/// ```
/// mm_trace::init(mm_trace::TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
/// #[mm_trace::traced_tick]
/// fn tick() {}
/// tick();
/// # #[cfg(feature = "enabled")] {
/// let json = mm_trace::golden_trace_json().unwrap();
/// assert!(json.contains("\"schema\": \"mm-trace/golden-trace\""));
/// # }
/// ```
pub fn golden_trace_json() -> Option<String> {
    imp::recent_traces().last().map(golden_trace_json_from)
}

/// Writes [`golden_trace_json`] to `path`; an error if no tick has been kept yet.
///
/// ```
/// mm_trace::init(mm_trace::TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
/// #[mm_trace::traced_tick]
/// fn tick() {}
/// tick();
/// let path = std::env::temp_dir().join(format!("mm-trace-doc-{}.golden.json", std::process::id()));
/// # #[cfg(feature = "enabled")] {
/// mm_trace::write_golden_trace(&path).unwrap();
/// # std::fs::remove_file(&path).unwrap();
/// # }
/// ```
pub fn write_golden_trace(path: impl AsRef<Path>) -> Result<(), Error> {
    let Some(json) = golden_trace_json() else {
        return Err(Error::InvalidArgument(
            "write_golden_trace: no tick has been kept yet (none sampled or slow since start or reset)".into(),
        ));
    };
    write_file(path.as_ref(), &json)
}

/// Renders a golden trace (the format of `golden_trace_<tick>.json` and `slow_trace_<tick>.json`).
///
/// Deterministic by construction: keys sorted, integer nanoseconds relative to the tick's start
/// (no wall-clock time), children ordered by start time (ties by end, name, kind), threads
/// renumbered in order of their first span (the thread that ended the tick is 0) and unnamed
/// threads named after that number. With the test clock ([`crate::test_clock`]) the same
/// program gives the same bytes on every run. Top level: `schema` (`"mm-trace/golden-trace"`),
/// `schema_version`, the tick's fields and `spans`, a tree of `{name, kind, start_ns, end_ns,
/// duration_ns, thread, children}`.
///
/// ```
/// use mm_trace::{KeepReason, TickTrace, TraceSpan};
/// let trace = TickTrace {
///     tick_id: 7, name: "tick".into(), reason: KeepReason::Sampled, start_ns: 123_456,
///     duration_ns: 5_000,
///     annotations: vec![("symbols".into(), "2".into())],
///     spans: vec![TraceSpan { id: 1, name: "fetch_md".into(), kind: "stage",
///                             start_ns: 1_000, end_ns: 3_000, thread: 4, ..Default::default() }],
///     threads: vec![(4, "bot".into())], thread: 4,
///     ..Default::default()
/// };
/// let json = mm_trace::golden_trace_json_from(&trace);
/// let v: serde_json::Value = serde_json::from_str(&json).unwrap();
/// assert_eq!(v["spans"][0]["duration_ns"], 2_000);
/// assert_eq!(v["threads"][0]["name"], "bot");
/// assert!(!json.contains("123456"), "no absolute times");
/// ```
pub fn golden_trace_json_from(trace: &TickTrace) -> String {
    export::json::render(trace)
}

/// One tick as a self-contained SVG timeline: no script, no external reference, so it opens in
/// any browser or image viewer offline and shows on a code-review page.
///
/// A row per thread, and per lane of a thread whose spans overlap without nesting; stages
/// nested under their parents (children drawn below and within them); a time axis in ms since
/// the tick began; the deadline as a red dashed line (the part of the tick past it shaded
/// red); each bar labelled with its name and duration (inside it, beside it, or cut with `…`
/// when neither fits); a `<title>` tooltip per bar with its start, duration, self time,
/// thread, ids, `Err`/cancelled flags and labels; and a table of the tick's stages by total
/// time. Spans that returned `Err` have a red outline, cancelled ones are faded and dashed.
/// Every slow tick written to `golden_dir` gets one beside its JSON (`slow_trace_<tick>-<run>.svg`).
///
/// ```
/// use mm_trace::{TickTrace, TraceSpan};
/// let trace = TickTrace {
///     tick_id: 7, name: "tick".into(), duration_ns: 240_000_000, deadline_missed: true,
///     deadline_ns: Some(200_000_000), thread: 1, threads: vec![(1, "bot".into())],
///     spans: vec![TraceSpan { id: 1, name: "fetch_md".into(), kind: "stage", start_ns: 1_000_000,
///                             end_ns: 230_000_000, thread: 1, ..Default::default() }],
///     ..Default::default()
/// };
/// let svg = mm_trace::tick_svg(&trace);
/// assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
/// assert!(svg.contains("fetch_md 229 ms") && svg.contains("deadline 200 ms"));
/// assert!(!svg.contains("<script"));
/// ```
pub fn tick_svg(trace: &TickTrace) -> String {
    export::svg::render(trace, trace.deadline_ns)
}

/// Folded stacks of the given ticks for flame-graph tools (inferno's `inferno-flamegraph`,
/// `flamegraph.pl`, speedscope): a line per distinct stack, `tick;fetch_md;GET book 63015`,
/// the tick's name then each stage from the outermost down, and the stack's **self time in
/// microseconds** summed over `traces` (a span's wall time minus what its children cover,
/// overlapping children counted once; stacks that round to 0 µs are left out). Children that ran
/// in parallel each count in full, so a stage with parallel children is wider than its wall
/// time, as in a CPU flame graph over several threads. Sorted by stack.
///
/// ```
/// use mm_trace::{TickTrace, TraceSpan};
/// let span = |id, parent, name: &str, start_ns, end_ns| TraceSpan {
///     id, parent, name: name.into(), kind: "stage", start_ns, end_ns, ..Default::default()
/// };
/// let trace = TickTrace {
///     name: "tick".into(), duration_ns: 100_000,
///     spans: vec![span(1, None, "fetch_md", 0, 90_000), span(2, Some(1), "GET book", 5_000, 68_015)],
///     ..Default::default()
/// };
/// let folded = mm_trace::folded_stacks(&[trace]);
/// assert_eq!(folded, "tick 10\ntick;fetch_md 27\ntick;fetch_md;GET book 63\n");
/// ```
pub fn folded_stacks(traces: &[TickTrace]) -> String {
    export::folded::render(traces)
}

/// Writes [`folded_stacks`] of the recent kept ticks ([`recent_traces`](crate::recent_traces())) to `path`,
/// e.g. for `inferno-flamegraph stacks.folded > flame.svg`.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("mm-trace-doc-folded-{}", std::process::id()));
/// mm_trace::write_folded_stacks(dir.join("stacks.folded")).unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_folded_stacks(path: impl AsRef<Path>) -> Result<(), Error> {
    write_file(path.as_ref(), &folded_stacks(&imp::recent_traces()))
}

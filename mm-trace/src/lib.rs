//! # mm-trace
//!
//! Stage timing for latency-critical loops: put `#[stage]` on the functions of your loop and
//! `#[traced_tick]` on its step, and get per-stage p50/p95/p99, deadline misses, sampled
//! per-tick traces (plus every slow tick), Prometheus metrics and golden JSON traces.
//!
//! ```
//! use mm_trace::{stage, traced_tick, TraceConfig};
//!
//! struct Bot { symbols: Vec<&'static str> }
//!
//! impl Bot {
//!     #[traced_tick]
//!     fn tick(&mut self) -> Result<(), String> {
//!         let books = self.fetch_md()?;
//!         let spread = mm_trace::in_stage!("spread", books * 2);
//!         self.emit(spread);
//!         Ok(())
//!     }
//!
//!     #[stage("fetch_md")]
//!     fn fetch_md(&self) -> Result<usize, String> { Ok(self.symbols.len()) }
//!
//!     #[stage]
//!     fn emit(&self, _spread: usize) {}
//! }
//!
//! mm_trace::init(TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
//! let mut bot = Bot { symbols: vec!["BTC-USD", "ETH-USD"] };
//! for _ in 0..10 { bot.tick().unwrap(); }
//! let s = mm_trace::summary();
//! # #[cfg(feature = "enabled")] {
//! assert_eq!(s.ticks, 10);
//! assert_eq!(s.stage("fetch_md").unwrap().count, 10);
//! # }
//! println!("{}", s.table());
//! ```
//!
//! ## Cost and rollback
//! - Compiled out: with `default-features = false` every attribute returns the item unchanged,
//!   `in_stage!` is the bare expression and `stage_guard!` a zero-sized value.
//! - Runtime off (`trace.enabled: false` or [`set_enabled`]): one predictable branch per stage.
//! - Unsampled ticks: a stage costs a thread-local load and a branch (with slow-tick capture off)
//!   or one trace-buffer write (with it on, so a slow tick's trace can be kept at its end).
//!
//! ## What feeds what
//! - Every tick, sampled or not: `tick_total`, deadline misses, partial failures.
//! - Sampled ticks (and stages outside any tick): stage histograms and the tick's trace.
//! - Slow unsampled ticks (`capture_slow_ticks`): their trace only. They do **not** feed the stage
//!   histograms, so per-stage quantiles stay an unbiased sample of all ticks.
//! - Exchange requests, guard trips, the parallel-symbols gauge: always.

#![cfg_attr(docsrs, feature(doc_cfg))]
// Compiled out, the histogram and summary internals only serve the (empty) public API types.
#![cfg_attr(not(feature = "enabled"), allow(dead_code))]

mod config;
mod error;
mod export;
pub mod fs;
mod health;
mod histogram;
pub mod profile;
mod sampling;
mod summary;

#[cfg(feature = "enabled")]
mod clock;
#[cfg(feature = "enabled")]
mod collector;
#[cfg(feature = "tokio")]
mod rt;
#[cfg(feature = "enabled")]
mod sync;

#[cfg_attr(feature = "enabled", path = "imp/enabled.rs")]
#[cfg_attr(not(feature = "enabled"), path = "imp/disabled.rs")]
mod imp;

use std::path::Path;

pub use config::{ConfigError, ConfigIssue, TraceConfig};
pub use error::Error;
pub use export::json::golden_trace_json;
pub(crate) use fs::write_file;
pub use histogram::{BUCKETS, HistogramSnapshot, PROMETHEUS_BOUNDS_MS, bucket_bounds};
pub use imp::{ContextGuard, TickContext, WithContext};
pub use mm_trace_macros::{exchange_req, stage, traced_tick};
#[cfg(feature = "tokio")]
pub use rt::{spawn, spawn_blocking};
pub use sampling::is_sampled;
pub use summary::{ExchangeStats, Health, KeepReason, StageStats, Summary, TickTrace, TraceSpan};

/// Installs a configuration (validated first). Can be called again to change it.
///
/// ```
/// mm_trace::init(mm_trace::TraceConfig { deadline_ms: 150.0, ..Default::default() }).unwrap();
/// let bad = mm_trace::TraceConfig { sample_rate: 2.0, ..Default::default() };
/// assert!(mm_trace::init(bad).unwrap_err().to_string().contains("trace.sample_rate = 2"));
/// ```
pub fn init(config: TraceConfig) -> Result<(), Error> {
    config.validate()?;
    imp::init(&config);
    Ok(())
}

/// Flushes pending traces and writes the profile if `profile_on_shutdown` is set.
pub fn shutdown() -> Result<(), Error> {
    imp::flush();
    if let Some(path) = imp::config().profile_on_shutdown {
        write_profile(path)?;
    }
    Ok(())
}

/// Everything collected since start or the last [`reset`], merged over all threads.
pub fn summary() -> Summary {
    imp::summary()
}

/// Clears all collected data (a new measurement window). Tick ids restart at 1.
pub fn reset() {
    imp::reset()
}

/// Waits until every kept trace has been processed (golden files written, ring updated).
pub fn flush() {
    imp::flush()
}

/// Turns recording on or off at run time, on every thread, without a restart.
pub fn set_enabled(on: bool) {
    imp::set_enabled(on)
}

/// Whether recording is on.
pub fn is_enabled() -> bool {
    imp::is_enabled()
}

/// Changes the share of ticks traced in detail at run time.
///
/// ```
/// assert!(mm_trace::set_sample_rate(0.5).is_ok());
/// let err = mm_trace::set_sample_rate(1.5).unwrap_err();
/// assert_eq!(err.to_string(), "sample rate 1.5 is out of range: allowed 0.0 to 1.0");
/// ```
pub fn set_sample_rate(rate: f64) -> Result<(), Error> {
    if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
        return Err(Error::InvalidArgument(format!("sample rate {rate} is out of range: allowed 0.0 to 1.0")));
    }
    imp::set_sample_rate(rate);
    Ok(())
}

/// Counts one trip of a risk guard, by reason (label `reason` of `mm_guard_trips_total`).
pub fn guard_trip(reason: &str) {
    imp::guard_trip(reason)
}

/// Sets the `mm_parallel_symbols` gauge.
pub fn set_parallel_symbols(n: usize) {
    imp::set_parallel_symbols(n)
}

/// Marks the current tick as partially failed (some symbols failed).
pub fn partial_fail() {
    imp::partial_fail()
}

/// Adds `key = value` to the current tick's trace (kept only if the trace is kept), up to
/// `max_annotations_per_tick` per tick; past it the annotation is counted in
/// [`Health::annotations_dropped`]. `value` is formatted only when the annotation is kept, so a
/// tick that cannot keep a trace (unsampled with slow-tick capture off, or no tick) pays nothing.
pub fn annotate(key: &str, value: impl std::fmt::Display) {
    imp::annotate(key, &value)
}

/// The id of the tick running on this thread, if any.
pub fn current_tick_id() -> Option<u64> {
    imp::current_tick_id()
}

/// The most recent kept traces (up to `chrome_ring_ticks`), oldest first.
pub fn recent_traces() -> Vec<TickTrace> {
    imp::recent_traces()
}

/// Trace files (golden and slow) written since start or the last reset, in order.
pub fn trace_files_written() -> Vec<std::path::PathBuf> {
    imp::trace_files_written()
}

// ---------------------------------------------------------------------------------------------
// Exporters

#[cfg(feature = "http")]
pub use export::http::{MetricsServer, MetricsServerOptions};
pub use export::prometheus::PrometheusUnits;

/// The Prometheus text exposition (format 0.0.4) of everything collected: the metrics of the
/// table in `docs/PERFORMANCE_DASHBOARD.md`, in the units chosen by `TraceConfig::prometheus_base_units`.
///
/// Reads the same merged data as [`summary`]: it never stops or waits for recording threads.
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
    prometheus_text_from(&summary(), units)
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

/// Serves [`prometheus_text`] at `GET /metrics` (and `HEAD`) from a thread of its own, with std
/// networking only. Binds exactly `addr`; give a loopback address unless the port must be
/// reachable from other hosts. Dropping the returned handle stops the server.
///
/// Other paths get `404`, other methods `405` (with `Allow`), malformed requests `400`; a client
/// that is too slow gets `408` and is closed, and past 16 concurrent connections new ones get
/// `503` (see [`serve_metrics_with`] to change these limits). Every response closes the
/// connection. Recording threads are never touched.
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
    export::http::serve(addr, options, prometheus_text)
}

/// Sets a label written into every later profile's `labels` (e.g. `track = canary`); setting a
/// key again replaces its value. Labels are kept across [`reset`].
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
    profile_json_from(&summary())
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

/// Chrome trace-event JSON of the recent kept ticks ([`recent_traces`]), to open in Perfetto
/// (ui.perfetto.dev, "Open trace file") or chrome://tracing.
///
/// One complete (`"ph":"X"`) event per tick and per span, `ts`/`dur` in microseconds,
/// `tid` the thread ordinal, and `"ph":"M"` events naming the process and threads.
///
/// ```
/// let doc: serde_json::Value = serde_json::from_str(&mm_trace::chrome_trace_json()).unwrap();
/// assert!(doc["traceEvents"].is_array());
/// assert_eq!(doc["displayTimeUnit"], "ms");
/// ```
pub fn chrome_trace_json() -> String {
    chrome_trace_json_from(&recent_traces())
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
/// let path = std::env::temp_dir().join(format!("mm-trace-doc-{}.trace.json", std::process::id()));
/// mm_trace::write_chrome_trace(&path).unwrap();
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_chrome_trace(path: impl AsRef<Path>) -> Result<(), Error> {
    write_file(path.as_ref(), &chrome_trace_json())
}

/// A deterministic clock for golden tests: every clock read advances a global counter by a
/// fixed step, so the same program records the same nanoseconds on every run.
///
/// ```
/// mm_trace::test_clock::install(1_000);
/// // ... run ticks: every span lasts a whole number of steps ...
/// mm_trace::test_clock::uninstall();
/// ```
pub mod test_clock {
    /// Switches all threads to the test clock, starting at 0, advancing `step_ns` per read.
    ///
    /// Traces still queued are written first, so none of them is converted with the wrong clock.
    pub fn install(step_ns: u64) {
        crate::imp::flush();
        crate::imp::test_clock_install(step_ns)
    }

    /// Moves the test clock forward by `ns` (simulated work or sleep).
    pub fn advance(ns: u64) {
        crate::imp::test_clock_advance(ns)
    }

    /// Returns to the real clock, after writing the traces recorded with the test clock (the
    /// trace worker converts readings to nanoseconds with the clock in force when it writes).
    pub fn uninstall() {
        crate::imp::flush();
        crate::imp::test_clock_uninstall()
    }

    /// For simulations that sleep a scaled-down time (e.g. 0.1 ms per simulated ms): every
    /// duration recorded afterwards is real time divided by `scale`, so histograms, deadlines,
    /// traces and exports read in simulated time. `1.0` (the default) is real time. Folded into
    /// the clock's conversion factor: no cost per span.
    ///
    /// ```
    /// mm_trace::test_clock::set_time_scale(0.1).unwrap(); // 1 real ms records as 10 ms
    /// mm_trace::test_clock::set_time_scale(1.0).unwrap();
    /// assert!(mm_trace::test_clock::set_time_scale(0.0).is_err());
    /// ```
    pub fn set_time_scale(scale: f64) -> Result<(), crate::Error> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(crate::Error::InvalidArgument(format!(
                "time scale must be a finite number > 0 (1.0 = real time), got {scale}"
            )));
        }
        #[cfg(feature = "enabled")]
        crate::clock::set_time_scale(scale);
        Ok(())
    }
}

/// Times an expression as a stage: `in_stage!("spread", { ... })` evaluates to the block's value.
///
/// ```
/// let v = mm_trace::in_stage!("spread", { 40 + 2 });
/// assert_eq!(v, 42);
/// ```
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! in_stage {
    // A block's statements are spliced after the guard, so `{ ... }` raises no `unused_braces`
    // and `.await`, `?` and `return` inside keep their meaning.
    ($name:literal, { $($body:tt)* } $(,)?) => {{
        let __mm_guard = $crate::stage_guard!($name);
        $($body)*
    }};
    ($name:literal, $body:expr $(,)?) => {{
        let __mm_guard = $crate::stage_guard!($name);
        $body
    }};
    ($($other:tt)*) => {
        ::core::compile_error!(
            "in_stage! takes a string literal name and an expression: write in_stage!(\"spread\", { ... })"
        )
    };
}

/// Times an expression as a stage (compiled out: the bare expression).
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! in_stage {
    ($name:literal, { $($body:tt)* } $(,)?) => {{
        const _: () = $crate::__private::check_stage_name($name);
        $($body)*
    }};
    ($name:literal, $body:expr $(,)?) => {{
        const _: () = $crate::__private::check_stage_name($name);
        $body
    }};
    ($($other:tt)*) => {
        ::core::compile_error!(
            "in_stage! takes a string literal name and an expression: write in_stage!(\"spread\", { ... })"
        )
    };
}

/// A guard that times the rest of the scope as a stage: `let _g = stage_guard!("guards");`.
///
/// ```
/// fn guards() {
///     let _g = mm_trace::stage_guard!("guards");
///     // ... checked until the end of the scope ...
/// }
/// guards();
/// ```
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! stage_guard {
    ($name:literal $(,)?) => {{
        const _: () = $crate::__private::check_stage_name($name);
        static __MM_SITE: $crate::__private::Site = $crate::__private::Site::stage($name);
        $crate::__private::StageGuard::enter_stage(&__MM_SITE)
    }};
    ($($other:tt)*) => {
        ::core::compile_error!("stage_guard! takes a string literal name: write let _g = stage_guard!(\"guards\");")
    };
}

/// A stage guard (compiled out: a zero-sized value).
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! stage_guard {
    ($name:literal $(,)?) => {{
        const _: () = $crate::__private::check_stage_name($name);
        $crate::__private::NoopGuard
    }};
    ($($other:tt)*) => {
        ::core::compile_error!("stage_guard! takes a string literal name: write let _g = stage_guard!(\"guards\");")
    };
}

/// Not public API: what the macros expand to. May change in any release.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "enabled")]
    pub use crate::collector::span::{Instrumented, StageGuard};
    #[cfg(feature = "enabled")]
    pub use crate::collector::tick::{TickFuture, TickGuard};
    #[cfg(feature = "enabled")]
    pub use crate::collector::site::Site;

    /// One raw read of the clock spans use (calibrating first if needed is the caller's job:
    /// call [`clock_source`] once). For benchmarks comparing a span with two clock reads.
    #[cfg(feature = "enabled")]
    #[inline(always)]
    pub fn clock_now() -> u64 {
        crate::clock::now()
    }

    /// Calibrates the clock if needed and names the source in use (`"tsc"`, `"monotonic"`).
    #[cfg(feature = "enabled")]
    pub fn clock_source() -> &'static str {
        crate::clock::ensure_calibrated();
        crate::clock::source_name()
    }

    /// The zero-sized guard of compiled-out `stage_guard!`.
    #[derive(Debug, Clone, Copy)]
    pub struct NoopGuard;

    /// Rejects, at compile time, stage names that are empty, contain whitespace or control
    /// characters, or are longer than 128 bytes.
    pub const fn check_stage_name(name: &str) {
        let b = name.as_bytes();
        assert!(!b.is_empty(), "stage name must not be empty: write e.g. \"spread\"");
        assert!(b.len() <= 128, "stage name must be at most 128 bytes");
        let mut i = 0;
        while i < b.len() {
            assert!(
                b[i] > b' ' && b[i] != 0x7f,
                "stage name must not contain whitespace or control characters: write e.g. \"fetch_md\""
            );
            i += 1;
        }
    }
}

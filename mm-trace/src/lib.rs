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
//! ## The API by what you do
//! - **Instrument**: [`stage`], [`traced_tick`], [`exchange_req`], [`in_stage!`],
//!   [`stage_guard!`]; events on the current tick ([`guard_trip`], [`partial_fail`],
//!   [`annotate`], [`set_parallel_symbols`], [`current_tick_id`]); work carried to other threads
//!   or tasks ([`TickContext`], and with feature `tokio` `spawn`/`spawn_blocking`).
//! - **Configure and control**: [`init`] with a [`TraceConfig`], [`set_enabled`],
//!   [`set_sample_rate`], [`reset`], [`flush`], [`shutdown`], [`test_clock`].
//! - **Read**: [`summary`] ([`Summary`], [`StageStats`], [`Health`]), [`recent_traces`]
//!   ([`TickTrace`]), [`trace_files_written`], [`is_sampled`].
//! - **Export**, every exporter in three forms — of what was collected, `…_from` given data, and
//!   `write_…(path)`: Prometheus ([`prometheus_text`], [`prometheus_text_from`],
//!   [`write_prometheus_text`]; OpenMetrics with exemplars: [`openmetrics_text`],
//!   [`openmetrics_text_from`], [`write_openmetrics_text`]), the perf profile ([`profile_json`], [`profile_json_from`],
//!   [`write_profile`]), Chrome traces ([`chrome_trace_json`], [`chrome_trace_json_from`],
//!   [`write_chrome_trace`]), golden traces ([`golden_trace_json`], [`golden_trace_json_from`],
//!   [`write_golden_trace`]); with feature `http` the endpoint (`serve_metrics`): `/metrics`
//!   by content negotiation, `/traces` and `/traces/<trace_id>` (an exemplar's trace id leads
//!   there).
//! - **Pictures**: [`tick_svg`] (one tick as a self-contained SVG timeline) and
//!   [`folded_stacks`] / [`write_folded_stacks`] (flame-graph input); slow-tick files get an SVG
//!   beside their JSON.
//!   Tools reading profiles use [`profile`] (the document's types) and [`histogram`] (the bucket
//!   layout and the quantile rule perf-gate shares).
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
pub mod histogram;
pub mod profile;
mod sampling;
mod summary;
pub mod xml;

#[cfg(feature = "enabled")]
mod clock;
#[cfg(feature = "enabled")]
mod collector;
#[cfg(feature = "tokio")]
mod rt;
#[cfg(feature = "enabled")]
mod sync;
#[cfg(feature = "tracing")]
mod tracing_layer;

#[cfg_attr(feature = "enabled", path = "imp/enabled.rs")]
#[cfg_attr(not(feature = "enabled"), path = "imp/disabled.rs")]
mod imp;

/// The public functions, by what a user does with them (all re-exported at the crate root).
mod api {
    pub(crate) mod configure;
    pub(crate) mod exporters;
    pub(crate) mod instrument;
    pub(crate) mod read;
}

// Instrument: the attributes, the carried tick context, events (`api/instrument.rs`).
pub use api::instrument::{annotate, current_tick_id, guard_trip, partial_fail, set_parallel_symbols, traceparent};
pub use imp::{ContextGuard, TickContext, WithContext};
pub use mm_trace_macros::{exchange_req, stage, traced_tick};
#[cfg(feature = "tokio")]
pub use rt::{spawn, spawn_blocking};
// Coming from `tracing` (feature `tracing`, `tracing_layer/`).
#[cfg(feature = "tracing")]
pub use tracing_layer::{MmTraceLayer, tracing_layer};

// Configure and control (`api/configure.rs`).
pub use api::configure::{flush, init, is_enabled, reset, set_enabled, set_sample_rate, shutdown, test_clock};
pub use config::{ConfigError, ConfigIssue, OtlpConfig, TickConfig, TraceConfig};
pub use error::Error;

// Read (`api/read.rs`).
pub use api::read::{recent_traces, summary, trace_files_written};
pub use histogram::HistogramSnapshot;
pub use sampling::is_sampled;
pub use summary::{ExchangeStats, Health, KeepReason, StageStats, Summary, TickKindStats, TickTrace, TraceSpan};

// Export (`api/exporters.rs`).
#[cfg(feature = "http")]
pub use api::exporters::{MetricsServer, MetricsServerOptions, serve_metrics, serve_metrics_with};
pub use api::exporters::{
    PrometheusUnits, chrome_trace_json, chrome_trace_json_from, clear_profile_labels, golden_trace_json,
    golden_trace_json_from, openmetrics_text, openmetrics_text_from, profile_json, profile_json_from, prometheus_text,
    prometheus_text_from, prometheus_text_units, set_profile_label, write_chrome_trace, write_golden_trace,
    write_openmetrics_text, write_profile, write_prometheus_text,
};
// Pictures: one tick as an SVG timeline, folded stacks for flame graphs (`api/exporters.rs`).
pub use api::exporters::{folded_stacks, tick_svg, write_folded_stacks};

/// Not public API: what the macros expand to. May change in any release.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "enabled")]
    pub use crate::collector::site::Site;
    #[cfg(feature = "enabled")]
    pub use crate::collector::span::{Instrumented, StageGuard};
    #[cfg(feature = "enabled")]
    pub use crate::collector::tick::{TickFuture, TickGuard};
    #[cfg(feature = "enabled")]
    pub use crate::collector::trace_ids::IntoTraceparent;

    /// An incoming `traceparent` copied for a tick future (`#[traced_tick(parent = ..)]` on an
    /// async tick: the body moves the arguments the value may borrow from).
    #[cfg(feature = "enabled")]
    pub fn owned_traceparent(parent: &impl IntoTraceparent) -> Option<String> {
        parent.traceparent().map(str::to_owned)
    }

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

    #[cfg(feature = "enabled")]
    pub use crate::collector::outcome::Outcome;

    /// The trace worker's exemplar work for kept traces (benchmarks only).
    #[cfg(feature = "enabled")]
    pub use crate::collector::exemplars::bench_record as exemplar_bench_record;

    /// Whether a function's outcome is a failure (what the attributes check for `err` counting).
    #[cfg(feature = "enabled")]
    #[inline(always)]
    pub fn is_err<O: Outcome>(outcome: &O) -> bool {
        outcome.is_failure()
    }

    /// The OTLP/HTTP body (a protobuf `ExportTraceServiceRequest`) the exporter sends for
    /// `traces`, under a resource named `service.name`: for the export benchmark.
    #[cfg(feature = "otlp")]
    pub fn otlp_body(traces: &[crate::summary::TickTrace], service_name: &str) -> Vec<u8> {
        crate::export::otlp::body_for(traces, service_name)
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

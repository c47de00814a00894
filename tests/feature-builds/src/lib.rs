//! Uses the public API behind each mm-trace feature, so `cargo check --features X` of this crate
//! fails when feature X of mm-trace does not build, or does not export its API, on its own.
#![deny(warnings)]
#![allow(missing_docs)]

use mm_trace::{exchange_req, stage, traced_tick};

#[stage("fetch_md")]
pub fn fetch_md(x: u64) -> u64 {
    x.wrapping_mul(3)
}

#[exchange_req(verb = "POST", api = "order")]
pub fn place(x: u64) -> u64 {
    x + 1
}

#[traced_tick]
pub fn tick(x: u64) -> u64 {
    place(fetch_md(x)) + mm_trace::in_stage!("spread", { x / 2 })
}

/// Reads the collector: works, and reads empty, with or without `enabled`.
pub fn ticks_seen() -> u64 {
    mm_trace::summary().ticks
}

/// `TickContext` needs no runtime feature.
pub fn on_thread() -> std::thread::JoinHandle<u64> {
    let ctx = mm_trace::TickContext::current();
    std::thread::spawn(move || ctx.in_scope(|| fetch_md(7)))
}

#[cfg(feature = "http")]
pub fn metrics() -> Result<mm_trace::MetricsServer, mm_trace::Error> {
    mm_trace::serve_metrics("127.0.0.1:0")
}

/// A task and a blocking job that join the current tick (feature `tokio`; the caller brings the
/// runtime).
#[cfg(feature = "tokio")]
pub async fn spawned() -> u64 {
    let task = mm_trace::spawn(async { fetch_md(1) });
    let job = mm_trace::spawn_blocking(|| fetch_md(2));
    task.await.unwrap_or(0) + job.await.unwrap_or(0)
}

/// The `tracing` layer and its builder (feature `tracing`; without `enabled` it records nothing).
#[cfg(feature = "tracing")]
pub fn layer() -> mm_trace::MmTraceLayer {
    mm_trace::tracing_layer().tick_span("request").max_open_spans(1024)
}

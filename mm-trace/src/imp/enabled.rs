//! Instrumentation compiled in: the real collector.

use std::sync::atomic::Ordering::Relaxed;

use crate::collector::{events, exemplars, labels, merged, setup, worker};
use crate::config::TraceConfig;
use crate::export::exposition::Exemplars;
#[cfg(feature = "http")]
use crate::export::trace_list::KeptTick;
use crate::summary::{Summary, TickTrace};

pub use crate::collector::context::{ContextGuard, TickContext, WithContext};

pub(crate) fn init(config: &TraceConfig) {
    setup::apply_config(config);
}

pub(crate) fn config() -> TraceConfig {
    setup::config()
}

pub(crate) fn summary() -> Summary {
    merged::summary()
}

pub(crate) fn reset() {
    merged::reset()
}

pub(crate) fn flush() {
    worker::flush()
}

pub(crate) fn set_enabled(on: bool) {
    setup::set_enabled(on)
}

pub(crate) fn is_enabled() -> bool {
    setup::is_enabled()
}

pub(crate) fn set_sample_rate(rate: f64) {
    setup::set_sample_rate(rate)
}

pub(crate) fn guard_trip(reason: &str) {
    if is_enabled() {
        labels::trip(reason)
    }
}

pub(crate) fn set_parallel_symbols(n: usize) {
    crate::collector::PARALLEL_SYMBOLS.store(n as u64, Relaxed)
}

pub(crate) fn partial_fail() {
    events::partial_fail()
}

pub(crate) fn annotate(key: &str, value: &dyn std::fmt::Display) {
    events::annotate(key, value)
}

pub(crate) fn traceparent() -> Option<String> {
    events::traceparent()
}

pub(crate) fn current_tick_id() -> Option<u64> {
    events::current_tick_id()
}

pub(crate) fn recent_traces() -> Vec<TickTrace> {
    worker::recent_traces()
}

/// The exemplars of every duration series, for an exposition with bucket bounds `bounds_ms`.
pub(crate) fn exemplars(bounds_ms: &[f64]) -> Exemplars {
    exemplars::snapshot(bounds_ms)
}

/// The kept ticks in the ring now (never waits for the worker).
#[cfg(feature = "http")]
pub(crate) fn kept_ticks() -> Vec<KeptTick> {
    worker::kept_ticks()
}

/// The latest kept tick in the ring with this trace id (and tick id); never waits for the worker.
#[cfg(feature = "http")]
pub(crate) fn find_trace(trace_id: &str, tick_id: Option<u64>) -> Option<TickTrace> {
    worker::find_trace(trace_id, tick_id)
}

pub(crate) fn trace_files_written() -> Vec<std::path::PathBuf> {
    worker::flush();
    worker::files_written()
}

pub(crate) fn test_clock_install(step_ns: u64) {
    crate::clock::install_test_clock(0, step_ns)
}

pub(crate) fn test_clock_advance(ns: u64) {
    crate::clock::advance_test_clock(ns)
}

pub(crate) fn test_clock_uninstall() {
    crate::clock::uninstall_test_clock()
}

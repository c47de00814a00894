//! Instrumentation compiled in: the real collector.

use std::sync::atomic::Ordering::Relaxed;

use crate::collector::{self, labels, tick, worker};
use crate::{Summary, TickTrace, TraceConfig};

pub use crate::collector::tick::{ContextGuard, TickContext, WithContext};

pub(crate) fn init(config: &TraceConfig) {
    collector::apply_config(config);
}

pub(crate) fn config() -> TraceConfig {
    collector::config()
}

pub(crate) fn summary() -> Summary {
    collector::summary()
}

pub(crate) fn reset() {
    collector::reset()
}

pub(crate) fn flush() {
    worker::flush()
}

pub(crate) fn set_enabled(on: bool) {
    collector::ENABLED.store(on, Relaxed)
}

pub(crate) fn is_enabled() -> bool {
    collector::ENABLED.load(Relaxed)
}

pub(crate) fn set_sample_rate(rate: f64) {
    collector::set_sample_rate(rate)
}

pub(crate) fn guard_trip(reason: &str) {
    if is_enabled() {
        labels::trip(reason)
    }
}

pub(crate) fn set_parallel_symbols(n: usize) {
    collector::PARALLEL_SYMBOLS.store(n as u64, Relaxed)
}

pub(crate) fn partial_fail() {
    tick::partial_fail()
}

pub(crate) fn annotate(key: &str, value: &str) {
    tick::annotate(key, value)
}

pub(crate) fn current_tick_id() -> Option<u64> {
    tick::current_tick_id()
}

pub(crate) fn recent_traces() -> Vec<TickTrace> {
    worker::recent_traces()
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

//! What the `tracing` layer's test binaries share: one test at a time on a fresh collector, and
//! reading back what it recorded.
#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::sync::Mutex;

use mm_trace::{TickTrace, TraceConfig, TraceSpan};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of a binary and starts each on a fresh collector configured by `cfg`.
pub fn setup(cfg: TraceConfig) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { export_golden: false, chrome_ring_ticks: 256, ..cfg }).unwrap();
    mm_trace::set_enabled(true);
    mm_trace::reset();
    g
}

/// Every tick sampled.
pub fn sampled() -> TraceConfig {
    TraceConfig { sample_rate: 1.0, ..Default::default() }
}

/// Spans recorded for stage `name`.
pub fn count(name: &str) -> u64 {
    mm_trace::summary().stage(name).map_or(0, |s| s.count)
}

/// The kept ticks, once the worker has handled every one.
pub fn traces() -> Vec<TickTrace> {
    mm_trace::flush();
    mm_trace::recent_traces()
}

/// The span named `name` in `t`.
pub fn span<'a>(t: &'a TickTrace, name: &str) -> &'a TraceSpan {
    t.spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name} in {:#?}", t.spans))
}

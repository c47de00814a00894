//! Instrumentation compiled out: the same signatures, doing nothing and reading empty.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use crate::config::TraceConfig;
use crate::export::exposition::Exemplars;
#[cfg(feature = "http")]
use crate::export::trace_list::KeptTick;
use crate::summary::{Summary, TickTrace};

static CONFIG: Mutex<Option<TraceConfig>> = Mutex::new(None);

pub(crate) fn init(config: &TraceConfig) {
    *CONFIG.lock().unwrap_or_else(|e| e.into_inner()) = Some(config.clone());
}

pub(crate) fn config() -> TraceConfig {
    CONFIG.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
}

pub(crate) fn summary() -> Summary {
    let cfg = config();
    Summary { deadline_ms: cfg.deadline_ms, sample_rate: cfg.sample_rate, ..Summary::default() }
}

pub(crate) fn reset() {}

pub(crate) fn flush() {}

pub(crate) fn set_enabled(_on: bool) {}

pub(crate) fn is_enabled() -> bool {
    false
}

pub(crate) fn set_sample_rate(_rate: f64) {}

pub(crate) fn guard_trip(_reason: &str) {}

pub(crate) fn set_parallel_symbols(_n: usize) {}

pub(crate) fn partial_fail() {}

pub(crate) fn annotate(_key: &str, _value: &dyn std::fmt::Display) {}

pub(crate) fn traceparent() -> Option<String> {
    None
}

pub(crate) fn current_tick_id() -> Option<u64> {
    None
}

pub(crate) fn recent_traces() -> Vec<TickTrace> {
    Vec::new()
}

pub(crate) fn exemplars(_bounds_ms: &[f64]) -> Exemplars {
    Exemplars::default()
}

#[cfg(feature = "http")]
pub(crate) fn kept_ticks() -> Vec<KeptTick> {
    Vec::new()
}

#[cfg(feature = "http")]
pub(crate) fn find_trace(_trace_id: &str, _tick_id: Option<u64>) -> Option<TickTrace> {
    None
}

pub(crate) fn trace_files_written() -> Vec<std::path::PathBuf> {
    Vec::new()
}

pub(crate) fn test_clock_install(_step_ns: u64) {}

pub(crate) fn test_clock_advance(_ns: u64) {}

pub(crate) fn test_clock_uninstall() {}

/// Compiled out: carries nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickContext;

impl TickContext {
    /// Compiled out: an empty context.
    pub fn current() -> TickContext {
        TickContext
    }

    /// Compiled out: always `None`.
    pub fn tick_id(&self) -> Option<u64> {
        None
    }

    /// Compiled out: a zero-sized guard.
    pub fn enter(&self) -> ContextGuard {
        ContextGuard
    }

    /// Compiled out: runs `f`.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Compiled out: the future itself, in a transparent wrapper.
    pub fn wrap<F: Future>(self, fut: F) -> WithContext<F> {
        WithContext { fut }
    }
}

/// Compiled out: zero-sized.
#[derive(Debug)]
pub struct ContextGuard;

/// Compiled out: polls the inner future.
#[derive(Debug)]
pub struct WithContext<F> {
    fut: F,
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned and never moved.
        unsafe { self.map_unchecked_mut(|w| &mut w.fut) }.poll(cx)
    }
}

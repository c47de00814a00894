//! The configuration in force, and the live controls that change it.

use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;

use super::switches::{
    ANNOTATION_CAP, CAPTURE_SLOW, DEADLINE_NS, ENABLED, SAMPLE_RATE_BITS, SAMPLE_THRESHOLD, SLOW_QUANTILE_NS, SPAN_CAP,
};
use super::{labels, tick_kinds, worker};
use crate::config::{TraceConfig, ms_to_ns};

/// The configuration installed by `init` (`None`: the default is in force).
static CONFIG: Mutex<Option<TraceConfig>> = Mutex::new(None);

/// Installs a (validated) configuration: switches take effect at once on every thread.
pub(crate) fn apply_config(cfg: &TraceConfig) {
    crate::clock::ensure_calibrated();
    ENABLED.store(cfg.enabled, Relaxed);
    set_sample_rate(cfg.sample_rate);
    DEADLINE_NS.store(ms_to_ns(cfg.deadline_ms), Relaxed);
    CAPTURE_SLOW.store(cfg.capture_slow_ticks, Relaxed);
    SPAN_CAP.store(u32::try_from(cfg.max_spans_per_tick).unwrap_or(u32::MAX), Relaxed);
    ANNOTATION_CAP.store(u32::try_from(cfg.max_annotations_per_tick).unwrap_or(u32::MAX), Relaxed);
    labels::set_cap(cfg.label_cardinality_cap);
    crate::histogram::set_prometheus_bounds_ms(cfg.prometheus_buckets_ms.as_deref());
    tick_kinds::configure(
        cfg.ticks.iter().filter_map(|(name, t)| t.deadline_ms.map(|ms| (name.clone(), ms_to_ns(ms)))).collect(),
    );
    if cfg.slow_tick_quantile.is_none() {
        SLOW_QUANTILE_NS.store(u64::MAX, Relaxed);
    }
    *CONFIG.lock().unwrap_or_else(|e| e.into_inner()) = Some(cfg.clone());
    worker::configure(cfg);
}

/// The configuration in force (the default until `init`; the live sample rate included).
pub(crate) fn config() -> TraceConfig {
    let mut cfg = CONFIG.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
    cfg.sample_rate = sample_rate();
    cfg
}

/// Changes the sample rate on every thread (`rate` is validated by the caller).
pub(crate) fn set_sample_rate(rate: f64) {
    SAMPLE_RATE_BITS.store(rate.to_bits(), Relaxed);
    SAMPLE_THRESHOLD.store(crate::sampling::threshold(rate), Relaxed);
}

/// The sample rate in force.
pub(crate) fn sample_rate() -> f64 {
    f64::from_bits(SAMPLE_RATE_BITS.load(Relaxed))
}

/// Turns recording on or off on every thread.
pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Relaxed);
}

/// Whether recording is on.
pub(crate) fn is_enabled() -> bool {
    ENABLED.load(Relaxed)
}

//! The switches every span and tick reads: one relaxed load each, set by `setup` (from the
//! configuration) and by the live controls (`set_enabled`, `set_sample_rate`).
//!
//! Their initial values are the default configuration's, so the defaults hold before `init`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

use crate::config::defaults;

/// Recording on (`trace.enabled`, `set_enabled`).
pub(crate) static ENABLED: AtomicBool = AtomicBool::new(defaults::ENABLED);
/// A tick is sampled when the hash of its id is below this (`sampling::threshold`).
pub(crate) static SAMPLE_THRESHOLD: AtomicU64 = AtomicU64::new(crate::sampling::threshold(defaults::SAMPLE_RATE));
/// The sample rate in force, as `f64` bits.
pub(crate) static SAMPLE_RATE_BITS: AtomicU64 = AtomicU64::new(defaults::SAMPLE_RATE.to_bits());
/// `tick_total` above this is a deadline miss, ns.
pub(crate) static DEADLINE_NS: AtomicU64 = AtomicU64::new(crate::config::ms_to_ns(defaults::DEADLINE_MS));
/// Slow-tick capture on: unsampled ticks buffer their spans in case they end slow.
pub(crate) static CAPTURE_SLOW: AtomicBool = AtomicBool::new(defaults::CAPTURE_SLOW_TICKS);
/// Ticks slower than this are "slow" even under the deadline (`u64::MAX`: deadline only).
pub(crate) static SLOW_QUANTILE_NS: AtomicU64 = AtomicU64::new(u64::MAX);
/// Spans kept in one tick's trace (`max_spans_per_tick`).
pub(crate) static SPAN_CAP: AtomicU32 = AtomicU32::new(defaults::MAX_SPANS_PER_TICK as u32);
/// Annotations kept in one tick's trace (`max_annotations_per_tick`).
pub(crate) static ANNOTATION_CAP: AtomicU32 = AtomicU32::new(defaults::MAX_ANNOTATIONS_PER_TICK as u32);
/// The next tick id. Written by every tick of every thread: alone on its cache lines, so the
/// switches above that every span reads never share a line with it.
pub(crate) static NEXT_TICK: Padded<AtomicU64> = Padded(AtomicU64::new(1));
/// The `mm_parallel_symbols` gauge.
pub(crate) static PARALLEL_SYMBOLS: AtomicU64 = AtomicU64::new(0);

/// A value alone on its (pair of, for the adjacent-line prefetcher) cache lines.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

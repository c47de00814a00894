//! Events on the current tick: partial failure, annotations, the tick's id.

use std::sync::atomic::Ordering::Relaxed;

use super::counters::Counter;
use super::local::local;
use super::switches::ENABLED;
use super::tick_state::Mode;
use super::trace_ids::format_traceparent;

/// Marks the current tick as partially failed (outside a tick: counts one partial failure).
pub(crate) fn partial_fail() {
    if !ENABLED.load(Relaxed) {
        return;
    }
    let l = local();
    match l.current() {
        Some(t) => t.partial_fail.set(true),
        None => {
            if let Some(th) = l.thread_data() {
                th.counters.bump(Counter::PartialFails, 1);
            }
        }
    }
}

/// Adds metadata to the current tick's trace, up to `max_annotations_per_tick` (past it: counted).
/// Nothing is formatted or allocated unless the tick may keep its trace and the cap has room.
pub(crate) fn annotate(key: &str, value: &dyn std::fmt::Display) {
    if !ENABLED.load(Relaxed) {
        return;
    }
    if let Some(t) = local().current()
        && t.mode.may_keep()
    {
        t.annotate(key, value);
    }
}

/// The W3C `traceparent` of the span open on this thread (the tick itself when no stage is
/// open), for outgoing requests; `None` outside a tick. Sampled (`-01`) when the tick records.
pub(crate) fn traceparent() -> Option<String> {
    if !ENABLED.load(Relaxed) {
        return None;
    }
    let t = local().current()?;
    let trace = t.trace_id();
    Some(format_traceparent(trace, trace.span_id(t.parent.get()), t.mode == Mode::Record))
}

/// The id of the tick running on this thread.
pub(crate) fn current_tick_id() -> Option<u64> {
    local().current().map(|t| t.tick_id)
}

//! Converts a kept tick's raw record (clock readings, metric keys, thread ordinals) to the
//! public [`TickTrace`]: off the hot path, when a trace is written or read.

use std::collections::HashSet;

use super::keys::{KeyKind, Labels, key_infos};
use super::thread_data::thread_name;
use super::trace_ids::span_hex;
use super::trace_record::{RawTrace, SpanRec};
use crate::summary::{TickTrace, TraceSpan};

/// Converts raw readings and keys to a [`TickTrace`] (cold path).
pub(crate) fn to_trace(raw: &RawTrace) -> TickTrace {
    let infos = key_infos();
    let mut spans: Vec<&SpanRec> = raw.local.iter().chain(raw.remote.iter()).collect();
    spans.sort_by_key(|s| (s.start, s.id));
    let mut dropped = raw.dropped;
    if spans.len() > raw.cap {
        dropped += (spans.len() - raw.cap) as u64;
        spans.truncate(raw.cap);
    }
    let rel = |t: u64| raw.ticks_to_ns(t.saturating_sub(raw.start));
    let known: HashSet<u32> = spans.iter().map(|s| s.id).collect();
    let mut thread_ids: Vec<u32> = spans.iter().map(|s| s.thread).chain([raw.thread]).collect();
    thread_ids.sort_unstable();
    thread_ids.dedup();
    let trace = raw.trace_id;
    TickTrace {
        tick_id: raw.tick_id,
        trace_id: trace.hex(),
        span_id: span_hex(trace.span_id(0)),
        parent_span_id: (raw.remote_parent != 0).then(|| span_hex(raw.remote_parent)),
        start_unix_ns: crate::clock::epoch_unix_ns().saturating_add(raw.start_epoch_ns),
        name: raw.site.name().to_owned(),
        reason: raw.reason,
        start_ns: raw.start_epoch_ns,
        duration_ns: raw.ticks_to_ns(raw.end.saturating_sub(raw.start)),
        deadline_missed: raw.missed,
        deadline_ns: Some(super::tick_kinds::deadline_ns(raw.site.total_key())),
        partial_fail: raw.partial,
        error: raw.failed,
        annotations: raw.annotations.clone(),
        spans: spans
            .iter()
            .map(|s| {
                let info = infos.get(s.key() as usize);
                let (name, kind) = match info {
                    Some(i) if i.kind == KeyKind::Exchange => (i.span_name(), "exchange"),
                    Some(i) => (i.span_name(), "stage"),
                    None => ("?".to_owned(), "stage"),
                };
                // A parent that was left out (cap) or never existed hangs the span on the tick.
                let parent = (s.parent != 0 && known.contains(&s.parent)).then_some(s.parent);
                TraceSpan {
                    id: s.id,
                    parent,
                    span_id: span_hex(trace.span_id(s.id)),
                    parent_span_id: span_hex(trace.span_id(parent.unwrap_or(0))),
                    name,
                    kind,
                    start_ns: rel(s.start),
                    end_ns: rel(s.end),
                    thread: s.thread,
                    cancelled: s.cancelled(),
                    error: s.failed(),
                    labels: info.map(|i| owned_labels(i.labels)).unwrap_or_default(),
                }
            })
            .collect(),
        spans_dropped: dropped,
        threads: thread_ids.into_iter().map(|t| (t, thread_name(t))).collect(),
        thread: raw.thread,
    }
}

/// Run-time labels as owned pairs.
pub(crate) fn owned_labels(labels: Labels) -> Vec<(String, String)> {
    labels.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

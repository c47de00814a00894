//! The merged view: every thread's histograms and counters summed into a [`Summary`], relative
//! to the baseline taken by the last `reset`.

use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;

use super::counters::{self, Counter, Counts};
use super::keys::{CALIBRATION, KeyKind, key_count, key_infos};
use super::switches::{NEXT_TICK, PARALLEL_SYMBOLS};
use super::thread_data::threads;
use super::trace_convert::owned_labels;
use super::{labels, setup, tick_kinds, worker};
use crate::health::Health;
use crate::histogram::HistogramSnapshot;
use crate::summary::{ExchangeStats, StageStats, Summary, TickKindStats};

/// Raw totals, before the reset baseline is subtracted.
#[derive(Clone, Default)]
struct Raw {
    hists: Vec<Option<HistogramSnapshot>>,
    cancelled: Vec<u64>,
    errors: Vec<u64>,
    misses: Vec<u64>,
    counts: Counts,
    guard_trips: Vec<(String, u64)>,
}

fn read_raw() -> Raw {
    let nkeys = key_count();
    let mut raw = Raw {
        hists: vec![None; nkeys],
        cancelled: vec![0; nkeys],
        errors: vec![0; nkeys],
        misses: vec![0; nkeys],
        ..Raw::default()
    };
    for t in threads() {
        for k in 0..nkeys {
            if let Some(cell) = t.cell_if_any(k) {
                cell.hist.read_into(raw.hists[k].get_or_insert_with(HistogramSnapshot::new));
                raw.cancelled[k] += cell.cancelled.load(Relaxed);
                raw.errors[k] += cell.errors.load(Relaxed);
                raw.misses[k] += cell.misses.load(Relaxed);
            }
        }
    }
    counters::read_into(&mut raw.counts, threads().map(|t| &t.counters));
    // The reason table counts the labels its cap refused itself (it is loom-checked as a unit).
    raw.counts[Counter::LabelOverflow] += labels::overflow();
    raw.guard_trips = labels::guard_trips();
    raw
}

static BASELINE: Mutex<Option<Raw>> = Mutex::new(None);

/// One counter since start or the last reset, over all threads, without merging the rest.
#[cfg(feature = "tracing")]
pub(crate) fn counter(c: Counter) -> u64 {
    let mut now = Counts::default();
    counters::read_into(&mut now, threads().map(|t| &t.counters));
    match BASELINE.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(base) => now.since(&base.counts)[c],
        None => now[c],
    }
}

/// Everything since start or the last reset, merged over all threads.
pub(crate) fn summary() -> Summary {
    let mut raw = read_raw();
    if let Some(base) = BASELINE.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        for (k, h) in raw.hists.iter_mut().enumerate() {
            if let (Some(h), Some(Some(b))) = (h.as_mut(), base.hists.get(k)) {
                h.subtract(b);
            }
        }
        for (now, then) in
            [(&mut raw.cancelled, &base.cancelled), (&mut raw.errors, &base.errors), (&mut raw.misses, &base.misses)]
        {
            for (k, c) in now.iter_mut().enumerate() {
                *c = c.saturating_sub(then.get(k).copied().unwrap_or(0));
            }
        }
        raw.counts = raw.counts.since(&base.counts);
        for (reason, n) in raw.guard_trips.iter_mut() {
            if let Some((_, b)) = base.guard_trips.iter().find(|(r, _)| r == reason) {
                *n = n.saturating_sub(*b);
            }
        }
        raw.guard_trips.retain(|(_, n)| *n > 0);
    }
    build_summary(raw)
}

fn build_summary(raw: Raw) -> Summary {
    let infos = key_infos();
    let mut stages = Vec::new();
    let mut exchange = Vec::new();
    let mut tick_kinds = Vec::new();
    for (k, h) in raw.hists.into_iter().enumerate() {
        let Some(h) = h else { continue };
        let cancelled = raw.cancelled[k];
        if k as u32 == CALIBRATION || (h.count() == 0 && cancelled == 0) {
            continue;
        }
        let info = infos[k];
        let stats = |name| StageStats { errors: raw.errors[k], ..StageStats::with_cancelled(name, h, cancelled) };
        match info.kind {
            KeyKind::Stage => stages.push(stats(info.name.to_owned())),
            KeyKind::Exchange => exchange.push(ExchangeStats {
                verb: info.verb.to_owned(),
                api: info.name.to_owned(),
                labels: owned_labels(info.labels),
                stats: stats(info.span_name()),
            }),
            KeyKind::Tick => {
                let stats = stats("tick_total".to_owned());
                tick_kinds.push(TickKindStats {
                    name: info.name.to_owned(),
                    deadline_ms: tick_kinds::deadline_ms(k as u32),
                    deadline_misses: raw.misses[k],
                    deadline_miss_pct: pct(raw.misses[k], stats.count),
                    stats,
                });
            }
        }
    }
    stages.sort_by(|a, b| a.name.cmp(&b.name));
    exchange.sort_by(|a, b| (&a.verb, &a.api, &a.labels).cmp(&(&b.verb, &b.api, &b.labels)));
    tick_kinds.sort_by(|a, b| a.name.cmp(&b.name));
    let ticks = stages.iter().find(|s| s.name == "tick_total").map_or(0, |s| s.count)
        + tick_kinds.iter().map(|t| t.stats.count).sum::<u64>();
    // Every recorded span is one histogram entry: derive the count instead of keeping a counter.
    let spans_recorded = stages.iter().filter(|s| s.name != "tick_total").map(|s| s.count).sum::<u64>()
        + exchange.iter().map(|e| e.stats.count).sum::<u64>();
    let span_cost_ns = worker::span_cost_ns();
    let tick_ns = raw.counts[Counter::TickNs];
    let overhead_ratio = if tick_ns == 0 {
        0.0
    } else {
        ((spans_recorded as f64 * span_cost_ns + ticks as f64 * 2.0 * span_cost_ns) / tick_ns as f64).min(1.0)
    };
    let deadline_misses = raw.counts[Counter::DeadlineMisses];
    Summary {
        ticks,
        deadline_misses,
        deadline_miss_pct: pct(deadline_misses, ticks),
        partial_fails: raw.counts[Counter::PartialFails],
        ticks_cancelled: raw.counts[Counter::TicksCancelled],
        deadline_ms: setup::config().deadline_ms,
        sample_rate: setup::sample_rate(),
        stages,
        exchange,
        tick_kinds,
        guard_trips: raw.guard_trips,
        parallel_symbols: PARALLEL_SYMBOLS.load(Relaxed),
        health: Health {
            overhead_ratio,
            span_cost_ns,
            spans_recorded,
            clock: crate::clock::source_name(),
            ..Health::from_counts(&raw.counts)
        },
    }
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 }
}

/// Starts a new measurement window: everything reads as zero afterwards, tick ids restart at 1.
pub(crate) fn reset() {
    worker::flush();
    let raw = read_raw();
    for t in threads() {
        for k in 0..raw.hists.len() {
            if let Some(c) = t.cell_if_any(k) {
                c.hist.clear_max();
            }
        }
    }
    *BASELINE.lock().unwrap_or_else(|e| e.into_inner()) = Some(raw);
    NEXT_TICK.store(1, Relaxed);
    PARALLEL_SYMBOLS.store(0, Relaxed);
    labels::reset();
    worker::reset();
}

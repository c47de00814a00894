//! Exemplars: for every duration series (metric key) and Prometheus bucket, the most recent kept
//! tick whose span landed in that bucket (trace id, tick id, the span's duration, the tick's end).
//!
//! The trace worker alone writes them ([`record`], one pass over each kept trace it takes into
//! its ring); whoever renders the OpenMetrics exposition reads them ([`snapshot`]). Each slot is a
//! single-writer sequence lock: the writer never waits, a reader retries a slot a few times and
//! skips it if it keeps changing, so neither side ever blocks the other, and the tick's thread
//! never touches any of it. Memory is bounded: a block of `MAX_PROMETHEUS_BUCKETS + 1` slots per
//! metric key that ever had a kept span, allocated by the worker once (at most `MAX_KEYS` blocks).
//!
//! A span lands in the bucket its histogram counts it in (`histogram::prometheus_edge_ns`: the
//! first bound whose edge lies above the duration), so an exemplar's value is at most its `le`.
//! Only spans counted in a histogram give exemplars: every span of a sampled tick, and of a slow
//! (unsampled) tick its tick_total and exchange requests (its stages are in the trace only).

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::keys::{CALIBRATION, KeyKind, MAX_KEYS, key_infos};
use super::trace_ids::TraceId;
use super::trace_record::{RawTrace, SpanRec};
use crate::config::MAX_PROMETHEUS_BUCKETS;
use crate::export::exposition::{Exemplar, Exemplars, Family};
use crate::histogram::{prometheus_bounds_ms, prometheus_edge_ns};
use crate::summary::KeepReason;

/// Slots per key: one per bound, and `+Inf`.
const SLOTS: usize = MAX_PROMETHEUS_BUCKETS + 1;
/// Times a reader re-reads a slot the writer is changing before it skips it.
const READ_TRIES: usize = 4;

/// One exemplar slot. `seq` is odd while the writer changes it.
#[derive(Default)]
struct Slot {
    seq: AtomicU64,
    /// The bucket generation it was written in (`Buckets::generation`); 0: never written.
    generation: AtomicU64,
    tick_id: AtomicU64,
    value_ns: AtomicU64,
    unix_ns: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
}

impl Slot {
    /// Writes the slot (the worker thread only: one writer), unless it holds a tick of this
    /// generation that ended later: traces of several threads reach the worker out of order,
    /// and an exemplar older than the one a scraper already took would be refused as out of
    /// order (Prometheus keeps them in time order per series).
    fn write(&self, generation: u64, tick_id: u64, value_ns: u64, unix_ns: u64, trace: TraceId) {
        // Relaxed: the writer's own earlier stores.
        if self.generation.load(Relaxed) == generation && self.unix_ns.load(Relaxed) > unix_ns {
            return;
        }
        let seq = self.seq.load(Relaxed);
        self.seq.store(seq.wrapping_add(1), Relaxed);
        // Release on every field: a reader whose Acquire load sees a new field value also sees
        // the odd `seq` stored before it, so its closing `seq` check fails and it retries.
        self.generation.store(generation, Release);
        self.tick_id.store(tick_id, Release);
        self.value_ns.store(value_ns, Release);
        self.unix_ns.store(unix_ns, Release);
        self.trace_hi.store(trace.0, Release);
        self.trace_lo.store(trace.1, Release);
        // Release: a reader that sees the even value sees every field written before it.
        self.seq.store(seq.wrapping_add(2), Release);
    }

    /// A consistent copy written in `generation`, or `None` (empty, older, or still changing).
    fn read(&self, generation: u64) -> Option<Exemplar> {
        for _ in 0..READ_TRIES {
            let before = self.seq.load(Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let g = self.generation.load(Acquire);
            let tick_id = self.tick_id.load(Acquire);
            let value_ns = self.value_ns.load(Acquire);
            let unix_ns = self.unix_ns.load(Acquire);
            let trace = TraceId(self.trace_hi.load(Acquire), self.trace_lo.load(Acquire));
            // Relaxed: ordered after the Acquire loads above (see `write`).
            if self.seq.load(Relaxed) == before {
                return (g == generation && g != 0).then(|| Exemplar {
                    trace_id: trace.hex(),
                    tick_id,
                    value_ns,
                    unix_ns,
                });
            }
        }
        None
    }
}

struct KeySlots([Slot; SLOTS]);

/// Per metric key, its slots once a kept span of it was seen. `OnceLock::get` is one atomic
/// load for readers; only the worker ever initialises a block.
static TABLE: [OnceLock<Box<KeySlots>>; MAX_KEYS] = [const { OnceLock::new() }; MAX_KEYS];

/// The bounds each generation was made for, for readers (set when the worker's `Buckets` are).
static PUBLISHED: Mutex<(u64, Vec<f64>)> = Mutex::new((0, Vec::new()));

/// The worker's view of the buckets: the edges of the bounds in force and the generation every
/// slot written with them carries. A new one (configuration, reset) retires every exemplar of
/// the previous ones at once, without the worker touching a slot.
pub(crate) struct Buckets {
    generation: u64,
    bounds_ms: Vec<f64>,
    edges_ns: Vec<u64>,
    /// Whether each key is an exchange request's (cached: keys only ever get added).
    exchange: Vec<bool>,
}

impl Buckets {
    /// Buckets for the bounds in force now, in a new generation (published for readers).
    pub(crate) fn current() -> Buckets {
        let bounds = prometheus_bounds_ms();
        let edges_ns = bounds.iter().map(|b| prometheus_edge_ns(*b)).collect();
        let mut published = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
        let generation = published.0 + 1;
        *published = (generation, bounds.clone());
        Buckets { generation, bounds_ms: bounds, edges_ns, exchange: Vec::new() }
    }

    /// Whether these are the buckets of the bounds in force now.
    pub(crate) fn same_bounds(&self) -> bool {
        self.bounds_ms == prometheus_bounds_ms()
    }

    /// The bucket a duration lands in: the first whose edge lies above it, else `+Inf`.
    fn index(&self, ns: u64) -> usize {
        self.edges_ns.partition_point(|edge| *edge <= ns)
    }

    fn is_exchange(&mut self, key: u32) -> bool {
        let k = key as usize;
        if k >= self.exchange.len() {
            self.exchange = key_infos().iter().map(|i| i.kind == KeyKind::Exchange).collect();
        }
        self.exchange.get(k).copied().unwrap_or(false)
    }
}

fn slots(key: u32) -> Option<&'static KeySlots> {
    let cell = TABLE.get(key as usize)?;
    Some(cell.get_or_init(|| Box::new(KeySlots(std::array::from_fn(|_| Slot::default())))))
}

/// Records the exemplars of a kept trace (the worker thread only, once its trace id, clock
/// factor and epoch start are set): its tick_total and every span its histograms counted.
pub(crate) fn record(buckets: &mut Buckets, trace: &RawTrace) {
    let total_ns = trace.ticks_to_ns(trace.end.saturating_sub(trace.start));
    let unix_ns = crate::clock::epoch_unix_ns().saturating_add(trace.start_epoch_ns).saturating_add(total_ns);
    let put = |buckets: &Buckets, key: u32, ns: u64| {
        if let Some(s) = slots(key) {
            s.0[buckets.index(ns)].write(buckets.generation, trace.tick_id, ns, unix_ns, trace.trace_id);
        }
    };
    put(buckets, trace.site.total_key(), total_ns);
    let stages_counted = trace.reason == KeepReason::Sampled;
    let span = |buckets: &mut Buckets, s: &SpanRec| {
        let key = s.key();
        if s.cancelled() || key == CALIBRATION || !(stages_counted || buckets.is_exchange(key)) {
            return;
        }
        put(buckets, key, trace.ticks_to_ns(s.end.saturating_sub(s.start)));
    };
    if trace.local.len() + trace.remote.len() <= trace.cap {
        for s in trace.local.iter().chain(&trace.remote) {
            span(buckets, s);
        }
    } else {
        // Past the cap the trace keeps the first spans by start (`trace_convert`): name only
        // spans it holds. Rare (carried work past the cap), so the sort may allocate.
        let mut kept: Vec<&SpanRec> = trace.local.iter().chain(&trace.remote).collect();
        kept.sort_by_key(|s| (s.start, s.id));
        for s in kept.into_iter().take(trace.cap) {
            span(buckets, s);
        }
    }
}

/// The exemplars of every series, for an exposition whose bucket bounds are `bounds_ms` (none
/// if the exemplars were gathered for other bounds).
pub(crate) fn snapshot(bounds_ms: &[f64]) -> Exemplars {
    let mut out = Exemplars::default();
    let generation = {
        let published = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
        if published.1 != bounds_ms {
            return out;
        }
        published.0
    };
    for (k, info) in key_infos().iter().enumerate() {
        let Some(block) = TABLE.get(k).and_then(OnceLock::get) else { continue };
        let buckets: Vec<Option<Exemplar>> = block.0[..=bounds_ms.len()].iter().map(|s| s.read(generation)).collect();
        if buckets.iter().all(Option::is_none) {
            continue;
        }
        let labels: Vec<(&str, &str)>;
        let family = match info.kind {
            KeyKind::Stage => {
                labels = vec![("stage", info.name)];
                Family::Stage
            }
            KeyKind::Tick => {
                labels = vec![("stage", "tick_total"), ("tick", info.name)];
                Family::Stage
            }
            KeyKind::Exchange => {
                labels =
                    [("verb", info.verb), ("api", info.name)].into_iter().chain(info.labels.iter().copied()).collect();
                Family::Exchange
            }
        };
        out.insert(family, &labels, buckets);
    }
    out
}

/// For `benches/hot_path.rs`: records `traces` kept traces of tick `tick` with one span per site
/// of `sites` (durations 1 µs to 10 ms apart, spread over the buckets) the way the worker does
/// for each kept trace, and returns how long that took. Retires the exemplars recorded so far.
#[doc(hidden)]
pub fn bench_record(tick: &'static super::site::Site, sites: &[&'static super::site::Site], traces: u64) -> Duration {
    use super::trace_record::Outcome;
    let mut buckets = Buckets::current();
    let mut raw = RawTrace::empty();
    raw.site = tick;
    raw.mult = 1 << 32; // readings are ns
    raw.cap = 4096;
    raw.trace_id = TraceId(0x4bf9_2f35_77b3_4da6, 0xa3ce_929d_0e0e_4736);
    let mut at = 0;
    raw.local = sites
        .iter()
        .enumerate()
        .map(|(i, site)| {
            let ns = 1_000 * 10u64.pow(i as u32 % 5);
            at += ns;
            SpanRec::new(site.key(), Outcome::Done, i as u32 + 1, 0, 0, at - ns, at)
        })
        .collect();
    raw.end = at;
    let t0 = Instant::now();
    for i in 0..traces {
        raw.tick_id = i;
        record(&mut buckets, std::hint::black_box(&raw));
    }
    t0.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_reads_whole_or_not_at_all_while_written() {
        let slot = Slot::default();
        assert_eq!(slot.read(1), None, "never written");
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..200_000u64 {
                    // Every field derived from `i`: a torn read would mix two writes.
                    slot.write(1, i, i * 3, i * 5, TraceId(i * 7, i * 11));
                }
                stop.store(true, Relaxed);
            });
            let mut seen = 0;
            while !stop.load(Relaxed) {
                if let Some(x) = slot.read(1) {
                    let i = x.tick_id;
                    assert_eq!((x.value_ns, x.unix_ns), (i * 3, i * 5));
                    assert_eq!(x.trace_id, TraceId(i * 7, i * 11).hex());
                    seen += 1;
                }
            }
            assert!(seen > 0);
        });
        assert_eq!(slot.read(2), None, "another generation");
        // A tick that ended earlier does not replace a later one of the same generation.
        slot.write(1, 5, 1, 10, TraceId(1, 1));
        assert_eq!(slot.read(1).map(|x| x.tick_id), Some(199_999));
        slot.write(2, 5, 1, 10, TraceId(1, 1));
        assert_eq!(slot.read(2).map(|x| x.tick_id), Some(5), "a new generation starts over");
    }

    #[test]
    fn durations_land_in_the_bucket_their_histogram_counts_them_in() {
        let bounds = [0.1, 1.0, 200.0];
        let b = Buckets {
            generation: 1,
            bounds_ms: bounds.to_vec(),
            edges_ns: bounds.iter().map(|b| prometheus_edge_ns(*b)).collect(),
            exchange: Vec::new(),
        };
        let mut h = crate::histogram::HistogramSnapshot::new();
        for ns in [0, 99_999, 100_000, 100_001, 999_999, 1_000_000, 199_000_000, 199_229_439, 199_229_440, 300_000_000]
        {
            let i = b.index(ns);
            let before = h.prometheus_cumulative_at(&bounds);
            h.record_ns(ns);
            let after = h.prometheus_cumulative_at(&bounds);
            // The sample is counted from bucket `i` on, not below it.
            let first = after.iter().zip(&before).position(|(a, b)| a > b).unwrap();
            assert_eq!(i, first, "{ns} ns");
            if i < bounds.len() {
                assert!(ns as f64 <= bounds[i] * 1e6, "{ns} ns within le={}", bounds[i]);
            }
        }
    }
}

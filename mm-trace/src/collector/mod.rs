//! The collector: global switches, metric keys, per-thread data and the merged view.
//!
//! Recording is per thread: each thread owns a [`ThreadData`] (histograms and counters) that only
//! it writes, with plain relaxed loads and stores, so a span costs no locked instruction and no
//! shared cache line. Readers (`summary`, exporters) sum every thread's data. Thread data is
//! never freed: when a thread exits its slot is marked free and the next new thread takes it
//! over, keeping the counts (they are additive), so nothing recorded is lost and memory is
//! bounded by the peak number of live threads.

mod chunks;
pub(crate) mod labels;
mod reasons;
mod registry;
pub(crate) mod tick;
mod trace_ring;
#[cfg(test)]
mod trace_ring_tests;
pub(crate) mod worker;

use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

use self::registry::{Node, Registry};
use crate::config::TraceConfig;
use crate::histogram::{AtomicHistogram, HistogramSnapshot};
use crate::summary::{ExchangeStats, Health, StageStats, Summary};

/// Most distinct metric keys (stage names plus exchange `(verb, api)` pairs) in one process.
pub(crate) const MAX_KEYS: usize = 1024;
const _: () = assert!(MAX_KEYS.is_power_of_two());
/// Key of `tick_total`.
pub(crate) const TICK_TOTAL: u32 = 1;
/// Key that every key past `MAX_KEYS` or the cardinality cap folds into.
pub(crate) const OTHER_STAGE: u32 = 2;
/// Key used by the overhead calibration; never exported.
pub(crate) const CALIBRATION: u32 = 3;
const FIRST_FREE_KEY: u32 = 4;

pub(crate) static ENABLED: AtomicBool = AtomicBool::new(true);
pub(crate) static SAMPLE_THRESHOLD: AtomicU64 = AtomicU64::new(0);
pub(crate) static SAMPLE_RATE_BITS: AtomicU64 = AtomicU64::new(0);
pub(crate) static DEADLINE_NS: AtomicU64 = AtomicU64::new(200_000_000);
pub(crate) static CAPTURE_SLOW: AtomicBool = AtomicBool::new(true);
/// Ticks slower than this are "slow" even under the deadline (`u64::MAX`: deadline only).
pub(crate) static SLOW_QUANTILE_NS: AtomicU64 = AtomicU64::new(u64::MAX);
pub(crate) static SPAN_CAP: AtomicU32 = AtomicU32::new(4096);
/// Written by every tick of every thread: alone on its cache lines, so the switches above that
/// every span reads (ENABLED, ...) never share a line with it.
pub(crate) static NEXT_TICK: Padded<AtomicU64> = Padded(AtomicU64::new(1));
pub(crate) static PARALLEL_SYMBOLS: AtomicU64 = AtomicU64::new(0);
pub(crate) static EXPORT_ERRORS: AtomicU64 = AtomicU64::new(0);

static CONFIG: Mutex<Option<TraceConfig>> = Mutex::new(None);

/// A value alone on its (pair of, for the adjacent-line prefetcher) cache lines.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Installs a configuration: switches take effect at once on every thread.
pub(crate) fn apply_config(cfg: &TraceConfig) {
    crate::clock::ensure_calibrated();
    ENABLED.store(cfg.enabled, Relaxed);
    set_sample_rate(cfg.sample_rate);
    DEADLINE_NS.store((cfg.deadline_ms * 1e6) as u64, Relaxed);
    CAPTURE_SLOW.store(cfg.capture_slow_ticks, Relaxed);
    SPAN_CAP.store(u32::try_from(cfg.max_spans_per_tick).unwrap_or(u32::MAX), Relaxed);
    labels::set_cap(cfg.label_cardinality_cap);
    if cfg.slow_tick_quantile.is_none() {
        SLOW_QUANTILE_NS.store(u64::MAX, Relaxed);
    }
    *CONFIG.lock().unwrap_or_else(|e| e.into_inner()) = Some(cfg.clone());
    worker::configure(cfg);
}

/// The configuration in force (the default until `init`).
pub(crate) fn config() -> TraceConfig {
    CONFIG.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
}

pub(crate) fn set_sample_rate(rate: f64) {
    SAMPLE_RATE_BITS.store(rate.to_bits(), Relaxed);
    SAMPLE_THRESHOLD.store(crate::sampling::threshold(rate), Relaxed);
    if let Some(c) = CONFIG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        c.sample_rate = rate;
    }
}

pub(crate) fn sample_rate() -> f64 {
    f64::from_bits(SAMPLE_RATE_BITS.load(Relaxed))
}

// ---------------------------------------------------------------------------------------------
// Metric keys

/// What a key measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum KeyKind {
    Stage,
    Exchange,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyInfo {
    pub(crate) kind: KeyKind,
    /// Stage name, or the api of an exchange key.
    pub(crate) name: &'static str,
    /// Exchange verb ("" for stages).
    pub(crate) verb: &'static str,
}

struct KeyTable {
    keys: Vec<KeyInfo>,
    stage_count: usize,
    exchange_count: usize,
}

/// Registration happens once per call site, on a cold path; the lock is never taken per span.
static KEYS: Mutex<Option<KeyTable>> = Mutex::new(None);

fn with_keys<R>(f: impl FnOnce(&mut KeyTable) -> R) -> R {
    let mut guard = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let table = guard.get_or_insert_with(|| {
        let stage = |name| KeyInfo { kind: KeyKind::Stage, name, verb: "" };
        KeyTable {
            keys: vec![stage(""), stage("tick_total"), stage("other"), stage("__mm_calibration")],
            stage_count: 0,
            exchange_count: 0,
        }
    });
    f(table)
}

/// The key of `(kind, verb, name)`, registering it on first use.
#[cold]
pub(crate) fn register_key(kind: KeyKind, verb: &'static str, name: &'static str) -> u32 {
    if kind == KeyKind::Stage && name == "tick_total" {
        return TICK_TOTAL;
    }
    with_keys(|t| {
        if let Some(i) = t.keys.iter().position(|k| k.kind == kind && k.name == name && k.verb == verb) {
            return i as u32;
        }
        let cap = labels::cap();
        let count = match kind {
            KeyKind::Stage => &mut t.stage_count,
            KeyKind::Exchange => &mut t.exchange_count,
        };
        if *count >= cap || t.keys.len() >= MAX_KEYS {
            labels::count_overflow();
            return match kind {
                KeyKind::Stage => OTHER_STAGE,
                KeyKind::Exchange => {
                    // One shared overflow key for exchange requests.
                    if let Some(i) = t.keys.iter().position(|k| k.kind == KeyKind::Exchange && k.name == "other") {
                        i as u32
                    } else if t.keys.len() < MAX_KEYS {
                        t.keys.push(KeyInfo { kind, name: "other", verb: "other" });
                        (t.keys.len() - 1) as u32
                    } else {
                        OTHER_STAGE
                    }
                }
            };
        }
        *count += 1;
        t.keys.push(KeyInfo { kind, name, verb });
        (t.keys.len() - 1) as u32
    })
}

fn key_infos() -> Vec<KeyInfo> {
    with_keys(|t| t.keys.clone())
}

const _: () = assert!(FIRST_FREE_KEY as usize <= MAX_KEYS);

// ---------------------------------------------------------------------------------------------
// Per-thread data

/// One key's histogram in one thread.
pub(crate) struct Cell {
    pub(crate) hist: AtomicHistogram,
    pub(crate) cancelled: AtomicU64,
}

/// Counters a thread owns (single writer: relaxed load + store).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) deadline_misses: AtomicU64,
    pub(crate) partial_fails: AtomicU64,
    pub(crate) ticks_cancelled: AtomicU64,
    pub(crate) spans_dropped: AtomicU64,
    pub(crate) tick_ns: AtomicU64,
    pub(crate) slow_kept: AtomicU64,
    /// Kept traces handed to the worker (`worker::flush` waits for their sum).
    pub(crate) traces_submitted: AtomicU64,
}

#[inline(always)]
pub(crate) fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

/// One thread's data: a node of the thread registry, which derefs to [`PerThread`]. The node's
/// `ordinal` is the thread's id in traces: fresh on every claim, so a reused slot never gives a
/// second thread the id (and name) of one whose spans are still in a trace.
pub(crate) type ThreadData = Node<PerThread>;

/// What a thread records into: only its holder writes it; it outlives the thread (the registry
/// hands it, counts and all, to the next thread that claims the node).
pub(crate) struct PerThread {
    /// One slot per key (a fixed length, so indexing with a masked key needs no bounds check).
    cells: Box<[AtomicPtr<Cell>; MAX_KEYS]>,
    pub(crate) counters: Counters,
    pub(crate) name: Mutex<String>,
    /// Kept traces on their way to the worker: the holder of this slot produces, the worker
    /// consumes.
    pub(crate) traces: trace_ring::TraceRing<worker::RawTrace, { worker::TRACE_RING }>,
}

/// Every thread's data, live or exited.
static THREADS: Registry<PerThread> = Registry::new();

impl PerThread {
    fn new() -> Self {
        PerThread {
            cells: Box::new(std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut()))),
            counters: Counters::default(),
            name: Mutex::new(String::new()),
            traces: trace_ring::TraceRing::new(),
        }
    }

    /// This thread's cell for `key`, allocated on first use (once per thread and key).
    #[inline(always)]
    pub(crate) fn cell(&self, key: u32) -> &Cell {
        // Keys are below `MAX_KEYS` (a power of two) by construction: the mask only tells the
        // compiler so.
        let slot = &self.cells[key as usize & (MAX_KEYS - 1)];
        let p = slot.load(Acquire);
        if p.is_null() {
            return self.new_cell(slot);
        }
        // SAFETY: cells are allocated once, published with Release, and never freed.
        unsafe { &*p }
    }

    #[cold]
    #[inline(never)]
    fn new_cell(&self, slot: &AtomicPtr<Cell>) -> &Cell {
        let cell = Box::into_raw(Box::new(Cell { hist: AtomicHistogram::new(), cancelled: AtomicU64::new(0) }));
        // Release: readers that see the pointer see the zeroed histogram.
        slot.store(cell, Release);
        // SAFETY: just allocated and never freed.
        unsafe { &*cell }
    }

    fn cell_if_any(&self, key: usize) -> Option<&Cell> {
        let p = self.cells[key].load(Acquire);
        // SAFETY: as in `cell`.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

/// Iterates every thread's data, live or exited.
pub(crate) fn threads() -> impl Iterator<Item = &'static ThreadData> {
    THREADS.iter()
}

/// Takes a free slot (left by an exited thread) or allocates a new one.
#[cold]
pub(crate) fn claim_thread_data() -> &'static ThreadData {
    crate::clock::ensure_calibrated();
    let name = std::thread::current().name().unwrap_or("").to_owned();
    let t = THREADS.claim(PerThread::new);
    *t.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    t
}

/// Called from the thread-exit hook: the slot becomes reusable, its counts stay.
pub(crate) fn release_thread_data(t: &ThreadData) {
    let name = t.name.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut exited = EXITED_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if exited.len() == EXITED_NAMES_KEPT {
        exited.pop_front();
    }
    exited.push_back((t.ordinal.load(Relaxed), name));
    drop(exited);
    THREADS.release(t);
}

/// Names of the most recently exited threads, so traces read after a thread exited still name
/// it (bounded: a process spawning a thread per tick does not grow it). Cold path only.
static EXITED_NAMES: Mutex<std::collections::VecDeque<(u32, String)>> = Mutex::new(std::collections::VecDeque::new());
const EXITED_NAMES_KEPT: usize = 4096;

/// The name of the thread with `ordinal`, for traces.
pub(crate) fn thread_name(ordinal: u32) -> String {
    let live = threads()
        .find(|t| t.ordinal.load(Relaxed) == ordinal)
        .map(|t| t.name.lock().unwrap_or_else(|e| e.into_inner()).clone());
    let name = live.or_else(|| {
        let exited = EXITED_NAMES.lock().unwrap_or_else(|e| e.into_inner());
        exited.iter().rev().find(|(o, _)| *o == ordinal).map(|(_, n)| n.clone())
    });
    name.filter(|n| !n.is_empty()).unwrap_or_else(|| format!("thread-{ordinal}"))
}

// ---------------------------------------------------------------------------------------------
// The merged view

/// Raw totals, before the reset baseline is subtracted.
#[derive(Clone, Default)]
struct Raw {
    hists: Vec<Option<HistogramSnapshot>>,
    cancelled: Vec<u64>,
    deadline_misses: u64,
    partial_fails: u64,
    ticks_cancelled: u64,
    spans_dropped: u64,
    tick_ns: u64,
    slow_kept: u64,
    guard_trips: Vec<(String, u64)>,
    late_spans: u64,
    traces_dropped: u64,
    slow_rate_limited: u64,
    export_errors: u64,
    label_overflow: u64,
}

fn read_raw() -> Raw {
    let nkeys = with_keys(|t| t.keys.len());
    let mut raw = Raw { hists: vec![None; nkeys], cancelled: vec![0; nkeys], ..Raw::default() };
    for t in threads() {
        for k in 0..nkeys {
            if let Some(cell) = t.cell_if_any(k) {
                cell.hist.read_into(raw.hists[k].get_or_insert_with(HistogramSnapshot::new));
                raw.cancelled[k] += cell.cancelled.load(Relaxed);
            }
        }
        let c = &t.counters;
        raw.deadline_misses += c.deadline_misses.load(Relaxed);
        raw.partial_fails += c.partial_fails.load(Relaxed);
        raw.ticks_cancelled += c.ticks_cancelled.load(Relaxed);
        raw.spans_dropped += c.spans_dropped.load(Relaxed);
        raw.tick_ns += c.tick_ns.load(Relaxed);
        raw.slow_kept += c.slow_kept.load(Relaxed);
    }
    raw.guard_trips = labels::guard_trips();
    raw.late_spans = tick::LATE_SPANS.load(Relaxed);
    raw.traces_dropped = worker::TRACES_DROPPED.load(Relaxed);
    raw.slow_rate_limited = worker::SLOW_RATE_LIMITED.load(Relaxed);
    raw.export_errors = EXPORT_ERRORS.load(Relaxed);
    raw.label_overflow = labels::overflow();
    raw
}

static BASELINE: Mutex<Option<Raw>> = Mutex::new(None);

/// Everything since start or the last reset, merged over all threads.
pub(crate) fn summary() -> Summary {
    let mut raw = read_raw();
    if let Some(base) = BASELINE.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        for (k, h) in raw.hists.iter_mut().enumerate() {
            if let (Some(h), Some(Some(b))) = (h.as_mut(), base.hists.get(k)) {
                h.subtract(b);
            }
        }
        for (k, c) in raw.cancelled.iter_mut().enumerate() {
            *c = c.saturating_sub(base.cancelled.get(k).copied().unwrap_or(0));
        }
        let sub = |a: &mut u64, b: u64| *a = a.saturating_sub(b);
        sub(&mut raw.deadline_misses, base.deadline_misses);
        sub(&mut raw.partial_fails, base.partial_fails);
        sub(&mut raw.ticks_cancelled, base.ticks_cancelled);
        sub(&mut raw.spans_dropped, base.spans_dropped);
        sub(&mut raw.tick_ns, base.tick_ns);
        sub(&mut raw.slow_kept, base.slow_kept);
        sub(&mut raw.late_spans, base.late_spans);
        sub(&mut raw.traces_dropped, base.traces_dropped);
        sub(&mut raw.slow_rate_limited, base.slow_rate_limited);
        sub(&mut raw.export_errors, base.export_errors);
        sub(&mut raw.label_overflow, base.label_overflow);
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
    let cfg = config();
    let mut stages = Vec::new();
    let mut exchange = Vec::new();
    for (k, h) in raw.hists.into_iter().enumerate() {
        let Some(h) = h else { continue };
        let cancelled = raw.cancelled[k];
        if k as u32 == CALIBRATION || (h.count() == 0 && cancelled == 0) {
            continue;
        }
        let info = infos[k];
        match info.kind {
            KeyKind::Stage => stages.push(StageStats::from_histogram(info.name.to_owned(), h, cancelled)),
            KeyKind::Exchange => exchange.push(ExchangeStats {
                verb: info.verb.to_owned(),
                api: info.name.to_owned(),
                stats: StageStats::from_histogram(format!("{} {}", info.verb, info.name), h, cancelled),
            }),
        }
    }
    stages.sort_by(|a, b| a.name.cmp(&b.name));
    exchange.sort_by(|a, b| (&a.verb, &a.api).cmp(&(&b.verb, &b.api)));
    let ticks = stages.iter().find(|s| s.name == "tick_total").map_or(0, |s| s.count);
    // Every recorded span is one histogram entry: derive the count instead of keeping a counter.
    let spans_recorded = stages.iter().filter(|s| s.name != "tick_total").map(|s| s.count).sum::<u64>()
        + exchange.iter().map(|e| e.stats.count).sum::<u64>();
    let span_cost_ns = worker::span_cost_ns();
    let overhead_ratio = if raw.tick_ns == 0 {
        0.0
    } else {
        ((spans_recorded as f64 * span_cost_ns + ticks as f64 * 2.0 * span_cost_ns) / raw.tick_ns as f64).min(1.0)
    };
    Summary {
        ticks,
        deadline_misses: raw.deadline_misses,
        deadline_miss_pct: pct(raw.deadline_misses, ticks),
        partial_fails: raw.partial_fails,
        ticks_cancelled: raw.ticks_cancelled,
        deadline_ms: cfg.deadline_ms,
        sample_rate: sample_rate(),
        stages,
        exchange,
        guard_trips: raw.guard_trips,
        parallel_symbols: PARALLEL_SYMBOLS.load(Relaxed),
        health: Health {
            spans_dropped: raw.spans_dropped,
            late_spans: raw.late_spans,
            traces_dropped: raw.traces_dropped,
            slow_ticks_kept: raw.slow_kept,
            slow_ticks_rate_limited: raw.slow_rate_limited,
            export_errors: raw.export_errors,
            label_overflow: raw.label_overflow,
            overhead_ratio,
            span_cost_ns,
            spans_recorded,
            clock: crate::clock::source_name(),
        },
    }
}

pub(crate) fn pct(n: u64, of: u64) -> f64 {
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

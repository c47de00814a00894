//! The trace worker: a background thread that owns kept traces.
//!
//! Tick threads hand a kept trace over by writing it into their thread slot's ring
//! (`trace_ring`: single producer, single consumer, no compare-and-swap; a full ring counts the
//! trace as dropped and the tick never waits). The worker reads every thread's ring, copies the
//! new traces out, keeps the last `chrome_ring_ticks` in its ring of recent traces, enforces the
//! slow-tick rate limit (and counts what it keeps and what it stops), writes golden and slow-tick
//! files, and refreshes the slow-tick quantile threshold once a second. It polls (every
//! millisecond while traces arrive, backing off to 2 ms when idle), so tick threads never have
//! to wake it with a syscall.
//!
//! Trace files are named `golden_trace_<tick>-<run>.json` and `slow_trace_<tick>-<run>.json`;
//! each slow one has its picture beside it, `slow_trace_<tick>-<run>.svg` (not listed in
//! `files_written`, which names the JSON files).
//! Tick ids restart at 1 in every process, so `<run>`, this process's `run_id`, keeps two runs
//! (or two processes) that share a `golden_dir` from overwriting each other's files.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use super::calibration::measure_span_cost;
use super::counters::{self, Counter, ThreadCounters};
use super::exemplars::{self, Buckets};
use super::keys::TICK_TOTAL;
use super::switches::SLOW_QUANTILE_NS;
use super::thread_data::threads;
use super::trace_convert::to_trace;
use super::trace_ids::new_trace_id;
use super::trace_record::RawTrace;
use crate::clock;
use crate::config::TraceConfig;
#[cfg(feature = "http")]
use crate::export::trace_list::KeptTick;
use crate::histogram::HistogramSnapshot;
use crate::summary::{KeepReason, TickTrace};

/// Longest the worker sleeps between passes when no trace arrives. A thread that starts ticking
/// after a quiet spell has this long before the worker looks at its ring: 2 ms of 10 µs ticks at
/// rate 1.0 is 200 traces, under `TRACE_RING`, so a burst after idling loses none. (Each idle pass
/// reads one cache line per thread slot: 500 passes a second cost next to nothing.)
const MAX_IDLE: Duration = Duration::from_millis(2);
/// Traces the worker has handled (written by the worker only).
static PROCESSED: AtomicU64 = AtomicU64::new(0);
static SPAN_COST_BITS: AtomicU64 = AtomicU64::new(0);
static ERROR_REPORTED: AtomicBool = AtomicBool::new(false);
/// The worker thread was started / has finished its start-up span-cost measurement (which reads
/// the clock: `flush` waits for it, so that it never overlaps a test-clock install).
static STARTED: AtomicBool = AtomicBool::new(false);
static READY: AtomicBool = AtomicBool::new(false);

struct Settings {
    /// Golden files of sampled ticks; slow-tick files do not depend on it (a slow trace only
    /// exists when `capture_slow_ticks` is on).
    export_golden: bool,
    interval: u64,
    dir: PathBuf,
    ring: usize,
    slow_per_sec: u32,
    slow_quantile: Option<f64>,
}

impl From<&TraceConfig> for Settings {
    fn from(c: &TraceConfig) -> Self {
        Settings {
            export_golden: c.export_golden,
            interval: c.golden_trace_interval.max(1),
            dir: c.golden_dir.clone(),
            ring: c.chrome_ring_ticks.max(1),
            slow_per_sec: c.slow_ticks_per_sec.max(1),
            slow_quantile: c.slow_tick_quantile,
        }
    }
}

struct State {
    settings: Settings,
    ring: VecDeque<RawTrace>,
    sampled_seen: u64,
    /// Per kind of tick (the site's address), the slow-tick rate limit's window: a fast loop's
    /// slow ticks never use up another loop's budget. Bounded by the number of tick sites.
    slow_windows: Vec<(usize, Instant, u32)>,
    files_written: Vec<PathBuf>,
    /// The Prometheus buckets exemplars are recorded in (see `exemplars`).
    exemplars: Buckets,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        Mutex::new(State {
            settings: Settings::from(&TraceConfig::default()),
            ring: VecDeque::new(),
            sampled_seen: 0,
            slow_windows: Vec::new(),
            files_written: Vec::new(),
            exemplars: Buckets::current(),
        })
    })
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    state().lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the worker thread (once).
fn start() {
    static START: OnceLock<()> = OnceLock::new();
    START.get_or_init(|| {
        STARTED.store(true, Release);
        std::thread::Builder::new()
            .name("mm-trace-worker".into())
            .spawn(run)
            .expect("mm-trace: cannot start the trace worker thread");
    });
}

pub(crate) fn configure(cfg: &TraceConfig) {
    let mut st = lock();
    st.settings = Settings::from(cfg);
    while st.ring.len() > st.settings.ring {
        st.ring.pop_front();
    }
    if !st.exemplars.same_bounds() {
        st.exemplars = Buckets::current();
    }
    drop(st);
    #[cfg(feature = "otlp")]
    crate::export::otlp::configure(otlp_target(cfg), counters::add);
    start();
}

/// The OTLP export target (`init` has checked the environment, so an error here means it changed
/// since: export stays off, said once).
#[cfg(feature = "otlp")]
fn otlp_target(cfg: &TraceConfig) -> Option<crate::config::OtlpTarget> {
    cfg.otlp_target().unwrap_or_else(|e| {
        eprintln!("mm-trace: OTLP export off: {e}");
        None
    })
}

/// Counts a trace the calling thread put into its ring, in that thread's own `counts` (single
/// writer), which `flush` sums; starts the worker if it is not running yet.
#[inline]
pub(crate) fn submitted(counts: &ThreadCounters) {
    counts.bump(Counter::TracesSubmitted, 1);
    if !STARTED.load(Relaxed) {
        start();
    }
}

/// Waits (up to 10 s) until every trace submitted so far has been processed and written.
pub(crate) fn flush() {
    let target: u64 = threads().map(|t| t.counters.get(Counter::TracesSubmitted)).sum();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (PROCESSED.load(Acquire) < target || (STARTED.load(Acquire) && !READY.load(Acquire)))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_micros(200));
    }
}

pub(crate) fn reset() {
    let mut st = lock();
    st.ring.clear();
    st.sampled_seen = 0;
    st.slow_windows.clear();
    st.files_written.clear();
    st.exemplars = Buckets::current();
}

/// Estimated cost of one recorded span, ns (measured once by the worker at start).
pub(crate) fn span_cost_ns() -> f64 {
    f64::from_bits(SPAN_COST_BITS.load(Relaxed))
}

/// This process's run id, 8 lowercase hex digits, in the name of every trace file it writes.
/// Computed once (at worker start) from the process id, the wall clock and std's `RandomState`
/// (randomly keyed per process): runs sharing a directory differ in it.
fn run_id() -> &'static str {
    static RUN_ID: OnceLock<String> = OnceLock::new();
    RUN_ID.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        let x = h.finish();
        format!("{:08x}", (x ^ (x >> 32)) as u32)
    })
}

fn run() {
    run_id();
    SPAN_COST_BITS.store(measure_span_cost().to_bits(), Relaxed);
    READY.store(true, Release);
    let mut idle = Duration::from_millis(1);
    let mut window = QuantileWindow::default();
    loop {
        let mut got = false;
        for t in threads() {
            // SAFETY: this is the worker thread, the only consumer of every ring.
            let n = unsafe { t.traces.consume(handle) };
            if n > 0 {
                got = true;
                PROCESSED.fetch_add(n as u64, Release);
            }
        }
        window.maybe_refresh();
        idle = if got { Duration::from_millis(1) } else { (idle * 2).min(MAX_IDLE) };
        std::thread::sleep(idle);
    }
}

/// Handles a trace in its thread's ring slot (read only: the worker writes nothing the tick
/// thread reads per tick).
fn handle(trace: &RawTrace) {
    let mut st = lock();
    let mut write = None;
    match trace.reason {
        KeepReason::Sampled => {
            st.sampled_seen += 1;
            if st.settings.export_golden && (st.sampled_seen - 1).is_multiple_of(st.settings.interval) {
                write = Some(format!("golden_trace_{}-{}.json", trace.tick_id, run_id()));
            }
        }
        KeepReason::Slow => {
            let now = Instant::now();
            let kind = trace.site as *const _ as usize;
            let limit = st.settings.slow_per_sec;
            let window = match st.slow_windows.iter().position(|w| w.0 == kind) {
                Some(i) => &mut st.slow_windows[i],
                None => {
                    st.slow_windows.push((kind, now, 0));
                    st.slow_windows.last_mut().expect("just pushed")
                }
            };
            if now.duration_since(window.1) >= Duration::from_secs(1) {
                (window.1, window.2) = (now, 0);
            }
            if window.2 >= limit {
                counters::add(Counter::SlowTicksRateLimited, 1);
                return;
            }
            window.2 += 1;
            // Kept: counted here, past the rate limit, so kept + rate-limited = slow traces
            // handed over. Its file follows `capture_slow_ticks` (which made the trace), not
            // `export_golden`.
            counters::add(Counter::SlowTicksKept, 1);
            write = Some(format!("slow_trace_{}-{}.json", trace.tick_id, run_id()));
        }
    }
    // The ring keeps the worker's own copy; a full ring's oldest entry is reused for it, buffers
    // and all, so a steady stream of traces costs the worker no allocation either.
    let mut kept =
        if st.ring.len() >= st.settings.ring { st.ring.pop_front() } else { None }.unwrap_or_else(RawTrace::empty);
    kept.copy_from(trace);
    if kept.trace_id.is_none() {
        // The fresh trace id of the tick (the one `traceparent()` gave during it).
        kept.trace_id = new_trace_id(kept.tick_id);
    }
    // `ticks_to_ns(1 << 32)` is the factor itself (exact: the factor is below 2^64).
    kept.mult = clock::ticks_to_ns(1 << 32);
    kept.start_epoch_ns = clock::reading_to_epoch_ns(kept.start);
    exemplars::record(&mut st.exemplars, &kept);
    // A trace to write is converted after the lock is released (a copy: rare, and cheap next to
    // the JSON), so readers of the ring never wait for a conversion.
    let golden = write.map(|file| (st.settings.dir.join(file), kept.clone()));
    // Exactly the traces the ring keeps (past the slow-tick rate limit) go to the OTLP queue while
    // it has room; a full queue counts the drop before any conversion.
    #[cfg(feature = "otlp")]
    let otlp = crate::export::otlp::wants_tick().then(|| kept.clone());
    st.ring.push_back(kept);
    drop(st);
    #[cfg(feature = "otlp")]
    if let Some(raw) = otlp {
        crate::export::otlp::offer(to_trace(&raw));
    }
    if let Some((path, raw)) = golden {
        let trace = to_trace(&raw);
        let json = crate::export::json::render(&trace);
        // Temporary file in the same directory, then rename: readers never see half a file.
        match crate::fs::write_file(&path, &json) {
            Ok(()) => lock().files_written.push(path.clone()),
            Err(e) => export_error(&e),
        }
        // A slow tick's picture beside its JSON: as many as the slow files, no more.
        if trace.reason == KeepReason::Slow {
            let svg = crate::export::svg::render(&trace, trace.deadline_ns);
            if let Err(e) = crate::fs::write_file(&path.with_extension("svg"), &svg) {
                export_error(&e);
            }
        }
    }
}

/// Counts a trace file that could not be written; the first one is also reported on stderr.
fn export_error(e: &crate::error::Error) {
    counters::add(Counter::ExportErrors, 1);
    if !ERROR_REPORTED.swap(true, Relaxed) {
        eprintln!("mm-trace: cannot write trace {e} (further errors are only counted)");
    }
}

/// Trace files written since start or reset, in order.
pub(crate) fn files_written() -> Vec<PathBuf> {
    lock().files_written.clone()
}

/// The kept traces in the ring, oldest first.
pub(crate) fn recent_traces() -> Vec<TickTrace> {
    flush();
    let ring: Vec<RawTrace> = lock().ring.iter().cloned().collect();
    ring.iter().map(to_trace).collect()
}

/// The kept ticks in the ring now, oldest first, without waiting for the worker (for the
/// endpoint: a request never waits on a flush).
#[cfg(feature = "http")]
pub(crate) fn kept_ticks() -> Vec<KeptTick> {
    let st = lock();
    st.ring
        .iter()
        .map(|t| KeptTick {
            tick_id: t.tick_id,
            trace_id: t.trace_id.hex(),
            name: t.site.name(),
            reason: t.reason,
            duration_ns: t.ticks_to_ns(t.end.saturating_sub(t.start)),
            start_unix_ns: clock::epoch_unix_ns().saturating_add(t.start_epoch_ns),
            deadline_missed: t.missed,
        })
        .collect()
}

/// The most recent kept tick in the ring with trace id `trace_id` (and tick id `tick_id` if
/// given), converted; without waiting for the worker.
#[cfg(feature = "http")]
pub(crate) fn find_trace(trace_id: &str, tick_id: Option<u64>) -> Option<TickTrace> {
    let word = |hex: &str| u64::from_str_radix(hex, 16).ok();
    let valid = trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit());
    let trace_id =
        if valid { super::trace_ids::TraceId(word(&trace_id[..16])?, word(&trace_id[16..])?) } else { return None };
    let raw = {
        let st = lock();
        st.ring.iter().rev().find(|t| t.trace_id == trace_id && tick_id.is_none_or(|id| t.tick_id == id))?.clone()
    };
    Some(to_trace(&raw))
}

/// Recent tick_total distribution, for the optional quantile rule of slow-tick capture.
#[derive(Default)]
struct QuantileWindow {
    last: Option<(Instant, HistogramSnapshot)>,
}

impl QuantileWindow {
    fn maybe_refresh(&mut self) {
        let Some(q) = lock().settings.slow_quantile else { return };
        let now = Instant::now();
        if self.last.as_ref().is_some_and(|(at, _)| now.duration_since(*at) < Duration::from_secs(1)) {
            return;
        }
        let mut total = HistogramSnapshot::new();
        for t in threads() {
            if let Some(c) = t.cell_if_any(TICK_TOTAL as usize) {
                c.hist.read_into(&mut total);
            }
        }
        let mut window = total.clone();
        if let Some((_, prev)) = &self.last {
            window.subtract(prev);
        }
        if window.count() >= 100 {
            SLOW_QUANTILE_NS.store(window.quantile_ns(q) as u64, Relaxed);
        }
        self.last = Some((now, total));
    }
}

//! OTLP/HTTP export of kept ticks (feature `otlp`): the `mm-trace-otlp` thread.
//!
//! The trace worker hands each kept tick (after the slow-tick rate limit: exactly the ticks its
//! ring keeps), converted, to [`offer`], which queues it (bounded by `max_queue_ticks`; past it
//! the tick is dropped and counted: the worker never waits). The exporter thread takes batches
//! (up to [`BATCH_TICKS`] ticks or [`BATCH_SPANS`] spans, or whatever waited [`BATCH_DELAY`]),
//! encodes them (`encode.rs`) and `POST`s them to `<endpoint>/v1/traces` (`http.rs`), one
//! request at a time, each bounded by the timeout. Retries follow the OTLP specification:
//! 429, 502, 503, 504 and connection failures or timeouts are retried with exponential backoff
//! and jitter (a `Retry-After` is honoured), other answers are final. Ticks are counted once
//! each: exported, dropped or failed (through the counting fn the worker hands over, so this
//! module stays below the collector). [`shutdown`] exports what is queued within the timeout
//! and counts what is left as failed.
//!
//! The model is opentelemetry-rust's `BatchSpanProcessor` and its HTTP exporter, minus the
//! runtime: a thread, a mutex held for queue operations only, and condition variables.

mod encode;
mod http;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::config::OtlpTarget;
use crate::health::Counter;
use crate::summary::TickTrace;

use encode::body;

/// The body the exporter sends for `ticks` under a resource named `service_name` (a fresh
/// encoding of the resource each call: for benchmarks and tests).
pub(crate) fn body_for(ticks: &[TickTrace], service_name: &str) -> Vec<u8> {
    body(ticks, &encode::resource(&[("service.name".to_owned(), service_name.to_owned())]))
}

/// How the exporter counts: the collector's process-wide counter add.
pub(crate) type Count = fn(Counter, u64);

/// Most ticks in one request.
const BATCH_TICKS: usize = 512;
/// Most spans in one request (a request holds at least one tick, whatever its size).
const BATCH_SPANS: usize = 16_384;
/// Longest a queued tick waits for its batch to fill.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Attempts of one batch before it is given up (the first included).
const MAX_ATTEMPTS: u32 = 7;
/// First backoff; it doubles per attempt up to `MAX_BACKOFF` (each wait drawn from its upper half).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` obeyed (a longer one is cut to this).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Where ticks go, with the resource encoded once.
struct Target {
    cfg: OtlpTarget,
    resource: Resource,
    /// Queued ticks that make a batch due at once: `BATCH_TICKS`, or half the queue when it is
    /// smaller, so that the queue still has room while a batch is in flight.
    due: usize,
}

struct Queue {
    target: Option<Arc<Target>>,
    count: Option<Count>,
    ticks: VecDeque<TickTrace>,
    /// When the oldest queued tick arrived.
    since: Option<Instant>,
    /// Ticks the exporter has taken and not yet settled.
    in_flight: u64,
    /// Bumped when queued and in-flight ticks are given up (shutdown out of time, export
    /// switched off): the exporter then drops its batch without counting it again.
    generation: u64,
    /// Send what is queued without waiting for a batch to fill (`shutdown`).
    flush: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The exporter waits on it for ticks, a flush, or a give-up.
    wake: Condvar,
    /// `shutdown` waits on it for the queue to empty.
    settled: Condvar,
}

/// Export is configured (a lock-free check for the worker's common case: no export).
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        queue: Mutex::new(Queue {
            target: None,
            count: None,
            ticks: VecDeque::new(),
            since: None,
            in_flight: 0,
            generation: 0,
            flush: false,
        }),
        wake: Condvar::new(),
        settled: Condvar::new(),
    })
}

fn lock() -> MutexGuard<'static, Queue> {
    shared().queue.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queue {
    fn tally(&self, c: Counter, n: u64) {
        if let (Some(count), true) = (self.count, n > 0) {
            count(c, n);
        }
    }

    /// Gives up everything queued and in flight, counting it failed.
    fn give_up(&mut self) {
        let n = self.ticks.len() as u64 + self.in_flight;
        self.tally(Counter::OtlpFailed, n);
        self.ticks.clear();
        self.since = None;
        self.in_flight = 0;
        self.generation += 1;
    }
}

/// Installs the export target of `trace.otlp` (`None`: export off; what was queued is counted
/// failed) and starts the exporter thread the first time one is set. An unchanged target keeps
/// the queue and the connection.
pub(crate) fn configure(target: Option<OtlpTarget>, count: Count) {
    let mut q = lock();
    q.count = Some(count);
    match target {
        None => {
            if q.target.take().is_some() {
                q.give_up();
            }
            ACTIVE.store(false, Relaxed);
        }
        Some(cfg) => {
            if q.target.as_ref().is_none_or(|t| t.cfg != cfg) {
                let resource = encode::resource(&cfg.resource);
                let due = BATCH_TICKS.min(cfg.max_queue_ticks.div_ceil(2)).max(1);
                q.target = Some(Arc::new(Target { cfg, resource, due }));
            }
            ACTIVE.store(true, Relaxed);
            start();
        }
    }
    drop(q);
    shared().wake.notify_all();
}

fn start() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("mm-trace-otlp".into())
            .spawn(run)
            .expect("mm-trace: cannot start the OTLP exporter thread");
    });
}

/// Whether the worker should convert and [`offer`] the kept tick it is handling: export is on
/// and the queue has room. A full queue counts the tick dropped here, before any conversion.
pub(crate) fn wants_tick() -> bool {
    if !ACTIVE.load(Relaxed) {
        return false;
    }
    let q = lock();
    let Some(t) = &q.target else { return false };
    if q.ticks.len() < t.cfg.max_queue_ticks {
        return true;
    }
    q.tally(Counter::OtlpDropped, 1);
    false
}

/// Queues a kept tick for export (the worker thread, after [`wants_tick`]); never waits for
/// the exporter.
pub(crate) fn offer(tick: TickTrace) {
    let mut q = lock();
    let Some(t) = &q.target else { return };
    if q.ticks.len() >= t.cfg.max_queue_ticks {
        q.tally(Counter::OtlpDropped, 1);
        return;
    }
    // The first tick starts the batch's clock (the exporter waits untimed while the queue is
    // empty); a due batch is sent at once.
    let wake = q.ticks.is_empty() || q.ticks.len() + 1 >= t.due || q.flush;
    q.since.get_or_insert_with(Instant::now);
    q.ticks.push_back(tick);
    drop(q);
    if wake {
        shared().wake.notify_all();
    }
}

/// Exports what is queued, waiting at most the configured timeout; what is still queued or in
/// flight then is given up and counted failed. Returns at once when export is off.
pub(crate) fn shutdown() {
    let sh = shared();
    let mut q = lock();
    let Some(t) = q.target.clone() else { return };
    let deadline = Instant::now() + t.cfg.timeout;
    q.flush = true;
    sh.wake.notify_all();
    while !q.ticks.is_empty() || q.in_flight > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            q.give_up();
            sh.wake.notify_all();
            break;
        }
        q = sh.settled.wait_timeout(q, left).unwrap_or_else(|e| e.into_inner()).0;
    }
    q.flush = false;
}

/// The exporter thread: take a batch, send it (with retries), settle its count; repeat.
fn run() {
    let sh = shared();
    let mut client: Option<(Arc<Target>, http::Client)> = None;
    let mut rng = Jitter::new();
    loop {
        let (batch, target, generation) = {
            let mut q = lock();
            loop {
                if let (Some(t), Some(since)) = (q.target.clone(), q.since) {
                    let waited = since.elapsed();
                    if q.flush || q.ticks.len() >= t.due || waited >= BATCH_DELAY {
                        let batch = take_batch(&mut q.ticks);
                        q.since = if q.ticks.is_empty() { None } else { Some(since) };
                        q.in_flight = batch.len() as u64;
                        break (batch, t, q.generation);
                    }
                    q = sh.wake.wait_timeout(q, BATCH_DELAY - waited).unwrap_or_else(|e| e.into_inner()).0;
                } else {
                    q = sh.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            }
        };
        let client = match &mut client {
            Some((t, c)) if Arc::ptr_eq(t, &target) || t.cfg.url == target.cfg.url => {
                *t = target.clone();
                c
            }
            slot => &mut slot.insert((target.clone(), http::Client::new(target.cfg.url.clone()))).1,
        };
        let outcome = send(client, &target, &batch, generation, &mut rng);
        let mut q = lock();
        if q.generation == generation {
            q.in_flight = 0;
            match outcome {
                Some(c) => q.tally(c, batch.len() as u64),
                // Re-pointed meanwhile: the batch goes to the new target first.
                None => {
                    for t in batch.into_iter().rev() {
                        q.ticks.push_front(t);
                    }
                    q.since.get_or_insert_with(Instant::now);
                }
            }
        }
        drop(q);
        sh.settled.notify_all();
    }
}

/// Up to `BATCH_TICKS` ticks and `BATCH_SPANS` spans (at least one tick) from the front.
fn take_batch(ticks: &mut VecDeque<TickTrace>) -> Vec<TickTrace> {
    let mut spans = 0;
    let mut n = 0;
    for t in ticks.iter().take(BATCH_TICKS) {
        spans += t.spans.len() + 1;
        if n > 0 && spans > BATCH_SPANS {
            break;
        }
        n += 1;
    }
    ticks.drain(..n).collect()
}

/// What became of the batch of `generation` bound for `target` meanwhile.
enum Since {
    Unchanged,
    /// Given up (and counted): stop.
    GivenUp,
    /// Export was re-pointed: the batch goes back to the queue for the new target.
    Repointed,
}

fn since(generation: u64, target: &Target) -> Since {
    let q = lock();
    if q.generation != generation {
        Since::GivenUp
    } else if q.target.as_deref().is_none_or(|t| !std::ptr::eq(t, target)) {
        Since::Repointed
    } else {
        Since::Unchanged
    }
}

/// Waits `d`, or less if the batch is given up or export re-pointed meanwhile.
fn pause(d: Duration, generation: u64, target: &Target) {
    let deadline = Instant::now() + d;
    let mut q = lock();
    while q.generation == generation && q.target.as_deref().is_some_and(|t| std::ptr::eq(t, target)) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        q = shared().wake.wait_timeout(q, left).unwrap_or_else(|e| e.into_inner()).0;
    }
}

/// Sends one batch, retrying what the specification calls retryable. The counter it settles as;
/// `None`: export was re-pointed meanwhile, so the batch is to be queued again.
fn send(
    client: &mut http::Client,
    target: &Target,
    batch: &[TickTrace],
    generation: u64,
    rng: &mut Jitter,
) -> Option<Counter> {
    let body = body(batch, &target.resource);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        match since(generation, target) {
            Since::Unchanged => {}
            Since::GivenUp => return Some(Counter::OtlpFailed),
            Since::Repointed => return None,
        }
        let wait = match client.post(&target.cfg.headers, &body, target.cfg.timeout) {
            Ok(r) if (200..300).contains(&r.status) => return Some(Counter::OtlpExported),
            Ok(r) if matches!(r.status, 429 | 502 | 503 | 504) => {
                let wait = r.retry_after.map(|d| d.min(MAX_RETRY_AFTER));
                if attempt == MAX_ATTEMPTS {
                    report(client, &format!("HTTP {} after {MAX_ATTEMPTS} attempts{}", r.status, snippet(&r.body)));
                }
                wait
            }
            Ok(r) => {
                report(client, &format!("HTTP {} (not retried){}", r.status, snippet(&r.body)));
                return Some(Counter::OtlpFailed);
            }
            Err(e) => {
                if attempt == MAX_ATTEMPTS {
                    report(client, &format!("{e} after {MAX_ATTEMPTS} attempts"));
                }
                None
            }
        };
        if attempt < MAX_ATTEMPTS {
            let wait = wait.unwrap_or_else(|| rng.upper_half(backoff));
            pause(wait, generation, target);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    Some(Counter::OtlpFailed)
}

/// The start of a refusal's body, for the one-time message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = text.trim();
    if text.is_empty() || !text.chars().all(|c| !c.is_control() || c == '\n') {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The first failure is said on stderr; later ones are only counted (`Health`).
fn report(client: &http::Client, what: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Relaxed) {
        let u = client.url();
        eprintln!(
            "mm-trace: OTLP export to http://{}{} failed: {what} (further failures are only counted in \
             mm_trace_otlp_failed_ticks_total)",
            u.authority, u.path
        );
    }
}

/// A small xorshift generator for backoff jitter (so a fleet of bots does not retry in step).
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Jitter(seed | 1)
    }

    /// A duration drawn uniformly from `[d/2, d]`.
    fn upper_half(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let half = d / 2;
        half + half.mul_f64((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_ticks_and_spans_but_hold_at_least_one_tick() {
        let tick =
            |spans: usize| TickTrace { spans: vec![crate::summary::TraceSpan::default(); spans], ..Default::default() };
        let mut q: VecDeque<TickTrace> = (0..600).map(|_| tick(0)).collect();
        assert_eq!(take_batch(&mut q).len(), BATCH_TICKS);
        assert_eq!(take_batch(&mut q).len(), 600 - BATCH_TICKS);
        let mut q: VecDeque<TickTrace> = (0..10).map(|_| tick(5000)).collect();
        assert_eq!(take_batch(&mut q).len(), 3, "3 x 5001 spans fit in 16384");
        let mut q: VecDeque<TickTrace> = [tick(40_000)].into();
        assert_eq!(take_batch(&mut q).len(), 1);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let mut j = Jitter::new();
        for _ in 0..1000 {
            let d = j.upper_half(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100), "{d:?}");
        }
    }
}

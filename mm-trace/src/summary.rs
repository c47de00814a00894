//! What the collector reports: [`Summary`] and [`TickTrace`].

pub use crate::health::Health;
use crate::histogram::HistogramSnapshot;

/// Everything collected since start or the last [`crate::reset`], merged over all threads
/// (threads that have exited included).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Ticks completed.
    pub ticks: u64,
    /// Ticks whose `tick_total` exceeded the deadline.
    pub deadline_misses: u64,
    /// `deadline_misses` as a percentage of `ticks` (0 when there are no ticks).
    pub deadline_miss_pct: f64,
    /// Ticks that called [`crate::partial_fail`].
    pub partial_fails: u64,
    /// Ticks dropped before completion (an async tick future that was cancelled).
    pub ticks_cancelled: u64,
    /// The deadline in force, ms.
    pub deadline_ms: f64,
    /// The sample rate in force.
    pub sample_rate: f64,
    /// Per stage, sorted by name; `tick_total` (every tick) included.
    pub stages: Vec<StageStats>,
    /// Per exchange request `(verb, api)` (and run-time label values), sorted.
    pub exchange: Vec<ExchangeStats>,
    /// Per named kind of tick (`#[traced_tick(name = "...")]`), sorted by name. The unnamed kind
    /// is the `tick_total` stage; `ticks` and `deadline_misses` above count every kind.
    pub tick_kinds: Vec<TickKindStats>,
    /// Guard trips by reason, sorted by reason.
    pub guard_trips: Vec<(String, u64)>,
    /// Last value given to [`crate::set_parallel_symbols`].
    pub parallel_symbols: u64,
    /// The collector's own health and overhead.
    pub health: Health,
}

impl Summary {
    /// The stats of one stage, by name.
    pub fn stage(&self, name: &str) -> Option<&StageStats> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The stats of one exchange request kind (the first, if it has run-time labels: see
    /// [`Summary::exchange_labeled`]).
    pub fn exchange(&self, verb: &str, api: &str) -> Option<&ExchangeStats> {
        self.exchange.iter().find(|e| e.verb == verb && e.api == api)
    }

    /// The stats of one exchange request kind with the given run-time label values.
    pub fn exchange_labeled(&self, verb: &str, api: &str, labels: &[(&str, &str)]) -> Option<&ExchangeStats> {
        self.exchange.iter().find(|e| {
            e.verb == verb
                && e.api == api
                && e.labels.len() == labels.len()
                && e.labels.iter().zip(labels).all(|((a, b), (c, d))| a == c && b == d)
        })
    }

    /// The stats of one named kind of tick.
    pub fn tick_kind(&self, name: &str) -> Option<&TickKindStats> {
        self.tick_kinds.iter().find(|t| t.name == name)
    }

    /// Trips of one guard reason (0 if none).
    pub fn guard_trips(&self, reason: &str) -> u64 {
        self.guard_trips.iter().find(|(r, _)| r == reason).map_or(0, |(_, n)| *n)
    }

    /// A fixed-width table: stage, count, p50/p95/p99/max ms, then ticks and deadline misses.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<20} {:>9} {:>10} {:>10} {:>10} {:>10} {:>7}",
            "stage", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"
        );
        let kinds = self.tick_kinds.iter().map(|k| (format!("tick_total:{}", k.name), &k.stats));
        for (name, s) in self.stages.iter().map(|s| (s.name.clone(), s)).chain(kinds) {
            let _ = writeln!(
                out,
                "{:<20} {:>9} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>7}",
                name, s.count, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.errors
            );
        }
        let _ = writeln!(
            out,
            "ticks {}  deadline misses {} ({:.2}% over {} ms)  partial fails {}",
            self.ticks, self.deadline_misses, self.deadline_miss_pct, self.deadline_ms, self.partial_fails
        );
        for k in &self.tick_kinds {
            let _ = writeln!(
                out,
                "  tick {}: {} ticks, deadline misses {} ({:.2}% over {} ms)",
                k.name, k.stats.count, k.deadline_misses, k.deadline_miss_pct, k.deadline_ms
            );
        }
        out
    }
}

/// Latency statistics of one stage.
#[derive(Debug, Clone, Default)]
pub struct StageStats {
    /// Stage name (`tick_total` for whole ticks).
    pub name: String,
    /// Completed spans recorded into the histogram.
    pub count: u64,
    /// Sum of durations, ms.
    pub sum_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms (exact).
    pub max_ms: f64,
    /// Async stage futures dropped before completion (not in the histogram).
    pub cancelled: u64,
    /// Spans whose function returned `Err` (they are in the histogram and `count` too: an error
    /// is real latency). For `tick_total`, the ticks that returned `Err`.
    pub errors: u64,
    /// The full histogram.
    pub histogram: HistogramSnapshot,
}

impl StageStats {
    /// The statistics of `histogram` under `name` (quantiles by [`crate::histogram::quantile_ns`]),
    /// e.g. to build a [`Summary`] for an exporter's `…_from` form.
    ///
    /// ```
    /// let mut h = mm_trace::HistogramSnapshot::new();
    /// for ms in 1..=100 { h.record_ns(ms * 1_000_000); }
    /// let s = mm_trace::StageStats::from_histogram("fetch_md", h);
    /// assert_eq!((s.count, s.max_ms, s.sum_ms), (100, 100.0, 5050.0));
    /// assert_eq!(s.p95_ms, s.histogram.quantile_ms(0.95));
    /// ```
    pub fn from_histogram(name: impl Into<String>, histogram: HistogramSnapshot) -> Self {
        Self::with_cancelled(name.into(), histogram, 0)
    }

    /// [`StageStats::from_histogram`] with a count of cancelled async stages.
    pub(crate) fn with_cancelled(name: String, histogram: HistogramSnapshot, cancelled: u64) -> Self {
        Self {
            errors: 0,
            name,
            count: histogram.count(),
            sum_ms: histogram.sum_ns() as f64 / 1e6,
            p50_ms: histogram.quantile_ms(0.50),
            p95_ms: histogram.quantile_ms(0.95),
            p99_ms: histogram.quantile_ms(0.99),
            max_ms: histogram.max_ns() as f64 / 1e6,
            cancelled,
            histogram,
        }
    }
}

/// One named kind of tick: its own `tick_total`, deadline and misses.
#[derive(Debug, Clone, Default)]
pub struct TickKindStats {
    /// The kind's name, e.g. `router`.
    pub name: String,
    /// Its deadline in force, ms (`trace.ticks.<name>.deadline_ms`, else `deadline_ms`).
    pub deadline_ms: f64,
    /// Ticks of this kind that exceeded its deadline.
    pub deadline_misses: u64,
    /// `deadline_misses` as a percentage of its ticks.
    pub deadline_miss_pct: f64,
    /// Its `tick_total` (`stats.count` is its ticks; `stats.name` is `tick_total`).
    pub stats: StageStats,
}

/// Latency statistics of one exchange request kind.
#[derive(Debug, Clone, Default)]
pub struct ExchangeStats {
    /// HTTP-style verb, e.g. `POST`.
    pub verb: String,
    /// API name, e.g. `order`.
    pub api: String,
    /// Run-time labels (`#[exchange_req(.., venue = self.venue())]`), in declaration order.
    pub labels: Vec<(String, String)>,
    /// The latency statistics (its `name` is `"VERB api"`).
    pub stats: StageStats,
}

/// Why a tick's trace was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepReason {
    /// Chosen by head sampling (or by a sampled incoming `traceparent`).
    #[default]
    Sampled,
    /// Not sampled, but slower than the deadline (or the configured quantile).
    Slow,
}

impl KeepReason {
    /// `"sampled"` or `"slow"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeepReason::Sampled => "sampled",
            KeepReason::Slow => "slow",
        }
    }
}

/// One tick's span tree.
#[derive(Debug, Clone, Default)]
pub struct TickTrace {
    /// The tick id (deterministic sampling key).
    pub tick_id: u64,
    /// The W3C trace id (32 lowercase hex): the incoming one for a tick that continues a
    /// trace (`#[traced_tick(parent = ..)]`), else a fresh one.
    pub trace_id: String,
    /// The tick's own span id (16 hex).
    pub span_id: String,
    /// The incoming parent span (16 hex) for a continued trace; `None` for a trace's root.
    pub parent_span_id: Option<String>,
    /// Start, ns since the Unix epoch (for exporters to other systems).
    pub start_unix_ns: u64,
    /// Name of the `#[traced_tick]` function.
    pub name: String,
    /// Why it was kept.
    pub reason: KeepReason,
    /// Start, ns since the process's trace epoch.
    pub start_ns: u64,
    /// Duration, ns.
    pub duration_ns: u64,
    /// Whether it missed the deadline.
    pub deadline_missed: bool,
    /// The deadline it was held to, ns (its kind's `deadline_ms` when the trace was read);
    /// `None` when unknown (a trace built by hand).
    pub deadline_ns: Option<u64>,
    /// Whether [`crate::partial_fail`] was called during it.
    pub partial_fail: bool,
    /// Whether the tick's function returned `Err`.
    pub error: bool,
    /// Metadata from [`crate::annotate`], in call order.
    pub annotations: Vec<(String, String)>,
    /// Spans, ordered by start time (ties by id).
    pub spans: Vec<TraceSpan>,
    /// Spans left out by the per-tick cap.
    pub spans_dropped: u64,
    /// `(thread ordinal, thread name)` of every thread that recorded a span or ran the tick.
    pub threads: Vec<(u32, String)>,
    /// Ordinal of the thread that ended the tick.
    pub thread: u32,
}

/// One span of a [`TickTrace`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceSpan {
    /// Id, unique within the tick.
    pub id: u32,
    /// Parent span id; `None` for a direct child of the tick.
    pub parent: Option<u32>,
    /// The W3C span id (16 hex).
    pub span_id: String,
    /// The parent's W3C span id: the parent stage's, or the tick's for a direct child.
    pub parent_span_id: String,
    /// Stage name, or `"VERB api"` for exchange requests.
    pub name: String,
    /// `"stage"` or `"exchange"`.
    pub kind: &'static str,
    /// Start, ns after the tick's start.
    pub start_ns: u64,
    /// End, ns after the tick's start.
    pub end_ns: u64,
    /// Ordinal of the thread that recorded it.
    pub thread: u32,
    /// An async stage dropped before completion.
    pub cancelled: bool,
    /// The span's function returned `Err`.
    pub error: bool,
    /// Run-time labels of an exchange request (`venue = ...`), in declaration order.
    pub labels: Vec<(String, String)>,
}

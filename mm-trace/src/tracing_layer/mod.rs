//! Coming from `tracing` (feature `tracing`): [`tracing_layer`] turns `tracing` spans into
//! mm-trace stages.

use std::fmt;

use tracing::Level;

use role::Role;
#[cfg(feature = "enabled")]
use {callsites::Callsites, std::sync::Arc, table::SpanTable};

#[cfg(feature = "enabled")]
mod callsites;
#[cfg(feature = "enabled")]
mod carrier;
#[cfg(feature = "enabled")]
mod fields;
#[cfg(feature = "enabled")]
mod layer;
mod role;
#[cfg(feature = "enabled")]
mod spans;
#[cfg(feature = "enabled")]
mod stack;
#[cfg(feature = "enabled")]
mod table;

/// A `tracing_subscriber::Layer` that makes `tracing` spans mm-trace stages (what
/// [`tracing_layer`] returns; see there).
pub struct MmTraceLayer {
    ticks: Vec<(String, Role)>,
    annotate: Option<Level>,
    max_open_spans: usize,
    #[cfg(feature = "enabled")]
    tables: Box<Tables>,
}

/// The [`MmTraceLayer`] to put beside your other layers: `tracing` spans become mm-trace stages.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// mm_trace::init(mm_trace::TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
/// let subscriber = tracing_subscriber::registry().with(mm_trace::tracing_layer().tick_span("request"));
/// tracing::subscriber::with_default(subscriber, || {
///     let _request = tracing::info_span!("request").entered(); // a tick
///     let _query = tracing::info_span!("db_query").entered(); // a stage of it
/// });
/// # #[cfg(feature = "enabled")] {
/// let s = mm_trace::summary();
/// assert_eq!(s.ticks, 1);
/// assert_eq!(s.stage("db_query").unwrap().count, 1);
/// # }
/// ```
/// (`tracing_subscriber::registry().with(mm_trace::tracing_layer()).init()` installs it for
/// the whole process.)
///
/// # What maps to what
/// | `tracing` | mm-trace |
/// |---|---|
/// | a span (`#[instrument]`, `info_span!`, a library's spans) | a stage named after the span's callsite (`metadata().name()`: the function name for `#[instrument]`) |
/// | a span's `tracing` parent | its parent in the tick's trace: an entered span, or the `#[stage]` it was made in |
/// | spans named in [`tick_span`](MmTraceLayer::tick_span) | ticks: sampling, `tick_total`, the deadline, slow-tick capture |
/// | an ERROR event inside a span (`#[instrument(err)]` on `Err`) | the span counts as an error (`mm_stage_errors_total`, marked in the trace) |
/// | WARN and ERROR events inside a kept tick | annotations of its trace (`"WARN"` → `"target: message field=value"`), within `max_annotations_per_tick` |
/// | fields, levels, targets | not recorded: select spans with filters (below); a field as a label would be unbounded |
///
/// Spans follow mm-trace's rules for stages: in a sampled tick they feed the stage histograms
/// and the tick's trace; in an unsampled one they are buffered only in case the tick ends slow
/// (with slow-tick capture on) or cost a thread-local check (with it off); outside any tick
/// they feed the histograms. A span belongs to the tick it is made in; one made outside any
/// tick stays a histogram-only span wherever it runs.
///
/// # Duration: wall time from the first enter to the close
/// A span's duration is the time from its first enter to its close, the same as a `#[stage]`
/// on an `async fn` (first poll to completion). It is wall time, not busy time between enters:
/// the latency of an operation is what a deadline and a p99 are about, and an `async` span's
/// time waiting for the network, a lock or a timer is exactly what a slow tick has to explain
/// (busy time would report a slow connect as nothing). It starts at the first enter rather than
/// at creation so that a span made ahead of its work (a future built and then queued) does not
/// count the wait before it starts, as a stage does not. A span never entered records nothing;
/// a span kept alive by a clone closes, and ends, when the last handle is dropped.
///
/// # Threads and tasks
/// Spans join their tick's trace wherever they run. A span entered on a thread where its tick is
/// not installed (a task spawned with `tokio::spawn`, work handed to a thread pool) joins the
/// tick there as a carried lane, as [`TickContext`](crate::TickContext) does, under its
/// `tracing` parent; mm-trace's own stages inside it join too.
///
/// # Filters and other layers
/// It selects every span by default. Select by target, level or name with a per-layer filter,
/// which leaves other layers untouched:
/// ```
/// use tracing_subscriber::filter::{LevelFilter, Targets, filter_fn};
/// use tracing_subscriber::prelude::*;
///
/// // Spans at INFO and above, except the chatty crate's.
/// let stages = mm_trace::tracing_layer()
///     .with_filter(Targets::new().with_default(LevelFilter::INFO).with_target("chatty", LevelFilter::OFF));
/// let _subscriber = tracing_subscriber::registry().with(stages);
///
/// // Or by name: every span but `poll`.
/// let named = mm_trace::tracing_layer().with_filter(filter_fn(|m| m.is_event() || m.name() != "poll"));
/// let _subscriber = tracing_subscriber::registry().with(named);
/// ```
/// The layer never disables a callsite for others (its interest is always "always"), so a `fmt`
/// layer beside it sees every span and event it saw before. The other way round: without a
/// filter of its own it asks for every span, so in a process whose only other layer filters
/// out DEBUG and TRACE, give this one a filter too (`.with_filter(LevelFilter::INFO)`) and those
/// callsites stay off. Several subscribers in one process (`with_default` in tests) each have
/// their own layer and span table.
///
/// # Cost
/// Per selected span (made, entered, exited, closed), mm-trace's part on top of `tracing`'s own
/// dispatch and registry (80–200 ns a span here) is 11–31 ns, two clock reads included: 25–26
/// under a `tick_span`, 22–31 in a `#[traced_tick]`, 11–18 outside any tick, 1.3–6 where nothing
/// is recorded (an unsampled tick with capture off). An extensions-based timing layer adds
/// 129–175 ns; two bare clock reads into a thread-local histogram, 10–15 ns. (peer-bench,
/// `tracing_layer`, rounds of each layer interleaved in one run on a 2-vCPU VM; under load from
/// other VMs mm-trace's part rose to 19–65 ns, the clock-only layer's did not: docs/PERFORMANCE.md
/// has the table.)
///
/// No lock, no atomic read-modify-write and no `extensions_mut` per span: callsites are resolved
/// once in `register_callsite`; per-span state lives in a table indexed by span id, where each
/// thread fills a region of its own with plain loads and stores (threads whose index shares a
/// region with another's use a shared part: one compare-and-swap); a span made in a tick refers to
/// its thread's hold on the tick (counted on that thread) rather than taking a reference to the
/// tick itself; a thread's entered spans are in a thread-local stack. In the hot loop itself,
/// where `tracing`'s own cost dominates, switch to `#[stage]` (about 29 ns in all).
///
/// # Compiled out, switched off
/// Without mm-trace's `enabled` feature the layer still compiles and records nothing; with
/// `trace.enabled: false` (or [`set_enabled(false)`](crate::set_enabled)) it records nothing
/// and spans cost it one branch. Other layers see everything either way.
pub fn tracing_layer() -> MmTraceLayer {
    MmTraceLayer::new()
}

impl MmTraceLayer {
    /// Room for spans open at once in one layer by default (see [`MmTraceLayer::max_open_spans`]).
    pub const DEFAULT_MAX_OPEN_SPANS: usize = 4096;

    /// The same as [`tracing_layer`].
    pub fn new() -> MmTraceLayer {
        MmTraceLayer {
            ticks: Vec::new(),
            annotate: Some(Level::WARN),
            max_open_spans: Self::DEFAULT_MAX_OPEN_SPANS,
            #[cfg(feature = "enabled")]
            tables: Tables::new(Self::DEFAULT_MAX_OPEN_SPANS),
        }
    }

    /// Spans named `name` are ticks, as if `#[traced_tick]` were on a function of that name:
    /// each is sampled (or not), feeds `tick_total` and the deadline-miss counter, and keeps its
    /// trace when sampled or slow. For services that want mm-trace without its attributes: one
    /// request span, say. A tick span made inside a running tick is a stage of that tick.
    /// May be given several names.
    ///
    /// ```
    /// let layer = mm_trace::tracing_layer().tick_span("request").tick_span("job");
    /// # let _ = layer;
    /// ```
    pub fn tick_span(self, name: &str) -> MmTraceLayer {
        self.with_tick(name, Role::Tick)
    }

    /// Spans named `name` are ticks of their own kind, as if `#[traced_tick(name = "...")]` were
    /// on them: a `tick_total` series, a deadline (`trace.ticks.<name>.deadline_ms`, default
    /// `deadline_ms`) and a miss counter of their own.
    ///
    /// ```
    /// let layer = mm_trace::tracing_layer().tick_kind("router");
    /// # let _ = layer;
    /// ```
    pub fn tick_kind(self, name: &str) -> MmTraceLayer {
        self.with_tick(name, Role::TickKind)
    }

    fn with_tick(mut self, name: &str, role: Role) -> MmTraceLayer {
        self.ticks.retain(|(n, _)| n != name);
        self.ticks.push((name.to_owned(), role));
        self
    }

    /// Events at `level` and above inside a kept tick become annotations of its trace (default
    /// WARN; `None`: none). Within `max_annotations_per_tick`; formatted only when kept.
    ///
    /// ```
    /// let layer = mm_trace::tracing_layer().annotate_events(Some(tracing::Level::ERROR));
    /// # let _ = layer;
    /// ```
    pub fn annotate_events(mut self, level: Option<Level>) -> MmTraceLayer {
        self.annotate = level;
        self
    }

    /// Room for at least `n` spans open at once in this layer (default
    /// [`Self::DEFAULT_MAX_OPEN_SPANS`], rounded up to a power of two; a thread may keep more in
    /// a region of the table of its own); a span made while there is no room for it is not
    /// recorded and is counted in [`MmTraceLayer::untracked_spans`]. The table has `n` slots in
    /// its shared part and `max(n, 512)` in its threads' regions, 128 bytes a slot plus 8 for
    /// the id, taken zeroed and touched only as spans use them (the default reserves 1.1 MB, of
    /// which a loop with a handful of spans open touches a few pages).
    ///
    /// ```
    /// let layer = mm_trace::tracing_layer().max_open_spans(65536); // a server with many requests in flight
    /// # let _ = layer;
    /// ```
    pub fn max_open_spans(mut self, n: usize) -> MmTraceLayer {
        self.max_open_spans = n.max(1);
        #[cfg(feature = "enabled")]
        {
            self.tables = Tables::new(self.max_open_spans);
        }
        self
    }

    /// Spans not recorded because a layer's span table had no room
    /// ([`MmTraceLayer::max_open_spans`]), all layers together, since the collector was last
    /// reset: [`Health::untracked_spans`](crate::Health::untracked_spans) in [`summary`](crate::summary), exported as
    /// `mm_trace_untracked_spans_total`.
    pub fn untracked_spans() -> u64 {
        #[cfg(feature = "enabled")]
        {
            crate::collector::bridge::untracked_count()
        }
        #[cfg(not(feature = "enabled"))]
        {
            0
        }
    }
}

impl Default for MmTraceLayer {
    fn default() -> Self {
        MmTraceLayer::new()
    }
}

impl fmt::Debug for MmTraceLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmTraceLayer")
            .field("ticks", &self.ticks)
            .field("annotate", &self.annotate)
            .field("max_open_spans", &self.max_open_spans)
            .finish_non_exhaustive()
    }
}

/// What one layer keeps, boxed so that its address (which tells this layer's entries apart on a
/// thread's stack) stays put.
#[cfg(feature = "enabled")]
struct Tables {
    spans: Arc<SpanTable>,
    callsites: Callsites,
}

#[cfg(feature = "enabled")]
impl Tables {
    fn new(max_open_spans: usize) -> Box<Tables> {
        Box::new(Tables { spans: SpanTable::new(max_open_spans), callsites: Callsites::new(4096) })
    }
}

/// Compiled out: a layer that records nothing and takes nothing from the others.
#[cfg(not(feature = "enabled"))]
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for MmTraceLayer {}

#[cfg(test)]
mod tests {
    use tracing_subscriber::prelude::*;

    /// Spans and events go through the layer and the subscriber keeps working, compiled in or
    /// out (`cargo test -p mm-trace --no-default-features --features tracing`). Compiled out,
    /// nothing is recorded. (Counts compiled in are checked in tests/tracing_bridge.rs, where
    /// nothing else resets the collector meanwhile.)
    #[test]
    fn spans_pass_through_and_compiled_out_nothing_is_recorded() {
        let subscriber = tracing_subscriber::registry().with(super::tracing_layer().tick_span("request"));
        let n = tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("request").in_scope(|| {
                tracing::warn!("an event");
                tracing::info_span!("step").in_scope(|| 41) + 1
            })
        });
        assert_eq!(n, 42);
        #[cfg(not(feature = "enabled"))]
        {
            let s = crate::summary();
            assert_eq!(s.ticks, 0);
            assert!(s.stages.is_empty());
            assert_eq!(super::MmTraceLayer::untracked_spans(), 0);
        }
    }
}

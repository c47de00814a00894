//! The same workloads written against mm-trace, fastrace, tracing (+ a timing layer) and puffin.
//!
//! Each workload comes in one function per library, so the criterion bench (`benches/peers.rs`)
//! and the memory check (`src/main.rs`) run exactly the same code.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Spans per root (tick, trace root, frame) in the span workloads.
pub const SPANS_PER_ROOT: u64 = 1000;

// ---------------------------------------------------------------------------------------------
// mm-trace (the hidden API the attribute macros expand to)

pub mod mm {
    use super::*;
    use mm_trace::__private::{Site, StageGuard, TickGuard};

    pub static TICK: Site = Site::tick("tick");
    pub static STAGE: Site = Site::stage("fetch_md");
    static FIVE: [Site; 5] = [
        Site::stage("fetch_md"),
        Site::stage("spread"),
        Site::stage("guards"),
        Site::stage("quote"),
        Site::stage("emit"),
    ];

    /// Sample rate 1.0: every tick's spans go to histograms and the trace.
    pub fn init(enabled: bool) {
        mm_trace::init(mm_trace::TraceConfig { enabled, sample_rate: 1.0, export_golden: false, ..Default::default() })
            .expect("valid config");
    }

    /// `n` spans inside one tick.
    pub fn spans_in_root(n: u64) {
        let _t = TickGuard::begin(&TICK);
        for _ in 0..n {
            let _g = StageGuard::enter(&STAGE);
        }
    }

    /// What `#[stage] fn fetch_md(i) -> u64` expands to.
    #[inline(never)]
    pub fn stage_fn(i: u64) -> u64 {
        static SITE: Site = Site::stage("stage_fn");
        let _g = StageGuard::enter(&SITE);
        black_box(i)
    }

    pub fn fns_in_root(n: u64) {
        let _t = TickGuard::begin(&TICK);
        for i in 0..n {
            black_box(stage_fn(i));
        }
    }

    pub fn tick_5() {
        let _t = TickGuard::begin(&TICK);
        for s in &FIVE {
            let _g = StageGuard::enter(s);
            black_box(s);
        }
    }

    /// A span with the runtime switched off (`enabled: false`).
    #[inline]
    pub fn span_off() {
        let _g = StageGuard::enter(&STAGE);
    }
}

// ---------------------------------------------------------------------------------------------
// fastrace 0.7 with a live collector and a reporter that keeps the spans

pub mod ft {
    use super::*;
    use fastrace::collector::{Config, Reporter, SpanContext};
    use fastrace::prelude::*;

    /// Keeps every span it is given until [`drain`] takes them (as a real exporter's buffer).
    struct KeepReporter(Arc<Mutex<Vec<SpanRecord>>>);

    impl Reporter for KeepReporter {
        fn report(&mut self, mut spans: Vec<SpanRecord>) {
            self.0.lock().expect("reporter buffer").append(&mut spans);
        }
    }

    fn kept() -> &'static Arc<Mutex<Vec<SpanRecord>>> {
        static KEPT: OnceLock<Arc<Mutex<Vec<SpanRecord>>>> = OnceLock::new();
        KEPT.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
    }

    pub fn init() {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| fastrace::set_reporter(KeepReporter(kept().clone()), Config::default()));
    }

    /// A reporter that counts what it is given and drops it (for the memory check: whatever
    /// memory grows is fastrace's own).
    struct CountReporter(u64);

    impl Reporter for CountReporter {
        fn report(&mut self, spans: Vec<SpanRecord>) {
            self.0 += spans.len() as u64;
        }
    }

    pub fn init_counting() {
        fastrace::set_reporter(CountReporter(0), Config::default());
    }

    /// Hands collected spans to the reporter and drops them: keeps memory bounded between
    /// measurements. Returns how many spans were kept.
    pub fn drain() -> usize {
        fastrace::flush();
        let mut v = kept().lock().expect("reporter buffer");
        let n = v.len();
        v.clear();
        v.shrink_to(1 << 16);
        n
    }

    pub fn spans_in_root(n: u64) {
        let root = Span::root("tick", SpanContext::random());
        let _p = root.set_local_parent();
        for _ in 0..n {
            let _g = LocalSpan::enter_with_local_parent("fetch_md");
        }
    }

    #[fastrace::trace]
    #[inline(never)]
    pub fn stage_fn(i: u64) -> u64 {
        black_box(i)
    }

    pub fn fns_in_root(n: u64) {
        let root = Span::root("tick", SpanContext::random());
        let _p = root.set_local_parent();
        for i in 0..n {
            black_box(stage_fn(i));
        }
    }

    pub fn tick_5() {
        let root = Span::root("tick", SpanContext::random());
        let _p = root.set_local_parent();
        for name in ["fetch_md", "spread", "guards", "quote", "emit"] {
            let _g = LocalSpan::enter_with_local_parent(name);
            black_box(name);
        }
    }

    /// fastrace's "off": no root, so no local parent; the span is a no-op.
    #[inline]
    pub fn span_off() {
        let _g = LocalSpan::enter_with_local_parent("fetch_md");
    }
}

// ---------------------------------------------------------------------------------------------
// tracing + tracing-subscriber: a registry and a layer that times every span into a histogram

pub mod tr {
    use super::*;
    use tracing::span::Id;
    use tracing::{Subscriber, info_span, instrument};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::{Layer, Registry};

    struct Started(Instant);

    thread_local! {
        /// Per-thread log2 histogram of span durations: what the layer keeps.
        static HIST: RefCell<[u64; 64]> = const { RefCell::new([0; 64]) };
    }

    /// Times each span from enter to exit and records the duration.
    pub struct TimingLayer;

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for TimingLayer {
        fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().replace(Started(Instant::now()));
            }
        }

        fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id)
                && let Some(Started(t0)) = span.extensions().get::<Started>()
            {
                let ns = t0.elapsed().as_nanos() as u64;
                HIST.with(|h| h.borrow_mut()[63 - ns.max(1).leading_zeros() as usize] += 1);
            }
        }
    }

    /// Spans recorded by the layer on this thread.
    pub fn recorded() -> u64 {
        HIST.with(|h| h.borrow().iter().sum())
    }

    /// Installs the registry + timing layer as the global subscriber (once per process).
    pub fn init() {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| {
            tracing::subscriber::set_global_default(Registry::default().with(TimingLayer)).expect("first subscriber");
        });
    }

    pub fn spans_in_root(n: u64) {
        let _root = info_span!("tick").entered();
        for _ in 0..n {
            let _g = info_span!("fetch_md").entered();
        }
    }

    #[instrument(level = "info", skip_all)]
    #[inline(never)]
    pub fn stage_fn(i: u64) -> u64 {
        black_box(i)
    }

    pub fn fns_in_root(n: u64) {
        let _root = info_span!("tick").entered();
        for i in 0..n {
            black_box(stage_fn(i));
        }
    }

    pub fn tick_5() {
        let _root = info_span!("tick").entered();
        macro_rules! stage {
            ($name:literal) => {{
                let _g = info_span!($name).entered();
                black_box($name);
            }};
        }
        stage!("fetch_md");
        stage!("spread");
        stage!("guards");
        stage!("quote");
        stage!("emit");
    }

    /// Runtime off: no subscriber installed (call before `init`).
    #[inline]
    pub fn span_off() {
        let _g = info_span!("fetch_md").entered();
    }
}

// ---------------------------------------------------------------------------------------------
// tracing layers on one workload: a no-op layer (the floor: tracing's own dispatch and registry),
// the extensions-based timing layer above, and mm-trace's `tracing_layer()`. Each runs under its
// own dispatcher (`with_default`), so all three are measured in one run.

pub mod layers {
    use super::*;
    use mm_trace::__private::{Site, TickGuard};
    use tracing::{Dispatch, Subscriber, info_span};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, Registry};

    /// A layer that does nothing: what remains is `tracing`'s dispatch and the registry.
    pub struct NoopLayer;

    impl<S: Subscriber> Layer<S> for NoopLayer {}

    /// Registry + no-op layer.
    pub fn floor() -> Dispatch {
        Dispatch::new(Registry::default().with(NoopLayer))
    }

    /// Registry + the extensions-based timing layer (`tr::TimingLayer`).
    pub fn timing() -> Dispatch {
        Dispatch::new(Registry::default().with(tr::TimingLayer))
    }

    /// The least a timing layer can do, as a reference below every real one: a TSC read at each
    /// enter into a thread-local stack, another at each exit, the difference counted in a
    /// thread-local log2 histogram. No per-span state, no parent, no trace.
    pub struct ClockOnlyLayer;

    thread_local! {
        static STARTS: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
        static BUCKETS: std::cell::RefCell<[u64; 64]> = const { std::cell::RefCell::new([0; 64]) };
    }

    fn tsc() -> u64 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `rdtsc` is on every x86_64 CPU.
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
        #[cfg(not(target_arch = "x86_64"))]
        0
    }

    impl<S: Subscriber> Layer<S> for ClockOnlyLayer {
        fn on_enter(&self, _: &tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
            STARTS.with_borrow_mut(|s| s.push(tsc()));
        }
        fn on_exit(&self, _: &tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
            let t = tsc();
            if let Some(start) = STARTS.with_borrow_mut(|s| s.pop()) {
                let b = 63 - (t.wrapping_sub(start) | 1).leading_zeros() as usize;
                BUCKETS.with_borrow_mut(|h| h[b] += 1);
            }
        }
    }

    /// Registry + [`ClockOnlyLayer`].
    pub fn clock_only() -> Dispatch {
        Dispatch::new(Registry::default().with(ClockOnlyLayer))
    }

    /// The four layers measured side by side: floor, timing layer, mm-trace, clock-only.
    pub fn all() -> [Dispatch; 4] {
        [floor(), timing(), mm_trace(), clock_only()]
    }

    /// One shape measured by [`interleave`], ns per span (medians over rounds): each layer's
    /// case, and each layer's part over the floor.
    #[derive(Debug, Clone, Copy)]
    pub struct Interleaved {
        pub floor: f64,
        pub timing: f64,
        pub mm: f64,
        pub timing_part: f64,
        pub mm_part: f64,
        pub clock_part: f64,
    }

    impl Interleaved {
        /// The column heads of [`Interleaved::row`].
        pub const HEADER: &str = "shape            floor   timing       mm    mm part timing part  clock part";

        /// One line of the table, for shape `name`.
        pub fn row(&self, name: &str) -> String {
            let Interleaved { floor, timing, mm, timing_part, mm_part, clock_part } = *self;
            format!(
                "{name:<14} {floor:>8.1} {timing:>8.1} {mm:>8.1} {mm_part:>10.1} {timing_part:>11.1} {clock_part:>11.1}"
            )
        }
    }

    /// `rounds` rounds (after 100 to warm up) in which each of `dispatches` ([`all`]) runs one
    /// root of [`SPANS_PER_ROOT`] spans of `work` back to back, in an order rotated per round, with
    /// `after` run after each outside the timing: all layers of a round share the machine's
    /// state, and a part is the median over rounds of (case − floor), which holds still where the
    /// medians of separate runs drift by tens of nanoseconds.
    pub fn interleave(dispatches: &[Dispatch; 4], work: fn(u64), after: fn(), rounds: usize) -> Interleaved {
        let mut times: [Vec<f64>; 4] = Default::default();
        let mut parts: [Vec<f64>; 3] = Default::default();
        for r in 0..rounds + 100 {
            let mut round = [0.0; 4];
            for k in 0..4 {
                let i = (r + k) % 4;
                round[i] = tracing::dispatcher::with_default(&dispatches[i], || {
                    let t0 = Instant::now();
                    work(SPANS_PER_ROOT);
                    let ns = t0.elapsed().as_nanos() as f64 / SPANS_PER_ROOT as f64;
                    after();
                    ns
                });
            }
            if r >= 100 {
                for (v, t) in times.iter_mut().zip(round) {
                    v.push(t);
                }
                for (v, t) in parts.iter_mut().zip(&round[1..]) {
                    v.push(t - round[0]);
                }
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let [floor, timing, mm, _] = times.each_mut().map(median);
        let [timing_part, mm_part, clock_part] = parts.each_mut().map(median);
        Interleaved { floor, timing, mm, timing_part, mm_part, clock_part }
    }

    /// Registry + mm-trace's layer; the root span `tick` is a tick.
    pub fn mm_trace() -> Dispatch {
        Dispatch::new(Registry::default().with(mm_trace::tracing_layer().tick_span("tick")))
    }

    /// `n` spans under a root span `tick` (for mm-trace a `tick_span`: the spans are its stages).
    pub fn spans_in_root_span(n: u64) {
        let _root = info_span!("tick").entered();
        for _ in 0..n {
            let _g = info_span!("fetch_md").entered();
        }
    }

    static TICK: Site = Site::tick("tick");

    /// `n` spans with no `tracing` parent inside an mm-trace tick (`#[traced_tick]`'s guard), as
    /// library spans called from a stage are: for mm-trace each keeps a context that could carry
    /// the tick to another thread.
    pub fn spans_in_mm_tick(n: u64) {
        let _t = TickGuard::begin(&TICK);
        for _ in 0..n {
            let _g = info_span!("fetch_md").entered();
        }
    }

    /// `n` spans with no root at all (for mm-trace: histograms only).
    pub fn spans_free(n: u64) {
        for _ in 0..n {
            let _g = info_span!("fetch_md").entered();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// puffin: nested profile_scope!, one frame per root, a frame view that keeps recent frames

pub mod pf {
    use super::*;

    pub fn init(on: bool) {
        static VIEW: OnceLock<Mutex<Option<puffin::GlobalFrameView>>> = OnceLock::new();
        let view = VIEW.get_or_init(|| Mutex::new(None));
        let mut v = view.lock().expect("view");
        if on && v.is_none() {
            *v = Some(puffin::GlobalFrameView::default());
        }
        puffin::set_scopes_on(on);
    }

    fn end_frame() {
        puffin::GlobalProfiler::lock().new_frame();
    }

    pub fn spans_in_root(n: u64) {
        {
            puffin::profile_scope!("tick");
            for _ in 0..n {
                puffin::profile_scope!("fetch_md");
            }
        }
        end_frame();
    }

    #[inline(never)]
    pub fn stage_fn(i: u64) -> u64 {
        puffin::profile_function!();
        black_box(i)
    }

    pub fn fns_in_root(n: u64) {
        {
            puffin::profile_scope!("tick");
            for i in 0..n {
                black_box(stage_fn(i));
            }
        }
        end_frame();
    }

    pub fn tick_5() {
        {
            puffin::profile_scope!("tick");
            for name in ["fetch_md", "spread", "guards", "quote", "emit"] {
                puffin::profile_scope!("stage", name);
                black_box(name);
            }
        }
        end_frame();
    }

    /// Runtime off: `set_scopes_on(false)`.
    #[inline]
    pub fn span_off() {
        puffin::profile_scope!("fetch_md");
    }
}

/// Peak resident set size of this process (VmHWM), kB.
pub fn peak_rss_kb() -> u64 {
    status_kb("VmHWM")
}

/// Current resident set size (VmRSS), kB.
pub fn rss_kb() -> u64 {
    status_kb("VmRSS")
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

//! Carried tick contexts: work that a tick hands to other threads or tasks carries a
//! [`TickContext`] along, and its stages join the tick's trace (with the right parent) and feed
//! its histograms. Each carried context runs as a lane of the tick on the thread it enters.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use super::counters::Counter;
use super::local::local;
use super::site::Site;
use super::switches::ENABLED;
use super::tick_state::{Shared, TickState};

/// A handle on the current tick that work handed to other threads or tasks carries along, so
/// their stages join the tick's trace (with the right parent) and feed its histograms.
///
/// ```
/// use mm_trace::{TickContext, stage, traced_tick};
///
/// #[stage]
/// fn fetch_md(symbol: &str) -> usize { symbol.len() }
///
/// #[traced_tick]
/// fn tick(symbols: &[&str]) -> usize {
///     let ctx = TickContext::current();
///     std::thread::scope(|s| {
///         let handles: Vec<_> = symbols
///             .iter()
///             .map(|sym| {
///                 let ctx = ctx.clone();
///                 s.spawn(move || ctx.in_scope(|| fetch_md(sym)))
///             })
///             .collect();
///         handles.into_iter().map(|h| h.join().unwrap()).sum()
///     })
/// }
/// assert_eq!(tick(&["BTC", "ETH"]), 6);
/// ```
#[derive(Clone, Default)]
pub struct TickContext {
    shared: Option<Arc<Shared>>,
    parent: u32,
}

impl std::fmt::Debug for TickContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickContext").field("tick_id", &self.shared.as_ref().map(|s| s.tick_id)).finish()
    }
}

impl TickContext {
    /// The tick running on this thread (and the span open in it, which becomes the parent of
    /// carried stages). Outside a tick, an empty context that carries nothing.
    pub fn current() -> TickContext {
        if !ENABLED.load(Relaxed) {
            return TickContext::default();
        }
        match local().current() {
            Some(t) if t.mode.may_keep() => TickContext { shared: Some(t.shared()), parent: t.parent.get() },
            _ => TickContext::default(),
        }
    }

    /// The same tick, with span `parent` of it as the parent of what runs under the context.
    #[cfg(feature = "tracing")]
    pub(crate) fn with_parent(&self, parent: u32) -> TickContext {
        TickContext { shared: self.shared.clone(), parent }
    }

    /// The id of the tick this context belongs to, if any.
    pub fn tick_id(&self) -> Option<u64> {
        self.shared.as_ref().map(|s| s.tick_id)
    }

    /// Joins the tick on this thread until the guard drops.
    pub fn enter(&self) -> ContextGuard {
        let Some(shared) = &self.shared else {
            return ContextGuard { state: None };
        };
        let l = local();
        let mut state = l.take_state(&NO_SITE);
        state.begin(shared.tick_id, &NO_SITE, shared.mode, shared.next_lane(), self.parent);
        state.trace.set(shared.trace);
        *state.shared.borrow_mut() = Some(shared.clone());
        let state = Box::into_raw(state);
        // SAFETY: just created; freed in `ContextGuard::drop`.
        l.install(unsafe { &*state });
        ContextGuard { state: Some(state) }
    }

    /// Runs `f` as part of the tick.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.enter();
        f()
    }

    /// Makes `fut` part of the tick wherever it is polled (e.g. in `tokio::spawn`).
    pub fn wrap<F: Future>(self, fut: F) -> WithContext<F> {
        WithContext { fut, ctx: self }
    }
}

static NO_SITE: Site = Site::stage("carried");

/// Keeps a carried [`TickContext`] installed on this thread; dropping it hands the spans
/// recorded meanwhile to the tick.
#[must_use = "the context is left when the guard drops"]
#[derive(Debug)]
pub struct ContextGuard {
    state: Option<*mut TickState>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        // SAFETY: created in `TickContext::enter` with `Box::into_raw`; this guard owns it.
        let state = unsafe { Box::from_raw(state) };
        let l = local();
        l.uninstall(&state);
        let shared = state.shared.borrow_mut().take();
        if let Some(shared) = shared {
            let th = l.thread_data();
            let dropped = state.dropped.get();
            if dropped > 0
                && let Some(th) = th
            {
                th.counters.bump(Counter::SpansDropped, u64::from(dropped));
            }
            let annotations_dropped = state.annotations_dropped.get();
            if annotations_dropped > 0
                && let Some(th) = th
            {
                th.counters.bump(Counter::AnnotationsDropped, u64::from(annotations_dropped));
            }
            if state.partial_fail.get() {
                shared.partial_fail.store(true, Relaxed);
            }
            let annotations = std::mem::take(&mut *state.annotations.borrow_mut());
            if !annotations.is_empty() {
                shared.annotations.lock().unwrap_or_else(|e| e.into_inner()).extend(annotations);
            }
            // SAFETY: uninstalled above; no other reference to the vector exists.
            let spans = unsafe { state.spans_mut() };
            if !spans.is_empty() {
                shared.push(spans.clone());
            }
        }
        l.give_state(state);
    }
}

/// A future that joins a carried tick for each poll. See [`TickContext::wrap`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct WithContext<F> {
    fut: F,
    ctx: TickContext,
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned; `ctx` is never moved out while pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let _g = this.ctx.enter();
        // SAFETY: as above.
        unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx)
    }
}

//! Compiled out (mm-trace without `enabled`, with `tracing`), the `tracing` layer still composes
//! with other layers: every span and event reaches them, the code runs as before, and nothing is
//! recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Counts the spans, enters and events it is shown.
#[derive(Clone, Default)]
struct Counting(Arc<[AtomicU64; 3]>);

impl<S: Subscriber> Layer<S> for Counting {
    fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        self.0[0].fetch_add(1, Relaxed);
    }
    fn on_enter(&self, _: &Id, _: Context<'_, S>) {
        self.0[1].fetch_add(1, Relaxed);
    }
    fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
        self.0[2].fetch_add(1, Relaxed);
    }
}

#[tracing::instrument]
fn connect(venue: &str) -> usize {
    tracing::warn!(venue, "slow venue");
    venue.len()
}

#[test]
fn the_layer_compiled_out_records_nothing_and_the_others_see_everything() {
    mm_trace::init(mm_trace::TraceConfig { sample_rate: 1.0, ..Default::default() }).unwrap();
    let counting = Counting::default();
    let layer = mm_trace::tracing_layer().tick_span("request").max_open_spans(4);
    let subscriber = tracing_subscriber::registry().with(layer).with(counting.clone());
    let n = tracing::subscriber::with_default(subscriber, || {
        (0..10).map(|_| tracing::info_span!("request").in_scope(|| connect("venue-a"))).sum::<usize>()
    });
    assert_eq!(n, 70);
    let [spans, enters, events] = counting.0.as_ref().each_ref().map(|c| c.load(Relaxed));
    assert_eq!((spans, enters, events), (20, 20, 10), "every span, enter and event reached the other layer");
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 0);
    assert!(s.stages.is_empty());
    assert!(mm_trace::recent_traces().is_empty());
    assert_eq!(mm_trace::MmTraceLayer::untracked_spans(), 0);
}

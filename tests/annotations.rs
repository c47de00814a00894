//! `max_annotations_per_tick`: annotations past the cap are counted, not kept (1,000,000
//! `annotate` calls in one sampled tick grew the process by about 400 MB before), and a tick that
//! cannot keep a trace neither formats nor allocates for `annotate`. Its own test binary, for
//! the counting allocator.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations;
use mm_trace::__private::{Site, TickGuard};
use mm_trace::TraceConfig;

/// A value that counts how often it is formatted.
struct Formatted<'a>(&'a AtomicU64);

impl fmt::Display for Formatted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fetch_add(1, Relaxed);
        f.write_str("v")
    }
}

static SERIAL: Mutex<()> = Mutex::new(());
static TICK: Site = Site::tick("tick");

fn setup(cfg: TraceConfig) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { export_golden: false, ..cfg }).unwrap();
    mm_trace::reset();
    g
}

#[test]
fn annotations_past_the_cap_are_counted_not_kept() {
    let _g = setup(TraceConfig { sample_rate: 1.0, ..Default::default() });
    const CALLS: u64 = 1_000_000;
    let formatted = AtomicU64::new(0);
    let grown = {
        let _t = TickGuard::begin(&TICK);
        for _ in 0..64 {
            mm_trace::annotate("k", Formatted(&formatted));
        }
        // Past the cap: no formatting, no allocation.
        allocations(|| {
            for _ in 64..CALLS {
                mm_trace::annotate("k", Formatted(&formatted));
            }
        })
    };
    assert_eq!(grown, 0, "annotations past the cap allocated");
    assert_eq!(formatted.load(Relaxed), 64, "annotations past the cap were formatted");
    let s = mm_trace::summary();
    assert_eq!(s.health.annotations_dropped, CALLS - 64);
    let trace = mm_trace::recent_traces().pop().unwrap();
    assert_eq!(trace.annotations.len(), 64);
    let text = mm_trace::prometheus_text();
    assert!(text.contains(&format!("\nmm_trace_annotations_dropped_total {}\n", CALLS - 64)), "{text}");
    assert!(text.contains("# TYPE mm_trace_annotations_dropped_total counter"));
}

#[test]
fn the_cap_is_over_the_whole_tick_carried_work_included() {
    let _g = setup(TraceConfig { sample_rate: 1.0, max_annotations_per_tick: 3, ..Default::default() });
    {
        let _t = TickGuard::begin(&TICK);
        mm_trace::annotate("a", 1);
        mm_trace::annotate("a", 2);
        let ctx = mm_trace::TickContext::current();
        std::thread::scope(|s| {
            s.spawn(|| ctx.in_scope(|| (0..5).for_each(|i| mm_trace::annotate("b", i))));
        });
    }
    let trace = mm_trace::recent_traces().pop().unwrap();
    assert_eq!(trace.annotations.len(), 3);
    assert_eq!(&trace.annotations[..2], &[("a".to_owned(), "1".to_owned()), ("a".to_owned(), "2".to_owned())]);
    // 2 + 5 made, 3 kept.
    assert_eq!(mm_trace::summary().health.annotations_dropped, 4);
}

#[test]
fn a_tick_that_keeps_no_trace_neither_formats_nor_allocates() {
    let _g = setup(TraceConfig { sample_rate: 0.0, capture_slow_ticks: false, ..Default::default() });
    let formatted = AtomicU64::new(0);
    {
        let _t = TickGuard::begin(&TICK);
        let n = allocations(|| {
            for _ in 0..1000 {
                mm_trace::annotate("k", Formatted(&formatted));
            }
        });
        assert_eq!(n, 0, "annotate allocated in an unsampled tick with capture off");
    }
    // Outside any tick.
    let n = allocations(|| mm_trace::annotate("k", Formatted(&formatted)));
    assert_eq!(n, 0);
    assert_eq!(formatted.load(Relaxed), 0);
    assert_eq!(mm_trace::summary().health.annotations_dropped, 0);
}

//! What the exporter test binaries (tests/exporters.rs, tests/trace_files.rs) share: one test
//! at a time on a fresh collector, and the sites their ticks use.
#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mm_trace::__private::Site;
use mm_trace::{TraceConfig, test_clock};

static SERIAL: Mutex<()> = Mutex::new(());
pub static TICK: Site = Site::tick("tick");
pub static FETCH_MD: Site = Site::stage("fetch_md");
pub static GET_BOOK: Site = Site::exchange("GET", "book");
pub static POST_ORDER: Site = Site::exchange("POST", "order");

/// Serialises the tests of a binary and starts each on a fresh collector configured by `cfg`.
pub fn setup(cfg: TraceConfig) -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    test_clock::uninstall();
    mm_trace::init(cfg).unwrap();
    mm_trace::set_enabled(true);
    mm_trace::reset();
    g
}

/// Every tick sampled, no golden files.
pub fn cfg() -> TraceConfig {
    TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }
}

/// The trace worker measures the span cost with the clock once at start; wait for it before
/// installing the test clock so that it does not take readings from it.
pub fn wait_for_worker() {
    let deadline = Instant::now() + Duration::from_secs(10);
    while mm_trace::summary().health.span_cost_ns <= 0.0 {
        assert!(Instant::now() < deadline, "trace worker never measured its span cost");
        std::thread::sleep(Duration::from_millis(5));
    }
}

//! The span-cost calibration behind `Health::span_cost_ns` and the overhead estimate: the
//! trace worker times real recorded spans once at start.

use super::keys::CALIBRATION_NAME;
use super::local::local;
use super::site::Site;
use super::span::StageGuard;
use super::tick_state::{Mode, TickState};
use crate::clock;

/// Time one full recorded span costs here (two clock reads, histogram, trace push), in ns.
pub(crate) fn measure_span_cost() -> f64 {
    static CAL: Site = Site::stage(CALIBRATION_NAME);
    const N: u32 = 20_000;
    let l0 = clock::now();
    let mut state = TickState::new(&CAL);
    state.begin(u64::MAX, &CAL, Mode::Record, 0, 0);
    state.cap = N;
    let l = local();
    l.install(&state);
    for _ in 0..N {
        drop(StageGuard::enter(&CAL));
    }
    l.uninstall(&state);
    state.clear();
    let l1 = clock::now();
    // Saturating: a clock switch (test clock) between the reads must not panic the worker.
    clock::ticks_to_ns(l1.saturating_sub(l0)) as f64 / f64::from(N)
}

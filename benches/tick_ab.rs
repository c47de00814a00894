//! A real ~10 µs, 5-stage tick, bare and instrumented, interleaved tick by tick.
//!
//! ```text
//! cargo bench --bench tick_ab            # every configuration, 3 rounds of 100,000 pairs
//! ```
//!
//! Criterion times each case in its own stretch of time, and on a shared machine the speed of a
//! 10 µs tick drifts by about ±1% between stretches, more than the overhead asked about (≤ 2%,
//! ≤ 0.5%). Here each bare tick runs next to an instrumented one (alternating which goes
//! first), so drift hits both alike and the mean difference is the instrumentation's cost,
//! trace worker included: the worker runs as it would in production (traces kept at the
//! configured rate, no draining between ticks).

use std::hint::black_box;
use std::time::Instant;

mod common;
use common::{TICK_CASES, configure, spin_iters_for_2us, tick_bare, tick_traced};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = spin_iters_for_2us();
    let pairs: u32 = std::env::var("PAIRS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    println!("== 5-stage ~10 µs tick, bare vs instrumented, interleaved ({pairs} pairs per round)");
    println!("{:<32} {:>10} {:>10} {:>10} {:>9}", "configuration", "bare ns", "traced ns", "added ns", "added %");
    let time = |tick: fn(u64) -> u64| {
        let t0 = Instant::now();
        black_box(tick(black_box(n)));
        t0.elapsed().as_nanos()
    };
    for round in 0..3 {
        for (id, enabled, rate, capture, target) in TICK_CASES {
            configure(enabled, rate, capture);
            let (mut bare, mut traced) = (0u128, 0u128);
            for i in 0..pairs {
                // Alternate which of the pair runs first.
                if i % 2 == 0 {
                    bare += time(tick_bare);
                    traced += time(tick_traced);
                } else {
                    traced += time(tick_traced);
                    bare += time(tick_bare);
                }
            }
            let (b, t) = (bare as f64 / f64::from(pairs), traced as f64 / f64::from(pairs));
            let name = if target.is_empty() { id.to_owned() } else { format!("{id} [{target}]") };
            println!("{name:<32} {b:>10.0} {t:>10.0} {:>10.0} {:>8.2}%  (round {round})", t - b, (t - b) / b * 100.0);
        }
    }
}

//! The clock: a TSC read on x86_64 when the kernel itself trusts the TSC, `Instant` otherwise,
//! and a deterministic test clock for golden traces.
//!
//! Raw readings are "ticks"; [`ticks_to_ns`] converts a difference with one multiply and shift.
//! Calibration runs once, on a cold path (first thread registration or `init`), never per span.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const MODE_TSC: u8 = 0;
const MODE_INSTANT: u8 = 1;
const MODE_TEST: u8 = 2;

/// Which source `now` reads. Written on cold paths only; read with `Relaxed` on every clock read
/// because the value never changes the meaning of readings taken before it (the test clock is
/// only switched on and off while nothing is being recorded).
static MODE: AtomicU8 = AtomicU8::new(MODE_TSC);
/// ns per tick as a 32.32 fixed-point multiplier.
static MULT: AtomicU64 = AtomicU64::new(1 << 32);
/// Real time per recorded time, as `f64` bits (1.0: real time); see `test_clock::set_time_scale`.
/// Folded into `MULT`, so it costs nothing per read.
static SCALE: AtomicU64 = AtomicU64::new(0x3FF0_0000_0000_0000);
static TEST_NOW: AtomicU64 = AtomicU64::new(0);
static TEST_STEP: AtomicU64 = AtomicU64::new(0);
static CALIBRATED: OnceLock<Calibration> = OnceLock::new();

#[derive(Debug, Clone, Copy)]
struct Calibration {
    mode: u8,
    mult: u64,
    /// A reading and its nanoseconds since the process epoch, to place readings on a timeline.
    anchor: (u64, u64),
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Reads the clock, in ticks. Only differences of readings are meaningful.
#[inline(always)]
pub(crate) fn now() -> u64 {
    match MODE.load(Relaxed) {
        MODE_TSC => read_tsc(),
        _ => now_slow(),
    }
}

#[cold]
#[inline(never)]
fn now_slow() -> u64 {
    if MODE.load(Relaxed) == MODE_TEST {
        TEST_NOW.fetch_add(TEST_STEP.load(Relaxed), Relaxed)
    } else {
        u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read_tsc() -> u64 {
    // SAFETY: `rdtsc` is available on every x86_64 CPU and has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn read_tsc() -> u64 {
    now_slow()
}

/// Converts a difference of two readings to nanoseconds.
#[inline(always)]
pub(crate) fn ticks_to_ns(ticks: u64) -> u64 {
    let ns = (u128::from(ticks) * u128::from(MULT.load(Relaxed))) >> 32;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Calibrates once; cheap after the first call.
pub(crate) fn ensure_calibrated() {
    let c = CALIBRATED.get_or_init(calibrate);
    if MODE.load(Relaxed) != MODE_TEST {
        MODE.store(c.mode, Relaxed);
        MULT.store(scaled(c.mult), Relaxed);
    }
}

fn scaled(mult: u64) -> u64 {
    (mult as f64 / f64::from_bits(SCALE.load(Relaxed))) as u64
}

/// Records every later duration as real time divided by `scale` (checked by the caller: finite,
/// > 0). Applies to the TSC and monotonic clocks, not to the test clock.
pub(crate) fn set_time_scale(scale: f64) {
    SCALE.store(scale.to_bits(), Relaxed);
    ensure_calibrated();
}

fn tsc_trusted() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    if let Ok(s) = std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource") {
        return s.trim() == "tsc";
    }
    invariant_tsc_cpuid()
}

#[cfg(target_arch = "x86_64")]
fn invariant_tsc_cpuid() -> bool {
    // Leaf 0x8000_0007 is only read after checking that the extended range reaches it.
    let max_ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    max_ext >= 0x8000_0007 && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn invariant_tsc_cpuid() -> bool {
    false
}

fn calibrate() -> Calibration {
    let _ = epoch();
    // `MM_TRACE_CLOCK=monotonic` forces `Instant`; `=tsc` skips the trust check (for the
    // instruction-count guard, which needs the same code path on every x86_64 machine).
    let forced = std::env::var_os("MM_TRACE_CLOCK");
    let tsc = match forced.as_ref().and_then(|v| v.to_str()) {
        Some("monotonic") => false,
        Some("tsc") => cfg!(target_arch = "x86_64"),
        _ => tsc_trusted(),
    };
    if !tsc {
        return Calibration { mode: MODE_INSTANT, mult: 1 << 32, anchor: (0, 0) };
    }
    // Median of three 2 ms windows; each end point is the tightest of 16 TSC/Instant brackets,
    // which bounds the error a preemption can add.
    let mut ratios = Vec::with_capacity(3);
    for _ in 0..3 {
        let (t0, i0) = bracket();
        let target = i0 + Duration::from_millis(2);
        while Instant::now() < target {
            std::hint::spin_loop();
        }
        let (t1, i1) = bracket();
        let ticks = t1.wrapping_sub(t0) as f64;
        if ticks > 0.0 {
            ratios.push((i1 - i0).as_nanos() as f64 / ticks);
        }
    }
    ratios.sort_by(f64::total_cmp);
    match ratios.get(ratios.len() / 2) {
        Some(&ns_per_tick) if ns_per_tick.is_finite() && ns_per_tick > 0.0 && ns_per_tick < 100.0 => {
            let (tsc, at) = bracket();
            let at_ns = u64::try_from((at - epoch()).as_nanos()).unwrap_or(0);
            Calibration { mode: MODE_TSC, mult: (ns_per_tick * 4_294_967_296.0) as u64, anchor: (tsc, at_ns) }
        }
        _ => Calibration { mode: MODE_INSTANT, mult: 1 << 32, anchor: (0, 0) },
    }
}

/// A TSC reading paired with an `Instant`, taken where the two are closest together.
fn bracket() -> (u64, Instant) {
    let mut best = (u64::MAX, 0u64, Instant::now());
    for _ in 0..16 {
        let a = read_tsc();
        let i = Instant::now();
        let b = read_tsc();
        if b.wrapping_sub(a) < best.0 {
            best = (b.wrapping_sub(a), a + (b.wrapping_sub(a)) / 2, i);
        }
    }
    (best.1, best.2)
}

/// Name of the clock in use, for reports (`"tsc"`, `"monotonic"` or `"test"`).
pub(crate) fn source_name() -> &'static str {
    match MODE.load(Relaxed) {
        MODE_TSC => "tsc",
        MODE_INSTANT => "monotonic",
        _ => "test",
    }
}

/// Switches every thread to the deterministic test clock (see [`crate::test_clock`]).
pub(crate) fn install_test_clock(start_ns: u64, step_ns: u64) {
    ensure_calibrated();
    TEST_NOW.store(start_ns, Relaxed);
    TEST_STEP.store(step_ns, Relaxed);
    MULT.store(1 << 32, Relaxed);
    MODE.store(MODE_TEST, Relaxed);
}

pub(crate) fn advance_test_clock(ns: u64) {
    TEST_NOW.fetch_add(ns, Relaxed);
}

pub(crate) fn uninstall_test_clock() {
    if MODE.load(Relaxed) == MODE_TEST {
        let c = CALIBRATED.get_or_init(calibrate);
        MULT.store(scaled(c.mult), Relaxed);
        MODE.store(c.mode, Relaxed);
    }
}

/// The Unix time of the process epoch, ns (taken once).
pub(crate) fn epoch_unix_ns() -> u64 {
    static UNIX: OnceLock<u64> = OnceLock::new();
    *UNIX.get_or_init(|| {
        let since_epoch = epoch().elapsed();
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.saturating_sub(since_epoch).as_nanos()).unwrap_or(u64::MAX))
    })
}

/// Nanoseconds since the process epoch of a raw reading: for trace timestamps (cold path).
pub(crate) fn reading_to_epoch_ns(reading: u64) -> u64 {
    let anchor = match MODE.load(Relaxed) {
        MODE_TSC => CALIBRATED.get().map_or((0, 0), |c| c.anchor),
        _ => (0, 0),
    };
    let (anchor_reading, anchor_ns) = anchor;
    if reading >= anchor_reading {
        anchor_ns.saturating_add(ticks_to_ns(reading - anchor_reading))
    } else {
        anchor_ns.saturating_sub(ticks_to_ns(anchor_reading - reading))
    }
}

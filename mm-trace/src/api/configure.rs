//! Configure and control: install a configuration, switch recording at run time, start a new
//! measurement window, flush and shut down; the test clock.

use crate::config::TraceConfig;
use crate::error::Error;
use crate::imp;

/// Installs a configuration (validated first). Can be called again to change it.
///
/// ```
/// mm_trace::init(mm_trace::TraceConfig { deadline_ms: 150.0, ..Default::default() }).unwrap();
/// let bad = mm_trace::TraceConfig { sample_rate: 2.0, ..Default::default() };
/// assert!(mm_trace::init(bad).unwrap_err().to_string().contains("trace.sample_rate = 2"));
/// ```
///
/// With `trace.otlp` set, the `OTEL_EXPORTER_OTLP_*` and `OTEL_SERVICE_NAME` variables that fill
/// what it leaves unset are checked too (a malformed one is an error naming it). Built without
/// feature `otlp`, such a config exports nothing and says so once on stderr.
pub fn init(config: TraceConfig) -> Result<(), Error> {
    config.validate()?;
    #[cfg(feature = "otlp")]
    config.otlp_target()?;
    #[cfg(all(feature = "enabled", not(feature = "otlp")))]
    if config.otlp.is_some() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            eprintln!(
                "mm-trace: trace.otlp is set but mm-trace was built without its `otlp` feature: nothing is exported"
            )
        });
    }
    imp::init(&config);
    Ok(())
}

/// Flushes pending traces, exports the kept ticks still queued for OTLP (feature `otlp`; waiting
/// at most `trace.otlp.timeout_ms`, after which what is left is counted in
/// `Health::otlp_failed_ticks`) and writes the profile if `profile_on_shutdown` is set.
pub fn shutdown() -> Result<(), Error> {
    imp::flush();
    #[cfg(all(feature = "otlp", feature = "enabled"))]
    crate::export::otlp::shutdown();
    if let Some(path) = imp::config().profile_on_shutdown {
        super::exporters::write_profile(path)?;
    }
    Ok(())
}

/// Clears all collected data (a new measurement window). Tick ids restart at 1.
pub fn reset() {
    imp::reset()
}

/// Waits until every kept trace has been processed (golden files written, ring updated).
pub fn flush() {
    imp::flush()
}

/// Turns recording on or off at run time, on every thread, without a restart.
pub fn set_enabled(on: bool) {
    imp::set_enabled(on)
}

/// Whether recording is on.
pub fn is_enabled() -> bool {
    imp::is_enabled()
}

/// Changes the share of ticks traced in detail at run time.
///
/// ```
/// assert!(mm_trace::set_sample_rate(0.5).is_ok());
/// let err = mm_trace::set_sample_rate(1.5).unwrap_err();
/// assert_eq!(err.to_string(), "sample rate 1.5 is out of range: allowed 0.0 to 1.0");
/// ```
pub fn set_sample_rate(rate: f64) -> Result<(), Error> {
    if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
        return Err(Error::InvalidArgument(format!("sample rate {rate} is out of range: allowed 0.0 to 1.0")));
    }
    imp::set_sample_rate(rate);
    Ok(())
}

/// A deterministic clock for golden tests: every clock read advances a global counter by a
/// fixed step, so the same program records the same nanoseconds on every run.
///
/// ```
/// mm_trace::test_clock::install(1_000);
/// // ... run ticks: every span lasts a whole number of steps ...
/// mm_trace::test_clock::uninstall();
/// ```
pub mod test_clock {
    /// Switches all threads to the test clock, starting at 0, advancing `step_ns` per read.
    ///
    /// Traces still queued are written first, so none of them is converted with the wrong clock.
    pub fn install(step_ns: u64) {
        crate::imp::flush();
        crate::imp::test_clock_install(step_ns)
    }

    /// Moves the test clock forward by `ns` (simulated work or sleep).
    pub fn advance(ns: u64) {
        crate::imp::test_clock_advance(ns)
    }

    /// Returns to the real clock, after writing the traces recorded with the test clock (the
    /// trace worker converts readings to nanoseconds with the clock in force when it writes).
    pub fn uninstall() {
        crate::imp::flush();
        crate::imp::test_clock_uninstall()
    }

    /// For simulations that sleep a scaled-down time (e.g. 0.1 ms per simulated ms): every
    /// duration recorded afterwards is real time divided by `scale`, so histograms, deadlines,
    /// traces and exports read in simulated time. `1.0` (the default) is real time. Folded into
    /// the clock's conversion factor: no cost per span.
    ///
    /// ```
    /// mm_trace::test_clock::set_time_scale(0.1).unwrap(); // 1 real ms records as 10 ms
    /// mm_trace::test_clock::set_time_scale(1.0).unwrap();
    /// assert!(mm_trace::test_clock::set_time_scale(0.0).is_err());
    /// ```
    pub fn set_time_scale(scale: f64) -> Result<(), crate::error::Error> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(crate::error::Error::InvalidArgument(format!(
                "time scale must be a finite number > 0 (1.0 = real time), got {scale}"
            )));
        }
        #[cfg(feature = "enabled")]
        crate::clock::set_time_scale(scale);
        Ok(())
    }
}

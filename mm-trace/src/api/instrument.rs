//! Instrument: the events a loop reports besides its spans (guard trips, the parallel-symbols
//! gauge, partial failures, annotations), and the stage macros that are not attributes.

use crate::imp;

/// Counts one trip of a risk guard, by reason (label `reason` of `mm_guard_trips_total`).
pub fn guard_trip(reason: &str) {
    imp::guard_trip(reason)
}

/// Sets the `mm_parallel_symbols` gauge.
pub fn set_parallel_symbols(n: usize) {
    imp::set_parallel_symbols(n)
}

/// Marks the current tick as partially failed (some symbols failed).
pub fn partial_fail() {
    imp::partial_fail()
}

/// Adds `key = value` to the current tick's trace (kept only if the trace is kept), up to
/// `max_annotations_per_tick` per tick; past it the annotation is counted in
/// [`Health::annotations_dropped`](crate::Health::annotations_dropped). `value` is formatted only when the annotation is kept, so a
/// tick that cannot keep a trace (unsampled with slow-tick capture off, or no tick) pays nothing.
pub fn annotate(key: &str, value: impl std::fmt::Display) {
    imp::annotate(key, &value)
}

/// The W3C `traceparent` of the span open on this thread, to put on outgoing requests so the
/// receiving service joins this tick's trace; `None` outside a tick (and compiled out).
///
/// ```
/// #[mm_trace::traced_tick]
/// fn tick() -> Option<String> {
///     mm_trace::traceparent()
/// }
/// assert_eq!(mm_trace::traceparent(), None);
/// # #[cfg(feature = "enabled")] {
/// let tp = tick().unwrap();
/// assert_eq!(tp.len(), 55);
/// assert!(tp.starts_with("00-"));
/// # }
/// ```
pub fn traceparent() -> Option<String> {
    imp::traceparent()
}

/// The id of the tick running on this thread, if any.
pub fn current_tick_id() -> Option<u64> {
    imp::current_tick_id()
}

/// Times an expression as a stage: `in_stage!("spread", { ... })` evaluates to the block's value.
///
/// ```
/// let v = mm_trace::in_stage!("spread", { 40 + 2 });
/// assert_eq!(v, 42);
/// ```
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! in_stage {
    // A block's statements are spliced after the guard, so `{ ... }` raises no `unused_braces`
    // and `.await`, `?` and `return` inside keep their meaning.
    ($name:literal, { $($body:tt)* } $(,)?) => {{
        $crate::stage_guard!($name);
        $($body)*
    }};
    ($name:literal, $body:expr $(,)?) => {{
        $crate::stage_guard!($name);
        $body
    }};
    ($($other:tt)*) => {
        ::core::compile_error!(
            "in_stage! takes a string literal name and an expression: write in_stage!(\"spread\", { ... })"
        )
    };
}

/// Times an expression as a stage (compiled out: the bare expression).
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! in_stage {
    ($name:literal, { $($body:tt)* } $(,)?) => {{
        const _: () = $crate::__private::check_stage_name($name);
        $($body)*
    }};
    ($name:literal, $body:expr $(,)?) => {{
        const _: () = $crate::__private::check_stage_name($name);
        $body
    }};
    ($($other:tt)*) => {
        ::core::compile_error!(
            "in_stage! takes a string literal name and an expression: write in_stage!(\"spread\", { ... })"
        )
    };
}

/// Times the rest of the enclosing block as a stage: `stage_guard!("guards");`, a statement.
///
/// The guard is a hidden local of the block, closed at its end (also during unwinding), so it
/// cannot be dropped by accident: `let _ = stage_guard!("guards");`, which would time nothing,
/// does not compile. For a section that ends before the block does, use [`in_stage!`].
///
/// ```
/// fn guards() {
///     mm_trace::stage_guard!("guards");
///     // ... checked until the end of the scope ...
/// }
/// guards();
/// ```
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! stage_guard {
    // A statement: the guard is a hidden local of the enclosing block, so nothing can drop it
    // early (`let _ = stage_guard!(..)` does not compile, instead of timing nothing).
    ($name:literal $(,)?) => {
        let __mm_stage_guard = {
            const _: () = $crate::__private::check_stage_name($name);
            static __MM_SITE: $crate::__private::Site = $crate::__private::Site::stage($name);
            $crate::__private::StageGuard::enter_stage(&__MM_SITE)
        };
    };
    ($($other:tt)*) => {
        ::core::compile_error!(
            "stage_guard! takes a string literal name: write stage_guard!(\"guards\"); as a statement"
        );
    };
}

/// A stage guard (compiled out: a zero-sized value).
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! stage_guard {
    ($name:literal $(,)?) => {
        let __mm_stage_guard = {
            const _: () = $crate::__private::check_stage_name($name);
            $crate::__private::NoopGuard
        };
    };
    ($($other:tt)*) => {
        ::core::compile_error!(
            "stage_guard! takes a string literal name: write stage_guard!(\"guards\"); as a statement"
        );
    };
}

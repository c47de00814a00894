//! The atomics of the collector's hand-written lock-free structures, behind one facade.
//!
//! `collector::lockfree::{registry, reasons, chunks, trace_ring}`
//! reach atomics only through `crate::sync` and use nothing else from the crate, so
//! `tests/loom.rs` compiles the very same source files (with `#[path]`) against its own `mod sync`
//! that re-exports loom's atomics: the model checks the code that ships, not a copy of it.
//!
//! Loom's atomics have no `const` constructors, so what must be `const` here (the constructors
//! of the structures that live in `static`s) goes through [`const_fn!`] and [`array!`]; the loom
//! facade defines both as their non-`const` equivalents.

pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Defines a `const fn` (the loom facade defines a plain `fn` with the same signature and body).
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident $($rest:tt)*) => {
        $(#[$attr])* $vis const fn $name $($rest)*
    };
}
pub(crate) use const_fn;

/// `[value; n]` for a value that is not `Copy` (each element is a fresh `value`), usable in a
/// `const fn` (the loom facade builds the array at run time).
macro_rules! array {
    ($value:expr; $n:expr) => {
        [const { $value }; $n]
    };
}
pub(crate) use array;

/// `std::cell::UnsafeCell` with the closure API of `loom::cell::UnsafeCell` (which the loom facade
/// re-exports instead), so that loom can check every access of the structures that use it.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer for reading.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a pointer for writing.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

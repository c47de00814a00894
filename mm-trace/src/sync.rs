//! The atomics of the collector's hand-written lock-free structures, behind one facade.
//!
//! `collector::registry`, `collector::reasons`, `collector::chunks` and `collector::node_stack`
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

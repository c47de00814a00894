//! The collector's hand-written lock-free structures.
//!
//! The rule of this folder: its files reach atomics and cells only through the `crate::sync`
//! facade and use nothing else from the crate, so `tests/loom.rs` compiles these very files
//! against loom and model-checks the code that ships. A structure that needs anything else from
//! the crate belongs outside this folder.
//!
//! - [`registry`]: the registry of per-thread data slots (claim, release, reuse, iterate).
//! - [`reasons`]: the guard-trip reason table with its cardinality cap.
//! - [`chunks`]: the stack of span chunks that carried work pushes into its tick.
//! - [`trace_ring`]: a thread's single-producer single-consumer ring of kept traces.

pub(crate) mod chunks;
pub(crate) mod reasons;
pub(crate) mod registry;
pub(crate) mod trace_ring;
#[cfg(test)]
mod trace_ring_tests;

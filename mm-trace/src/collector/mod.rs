//! The collector: the hot path (spans, ticks, carried contexts), the per-thread data it records
//! into, the trace worker, and the merged view readers get. docs/ARCHITECTURE.md walks one
//! stage's timestamp through these files.
//!
//! From the bottom up (each file uses only files above it in this list, never one below):
//!
//! | file | what it holds |
//! |---|---|
//! | `lockfree/` | the loom-checked lock-free structures (they use only `crate::sync`) |
//! | `outcome` | what counts as a failed outcome (`Err`) of an instrumented function |
//! | `switches` | the global switches every span reads (defaults hold before `init`) |
//! | `trace_ids` | W3C trace and span ids, `traceparent` in and out |
//! | `labels`, `keys`, `tick_kinds`, `site`, `labeled` | the guard-reason table; metric keys; named tick kinds' deadlines; call-site statics (`Site`); sites of run-time label values |
//! | `counters` | where the counters of `crate::health`'s table are counted |
//! | `trace_record` | a kept tick as the tick thread writes it and the worker reads it |
//! | `thread_data` | per-thread data (cells, counters, trace ring) and the thread registry |
//! | `tick_state` | the state of a running tick (`Mode`, `SpanOpening`, `TickState`, `Shared`) |
//! | `local` | the thread-local state and the one way to reach it |
//! | `span` | stage spans (`StageGuard`, `Instrumented`) and the rule of what a span records |
//! | `context`, `events` | carried tick contexts; events on the current tick |
//! | `calibration` | the span-cost measurement |
//! | `trace_convert`, `exemplars`, `worker` | raw record to `TickTrace`; the latest kept span per Prometheus bucket; the background trace worker |
//! | `tick` | ticks (`TickGuard`, `TickFuture`): begin, end, hand the kept trace to the worker |
//! | `bridge` | feature `tracing`: the narrow hook the `tracing` layer drives spans, carried lanes and ticks through |
//! | `setup`, `merged` | the configuration in force; the merged `Summary` and `reset` |

#[cfg(feature = "tracing")]
pub(crate) mod bridge;
mod calibration;
pub(crate) mod context;
mod counters;
pub(crate) mod events;
pub(crate) mod exemplars;
mod keys;
pub(crate) mod labeled;
pub(crate) mod labels;
mod local;
mod lockfree;
pub(crate) mod merged;
pub(crate) mod outcome;
pub(crate) mod setup;
pub(crate) mod site;
pub(crate) mod span;
mod switches;
mod thread_data;
pub(crate) mod tick;
pub(crate) mod tick_kinds;
mod tick_state;
mod trace_convert;
pub(crate) mod trace_ids;
mod trace_record;
pub(crate) mod worker;

pub(crate) use switches::PARALLEL_SYMBOLS;

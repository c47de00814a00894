//! Exporters: Prometheus text, perf profile JSON, golden traces, Chrome trace events.
//!
//! Every exporter is a pure function of collected data ([`crate::Summary`],
//! [`crate::TickTrace`]), so they work unchanged when instrumentation is compiled out.

pub(crate) mod json;

//! The mm-trace workspace's own package: the demo market-making bot (`mm-bot`), integration
//! tests, UI tests and benches.

pub mod demo;

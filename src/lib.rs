//! The mm-trace workspace's own package: the demo market-making bot (`mm-bot`), integration
//! tests, UI tests and benches.

pub mod demo;

/// Every Rust block of README.md is compiled and run as a doc test, so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

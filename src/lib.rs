//! The mm-trace workspace's own package: the demo bot, integration tests, UI tests and benches.

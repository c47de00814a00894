//! `perf-gate`: see `perf-gate --help` and `docs/PERF_GATE.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    perf_gate::run(std::env::args_os())
}

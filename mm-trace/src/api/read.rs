//! Read what was collected: the merged summary and the recent kept traces.

use crate::imp;
use crate::summary::{Summary, TickTrace};

/// Everything collected since start or the last [`reset`](crate::reset()), merged over all threads.
pub fn summary() -> Summary {
    imp::summary()
}

/// The most recent kept traces (up to `chrome_ring_ticks`), oldest first.
pub fn recent_traces() -> Vec<TickTrace> {
    imp::recent_traces()
}

/// Trace files (golden and slow) written since start or the last reset, in order.
pub fn trace_files_written() -> Vec<std::path::PathBuf> {
    imp::trace_files_written()
}

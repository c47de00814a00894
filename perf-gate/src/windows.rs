//! Per-window quantiles for a profile: how much each stage's quantiles wander inside one run.
//!
//! A benchmark marks the end of each window with [`Recorder::mark`] (for example every tenth of
//! its ticks) and, after `mm_trace::write_profile`, adds the windows to the written file with
//! [`Recorder::add_to_profile`]. perf-gate reads them to estimate run-to-run noise when a side
//! has a single run (see `docs/PERF_GATE.md`, "One run per side").
//!
//! ```no_run
//! let mut windows = perf_gate::windows::Recorder::new();
//! for i in 0..1000 {
//!     // tick();
//!     if (i + 1) % 100 == 0 {
//!         mm_trace::flush();
//!         windows.mark(&mm_trace::summary());
//!     }
//! }
//! mm_trace::write_profile("perf_profile.json").unwrap();
//! windows.add_to_profile("perf_profile.json".as_ref()).unwrap();
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use mm_trace::profile::{Profile, WindowProfile, WindowStage, quantile_ns};
use mm_trace::{HistogramSnapshot, Summary};

use crate::profile::InputError;

/// Records the windows of one run from successive summaries.
#[derive(Debug, Default)]
pub struct Recorder {
    ticks: u64,
    last: BTreeMap<String, HistogramSnapshot>,
    windows: Vec<WindowProfile>,
}

impl Recorder {
    /// A recorder with no window yet (the run starts from a reset collector).
    pub fn new() -> Self {
        Recorder::default()
    }

    /// Ends a window: what `summary` holds beyond the previous mark.
    pub fn mark(&mut self, summary: &Summary) {
        let mut window = WindowProfile { ticks: summary.ticks.saturating_sub(self.ticks), stages: BTreeMap::new() };
        for stage in &summary.stages {
            let before = self.last.get(&stage.name);
            let old: BTreeMap<(u64, u64), u64> =
                before.map(|h| h.buckets().map(|(l, u, c)| ((l, u), c)).collect()).unwrap_or_default();
            let delta: Vec<(u64, u64, u64)> = stage
                .histogram
                .buckets()
                .map(|(l, u, c)| (l, u, c.saturating_sub(old.get(&(l, u)).copied().unwrap_or(0))))
                .filter(|b| b.2 > 0)
                .collect();
            let count: u64 = delta.iter().map(|b| b.2).sum();
            if let Some(&(_, upper, _)) = delta.last() {
                let max_ns = stage.histogram.max_ns().min(upper.saturating_sub(1));
                let q = |q: f64| quantile_ns(delta.iter().copied(), count, max_ns, q) / 1e6;
                let entry = WindowStage { count, p50_ms: q(0.50), p95_ms: q(0.95), p99_ms: q(0.99) };
                window.stages.insert(stage.name.clone(), entry);
            }
            self.last.insert(stage.name.clone(), stage.histogram.clone());
        }
        self.ticks = summary.ticks;
        if window.ticks > 0 {
            self.windows.push(window);
        }
    }

    /// The windows marked so far.
    pub fn windows(&self) -> &[WindowProfile] {
        &self.windows
    }

    /// Adds the windows to the profile at `path` (written by `mm_trace::write_profile`),
    /// replacing the file atomically.
    pub fn add_to_profile(&self, path: &Path) -> Result<(), InputError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| InputError::new(&shown, e.to_string()))?;
        let mut doc: Profile = serde_json::from_str(&text)
            .map_err(|e| InputError::new(&shown, format!("does not match the profile schema: {e}")))?;
        doc.windows = self.windows.clone();
        let mut out = serde_json::to_string_pretty(&doc).map_err(|e| InputError::new(&shown, e.to_string()))?;
        out.push('\n');
        mm_trace::fs::write_file(path, &out).map_err(|e| InputError::new(&shown, e.to_string()))
    }
}

//! What `hot_path` (criterion) and `perf_probe` (callgrind) both measure: the same sites, the
//! same spans per tick and the same configurations, so their figures describe one workload.

use mm_trace::__private::Site;
use mm_trace::TraceConfig;

pub static TICK: Site = Site::tick("tick");
pub static STAGE: Site = Site::stage("fetch_md");
/// The five stages of a tick.
pub static WORK: [Site; 5] =
    [Site::stage("fetch_md"), Site::stage("spread"), Site::stage("guards"), Site::stage("quote"), Site::stage("emit")];

/// Spans per tick in the span cases: well under the default cap of 4096 spans per trace.
pub const SPANS_PER_TICK: u64 = 1000;

/// Re-initialises the collector for one case and clears what earlier cases recorded.
pub fn configure(enabled: bool, sample_rate: f64, capture_slow_ticks: bool) {
    mm_trace::init(TraceConfig {
        enabled,
        sample_rate,
        capture_slow_ticks,
        export_golden: false,
        ..Default::default()
    })
    .expect("valid config");
    mm_trace::reset();
}

//! Tail capture: every tick that misses its deadline keeps its trace, sampled or not; nothing
//! else does; the rate limit bounds disk and memory under a flood of slow ticks.

use std::sync::Mutex;
use std::time::Duration;

use mm_trace::__private::{Site, TickGuard};
use mm_trace::{KeepReason, TraceConfig};

static SERIAL: Mutex<()> = Mutex::new(());
static TICK: Site = Site::tick("tick");

fn setup(cfg: TraceConfig) -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(cfg).unwrap();
    mm_trace::set_enabled(true);
    mm_trace::reset();
    g
}

fn tick(sleep_ms: u64) -> u64 {
    let _t = TickGuard::begin(&TICK);
    let _s = mm_trace::stage_guard!("work");
    std::thread::sleep(Duration::from_millis(sleep_ms));
    mm_trace::current_tick_id().unwrap()
}

#[test]
fn every_slow_tick_has_a_trace_and_no_fast_one_does() {
    let dir = std::env::temp_dir().join(format!("mm-slow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _g = setup(TraceConfig {
        sample_rate: 0.0,
        deadline_ms: 5.0,
        capture_slow_ticks: true,
        slow_ticks_per_sec: 1000,
        chrome_ring_ticks: 100,
        export_golden: true,
        golden_dir: dir.clone(),
        ..Default::default()
    });
    let mut slow = Vec::new();
    let mut fast = Vec::new();
    for i in 0..20 {
        if i % 3 == 0 { slow.push(tick(12)) } else { fast.push(tick(0)) }
    }
    let kept = mm_trace::recent_traces();
    let kept_ids: Vec<u64> = kept.iter().map(|t| t.tick_id).collect();
    assert_eq!(kept_ids, slow, "exactly the slow ticks are kept");
    assert!(kept.iter().all(|t| t.reason == KeepReason::Slow && t.deadline_missed));
    assert!(kept.iter().all(|t| t.spans.iter().any(|s| s.name == "work")), "full span tree kept");
    let s = mm_trace::summary();
    assert_eq!(s.deadline_misses, slow.len() as u64);
    assert_eq!(s.health.slow_ticks_kept, slow.len() as u64);
    assert!(s.stage("work").is_none(), "unsampled slow ticks do not feed stage histograms");
    assert_eq!(s.stage("tick_total").unwrap().count, 20);
    let mut files: Vec<String> =
        mm_trace::trace_files_written().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    files.sort();
    let mut want: Vec<String> = slow.iter().map(|id| format!("slow_trace_{id}.json")).collect();
    want.sort();
    assert_eq!(files, want, "files say why they were kept");
    let text = std::fs::read_to_string(dir.join(&want[0])).unwrap();
    assert!(text.contains("\"reason\": \"slow\""), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_capture_off_slow_unsampled_ticks_are_not_kept() {
    let _g = setup(TraceConfig {
        sample_rate: 0.0,
        deadline_ms: 1.0,
        capture_slow_ticks: false,
        export_golden: false,
        ..Default::default()
    });
    tick(3);
    assert!(mm_trace::recent_traces().is_empty());
    assert_eq!(mm_trace::summary().deadline_misses, 1);
}

#[test]
fn a_flood_of_slow_ticks_is_rate_limited_and_bounded() {
    let _g = setup(TraceConfig {
        sample_rate: 0.0,
        deadline_ms: 0.001,
        slow_ticks_per_sec: 5,
        chrome_ring_ticks: 8,
        export_golden: false,
        ..Default::default()
    });
    for _ in 0..2000 {
        let _t = TickGuard::begin(&TICK);
        for _ in 0..10 {
            let _s = mm_trace::stage_guard!("work");
        }
        std::hint::black_box(std::time::Instant::now());
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_micros(2) {}
    }
    mm_trace::flush();
    let s = mm_trace::summary();
    assert_eq!(s.deadline_misses, 2000);
    let kept = mm_trace::recent_traces();
    assert!(kept.len() <= 8, "ring bounded: {}", kept.len());
    let limited = s.health.slow_ticks_rate_limited + s.health.traces_dropped;
    assert!(limited >= 2000 - 5 * 3, "rate limit applied: {:?}", s.health);
}

#[test]
fn quantile_rule_keeps_ticks_above_recent_p99() {
    let _g = setup(TraceConfig {
        sample_rate: 0.0,
        deadline_ms: 1000.0,
        slow_tick_quantile: Some(0.99),
        slow_ticks_per_sec: 1000,
        export_golden: false,
        chrome_ring_ticks: 64,
        ..Default::default()
    });
    // Teach the window what normal looks like (the worker refreshes the threshold each second).
    let until = std::time::Instant::now() + Duration::from_millis(2300);
    while std::time::Instant::now() < until {
        tick(1);
    }
    let outlier = tick(40);
    mm_trace::flush();
    let kept = mm_trace::recent_traces();
    assert!(kept.iter().any(|t| t.tick_id == outlier && t.reason == KeepReason::Slow && !t.deadline_missed));
}

/// Bug 4: trace files are written to a temporary file and renamed into place, so a reader
/// never sees half a file. Observable: an existing symlink at the path is replaced, not
/// written through, and no temporary file is left behind.
#[cfg(unix)]
#[test]
fn bug4_trace_files_are_written_by_rename() {
    let dir = std::env::temp_dir().join(format!("mm-bug4-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "victim").unwrap();
    let _g = setup(TraceConfig {
        sample_rate: 1.0,
        export_golden: true,
        golden_trace_interval: 1,
        golden_dir: dir.clone(),
        ..Default::default()
    });
    let golden = dir.join("golden_trace_1.json");
    std::os::unix::fs::symlink(&victim, &golden).unwrap();
    assert_eq!(tick(0), 1);
    let _ = mm_trace::recent_traces(); // waits for the worker
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim", "written through the old file");
    let meta = std::fs::symlink_metadata(&golden).unwrap();
    assert!(meta.is_file(), "the trace file replaced the old one");
    let text = std::fs::read_to_string(&golden).unwrap();
    assert!(text.contains("\"tick_id\""), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    mm_trace::init(TraceConfig { export_golden: false, ..Default::default() }).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

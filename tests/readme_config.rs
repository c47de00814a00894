//! The README's `config.yaml` examples are valid configs with the documented values and defaults.

use mm_trace::TraceConfig;
use mm_trace::histogram::PROMETHEUS_BOUNDS_MS;

/// The body of the README's first ```yaml block that starts with `start`.
fn readme_yaml_block(start: &str) -> String {
    let readme = include_str!("../README.md");
    let open = format!("```yaml\n{start}");
    let at = readme.find(&open).unwrap_or_else(|| panic!("README has a ```yaml block starting with {start:?}"));
    let body = &readme[at + "```yaml\n".len()..];
    body[..body.find("```").expect("closed block")].to_owned()
}

#[test]
fn readme_config_example_parses_with_the_values_it_shows() {
    let cfg = TraceConfig::from_yaml_str(&readme_yaml_block("trace:")).expect("README config is valid");
    let defaults = TraceConfig::default();
    assert!(cfg.enabled);
    assert_eq!(cfg.sample_rate, 0.2);
    assert_eq!(cfg.deadline_ms, 200.0);
    assert!(cfg.export_golden);
    assert_eq!(cfg.golden_trace_interval, 100);
    assert_eq!(cfg.golden_dir, std::path::PathBuf::from("artifacts/traces"));
    assert!(cfg.capture_slow_ticks);
    // The README shows the defaults for these: keep them in step with `TraceConfig::default()`.
    assert_eq!(cfg.slow_tick_quantile, defaults.slow_tick_quantile);
    assert_eq!(cfg.slow_ticks_per_sec, defaults.slow_ticks_per_sec);
    assert_eq!(cfg.max_spans_per_tick, defaults.max_spans_per_tick);
    assert_eq!(cfg.max_annotations_per_tick, defaults.max_annotations_per_tick);
    assert_eq!(cfg.label_cardinality_cap, defaults.label_cardinality_cap);
    assert_eq!(cfg.prometheus_buckets_ms, defaults.prometheus_buckets_ms);
    assert_eq!(cfg, defaults, "the block shows the defaults");
}

/// The scraping section's `prometheus_buckets_ms` example: valid, the default grid over 0.05 ms
/// to 14 ms (neighbours within 20%), and the series count it states.
#[test]
fn readme_bucket_example_is_the_default_grid_over_the_loop() {
    let yaml = readme_yaml_block("# config.yaml of a loop with a 6 ms deadline");
    let cfg = TraceConfig::from_yaml_str(&yaml).expect("README bucket example is valid");
    assert_eq!(cfg.deadline_ms, 6.0);
    let bounds = cfg.prometheus_buckets_ms.expect("the example sets prometheus_buckets_ms");
    for b in &bounds {
        assert!(PROMETHEUS_BOUNDS_MS.contains(b), "{b} is not a default bound");
    }
    let dense: Vec<f64> = PROMETHEUS_BOUNDS_MS.iter().copied().filter(|b| (0.05..=14.0).contains(b)).collect();
    assert!(dense.iter().all(|b| bounds.contains(b)), "the example keeps the whole grid from 0.05 to 14 ms");
    let series = bounds.len() + 3;
    assert!(yaml.contains(&format!("{series} series per stage")), "{yaml}");
}

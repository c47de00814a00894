//! The README's `config.yaml` example is a valid config with the documented values and defaults.

use mm_trace::TraceConfig;

fn readme_config_block() -> String {
    let readme = include_str!("../README.md");
    let start = readme.find("```yaml\ntrace:").expect("README has a ```yaml block starting with `trace:`");
    let body = &readme[start + "```yaml\n".len()..];
    body[..body.find("```").expect("closed block")].to_owned()
}

#[test]
fn readme_config_example_parses_with_the_values_it_shows() {
    let cfg = TraceConfig::from_yaml_str(&readme_config_block()).expect("README config is valid");
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
}

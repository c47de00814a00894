//! The configuration's parser and checks.
use super::*;

#[test]
fn defaults_and_other_sections_ignored() {
    let cfg = TraceConfig::from_yaml_str("bot:\n  symbols: [A, B]\ntrace:\n  sample_rate: 0.2\n").unwrap();
    assert_eq!(cfg, TraceConfig::default());
    // An empty `trace:` section (null) or an empty mapping: the defaults.
    for yaml in ["trace:\n", "trace: {}\n", "bot: 1\ntrace:\n", "trace: ~\n"] {
        assert_eq!(TraceConfig::from_yaml_str(yaml).unwrap(), TraceConfig::default(), "{yaml:?}");
    }
}

/// Issue "Fit users' loops, not the demo's": a misspelt or missing `trace` section silently
/// gave the defaults (a 200 ms deadline for a 6 ms loop); now it is an error naming the keys
/// found, suggesting `trace` for a near miss.
mod issue_fit_users_loops {
    use super::*;

    fn missing(yaml: &str) -> (String, Vec<String>, Option<String>) {
        match TraceConfig::from_yaml_str(yaml) {
            Err(e @ ConfigError::MissingSection { .. }) => {
                let msg = e.to_string();
                let ConfigError::MissingSection { found, near_miss, .. } = e else { unreachable!() };
                (msg, found, near_miss)
            }
            other => panic!("{yaml:?}: expected MissingSection, got {other:?}"),
        }
    }

    #[test]
    fn misspelt_trace_section_is_an_error_suggesting_trace() {
        for (yaml, key) in [
            ("traec:\n  sample_rate: 0.5\n", "traec"),
            ("Trace:\n  deadline_ms: 6\n", "Trace"),
            ("bot:\n  symbols: [A]\nTRACE: {}\n", "TRACE"),
            ("bot: {}\ntraces:\n  enabled: true\n", "traces"),
            ("trac:\n  enabled: true\n", "trac"),
        ] {
            let (msg, found, near_miss) = missing(yaml);
            assert_eq!(near_miss.as_deref(), Some(key), "{yaml:?}");
            assert!(found.contains(&key.to_owned()), "{found:?}");
            assert!(msg.starts_with("<yaml>: no `trace:` section; found top-level keys "), "{msg}");
            assert!(msg.contains(&format!("`{key}`: did you mean `trace`?")), "{msg}");
            assert!(msg.contains("an empty `trace:` or `trace: {}` gives the defaults"), "{msg}");
        }
        let (msg, _, _) = missing("bot:\n  symbols: [A]\ntraec:\n  sample_rate: 0.5\n");
        assert_eq!(
            msg,
            "<yaml>: no `trace:` section; found top-level keys `bot`, `traec`: did you mean `trace`? \
             (only the `trace:` section is read, so `traec` is ignored; an empty `trace:` or `trace: {}` \
             gives the defaults)"
        );
    }

    #[test]
    fn no_trace_section_is_an_error_naming_what_was_found() {
        let (msg, found, near_miss) = missing("bot:\n  symbols: [A, B]\nexchange:\n  venue: x\n");
        assert_eq!(found, ["bot", "exchange"]);
        assert_eq!(near_miss, None);
        assert_eq!(
            msg,
            "<yaml>: no `trace:` section; found top-level keys `bot`, `exchange`: add a `trace:` section \
             (an empty `trace:` or `trace: {}` gives the defaults; other sections are ignored)"
        );
        for empty in ["", "\n", "# only a comment\n", "---\n"] {
            let (msg, found, _) = missing(empty);
            assert!(found.is_empty());
            assert_eq!(
                msg,
                "<yaml>: no `trace:` section (the document is empty): add a `trace:` section \
                 (an empty `trace:` or `trace: {}` gives the defaults)",
                "{empty:?}"
            );
        }
        let (msg, found, _) = missing("{}\n");
        assert!(found.is_empty() && msg.contains("add a `trace:` section"), "{msg}");
        // Not a key anyone would take for `trace`: no suggestion.
        assert_eq!(missing("tracing: {}\nbot: 1\n").2, None);
        let path = std::env::temp_dir().join(format!("mm-trace-config-{}.yaml", std::process::id()));
        std::fs::write(&path, "Trace:\n  sample_rate: 0.5\n").unwrap();
        let e = TraceConfig::from_yaml_file(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(e.to_string().starts_with(&format!("{}: no `trace:` section", path.display())), "{e}");
    }

    #[test]
    fn unknown_keys_get_did_you_mean() {
        for (key, want) in [
            ("sample_rat", "sample_rate"),
            ("Sample_Rate", "sample_rate"),
            ("samplerate", "sample_rate"),
            ("deadline", "deadline_ms"),
            ("dedline_ms", "deadline_ms"),
            ("enable", "enabled"),
            ("golden_dri", "golden_dir"),
            ("prometheus_bucket_ms", "prometheus_buckets_ms"),
            ("max_spans", "max_spans_per_tick"),
        ] {
            let e = TraceConfig::from_yaml_str(&format!("trace:\n  {key}: 1\n")).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!(
                    "<yaml>: trace.{key} = 1: unknown key; did you mean `{want}`? allowed keys: enabled, sample_rate, "
                )),
                "{key}: {msg}"
            );
        }
        let e = TraceConfig::from_yaml_str("trace:\n  colour: red\n").unwrap_err();
        assert!(e.to_string().contains("trace.colour = \"red\": unknown key; allowed keys: enabled,"), "{e}");
    }

    #[test]
    fn debug_reads_like_display() {
        let errors = [
            TraceConfig::from_yaml_str("traec: {}\n").unwrap_err(),
            TraceConfig::from_yaml_str("trace:\n  sample_rate: 2\n  colour: red\n").unwrap_err(),
            TraceConfig::from_yaml_str("trace: [1, 2\n").unwrap_err(),
            TraceConfig::from_yaml_file("/nonexistent/config.yaml").unwrap_err(),
            TraceConfig { deadline_ms: 0.0, ..Default::default() }.validate().unwrap_err(),
        ];
        for e in errors {
            assert_eq!(format!("{e:?}"), e.to_string());
            // What `fn main() -> Result<(), Box<dyn Error>>` prints after `Error: `.
            let boxed: Box<dyn std::error::Error> = Box::new(e);
            assert_eq!(format!("{boxed:?}"), boxed.to_string());
            assert!(!format!("{boxed:?}").contains("Invalid {"), "{boxed:?}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct AppConfig {
        trace: TraceConfig,
        other: String,
    }

    #[test]
    fn trace_config_deserializes_inside_an_application_config() {
        let app: AppConfig =
            serde_norway::from_str("other: x\ntrace:\n  sample_rate: 0.5\n  deadline_ms: 6\n").unwrap();
        assert_eq!(app.other, "x");
        assert_eq!(app.trace, TraceConfig { sample_rate: 0.5, deadline_ms: 6.0, ..Default::default() });
        let app: AppConfig = serde_norway::from_str("other: x\ntrace:\n").unwrap();
        assert_eq!(app.trace, TraceConfig::default());
        let app: AppConfig = serde_json::from_str(
            r#"{"other": "y", "trace": {"prometheus_buckets_ms": [1, 2.5, 6], "enabled": false}}"#,
        )
        .unwrap();
        assert_eq!(app.trace.prometheus_buckets_ms, Some(vec![1.0, 2.5, 6.0]));
        assert!(!app.trace.enabled);

        // A bad value inside: the usual message, as the deserializer's error.
        let e = serde_norway::from_str::<AppConfig>("other: x\ntrace:\n  sample_rate: 1.5\n").unwrap_err();
        assert!(e.to_string().contains("trace.sample_rate = 1.5: must be a number from 0.0 to 1.0"), "{e}");
        let e = serde_json::from_str::<AppConfig>(r#"{"other": "y", "trace": {"sample_rat": 0.5}}"#).unwrap_err();
        assert!(e.to_string().starts_with("trace.sample_rat = 0.5: unknown key; did you mean `sample_rate`?"), "{e}");
        let e = serde_json::from_str::<AppConfig>(r#"{"other": "y", "trace": {"deadline_ms": -1}}"#).unwrap_err();
        assert!(e.to_string().contains("trace.deadline_ms = -1: must be a number of milliseconds above 0"), "{e}");
        let e = serde_json::from_str::<AppConfig>(r#"{"other": "y", "trace": 3}"#).unwrap_err();
        assert!(e.to_string().contains("trace = 3: must be a mapping of trace settings"), "{e}");
        // The application's struct decides whether `trace` may be missing: here it may not.
        let e = serde_json::from_str::<AppConfig>(r#"{"other": "y"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `trace`"), "{e}");
    }

    #[test]
    fn prometheus_buckets_ms_is_read_and_validated() {
        let cfg = TraceConfig::from_yaml_str("trace:\n  prometheus_buckets_ms: [0.05, 0.1, 1, 2.5, 6]\n").unwrap();
        assert_eq!(cfg.prometheus_buckets_ms, Some(vec![0.05, 0.1, 1.0, 2.5, 6.0]));
        let cfg = TraceConfig::from_yaml_str("trace:\n  prometheus_buckets_ms: null\n").unwrap();
        assert_eq!(cfg.prometheus_buckets_ms, None);
        assert_eq!(TraceConfig::default().prometheus_buckets_ms, None);
        for (list, want) in [
            (
                "[1, 5, 2]",
                "trace.prometheus_buckets_ms[2] = 2: must be above the bound before it (5): bounds are strictly increasing",
            ),
            ("[1, 1]", "trace.prometheus_buckets_ms[1] = 1: must be above the bound before it (1)"),
            (
                "[0, 1]",
                "trace.prometheus_buckets_ms[0] = 0: must be a number of milliseconds from 0.000001 (1 ns) to 3600000 (1 h)",
            ),
            ("[-2.5]", "trace.prometheus_buckets_ms[0] = -2.5: must be a number of milliseconds from 0.000001"),
            ("[1, .inf]", "trace.prometheus_buckets_ms[1] = inf: must be a number of milliseconds from"),
            ("[1, .nan]", "trace.prometheus_buckets_ms[1] = NaN: must be a number of milliseconds from"),
            ("[1, 4000000]", "trace.prometheus_buckets_ms[1] = 4000000: must be a number of milliseconds from"),
            ("[1, 2ms]", "trace.prometheus_buckets_ms[1] = \"2ms\": must be a number of milliseconds"),
            ("[]", "trace.prometheus_buckets_ms = a list of 0 bounds: must list 1 to 128 bucket bounds"),
            ("5", "trace.prometheus_buckets_ms = 5: must be a list of bucket upper bounds in milliseconds"),
        ] {
            let e = TraceConfig::from_yaml_str(&format!("trace:\n  prometheus_buckets_ms: {list}\n")).unwrap_err();
            assert!(e.to_string().contains(want), "{list}: {e}");
        }
        let many: Vec<String> = (1..=129).map(|i| i.to_string()).collect();
        let e = TraceConfig::from_yaml_str(&format!("trace:\n  prometheus_buckets_ms: [{}]\n", many.join(", ")))
            .unwrap_err();
        assert!(
            e.to_string().contains("trace.prometheus_buckets_ms = a list of 129 bounds: must list 1 to 128"),
            "{e}"
        );
        let in_code = TraceConfig { prometheus_buckets_ms: Some(vec![2.0, f64::NAN]), ..Default::default() };
        assert!(in_code.validate().unwrap_err().to_string().contains("trace.prometheus_buckets_ms[1] = NaN"));
    }
}

#[test]
fn full_section() {
    let yaml = "trace:\n  enabled: false\n  sample_rate: 1\n  deadline_ms: 150.5\n  export_golden: false\n  golden_trace_interval: 7\n  golden_dir: out/t\n  capture_slow_ticks: false\n  slow_tick_quantile: 0.99\n  slow_ticks_per_sec: 3\n  max_spans_per_tick: 10\n  chrome_ring_ticks: 4\n  label_cardinality_cap: 5\n  prometheus_base_units: true\n  profile_on_shutdown: p.json\n";
    let cfg = TraceConfig::from_yaml_str(yaml).unwrap();
    assert!(!cfg.enabled);
    assert_eq!(cfg.sample_rate, 1.0);
    assert_eq!(cfg.deadline_ms, 150.5);
    assert_eq!(cfg.golden_trace_interval, 7);
    assert_eq!(cfg.golden_dir, PathBuf::from("out/t"));
    assert_eq!(cfg.slow_tick_quantile, Some(0.99));
    assert_eq!(cfg.slow_ticks_per_sec, 3);
    assert_eq!(cfg.max_spans_per_tick, 10);
    assert_eq!(cfg.profile_on_shutdown, Some(PathBuf::from("p.json")));
    assert!(cfg.prometheus_base_units);
}

#[test]
fn every_bad_key_is_named_with_value_and_allowed() {
    let yaml =
        "trace:\n  sample_rate: 1.5\n  deadline_ms: fast\n  golden_trace_interval: 0\n  colour: red\n  enabled: 3\n";
    let err = TraceConfig::from_yaml_str(yaml).unwrap_err();
    let msg = err.to_string();
    for want in [
        "trace.sample_rate = 1.5: must be a number from 0.0 to 1.0",
        "trace.deadline_ms = \"fast\": must be a number",
        "trace.golden_trace_interval = 0: must be a whole number >= 1",
        "trace.colour = \"red\": unknown key; allowed keys: enabled, sample_rate",
        "trace.enabled = 3: must be true or false",
    ] {
        assert!(msg.contains(want), "missing {want:?} in {msg}");
    }
    let ConfigError::Invalid { issues, .. } = err else { panic!("{err:?}") };
    assert_eq!(issues.len(), 5);
}

#[test]
fn syntax_and_shape_errors() {
    let e = TraceConfig::from_yaml_str("trace: [1, 2\n").unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    let e = TraceConfig::from_yaml_str("trace: 5\n").unwrap_err();
    assert!(e.to_string().contains("trace = 5: must be a mapping"), "{e}");
    let e = TraceConfig::from_yaml_str("- a\n- b\n").unwrap_err();
    assert!(e.to_string().contains("must be a mapping with a `trace:` key"), "{e}");
    let e = TraceConfig::from_yaml_file("/nonexistent/config.yaml").unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/config.yaml: cannot read config"), "{e}");
}

#[test]
fn validate_in_code() {
    let bad = TraceConfig { sample_rate: f64::NAN, max_spans_per_tick: 0, ..Default::default() };
    let msg = bad.validate().unwrap_err().to_string();
    assert!(msg.contains("trace.sample_rate = NaN"), "{msg}");
    assert!(msg.contains("trace.max_spans_per_tick = 0"), "{msg}");
}

/// The label tables hold 512 distinct values and give a window at most half: a larger cap
/// was accepted and silently clamped to 256; now it is refused, naming what is allowed.
#[test]
fn label_cardinality_cap_beyond_what_the_tables_hold_is_refused() {
    for (cap, ok) in [(1, true), (256, true), (257, false), (100_000, false), (0, false)] {
        let cfg = TraceConfig { label_cardinality_cap: cap, ..Default::default() };
        match cfg.validate() {
            Ok(()) => assert!(ok, "cap {cap} accepted"),
            Err(e) => {
                assert!(!ok, "cap {cap} refused: {e}");
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("trace.label_cardinality_cap = {cap}: must be a whole number from 1 to 256")),
                    "{msg}"
                );
            }
        }
    }
    let e = TraceConfig::from_yaml_str("trace:\n  label_cardinality_cap: 1000\n").unwrap_err();
    assert!(e.to_string().contains("label_cardinality_cap = 1000"), "{e}");
}

#[test]
fn max_annotations_per_tick_defaults_to_64_and_is_bounded() {
    assert_eq!(TraceConfig::default().max_annotations_per_tick, 64);
    let cfg = TraceConfig::from_yaml_str("trace:\n  max_annotations_per_tick: 0\n").unwrap();
    assert_eq!(cfg.max_annotations_per_tick, 0);
    let e = TraceConfig::from_yaml_str("trace:\n  max_annotations_per_tick: 70000\n").unwrap_err();
    assert!(
        e.to_string().contains("trace.max_annotations_per_tick = 70000: must be a whole number from 0 to 65536"),
        "{e}"
    );
}

#[test]
fn ticks_give_each_named_kind_its_deadline_and_name_every_mistake() {
    let cfg = TraceConfig::from_yaml_str("trace:\n  ticks:\n    router:\n      deadline_ms: 6\n    md: {}\n").unwrap();
    assert_eq!(cfg.ticks["router"].deadline_ms, Some(6.0));
    assert_eq!(cfg.ticks["md"].deadline_ms, None);
    let e = TraceConfig::from_yaml_str(
        "trace:\n  ticks:\n    router:\n      deadline_ms: fast\n    md:\n      deadlin_ms: 3\n    q:\n      deadline_ms: -1\n",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "trace.ticks.router.deadline_ms = \"fast\": must be a number of milliseconds",
        "trace.ticks.md.deadlin_ms = 3: unknown key; did you mean `deadline_ms`?",
        "trace.ticks.q.deadline_ms = -1: must be a number of milliseconds above 0",
    ] {
        assert!(e.contains(want), "missing {want:?} in {e}");
    }
    let e = TraceConfig::from_yaml_str("trace:\n  ticks: [router]\n").unwrap_err().to_string();
    assert!(e.contains("trace.ticks = "), "{e}");
    assert!(e.contains("must be a mapping of tick names"), "{e}");
}

//! Unit tests of `otlp`.

use super::*;

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
}

fn with_otlp(otlp: OtlpConfig) -> TraceConfig {
    TraceConfig { otlp: Some(otlp), ..Default::default() }
}

#[test]
fn otlp_section_is_read_with_defaults_and_every_mistake_named() {
    let yaml = "trace:\n  service_name: mm-bot\n  otlp:\n    endpoint: http://127.0.0.1:4318\n    \
                timeout_ms: 500\n    headers: { api-key: secret }\n    max_queue_ticks: 16\n";
    let cfg = TraceConfig::from_yaml_str(yaml).unwrap();
    assert_eq!(cfg.service_name.as_deref(), Some("mm-bot"));
    let otlp = cfg.otlp.unwrap();
    assert_eq!(otlp.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
    assert_eq!((otlp.timeout_ms, otlp.max_queue_ticks), (Some(500), 16));
    assert_eq!(otlp.headers["api-key"], "secret");
    assert_eq!(TraceConfig::from_yaml_str("trace:\n  otlp:\n").unwrap().otlp, None, "null: no export");
    assert_eq!(TraceConfig::from_yaml_str("trace:\n  otlp: {}\n").unwrap().otlp, Some(OtlpConfig::default()));

    let e = TraceConfig::from_yaml_str(
        "trace:\n  service_name: \"\"\n  otlp:\n    endpont: x\n    timeout_ms: 0\n    max_queue_ticks: -1\n    \
         headers: { \"bad name\": x, Content-Type: y }\n",
    )
    .unwrap_err()
    .to_string();
    for part in [
        "trace.otlp.endpont = \"x\": unknown key; did you mean `endpoint`? allowed keys: endpoint, timeout_ms, \
         headers, max_queue_ticks",
        "trace.otlp.max_queue_ticks = -1: must be a whole number from 1 to 1048576",
        "trace.otlp.timeout_ms = 0: must be a whole number of milliseconds from 1 to 600000",
        "trace.otlp.headers.bad name = \"x\": header name \"bad name\" is not an HTTP token",
        "trace.otlp.headers.Content-Type = \"y\": header Content-Type is set by the exporter itself",
        "trace.service_name = \"\": must be a non-empty name",
    ] {
        assert!(e.contains(part), "missing {part:?} in {e}");
    }
    let e = TraceConfig::from_yaml_str("trace:\n  otlp: http://x\n").unwrap_err().to_string();
    assert!(e.contains("trace.otlp = \"http://x\": must be a mapping of OTLP settings"), "{e}");
    let e = TraceConfig::from_yaml_str("trace:\n  otlpp: {}\n").unwrap_err().to_string();
    assert!(e.contains("did you mean `otlp`?"), "{e}");
    let e = TraceConfig::from_yaml_str("trace:\n  service_nam: x\n").unwrap_err().to_string();
    assert!(e.contains("did you mean `service_name`?"), "{e}");
}

#[test]
fn endpoints_must_be_plain_http_urls() {
    let ok = HttpUrl::parse("http://collector:4318/base/").unwrap();
    assert_eq!((ok.host.as_str(), ok.port, ok.path.as_str()), ("collector", 4318, "/base/"));
    assert_eq!(ok.with_traces_path().path, "/base/v1/traces");
    let v6 = HttpUrl::parse("http://[::1]:4318").unwrap();
    assert_eq!((v6.host.as_str(), v6.port, v6.authority.as_str(), v6.path.as_str()), ("::1", 4318, "[::1]:4318", "/"));
    assert_eq!(HttpUrl::parse("HTTP://h").unwrap().port, 80);
    for (bad, why) in [
        ("https://tempo.example:4318", "https is not supported"),
        ("127.0.0.1:4318", "must be an http:// URL"),
        ("http://:4318", "host is missing"),
        ("http://h:0", "port must be a number"),
        ("http://h:99999", "port must be a number"),
        ("http://user:pw@h:4318", "credentials go into `headers`"),
    ] {
        let e = HttpUrl::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
        let cfg = with_otlp(OtlpConfig { endpoint: Some(bad.into()), ..Default::default() });
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(msg.starts_with(&format!("<in code>: trace.otlp.endpoint = {bad:?}: ")), "{msg}");
    }
}

#[test]
fn the_environment_fills_what_the_config_leaves_unset() {
    let none = env_of(&[]);
    let t = with_otlp(OtlpConfig::default()).otlp_target_with(&none).unwrap().unwrap();
    assert_eq!((t.url.host.as_str(), t.url.port, t.url.path.as_str()), ("localhost", 4318, "/v1/traces"));
    assert_eq!(t.timeout, Duration::from_millis(2000));
    assert_eq!(t.resource[0].0, "service.name");
    assert!(!t.resource[0].1.is_empty(), "the binary's name");
    assert_eq!(TraceConfig::default().otlp_target_with(&none).unwrap(), None, "no otlp: no export");

    // The generic endpoint gets /v1/traces; the traces endpoint is used as is and wins.
    let env = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318/")]);
    assert_eq!(with_otlp(OtlpConfig::default()).otlp_target_with(&env).unwrap().unwrap().url.path, "/v1/traces");
    let env = env_of(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://tempo:4318/custom"),
    ]);
    let t = with_otlp(OtlpConfig::default()).otlp_target_with(&env).unwrap().unwrap();
    assert_eq!((t.url.host.as_str(), t.url.path.as_str()), ("tempo", "/custom"));
    // The config's endpoint wins over both.
    let cfg = with_otlp(OtlpConfig { endpoint: Some("http://127.0.0.1:9999".into()), ..Default::default() });
    let t = cfg.otlp_target_with(&env).unwrap().unwrap();
    assert_eq!((t.url.port, t.url.path.as_str()), (9999, "/v1/traces"));

    // Headers: the config's, then the environment's of other names; values percent-decoded.
    let env = env_of(&[
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=from%20env, x-tenant=a%3Db ,X-Scope=1"),
        ("OTEL_SERVICE_NAME", "bot-from-env"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=ignored"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "750"),
    ]);
    let mut headers = BTreeMap::new();
    headers.insert("Api-Key".to_owned(), "from-config".to_owned());
    let t = with_otlp(OtlpConfig { headers, ..Default::default() }).otlp_target_with(&env).unwrap().unwrap();
    assert_eq!(
        t.headers,
        [("Api-Key".into(), "from-config".into()), ("x-tenant".into(), "a=b".into()), ("X-Scope".into(), "1".into())]
    );
    assert_eq!(t.timeout, Duration::from_millis(750));
    assert_eq!(
        t.resource,
        [("service.name".into(), "bot-from-env".into()), ("deployment.environment".into(), "prod".into())]
    );
    // service.name: config, else OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES, else the binary.
    let cfg = TraceConfig { service_name: Some("cfg-bot".into()), ..with_otlp(OtlpConfig::default()) };
    assert_eq!(cfg.otlp_target_with(&env).unwrap().unwrap().resource[0].1, "cfg-bot");
    let env = env_of(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-list"), ("OTEL_SERVICE_NAME", " ")]);
    assert_eq!(with_otlp(OtlpConfig::default()).otlp_target_with(&env).unwrap().unwrap().resource[0].1, "from-list");
}

#[test]
fn a_malformed_variable_is_an_error_naming_it() {
    for (pairs, part) in [
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel:4318")][..],
            "environment: OTEL_EXPORTER_OTLP_ENDPOINT = \"https://otel:4318\": must be an http:// URL",
        ),
        (&[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")][..], "OTEL_EXPORTER_OTLP_HEADERS = \"novalue\": must be a comma"),
        (&[("OTEL_EXPORTER_OTLP_HEADERS", "a=b%zz")][..], "is not valid percent-encoding"),
        (&[("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")][..], "OTEL_EXPORTER_OTLP_TIMEOUT = \"soon\": must be a whole"),
        (&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")][..], "OTEL_EXPORTER_OTLP_PROTOCOL = \"grpc\": mm-trace exports"),
    ] {
        let list: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let env = move |name: &str| list.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let e = with_otlp(OtlpConfig::default()).otlp_target_with(&env).unwrap_err().to_string();
        assert!(e.contains(part), "{e}");
    }
    // With the endpoint in the config, the protocol variable (meant for other exporters) is moot.
    let env = env_of(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
    let cfg = with_otlp(OtlpConfig { endpoint: Some("http://127.0.0.1:4318".into()), ..Default::default() });
    assert!(cfg.otlp_target_with(&env).is_ok());
}

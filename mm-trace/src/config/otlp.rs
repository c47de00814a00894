//! `trace.otlp` and `trace.service_name`: where kept ticks are exported (feature `otlp`), read
//! and checked like every other key, and the standard OpenTelemetry environment variables that
//! fill in what the config leaves unset (`OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`), as the OpenTelemetry specification describes them.
// Without the feature nothing exports, so only the tests resolve a target.
#![cfg_attr(not(feature = "otlp"), allow(dead_code))]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_norway::Value;

use super::words::{distance_if_near, show};
use super::{ConfigError, ConfigIssue, TraceConfig};

/// OTLP/HTTP export of kept ticks (`trace.otlp`; the export itself needs mm-trace's `otlp`
/// feature). Every kept tick, sampled or slow (and never another), becomes one OTLP trace:
/// a span for the tick and one per stage or exchange request, sent as protobuf to
/// `<endpoint>/v1/traces` from a background thread.
///
/// ```
/// use mm_trace::{OtlpConfig, TraceConfig};
/// let yaml = "trace:\n  service_name: mm-bot\n  otlp:\n    endpoint: http://127.0.0.1:4318\n";
/// let cfg = TraceConfig::from_yaml_str(yaml).unwrap();
/// let otlp = cfg.otlp.unwrap();
/// assert_eq!(otlp.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
/// assert_eq!(otlp.max_queue_ticks, 2048); // default
/// let in_code = TraceConfig { otlp: Some(OtlpConfig::default()), ..Default::default() };
/// assert!(in_code.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// Base URL of an OTLP/HTTP receiver (an OpenTelemetry Collector, Jaeger, Tempo),
    /// `http://host[:port][/path]`; `/v1/traces` is appended. `None`:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), else `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (`/v1/traces` appended), else `http://localhost:4318`. `https://` is refused: the
    /// built-in client speaks plain HTTP, so send to a collector or sidecar on the host.
    pub endpoint: Option<String>,
    /// Longest one request may take, connecting, sending and reading the answer (ms, 1 to
    /// 600000); also the bound on [`crate::shutdown`]'s final export. `None`:
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`, else 2000.
    pub timeout_ms: Option<u64>,
    /// Extra request headers, e.g. an auth token for a hosted backend. Headers of
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` and `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`,
    /// values percent-encoded) are added where no header of that name is set here.
    pub headers: BTreeMap<String, String>,
    /// Kept ticks waiting for export; past it new ones are dropped and counted in
    /// `Health::otlp_dropped_ticks` (1 to 1048576).
    pub max_queue_ticks: usize,
}

/// Defaults of `trace.otlp`.
pub(crate) mod defaults {
    /// The OTLP/HTTP default endpoint of the OpenTelemetry specification.
    pub(crate) const ENDPOINT: &str = "http://localhost:4318";
    pub(crate) const TIMEOUT_MS: u64 = 2000;
    pub(crate) const MAX_QUEUE_TICKS: usize = 2048;
}

const MAX_TIMEOUT_MS: u64 = 600_000;
const MAX_QUEUE: usize = 1 << 20;

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: None,
            timeout_ms: None,
            headers: BTreeMap::new(),
            max_queue_ticks: defaults::MAX_QUEUE_TICKS,
        }
    }
}

/// The keys of `trace.otlp`.
pub(super) const OTLP_KEYS: &[&str] = &["endpoint", "timeout_ms", "headers", "max_queue_ticks"];

/// Reads `trace.otlp` (`null`: no export); every bad entry is one issue naming its key.
pub(super) fn parse_otlp(v: &Value, issues: &mut Vec<ConfigIssue>) -> Option<OtlpConfig> {
    let mut bad = |key: &str, value: &Value, allowed: &str| {
        issues.push(ConfigIssue { key: format!("trace.otlp{key}"), value: show(value), allowed: allowed.to_owned() })
    };
    let entries = match v {
        Value::Null => return None,
        Value::Mapping(m) => m,
        other => {
            bad(
                "",
                other,
                "must be a mapping of OTLP settings, e.g. otlp: { endpoint: \"http://127.0.0.1:4318\" }, \
                 or null for no export",
            );
            return None;
        }
    };
    let mut cfg = OtlpConfig::default();
    for (k, value) in entries {
        let key = k.as_str().map_or_else(|| show(k), str::to_owned);
        let at = format!(".{key}");
        match key.as_str() {
            "endpoint" => match value {
                Value::Null => cfg.endpoint = None,
                Value::String(s) => cfg.endpoint = Some(s.clone()),
                _ => bad(&at, value, "must be a URL string such as \"http://127.0.0.1:4318\", or null"),
            },
            "timeout_ms" => match value {
                Value::Null => cfg.timeout_ms = None,
                _ => match value.as_u64() {
                    Some(n) => cfg.timeout_ms = Some(n),
                    None => bad(&at, value, "must be a whole number of milliseconds from 1 to 600000, or null"),
                },
            },
            "max_queue_ticks" => match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) => cfg.max_queue_ticks = n,
                None => bad(&at, value, "must be a whole number from 1 to 1048576"),
            },
            "headers" => match value {
                Value::Null => {}
                Value::Mapping(h) => {
                    for (name, hv) in h {
                        match (name.as_str(), hv) {
                            (Some(n), Value::String(s)) => {
                                cfg.headers.insert(n.to_owned(), s.clone());
                            }
                            (Some(n), Value::Number(x)) => {
                                cfg.headers.insert(n.to_owned(), x.to_string());
                            }
                            (Some(n), _) => bad(&format!(".headers.{n}"), hv, "a header value is a string"),
                            (None, _) => bad(&format!(".headers.{}", show(name)), name, "header names are strings"),
                        }
                    }
                }
                _ => bad(&at, value, "must be a mapping of header names to values, e.g. { api-key: \"...\" }"),
            },
            _ => {
                let hint = OTLP_KEYS
                    .iter()
                    .filter_map(|known| distance_if_near(&key, known).map(|d| (d, known)))
                    .min_by_key(|(d, _)| *d)
                    .map(|(_, known)| format!(" did you mean `{known}`?"))
                    .unwrap_or_default();
                bad(&at, value, &format!("unknown key;{hint} allowed keys: {}", OTLP_KEYS.join(", ")))
            }
        }
    }
    Some(cfg)
}

/// The problems of `service_name` and `otlp`, as `(key after "trace.", value, allowed)`.
pub(super) fn check(cfg: &TraceConfig, check: &mut dyn FnMut(bool, &str, String, &str)) {
    if let Some(name) = &cfg.service_name {
        check(
            service_name_ok(name),
            "service_name",
            format!("{name:?}"),
            "must be a non-empty name of at most 255 bytes without control characters (e.g. mm-bot), or null",
        );
    }
    let Some(otlp) = &cfg.otlp else { return };
    if let Some(endpoint) = &otlp.endpoint
        && let Err(why) = HttpUrl::parse(endpoint)
    {
        check(false, "otlp.endpoint", format!("{endpoint:?}"), &why);
    }
    if let Some(t) = otlp.timeout_ms {
        check(
            (1..=MAX_TIMEOUT_MS).contains(&t),
            "otlp.timeout_ms",
            t.to_string(),
            "must be a whole number of milliseconds from 1 to 600000, or null",
        );
    }
    check(
        (1..=MAX_QUEUE).contains(&otlp.max_queue_ticks),
        "otlp.max_queue_ticks",
        otlp.max_queue_ticks.to_string(),
        "must be a whole number from 1 to 1048576",
    );
    for (name, value) in &otlp.headers {
        if let Err(why) = header_ok(name, value) {
            check(false, &format!("otlp.headers.{name}"), format!("{value:?}"), &why);
        }
    }
}

fn service_name_ok(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= 255 && !name.chars().any(char::is_control)
}

/// An HTTP header name is a token (RFC 9110); a value has no control characters (so no line
/// break can end the header early).
fn header_ok(name: &str, value: &str) -> Result<(), String> {
    const TOKEN_EXTRA: &[u8] = b"!#$%&'*+-.^_`|~";
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || TOKEN_EXTRA.contains(&b)) {
        return Err(format!(
            "header name {name:?} is not an HTTP token: letters, digits and !#$%&'*+-.^_`|~ only (e.g. api-key)"
        ));
    }
    if ["host", "content-length", "content-type", "connection", "transfer-encoding"]
        .contains(&name.to_ascii_lowercase().as_str())
    {
        return Err(format!("header {name} is set by the exporter itself and cannot be configured"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("a header value must not contain control characters or line breaks".into());
    }
    Ok(())
}

/// An `http://` URL, split for the built-in client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// Host name or address as written (IPv6 without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `host:port` as the `Host` header carries it.
    pub(crate) authority: String,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path][?query]` (port 80 when none is given).
    pub(crate) fn parse(url: &str) -> Result<HttpUrl, String> {
        const FORM: &str = "must be an http:// URL such as \"http://127.0.0.1:4318\"";
        let url = url.trim();
        let Some(rest) = strip_prefix_ignore_case(url, "http://") else {
            if strip_prefix_ignore_case(url, "https://").is_some() {
                return Err(format!(
                    "{FORM}: https is not supported by mm-trace's built-in client; export to an OpenTelemetry \
                     Collector or sidecar on this host (http://127.0.0.1:4318) that forwards over TLS"
                ));
            }
            return Err(FORM.to_owned());
        };
        if rest.contains('#') {
            return Err(format!("{FORM} (without a #fragment)"));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(format!("{FORM} (credentials go into `headers`, not the URL)"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| format!("{FORM}: unclosed [ in the host"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{FORM}: the host is missing or malformed"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("{FORM}: the port must be a number from 1 to 65535"))?,
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{FORM}: the path must not contain spaces or control characters"));
        }
        Ok(HttpUrl { host: host.to_owned(), port, authority: authority.to_owned(), path })
    }

    /// This URL with `/v1/traces` appended to its path (the generic endpoint's rule).
    fn with_traces_path(mut self) -> HttpUrl {
        let base = self.path.trim_end_matches('/');
        self.path = format!("{base}/v1/traces");
        self
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// What the exporter needs, with the environment applied to what the config left unset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OtlpTarget {
    /// Where to POST (the full `/v1/traces` URL).
    pub(crate) url: HttpUrl,
    /// Extra headers, config first, then the environment's of other names.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) max_queue_ticks: usize,
    /// Resource attributes of every export: `OTEL_RESOURCE_ATTRIBUTES`, with `service.name`
    /// resolved (config, `OTEL_SERVICE_NAME`, that list, the binary's name) and first.
    pub(crate) resource: Vec<(String, String)>,
}

/// The variables read, in the order the specification gives them precedence.
const ENV_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const ENV_HEADERS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"];
const ENV_TIMEOUT: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"];
const ENV_PROTOCOL: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"];
const ENV_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
const ENV_RESOURCE: &str = "OTEL_RESOURCE_ATTRIBUTES";

impl TraceConfig {
    /// The export target of `trace.otlp` (`None` when it is not set), with the process
    /// environment filling what the config leaves unset; a malformed variable is an error
    /// naming it (origin `environment`).
    pub(crate) fn otlp_target(&self) -> Result<Option<OtlpTarget>, ConfigError> {
        self.otlp_target_with(&|name| std::env::var(name).ok())
    }

    /// [`TraceConfig::otlp_target`] with the environment given (tests).
    pub(crate) fn otlp_target_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<OtlpTarget>, ConfigError> {
        let Some(otlp) = &self.otlp else { return Ok(None) };
        // An empty variable is treated as unset (the specification's rule for every OTEL_ variable).
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut issues = Vec::new();
        let mut bad = |key: &str, value: &str, allowed: String| {
            issues.push(ConfigIssue { key: key.to_owned(), value: format!("{value:?}"), allowed })
        };
        let url = match &otlp.endpoint {
            Some(e) => HttpUrl::parse(e).map(HttpUrl::with_traces_path).ok(),
            None => {
                for var in ENV_PROTOCOL {
                    if let Some(p) = env(var) {
                        if p.trim() != "http/protobuf" {
                            bad(
                                var,
                                &p,
                                "mm-trace exports OTLP over HTTP with protobuf bodies only: set it to \
                                 http/protobuf (with an OTLP/HTTP endpoint, port 4318) or set trace.otlp.endpoint"
                                    .into(),
                            );
                        }
                        break;
                    }
                }
                if let Some(e) = env(ENV_TRACES_ENDPOINT) {
                    HttpUrl::parse(&e).map_err(|why| bad(ENV_TRACES_ENDPOINT, &e, why)).ok()
                } else if let Some(e) = env(ENV_ENDPOINT) {
                    HttpUrl::parse(&e).map(HttpUrl::with_traces_path).map_err(|why| bad(ENV_ENDPOINT, &e, why)).ok()
                } else {
                    HttpUrl::parse(defaults::ENDPOINT).map(HttpUrl::with_traces_path).ok()
                }
            }
        };
        let timeout_ms = match otlp.timeout_ms {
            Some(t) => t,
            None => ENV_TIMEOUT.iter().find_map(|var| env(var).map(|v| (var, v))).map_or(
                defaults::TIMEOUT_MS,
                |(var, v)| match v.trim().parse::<u64>() {
                    Ok(t) if (1..=MAX_TIMEOUT_MS).contains(&t) => t,
                    _ => {
                        bad(var, &v, "must be a whole number of milliseconds from 1 to 600000".into());
                        defaults::TIMEOUT_MS
                    }
                },
            ),
        };
        let mut headers: Vec<(String, String)> = otlp.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for var in ENV_HEADERS {
            let Some(list) = env(var) else { continue };
            match parse_key_values(&list) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        if let Err(why) = header_ok(&k, &v) {
                            bad(var, &list, why);
                        } else if !headers.iter().any(|(have, _)| have.eq_ignore_ascii_case(&k)) {
                            headers.push((k, v));
                        }
                    }
                }
                Err(why) => bad(var, &list, why),
            }
        }
        let mut resource = match env(ENV_RESOURCE).map(|list| (parse_key_values(&list), list)) {
            None => Vec::new(),
            Some((Ok(pairs), _)) => pairs,
            Some((Err(why), list)) => {
                bad(ENV_RESOURCE, &list, why);
                Vec::new()
            }
        };
        let from_list = resource.iter().position(|(k, _)| k == "service.name").map(|i| resource.remove(i).1);
        let service_name = match (&self.service_name, env(ENV_SERVICE_NAME)) {
            (Some(name), _) => name.clone(),
            (None, Some(name)) if service_name_ok(&name) => name,
            (None, Some(name)) => {
                bad(ENV_SERVICE_NAME, &name, "must be a non-empty name without control characters".into());
                binary_name()
            }
            (None, None) => from_list.unwrap_or_else(binary_name),
        };
        resource.insert(0, ("service.name".to_owned(), service_name));
        match url {
            Some(url) if issues.is_empty() => Ok(Some(OtlpTarget {
                url,
                headers,
                timeout: Duration::from_millis(timeout_ms),
                max_queue_ticks: otlp.max_queue_ticks,
                resource,
            })),
            _ if issues.is_empty() => Err(self.validate().err().unwrap_or_else(|| ConfigError::Invalid {
                origin: "<in code>".into(),
                issues: vec![ConfigIssue {
                    key: "trace.otlp.endpoint".into(),
                    value: String::new(),
                    allowed: "must be an http:// URL".into(),
                }],
            })),
            _ => Err(ConfigError::Invalid { origin: "environment".into(), issues }),
        }
    }
}

/// The running binary's file name (the default `service.name`).
fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .or_else(|| std::env::args_os().next().map(Into::into))
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown_service".to_owned())
}

/// `k1=v1,k2=v2` with percent-encoded values (the W3C baggage form the OpenTelemetry
/// specification gives `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES`).
fn parse_key_values(list: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("must be a comma-separated list of key=value pairs; {item:?} has no `=`"))?;
        let k = percent_decode(k.trim()).ok_or_else(|| format!("{item:?} is not valid percent-encoding"))?;
        let v = percent_decode(v.trim()).ok_or_else(|| format!("{item:?} is not valid percent-encoding"))?;
        if k.is_empty() {
            return Err(format!("{item:?} has an empty key"));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;

//! Reading a request head: where it ends, what it asks for (the route), and which exposition
//! format its `Accept` header prefers.

use super::{MetricsFormat, TraceFormat};

/// Request line and headers must fit in this many bytes.
pub(super) const MAX_HEAD: usize = 8 * 1024;

/// End of the header block (`\r\n\r\n`, or a bare `\n\n` from lenient clients).
pub(super) fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a request asks for, or why it is refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    Metrics { head: bool, format: MetricsFormat },
    Traces { head: bool },
    Trace { head: bool, trace_id: String, tick_id: Option<u64>, format: TraceFormat },
    NotFound(&'static str),
    MethodNotAllowed,
    BadRequest(&'static str),
    VersionNotSupported,
}

pub(super) fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::BadRequest("request is not UTF-8");
    };
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Route::BadRequest("malformed request line");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Route::BadRequest("malformed method");
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return Route::BadRequest("malformed request target");
    }
    match version {
        "HTTP/1.0" | "HTTP/1.1" => {}
        v if v.starts_with("HTTP/") && v.len() == 8 && v.as_bytes()[6] == b'.' => {
            return Route::VersionNotSupported;
        }
        _ => return Route::BadRequest("malformed HTTP version"),
    }
    let mut accept = String::new();
    for line in lines.filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((name, value)) if !name.is_empty() && !name.contains([' ', '\t']) => {
                if name.eq_ignore_ascii_case("accept") {
                    accept.push_str(value);
                    accept.push(',');
                }
            }
            _ => return Route::BadRequest("malformed header line"),
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let head = match (method, path) {
        ("GET", _) => false,
        ("HEAD", _) => true,
        (_, "/metrics" | "/traces" | "/traces/") => return Route::MethodNotAllowed,
        (_, p) if p.starts_with("/traces/") => return Route::MethodNotAllowed,
        _ => return Route::NotFound(NOT_FOUND),
    };
    match path {
        "/metrics" => Route::Metrics { head, format: negotiate(&accept) },
        "/traces" | "/traces/" => Route::Traces { head },
        p => match p.strip_prefix("/traces/") {
            Some(id) => trace_route(head, id, query),
            None => Route::NotFound(NOT_FOUND),
        },
    }
}

const NOT_FOUND: &str = "not found: this endpoint serves /metrics, /traces and /traces/<trace_id>";

/// `/traces/<trace_id>[.svg]?format=golden|chrome|svg&tick_id=N`.
fn trace_route(head: bool, id: &str, query: &str) -> Route {
    let (id, mut format) = match id.strip_suffix(".svg") {
        Some(id) => (id, TraceFormat::Svg),
        None => (id.strip_suffix(".json").unwrap_or(id), TraceFormat::Golden),
    };
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Route::NotFound("not found: a trace id is 32 hex digits (GET /traces lists the kept ticks)");
    }
    let mut tick_id = None;
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match key {
            "format" => {
                format = match value {
                    "golden" | "json" => TraceFormat::Golden,
                    "chrome" => TraceFormat::Chrome,
                    "svg" => TraceFormat::Svg,
                    _ => return Route::BadRequest("format is golden, chrome or svg"),
                }
            }
            "tick_id" => match value.parse() {
                Ok(t) => tick_id = Some(t),
                Err(_) => return Route::BadRequest("tick_id is a number"),
            },
            _ => {}
        }
    }
    Route::Trace { head, trace_id: id.to_ascii_lowercase(), tick_id, format }
}

/// OpenMetrics when the `Accept` list ranks `application/openmetrics-text` (version 1.0.0, or
/// none given) at least as high as the 0.0.4 text (`text/plain`, `text/*`, `*/*`); the 0.0.4 text
/// otherwise, also when nothing listed is served (as before content negotiation).
pub(super) fn negotiate(accept: &str) -> MetricsFormat {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0f32, None);
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.parse().unwrap_or(0.0),
                    "version" => version = Some(v.to_owned()),
                    _ => {}
                }
            }
        }
        match media.as_str() {
            "application/openmetrics-text" if version.as_deref().is_none_or(|v| v == "1.0.0") => {
                openmetrics = openmetrics.max(q)
            }
            "text/plain" if version.as_deref().is_none_or(|v| v == "0.0.4") => text = text.max(q),
            "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text { MetricsFormat::OpenMetrics } else { MetricsFormat::Prometheus }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(head: bool) -> Route {
        Route::Metrics { head, format: MetricsFormat::Prometheus }
    }

    #[test]
    fn routes() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), metrics(false));
        assert_eq!(route(b"HEAD /metrics?x=1 HTTP/1.0"), metrics(true));
        assert!(matches!(route(b"GET / HTTP/1.1"), Route::NotFound(_)));
        assert!(matches!(route(b"GET /metrics/extra HTTP/1.1"), Route::NotFound(_)));
        assert_eq!(route(b"POST /metrics HTTP/1.1"), Route::MethodNotAllowed);
        assert_eq!(route(b"DELETE /traces HTTP/1.1"), Route::MethodNotAllowed);
        assert_eq!(route(b"GET /metrics HTTP/2.0"), Route::VersionNotSupported);
        assert!(matches!(route(b"GET /metrics"), Route::BadRequest(_)));
        assert!(matches!(route(b"get /metrics HTTP/1.1"), Route::BadRequest(_)));
        assert!(matches!(route(b"GET metrics HTTP/1.1"), Route::BadRequest(_)));
        assert!(matches!(route(b"GET /metrics HTTP/1.1\r\nno colon\r\n"), Route::BadRequest(_)));
        assert!(matches!(route(b"\x16\x03\x01\x02"), Route::BadRequest(_)));
    }

    #[test]
    fn trace_routes() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let trace = |format, tick_id| Route::Trace { head: false, trace_id: id.into(), tick_id, format };
        assert_eq!(route(b"GET /traces HTTP/1.1"), Route::Traces { head: false });
        assert_eq!(route(b"HEAD /traces/ HTTP/1.1"), Route::Traces { head: true });
        assert_eq!(route(format!("GET /traces/{id} HTTP/1.1").as_bytes()), trace(TraceFormat::Golden, None));
        let upper = id.to_ascii_uppercase();
        assert_eq!(route(format!("GET /traces/{upper}.json HTTP/1.1").as_bytes()), trace(TraceFormat::Golden, None));
        assert_eq!(
            route(format!("GET /traces/{id}?format=chrome&tick_id=7 HTTP/1.1").as_bytes()),
            trace(TraceFormat::Chrome, Some(7))
        );
        assert_eq!(route(format!("GET /traces/{id}.svg HTTP/1.1").as_bytes()), trace(TraceFormat::Svg, None));
        assert!(matches!(route(b"GET /traces/abc HTTP/1.1"), Route::NotFound(_)));
        assert!(matches!(route(format!("GET /traces/{id}?format=x HTTP/1.1").as_bytes()), Route::BadRequest(_)));
        assert!(matches!(route(format!("GET /traces/{id}?tick_id=x HTTP/1.1").as_bytes()), Route::BadRequest(_)));
    }

    #[test]
    fn openmetrics_when_the_scraper_asks_for_it() {
        use MetricsFormat::*;
        // What Prometheus 2.x sends, and Prometheus 3.
        let prometheus2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(negotiate(prometheus2), OpenMetrics);
        assert_eq!(negotiate(prometheus3), OpenMetrics);
        assert_eq!(negotiate("application/openmetrics-text"), OpenMetrics);
        assert_eq!(negotiate("Application/OpenMetrics-Text; Version=\"1.0.0\""), OpenMetrics);
        for other in ["", "*/*", "text/plain", "text/plain;version=0.0.4", "application/json"] {
            assert_eq!(negotiate(other), Prometheus, "{other:?}");
        }
        assert_eq!(negotiate("application/openmetrics-text;q=0.2,text/plain;q=0.9"), Prometheus);
        assert_eq!(negotiate("application/openmetrics-text;version=0.0.1"), Prometheus);
        assert_eq!(negotiate("application/openmetrics-text;q=0"), Prometheus);
        let head = format!("GET /metrics HTTP/1.1\r\naccept: {prometheus2}\r\n");
        assert_eq!(route(head.as_bytes()), Route::Metrics { head: false, format: OpenMetrics });
    }

    #[test]
    fn head_end_finds_crlf_and_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}

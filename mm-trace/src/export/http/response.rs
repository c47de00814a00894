//! Responses: what each route answers, as the bytes to send. Every response closes the
//! connection (one request per connection, as Prometheus and curl handle fine).

use super::request::Route;
use super::{Endpoint, MetricsFormat, TraceFormat};

/// The `Content-Type` of the 0.0.4 exposition.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The `Content-Type` of the OpenMetrics exposition.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PLAIN: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// The whole response to `route`, rendered now (on the endpoint's thread).
pub(super) fn answer(route: Route, endpoint: &Endpoint) -> Vec<u8> {
    match route {
        Route::Metrics { head, format } => {
            let (body, content_type) = match format {
                MetricsFormat::Prometheus => ((endpoint.metrics)(format), CONTENT_TYPE),
                MetricsFormat::OpenMetrics => ((endpoint.metrics)(format), OPENMETRICS_CONTENT_TYPE),
            };
            // `Vary`: what a cache between scraper and endpoint must key the answer on.
            response("200 OK", &[("Vary", "Accept")], content_type, body.as_bytes(), head)
        }
        Route::Traces { head } => response("200 OK", &[], JSON, (endpoint.traces)().as_bytes(), head),
        Route::Trace { head, trace_id, tick_id, format } => match (endpoint.trace)(&trace_id, tick_id, format) {
            Some(body) => {
                let content_type = match format {
                    TraceFormat::Golden | TraceFormat::Chrome => JSON,
                    TraceFormat::Svg => "image/svg+xml",
                };
                response("200 OK", &[], content_type, body.as_bytes(), head)
            }
            None => plain(
                "404 Not Found",
                &[],
                &format!(
                    "not found: no kept tick with trace id {trace_id}{} in memory (the ring keeps the last \
                     chrome_ring_ticks kept ticks; GET /traces lists them)\n",
                    tick_id.map(|t| format!(" and tick id {t}")).unwrap_or_default()
                ),
            ),
        },
        Route::NotFound(why) => plain("404 Not Found", &[], &format!("{why}\n")),
        Route::MethodNotAllowed => {
            plain("405 Method Not Allowed", &[("Allow", "GET, HEAD")], "method not allowed: use GET\n")
        }
        Route::BadRequest(why) => bad_request(why),
        Route::VersionNotSupported => plain("505 HTTP Version Not Supported", &[], "use HTTP/1.0 or HTTP/1.1\n"),
    }
}

pub(super) fn bad_request(why: &str) -> Vec<u8> {
    plain("400 Bad Request", &[], &format!("bad request: {why}\n"))
}

pub(super) fn too_large() -> Vec<u8> {
    plain("431 Request Header Fields Too Large", &[], "request head too large\n")
}

pub(super) fn timed_out() -> Vec<u8> {
    plain("408 Request Timeout", &[], "request timed out\n")
}

pub(super) fn busy() -> Vec<u8> {
    plain("503 Service Unavailable", &[("Retry-After", "1")], "too many connections\n")
}

fn plain(status: &str, extra: &[(&str, &str)], body: &str) -> Vec<u8> {
    response(status, extra, PLAIN, body.as_bytes(), false)
}

fn response(status: &str, extra: &[(&str, &str)], content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    bytes
}

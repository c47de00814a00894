//! A minimal Prometheus HTTP API client (`GET /api/v1/query`) over std networking.
//!
//! Requests are HTTP/1.0 with `Connection: close`, so the answer is never chunked and ends at
//! end of stream. Only `http://` URLs are supported (Prometheus on loopback or inside a cluster).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// Largest response body read (the answers queried here are a few hundred bytes).
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// A Prometheus server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The URL as given, for messages.
    pub url: String,
    host: String,
    port: u16,
    prefix: String,
    timeout: Duration,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels.
    pub labels: Vec<(String, String)>,
    /// The value (may be NaN, e.g. 0/0).
    pub value: f64,
}

impl Client {
    /// Parses `http://host[:port][/prefix]`.
    pub fn new(url: &str, timeout: Duration) -> Result<Client, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported (e.g. http://127.0.0.1:9090)"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url}: expected http://host[:port][/prefix]"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p.parse::<u16>().map_err(|_| format!("{url}: bad port {p:?}"))?;
                (h, port)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url}: missing host"));
        }
        if path.contains(['?', '#']) {
            return Err(format!("{url}: the URL must not have a query or fragment"));
        }
        Ok(Client {
            url: url.to_owned(),
            host: host.to_owned(),
            port,
            prefix: path.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// Runs an instant query and returns the vector (or a scalar as one unlabeled sample).
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>, String> {
        let target = format!("{}/api/v1/query?query={}", self.prefix, encode(promql));
        let (status, body) = self.get(&target)?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| {
            format!("{}: HTTP {status}, answer is not JSON ({e}) — is this a Prometheus server?", self.url)
        })?;
        if doc["status"] != "success" {
            let msg = doc["error"].as_str().unwrap_or("no error message");
            return Err(format!("{}: query failed (HTTP {status}): {msg}; query: {promql}", self.url));
        }
        let data = &doc["data"];
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .ok_or_else(|| format!("{}: malformed answer (no result array)", self.url))?
                .iter()
                .map(|s| {
                    let labels = s["metric"]
                        .as_object()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
                        .unwrap_or_default();
                    Ok(Sample {
                        labels,
                        value: value(&s["value"]).ok_or_else(|| format!("{}: malformed sample {s}", self.url))?,
                    })
                })
                .collect(),
            Some("scalar") => Ok(vec![Sample {
                labels: Vec::new(),
                value: value(&data["result"]).ok_or_else(|| format!("{}: malformed scalar", self.url))?,
            }]),
            other => Err(format!("{}: unexpected result type {other:?} for query {promql}", self.url)),
        }
    }

    fn get(&self, target: &str) -> Result<(u16, Vec<u8>), String> {
        let fail = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", self.url);
        let addrs: Vec<_> =
            (self.host.as_str(), self.port).to_socket_addrs().map_err(|e| fail("cannot resolve host", e))?.collect();
        let mut last = None;
        let mut stream = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, self.timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(fail("cannot connect", e)),
            (None, None) => return Err(format!("{}: host resolves to no address", self.url)),
        };
        stream.set_read_timeout(Some(self.timeout)).map_err(|e| fail("socket", e))?;
        stream.set_write_timeout(Some(self.timeout)).map_err(|e| fail("socket", e))?;
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let req = format!(
            "GET {target} HTTP/1.0\r\nHost: {host}:{}\r\nAccept: application/json\r\nUser-Agent: perf-gate/{}\r\nConnection: close\r\n\r\n",
            self.port,
            env!("CARGO_PKG_VERSION")
        );
        stream.write_all(req.as_bytes()).map_err(|e| fail("cannot send request", e))?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE).read_to_end(&mut raw).map_err(|e| fail("cannot read answer", e))?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("{}: malformed HTTP answer (no header end)", self.url))?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let status = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("{}: malformed HTTP status line", self.url))?;
        Ok((status, raw[split + 4..].to_vec()))
    }
}

fn value(v: &Value) -> Option<f64> {
    let s = v.as_array()?.get(1)?.as_str()?;
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The label matchers of a selector without surrounding braces or spaces: `{track="a"}` and
/// `track="a"` both give `track="a"`.
pub fn matchers(selector: &str) -> String {
    let s = selector.trim();
    let s = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(s);
    s.trim().trim_end_matches(',').trim().to_owned()
}

/// `name{m1,m2}` joining the non-empty matchers.
pub fn series(name: &str, matchers: &[&str]) -> String {
    let parts: Vec<&str> = matchers.iter().copied().filter(|m| !m.is_empty()).collect();
    if parts.is_empty() { name.to_owned() } else { format!("{name}{{{}}}", parts.join(",")) }
}

/// The PromQL of the canary inputs for one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    /// tick_total p95 (in the metric's unit).
    pub p95: String,
    /// Deadline misses per tick (0..1).
    pub deadline_miss_ratio: String,
    /// Partial failures per tick (0..1).
    pub partial_fail_ratio: String,
    /// Ticks per second (to tell "no ticks" from "no misses").
    pub tick_rate: String,
}

/// Builds the queries for a selector over `window`.
pub fn queries(selector: &str, window: &str, base_units: bool) -> Queries {
    let m = matchers(selector);
    let hist = if base_units { "mm_stage_duration_seconds_bucket" } else { "mm_stage_duration_ms_bucket" };
    let ratio = |counter: &str| {
        format!(
            "sum(rate({}[{window}])) / sum(rate({}[{window}]))",
            series(counter, &[&m]),
            series("mm_ticks_total", &[&m])
        )
    };
    Queries {
        p95: format!(
            "histogram_quantile(0.95, sum by (le) (rate({}[{window}])))",
            series(hist, &["stage=\"tick_total\"", &m])
        ),
        deadline_miss_ratio: ratio("mm_tick_deadline_miss_total"),
        partial_fail_ratio: ratio("mm_tick_partial_fail_total"),
        tick_rate: format!("sum(rate({}[{window}]))", series("mm_ticks_total", &[&m])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_is_exact() {
        let q = queries("{track=\"canary\"}", "5m", false);
        assert_eq!(
            q.p95,
            "histogram_quantile(0.95, sum by (le) (rate(mm_stage_duration_ms_bucket{stage=\"tick_total\",track=\"canary\"}[5m])))"
        );
        assert_eq!(
            q.deadline_miss_ratio,
            "sum(rate(mm_tick_deadline_miss_total{track=\"canary\"}[5m])) / sum(rate(mm_ticks_total{track=\"canary\"}[5m]))"
        );
        assert_eq!(
            q.partial_fail_ratio,
            "sum(rate(mm_tick_partial_fail_total{track=\"canary\"}[5m])) / sum(rate(mm_ticks_total{track=\"canary\"}[5m]))"
        );
        let q = queries("", "30s", true);
        assert_eq!(
            q.p95,
            "histogram_quantile(0.95, sum by (le) (rate(mm_stage_duration_seconds_bucket{stage=\"tick_total\"}[30s])))"
        );
        assert_eq!(q.tick_rate, "sum(rate(mm_ticks_total[30s]))");
    }

    #[test]
    fn urls() {
        let c = Client::new("http://127.0.0.1:9090/prom/", Duration::from_secs(1)).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.prefix.as_str()), ("127.0.0.1", 9090, "/prom"));
        let c = Client::new("http://[::1]:9091", Duration::from_secs(1)).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 9091));
        assert_eq!(Client::new("http://prom", Duration::from_secs(1)).unwrap().port, 80);
        for bad in ["https://x:9090", "127.0.0.1:9090", "http://", "http://x:port", "http://x:9090/?a=b"] {
            assert!(Client::new(bad, Duration::from_secs(1)).is_err(), "{bad}");
        }
        assert_eq!(encode("a b{c=\"d\"}"), "a%20b%7Bc%3D%22d%22%7D");
    }

    #[test]
    fn unreachable_server_is_an_error_naming_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = Client::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(1)).unwrap();
        let e = c.query("up").unwrap_err();
        assert!(e.starts_with(&format!("http://127.0.0.1:{port}: cannot connect")), "{e}");
    }
}

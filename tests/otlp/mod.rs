//! The OTLP receiver of the export tests: `receiver.py` beside this file, run by the Python of
//! the venv `.ci/run` creates (`target/otlp-venv`, with PyPI's `opentelemetry-proto` and
//! `protobuf`), and what it decoded, read back.

#![allow(dead_code, reason = "each test uses a different part")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const MODULE: &str = "opentelemetry.proto.collector.trace.v1.trace_service_pb2";

/// A Python that can import the official OTLP protobuf module: `$MM_TRACE_OTLP_PYTHON`, else the
/// venv `.ci/run` makes, else `python3` on PATH. Missing: `None` after a notice, or a panic
/// when `CI=true` (CI must run these tests, never skip them).
pub fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = std::env::var_os("MM_TRACE_OTLP_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([root.join("target/otlp-venv/bin/python3"), PathBuf::from("python3")])
        .collect();
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", &format!("import {MODULE}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py.clone());
        }
    }
    let how = "python3 -m venv target/otlp-venv && target/otlp-venv/bin/pip install -r tests/otlp/requirements.txt \
               (.ci/run does this)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no Python with `{MODULE}` (tried {candidates:?}) but CI=true: {how}");
    }
    eprintln!("NOTICE: no Python with `{MODULE}`; skipping this test ({how})");
    None
}

/// A running `receiver.py`, killed on drop.
pub struct Receiver {
    child: Child,
    pub port: u16,
    out: PathBuf,
}

impl Receiver {
    /// Starts the receiver with `script` (e.g. `"200"`, `"503,503,200"`, `"400"`, `"hang"`) on
    /// `port` (0: any free one), writing what it decodes to `out`.
    pub fn start(py: &Path, script: &str, port: u16, retry_after: Option<u32>, out: &Path) -> Receiver {
        let mut cmd = Command::new(py);
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/receiver.py")).args([
            "--out",
            out.to_str().unwrap(),
            "--port",
            &port.to_string(),
            "--script",
            script,
        ]);
        if let Some(s) = retry_after {
            cmd.args(["--retry-after", &s.to_string()]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start receiver.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("receiver.py said {line:?}"));
        Receiver { child, port, out: out.to_owned() }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        requests(&self.out)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request as the receiver decoded it.
#[derive(Debug, Clone)]
pub struct Request {
    pub t: f64,
    pub path: String,
    pub headers: Value,
    pub answer: String,
    pub resource: Value,
    pub spans: Vec<Span>,
}

impl Request {
    pub fn accepted(&self) -> bool {
        self.answer.starts_with('2')
    }
}

/// One decoded span.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub flags: u64,
    pub name: String,
    pub kind: u64,
    pub start: u64,
    pub end: u64,
    pub attributes: Value,
    pub status_code: u64,
    pub status_message: String,
    pub scope: String,
}

impl Span {
    pub fn attr(&self, key: &str) -> &Value {
        &self.attributes[key]
    }
}

pub fn requests(out: &Path) -> Vec<Request> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("receiver line {l:?}: {e}"));
            assert!(v.get("error").is_none(), "the receiver could not decode a body: {}", v["error"]);
            let rs = v["resource_spans"].as_array().cloned().unwrap_or_default();
            assert!(rs.len() <= 1, "one resource per request: {rs:?}");
            let resource = rs.first().map(|r| r["resource"].clone()).unwrap_or(Value::Null);
            let mut spans = Vec::new();
            for r in &rs {
                for scope in r["scopes"].as_array().unwrap() {
                    for s in scope["spans"].as_array().unwrap() {
                        let u = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
                        let st = |k: &str| s[k].as_str().unwrap().to_owned();
                        spans.push(Span {
                            trace_id: st("trace_id"),
                            span_id: st("span_id"),
                            parent_span_id: st("parent_span_id"),
                            flags: u("flags"),
                            name: st("name"),
                            kind: u("kind"),
                            start: u("start"),
                            end: u("end"),
                            attributes: s["attributes"].clone(),
                            status_code: s["status"]["code"].as_u64().unwrap(),
                            status_message: s["status"]["message"].as_str().unwrap().to_owned(),
                            scope: scope["name"].as_str().unwrap().to_owned(),
                        });
                    }
                }
            }
            Request {
                t: v["t"].as_f64().unwrap(),
                path: v["path"].as_str().unwrap().to_owned(),
                headers: v["headers"].clone(),
                answer: v["answer"].as_str().unwrap().to_owned(),
                resource,
                spans,
            }
        })
        .collect()
}

/// Waits until `done()` or `limit` passes; whether it became true.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// A loopback port nothing listens on (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// This process's resident set size, bytes (Linux `/proc/self/status`).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

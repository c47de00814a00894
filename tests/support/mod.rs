//! Helpers shared by the exporter tests: temp dirs, an exposition parser, external tools,
//! a minimal HTTP client.

#![allow(dead_code, reason = "every test file uses a different part of this module")]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mm-trace-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// This test binary, to run test `test` alone in a child process (the caller adds the
/// environment that tells the child it is one): for what only a fresh process shows (the
/// environment read once at `init`, a once-per-process report, two runs side by side).
pub fn child_running(test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    cmd
}

/// Finds an external tool. Missing: `None` after a notice, or a panic when `CI=true`.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("`{name}` is not installed but CI=true: install the Debian package `prometheus`");
        }
        eprintln!("NOTICE: `{name}` not found on PATH; skipping this test (install the Debian package `prometheus`)");
    }
    found
}

/// One sample line of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The labels without `le`, as a sortable key.
    pub fn series_key(&self) -> Vec<(String, String)> {
        self.labels.iter().filter(|(k, _)| k != "le").cloned().collect()
    }
}

/// A metric family: its HELP, TYPE and samples in exposition order.
#[derive(Debug, Clone, Default)]
pub struct Family {
    pub help: String,
    pub kind: String,
    pub samples: Vec<Sample>,
}

/// A parsed exposition (format 0.0.4), checked for the structural rules on the way: one HELP
/// and one TYPE per family, both before its samples, samples of a family contiguous, every
/// sample belonging to a declared family.
#[derive(Debug, Default)]
pub struct Exposition {
    pub families: BTreeMap<String, Family>,
    pub order: Vec<String>,
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        assert!(text.ends_with('\n'), "exposition must end with a line feed");
        let mut out = Exposition::default();
        let mut current: Option<String> = None;
        let mut closed: Vec<String> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let at = || format!("line {}: {line:?}", i + 1);
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                if current.as_deref() != Some(name) {
                    if let Some(c) = current.take() {
                        closed.push(c);
                    }
                    assert!(!closed.contains(&name.to_owned()), "family {name} split or repeated, {}", at());
                    assert!(!out.families.contains_key(name), "second HELP for {name}, {}", at());
                    out.order.push(name.to_owned());
                    current = Some(name.to_owned());
                }
                let f = out.families.entry(name.to_owned()).or_default();
                assert!(f.help.is_empty(), "second HELP for {name}, {}", at());
                assert!(f.samples.is_empty(), "HELP after samples of {name}, {}", at());
                f.help = help.to_owned();
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE, {}", at()));
                assert_eq!(current.as_deref(), Some(name), "TYPE without HELP first, {}", at());
                let f = out.families.get_mut(name).unwrap();
                assert!(f.kind.is_empty(), "second TYPE for {name}, {}", at());
                assert!(f.samples.is_empty(), "TYPE after samples of {name}, {}", at());
                assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{}", at());
                f.kind = kind.to_owned();
            } else if line.starts_with('#') || line.is_empty() {
                panic!("unexpected comment or blank line, {}", at());
            } else {
                let s = parse_sample(line).unwrap_or_else(|e| panic!("{e}, {}", at()));
                let fam = current.clone().unwrap_or_else(|| panic!("sample before any TYPE, {}", at()));
                let f = out.families.get_mut(&fam).unwrap();
                let belongs = match f.kind.as_str() {
                    "histogram" => {
                        [fam.clone() + "_bucket", fam.clone() + "_sum", fam.clone() + "_count"].contains(&s.name)
                    }
                    _ => s.name == fam,
                };
                assert!(belongs, "sample {} is not part of family {fam} ({}), {}", s.name, f.kind, at());
                f.samples.push(s);
            }
        }
        out
    }

    pub fn family(&self, name: &str) -> &Family {
        self.families.get(name).unwrap_or_else(|| panic!("family {name} missing; have {:?}", self.order))
    }

    /// The value of the sample `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.families.values().flat_map(|f| &f.samples).find_map(|s| {
            let same =
                s.name == name && s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.label(k) == Some(*v));
            same.then_some(s.value)
        })
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        loop {
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            if r[start..].starts_with('}') {
                rest = &r[start + 1..];
                break;
            }
            let eq = r[start..].find('=').ok_or("label without =")? + start;
            let key = r[start..eq].to_owned();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {key:?}"));
            }
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '"' => break,
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    '\n' => return Err("raw line feed in label value".into()),
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            match chars.peek().map(|(_, c)| *c) {
                Some(',') => {
                    chars.next();
                }
                Some('}') => {}
                _ => return Err("expected , or } after a label".into()),
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before value")?;
    if value.contains(' ') {
        return Err("timestamps are not expected".into());
    }
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|e| format!("bad value {v:?}: {e}"))?,
    };
    Ok(Sample { name: name.to_owned(), labels, value })
}

/// Parses `le` as Prometheus does.
pub fn parse_le(le: &str) -> f64 {
    if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or_else(|e| panic!("le {le:?}: {e}")) }
}

/// Runs `promtool check metrics` on `text`: `(exit code, stdout + stderr lines)`.
pub fn promtool_check(promtool: &Path, text: &str) -> (i32, Vec<String>) {
    use std::process::Stdio;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run promtool");
    let mut stdin = child.stdin.take().unwrap();
    let input = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    lines.extend(String::from_utf8_lossy(&out.stderr).lines().map(str::to_owned));
    lines.retain(|l| !l.trim().is_empty());
    (out.status.code().unwrap_or(-1), lines)
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` and reads the response until the server closes the connection.
pub fn http_raw(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Response> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.write_all(raw)?;
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes)?;
    parse_response(&bytes)
}

/// `GET path` over HTTP/1.1 with `Connection: close`.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    http_raw(addr, format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
}

pub fn parse_response(bytes: &[u8]) -> std::io::Result<Response> {
    let bad = |what: &str| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}: {:?}", String::from_utf8_lossy(bytes)))
    };
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of head"))?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers = lines
        .map(|l| {
            l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).ok_or_else(|| bad("bad header"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let body = String::from_utf8_lossy(&bytes[end + 4..]).into_owned();
    Ok(Response { status, headers, body })
}

/// A Python with the `prometheus_client` package (its OpenMetrics parser is the reference this
/// crate's OpenMetrics text is checked against): `$MM_TRACE_OPENMETRICS_PYTHON`, else the venv
/// `.ci/run` makes (`target/openmetrics-venv`), else `python3` if it has the package. Missing:
/// `None` after a notice, or a panic when `CI=true`.
pub fn require_openmetrics_parser() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openmetrics-venv/bin/python3");
    let candidates = std::env::var_os("MM_TRACE_OPENMETRICS_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv, PathBuf::from("python3")]);
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import prometheus_client.openmetrics.parser"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python);
        }
    }
    let how = "python3 -m venv target/openmetrics-venv && target/openmetrics-venv/bin/pip install prometheus-client";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no Python with prometheus_client (the OpenMetrics reference parser) but CI=true: {how}");
    }
    eprintln!("NOTICE: no Python with prometheus_client; skipping the OpenMetrics parser check ({how})");
    None
}

/// Parses `text` with `prometheus_client`'s OpenMetrics parser (which rejects what the
/// specification forbids): `Ok(families as JSON)` or `Err(the parser's message)`. Each family:
/// `{name, type, unit, samples: [{name, labels, value, exemplar: {labels, value, timestamp}?}]}`.
pub fn openmetrics_parse(python: &Path, text: &str) -> Result<serde_json::Value, String> {
    use std::process::Stdio;
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
try:
    out = []
    for f in text_string_to_metric_families(sys.stdin.read()):
        samples = []
        for s in f.samples:
            e = s.exemplar
            samples.append({"name": s.name, "labels": s.labels, "value": s.value,
                            "exemplar": None if e is None else {"labels": e.labels, "value": e.value,
                                                                "timestamp": None if e.timestamp is None else float(e.timestamp)}})
        out.append({"name": f.name, "type": f.type, "unit": f.unit, "samples": samples})
    print(json.dumps(out))
except Exception as e:
    print("PARSE ERROR: %s" % e, file=sys.stderr)
    sys.exit(3)
"#;
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python");
    let mut stdin = child.stdin.take().unwrap();
    let input = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

//! Reading `perf_profile.json` (schema version 1, `docs/PROFILE_SCHEMA.md`) with a strict check.
//!
//! The document is parsed into a [`serde_json::Value`] first and then checked field by field, so
//! every problem is reported as one line that names the file and the offending key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The `schema` value every profile carries.
pub const SCHEMA: &str = "mm-trace/perf-profile";
/// The only `schema_version` this reader understands.
pub const SCHEMA_VERSION: u64 = 1;
/// Profiles larger than this are refused rather than read into memory.
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// An input problem: the file it is about and what is wrong, displayed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (or URL) the problem is in.
    pub source: String,
    /// What is wrong, without the file name.
    pub message: String,
}

impl InputError {
    /// An error about `source`.
    pub fn new(source: impl fmt::Display, message: impl Into<String>) -> Self {
        InputError { source: source.to_string(), message: one_line(&message.into()) }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

impl std::error::Error for InputError {}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One non-empty histogram bucket: `count` samples with `lower_ns <= v < upper_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Inclusive lower bound, nanoseconds.
    pub lower_ns: u64,
    /// Exclusive upper bound, nanoseconds.
    pub upper_ns: u64,
    /// Samples in the bucket.
    pub count: u64,
}

/// The timing statistics of one stage (or exchange request kind).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Samples recorded.
    pub count: u64,
    /// Sum of all samples, ms.
    pub sum_ms: f64,
    /// Median as written by the runtime, ms.
    pub p50_ms: f64,
    /// 95th percentile as written by the runtime, ms.
    pub p95_ms: f64,
    /// 99th percentile as written by the runtime, ms.
    pub p99_ms: f64,
    /// Exact maximum, ms.
    pub max_ms: f64,
    /// Non-empty buckets, ascending; their counts sum to `count`.
    pub buckets: Vec<Bucket>,
}

impl Stage {
    /// The `q` quantile (0 < q <= 1) by nearest rank, at the bucket midpoint, in ms: the rule the
    /// runtime uses for `pXX_ms`. `None` when the stage has no samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for b in &self.buckets {
            seen += b.count;
            if seen >= rank {
                return Some((b.lower_ns as f64 + b.upper_ns as f64) / 2.0 / 1e6);
            }
        }
        self.buckets.last().map(|b| (b.lower_ns as f64 + b.upper_ns as f64) / 2.0 / 1e6)
    }

    /// Merges another histogram of the same stage into this one (bounds are identical in every
    /// process, so buckets with the same bounds add up).
    pub fn merge(&mut self, other: &Stage) {
        let mut map: BTreeMap<(u64, u64), u64> =
            self.buckets.iter().map(|b| ((b.lower_ns, b.upper_ns), b.count)).collect();
        for b in &other.buckets {
            *map.entry((b.lower_ns, b.upper_ns)).or_default() += b.count;
        }
        self.buckets =
            map.into_iter().map(|((lower_ns, upper_ns), count)| Bucket { lower_ns, upper_ns, count }).collect();
        self.count += other.count;
        self.sum_ms += other.sum_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
        self.p50_ms = self.quantile_ms(0.50).unwrap_or(0.0);
        self.p95_ms = self.quantile_ms(0.95).unwrap_or(0.0);
        self.p99_ms = self.quantile_ms(0.99).unwrap_or(0.0);
    }
}

/// A checked `perf_profile.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Where it was read from (as given on the command line).
    pub path: PathBuf,
    /// Free-form labels, e.g. `track = canary`.
    pub labels: BTreeMap<String, String>,
    /// The tick deadline in force, ms.
    pub deadline_ms: f64,
    /// Ticks recorded.
    pub ticks: u64,
    /// Ticks whose `tick_total` exceeded the deadline.
    pub deadline_misses: u64,
    /// `deadline_misses` as a percentage of `ticks`.
    pub deadline_miss_pct: f64,
    /// Ticks with some failed symbols.
    pub partial_fails: u64,
    /// `partial_fails` as a percentage of `ticks`.
    pub partial_fail_pct: f64,
    /// Stages by name (`tick_total` included).
    pub stages: BTreeMap<String, Stage>,
}

/// Reads and checks a profile file. Every error names the file.
pub fn load(path: &Path) -> Result<Profile, InputError> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| InputError::new(&shown, io_reason(&e)))?;
    if meta.is_dir() {
        return Err(InputError::new(&shown, "is a directory, expected a perf_profile.json file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(InputError::new(&shown, format!("file is {} bytes, larger than the 512 MiB limit", meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|e| InputError::new(&shown, io_reason(&e)))?;
    parse(&bytes, path)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => format!("cannot read: {e}"),
    }
}

/// Parses and checks profile text; `path` is only used in messages and kept in the result.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Profile, InputError> {
    let shown = path.display();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::new(&shown, "empty file, expected a perf_profile.json document"));
    }
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| InputError::new(&shown, format!("not valid JSON: {e}")))?;
    check(&doc, path).map_err(|message| InputError::new(&shown, message))
}

type Checked<T> = Result<T, String>;

fn check(doc: &Value, path: &Path) -> Checked<Profile> {
    let top = doc.as_object().ok_or_else(|| format!("expected a JSON object, found {}", kind(doc)))?;
    match top.get("schema") {
        Some(Value::String(s)) if s == SCHEMA => {}
        Some(Value::String(s)) => {
            return Err(format!("schema is {s:?}, expected {SCHEMA:?} (is this a perf_profile.json?)"));
        }
        Some(v) => {
            return Err(format!("schema must be the string {SCHEMA:?}, found {}", kind(v)));
        }
        None => {
            return Err(format!("missing key \"schema\" (expected {SCHEMA:?}; is this a perf_profile.json?)"));
        }
    }
    let version = match top.get("schema_version") {
        None => return Err("missing key \"schema_version\"".to_owned()),
        Some(v) => v.as_u64().ok_or_else(|| format!("schema_version must be a non-negative integer, found {v}"))?,
    };
    if version != SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema_version {version}: this perf-gate reads version {SCHEMA_VERSION} (upgrade perf-gate or regenerate the profile)"
        ));
    }
    let ticks = uint(top, "ticks", "")?;
    let deadline_misses = uint(top, "deadline_misses", "")?;
    let partial_fails = uint(top, "partial_fails", "")?;
    let deadline_ms = num(top, "deadline_ms", "")?;
    let deadline_miss_pct = pct(top, "deadline_miss_pct")?;
    let partial_fail_pct = pct(top, "partial_fail_pct")?;
    if deadline_misses > ticks {
        return Err(format!("deadline_misses = {deadline_misses} is more than ticks = {ticks}"));
    }
    if partial_fails > ticks {
        return Err(format!("partial_fails = {partial_fails} is more than ticks = {ticks}"));
    }
    let labels = match top.get("labels") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!("labels.{k} must be a string, found {}", kind(other))),
            })
            .collect::<Checked<_>>()?,
        Some(v) => return Err(format!("labels must be an object, found {}", kind(v))),
    };
    let stages_v = top.get("stages").ok_or("missing key \"stages\"")?;
    let stages_m = stages_v.as_object().ok_or_else(|| format!("stages must be an object, found {}", kind(stages_v)))?;
    let mut stages = BTreeMap::new();
    for (name, v) in stages_m {
        stages.insert(name.clone(), stage(v, &format!("stages.{name}"))?);
    }
    if let Some(ex) = top.get("exchange") {
        let m = ex.as_object().ok_or_else(|| format!("exchange must be an object, found {}", kind(ex)))?;
        for (name, v) in m {
            stage(v, &format!("exchange.{name}"))?;
        }
    }
    if ticks > 0 && !stages.contains_key("tick_total") {
        return Err(format!("ticks = {ticks} but stages has no \"tick_total\""));
    }
    Ok(Profile {
        path: path.to_path_buf(),
        labels,
        deadline_ms,
        ticks,
        deadline_misses,
        deadline_miss_pct,
        partial_fails,
        partial_fail_pct,
        stages,
    })
}

fn stage(v: &Value, at: &str) -> Checked<Stage> {
    let m = v.as_object().ok_or_else(|| format!("{at} must be an object, found {}", kind(v)))?;
    let count = uint(m, "count", at)?;
    let sum_ms = num(m, "sum_ms", at)?;
    let p50_ms = num(m, "p50_ms", at)?;
    let p95_ms = num(m, "p95_ms", at)?;
    let p99_ms = num(m, "p99_ms", at)?;
    let max_ms = num(m, "max_ms", at)?;
    let bv = m.get("buckets").ok_or_else(|| format!("{at}: missing key \"buckets\""))?;
    let arr = bv.as_array().ok_or_else(|| format!("{at}.buckets must be an array, found {}", kind(bv)))?;
    let mut buckets = Vec::with_capacity(arr.len());
    let mut total: u64 = 0;
    let mut prev_upper = 0u64;
    for (i, b) in arr.iter().enumerate() {
        let here = format!("{at}.buckets[{i}]");
        let triple = b
            .as_array()
            .filter(|a| a.len() == 3)
            .ok_or_else(|| format!("{here} must be [lower_ns, upper_ns, count], found {}", short(b)))?;
        let int = |j: usize, what: &str| {
            triple[j]
                .as_u64()
                .ok_or_else(|| format!("{here}: {what} must be a non-negative integer, found {}", short(&triple[j])))
        };
        let (lower_ns, upper_ns, c) = (int(0, "lower_ns")?, int(1, "upper_ns")?, int(2, "count")?);
        if lower_ns >= upper_ns {
            return Err(format!("{here}: lower_ns {lower_ns} must be below upper_ns {upper_ns}"));
        }
        if i > 0 && lower_ns < prev_upper {
            return Err(format!(
                "{here}: buckets must be ascending and not overlap ({lower_ns} < previous upper {prev_upper})"
            ));
        }
        prev_upper = upper_ns;
        total = total.checked_add(c).ok_or_else(|| format!("{here}: counts overflow"))?;
        if c > 0 {
            buckets.push(Bucket { lower_ns, upper_ns, count: c });
        }
    }
    if total != count {
        return Err(format!("{at}: bucket counts sum to {total} but count is {count}"));
    }
    Ok(Stage { count, sum_ms, p50_ms, p95_ms, p99_ms, max_ms, buckets })
}

fn field<'a>(m: &'a Map<String, Value>, key: &str, at: &str) -> Checked<&'a Value> {
    m.get(key).ok_or_else(|| format!("{}missing key \"{key}\"", prefix(at)))
}

fn prefix(at: &str) -> String {
    if at.is_empty() { String::new() } else { format!("{at}: ") }
}

fn dotted(at: &str, key: &str) -> String {
    if at.is_empty() { key.to_owned() } else { format!("{at}.{key}") }
}

fn uint(m: &Map<String, Value>, key: &str, at: &str) -> Checked<u64> {
    let v = field(m, key, at)?;
    v.as_u64().ok_or_else(|| match v.as_f64() {
        Some(x) if x < 0.0 => format!("{} = {x} is negative", dotted(at, key)),
        _ => format!("{} must be a non-negative integer, found {}", dotted(at, key), short(v)),
    })
}

fn num(m: &Map<String, Value>, key: &str, at: &str) -> Checked<f64> {
    let v = field(m, key, at)?;
    let x = v.as_f64().ok_or_else(|| format!("{} must be a number, found {}", dotted(at, key), short(v)))?;
    if !x.is_finite() {
        return Err(format!("{} = {x} is not a finite number", dotted(at, key)));
    }
    if x < 0.0 {
        return Err(format!("{} = {x} is negative", dotted(at, key)));
    }
    Ok(x)
}

fn pct(m: &Map<String, Value>, key: &str) -> Checked<f64> {
    let x = num(m, key, "")?;
    if x > 100.0 {
        return Err(format!("{key} = {x} is above 100"));
    }
    Ok(x)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 { format!("{}…", s.chars().take(40).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn doc(stages: &str) -> String {
        format!(
            r#"{{"schema":"mm-trace/perf-profile","schema_version":1,"labels":{{}},"deadline_ms":200.0,
            "ticks":3,"deadline_misses":0,"deadline_miss_pct":0.0,"partial_fails":0,"partial_fail_pct":0.0,
            "stages":{stages}}}"#
        )
    }

    const TICK: &str = r#"{"tick_total":{"count":3,"sum_ms":3.0,"p50_ms":1.0,"p95_ms":1.0,"p99_ms":1.0,"max_ms":1.0,
        "buckets":[[1000000,1015625,2],[1015625,1031250,1]]}}"#;

    fn err(text: &str) -> String {
        parse(text.as_bytes(), Path::new("p.json")).unwrap_err().to_string()
    }

    #[test]
    fn valid_profile_parses() {
        let p = parse(doc(TICK).as_bytes(), Path::new("p.json")).unwrap();
        let t = &p.stages["tick_total"];
        assert_eq!(t.count, 3);
        assert_eq!(t.buckets.len(), 2);
        assert!((t.quantile_ms(0.5).unwrap() - 1.0078125).abs() < 1e-9);
    }

    #[test]
    fn errors_are_one_line_and_name_the_file() {
        let cases = [
            ("", "empty file"),
            ("{", "not valid JSON"),
            ("[]", "expected a JSON object"),
            (r#"{"schema":"x"}"#, "schema is \"x\""),
            (r#"{"schema":"mm-trace/perf-profile","schema_version":2}"#, "unsupported schema_version 2"),
            (r#"{"schema":"mm-trace/perf-profile"}"#, "missing key \"schema_version\""),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.starts_with("p.json: "), "{e}");
            assert!(e.contains(want), "{e} should contain {want}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = err(&doc(&TICK.replace("\"count\":3", "\"count\":4")));
        assert!(e.contains("stages.tick_total: bucket counts sum to 3 but count is 4"), "{e}");
        let e = err(&doc(&TICK.replace("\"sum_ms\":3.0", "\"sum_ms\":-3.0")));
        assert!(e.contains("stages.tick_total.sum_ms = -3 is negative"), "{e}");
        let e = err(&doc(&TICK.replace("\"p95_ms\":1.0,", "")));
        assert!(e.contains("stages.tick_total: missing key \"p95_ms\""), "{e}");
        let e = err(&doc(&TICK.replace("[1015625,1031250,1]", "[1015625,1000000,1]")));
        assert!(e.contains("lower_ns 1015625 must be below upper_ns"), "{e}");
        let e = err(&doc("{}"));
        assert!(e.contains("no \"tick_total\""), "{e}");
        let e = err(&doc(TICK).replace("\"ticks\":3", "\"ticks\":-3"));
        assert!(e.contains("ticks = -3 is negative"), "{e}");
        let e = err(&doc(TICK).replace("\"deadline_miss_pct\":0.0", "\"deadline_miss_pct\":NaN"));
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn merge_adds_buckets() {
        let p = parse(doc(TICK).as_bytes(), Path::new("p.json")).unwrap();
        let mut t = p.stages["tick_total"].clone();
        t.merge(&p.stages["tick_total"]);
        assert_eq!(t.count, 6);
        assert_eq!(t.buckets.iter().map(|b| b.count).collect::<Vec<_>>(), [4, 2]);
    }
}

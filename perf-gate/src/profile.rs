//! Reading `perf_profile.json` (schema version 1, `docs/PROFILE_SCHEMA.md`) with a strict check.
//!
//! The document's types, the quantile rule and the merge of histograms are mm-trace's
//! ([`mm_trace::profile`]), so perf-gate reads exactly what the runtime writes and recomputes
//! quantiles exactly as the runtime computes them. The text is parsed into a
//! [`serde_json::Value`] first and checked field by field, so every problem is reported as one
//! line that names the file and the offending key; the checked value is then deserialized into
//! [`mm_trace::profile::Profile`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

pub use mm_trace::profile::{Bucket, SCHEMA, SCHEMA_VERSION, StageProfile};

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

/// A checked `perf_profile.json` and where it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Where it was read from (as given on the command line).
    pub path: PathBuf,
    /// The document. Every stage's (and exchange entry's) buckets are the non-empty ones,
    /// ascending and not overlapping, and their counts sum to the stage's `count`.
    pub doc: mm_trace::profile::Profile,
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

/// Refuses a profile that recorded no ticks: nothing in it can be compared, and comparing it
/// would turn every stage into "removed" or "new" instead of a verdict. The error names the
/// file and the likely cause.
pub fn require_ticks(p: &Profile) -> Result<(), InputError> {
    if p.doc.ticks > 0 {
        return Ok(());
    }
    let samples: u64 = p.doc.stages.values().map(|s| s.count).fold(0, u64::saturating_add);
    let message = if samples == 0 {
        "has no ticks (ticks = 0, no stage samples): nothing was recorded; most likely the \
         instrumentation was compiled out (mm-trace built with default-features = false, or \
         trace.enabled: false) or the benchmark did not run"
            .to_owned()
    } else {
        format!(
            "has no ticks (ticks = 0, though its stages have {samples} samples): no #[traced_tick] \
             function completed, so the benchmark did not run its tick loop (the instrumentation \
             was not compiled out: stages were recorded)"
        )
    };
    Err(InputError::new(p.path.display(), message))
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
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| InputError::new(&shown, format!("not valid JSON: {e}")))?;
    check(&value).map_err(|message| InputError::new(&shown, message))?;
    // `check` accepts only what the schema's types describe, so this fails only if the two
    // disagree; the message then still names the file and serde's account of the field.
    let mut doc = mm_trace::profile::Profile::deserialize(&value)
        .map_err(|e| InputError::new(&shown, format!("does not match the profile schema: {e}")))?;
    for stage in doc.stages.values_mut().chain(doc.exchange.values_mut().map(|e| &mut e.stats)) {
        stage.buckets.retain(|b| b.count > 0);
    }
    Ok(Profile { path: path.to_path_buf(), doc })
}

type Checked<T> = Result<T, String>;

fn check(doc: &Value) -> Checked<()> {
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
    num(top, "deadline_ms", "")?;
    pct(top, "deadline_miss_pct")?;
    pct(top, "partial_fail_pct")?;
    if deadline_misses > ticks {
        return Err(format!("deadline_misses = {deadline_misses} is more than ticks = {ticks}"));
    }
    if partial_fails > ticks {
        return Err(format!("partial_fails = {partial_fails} is more than ticks = {ticks}"));
    }
    match top.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if !v.is_string() {
                    return Err(format!("labels.{k} must be a string, found {}", kind(v)));
                }
            }
        }
        Some(v) => return Err(format!("labels must be an object, found {}", kind(v))),
    }
    // Keys perf-gate does not use may be missing (older or hand-written profiles), or null
    // where the schema makes them optional; present, they must have the schema's type.
    if let Some(v) = top.get("generator").filter(|v| !v.is_null() && !v.is_string()) {
        return Err(format!("generator must be a string, found {}", kind(v)));
    }
    if top.get("created_unix_ms").is_some_and(|v| !v.is_null()) {
        uint(top, "created_unix_ms", "")?;
    }
    if top.get("sample_rate").is_some_and(|v| !v.is_null()) {
        num(top, "sample_rate", "")?;
    }
    if let Some(g) = top.get("guard_trips") {
        let m = g.as_object().ok_or_else(|| format!("guard_trips must be an object, found {}", kind(g)))?;
        for reason in m.keys() {
            uint(m, reason, "guard_trips")?;
        }
    }
    let stages_v = top.get("stages").ok_or("missing key \"stages\"")?;
    let stages = stages_v.as_object().ok_or_else(|| format!("stages must be an object, found {}", kind(stages_v)))?;
    for (name, v) in stages {
        stage(v, &format!("stages.{name}"))?;
    }
    if let Some(ex) = top.get("exchange") {
        let m = ex.as_object().ok_or_else(|| format!("exchange must be an object, found {}", kind(ex)))?;
        for (name, v) in m {
            let at = format!("exchange.{name}");
            stage(v, &at)?;
            for key in ["verb", "api"] {
                if let Some(x) = v.get(key).filter(|x| !x.is_string()) {
                    return Err(format!("{at}.{key} must be a string, found {}", kind(x)));
                }
            }
        }
    }
    if ticks > 0 && !stages.contains_key("tick_total") {
        return Err(format!("ticks = {ticks} but stages has no \"tick_total\""));
    }
    Ok(())
}

fn stage(v: &Value, at: &str) -> Checked<()> {
    let m = v.as_object().ok_or_else(|| format!("{at} must be an object, found {}", kind(v)))?;
    let count = uint(m, "count", at)?;
    for key in ["sum_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"] {
        num(m, key, at)?;
    }
    let bv = m.get("buckets").ok_or_else(|| format!("{at}: missing key \"buckets\""))?;
    let arr = bv.as_array().ok_or_else(|| format!("{at}.buckets must be an array, found {}", kind(bv)))?;
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
    }
    if total != count {
        return Err(format!("{at}: bucket counts sum to {total} but count is {count}"));
    }
    Ok(())
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

    const TICK: &str = r#"{"tick_total":{"count":3,"sum_ms":3.0,"p50_ms":1.0,"p95_ms":1.0,"p99_ms":1.0,"max_ms":1.02,
        "buckets":[[1000000,1015625,2],[1015625,1031250,1]]}}"#;

    fn err(text: &str) -> String {
        parse(text.as_bytes(), Path::new("p.json")).unwrap_err().to_string()
    }

    #[test]
    fn valid_profile_parses() {
        let p = parse(doc(TICK).as_bytes(), Path::new("p.json")).unwrap();
        let t = &p.doc.stages["tick_total"];
        assert_eq!(t.count, 3);
        assert_eq!(t.buckets.len(), 2);
        assert_eq!(t.quantile_ms(0.5), 1.0078125);
        assert_eq!(t.quantile_ms(1.0), 1.02, "the top bucket's midpoint is above max_ms");
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
    fn optional_keys_may_be_missing_or_null_but_not_of_another_type() {
        let p = parse(doc(TICK).as_bytes(), Path::new("p.json")).unwrap();
        assert_eq!((p.doc.generator, p.doc.sample_rate), (None, None));
        let with = |extra: &str| doc(TICK).replacen('{', &format!("{{{extra},"), 1);
        let ok =
            with(r#""generator":null,"created_unix_ms":null,"sample_rate":null,"labels":null,"guard_trips":{"a":1}"#);
        assert_eq!(parse(ok.as_bytes(), Path::new("p.json")).unwrap().doc.guard_trips["a"], 1);
        let cases = [
            (r#""generator":5"#, "p.json: generator must be a string, found a number"),
            (r#""created_unix_ms":-1"#, "p.json: created_unix_ms = -1 is negative"),
            (r#""sample_rate":"x""#, "p.json: sample_rate must be a number, found \"x\""),
            (r#""guard_trips":[]"#, "p.json: guard_trips must be an object, found an array"),
            (r#""guard_trips":{"vol":1.5}"#, "p.json: guard_trips.vol must be a non-negative integer, found 1.5"),
            (r#""exchange":{"GET q":{"verb":1}}"#, "p.json: exchange.GET q: missing key \"count\""),
        ];
        for (extra, want) in cases {
            assert_eq!(err(&with(extra)), want);
        }
        let entry = TICK.trim_start_matches(r#"{"tick_total":"#).trim_end_matches('}').to_owned() + "}";
        let bad_verb = with(&format!(r#""exchange":{{"GET q":{}}}"#, entry.replacen('{', r#"{"verb":1,"#, 1)));
        assert_eq!(err(&bad_verb), "p.json: exchange.GET q.verb must be a string, found a number");
        let good = with(&format!(r#""exchange":{{"GET q":{}}}"#, entry.replacen('{', r#"{"verb":"GET","#, 1)));
        let p = parse(good.as_bytes(), Path::new("p.json")).unwrap();
        assert_eq!((p.doc.exchange["GET q"].verb.as_str(), p.doc.exchange["GET q"].stats.count), ("GET", 3));
    }

    #[test]
    fn a_profile_without_ticks_is_refused_with_its_likely_cause() {
        let p = parse(doc(TICK).as_bytes(), Path::new("p.json")).unwrap();
        assert_eq!(require_ticks(&p), Ok(()));
        let none = doc("{}").replace("\"ticks\":3", "\"ticks\":0");
        let e = require_ticks(&parse(none.as_bytes(), Path::new("p.json")).unwrap()).unwrap_err().to_string();
        assert!(e.starts_with("p.json: has no ticks (ticks = 0, no stage samples)"), "{e}");
        assert!(e.contains("compiled out (mm-trace built with default-features = false"), "{e}");
        assert!(e.contains("the benchmark did not run") && !e.contains('\n'), "{e}");
        let stages_only = doc(TICK).replace("\"ticks\":3", "\"ticks\":0");
        let e = require_ticks(&parse(stages_only.as_bytes(), Path::new("p.json")).unwrap()).unwrap_err().to_string();
        assert!(e.starts_with("p.json: has no ticks (ticks = 0, though its stages have 3 samples)"), "{e}");
        assert!(e.contains("did not run its tick loop"), "{e}");
    }

    #[test]
    fn empty_buckets_are_dropped() {
        let text = doc(&TICK.replace("[1015625,1031250,1]", "[1015625,1031250,1],[1031250,1046875,0]"));
        let p = parse(text.as_bytes(), Path::new("p.json")).unwrap();
        assert_eq!(p.doc.stages["tick_total"].buckets.len(), 2);
    }

    #[test]
    fn merge_adds_buckets() {
        let p = parse(doc(TICK).as_bytes(), Path::new("p.json")).unwrap();
        let mut t = p.doc.stages["tick_total"].clone();
        t.merge(&p.doc.stages["tick_total"]);
        assert_eq!(t.count, 6);
        assert_eq!(t.buckets.iter().map(|b| b.count).collect::<Vec<_>>(), [4, 2]);
    }
}

//! Kept ticks as OTLP trace data (`opentelemetry-proto`'s generated types, protobuf bodies):
//! one span per tick and per stage or exchange span, parents as in the tick's tree.
//!
//! What each carries, following the OpenTelemetry conventions where they speak:
//! - the tick: kind `INTERNAL`, its name, `mm_trace.tick_id`, `mm_trace.keep_reason`
//!   (`sampled`/`slow`), `mm_trace.deadline_missed`, `mm_trace.deadline_ms`,
//!   `mm_trace.partial_fail`, `mm_trace.error`, `mm_trace.spans_dropped` when some were, the
//!   annotations under their own keys (a key given more than once: an array, in call order);
//!   status `ERROR` with a message when it missed its deadline, failed partly or returned `Err`;
//! - a stage: kind `INTERNAL`; an exchange request: kind `CLIENT`, `"VERB api"`, with
//!   `mm_trace.exchange.verb`, `mm_trace.exchange.api` and its run-time labels under their names;
//!   status `ERROR` when its function returned `Err`, `mm_trace.cancelled` for a dropped future;
//! - `thread.id` and `thread.name` on the tick's span and on each span recorded on another
//!   thread (carried work; the others ran where the tick ran, and leaving the pair out of them
//!   halves the encoding's cost);
//! - every span: times in Unix nanoseconds, W3C flags (sampled; the tick's parent marked remote
//!   when it continues an incoming trace).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, SpanFlags, Status};
use prost::Message;

use crate::summary::{TickTrace, TraceSpan};

/// The instrumentation scope of every span.
const SCOPE: &str = "mm-trace";

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn string(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_owned()))
}

fn int(key: &str, v: u64) -> KeyValue {
    kv(key, any_value::Value::IntValue(i64::try_from(v).unwrap_or(i64::MAX)))
}

fn boolean(key: &str, v: bool) -> KeyValue {
    kv(key, any_value::Value::BoolValue(v))
}

/// The resource of every export: `pairs` (service.name first, then what
/// `OTEL_RESOURCE_ATTRIBUTES` added) and this process's own attributes.
pub(crate) fn resource(pairs: &[(String, String)]) -> Resource {
    let mut attributes: Vec<KeyValue> = pairs.iter().map(|(k, v)| string(k, v)).collect();
    let mut set = |kv: KeyValue| {
        if !attributes.iter().any(|a| a.key == kv.key) {
            attributes.push(kv);
        }
    };
    set(string("service.instance.id", instance_id()));
    if let Some(host) = host_name() {
        set(string("host.name", &host));
    }
    set(int("process.pid", u64::from(std::process::id())));
    set(string("telemetry.sdk.name", SCOPE));
    set(string("telemetry.sdk.language", "rust"));
    set(string("telemetry.sdk.version", env!("CARGO_PKG_VERSION")));
    Resource { attributes, ..Default::default() }
}

/// This process's `service.instance.id`: a random (version 4) UUID drawn once.
pub(crate) fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let word = |salt: u64| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(salt);
            h.write_u32(std::process::id());
            if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                h.write_u128(t.as_nanos());
            }
            h.finish()
        };
        let (hi, lo) = (word(1), word(2));
        // Version 4 (random), variant 10.
        let hi = (hi & !0xf000) | 0x4000;
        let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    })
}

fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
}

/// The export request of `ticks` under `resource`.
pub(crate) fn request(ticks: &[TickTrace], resource: &Resource) -> ExportTraceServiceRequest {
    let mut spans = Vec::with_capacity(ticks.iter().map(|t| t.spans.len() + 1).sum());
    for t in ticks {
        tick_spans(t, &mut spans);
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The protobuf body of [`request`].
pub(crate) fn body(ticks: &[TickTrace], resource: &Resource) -> Vec<u8> {
    request(ticks, resource).encode_to_vec()
}

/// Lowercase hex to bytes; `None` if it is not exactly `len` bytes of hex.
fn unhex(s: &str, len: usize) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let b = s.as_bytes();
    if b.len() != 2 * len {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    for pair in b.chunks_exact(2) {
        out.push(digit(pair[0])? << 4 | digit(pair[1])?);
    }
    Some(out)
}

/// W3C trace flags (every exported tick was kept: sampled) and whether the parent is remote.
fn flags(remote_parent: Option<bool>) -> u32 {
    let sampled = 0x01;
    match remote_parent {
        None => sampled,
        Some(false) => sampled | SpanFlags::ContextHasIsRemoteMask as u32,
        Some(true) => sampled | SpanFlags::ContextHasIsRemoteMask as u32 | SpanFlags::ContextIsRemoteMask as u32,
    }
}

fn thread_attrs(t: &TickTrace, thread: u32, into: &mut Vec<KeyValue>) {
    into.push(int("thread.id", u64::from(thread)));
    if let Some((_, name)) = t.threads.iter().find(|(id, _)| *id == thread) {
        into.push(string("thread.name", name));
    }
}

fn tick_spans(t: &TickTrace, out: &mut Vec<Span>) {
    let trace_id = unhex(&t.trace_id, 16).unwrap_or_default();
    let start = t.start_unix_ns;
    let mut attributes = vec![
        int("mm_trace.tick_id", t.tick_id),
        string("mm_trace.keep_reason", t.reason.as_str()),
        boolean("mm_trace.deadline_missed", t.deadline_missed),
        boolean("mm_trace.partial_fail", t.partial_fail),
        boolean("mm_trace.error", t.error),
    ];
    if let Some(d) = t.deadline_ns {
        attributes.push(kv("mm_trace.deadline_ms", any_value::Value::DoubleValue(d as f64 / 1e6)));
    }
    if t.spans_dropped > 0 {
        attributes.push(int("mm_trace.spans_dropped", t.spans_dropped));
    }
    thread_attrs(t, t.thread, &mut attributes);
    annotations(&t.annotations, &mut attributes);
    let mut problems = Vec::new();
    if t.error {
        problems.push("the tick returned Err".to_owned());
    }
    if t.deadline_missed {
        match t.deadline_ns {
            Some(d) => problems.push(format!(
                "deadline missed: {:.3} ms > {:.3} ms",
                t.duration_ns as f64 / 1e6,
                d as f64 / 1e6
            )),
            None => problems.push("deadline missed".to_owned()),
        }
    }
    if t.partial_fail {
        problems.push("partial failure (mm_trace::partial_fail)".to_owned());
    }
    out.push(Span {
        trace_id: trace_id.clone(),
        span_id: unhex(&t.span_id, 8).unwrap_or_default(),
        parent_span_id: t.parent_span_id.as_deref().and_then(|p| unhex(p, 8)).unwrap_or_default(),
        flags: flags(Some(t.parent_span_id.is_some())),
        name: t.name.clone(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(t.duration_ns),
        attributes,
        status: status(problems),
        ..Default::default()
    });
    for s in &t.spans {
        out.push(span(t, s, &trace_id));
    }
}

fn span(t: &TickTrace, s: &TraceSpan, trace_id: &[u8]) -> Span {
    let exchange = s.kind == "exchange";
    let mut attributes = Vec::with_capacity(4 + s.labels.len());
    if exchange {
        let (verb, api) = s.name.split_once(' ').unwrap_or(("", s.name.as_str()));
        attributes.push(string("mm_trace.exchange.verb", verb));
        attributes.push(string("mm_trace.exchange.api", api));
        for (k, v) in &s.labels {
            attributes.push(string(k, v));
        }
    }
    if s.cancelled {
        attributes.push(boolean("mm_trace.cancelled", true));
    }
    if s.thread != t.thread {
        thread_attrs(t, s.thread, &mut attributes);
    }
    let problems = if s.error { vec!["returned Err".to_owned()] } else { Vec::new() };
    Span {
        trace_id: trace_id.to_vec(),
        span_id: unhex(&s.span_id, 8).unwrap_or_default(),
        parent_span_id: unhex(&s.parent_span_id, 8).unwrap_or_default(),
        flags: flags(Some(false)),
        name: s.name.clone(),
        kind: if exchange { SpanKind::Client } else { SpanKind::Internal } as i32,
        start_time_unix_nano: t.start_unix_ns.saturating_add(s.start_ns),
        end_time_unix_nano: t.start_unix_ns.saturating_add(s.end_ns),
        attributes,
        status: status(problems),
        ..Default::default()
    }
}

/// `ERROR` with the problems as its message, or unset (the conventions leave success unset).
fn status(problems: Vec<String>) -> Option<Status> {
    (!problems.is_empty()).then(|| Status { message: problems.join("; "), code: StatusCode::Error as i32 })
}

/// Annotations under their keys; a key given more than once becomes an array of its values.
fn annotations(list: &[(String, String)], into: &mut Vec<KeyValue>) {
    let mut keys: Vec<&str> = Vec::new();
    for (k, _) in list {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    for key in keys {
        let mut values = list.iter().filter(|(k, _)| k == key).map(|(_, v)| v);
        let first = values.next().expect("the key came from the list");
        let rest: Vec<&String> = values.collect();
        if rest.is_empty() {
            into.push(string(key, first));
        } else {
            let all = std::iter::once(first)
                .chain(rest)
                .map(|v| AnyValue { value: Some(any_value::Value::StringValue(v.clone())) });
            into.push(kv(key, any_value::Value::ArrayValue(ArrayValue { values: all.collect() })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::KeepReason;

    fn sample() -> TickTrace {
        let span = |id: u32, parent: &str, name: &str, kind: &'static str, start: u64, end: u64| TraceSpan {
            id,
            parent: None,
            span_id: format!("{id:016x}"),
            parent_span_id: parent.to_owned(),
            name: name.to_owned(),
            kind,
            start_ns: start,
            end_ns: end,
            thread: if kind == "exchange" { 1 } else { 2 },
            error: kind == "exchange",
            labels: if kind == "exchange" { vec![("venue".into(), "binance".into())] } else { Vec::new() },
            ..Default::default()
        };
        TickTrace {
            tick_id: 7,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_span_id: Some("1111111111111111".into()),
            start_unix_ns: 1_700_000_000_000_000_000,
            name: "tick".into(),
            reason: KeepReason::Slow,
            duration_ns: 3_000_000,
            deadline_missed: true,
            deadline_ns: Some(2_000_000),
            partial_fail: true,
            annotations: vec![("sym".into(), "A".into()), ("n".into(), "1".into()), ("sym".into(), "B".into())],
            spans: vec![
                span(1, "00f067aa0ba902b7", "fetch_md", "stage", 10, 900),
                span(2, "0000000000000001", "POST order", "exchange", 100, 800),
            ],
            threads: vec![(1, "main".into()), (2, "pool-1".into())],
            thread: 1,
            ..Default::default()
        }
    }

    fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        s.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn a_tick_becomes_its_spans_with_attributes_status_and_round_trips() {
        let res = resource(&[("service.name".into(), "bot".into())]);
        let bytes = body(&[sample()], &res);
        let req = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(req, request(&[sample()], &res));
        let rs = &req.resource_spans[0];
        let keys: Vec<&str> = rs.resource.as_ref().unwrap().attributes.iter().map(|a| a.key.as_str()).collect();
        for k in [
            "service.name",
            "service.instance.id",
            "telemetry.sdk.name",
            "telemetry.sdk.language",
            "telemetry.sdk.version",
        ] {
            assert!(keys.contains(&k), "{keys:?}");
        }
        let spans = &rs.scope_spans[0].spans;
        assert_eq!(spans.len(), 3);
        let (tick, stage, ex) = (&spans[0], &spans[1], &spans[2]);
        assert_eq!(tick.trace_id, unhex("4bf92f3577b34da6a3ce929d0e0e4736", 16).unwrap());
        assert_eq!(tick.parent_span_id, unhex("1111111111111111", 8).unwrap());
        assert_eq!(tick.flags, 0x301, "sampled, parent remote");
        assert_eq!(stage.parent_span_id, tick.span_id);
        assert_eq!(stage.flags, 0x101);
        assert_eq!(
            (tick.start_time_unix_nano, tick.end_time_unix_nano),
            (1_700_000_000_000_000_000, 1_700_000_000_003_000_000)
        );
        assert_eq!(stage.start_time_unix_nano, 1_700_000_000_000_000_010);
        let st = tick.status.as_ref().unwrap();
        assert_eq!(st.code, StatusCode::Error as i32);
        assert!(
            st.message.contains("deadline missed: 3.000 ms > 2.000 ms") && st.message.contains("partial failure"),
            "{}",
            st.message
        );
        assert_eq!(attr(tick, "mm_trace.keep_reason"), Some(&any_value::Value::StringValue("slow".into())));
        assert_eq!(attr(tick, "mm_trace.tick_id"), Some(&any_value::Value::IntValue(7)));
        assert_eq!(attr(tick, "n"), Some(&any_value::Value::StringValue("1".into())));
        let Some(any_value::Value::ArrayValue(sym)) = attr(tick, "sym") else { panic!("sym is an array") };
        assert_eq!(sym.values.len(), 2);
        assert_eq!(stage.status, None, "success leaves the status unset");
        assert_eq!(ex.kind, SpanKind::Client as i32);
        assert_eq!(attr(ex, "mm_trace.exchange.verb"), Some(&any_value::Value::StringValue("POST".into())));
        assert_eq!(attr(ex, "mm_trace.exchange.api"), Some(&any_value::Value::StringValue("order".into())));
        assert_eq!(attr(ex, "venue"), Some(&any_value::Value::StringValue("binance".into())));
        assert_eq!(ex.status.as_ref().unwrap().code, StatusCode::Error as i32);
        assert_eq!(attr(tick, "thread.name"), Some(&any_value::Value::StringValue("main".into())));
        assert_eq!(attr(ex, "thread.name"), None, "on the tick's thread: said once, by the tick");
        assert_eq!(attr(stage, "thread.name"), Some(&any_value::Value::StringValue("pool-1".into())), "carried work");
        assert_eq!(attr(stage, "thread.id"), Some(&any_value::Value::IntValue(2)));
    }

    #[test]
    fn instance_id_is_a_version_4_uuid() {
        let id = instance_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_eq!(id, instance_id(), "one per process");
    }
}

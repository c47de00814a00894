//! W3C trace context: trace ids of kept ticks, span ids, `traceparent` in and out.
//!
//! Ids cost nothing per span: a kept tick's trace id is drawn once at its end (or at its start
//! when it continues an incoming trace, or when `traceparent()` asks for it), from a process seed
//! drawn once and the tick id; a span's id is a hash of the trace id and the span's id in the
//! tick, computed when the trace is converted. Under the test clock the seed is fixed, so ids
//! are the same on every run.

use std::sync::OnceLock;

use crate::sampling::mix;

/// A W3C trace id (16 bytes, as two words: high, low); all zero is "none".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub(crate) struct TraceId(pub(crate) u64, pub(crate) u64);

impl TraceId {
    /// No trace id yet.
    pub(crate) const NONE: TraceId = TraceId(0, 0);

    pub(crate) fn is_none(self) -> bool {
        self == TraceId::NONE
    }

    /// 32 lowercase hex digits.
    pub(crate) fn hex(self) -> String {
        format!("{:016x}{:016x}", self.0, self.1)
    }

    /// The span id of the span with id `local` in a tick of this trace (0: the tick itself).
    pub(crate) fn span_id(self, local: u32) -> u64 {
        // Never zero (W3C reserves the all-zero id).
        mix(self.1 ^ mix(u64::from(local) ^ self.0)) | 1
    }
}

/// 16 lowercase hex digits.
pub(crate) fn span_hex(id: u64) -> String {
    format!("{id:016x}")
}

fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        h.finish()
    })
}

/// The trace id of tick `tick_id` started fresh (not continuing an incoming trace).
pub(crate) fn new_trace_id(tick_id: u64) -> TraceId {
    let seed = if crate::clock::source_name() == "test" { 0x6d6d_2d74_7261_6365 } else { process_seed() };
    let hi = mix(seed ^ tick_id.rotate_left(17));
    let lo = mix(hi ^ tick_id ^ 0x9e37_79b9_7f4a_7c15);
    // All zero is invalid; a zero word is fine but make the id non-zero for sure.
    TraceId(hi, lo | u64::from(hi == 0 && lo == 0))
}

/// An incoming `traceparent`: the trace to join, the parent span, whether it was sampled.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Parent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: u64,
    pub(crate) sampled: bool,
}

/// Parses a W3C `traceparent` header value (`00-<32 hex>-<16 hex>-<2 hex>`; a higher version
/// may carry more fields after these, as the specification allows). `None`: malformed.
pub(crate) fn parse_traceparent(value: &str) -> Option<Parent> {
    let v = value.trim();
    let b = v.as_bytes();
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let hex = |s: &str| -> Option<u64> {
        (s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
            .then(|| u64::from_str_radix(s, 16).ok())?
    };
    let version = hex(&v[0..2])?;
    if version == 0xff || (version == 0 && b.len() != 55) || (version > 0 && b.len() > 55 && b[55] != b'-') {
        return None;
    }
    let trace_id = TraceId(hex(&v[3..19])?, hex(&v[19..35])?);
    let span_id = hex(&v[36..52])?;
    let flags = hex(&v[53..55])?;
    if trace_id.is_none() || span_id == 0 {
        return None;
    }
    Some(Parent { trace_id, span_id, sampled: flags & 1 == 1 })
}

/// A `traceparent` value: version 00.
pub(crate) fn format_traceparent(trace_id: TraceId, span_id: u64, sampled: bool) -> String {
    format!("00-{}-{:016x}-{:02x}", trace_id.hex(), span_id, u8::from(sampled))
}

/// What `#[traced_tick(parent = EXPR)]` accepts: `&str`, `String` or an `Option` of either.
#[diagnostic::on_unimplemented(
    message = "`parent` takes an incoming W3C traceparent, but `{Self}` is not one",
    label = "expected `&str`, `String` or an `Option` of either",
    note = "pass the request's `traceparent` header value, e.g. `parent = req.header(\"traceparent\")`"
)]
pub trait IntoTraceparent {
    /// The header value, if any.
    fn traceparent(&self) -> Option<&str>;
}

impl IntoTraceparent for str {
    fn traceparent(&self) -> Option<&str> {
        Some(self)
    }
}

impl IntoTraceparent for String {
    fn traceparent(&self) -> Option<&str> {
        Some(self)
    }
}

impl<T: IntoTraceparent + ?Sized> IntoTraceparent for &T {
    fn traceparent(&self) -> Option<&str> {
        (**self).traceparent()
    }
}

impl<T: IntoTraceparent> IntoTraceparent for Option<T> {
    fn traceparent(&self) -> Option<&str> {
        self.as_ref().and_then(IntoTraceparent::traceparent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_what_w3c_rejects() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let p = parse_traceparent(tp).unwrap();
        assert_eq!(p.trace_id.hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span_hex(p.span_id), "00f067aa0ba902b7");
        assert!(p.sampled);
        assert_eq!(format_traceparent(p.trace_id, p.span_id, true), tp);
        assert!(!parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap().sampled);
        // A future version may append fields.
        assert!(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_are_distinct_and_nonzero() {
        let mut seen = std::collections::HashSet::new();
        for tick in 1..2000 {
            let t = new_trace_id(tick);
            assert!(!t.is_none());
            assert!(seen.insert(t));
            assert_ne!(t.span_id(0), t.span_id(1));
            assert_ne!(t.span_id(7), 0);
        }
    }
}

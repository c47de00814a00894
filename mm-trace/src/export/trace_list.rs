//! The list of kept ticks still in memory, as `GET /traces` answers it.

use serde_json::{Value, json};

use crate::summary::KeepReason;

/// A kept tick in the ring of recent traces (what `/traces` lists of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptTick {
    pub(crate) tick_id: u64,
    /// W3C trace id, 32 lowercase hex.
    pub(crate) trace_id: String,
    /// The tick's name (its function, or its kind).
    pub(crate) name: &'static str,
    pub(crate) reason: KeepReason,
    pub(crate) duration_ns: u64,
    /// When it began, ns since the Unix epoch.
    pub(crate) start_unix_ns: u64,
    pub(crate) deadline_missed: bool,
}

/// A JSON array, newest tick first: per tick its ids, reason, duration (ns, and ms for reading)
/// and the paths that serve it.
pub(crate) fn render(ticks: &[KeptTick]) -> String {
    let list: Vec<Value> = ticks
        .iter()
        .rev()
        .map(|t| {
            let path = format!("/traces/{}?tick_id={}", t.trace_id, t.tick_id);
            json!({
                "tick_id": t.tick_id,
                "trace_id": t.trace_id,
                "name": t.name,
                "reason": t.reason.as_str(),
                "duration_ns": t.duration_ns,
                "duration_ms": t.duration_ns as f64 / 1e6,
                "start_unix_ns": t.start_unix_ns,
                "deadline_missed": t.deadline_missed,
                "golden": path,
                "chrome": format!("{path}&format=chrome"),
                "svg": format!("/traces/{}.svg?tick_id={}", t.trace_id, t.tick_id),
            })
        })
        .collect();
    super::to_pretty(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_newest_first_with_links() {
        let tick = |tick_id, reason| KeptTick {
            tick_id,
            trace_id: format!("{tick_id:032x}"),
            name: "tick",
            reason,
            duration_ns: 1_500_000,
            start_unix_ns: 1_700_000_000_000_000_000,
            deadline_missed: reason == KeepReason::Slow,
        };
        let text = render(&[tick(1, KeepReason::Sampled), tick(2, KeepReason::Slow)]);
        let v: Value = serde_json::from_str(&text).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["tick_id"], 2);
        assert_eq!(a[0]["reason"], "slow");
        assert_eq!(a[0]["duration_ms"], 1.5);
        assert_eq!(a[1]["trace_id"], format!("{:032x}", 1));
        assert_eq!(a[1]["golden"], format!("/traces/{:032x}?tick_id=1", 1));
        assert_eq!(render(&[]), "[]\n");
    }
}

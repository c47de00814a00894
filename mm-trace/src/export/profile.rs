//! The `perf_profile.json` writer (schema version 1, `docs/PROFILE_SCHEMA.md`): a [`Summary`] becomes a
//! [`crate::profile::Profile`], printed with sorted keys by `to_pretty`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::profile::{ExchangeProfile, Profile, SCHEMA, SCHEMA_VERSION, StageProfile, TickKindProfile};
use crate::summary::{ExchangeStats, Summary};

static LABELS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

pub(crate) fn set_label(key: &str, value: &str) {
    LABELS.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), value.to_owned());
}

pub(crate) fn clear_labels() {
    LABELS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

pub(crate) fn labels() -> BTreeMap<String, String> {
    LABELS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Renders a profile of `summary`.
pub(crate) fn render(summary: &Summary, labels: &BTreeMap<String, String>, created_unix_ms: u64) -> String {
    let doc = document(summary, labels, created_unix_ms);
    // Serializing plain structs of strings, numbers and string-keyed maps cannot fail.
    super::to_pretty(serde_json::to_value(doc).expect("a profile serializes to JSON"))
}

/// The profile document of `summary`.
fn document(summary: &Summary, labels: &BTreeMap<String, String>, created_unix_ms: u64) -> Profile {
    Profile {
        schema: SCHEMA.to_owned(),
        schema_version: SCHEMA_VERSION,
        generator: Some(concat!("mm-trace ", env!("CARGO_PKG_VERSION")).to_owned()),
        created_unix_ms: Some(created_unix_ms),
        labels: labels.clone(),
        deadline_ms: summary.deadline_ms,
        ticks: summary.ticks,
        deadline_misses: summary.deadline_misses,
        deadline_miss_pct: summary.deadline_miss_pct,
        partial_fails: summary.partial_fails,
        partial_fail_pct: pct(summary.partial_fails, summary.ticks),
        sample_rate: Some(summary.sample_rate),
        stages: summary
            .stages
            .iter()
            .map(|s| (s.name.clone(), StageProfile::from_stats(s)))
            .chain(
                summary
                    .tick_kinds
                    .iter()
                    .map(|k| (format!("tick_total:{}", k.name), StageProfile::from_stats(&k.stats))),
            )
            .collect(),
        exchange: summary
            .exchange
            .iter()
            .map(|e| {
                let entry = ExchangeProfile {
                    verb: e.verb.clone(),
                    api: e.api.clone(),
                    labels: e.labels.iter().cloned().collect(),
                    stats: StageProfile::from_stats(&e.stats),
                };
                (exchange_entry_name(e), entry)
            })
            .collect(),
        tick_kinds: summary
            .tick_kinds
            .iter()
            .map(|k| {
                let kind = TickKindProfile {
                    ticks: k.stats.count,
                    deadline_ms: k.deadline_ms,
                    deadline_misses: k.deadline_misses,
                    deadline_miss_pct: k.deadline_miss_pct,
                };
                (k.name.clone(), kind)
            })
            .collect(),
        guard_trips: summary.guard_trips.iter().cloned().collect(),
        windows: Vec::new(),
    }
}

/// `"VERB api"`, with run-time labels `"VERB api{venue=x}"`.
fn exchange_entry_name(e: &ExchangeStats) -> String {
    let mut name = format!("{} {}", e.verb, e.api);
    if !e.labels.is_empty() {
        let labels: Vec<String> = e.labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
        name.push_str(&format!("{{{}}}", labels.join(",")));
    }
    name
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 * 100.0 / of as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::HistogramSnapshot;
    use crate::summary::{ExchangeStats, StageStats};

    fn histogram(values_ns: &[u64]) -> HistogramSnapshot {
        let mut h = HistogramSnapshot::new();
        for &v in values_ns {
            h.record_ns(v);
        }
        h
    }

    /// A summary with every kind of entry: stages (one-ns buckets and a clamped top bucket
    /// included), an exchange request, guard trips, labels that need escaping.
    fn sample() -> (Summary, BTreeMap<String, String>) {
        let tick = histogram(&[5, 5, 7, 1_000_003, 1_015_625, 40_000_123, 250_000_000]);
        let fetch = histogram(&[120_000, 130_500, 131_000, 2_000_000]);
        let order = histogram(&[3_000_000, 3_100_000]);
        let summary = Summary {
            ticks: 7,
            deadline_misses: 1,
            deadline_miss_pct: 100.0 / 7.0,
            partial_fails: 2,
            deadline_ms: 200.0,
            sample_rate: 0.25,
            stages: vec![
                StageStats::from_histogram("fetch_md", fetch),
                StageStats::from_histogram("tick_total", tick),
                StageStats::with_cancelled("empty".into(), HistogramSnapshot::new(), 3),
            ],
            exchange: vec![ExchangeStats {
                verb: "POST".into(),
                api: "order".into(),
                labels: vec![],
                stats: StageStats::from_histogram("POST order", order),
            }],
            guard_trips: vec![("vol_soft".into(), 4), ("say \"hi\"".into(), 1)],
            ..Summary::default()
        };
        let labels = BTreeMap::from([("track".to_owned(), "canary".to_owned()), ("b\"q".to_owned(), "é\n".to_owned())]);
        (summary, labels)
    }

    /// The exact bytes of a profile: the writer's output is a contract (sorted keys, two-space
    /// indent, buckets one per line, the same float formatting).
    #[test]
    fn render_is_byte_identical_to_the_schema_v1_layout() {
        let (summary, labels) = sample();
        let text = render(&summary, &labels, 1_764_000_000_000);
        assert_eq!(text, EXPECTED, "\n{text}");
    }

    const EXPECTED: &str = r#"{
  "created_unix_ms": 1764000000000,
  "deadline_miss_pct": 14.285714285714286,
  "deadline_misses": 1,
  "deadline_ms": 200.0,
  "exchange": {
    "POST order": {
      "api": "order",
      "buckets": [
        [2981888, 3014656, 1],
        [3080192, 3112960, 1]
      ],
      "count": 2,
      "max_ms": 3.1,
      "p50_ms": 2.998272,
      "p95_ms": 3.096576,
      "p99_ms": 3.096576,
      "sum_ms": 6.1,
      "verb": "POST"
    }
  },
  "generator": "mm-trace 0.1.0",
  "guard_trips": {
    "say \"hi\"": 1,
    "vol_soft": 4
  },
  "labels": {
    "b\"q": "é\n",
    "track": "canary"
  },
  "partial_fail_pct": 28.571428571428573,
  "partial_fails": 2,
  "sample_rate": 0.25,
  "schema": "mm-trace/perf-profile",
  "schema_version": 1,
  "stages": {
    "empty": {
      "buckets": [],
      "count": 0,
      "max_ms": 0.0,
      "p50_ms": 0.0,
      "p95_ms": 0.0,
      "p99_ms": 0.0,
      "sum_ms": 0.0
    },
    "fetch_md": {
      "buckets": [
        [119808, 120832, 1],
        [130048, 131072, 2],
        [1998848, 2015232, 1]
      ],
      "count": 4,
      "max_ms": 2.0,
      "p50_ms": 0.13056,
      "p95_ms": 2.0,
      "p99_ms": 2.0,
      "sum_ms": 2.3815
    },
    "tick_total": {
      "buckets": [
        [5, 6, 2],
        [7, 8, 1],
        [999424, 1007616, 1],
        [1007616, 1015808, 1],
        [39845888, 40370176, 1],
        [249561088, 251658240, 1]
      ],
      "count": 7,
      "max_ms": 250.0,
      "p50_ms": 1.00352,
      "p95_ms": 250.0,
      "p99_ms": 250.0,
      "sum_ms": 292.015768
    }
  },
  "ticks": 7
}
"#;
}

//! What the Prometheus exposition holds, in either text format: 0.0.4, and OpenMetrics 1.0 with
//! exemplars (how each is written: `export/exposition.rs`).

use super::exposition::{Exemplars, Family, Format, Writer, float, shift_decimal};
use crate::histogram::prometheus_bounds_ms;
use crate::summary::{ExchangeStats, Summary};

/// The unit of the duration histograms in the Prometheus exposition.
///
/// ```
/// use mm_trace::PrometheusUnits;
/// assert_eq!(PrometheusUnits::default(), PrometheusUnits::Milliseconds);
/// let text = mm_trace::prometheus_text_units(PrometheusUnits::Seconds);
/// assert!(text.contains("# TYPE mm_stage_duration_seconds histogram"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrometheusUnits {
    /// `mm_stage_duration_ms`, `mm_exchange_req_ms`, values in milliseconds: the names existing
    /// dashboards use (`promtool check metrics` lints the `_ms` suffix).
    #[default]
    Milliseconds,
    /// `mm_stage_duration_seconds`, `mm_exchange_req_seconds`, values in seconds (base units).
    Seconds,
}

impl PrometheusUnits {
    fn suffix(self) -> &'static str {
        match self {
            PrometheusUnits::Milliseconds => "ms",
            PrometheusUnits::Seconds => "seconds",
        }
    }

    /// Decimal places to move a nanosecond integer by.
    fn ns_scale(self) -> usize {
        match self {
            PrometheusUnits::Milliseconds => 6,
            PrometheusUnits::Seconds => 9,
        }
    }

    fn word(self) -> &'static str {
        match self {
            PrometheusUnits::Milliseconds => "milliseconds",
            PrometheusUnits::Seconds => "seconds",
        }
    }
}

/// The `le` values of `bounds_ms` in `units`, without float noise (`"0.0025"`, `"200"`, `"+Inf"`
/// last): the shortest decimal that reads back as the bound, moved three places for seconds.
pub(crate) fn le_labels_of(bounds_ms: &[f64], units: PrometheusUnits) -> Vec<String> {
    let mut out: Vec<String> = bounds_ms
        .iter()
        .map(|b| {
            let ms = format!("{b}");
            match units {
                PrometheusUnits::Milliseconds => ms,
                PrometheusUnits::Seconds => shift_decimal(&ms, 3),
            }
        })
        .collect();
    out.push("+Inf".to_owned());
    out
}

/// Renders every metric of `summary` (listed with their meaning in `docs/PERFORMANCE_DASHBOARD.md`)
/// in the 0.0.4 text format, duration histograms with the bucket bounds in force (read once, so
/// labels and counts agree).
pub(crate) fn render(summary: &Summary, units: PrometheusUnits) -> String {
    render_as(Format::Prometheus, summary, units, &prometheus_bounds_ms(), None)
}

/// [`render`] in OpenMetrics 1.0 text, each duration bucket with its exemplar from `exemplars`
/// (gathered for `bounds_ms`, the bounds in force when they were read).
pub(crate) fn render_openmetrics(
    summary: &Summary,
    units: PrometheusUnits,
    bounds_ms: &[f64],
    exemplars: &Exemplars,
) -> String {
    render_as(Format::OpenMetrics, summary, units, bounds_ms, Some(exemplars))
}

fn render_as(
    format: Format,
    summary: &Summary,
    units: PrometheusUnits,
    bounds_ms: &[f64],
    exemplars: Option<&Exemplars>,
) -> String {
    let les = le_labels_of(bounds_ms, units);
    let mut w = Writer::new(format, bounds_ms, les, units.ns_scale(), exemplars);
    let u = units.suffix();

    w.family(
        &format!("mm_stage_duration_{u}"),
        "histogram",
        &format!(
            "Duration of instrumented stages in {}; stage=\"tick_total\" is whole ticks (every tick, sampled or not).",
            units.word()
        ),
    );
    for s in &summary.stages {
        w.histogram(Family::Stage, &format!("mm_stage_duration_{u}"), &[("stage", &s.name)], &s.histogram);
    }
    // Named kinds of tick: their own tick_total series (the unnamed kind's has no `tick` label).
    for k in &summary.tick_kinds {
        w.histogram(
            Family::Stage,
            &format!("mm_stage_duration_{u}"),
            &[("stage", "tick_total"), ("tick", &k.name)],
            &k.stats.histogram,
        );
    }

    w.family(
        "mm_stage_errors_total",
        "counter",
        "Stages whose function returned Err (they are in mm_stage_duration too); stage=\"tick_total\" counts ticks that returned Err.",
    );
    for s in &summary.stages {
        w.sample("mm_stage_errors_total", &[("stage", &s.name)], &s.errors.to_string());
    }
    for k in &summary.tick_kinds {
        w.sample("mm_stage_errors_total", &[("stage", "tick_total"), ("tick", &k.name)], &k.stats.errors.to_string());
    }

    w.family(
        &format!("mm_exchange_req_{u}"),
        "histogram",
        &format!("Duration of exchange requests in {}, by verb and api.", units.word()),
    );
    for e in &summary.exchange {
        w.histogram(Family::Exchange, &format!("mm_exchange_req_{u}"), &exchange_labels(e), &e.stats.histogram);
    }

    w.family(
        "mm_exchange_req_errors_total",
        "counter",
        "Exchange requests whose function returned Err (they are in mm_exchange_req too), by verb and api.",
    );
    for e in &summary.exchange {
        w.sample("mm_exchange_req_errors_total", &exchange_labels(e), &e.stats.errors.to_string());
    }

    w.family("mm_guard_trips_total", "counter", "Risk guard trips, by reason.");
    for (reason, n) in &summary.guard_trips {
        w.sample("mm_guard_trips_total", &[("reason", reason)], &n.to_string());
    }

    // The unlabeled series are the unnamed kind of tick (what a one-tick process has); each named
    // kind adds its series with a `tick` label, so a sum over the family counts every tick.
    let kinds_ticks: u64 = summary.tick_kinds.iter().map(|k| k.stats.count).sum();
    let kinds_misses: u64 = summary.tick_kinds.iter().map(|k| k.deadline_misses).sum();
    w.family("mm_ticks_total", "counter", "Ticks completed.");
    w.sample("mm_ticks_total", &[], &summary.ticks.saturating_sub(kinds_ticks).to_string());
    for k in &summary.tick_kinds {
        w.sample("mm_ticks_total", &[("tick", &k.name)], &k.stats.count.to_string());
    }
    w.family("mm_tick_deadline_miss_total", "counter", "Ticks whose tick_total exceeded the deadline.");
    w.sample("mm_tick_deadline_miss_total", &[], &summary.deadline_misses.saturating_sub(kinds_misses).to_string());
    for k in &summary.tick_kinds {
        w.sample("mm_tick_deadline_miss_total", &[("tick", &k.name)], &k.deadline_misses.to_string());
    }
    w.counter("mm_tick_partial_fail_total", "Ticks in which some symbols failed.", summary.partial_fails);
    w.gauge(
        "mm_parallel_symbols",
        "Symbols processed in parallel (last value set).",
        &summary.parallel_symbols.to_string(),
    );

    let h = &summary.health;
    w.counter("mm_trace_ticks_cancelled_total", "Async ticks dropped before completion.", summary.ticks_cancelled);
    w.family(
        "mm_trace_stage_cancelled_total",
        "counter",
        "Async stages dropped before completion (not in the duration histogram).",
    );
    for s in summary.stages.iter().filter(|s| s.cancelled > 0) {
        w.sample("mm_trace_stage_cancelled_total", &[("stage", &s.name)], &s.cancelled.to_string());
    }
    w.counter("mm_trace_spans_recorded_total", "Spans recorded into duration histograms.", h.spans_recorded);
    for c in h.series() {
        w.counter(c.metric, c.help.trim(), c.value);
    }
    w.gauge(
        "mm_trace_overhead_ratio",
        "Estimated share of tick time spent inside mm-trace (0 to 1).",
        &float(h.overhead_ratio),
    );
    w.gauge(
        "mm_trace_span_cost_seconds",
        "Estimated cost of one recorded span on this machine, seconds.",
        &float(h.span_cost_ns / 1e9),
    );
    w.finish()
}

/// An exchange request's labels: verb, api, then its run-time labels.
fn exchange_labels(e: &ExchangeStats) -> Vec<(&str, &str)> {
    let mut labels = vec![("verb", e.verb.as_str()), ("api", e.api.as_str())];
    labels.extend(e.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::PROMETHEUS_BOUNDS_MS;

    #[test]
    fn le_labels_have_no_float_noise() {
        let ms = le_labels_of(PROMETHEUS_BOUNDS_MS, PrometheusUnits::Milliseconds);
        assert_eq!(ms.len(), PROMETHEUS_BOUNDS_MS.len() + 1);
        assert_eq!(ms[0], "0.001");
        assert!(ms.contains(&"0.0025".to_owned()) && ms.contains(&"200".to_owned()));
        assert_eq!(ms.last().unwrap(), "+Inf");
        for (label, bound) in ms.iter().zip(PROMETHEUS_BOUNDS_MS) {
            assert_eq!(label.parse::<f64>().unwrap(), *bound, "{label} reads back as its bound");
        }
        let s = le_labels_of(PROMETHEUS_BOUNDS_MS, PrometheusUnits::Seconds);
        assert_eq!(s[0], "0.000001");
        assert!(s.contains(&"0.2".to_owned()) && s.contains(&"60".to_owned()));
        for (a, b) in ms.iter().zip(&s).take(PROMETHEUS_BOUNDS_MS.len()) {
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((a / 1000.0 - b).abs() <= b * 1e-12);
        }
    }
}

//! How an exposition is written, in either text format: Prometheus 0.0.4 and OpenMetrics 1.0
//! (`export/prometheus.rs` says what is written). One writer for both, so that a metric added to
//! the list appears in both forms.
//!
//! OpenMetrics differs in what this file hides from the list: `# TYPE` before `# HELP` (and a
//! `# UNIT` when the name ends with a unit), counter families named without `_total` (their
//! samples keep it, so series names are the same in both forms), `"` escaped in HELP too,
//! canonical `le` values (`200.0`, `2.5e-06`), an exemplar on each histogram bucket that has one,
//! and `# EOF` at the end.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::histogram::HistogramSnapshot;

/// The text format being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

/// The duration family a histogram series belongs to (its name depends on the units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    /// `mm_stage_duration_*`.
    Stage,
    /// `mm_exchange_req_*`.
    Exchange,
}

/// One exemplar: the most recent kept tick whose span landed in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exemplar {
    /// The tick's W3C trace id, 32 lowercase hex.
    pub(crate) trace_id: String,
    pub(crate) tick_id: u64,
    /// The span's duration, ns (what its histogram recorded).
    pub(crate) value_ns: u64,
    /// The tick's end, ns since the Unix epoch.
    pub(crate) unix_ns: u64,
}

/// Exemplars of the duration series, per bucket (`le` index, `+Inf` last), keyed by family and
/// the series' labels exactly as the exposition writes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exemplars {
    series: HashMap<SeriesKey, Vec<Option<Exemplar>>>,
}

/// A duration series: its family and its labels (without `le`).
type SeriesKey = (Family, Vec<(String, String)>);

impl Exemplars {
    /// Sets the exemplars of one series (one entry per bucket, `+Inf` last).
    pub(crate) fn insert(&mut self, family: Family, labels: &[(&str, &str)], buckets: Vec<Option<Exemplar>>) {
        self.series.insert((family, owned(labels)), buckets);
    }

    fn of(&self, family: Family, labels: &[(&str, &str)]) -> Option<&[Option<Exemplar>]> {
        self.series.get(&(family, owned(labels))).map(Vec::as_slice)
    }
}

fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Units a family name may end with, announced in OpenMetrics' `# UNIT`.
const UNITS: &[&str] = &["seconds", "ms", "ratio", "bytes"];

/// Writes families and samples in `format`.
pub(crate) struct Writer<'a> {
    pub(crate) out: String,
    format: Format,
    /// The `le` labels of the bounds, `+Inf` last, in the format's spelling.
    les: Vec<String>,
    bounds_ms: &'a [f64],
    /// Decimal places from a nanosecond integer to the unit of the duration values.
    ns_scale: usize,
    exemplars: Option<&'a Exemplars>,
    /// The family being written and its type (counter samples are checked against it).
    kind: &'static str,
}

impl<'a> Writer<'a> {
    /// A writer for durations with bucket bounds `bounds_ms` whose `le` labels in the unit of
    /// the values are `les` (`+Inf` last), values scaled from ns by `10^ns_scale`.
    pub(crate) fn new(
        format: Format,
        bounds_ms: &'a [f64],
        les: Vec<String>,
        ns_scale: usize,
        exemplars: Option<&'a Exemplars>,
    ) -> Self {
        let les = match format {
            Format::Prometheus => les,
            Format::OpenMetrics => les.iter().map(|le| canonical_le(le)).collect(),
        };
        Writer { out: String::with_capacity(16 * 1024), format, les, bounds_ms, ns_scale, exemplars, kind: "" }
    }

    /// A family's metadata. `name` is the 0.0.4 name (a counter's ends with `_total`).
    pub(crate) fn family(&mut self, name: &str, kind: &'static str, help: &str) {
        self.kind = kind;
        match self.format {
            Format::Prometheus => {
                let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help, false));
                let _ = writeln!(self.out, "# TYPE {name} {kind}");
            }
            Format::OpenMetrics => {
                let name = if kind == "counter" { name.strip_suffix("_total").unwrap_or(name) } else { name };
                let _ = writeln!(self.out, "# TYPE {name} {kind}");
                if let Some(unit) = UNITS.iter().find(|u| name.ends_with(&format!("_{u}"))) {
                    let _ = writeln!(self.out, "# UNIT {name} {unit}");
                }
                let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help, true));
            }
        }
    }

    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        debug_assert!(self.kind != "counter" || name.ends_with("_total"), "counter sample {name} without _total");
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }

    pub(crate) fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], &value.to_string());
    }

    pub(crate) fn gauge(&mut self, name: &str, help: &str, value: &str) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    /// One histogram series; in OpenMetrics each bucket with an exemplar of `family` and these
    /// `labels` carries it.
    pub(crate) fn histogram(&mut self, family: Family, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        // One snapshot: `+Inf` is its count, so `le="+Inf"` always equals `_count`.
        let cumulative = h.prometheus_cumulative_at(self.bounds_ms);
        let exemplars = match (self.format, self.exemplars) {
            (Format::OpenMetrics, Some(e)) => e.of(family, labels),
            _ => None,
        };
        let mut below = 0;
        for (i, (le, &n)) in self.les.iter().zip(&cumulative).enumerate() {
            self.out.push_str(name);
            self.out.push_str("_bucket");
            write_labels(&mut self.out, labels, Some(le));
            let _ = write!(self.out, " {n}");
            // An exemplar goes only on a bucket that holds samples of its own in this exposition
            // (one recorded after the histograms were read shows in the next).
            if let Some(Some(x)) = exemplars.and_then(|e| e.get(i))
                && n > below
            {
                let _ = write!(
                    self.out,
                    " # {{trace_id=\"{}\",tick_id=\"{}\"}} {} {}",
                    x.trace_id,
                    x.tick_id,
                    ns_decimal(x.value_ns, self.ns_scale),
                    ns_decimal(x.unix_ns, 9)
                );
            }
            self.out.push('\n');
            below = n;
        }
        let count = cumulative.last().copied().unwrap_or(0);
        self.out.push_str(name);
        self.out.push_str("_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", ns_decimal(h.sum_ns(), self.ns_scale));
        self.out.push_str(name);
        self.out.push_str("_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {count}");
    }

    /// The finished text (OpenMetrics: with its `# EOF` line).
    pub(crate) fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

pub(crate) fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out.push('}');
}

/// Label values: backslash, double quote and line feed are escaped (both formats).
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text: backslash and line feed are escaped, and in OpenMetrics the double quote too.
fn escape_help(v: &str, quote: bool) -> String {
    let v = v.replace('\\', "\\\\").replace('\n', "\\n");
    if quote { v.replace('"', "\\\"") } else { v }
}

/// A float sample value (`NaN`, `+Inf`, `-Inf` as both formats spell them).
pub(crate) fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// An `le` value as OpenMetrics' canonical numbers spell it: Go's shortest `%g`, with `.0`
/// when that has neither a point nor an exponent (`200` → `200.0`, `0.0000025` → `2.5e-06`).
pub(crate) fn canonical_le(le: &str) -> String {
    match le.parse::<f64>() {
        Ok(v) if le != "+Inf" => canonical_float(v),
        _ => le.to_owned(),
    }
}

fn canonical_float(v: f64) -> String {
    if !v.is_finite() {
        return float(v);
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if v != 0.0 && !(-4..6).contains(&exp) {
        format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
    } else {
        let plain = format!("{v}");
        if plain.contains('.') { plain } else { plain + ".0" }
    }
}

/// `ns / 10^scale` as an exact decimal (`1500000, 6` → `"1.5"`): no float rounding in sums.
pub(crate) fn ns_decimal(ns: u64, scale: usize) -> String {
    shift_decimal(&ns.to_string(), scale)
}

/// Divides a non-negative decimal string by `10^places`, exactly, trimming redundant zeros.
pub(crate) fn shift_decimal(s: &str, places: usize) -> String {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = format!("{int}{frac}");
    let point = int.len() as isize - places as isize;
    let (int, frac) = if point <= 0 {
        ("0".to_owned(), format!("{}{digits}", "0".repeat(point.unsigned_abs())))
    } else {
        let p = point as usize;
        (digits[..p].to_owned(), digits[p..].to_owned())
    };
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { int.to_owned() } else { format!("{int}.{frac}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(ns_decimal(0, 6), "0");
        assert_eq!(ns_decimal(1_500_000, 6), "1.5");
        assert_eq!(ns_decimal(200_000_000, 6), "200");
        assert_eq!(ns_decimal(7, 9), "0.000000007");
        assert_eq!(ns_decimal(12_345_678_901, 9), "12.345678901");
        assert_eq!(ns_decimal(1_700_000_000_123_456_789, 9), "1700000000.123456789");
        assert_eq!(shift_decimal("0.0025", 3), "0.0000025");
        assert_eq!(shift_decimal("60000", 3), "60");
        assert_eq!(shift_decimal("2.5", 3), "0.0025");
    }

    #[test]
    fn le_values_are_canonical_in_openmetrics() {
        // The examples of the specification ("Considerations: Canonical Numbers").
        for (le, want) in [
            ("0", "0.0"),
            ("0.001", "0.001"),
            ("0.01", "0.01"),
            ("1", "1.0"),
            ("1.7", "1.7"),
            ("10", "10.0"),
            ("0.0000000001", "1e-10"),
            ("0.000000001", "1e-09"),
            ("0.00001", "1e-05"),
            ("0.0001", "0.0001"),
            ("100000", "100000.0"),
            ("1000000", "1e+06"),
            ("10000000000", "1e+10"),
            ("0.0000025", "2.5e-06"),
            ("60000", "60000.0"),
            ("+Inf", "+Inf"),
        ] {
            assert_eq!(canonical_le(le), want, "{le}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        write_labels(&mut out, &[("reason", "a\\b\"c\nd")], Some("+Inf"));
        assert_eq!(out, r#"{reason="a\\b\"c\nd",le="+Inf"}"#);
        assert_eq!(escape_help("say \"hi\"\\\n", false), "say \"hi\"\\\\\\n");
        assert_eq!(escape_help("say \"hi\"", true), "say \\\"hi\\\"");
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_with_eof() {
        let bounds = [1.0];
        let ex = Exemplars::default();
        let mut w = Writer::new(Format::OpenMetrics, &bounds, vec!["1".into(), "+Inf".into()], 6, Some(&ex));
        w.counter("mm_ticks_total", "Ticks.", 3);
        w.gauge("mm_trace_span_cost_seconds", "Cost.", "0.5");
        let text = w.finish();
        assert_eq!(
            text,
            "# TYPE mm_ticks counter\n# HELP mm_ticks Ticks.\nmm_ticks_total 3\n\
             # TYPE mm_trace_span_cost_seconds gauge\n# UNIT mm_trace_span_cost_seconds seconds\n\
             # HELP mm_trace_span_cost_seconds Cost.\nmm_trace_span_cost_seconds 0.5\n# EOF\n"
        );
    }

    #[test]
    fn exemplars_go_on_their_buckets_in_openmetrics_only() {
        let bounds = [1.0, 2.0];
        let les = vec!["1".to_owned(), "2".to_owned(), "+Inf".to_owned()];
        let mut h = HistogramSnapshot::new();
        h.record_ns(1_500_000);
        let x =
            Exemplar { trace_id: "ab".repeat(16), tick_id: 7, value_ns: 1_500_000, unix_ns: 1_700_000_000_250_000_000 };
        let mut ex = Exemplars::default();
        ex.insert(Family::Stage, &[("stage", "fetch_md")], vec![Some(x.clone()), Some(x), None]);
        let mut w = Writer::new(Format::OpenMetrics, &bounds, les.clone(), 6, Some(&ex));
        w.histogram(Family::Stage, "d_ms", &[("stage", "fetch_md")], &h);
        let om = w.finish();
        let trace = "ab".repeat(16);
        // The 1 ms bucket holds no sample: its exemplar is stale and left out.
        assert!(om.contains("d_ms_bucket{stage=\"fetch_md\",le=\"1.0\"} 0\n"), "{om}");
        assert!(
            om.contains(&format!(
                "d_ms_bucket{{stage=\"fetch_md\",le=\"2.0\"}} 1 # {{trace_id=\"{trace}\",tick_id=\"7\"}} 1.5 1700000000.25\n"
            )),
            "{om}"
        );
        assert!(om.contains("d_ms_bucket{stage=\"fetch_md\",le=\"+Inf\"} 1\n"), "{om}");
        let mut w = Writer::new(Format::Prometheus, &bounds, les, 6, Some(&ex));
        w.histogram(Family::Stage, "d_ms", &[("stage", "fetch_md")], &h);
        let text = w.finish();
        assert!(!text.contains('#') && text.contains("d_ms_bucket{stage=\"fetch_md\",le=\"2\"} 1\n"), "{text}");
    }
}

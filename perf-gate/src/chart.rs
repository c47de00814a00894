//! The picture beside the markdown report: per stage, the baseline and current latency
//! distributions as box plots on one logarithmic time axis, with the verdict.
//!
//! A self-contained SVG (no script, no external reference), linked from the report with a
//! relative `![…](perf_gate_report.svg)`, so it shows on a code-review page and in a browser.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mm_trace::profile::StageProfile;
use mm_trace::xml::escape as esc;

use crate::compare::{Comparison, Settings, Verdict};
use crate::profile::Profile;
use crate::report;

const WIDTH: f64 = 1100.0;
/// Left gutter (stage names) and right gutter (verdicts).
const LEFT: f64 = 200.0;
const RIGHT: f64 = 300.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;
const ROW: f64 = 50.0;
const BOX: f64 = 14.0;
const TOP: f64 = 110.0;
const BASELINE: &str = "#4e79a7";
const CURRENT: &str = "#f28e2b";

/// The chart's path for a report's: `perf_gate_report.md` → `perf_gate_report.svg`.
///
/// ```
/// use std::path::Path;
/// let svg = perf_gate::chart::path_beside(Path::new("artifacts/ci/perf_gate_report.md"));
/// assert_eq!(svg, Path::new("artifacts/ci/perf_gate_report.svg"));
/// ```
pub fn path_beside(report: &Path) -> PathBuf {
    report.with_extension("svg")
}

/// `markdown` with an image link to the chart beside `report` inserted after its headline (the
/// first paragraph after the title), or appended when it has none.
///
/// ```
/// use std::path::Path;
/// let md = perf_gate::chart::with_link("# perf-gate\n\n**PASS**\n\nrest\n", Path::new("ci/r.md"));
/// assert_eq!(md, "# perf-gate\n\n**PASS**\n\n![Per-stage latency, baseline vs current](r.svg)\n\nrest\n");
/// ```
pub fn with_link(markdown: &str, report: &Path) -> String {
    let name = path_beside(report).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // A relative link with spaces or parentheses needs the angle-bracket form.
    let target = if name.contains([' ', '(', ')']) { format!("<{name}>") } else { name };
    let link = format!("![Per-stage latency, baseline vs current]({target})\n\n");
    let after_title = markdown.find("\n\n").map(|i| i + 2);
    match after_title.and_then(|start| markdown[start..].find("\n\n").map(|j| start + j + 2)) {
        Some(at) => format!("{}{link}{}", &markdown[..at], &markdown[at..]),
        None => format!("{markdown}\n\n{link}"),
    }
}

/// A stage's distribution on one side: the runs' histograms merged.
fn merged(profiles: &[Profile], stage: &str) -> Option<StageProfile> {
    let mut it = profiles.iter().filter_map(|p| p.doc.stages.get(stage)).filter(|s| s.count > 0);
    let mut acc = it.next()?.clone();
    for s in it {
        acc.merge(s);
    }
    Some(acc)
}

/// Quantiles drawn for one side, ms: whiskers p1..p99, box p25..p75, median, p95, max.
#[derive(Debug, Clone, Copy)]
struct Five {
    p1: f64,
    p25: f64,
    p50: f64,
    p75: f64,
    p95: f64,
    p99: f64,
    max: f64,
    count: u64,
}

impl Five {
    fn of(s: &StageProfile) -> Five {
        let q = |x| s.quantile_ms(x);
        Five {
            p1: q(0.01),
            p25: q(0.25),
            p50: q(0.50),
            p75: q(0.75),
            p95: q(0.95),
            p99: q(0.99),
            max: s.max_ms,
            count: s.count,
        }
    }
}

/// The chart: one row per stage (in the report's order), the baseline's box above the
/// current's, on a shared log axis of milliseconds; each row ends with its verdicts (per
/// compared metric: the change and the decision).
pub fn svg(rows: &[Comparison], baseline: &[Profile], current: &[Profile], settings: &Settings) -> String {
    let mut stages: Vec<&str> = Vec::new();
    for r in rows {
        if !stages.contains(&r.stage.as_str()) {
            stages.push(&r.stage);
        }
    }
    let sides: Vec<(Option<Five>, Option<Five>)> = stages
        .iter()
        .map(|s| (merged(baseline, s).map(|p| Five::of(&p)), merged(current, s).map(|p| Five::of(&p))))
        .collect();
    let values: Vec<f64> = sides
        .iter()
        .flat_map(|(b, c)| [b, c])
        .flatten()
        .flat_map(|f| [f.p1, f.max])
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if values.is_empty() { (0.001, 1000.0) } else { (lo, hi) };
    // Whole decades around the data.
    let (d0, d1) = (lo.log10().floor() as i32, (hi.log10().ceil() as i32).max(lo.log10().floor() as i32 + 1));
    let x = |ms: f64| {
        let v = if ms > 0.0 { ms.log10() } else { f64::from(d0) };
        round2(LEFT + PLOT * ((v - f64::from(d0)) / f64::from(d1 - d0)).clamp(0.0, 1.0))
    };
    // A row per stage, taller when it has more verdicts (one per compared metric) than fit.
    let row_h: Vec<f64> =
        stages.iter().map(|s| ROW.max(10.0 + 32.0 * rows.iter().filter(|r| r.stage == *s).count() as f64)).collect();
    let bottom = TOP + row_h.iter().sum::<f64>().max(ROW);
    let height = bottom + 40.0;

    let headline = report::summary_line(rows, settings).replace("**", "");
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, "<title>perf-gate: per-stage latency, baseline vs current</title>");
    let _ = writeln!(out, r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>"##);
    let _ = writeln!(
        out,
        r##"<text x="12" y="24" font-size="16" font-weight="bold" fill="#111">perf-gate: per-stage latency, baseline vs current</text>"##
    );
    let (first, rest) = wrap(&headline, 150);
    let _ = writeln!(out, r##"<text x="12" y="44" fill="#333">{}</text>"##, esc(&first));
    if !rest.is_empty() {
        let _ = writeln!(out, r##"<text x="12" y="60" fill="#333">{}</text>"##, esc(&fit(&rest, 150)));
    }
    // Legend.
    let _ = writeln!(
        out,
        r##"<g class="legend" fill="#333"><rect x="12" y="66" width="14" height="10" fill="{BASELINE}"/><text x="30" y="75">baseline ({} run{})</text><rect x="170" y="66" width="14" height="10" fill="{CURRENT}"/><text x="188" y="75">current ({} run{})</text><text x="330" y="75">box p25–p75 · thick line p50 · whiskers p1–p99 · ◆ p95 · ● max · log time axis</text></g>"##,
        baseline.len(),
        if baseline.len() == 1 { "" } else { "s" },
        current.len(),
        if current.len() == 1 { "" } else { "s" },
    );

    // Axis: decades with labels, 2x and 5x minor lines.
    let axis_y = TOP - 10.0;
    for d in d0..=d1 {
        for (m, major) in [(1.0, true), (2.0, false), (5.0, false)] {
            let v = m * 10f64.powi(d);
            if d == d1 && !major {
                continue;
            }
            let px = x(v);
            let opacity = if major { 0.25 } else { 0.08 };
            let _ = write!(
                out,
                r##"<line x1="{px}" y1="{axis_y}" x2="{px}" y2="{bottom}" stroke="#000" stroke-opacity="{opacity}"/>"##
            );
            if major || PLOT / f64::from(d1 - d0) > 160.0 {
                let _ = write!(
                    out,
                    r##"<text x="{px}" y="{}" text-anchor="middle" fill="#555" font-size="{}">{}</text>"##,
                    axis_y - 4.0,
                    if major { 11 } else { 9 },
                    axis_label(v)
                );
            }
        }
        out.push('\n');
    }

    let mut y = TOP;
    for (k, (stage, (b, c))) in stages.iter().zip(&sides).enumerate() {
        let h = row_h[k];
        let box_top = y + (h - ROW) / 2.0;
        let fill = if k % 2 == 0 { "#f7f7f7" } else { "#eeeeee" };
        let mine: Vec<&Comparison> = rows.iter().filter(|r| r.stage == *stage).collect();
        let worst = mine.iter().map(|r| r.verdict).min_by_key(|v| severity(*v)).unwrap_or(Verdict::Ok);
        let _ = writeln!(
            out,
            r#"<g class="stage" data-stage="{}" data-verdict="{}"><rect x="0" y="{y}" width="{WIDTH}" height="{h}" fill="{fill}"/>"#,
            esc(stage),
            worst
        );
        let _ = writeln!(
            out,
            r##"<text x="12" y="{}" font-weight="bold" fill="#111">{}</text>"##,
            box_top + 28.0,
            esc(&fit(stage, 26))
        );
        for (side, five, colour, dy) in [("baseline", b, BASELINE, 8.0), ("current", c, CURRENT, 27.0)] {
            let by = box_top + dy;
            let Some(f) = five else {
                let _ = writeln!(
                    out,
                    r##"<text x="{}" y="{}" fill="#777" font-style="italic">{side}: no samples</text>"##,
                    LEFT + 6.0,
                    by + 11.0
                );
                continue;
            };
            let mid = by + BOX / 2.0;
            let tip = format!(
                "{stage} ({side}, {} samples): p1 {}, p25 {}, p50 {}, p75 {}, p95 {}, p99 {}, max {}",
                f.count,
                report::duration(f.p1),
                report::duration(f.p25),
                report::duration(f.p50),
                report::duration(f.p75),
                report::duration(f.p95),
                report::duration(f.p99),
                report::duration(f.max),
            );
            let _ = writeln!(
                out,
                r##"<g class="box" data-side="{side}" data-p50-ms="{}" data-p95-ms="{}"><title>{}</title><line x1="{}" y1="{mid}" x2="{}" y2="{mid}" stroke="{colour}" stroke-width="1.5"/><line x1="{}" y1="{by}" x2="{}" y2="{}" stroke="{colour}"/><line x1="{}" y1="{by}" x2="{}" y2="{}" stroke="{colour}"/><rect x="{}" y="{by}" width="{}" height="{BOX}" fill="{colour}" fill-opacity="0.55" stroke="{colour}"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#111" stroke-width="2.5"/><path d="M {} {} l 5 5 l -5 5 l -5 -5 z" fill="#111"/><circle cx="{}" cy="{mid}" r="2.5" fill="{colour}" stroke="#111" stroke-width="0.8"/></g>"##,
                f.p50,
                f.p95,
                esc(&tip),
                x(f.p1),
                x(f.p99),
                x(f.p1),
                x(f.p1),
                by + BOX,
                x(f.p99),
                x(f.p99),
                by + BOX,
                x(f.p25),
                round2((x(f.p75) - x(f.p25)).max(1.0)),
                x(f.p50),
                by - 1.0,
                x(f.p50),
                by + BOX + 1.0,
                x(f.p95),
                by + 2.0,
                x(f.max),
            );
        }
        for (j, r) in mine.iter().enumerate() {
            let change = r.ratio.map_or("—".to_owned(), |ratio| format!("{:+.1}%", (ratio - 1.0) * 100.0));
            let values = match (r.baseline_ms, r.current_ms) {
                (Some(b), Some(c)) => format!("{} → {}", report::duration(b), report::duration(c)),
                (Some(b), None) => format!("{} → none", report::duration(b)),
                (None, Some(c)) => format!("none → {}", report::duration(c)),
                (None, None) => String::new(),
            };
            let line = format!("{} {change} {}", r.metric, r.verdict);
            let ty = y + 20.0 + 32.0 * j as f64;
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{ty}" font-weight="bold" fill="{}">{}</text><text x="{}" y="{}" fill="#444" font-size="11">{}</text>"##,
                LEFT + PLOT + 14.0,
                verdict_colour(r.verdict),
                esc(&line),
                LEFT + PLOT + 14.0,
                ty + 14.0,
                esc(&values)
            );
        }
        out.push_str("</g>\n");
        y += h;
    }
    if stages.is_empty() {
        let _ = writeln!(out, r##"<text x="{LEFT}" y="{}" fill="#777">no stages to compare</text>"##, TOP + 28.0);
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">latency per stage (log scale); the verdict compares each run's quantile, see the report</text>"##,
        LEFT + PLOT / 2.0,
        bottom + 24.0
    );
    out.push_str("</svg>\n");
    out
}

/// Lower is worse: the row's badge shows its worst verdict.
fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::Regression | Verdict::Missing => 0,
        Verdict::Inconclusive => 1,
        Verdict::New | Verdict::Removed => 2,
        Verdict::Ok => 3,
        Verdict::Improvement => 4,
    }
}

fn verdict_colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Regression | Verdict::Missing => "#c0392b",
        Verdict::Inconclusive => "#b7791f",
        Verdict::Improvement => "#2e7d32",
        Verdict::Ok => "#3b7d4f",
        Verdict::New | Verdict::Removed => "#666666",
    }
}

/// A decade's label: `10 µs`, `1 ms`, `100 ms`, `1 s`.
fn axis_label(ms: f64) -> String {
    let (v, unit) = match ms {
        m if m < 1e-3 => (m * 1e6, "ns"),
        m if m < 1.0 => (m * 1e3, "µs"),
        m if m < 1e3 => (m, "ms"),
        m => (m / 1e3, "s"),
    };
    format!("{} {unit}", (v * 1000.0).round() / 1000.0)
}

/// `s` split at a space before `max` characters: the first line and the rest.
fn wrap(s: &str, max: usize) -> (String, String) {
    if s.chars().count() <= max {
        return (s.to_owned(), String::new());
    }
    let cut: String = s.chars().take(max).collect();
    match cut.rfind(' ') {
        Some(at) => (s[..at].to_owned(), s[at + 1..].to_owned()),
        None => (cut.clone(), s[cut.len()..].to_owned()),
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { s.chars().take(max.saturating_sub(1)).chain(['…']).collect() }
}

//! The markdown report of a comparison and its one-line summary.

use std::fmt::Write as _;

use crate::compare::{Comparison, Metric, Noise, Settings, Verdict};

/// Everything the report shows besides the rows.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// How the comparison was made.
    pub settings: &'a Settings,
    /// Compared metrics, in order.
    pub metrics: &'a [Metric],
    /// Baseline files.
    pub baseline: &'a [String],
    /// Current files.
    pub current: &'a [String],
}

fn pct(ratio: f64) -> String {
    let p = (ratio - 1.0) * 100.0;
    if p.abs() < 0.05 { "±0.0%".to_owned() } else { format!("{p:+.1}%") }
}

fn interval(ci: (f64, f64)) -> String {
    format!("{}..{}", pct(ci.0), pct(ci.1))
}

fn ms(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(v) if v >= 100.0 => format!("{v:.1} ms"),
        Some(v) if v >= 1.0 => format!("{v:.2} ms"),
        Some(v) if v >= 0.001 => format!("{:.1} µs", v * 1e3),
        Some(v) => format!("{:.0} ns", v * 1e6),
    }
}

fn badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Regression => "🔴 regression",
        Verdict::Inconclusive => "🟡 inconclusive",
        Verdict::Improvement => "🟢 improvement",
        Verdict::Ok => "✅ ok",
        Verdict::New => "🆕 new",
        Verdict::Removed => "➖ removed",
    }
}

/// A bar of the change: one full block per 2% (eighths for the rest), up to 40%, `▲` for a
/// rise, `▼` for a fall, `…` past the end.
pub fn bar(ratio: f64) -> String {
    const STEP: f64 = 2.0;
    const CELLS: usize = 20;
    let p = (ratio - 1.0) * 100.0;
    let eighths = ((p.abs() / STEP) * 8.0).round() as usize;
    let full = (eighths / 8).min(CELLS);
    let mut s = String::from(if p >= 0.0 { "▲" } else { "▼" });
    s.push_str(&"█".repeat(full));
    if full < CELLS {
        let part = eighths % 8;
        if part > 0 {
            s.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][part - 1]);
        }
    } else if eighths > CELLS * 8 {
        s.push('…');
    }
    s
}

fn row_text(c: &Comparison) -> String {
    match (c.ratio, c.interval) {
        (Some(r), Some(ci)) => format!("{} {} {} ({}% CI {})", c.stage, c.metric, pct(r), "{CONF}", interval(ci)),
        _ => format!("{} {} {}", c.stage, c.metric, c.verdict),
    }
}

/// The one-line verdict shown on top of the report and printed on stdout.
pub fn summary_line(rows: &[Comparison], settings: &Settings) -> String {
    let conf = format!("{:.0}", settings.confidence * 100.0);
    let of = |v: Verdict| rows.iter().filter(|r| r.verdict == v).collect::<Vec<_>>();
    let list = |rs: &[&Comparison]| {
        let shown: Vec<String> = rs.iter().take(5).map(|r| row_text(r).replace("{CONF}", &conf)).collect();
        let more = rs.len().saturating_sub(5);
        if more > 0 { format!("{}, and {more} more", shown.join(", ")) } else { shown.join(", ") }
    };
    let (reg, inc, imp) = (of(Verdict::Regression), of(Verdict::Inconclusive), of(Verdict::Improvement));
    let mut s = if reg.is_empty() {
        format!("**PASS** — no stage rose more than {:.1}% with {conf}% confidence", settings.threshold * 100.0)
    } else {
        format!("**FAIL** — {} regression{} ({})", reg.len(), if reg.len() == 1 { "" } else { "s" }, list(&reg))
    };
    if !inc.is_empty() {
        let _ = write!(s, "; {} inconclusive ({})", inc.len(), list(&inc));
    }
    if !imp.is_empty() {
        let _ = write!(s, "; {} improvement{}", imp.len(), if imp.len() == 1 { "" } else { "s" });
    }
    s
}

/// The markdown report: summary line, settings, one table per metric, notes.
pub fn markdown(rows: &[Comparison], ctx: &Context<'_>) -> String {
    let s = ctx.settings;
    let conf = format!("{:.0}", s.confidence * 100.0);
    let mut out = String::new();
    let _ = writeln!(out, "# perf-gate\n\n{}\n", summary_line(rows, s));
    let _ = writeln!(
        out,
        "Baseline: {} run{} · current: {} run{}{} · threshold {:.1}% · {conf}% intervals (hierarchical bootstrap, {} iterations)\n",
        ctx.baseline.len(),
        if ctx.baseline.len() == 1 { "" } else { "s" },
        ctx.current.len(),
        if ctx.current.len() == 1 { "" } else { "s" },
        if s.paired { " (paired)" } else { "" },
        s.threshold * 100.0,
        s.iterations,
    );
    for &metric in ctx.metrics {
        let _ = writeln!(out, "## {metric}\n");
        let _ = writeln!(out, "| stage | baseline | current | change | {conf}% interval | runs | noise | verdict | |");
        let _ = writeln!(out, "|---|--:|--:|--:|:-:|:-:|--:|---|---|");
        for c in rows.iter().filter(|r| r.metric == metric) {
            let change = c.ratio.map_or("—".to_owned(), pct);
            let ci = c.interval.map_or("—".to_owned(), interval);
            let noise = match c.noise {
                Some(Noise::Estimated(n)) => format!("{:.1}%", n * 100.0),
                Some(Noise::Assumed(n)) => format!("{:.0}% (assumed)", n * 100.0),
                None => "—".to_owned(),
            };
            let visual = c.ratio.map_or(String::new(), |r| format!("`{}`", bar(r)));
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {}/{} | {} | {} | {} |",
                c.stage.replace('|', "\\|").replace('`', "'"),
                ms(c.baseline_ms),
                ms(c.current_ms),
                change,
                ci,
                c.runs.0,
                c.runs.1,
                noise,
                badge(c.verdict),
                visual
            );
        }
        let _ = writeln!(out);
    }
    let assumed = rows.iter().any(|r| matches!(r.noise, Some(Noise::Assumed(_))));
    let _ = writeln!(
        out,
        "<details><summary>How to read this</summary>\n\n\
         - *baseline*/*current*: geometric mean over the runs of each run's quantile.\n\
         - *interval*: {conf}% confidence interval of current/baseline. A stage regresses only when \
           the whole interval lies above +{thr:.1}%; **inconclusive** means a rise past the threshold \
           cannot be ruled out but is not shown either (more runs per side narrow the interval).\n\
         - *noise*: run-to-run spread of the quantile (one standard deviation) measured from the runs \
           ({min}+ runs per side), or the assumed `--noise-pct` when a side has fewer runs.\n\
         - The bar shows the change: one block per 2%.{extra}\n\n\
         Baseline files: {b}\n\nCurrent files: {c}\n\n</details>",
        thr = s.threshold * 100.0,
        min = s.min_runs,
        extra = if assumed {
            "\n- With fewer runs than the minimum, run-to-run noise is assumed, so only large changes are decided: \
             see docs/PERF_GATE.md for how many runs to take."
        } else {
            ""
        },
        b = ctx.baseline.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "),
        c = ctx.current.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars() {
        assert_eq!(bar(1.0), "▲");
        assert_eq!(bar(1.04), "▲██");
        assert_eq!(bar(1.05), "▲██▌");
        assert_eq!(bar(0.96), "▼██");
        assert_eq!(bar(2.0), format!("▲{}…", "█".repeat(20)));
    }

    #[test]
    fn summary_names_the_regression() {
        let row = Comparison {
            stage: "tick_total".into(),
            metric: Metric::P95,
            baseline_ms: Some(10.0),
            current_ms: Some(11.42),
            ratio: Some(1.142),
            interval: Some((1.11, 1.175)),
            runs: (5, 5),
            noise: Some(Noise::Estimated(0.05)),
            verdict: Verdict::Regression,
        };
        let s = summary_line(&[row], &Settings::default());
        assert_eq!(s, "**FAIL** — 1 regression (tick_total p95 +14.2% (99% CI +11.0%..+17.5%))");
    }
}

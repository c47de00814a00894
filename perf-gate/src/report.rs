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

/// A duration given in milliseconds, in the unit that suits its size (ns, µs, ms or s) with 3
/// significant digits: `250 ns`, `12.3 µs`, `20.0 ms`, `1.50 s`. The one format of durations
/// on stdout and in the report.
pub fn duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return format!("{ms} ms");
    }
    if ms == 0.0 {
        return "0 ns".to_owned();
    }
    const UNITS: [(f64, &str); 4] = [(1.0, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")];
    let ns = ms * 1e6;
    // The first unit in which the value, rounded to 3 digits, stays below 1000 (999.7 ns is
    // 1.00 µs, not 1000 ns); seconds take any size.
    let (value, decimals, unit) = UNITS
        .iter()
        .map(|&(scale, unit)| {
            let (value, decimals) = three_digits(ns / scale);
            (value, decimals, unit)
        })
        .find(|&(value, _, unit)| value < 1000.0 || unit == "s")
        .unwrap_or((ns / 1e9, 0, "s"));
    format!("{value:.decimals$} {unit}")
}

/// `x > 0` rounded to 3 significant digits, and the decimals that show exactly those.
fn three_digits(x: f64) -> (f64, usize) {
    let mut exponent = x.log10().floor() as i32;
    let scale = 10f64.powi(2 - exponent);
    let rounded = (x * scale).round() / scale;
    if rounded >= 10f64.powi(exponent + 1) {
        exponent += 1; // 9.996 rounds to 10.0: one decimal fewer
    }
    (rounded, (2 - exponent).max(0) as usize)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), duration)
}

fn badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Regression => "🔴 regression",
        Verdict::Missing => "⛔ missing in current",
        Verdict::Inconclusive => "🟡 inconclusive",
        Verdict::Improvement => "🟢 improvement",
        Verdict::Ok => "✅ ok",
        Verdict::New => "🆕 new",
        Verdict::Removed => "➖ removed (allowed)",
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
    // Stages on one side only are listed once, whatever the number of metrics.
    let stages = |v: Verdict| {
        let mut names: Vec<&str> = of(v).iter().map(|r| r.stage.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let n = names.len();
        let shown: Vec<String> = names.iter().take(5).map(|s| s.to_string()).collect();
        let more = n.saturating_sub(5);
        let text = if more > 0 { format!("{}, and {more} more", shown.join(", ")) } else { shown.join(", ") };
        (n, text)
    };
    let plural = |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    let (reg, inc, imp) = (of(Verdict::Regression), of(Verdict::Inconclusive), of(Verdict::Improvement));
    let (missing, missing_names) = stages(Verdict::Missing);
    let mut fails = Vec::new();
    if !reg.is_empty() {
        fails.push(format!("{} regression{} ({})", reg.len(), plural(reg.len(), "", "s"), list(&reg)));
    }
    if missing > 0 {
        fails.push(format!(
            "{missing} stage{} missing in current ({missing_names}: samples in the baseline, none in current; \
             pass --allow-removed-stages if {} removed on purpose)",
            plural(missing, "", "s"),
            plural(missing, "it was", "they were"),
        ));
    }
    let mut s = if fails.is_empty() {
        format!("**PASS** — no stage rose more than {:.1}% with {conf}% confidence", settings.threshold * 100.0)
    } else {
        format!("**FAIL** — {}", fails.join("; "))
    };
    let (removed, removed_names) = stages(Verdict::Removed);
    if removed > 0 {
        let _ = write!(
            s,
            "; {removed} stage{} removed ({removed_names}; allowed by --allow-removed-stages)",
            plural(removed, "", "s")
        );
    }
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
         - **missing in current**: the baseline runs measured the stage, no current run recorded a \
           sample of it; this fails the gate unless `--allow-removed-stages` is given (then: *removed*). \
           *new*: only the current runs have it (for information).\n\
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
    fn durations_have_a_unit_per_value_and_3_significant_digits() {
        let cases = [
            (0.0, "0 ns"),
            (0.5e-6, "0.500 ns"),
            (7e-6, "7.00 ns"),
            (250e-6, "250 ns"),
            (999.4e-6, "999 ns"),
            (999.7e-6, "1.00 µs"),
            (0.012345, "12.3 µs"),
            (0.1, "100 µs"),
            (0.9996, "1.00 ms"),
            (9.996, "10.0 ms"),
            (20.0, "20.0 ms"),
            (123.45, "123 ms"),
            (1500.0, "1.50 s"),
            (12_345_678.0, "12300 s"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration(ms), want, "{ms} ms");
        }
        assert_eq!(ms(None), "—");
        assert_eq!(ms(Some(0.25)), "250 µs");
    }

    fn one_sided(stage: &str, metric: Metric, verdict: Verdict) -> Comparison {
        Comparison {
            stage: stage.into(),
            metric,
            baseline_ms: Some(2.0),
            current_ms: None,
            ratio: None,
            interval: None,
            runs: (1, 0),
            noise: None,
            verdict,
        }
    }

    #[test]
    fn summary_fails_on_a_missing_stage_and_names_it_once() {
        let rows = [
            one_sided("risk", Metric::P50, Verdict::Missing),
            one_sided("risk", Metric::P95, Verdict::Missing),
            one_sided("fresh", Metric::P95, Verdict::New),
        ];
        assert_eq!(
            summary_line(&rows, &Settings::default()),
            "**FAIL** — 1 stage missing in current (risk: samples in the baseline, none in current; \
             pass --allow-removed-stages if it was removed on purpose)"
        );
        let rows = [one_sided("a", Metric::P95, Verdict::Removed), one_sided("b", Metric::P95, Verdict::Removed)];
        assert_eq!(
            summary_line(&rows, &Settings::default()),
            "**PASS** — no stage rose more than 3.0% with 99% confidence; 2 stages removed (a, b; allowed by \
             --allow-removed-stages)"
        );
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

//! The markdown report of a comparison and its one-line summary.

use std::fmt::Write as _;

use crate::compare::{Comparison, Metric, Noise, Settings, Verdict};
use crate::shape::Bimodal;

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

/// The run-to-run noise of a row, as the report shows it: `2.8%`, `2.8% (from baseline runs)`,
/// `1.2% (within-run)` or `20% (assumed)`.
pub fn noise_text(n: Option<Noise>) -> String {
    match n {
        Some(Noise::Estimated(n)) => format!("{:.1}%", n * 100.0),
        Some(Noise::Borrowed { from, noise }) => format!("{:.1}% (from {from} runs)", noise * 100.0),
        Some(Noise::WithinRun(n)) => format!("{:.1}% (within-run)", n * 100.0),
        Some(Noise::Assumed(n)) => format!("{:.0}% (assumed)", n * 100.0),
        None => "—".to_owned(),
    }
}

/// The smallest rise a row's data could have shown as a regression: `+14.2%`.
fn detectable(c: &Comparison) -> String {
    c.power.map_or("—".to_owned(), |p| pct(p.detectable))
}

fn pairs(n: usize) -> String {
    if n >= 1_000_000 { "> 10⁶".to_owned() } else { format!("{n}") }
}

/// The suggestion for a quantile that sits between two clusters.
fn bimodal_text(c: &Comparison, b: &Bimodal) -> String {
    format!(
        "bimodal: {} falls between two clusters ({:.0}% of samples up to {}, the rest from {}); compare another \
         quantile (--metric p50 or p99) or run more ticks",
        c.metric,
        b.share_below * 100.0,
        duration(b.below_ms),
        duration(b.above_ms),
    )
}

/// What a row's data could see, for stdout: noise and where it came from, the smallest change
/// it could show, the interleaved pairs that would decide the threshold, and a bimodal warning.
pub fn sight(c: &Comparison, s: &Settings) -> String {
    let mut out = format!("noise {}", noise_text(c.noise));
    if let Some(p) = c.power {
        let _ = write!(
            out,
            "; could show a rise of {} or more; ~{} interleaved pairs decide {:.1}%",
            pct(p.detectable),
            pairs(p.pairs_needed),
            s.threshold * 100.0
        );
    }
    if let Some(b) = &c.bimodal {
        let _ = write!(out, "; {}", bimodal_text(c, b));
    }
    out
}

/// One line on how the runs were compared: runs per side, paired or not (and why not, when
/// `--paired` was asked for), threshold and confidence, and where the noise came from.
pub fn setup_line(rows: &[Comparison], ctx: &Context<'_>) -> String {
    let s = ctx.settings;
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let compared: Vec<&Comparison> = rows.iter().filter(|r| r.interval.is_some()).collect();
    let mode = if s.paired && !compared.is_empty() && compared.iter().all(|r| !r.paired) {
        format!(
            "unpaired: --paired fell back to the unpaired comparison ({} < --min-runs {})",
            plural(ctx.baseline.len().min(ctx.current.len()), "pair"),
            s.min_runs
        )
    } else if s.paired && compared.iter().any(|r| !r.paired) {
        format!("paired (some stages unpaired: fewer than --min-runs {} pairs have them)", s.min_runs)
    } else if s.paired {
        "paired".to_owned()
    } else {
        "unpaired".to_owned()
    };
    let mut sources: Vec<&str> = Vec::new();
    for r in &compared {
        let kind = match r.noise {
            Some(Noise::Estimated(_)) => "measured on the runs",
            Some(Noise::Borrowed { from: crate::compare::Side::Baseline, .. }) => {
                "measured on the baseline runs, used for both sides"
            }
            Some(Noise::Borrowed { .. }) => "measured on the current runs, used for both sides",
            Some(Noise::WithinRun(_)) => "within-run (from the windows the profiles record)",
            Some(Noise::Assumed(_)) => "assumed (--noise-pct): too few runs to measure it",
            None => continue,
        };
        if !sources.contains(&kind) {
            sources.push(kind);
        }
    }
    format!(
        "{} vs {}, {mode}; threshold {:.1}%, {:.0}% confidence; run-to-run noise: {}",
        plural(ctx.baseline.len(), "baseline run"),
        plural(ctx.current.len(), "current run"),
        s.threshold * 100.0,
        s.confidence * 100.0,
        if sources.is_empty() { "—".to_owned() } else { sources.join("; ") }
    )
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
    let compared = rows.iter().filter(|r| r.interval.is_some()).count();
    let undecided = |rs: &[&Comparison]| {
        let shown: Vec<String> = rs
            .iter()
            .take(5)
            .map(|r| {
                let why = match (&r.bimodal, r.power) {
                    (Some(_), _) => format!("bimodal {}: try another quantile or more ticks", r.metric),
                    (None, Some(p)) => format!(
                        "could show ≥ {}; ~{} interleaved pairs would decide it",
                        pct(p.detectable),
                        pairs(p.pairs_needed)
                    ),
                    (None, None) => String::new(),
                };
                format!(
                    "{} {} {} ({conf}% CI {}; {why})",
                    r.stage,
                    r.metric,
                    pct(r.ratio.unwrap_or(1.0)),
                    interval(r.interval.unwrap_or((1.0, 1.0)))
                )
            })
            .collect();
        let more = rs.len().saturating_sub(5);
        if more > 0 { format!("{}, and {more} more", shown.join(", ")) } else { shown.join(", ") }
    };
    let thr = settings.threshold * 100.0;
    let mut s = if !fails.is_empty() {
        format!("**FAIL** — {}", fails.join("; "))
    } else if !inc.is_empty() {
        format!(
            "**UNDECIDED** — {} of {compared} compared stage{} not decided at {thr:.1}% with {conf}% confidence: {}",
            inc.len(),
            plural(compared, "", "s"),
            undecided(&inc)
        )
    } else if compared == 0 {
        "**PASS** — no stage to compare".to_owned()
    } else {
        format!(
            "**PASS** — {} decided: none rose more than {thr:.1}% with {conf}% confidence",
            if compared == 1 { "the compared stage".to_owned() } else { format!("all {compared} compared stages") }
        )
    };
    let (removed, removed_names) = stages(Verdict::Removed);
    if removed > 0 {
        let _ = write!(
            s,
            "; {removed} stage{} removed ({removed_names}; allowed by --allow-removed-stages)",
            plural(removed, "", "s")
        );
    }
    if !inc.is_empty() && !fails.is_empty() {
        let _ = write!(s, "; {} undecided ({})", inc.len(), list(&inc));
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
    let _ = writeln!(out, "{} · hierarchical bootstrap, {} iterations\n", setup_line(rows, ctx), s.iterations,);
    for &metric in ctx.metrics {
        let _ = writeln!(out, "## {metric}\n");
        let _ = writeln!(
            out,
            "| stage | baseline | current | change | {conf}% interval | runs | noise | could show | pairs to decide {:.1}% | verdict | |",
            s.threshold * 100.0
        );
        let _ = writeln!(out, "|---|--:|--:|--:|:-:|:-:|--:|--:|--:|---|---|");
        let mut notes = Vec::new();
        for c in rows.iter().filter(|r| r.metric == metric) {
            let change = c.ratio.map_or("—".to_owned(), pct);
            let ci = c.interval.map_or("—".to_owned(), interval);
            let visual = c.ratio.map_or(String::new(), |r| format!("`{}`", bar(r)));
            let name = c.stage.replace('|', "\\|").replace('`', "'");
            let mut verdict = badge(c.verdict).to_owned();
            if let Some(b) = &c.bimodal {
                verdict.push_str(" · ⚠️ bimodal");
                notes.push(format!("- `{name}`: {}", bimodal_text(c, b)));
            }
            let _ = writeln!(
                out,
                "| `{name}` | {} | {} | {} | {} | {}/{}{} | {} | {} | {} | {} | {} |",
                ms(c.baseline_ms),
                ms(c.current_ms),
                change,
                ci,
                c.runs.0,
                c.runs.1,
                if c.paired { " paired" } else { "" },
                noise_text(c.noise),
                if c.power.is_some() { format!("≥ {}", detectable(c)) } else { "—".to_owned() },
                c.power.map_or("—".to_owned(), |p| pairs(p.pairs_needed)),
                verdict,
                visual
            );
        }
        let _ = writeln!(out);
        if !notes.is_empty() {
            let _ = writeln!(out, "{}\n", notes.join("\n"));
        }
    }
    let assumed = rows.iter().any(|r| matches!(r.noise, Some(Noise::Assumed(_))));
    let _ = writeln!(
        out,
        "<details><summary>How to read this</summary>\n\n\
         - *baseline*/*current*: geometric mean over the runs of each run's quantile.\n\
         - *interval*: {conf}% confidence interval of current/baseline. A stage regresses only when \
           the whole interval lies above +{thr:.1}%; **inconclusive** means a rise past the threshold \
           cannot be ruled out but is not shown either (more runs per side narrow the interval). \
           The headline says PASS only when every compared stage was decided; otherwise UNDECIDED \
           (exit 0; `--strict` makes it exit 1).\n\
         - *noise*: run-to-run spread of the quantile (one standard deviation) measured from the runs \
           ({min}+ runs per side); for a side with fewer runs, the figure measured on the other side \
           (*from … runs*), else the spread of the quantile between the windows of each run scaled \
           to a whole run (*within-run*, when the profiles record windows), else the assumed \
           `--noise-pct` (*assumed*).\n\
         - *could show*: the smallest rise that, measured with this data, would have been a \
           regression. *pairs to decide*: interleaved baseline/current pairs (`--paired`) with which \
           a stage that did not change comes out ok, and one that rose twice the threshold comes \
           out a regression, 95 times in 100 (from this data's noise; interleaving can only lower it).\n\
         - *bimodal*: the quantile falls in an empty gap between two clusters of samples, so it jumps \
           between them from run to run; compare another quantile or run more ticks.\n\
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
            paired: false,
            power: None,
            bimodal: None,
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
            "**PASS** — no stage to compare; 2 stages removed (a, b; allowed by --allow-removed-stages)"
        );
    }

    fn undecided(stage: &str, metric: Metric) -> Comparison {
        Comparison {
            stage: stage.into(),
            metric,
            baseline_ms: Some(10.0),
            current_ms: Some(10.2),
            ratio: Some(1.02),
            interval: Some((0.9, 1.15)),
            runs: (1, 1),
            noise: Some(Noise::WithinRun(0.02)),
            paired: false,
            power: Some(crate::compare::Power { detectable: 1.1786, pair_sd: 0.04, pairs_needed: 31 }),
            bimodal: None,
            verdict: Verdict::Inconclusive,
        }
    }

    #[test]
    fn summary_is_undecided_unless_every_stage_was_decided() {
        let mut ok = undecided("fetch_md", Metric::P95);
        (ok.interval, ok.verdict) = (Some((0.99, 1.02)), Verdict::Ok);
        let rows = [undecided("tick_total", Metric::P95), ok.clone()];
        assert_eq!(
            summary_line(&rows, &Settings::default()),
            "**UNDECIDED** — 1 of 2 compared stages not decided at 3.0% with 99% confidence: tick_total p95 +2.0% \
             (99% CI -10.0%..+15.0%; could show ≥ +17.9%; ~31 interleaved pairs would decide it)"
        );
        assert_eq!(
            summary_line(&[ok], &Settings::default()),
            "**PASS** — the compared stage decided: none rose more than 3.0% with 99% confidence"
        );
        let mut split = undecided("guards", Metric::P95);
        split.bimodal = Some(Bimodal { below_ms: 0.01, above_ms: 15.0, share_below: 0.95 });
        let line = summary_line(&[split.clone()], &Settings::default());
        assert!(
            line.ends_with("guards p95 +2.0% (99% CI -10.0%..+15.0%; bimodal p95: try another quantile or more ticks)"),
            "{line}"
        );
        assert_eq!(noise_text(split.noise), "2.0% (within-run)");
        let from = Noise::Borrowed { from: crate::compare::Side::Baseline, noise: 0.031 };
        assert_eq!(noise_text(Some(from)), "3.1% (from baseline runs)");
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
            paired: false,
            power: None,
            bimodal: None,
            verdict: Verdict::Regression,
        };
        let s = summary_line(&[row], &Settings::default());
        assert_eq!(s, "**FAIL** — 1 regression (tick_total p95 +14.2% (99% CI +11.0%..+17.5%))");
    }
}

//! Command line (clap derive; the doc comments are the help text).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::compare::Metric;

/// Fails a change whose per-stage latency rose beyond noise, and decides canary rollouts.
///
/// Compares the perf_profile.json files written by mm_trace::write_profile: one or more
/// baseline runs (e.g. main) against one or more current runs (the pull request). A stage
/// regresses only when the whole confidence interval of current/baseline lies above
/// 1 + threshold; when the runs are too noisy to tell, the stage is "inconclusive" and the
/// headline says UNDECIDED (not PASS), naming the stages, the smallest change the data could
/// show and the interleaved pairs that would decide them (exit 0; 1 with --strict). Several
/// runs per side are needed to catch small regressions on noisy machines: see
/// docs/PERF_GATE.md. A stage the baseline has and the current runs lack fails the gate (unless
/// --allow-removed-stages); a profile with no ticks is an error.
///
/// Exit status: 0 pass or undecided, 1 regression (or undecided with --strict; canary:
/// rollback), 2 error.
#[derive(Debug, Parser)]
#[command(
    name = "perf-gate",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  perf-gate --baseline base/run*.json --current pr/run*.json --report perf_gate_report.md\n  perf-gate --baseline b.json --current c.json --metric p50,p95,p99 --threshold-pct 5\n  perf-gate canary --baseline base.json --canary canary.json\n  perf-gate canary --prometheus http://127.0.0.1:9090 --canary-selector 'track=\"canary\"' --baseline-selector 'track=\"baseline\"'"
)]
pub struct Cli {
    /// Compare baseline and current profiles (the default command).
    #[command(flatten)]
    pub compare: CompareArgs,

    /// Subcommands.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `perf-gate canary`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Canary rollout verdict: promote (exit 0) or rollback (exit 1).
    ///
    /// Rollback when the canary's tick_total p95 rose more than --max-p95-increase-pct over the
    /// baseline, or its deadline-miss rate is above --max-deadline-miss-pct, or its partial-fail
    /// rate is above --max-partial-fail-pct; otherwise promote. Reads two sets of profiles
    /// (--baseline/--canary) or a Prometheus server (--prometheus with label selectors).
    Canary(CanaryArgs),
}

/// Arguments of the compare command.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline profile(s): one file per run, repeat the flag or list several files.
    #[arg(long, short = 'b', value_name = "FILE", num_args = 1.., required = true, action = clap::ArgAction::Append)]
    pub baseline: Vec<PathBuf>,

    /// Current profile(s): one file per run, repeat the flag or list several files.
    #[arg(long, short = 'c', value_name = "FILE", num_args = 1.., required = true, action = clap::ArgAction::Append)]
    pub current: Vec<PathBuf>,

    /// Write the markdown report here (also written when a regression is found).
    #[arg(long, short = 'r', value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Smallest rise (in percent) that counts as a regression.
    #[arg(long, value_name = "PCT", default_value_t = 3.0, value_parser = parse_threshold)]
    pub threshold_pct: f64,

    /// Quantile(s) to compare: p50, p95, p99 (repeat or comma-separate).
    #[arg(long, short = 'm', value_enum, value_delimiter = ',', num_args = 1.., default_values_t = [Metric::P95])]
    pub metric: Vec<Metric>,

    /// Confidence level of the intervals, in percent. The default 99 keeps false alarms on
    /// noise-dominated stages near 0.5% per stage (95 would flag about 2.5% of them).
    #[arg(long, value_name = "PCT", default_value_t = 99.0, value_parser = parse_confidence)]
    pub confidence_pct: f64,

    /// Run-to-run noise assumed (one standard deviation, percent) for a side with fewer than
    /// --min-runs runs, where it cannot be measured: neither on the other side's runs nor
    /// within the side's runs (profiles with per-window quantiles, see --no-within-run).
    #[arg(long, value_name = "PCT", default_value_t = 20.0, value_parser = parse_noise)]
    pub noise_pct: f64,

    /// Runs per side from which run-to-run noise is estimated instead of assumed (at least 2).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub min_runs: u32,

    /// Baseline file i and current file i ran back to back on the same machine (interleaved):
    /// compare them as pairs, which cancels machine noise shared by the pair.
    #[arg(long)]
    pub paired: bool,

    /// Accept stages that the baseline measured and the current runs did not record (removed
    /// on purpose): shown as "removed" instead of failing the gate as "missing in current".
    #[arg(long)]
    pub allow_removed_stages: bool,

    /// Exit 1 when a stage is undecided (inconclusive), not only on a regression.
    #[arg(long)]
    pub strict: bool,

    /// Do not estimate a single run's noise from the per-window quantiles its profile records;
    /// use --noise-pct instead (unless the other side has --min-runs runs).
    #[arg(long)]
    pub no_within_run: bool,

    /// A single run's noise is the spread of its window quantiles scaled to the whole run for
    /// quantiles of at least this many ms; shorter ones are dominated by noise that stays the
    /// same through a run, and take the windows' spread whole (at least --noise-pct).
    #[arg(long, value_name = "MS", default_value_t = 1.0, value_parser = parse_pct_limit)]
    pub within_run_min_ms: f64,

    /// Bootstrap iterations.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(200..=1_000_000))]
    pub bootstrap: u32,

    /// Seed of the bootstrap (results are deterministic for a given seed).
    #[arg(long, value_name = "N", default_value_t = 0x6d6d_2d74_7261_6365)]
    pub seed: u64,
}

/// Arguments of `perf-gate canary`.
#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Baseline profile(s) (merged when several).
    #[arg(long, value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append, requires = "canary", conflicts_with = "prometheus")]
    pub baseline: Vec<PathBuf>,

    /// Canary profile(s) (merged when several).
    #[arg(long, value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append, requires = "baseline", conflicts_with = "prometheus")]
    pub canary: Vec<PathBuf>,

    /// Prometheus server to query instead of files, e.g. http://127.0.0.1:9090 (http only).
    #[arg(long, value_name = "URL", requires_all = ["canary_selector", "baseline_selector"], required_unless_present = "baseline")]
    pub prometheus: Option<String>,

    /// Label matchers of the canary's series, e.g. 'track="canary"'.
    #[arg(long, value_name = "MATCHERS", requires = "prometheus")]
    pub canary_selector: Option<String>,

    /// Label matchers of the baseline's series, e.g. 'track="baseline"'.
    #[arg(long, value_name = "MATCHERS", requires = "prometheus")]
    pub baseline_selector: Option<String>,

    /// Range of the rate() windows, a Prometheus duration (30s, 5m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_window)]
    pub window: String,

    /// The metrics use base units (mm_stage_duration_seconds) instead of milliseconds.
    #[arg(long)]
    pub base_units: bool,

    /// Seconds to wait for each Prometheus answer.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,

    /// Write the markdown report here.
    #[arg(long, short = 'r', value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Rollback when the canary's tick_total p95 is more than this many percent above the baseline's.
    #[arg(long, value_name = "PCT", default_value_t = 15.0, value_parser = parse_pct_limit)]
    pub max_p95_increase_pct: f64,

    /// Rollback when more than this percentage of the canary's ticks missed the deadline.
    #[arg(long, value_name = "PCT", default_value_t = 2.0, value_parser = parse_pct_limit)]
    pub max_deadline_miss_pct: f64,

    /// Rollback when more than this percentage of the canary's ticks partially failed.
    #[arg(long, value_name = "PCT", default_value_t = 5.0, value_parser = parse_pct_limit)]
    pub max_partial_fail_pct: f64,
}

fn number(s: &str) -> Result<f64, String> {
    let x: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if x.is_finite() { Ok(x) } else { Err(format!("{s:?} is not a finite number")) }
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if (0.0..100.0).contains(&x) { Ok(x) } else { Err(format!("{x} is outside 0..100")) }
}

fn parse_confidence(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if (50.0..100.0).contains(&x) { Ok(x) } else { Err(format!("{x} is outside 50..100 (e.g. 95)")) }
}

fn parse_noise(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if (0.0..=1000.0).contains(&x) { Ok(x) } else { Err(format!("{x} is outside 0..=1000")) }
}

fn parse_pct_limit(s: &str) -> Result<f64, String> {
    let x = number(s)?;
    if x >= 0.0 { Ok(x) } else { Err(format!("{x} is negative")) }
}

/// A Prometheus duration: one or more `<number><unit>` with unit ms, s, m, h, d, w or y.
fn parse_window(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not a Prometheus duration (e.g. 30s, 5m, 1h)");
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"].into_iter().find(|u| rest.starts_with(u)).ok_or_else(bad)?;
        rest = &rest[unit.len()..];
    }
    if !s.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        return Err(format!("{s:?} is an empty window"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        for ok in ["5m", "30s", "1h30m", "250ms", "1d"] {
            assert!(parse_window(ok).is_ok(), "{ok}");
        }
        for bad in ["", "5", "m", "5 m", "-5m", "0s", "5mm", "5M"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

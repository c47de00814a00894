//! # perf-gate
//!
//! A CI gate over `perf_profile.json` files (written by `mm_trace::write_profile`): fails a
//! change whose per-stage p50/p95/p99 rose past a threshold *with confidence*, not by machine
//! noise, and decides canary rollouts from profiles or a live Prometheus server.
//!
//! The binary is a thin wrapper over [`run`], which the demo bot can also call in-process:
//!
//! ```no_run
//! let code = perf_gate::run(["perf-gate", "--baseline", "base.json", "--current", "pr.json"]);
//! # let _ = code;
//! ```
//!
//! Tests capture the output with [`run_with_output`]:
//!
//! ```
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = perf_gate::run_with_output(["perf-gate", "--baseline", "missing.json", "--current", "x.json"], &mut out, &mut err);
//! assert_eq!(code, 2);
//! assert_eq!(String::from_utf8(err).unwrap(), "perf-gate: missing.json: file not found\n");
//! ```
//!
//! Exit status: 0 pass (canary: promote), 1 regression (canary: rollback), 2 error. The
//! statistics, the CI recipe and the measured accuracy are in `docs/PERF_GATE.md`.

pub mod canary;
pub mod chart;
pub mod cli;
pub mod compare;
pub mod power;
pub mod profile;
pub mod prom;
pub mod report;
pub mod shape;
pub mod stats;
pub mod windows;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::cli::{CanaryArgs, Cli, Command, CompareArgs};
use crate::compare::{Settings, Verdict};
use crate::profile::{InputError, Profile};

/// Exit status: no regression (canary: promote).
pub const EXIT_PASS: u8 = 0;
/// Exit status: regression (canary: rollback).
pub const EXIT_REGRESSION: u8 = 1;
/// Exit status: usage or input error.
pub const EXIT_ERROR: u8 = 2;

/// Runs perf-gate with `args` (the first item is the program name), printing to the process's
/// stdout and stderr, and returns the exit status.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let code = run_with_output(args, &mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    ExitCode::from(code)
}

/// [`run`] with explicit output streams; returns 0, 1 or 2. Never panics on bad input.
pub fn run_with_output<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let text = e.render().to_string();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = stdout.write_all(text.as_bytes());
                    EXIT_PASS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = stderr.write_all(text.as_bytes());
                    EXIT_ERROR
                }
                _ => {
                    let _ = stderr.write_all(text.as_bytes());
                    EXIT_ERROR
                }
            };
        }
    };
    let result = match &cli.command {
        Some(Command::Canary(args)) => run_canary(args, stdout),
        None => run_compare(&cli.compare, stdout),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(stderr, "perf-gate: {e}");
            EXIT_ERROR
        }
    }
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<Profile>, InputError> {
    paths.iter().map(|p| profile::load(p)).collect()
}

/// Writes `text` to `path` with mm-trace's writer: parent directories created, the file replaced
/// atomically through a temporary file unique to the call, so neither a failure nor a concurrent
/// writer of the same path leaves half a report.
fn write_report(path: &Path, text: &str) -> Result<(), InputError> {
    mm_trace::fs::write_file(path, text).map_err(|e| {
        let message = match e {
            mm_trace::Error::Io { path: at, source } if at != path => {
                format!("cannot create directory {}: {source}", at.display())
            }
            mm_trace::Error::Io { source, .. } => format!("cannot write report: {source}"),
            other => format!("cannot write report: {other}"),
        };
        InputError::new(path.display(), message)
    })
}

fn run_compare(args: &CompareArgs, stdout: &mut dyn Write) -> Result<u8, InputError> {
    let baseline = load_all(&args.baseline)?;
    let current = load_all(&args.current)?;
    // A profile without ticks would make every stage "removed" or "new": never a pass.
    for p in baseline.iter().chain(&current) {
        profile::require_ticks(p)?;
    }
    if args.paired && baseline.len() != current.len() {
        return Err(InputError::new(
            "--paired",
            format!("needs as many baseline as current files ({} vs {})", baseline.len(), current.len()),
        ));
    }
    let mut metrics = args.metric.clone();
    metrics.dedup();
    let mut seen = std::collections::BTreeSet::new();
    metrics.retain(|m| seen.insert(*m));
    let settings = Settings {
        threshold: args.threshold_pct / 100.0,
        confidence: args.confidence_pct / 100.0,
        noise: args.noise_pct / 100.0,
        min_runs: args.min_runs as usize,
        iterations: args.bootstrap as usize,
        seed: args.seed,
        paired: args.paired,
        allow_removed_stages: args.allow_removed_stages,
        within_run: !args.no_within_run,
        within_run_min_ms: args.within_run_min_ms,
    };
    let rows = compare::compare(&baseline, &current, &metrics, &settings);
    let names = |ps: &[PathBuf]| ps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
    let (bn, cn) = (names(&args.baseline), names(&args.current));
    let ctx = report::Context { settings: &settings, metrics: &metrics, baseline: &bn, current: &cn };
    if let Some(path) = &args.report {
        write_report(&chart::path_beside(path), &chart::svg(&rows, &baseline, &current, &settings))?;
        write_report(path, &chart::with_link(&report::markdown(&rows, &ctx), path))?;
    }
    let _ = writeln!(stdout, "{}", report::summary_line(&rows, &settings).replace("**", ""));
    let _ = writeln!(stdout, "  {}", report::setup_line(&rows, &ctx));
    for r in &rows {
        let (Some(ratio), Some((lo, hi))) = (r.ratio, r.interval) else {
            let (verdict, metric, stage) = (r.verdict.to_string(), r.metric, &r.stage);
            let shown = |v: Option<f64>| v.map_or("—".to_owned(), report::duration);
            let detail = match r.verdict {
                Verdict::Missing => format!(
                    "{} in baseline, no samples in current (fails the gate; --allow-removed-stages if removed on purpose)",
                    shown(r.baseline_ms)
                ),
                Verdict::Removed => {
                    format!("{} in baseline, no samples in current (allowed)", shown(r.baseline_ms))
                }
                Verdict::New => format!("{} in current, not in baseline", shown(r.current_ms)),
                _ => "no samples in baseline or current".to_owned(),
            };
            let _ = writeln!(stdout, "  {verdict:<12} {metric} {stage}: {detail}");
            continue;
        };
        let _ = writeln!(
            stdout,
            "  {:<12} {} {}: {} -> {} ({:+.1}%, {:.0}% CI {:+.1}%..{:+.1}%); {}",
            r.verdict.to_string(),
            r.metric,
            r.stage,
            report::duration(r.baseline_ms.unwrap_or(0.0)),
            report::duration(r.current_ms.unwrap_or(0.0)),
            (ratio - 1.0) * 100.0,
            settings.confidence * 100.0,
            (lo - 1.0) * 100.0,
            (hi - 1.0) * 100.0,
            report::sight(r, &settings),
        );
    }
    if let Some(path) = &args.report {
        let _ = writeln!(stdout, "report: {}", path.display());
    }
    let undecided = rows.iter().any(|r| r.verdict == Verdict::Inconclusive);
    Ok(if rows.iter().any(|r| r.verdict.fails()) || (args.strict && undecided) { EXIT_REGRESSION } else { EXIT_PASS })
}

fn run_canary(args: &CanaryArgs, stdout: &mut dyn Write) -> Result<u8, InputError> {
    let limits = canary::Limits {
        max_p95_increase_pct: args.max_p95_increase_pct,
        max_deadline_miss_pct: args.max_deadline_miss_pct,
        max_partial_fail_pct: args.max_partial_fail_pct,
    };
    let verdict = if let Some(url) = &args.prometheus {
        let client = canary::client(url, Duration::from_secs(args.timeout_secs))?;
        let (cs, bs) = (args.canary_selector.as_deref().unwrap_or(""), args.baseline_selector.as_deref().unwrap_or(""));
        if prom::matchers(cs) == prom::matchers(bs) {
            return Err(InputError::new(
                "--canary-selector",
                "is the same as --baseline-selector: the tracks must differ",
            ));
        }
        let base = canary::track_from_prometheus(&client, bs, &args.window, args.base_units)?;
        let can = canary::track_from_prometheus(&client, cs, &args.window, args.base_units)?;
        let source = format!(
            "{url}, canary {{{}}} vs baseline {{{}}}, last {}",
            prom::matchers(cs),
            prom::matchers(bs),
            args.window
        );
        canary::decide(base, can, &limits, source)
    } else {
        let base = canary::track_from_profiles(&load_all(&args.baseline)?)?;
        let can = canary::track_from_profiles(&load_all(&args.canary)?)?;
        let list = |ps: &[PathBuf]| ps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        canary::decide(
            base,
            can,
            &limits,
            format!("canary {} vs baseline {}", list(&args.canary), list(&args.baseline)),
        )
    };
    if let Some(path) = &args.report {
        write_report(path, &canary::markdown(&verdict))?;
    }
    let _ = write!(stdout, "{}", canary::text(&verdict));
    Ok(match verdict.decision {
        canary::Decision::Promote => EXIT_PASS,
        canary::Decision::Rollback => EXIT_REGRESSION,
    })
}

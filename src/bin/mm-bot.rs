//! The demo: a simulated market-making bot run in sequential and in async-batching mode, fully
//! instrumented with mm-trace. Prints per-stage tables, serves `/metrics` while it runs and
//! writes every artefact: perf profiles, golden traces, Chrome traces, the Prometheus exposition,
//! the perf-gate report (async vs sequential) and the canary verdict.
//!
//! ```text
//! cargo run --release --bin mm-bot                 # defaults: 8 symbols, 300 ticks per mode
//! cargo run --release --bin mm-bot -- --help
//! ```

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use mm_trace::{Summary, TraceConfig};
use mm_trace_suite::demo::{AsyncBot, Bot, Mode};

/// The mm-trace demo: a simulated market-making bot, run in sequential and in async-batching mode.
///
/// Prints per-stage p50/p95/p99 tables and deadline misses, serves /metrics while it runs, and
/// writes perf profiles, golden and Chrome traces, the Prometheus exposition, the perf-gate report
/// (async vs sequential) and two canary verdicts: async batching as the canary, and the same
/// canary deliberately regressed (--regress-canary-pct), so both verdicts show. Exits 0 whichever
/// verdict the canary gives (the verdict is the demo's result, not a failure), 2 on an error.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Symbols quoted per tick.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    symbols: u16,
    /// Ticks per mode.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    ticks: u32,
    /// Real time slept per simulated millisecond (0.1: ten times faster than real time). Every
    /// reported figure stays in simulated (unscaled) milliseconds. Below about 0.05 the OS's
    /// sleep granularity, magnified by 1/scale, visibly inflates the simulated latencies.
    #[arg(long, default_value_t = 0.1)]
    time_scale: f64,
    /// Which modes to run.
    #[arg(long, value_enum, default_value_t = Modes::Both)]
    mode: Modes,
    /// Directory for the artefacts.
    #[arg(long, default_value = "artifacts")]
    out: PathBuf,
    /// Address of the /metrics endpoint while the bot runs ("off" to disable).
    #[arg(long, default_value = "127.0.0.1:9898")]
    listen: String,
    /// A config.yaml whose `trace:` section replaces the demo's trace settings.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of the simulated latencies. Runs compared as independent samples (e.g. the pairs of
    /// a perf-gate benchmark) need distinct seeds: one seed repeats the same draws.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Makes every book fetch (fetch_md) this many percent slower: a deliberate regression to
    /// try perf-gate on.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_pct)]
    slow_fetch_pct: f64,
    /// With both modes: also run the async canary with every exchange latency this many percent
    /// slower and give its canary verdict (0: skip that run).
    #[arg(long, value_name = "PCT", default_value_t = 30.0, value_parser = parse_pct)]
    regress_canary_pct: f64,
    /// Windows per run whose per-stage quantiles go into the profile (perf-gate estimates a
    /// single run's noise from them; 0: none).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=1000))]
    windows: u32,
}

fn parse_pct(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=1000.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a percentage in 0..=1000")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Modes {
    Both,
    Sequential,
    Async,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mm-bot: {e}");
            ExitCode::from(2)
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

fn run(args: &Args) -> Result<(), BoxError> {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 1.0) {
        return Err(format!("--time-scale must be in (0, 1], got {}", args.time_scale).into());
    }
    let base = match &args.config {
        Some(path) => TraceConfig::from_yaml_file(path)?,
        None => TraceConfig {
            sample_rate: 0.2,
            deadline_ms: 200.0,
            export_golden: true,
            golden_trace_interval: 10,
            chrome_ring_ticks: 16,
            ..TraceConfig::default()
        },
    };
    mm_trace::test_clock::set_time_scale(args.time_scale)?;
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;

    let _server = match args.listen.as_str() {
        "off" | "none" => None,
        addr => match mm_trace::serve_metrics(addr) {
            Ok(server) => {
                let a = server.local_addr();
                println!("serving http://{a}/metrics and http://{a}/traces while the bot runs");
                Some(server)
            }
            Err(e) => {
                eprintln!("mm-bot: no /metrics endpoint ({e}); pass --listen 127.0.0.1:0 for any free port");
                None
            }
        },
    };

    let modes: &[Mode] = match args.mode {
        Modes::Both => &[Mode::Sequential, Mode::AsyncBatching],
        Modes::Sequential => &[Mode::Sequential],
        Modes::Async => &[Mode::AsyncBatching],
    };
    let mut results = Vec::new();
    for &mode in modes {
        let dir = args.out.join(mode.as_str());
        let cfg = TraceConfig { golden_dir: dir.join("traces"), ..base.clone() };
        results.push((mode, run_mode(args, mode, 1.0, cfg, &dir)?));
    }
    let regressed_dir = args.out.join("async-regressed");
    let regressed = if args.mode == Modes::Both && args.regress_canary_pct > 0.0 {
        let cfg = TraceConfig { golden_dir: regressed_dir.join("traces"), ..base.clone() };
        let factor = 1.0 + args.regress_canary_pct / 100.0;
        Some(run_mode(args, Mode::AsyncBatching, factor, cfg, &regressed_dir)?)
    } else {
        let _ = std::fs::remove_dir_all(&regressed_dir);
        None
    };

    for (mode, summary) in &results {
        println!("\n== {} mode: {} symbols, {} ticks ==", mode.as_str(), args.symbols, summary.ticks);
        print!("{}", summary.table());
    }
    if let [(_, seq), (_, asy)] = results.as_slice() {
        let p95 = |s: &Summary| s.stage("tick_total").map_or(f64::NAN, |st| st.p95_ms);
        println!(
            "\nasync batching: tick_total p95 {:.1} ms vs {:.1} ms sequential ({:.2}x faster); deadline misses {:.1}% vs {:.1}%",
            p95(asy),
            p95(seq),
            p95(seq) / p95(asy),
            asy.deadline_miss_pct,
            seq.deadline_miss_pct
        );
        if let Some(r) = &regressed {
            println!(
                "regressed canary (async, exchange latencies +{}%): tick_total p95 {:.1} ms; deadline misses {:.1}%",
                args.regress_canary_pct,
                p95(r),
                r.deadline_miss_pct
            );
        }
        gate(&args.out, regressed.is_some())?;
    }
    println!("\nartefacts in {}/", args.out.display());
    for entry in walk(&args.out) {
        println!("  {}", entry.display());
    }
    Ok(())
}

/// One mode: reset, run the ticks with a progress line, flush, write the mode's artefacts.
/// `slower` multiplies every exchange latency (1.0: as simulated).
fn run_mode(args: &Args, mode: Mode, slower: f64, cfg: TraceConfig, dir: &Path) -> Result<Summary, BoxError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    mm_trace::init(cfg)?;
    mm_trace::reset();
    mm_trace::clear_profile_labels();
    mm_trace::set_profile_label("mode", mode.as_str());
    mm_trace::set_profile_label("symbols", args.symbols);
    mm_trace::set_profile_label("seed", args.seed);
    if args.slow_fetch_pct > 0.0 {
        mm_trace::set_profile_label("slow_fetch_pct", args.slow_fetch_pct);
    }
    if slower != 1.0 {
        mm_trace::set_profile_label("latency_factor", slower);
    }
    let mut bot = Bot::new(args.symbols.into(), args.time_scale, args.seed, mode);
    bot.fetch_factor = 1.0 + args.slow_fetch_pct / 100.0;
    bot.latency_factor = slower;
    let name = if slower == 1.0 { mode.as_str() } else { "regressed" };
    let progress = Progress::new(name, args.ticks);
    // Window boundaries: the ends of `windows` near-equal runs of ticks.
    let windows = args.windows.min(args.ticks);
    let mut recorder = perf_gate::windows::Recorder::new();
    let mut window_end = |done: u32| {
        let index = |d: u32| u64::from(d) * u64::from(windows) / u64::from(args.ticks);
        if windows > 0 && index(done) > index(done - 1) {
            mm_trace::flush();
            recorder.mark(&mm_trace::summary());
        }
    };
    let started = Instant::now();
    match mode {
        Mode::Sequential => {
            for i in 0..args.ticks {
                let _ = bot.tick();
                progress.update(i + 1);
                window_end(i + 1);
            }
        }
        Mode::AsyncBatching => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build()?;
            let bot = AsyncBot::new(bot);
            rt.block_on(async {
                for i in 0..args.ticks {
                    let _ = bot.tick().await;
                    progress.update(i + 1);
                    window_end(i + 1);
                }
            });
        }
    }
    progress.finish(started.elapsed());
    mm_trace::flush();
    let profile = dir.join("perf_profile.json");
    mm_trace::write_profile(&profile)?;
    if windows > 0 {
        recorder.add_to_profile(&profile)?;
    }
    mm_trace::write_prometheus_text(dir.join("metrics.prom"))?;
    mm_trace::write_chrome_trace(dir.join("trace.json"))?;
    write_pictures(dir)?;
    Ok(mm_trace::summary())
}

/// perf-gate on the two profiles: the compare report (async as "current" against sequential)
/// and the canary verdict (async as the canary), printed and written beside the profiles.
/// Errs only when perf-gate cannot read the profiles: a regression or a rollback verdict is what
/// the demo shows, not a failure of the run, so mm-bot exits 0 on promote and rollback alike
/// (`perf-gate canary` itself exits 1 on rollback).
fn gate(out: &Path, regressed: bool) -> Result<(), BoxError> {
    let seq = out.join("sequential/perf_profile.json");
    let asy = out.join("async/perf_profile.json");
    let report = out.join("perf_gate_report.md");
    println!("\n== perf-gate: async batching (current) vs sequential (baseline) ==");
    let compare = perf_gate_in_process(&[
        "--baseline".as_ref(),
        seq.as_os_str(),
        "--current".as_ref(),
        asy.as_os_str(),
        "--report".as_ref(),
        report.as_os_str(),
    ]);
    if compare == perf_gate::EXIT_ERROR {
        return Err("perf-gate could not compare the profiles (see above)".into());
    }
    println!("\n== perf-gate canary: async batching as the canary ==");
    canary(&seq, &asy, &out.join("canary_verdict.md"))?;
    if regressed {
        println!("\n== perf-gate canary: the regressed async canary ==");
        canary(&seq, &out.join("async-regressed/perf_profile.json"), &out.join("canary_regressed_verdict.md"))?;
    }
    Ok(())
}

/// `perf-gate canary` in process; errs only when it cannot read the profiles.
fn canary(baseline: &Path, canary: &Path, report: &Path) -> Result<(), BoxError> {
    let verdict = perf_gate_in_process(&[
        "canary".as_ref(),
        "--baseline".as_ref(),
        baseline.as_os_str(),
        "--canary".as_ref(),
        canary.as_os_str(),
        "--report".as_ref(),
        report.as_os_str(),
    ]);
    match verdict {
        perf_gate::EXIT_ERROR => Err("perf-gate canary failed (see above)".into()),
        _ => Ok(()),
    }
}

/// Runs perf-gate in this process with `args` (after the program name); returns its exit status.
fn perf_gate_in_process(args: &[&std::ffi::OsStr]) -> u8 {
    let argv = std::iter::once("perf-gate".as_ref()).chain(args.iter().copied());
    perf_gate::run_with_output(argv, &mut std::io::stdout(), &mut std::io::stderr())
}

/// A progress line: rewritten in place on a terminal, a line every 25% otherwise.
struct Progress {
    mode: &'static str,
    total: u32,
    tty: bool,
}

impl Progress {
    fn new(mode: &'static str, total: u32) -> Self {
        Progress { mode, total, tty: std::io::stderr().is_terminal() }
    }

    fn update(&self, done: u32) {
        let quarter = (self.total / 4).max(1);
        if !(self.tty || done.is_multiple_of(quarter) || done == self.total) {
            return;
        }
        let s = mm_trace::summary();
        let p95 = s.stage("tick_total").map_or(0.0, |t| t.p95_ms);
        let line = format!(
            "{:>10}: {done:>5}/{} ticks  tick_total p95 {p95:>7.1} ms  deadline misses {:>5.1}%",
            self.mode, self.total, s.deadline_miss_pct
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    fn finish(&self, took: std::time::Duration) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = writeln!(err);
        }
        let _ = writeln!(err, "{:>10}: done in {:.1} s (real time)", self.mode, took.as_secs_f64());
    }
}

/// Files under `dir`, sorted, relative to it; golden trace directories are summarised.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "traces") {
                let names: Vec<_> = std::fs::read_dir(&path).map_or(Vec::new(), |d| d.flatten().collect());
                let svg = names.iter().filter(|e| e.path().extension().is_some_and(|x| x == "svg")).count();
                let n = names.len() - svg;
                out.push(path.join(format!("({n} golden/slow trace files, {svg} slow-tick pictures)")));
            } else {
                out.extend(walk(&path));
            }
        } else {
            out.push(path);
        }
    }
    out
}

/// The mode's pictures of its recent kept ticks: folded stacks (`stacks.folded`, self time in
/// µs, for inferno-flamegraph or speedscope) and the slowest tick as an SVG timeline
/// (`slowest_tick.svg`). Slow ticks also get theirs in `traces/`, beside their JSON.
fn write_pictures(dir: &Path) -> Result<(), BoxError> {
    let recent = mm_trace::recent_traces();
    mm_trace::fs::write_file(&dir.join("stacks.folded"), &mm_trace::folded_stacks(&recent))?;
    if let Some(slowest) = recent.iter().max_by_key(|t| t.duration_ns) {
        mm_trace::fs::write_file(&dir.join("slowest_tick.svg"), &mm_trace::tick_svg(slowest))?;
    }
    Ok(())
}

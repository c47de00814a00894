//! `mm-bot`: the demo market-making bot. Runs the sequential mode and the async-batching mode,
//! prints per-stage p50/p95/p99 and deadline misses for both, serves `/metrics` while running,
//! and writes every artefact mm-trace produces (profiles, golden and Chrome traces, the
//! Prometheus exposition, the perf-gate report and the canary verdict).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use mm_trace::TraceConfig;
use mm_trace_suite::demo::{AsyncBot, Bot, Mode};

/// Simulated market-making bot instrumented with mm-trace.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Symbols traded per tick.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    symbols: u16,
    /// Ticks per mode.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    ticks: u32,
    /// Real time slept per simulated millisecond (figures are reported unscaled).
    #[arg(long, default_value_t = 0.1)]
    time_scale: f64,
    /// Which modes to run.
    #[arg(long, default_value = "both", value_parser = ["both", "sequential", "async"])]
    mode: String,
    /// Where artefacts go.
    #[arg(long, default_value = "artifacts")]
    out: PathBuf,
    /// Serve /metrics here while running ("off" to disable).
    #[arg(long, default_value = "127.0.0.1:9898")]
    listen: String,
    /// mm-trace config file (its `trace:` section); the deadline is scaled by --time-scale.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of the simulated latencies.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mm-bot: {e}");
            ExitCode::from(2)
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn run(args: Args) -> Res<ExitCode> {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 10.0) {
        return Err(format!("--time-scale {} is out of range: allowed above 0 and at most 10", args.time_scale).into());
    }
    let mut cfg = match &args.config {
        Some(p) => TraceConfig::from_yaml_file(p)?,
        None => TraceConfig::default(),
    };
    let unscaled_deadline = cfg.deadline_ms;
    cfg.deadline_ms *= args.time_scale;
    cfg.golden_dir = args.out.join("traces");
    cfg.golden_trace_interval = cfg.golden_trace_interval.min(20);
    mm_trace::init(cfg.clone())?;
    let _ = std::fs::remove_dir_all(args.out.join("traces"));

    let _server = if args.listen == "off" {
        None
    } else {
        match mm_trace::serve_metrics(args.listen.as_str()) {
            Ok(s) => {
                println!("serving http://{}/metrics while running", s.local_addr());
                Some(s)
            }
            Err(e) => {
                eprintln!("mm-bot: /metrics not served: {e} (use --listen ADDR or --listen off)");
                None
            }
        }
    };

    let modes: Vec<Mode> = match args.mode.as_str() {
        "sequential" => vec![Mode::Sequential],
        "async" => vec![Mode::AsyncBatching],
        _ => vec![Mode::Sequential, Mode::AsyncBatching],
    };
    let mut results = Vec::new();
    for mode in modes {
        results.push(run_mode(&args, mode, unscaled_deadline)?);
    }

    let ci = args.out.join("ci");
    if let [seq, asy] = &results[..] {
        let ratio = seq.p95 / asy.p95;
        println!("\ntick_total p95: sequential {:.1} ms, async {:.1} ms ({ratio:.2}x faster)", seq.p95, asy.p95);
        let gate = perf_gate::run_from_args([
            "perf-gate",
            "--baseline",
            &seq.profile.display().to_string(),
            "--current",
            &asy.profile.display().to_string(),
            "--report",
            &ci.join("perf_gate_report.md").display().to_string(),
        ]);
        println!("perf-gate (async vs sequential baseline): exit {gate}, report {}", ci.join("perf_gate_report.md").display());
        let canary = perf_gate::run_from_args([
            "perf-gate",
            "canary",
            "--baseline",
            &seq.profile.display().to_string(),
            "--canary",
            &asy.profile.display().to_string(),
            "--report",
            &ci.join("canary_verdict.md").display().to_string(),
        ]);
        println!(
            "canary verdict (async as canary): {} (exit {canary}), see {}",
            if canary == 0 { "PROMOTE" } else if canary == 1 { "ROLLBACK" } else { "ERROR" },
            ci.join("canary_verdict.md").display()
        );
    }
    mm_trace::flush();
    println!("\nartefacts in {}/", args.out.display());
    for f in list_files(&args.out) {
        println!("  {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

struct ModeResult {
    profile: PathBuf,
    p95: f64,
}

fn run_mode(args: &Args, mode: Mode, deadline_ms: f64) -> Res<ModeResult> {
    mm_trace::reset();
    let scale = args.time_scale;
    let bot = Bot::new(usize::from(args.symbols), scale, args.seed ^ (mode as u64 + 1), mode);
    println!("\n== {} mode: {} ticks, {} symbols, time scale {scale} ==", mode.as_str(), args.ticks, args.symbols);
    let started = Instant::now();
    let progress = |i: u32| {
        if (i + 1) % (args.ticks / 10).max(1) == 0 || i + 1 == args.ticks {
            let s = mm_trace::summary();
            println!(
                "  [{:>3}%] tick {:>5}/{}  p95 {:>7.1} ms  misses {:>5.2}%  ({:.1}s)",
                (i + 1) * 100 / args.ticks,
                i + 1,
                args.ticks,
                s.stage("tick_total").map_or(0.0, |t| t.p95_ms / scale),
                s.deadline_miss_pct,
                started.elapsed().as_secs_f64()
            );
        }
    };
    match mode {
        Mode::Sequential => {
            for i in 0..args.ticks {
                let _ = bot.tick();
                progress(i);
            }
        }
        Mode::AsyncBatching => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build()?;
            let bot = AsyncBot::new(bot);
            rt.block_on(async {
                for i in 0..args.ticks {
                    let _ = bot.tick().await;
                    progress(i);
                }
            });
        }
    }
    mm_trace::flush();
    let s = mm_trace::summary();
    println!("\n{} mode, unscaled ms (deadline {deadline_ms} ms):", mode.as_str());
    println!("{:<14} {:>7} {:>9} {:>9} {:>9} {:>9}", "stage", "count", "p50", "p95", "p99", "max");
    for st in &s.stages {
        println!(
            "{:<14} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            st.name,
            st.count,
            st.p50_ms / scale,
            st.p95_ms / scale,
            st.p99_ms / scale,
            st.max_ms / scale
        );
    }
    for e in &s.exchange {
        println!(
            "{:<14} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            format!("{} {}", e.verb, e.api),
            e.stats.count,
            e.stats.p50_ms / scale,
            e.stats.p95_ms / scale,
            e.stats.p99_ms / scale,
            e.stats.max_ms / scale
        );
    }
    println!(
        "ticks {}  deadline misses {} ({:.2}%)  partial fails {} ({:.2}%)  guard trips {:?}",
        s.ticks,
        s.deadline_misses,
        s.deadline_miss_pct,
        s.partial_fails,
        if s.ticks == 0 { 0.0 } else { s.partial_fails as f64 * 100.0 / s.ticks as f64 },
        s.guard_trips
    );
    println!(
        "mm-trace overhead: {:.4}% of tick time ({} spans, ~{:.0} ns each, clock {})",
        s.health.overhead_ratio * 100.0,
        s.health.spans_recorded,
        s.health.span_cost_ns,
        s.health.clock
    );
    let dir = args.out.join(mode.as_str());
    let profile = dir.join("perf_profile.json");
    mm_trace::set_profile_label("mode", mode.as_str());
    mm_trace::set_profile_label("time_scale", &scale.to_string());
    mm_trace::write_profile(&profile)?;
    mm_trace::write_prometheus_text(dir.join("metrics.prom"))?;
    mm_trace::write_chrome_trace(dir.join("trace.chrome.json"))?;
    Ok(ModeResult { profile, p95: s.stage("tick_total").map_or(0.0, |t| t.p95_ms / scale) })
}

fn list_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() { stack.push(p) } else { out.push(p) }
            }
        }
    }
    out.sort();
    if out.len() > 40 {
        let n = out.len();
        out.truncate(40);
        out.push(PathBuf::from(format!("... and {} more", n - 40)));
    }
    out
}

//! Canary rollout rules: rollback when the canary's tick_total p95 rose too much over the
//! baseline's, or the canary misses too many deadlines, or too many of its ticks partially fail.

use std::fmt::Write as _;
use std::time::Duration;

use crate::profile::{InputError, Profile, StageProfile};
use crate::prom;

/// Rollback limits, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest allowed rise of tick_total p95 over the baseline.
    pub max_p95_increase_pct: f64,
    /// Largest allowed share of canary ticks that missed the deadline.
    pub max_deadline_miss_pct: f64,
    /// Largest allowed share of canary ticks that partially failed.
    pub max_partial_fail_pct: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_p95_increase_pct: 15.0, max_deadline_miss_pct: 2.0, max_partial_fail_pct: 5.0 }
    }
}

/// What the rules look at, for one track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Track {
    /// tick_total p95, ms.
    pub p95_ms: f64,
    /// Deadline misses, percent of ticks.
    pub deadline_miss_pct: f64,
    /// Partial failures, percent of ticks.
    pub partial_fail_pct: f64,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// All rules within limits.
    Promote,
    /// At least one rule broken.
    Rollback,
}

impl Decision {
    /// `PROMOTE` or `ROLLBACK`, as reports print it.
    pub fn label(self) -> &'static str {
        match self {
            Decision::Promote => "PROMOTE",
            Decision::Rollback => "ROLLBACK",
        }
    }
}

/// One rule's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// What is checked.
    pub name: &'static str,
    /// The canary's value (percent).
    pub value_pct: f64,
    /// The limit (percent).
    pub limit_pct: f64,
    /// The value exceeds the limit.
    pub broken: bool,
}

/// A verdict with the values that led to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Promote or rollback.
    pub decision: Decision,
    /// The three rules in order: p95 increase, deadline misses, partial failures.
    pub rules: Vec<Rule>,
    /// Baseline values.
    pub baseline: Track,
    /// Canary values.
    pub canary: Track,
    /// Where the values came from (files or Prometheus URL and selectors).
    pub source: String,
}

/// Applies the rules.
pub fn decide(baseline: Track, canary: Track, limits: &Limits, source: String) -> Verdict {
    let increase = if baseline.p95_ms > 0.0 {
        (canary.p95_ms / baseline.p95_ms - 1.0) * 100.0
    } else if canary.p95_ms > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let rule =
        |name, value_pct: f64, limit_pct: f64| Rule { name, value_pct, limit_pct, broken: value_pct > limit_pct };
    let rules = vec![
        rule("tick_total p95 increase", increase, limits.max_p95_increase_pct),
        rule("deadline-miss rate", canary.deadline_miss_pct, limits.max_deadline_miss_pct),
        rule("partial-fail rate", canary.partial_fail_pct, limits.max_partial_fail_pct),
    ];
    let decision = if rules.iter().any(|r| r.broken) { Decision::Rollback } else { Decision::Promote };
    Verdict { decision, rules, baseline, canary, source }
}

/// Merges the runs of one track read from profiles; errors name the file.
pub fn track_from_profiles(profiles: &[Profile]) -> Result<Track, InputError> {
    let mut tick: Option<StageProfile> = None;
    let (mut ticks, mut misses, mut fails) = (0u64, 0u64, 0u64);
    for p in profiles {
        crate::profile::require_ticks(p)?;
        let shown = p.path.display();
        let t = p.doc.stages.get("tick_total").filter(|s| s.count > 0).ok_or_else(|| {
            InputError::new(&shown, "no tick_total samples (no ticks recorded), cannot judge a canary")
        })?;
        match &mut tick {
            None => tick = Some(t.clone()),
            Some(acc) => acc.merge(t),
        }
        ticks += p.doc.ticks;
        misses += p.doc.deadline_misses;
        fails += p.doc.partial_fails;
    }
    let tick = tick.ok_or_else(|| InputError::new("(no files)", "no profiles given"))?;
    let pct = |n: u64| {
        if ticks == 0 { 0.0 } else { n as f64 * 100.0 / ticks as f64 }
    };
    Ok(Track { p95_ms: tick.quantile_ms(0.95), deadline_miss_pct: pct(misses), partial_fail_pct: pct(fails) })
}

/// Reads one track from Prometheus.
pub fn track_from_prometheus(
    client: &prom::Client,
    selector: &str,
    window: &str,
    base_units: bool,
) -> Result<Track, InputError> {
    let q = prom::queries(selector, window, base_units);
    let shown = prom::matchers(selector);
    let who = if shown.is_empty() { "all series".to_owned() } else { shown };
    let one = |query: &str, what: &str| -> Result<f64, InputError> {
        let samples = client.query(query).map_err(|e| InputError::new(&client.url, e))?;
        let v = samples.first().map(|s| s.value);
        match v {
            None => Err(InputError::new(
                &client.url,
                format!("no samples for {who} in the last {window} ({what}; query: {query})"),
            )),
            Some(x) if x.is_nan() => Err(InputError::new(
                &client.url,
                format!("no ticks for {who} in the last {window} ({what} is NaN; query: {query})"),
            )),
            Some(x) if x < 0.0 || x.is_infinite() => {
                Err(InputError::new(&client.url, format!("{what} for {who} is {x}; query: {query}")))
            }
            Some(x) => Ok(x),
        }
    };
    let rate = one(&q.tick_rate, "tick rate")?;
    if rate <= 0.0 {
        return Err(InputError::new(
            &client.url,
            format!("no ticks for {who} in the last {window} (query: {})", q.tick_rate),
        ));
    }
    let p95 = one(&q.p95, "tick_total p95")?;
    Ok(Track {
        p95_ms: if base_units { p95 * 1e3 } else { p95 },
        deadline_miss_pct: one(&q.deadline_miss_ratio, "deadline-miss ratio")? * 100.0,
        partial_fail_pct: one(&q.partial_fail_ratio, "partial-fail ratio")? * 100.0,
    })
}

/// A client for `url` with `timeout` per request.
pub fn client(url: &str, timeout: Duration) -> Result<prom::Client, InputError> {
    prom::Client::new(url, timeout).map_err(|e| InputError::new("--prometheus", e))
}

fn decided_by(v: &Verdict) -> String {
    let broken: Vec<&Rule> = v.rules.iter().filter(|r| r.broken).collect();
    if broken.is_empty() {
        "all three rules within limits".to_owned()
    } else {
        broken
            .iter()
            .map(|r| format!("{} {} > {}", r.name, show_pct(r.value_pct), show_pct(r.limit_pct)))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn show_pct(x: f64) -> String {
    if x.is_infinite() { "+∞%".to_owned() } else { format!("{x:.2}%") }
}

/// The short plain-text report printed on stdout.
pub fn text(v: &Verdict) -> String {
    let mut s = format!("{}: {}\n", v.decision.label(), decided_by(v));
    let _ = writeln!(
        s,
        "  tick_total p95: baseline {:.3} ms, canary {:.3} ms, change {} (limit +{:.1}%){}",
        v.baseline.p95_ms,
        v.canary.p95_ms,
        show_signed(v.rules[0].value_pct),
        v.rules[0].limit_pct,
        mark(&v.rules[0])
    );
    for (r, b) in v.rules[1..].iter().zip([v.baseline.deadline_miss_pct, v.baseline.partial_fail_pct]) {
        let _ = writeln!(
            s,
            "  {}: canary {:.2}% (limit {:.1}%; baseline {:.2}%){}",
            r.name,
            r.value_pct,
            r.limit_pct,
            b,
            mark(r)
        );
    }
    let _ = writeln!(s, "  source: {}", v.source);
    s
}

fn show_signed(x: f64) -> String {
    if x.is_infinite() { "+∞%".to_owned() } else { format!("{x:+.1}%") }
}

fn mark(r: &Rule) -> &'static str {
    if r.broken { "  <- rollback" } else { "" }
}

/// The markdown report.
pub fn markdown(v: &Verdict) -> String {
    let mut s = format!(
        "# perf-gate canary\n\n**{}** — {}\n\n| rule | baseline | canary | limit | |\n|---|--:|--:|--:|---|\n",
        v.decision.label(),
        decided_by(v)
    );
    let status = |r: &Rule| if r.broken { "🔴 rollback" } else { "✅ ok" };
    let _ = writeln!(
        s,
        "| tick_total p95 | {:.3} ms | {:.3} ms ({}) | +{:.1}% | {} |",
        v.baseline.p95_ms,
        v.canary.p95_ms,
        show_signed(v.rules[0].value_pct),
        v.rules[0].limit_pct,
        status(&v.rules[0])
    );
    for (r, b) in v.rules[1..].iter().zip([v.baseline.deadline_miss_pct, v.baseline.partial_fail_pct]) {
        let _ = writeln!(s, "| {} | {:.2}% | {:.2}% | {:.1}% | {} |", r.name, b, r.value_pct, r.limit_pct, status(r));
    }
    let _ = writeln!(s, "\nSource: {}", v.source);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p95_ms: f64, miss: f64, fail: f64) -> Track {
        Track { p95_ms, deadline_miss_pct: miss, partial_fail_pct: fail }
    }

    #[test]
    fn each_rule_can_decide() {
        let l = Limits::default();
        let base = t(100.0, 0.5, 0.5);
        assert_eq!(decide(base, t(114.0, 1.9, 4.9), &l, String::new()).decision, Decision::Promote);
        let v = decide(base, t(116.0, 0.0, 0.0), &l, String::new());
        assert_eq!(v.decision, Decision::Rollback);
        assert!(text(&v).starts_with("ROLLBACK: tick_total p95 increase 16.00% > 15.00%"), "{}", text(&v));
        let v = decide(base, t(100.0, 2.1, 0.0), &l, String::new());
        assert!(text(&v).starts_with("ROLLBACK: deadline-miss rate 2.10% > 2.00%"), "{}", text(&v));
        let v = decide(base, t(100.0, 0.0, 5.5), &l, String::new());
        assert!(text(&v).starts_with("ROLLBACK: partial-fail rate 5.50% > 5.00%"), "{}", text(&v));
        let v = decide(t(0.0, 0.0, 0.0), t(1.0, 0.0, 0.0), &l, String::new());
        assert_eq!(v.decision, Decision::Rollback);
        let strict = Limits { max_p95_increase_pct: 5.0, ..l };
        assert_eq!(decide(base, t(110.0, 0.0, 0.0), &strict, String::new()).decision, Decision::Rollback);
        let md = markdown(&decide(base, t(110.0, 0.0, 0.0), &l, "x".into()));
        assert!(md.contains("**PROMOTE** — all three rules within limits"), "{md}");
        assert!(md.contains("| tick_total p95 | 100.000 ms | 110.000 ms (+10.0%) | +15.0% | ✅ ok |"), "{md}");
    }
}

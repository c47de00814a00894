//! What the attributes record at run time: stage names, counts, durations, exchange labels,
//! parent/child structure in a tick's trace, and spans closed by early return, `?`, panics and
//! async completion on a multi-threaded runtime.

use std::sync::Mutex;
use std::time::Duration;

use mm_trace::{TraceConfig, exchange_req, in_stage, stage, stage_guard, traced_tick};

static SERIAL: Mutex<()> = Mutex::new(());

fn setup() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
    mm_trace::set_enabled(true);
    mm_trace::reset();
    g
}

fn count(stage: &str) -> u64 {
    mm_trace::summary().stage(stage).map_or(0, |s| s.count)
}

#[stage("sleeper")]
fn sleeper(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn a_stage_that_sleeps_n_ms_records_at_least_n_ms() {
    let _g = setup();
    for ms in [2, 5, 12] {
        mm_trace::reset();
        sleeper(ms);
        let s = mm_trace::summary();
        let st = s.stage("sleeper").expect("stage recorded under its given name");
        assert_eq!(st.count, 1);
        assert!(st.max_ms >= ms as f64, "slept {ms} ms, recorded {} ms", st.max_ms);
        assert!(st.p50_ms >= ms as f64 * 0.99, "p50 {} ms for a {ms} ms sleep", st.p50_ms);
    }
}

#[stage]
fn named_after_the_fn() {}

struct Book {
    levels: Vec<u32>,
}

impl Book {
    #[stage]
    fn by_ref(&self) -> usize {
        self.levels.len()
    }
    #[stage]
    fn by_mut(&mut self) {
        self.levels.push(1);
    }
    #[stage]
    fn by_value(self) -> Vec<u32> {
        self.levels
    }
}

#[stage("generic")]
fn generic<T: Into<u64>>(x: T) -> u64 {
    x.into()
}

#[test]
fn names_and_counts_for_each_shape() {
    let _g = setup();
    for _ in 0..3 {
        named_after_the_fn();
    }
    let mut b = Book { levels: vec![] };
    b.by_mut();
    b.by_mut();
    assert_eq!(b.by_ref(), 2);
    assert_eq!(b.by_value().len(), 2);
    // Every instantiation of a generic fn shares its one call site.
    assert_eq!(generic(1u8) + generic(2u32) + generic(3u64), 6);
    assert_eq!(count("named_after_the_fn"), 3);
    assert_eq!(count("by_mut"), 2);
    assert_eq!(count("by_ref"), 1);
    assert_eq!(count("by_value"), 1);
    assert_eq!(count("generic"), 3);
}

#[stage]
fn early(x: i32) -> i32 {
    if x < 0 {
        return -1;
    }
    std::thread::sleep(Duration::from_millis(1));
    x
}

#[stage]
fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    let v: u32 = s.parse()?;
    Ok(v)
}

#[stage]
fn panics() {
    panic!("boom");
}

#[traced_tick]
fn panicking_tick() {
    panics();
}

#[test]
fn early_return_question_mark_and_panic_close_the_span() {
    let _g = setup();
    assert_eq!(early(-5), -1);
    assert_eq!(early(5), 5);
    assert!(parse("x").is_err());
    assert_eq!(parse("7"), Ok(7));
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(panicking_tick);
    std::panic::set_hook(hook);
    assert!(r.is_err());
    assert_eq!(count("early"), 2);
    assert_eq!(count("parse"), 2);
    assert_eq!(count("panics"), 1, "the span is closed during unwind");
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1, "a tick that panicked still ends");
    // The tick after a panic starts clean: its stage is a root child of the new tick.
    panicking_tick_ok();
    let t = mm_trace::recent_traces().pop().expect("sampled tick kept");
    assert_eq!(t.spans.len(), 1);
    assert_eq!(t.spans[0].name, "quote");
    assert_eq!(t.spans[0].parent, None);
}

#[stage]
fn quote() {}

#[traced_tick]
fn panicking_tick_ok() {
    quote();
}

#[derive(Debug)]
struct ExErr;

#[exchange_req(verb = "POST", api = "order")]
fn place(fail: bool) -> Result<u32, ExErr> {
    if fail { Err(ExErr) } else { Ok(1) }
}

#[exchange_req(verb = "DELETE", api = "order")]
async fn cancel() -> Result<(), ExErr> {
    tokio::time::sleep(Duration::from_millis(3)).await;
    Ok(())
}

#[test]
fn exchange_requests_are_recorded_by_verb_and_api() {
    let _g = setup();
    for i in 0..4 {
        let _ = place(i % 2 == 0);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(cancel()).unwrap();
    let s = mm_trace::summary();
    assert_eq!(s.exchange("POST", "order").expect("POST order").stats.count, 4);
    let del = s.exchange("DELETE", "order").expect("DELETE order");
    assert_eq!(del.stats.count, 1);
    assert!(del.stats.max_ms >= 3.0, "async exchange spans the await: {} ms", del.stats.max_ms);
}

struct Bot {
    symbols: usize,
}

impl Bot {
    #[traced_tick]
    fn tick(&mut self) -> Result<(), ExErr> {
        self.fetch_md();
        let spread = in_stage!("spread", {
            stage_guard!("spread_inner");
            self.symbols * 2
        });
        self.emit(spread)?;
        Ok(())
    }

    #[stage("fetch_md")]
    fn fetch_md(&self) {
        let _ = place(false);
    }

    #[stage]
    fn emit(&self, _spread: usize) -> Result<(), ExErr> {
        Ok(())
    }

    #[traced_tick]
    async fn tick_async(&self) -> Result<usize, ExErr> {
        let n = self.fetch_async().await?;
        Ok(n)
    }

    #[stage("fetch_async")]
    async fn fetch_async(&self) -> Result<usize, ExErr> {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            tokio::task::yield_now().await;
        }
        Ok(self.symbols)
    }
}

#[test]
fn a_sampled_tick_keeps_the_span_tree() {
    let _g = setup();
    let mut bot = Bot { symbols: 4 };
    bot.tick().unwrap();
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 1);
    assert_eq!(s.stage("tick_total").unwrap().count, 1);
    let t = mm_trace::recent_traces().pop().expect("sampled tick kept");
    let find = |name: &str| t.spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} in {t:?}"));
    let fetch = find("fetch_md");
    let place = find("POST order");
    let spread = find("spread");
    let inner = find("spread_inner");
    let emit = find("emit");
    assert_eq!(fetch.parent, None);
    assert_eq!(place.parent, Some(fetch.id));
    assert_eq!(inner.parent, Some(spread.id));
    assert_eq!(emit.parent, None);
    assert!(fetch.end_ns <= spread.start_ns && spread.end_ns <= emit.start_ns);
}

#[test]
fn async_tick_and_stage_across_awaits_on_a_multi_threaded_runtime() {
    let _g = setup();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let bot = std::sync::Arc::new(Bot { symbols: 8 });
    rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..16 {
            let bot = bot.clone();
            handles.push(tokio::spawn(async move { bot.tick_async().await }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap().unwrap(), 8);
        }
    });
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 16);
    let st = s.stage("fetch_async").unwrap();
    assert_eq!(st.count, 16);
    assert!(st.p50_ms >= 6.0, "three 2 ms sleeps across awaits: p50 {} ms", st.p50_ms);
    assert!(s.stage("tick_total").unwrap().p50_ms >= st.p50_ms * 0.99);
    mm_trace::flush();
    for t in mm_trace::recent_traces() {
        assert_eq!(t.spans.len(), 1, "each tick holds exactly its own stage: {t:?}");
        assert_eq!(t.spans[0].name, "fetch_async");
        let sp = &t.spans[0];
        // Span times are relative to the tick's start.
        assert!(sp.end_ns <= t.duration_ns, "span ends at {} ns, tick lasted {} ns", sp.end_ns, t.duration_ns);
    }
}

#[test]
fn runtime_off_records_nothing_and_the_code_still_runs() {
    let _g = setup();
    mm_trace::set_enabled(false);
    let mut bot = Bot { symbols: 1 };
    bot.tick().unwrap();
    named_after_the_fn();
    mm_trace::set_enabled(true);
    let s = mm_trace::summary();
    assert_eq!(s.ticks, 0);
    assert_eq!(count("named_after_the_fn"), 0);
}

//! A simulated market-making bot, instrumented with mm-trace.
//!
//! Each tick fetches the order book of every symbol, computes a spread, checks risk guards and
//! emits an order per symbol. Exchange latencies are drawn from seeded log-normal distributions
//! chosen so that, at the default 8 symbols, tick_total p95 is about 412 ms in sequential mode
//! and about 187 ms with async batching (the seed's baseline, a 2.2x ratio), against a 200 ms
//! deadline; batched requests are slower each but tightly spread, so async batching misses
//! well under 2% of deadlines. Latencies are slept for `time_scale` times their value, so a run
//! is short while every reported figure is in unscaled milliseconds.
//!
//! Each symbol draws from its own seeded generator, so the simulated draws of a run are fixed
//! by the seed in both modes (async tasks interleave in any order without changing them):
//! only the machine's timing differs between two runs with one seed. Two runs compared as
//! independent samples need distinct seeds.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use mm_trace::{exchange_req, stage, traced_tick};

/// How the bot fetches and emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One symbol after another.
    Sequential,
    /// All symbols' requests at once on a multi-threaded tokio runtime.
    AsyncBatching,
}

impl Mode {
    /// `sequential` or `async`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::AsyncBatching => "async",
        }
    }
}

/// A seeded xorshift generator: same seed, same latencies, no dependency.
#[derive(Debug)]
pub struct Rng(AtomicU64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(AtomicU64::new(seed.max(1)))
    }

    /// Uniform in `[0, 1)`. Lock-free, so tasks on several threads can share one generator.
    pub fn uniform(&self) -> f64 {
        let mut x = self.0.load(Relaxed);
        loop {
            let mut y = x;
            y ^= y << 13;
            y ^= y >> 7;
            y ^= y << 17;
            match self.0.compare_exchange_weak(x, y, Relaxed, Relaxed) {
                Ok(_) => return (y >> 11) as f64 / (1u64 << 53) as f64,
                Err(now) => x = now,
            }
        }
    }

    /// Log-normal with the given mean (ms) and shape `sigma`.
    pub fn lognormal(&self, mean_ms: f64, sigma: f64) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let mu = mean_ms.ln() - sigma * sigma / 2.0;
        (mu + sigma * z).exp()
    }
}

/// The OS wakes a sleeper late by tens of microseconds; at a time scale of 0.1 that would add
/// ten times as much simulated latency. Learn the usual oversleep and ask for that much less.
static OVERSLEEP_NS: AtomicU64 = AtomicU64::new(50_000);

fn precise_sleep(want: Duration) {
    let want_ns = u64::try_from(want.as_nanos()).unwrap_or(u64::MAX);
    let guess = OVERSLEEP_NS.load(Relaxed);
    let started = std::time::Instant::now();
    std::thread::sleep(Duration::from_nanos(want_ns.saturating_sub(guess)));
    let slept = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    if want_ns > guess {
        // Moving average of the oversleep (weight 1/8), bounded to stay sane under load spikes.
        let over = slept.saturating_sub(want_ns - guess).min(2_000_000);
        let next = (guess * 7 + over) / 8;
        OVERSLEEP_NS.store(next, Relaxed);
    }
}

/// The simulated exchange and market.
#[derive(Debug)]
pub struct Bot {
    /// Symbols traded.
    pub symbols: Vec<String>,
    /// Real sleep per simulated millisecond.
    pub time_scale: f64,
    /// Multiplies every book fetch's latency (1.3: fetch_md 30% slower), a deliberate regression.
    pub fetch_factor: f64,
    /// Multiplies every exchange latency (a deliberately regressed canary).
    pub latency_factor: f64,
    rngs: Vec<Rng>,
    mode: Mode,
}

/// What can go wrong on a symbol.
#[derive(Debug)]
pub struct BotError(pub String);

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BotError {}

/// An order book top.
#[derive(Debug, Clone, Copy)]
pub struct Book {
    /// Best bid.
    pub bid: f64,
    /// Best ask.
    pub ask: f64,
}

impl Bot {
    /// A bot trading `symbols` symbols named `SYM0`, `SYM1`, ...
    pub fn new(symbols: usize, time_scale: f64, seed: u64, mode: Mode) -> Self {
        Bot {
            symbols: (0..symbols).map(|i| format!("SYM{i}")).collect(),
            time_scale,
            fetch_factor: 1.0,
            latency_factor: 1.0,
            rngs: (0..symbols as u64).map(|i| Rng::new(splitmix(seed ^ splitmix(i + 1)))).collect(),
            mode,
        }
    }

    /// The generator of `sym` (`SYMi`): one stream per symbol.
    fn rng(&self, sym: &str) -> &Rng {
        let i = sym.strip_prefix("SYM").and_then(|i| i.parse::<usize>().ok()).unwrap_or(0);
        &self.rngs[i.min(self.rngs.len() - 1)]
    }

    fn latency(&self, sym: &str, sequential: (f64, f64), batched: (f64, f64)) -> f64 {
        let (mean, sigma) = if self.mode == Mode::Sequential { sequential } else { batched };
        self.rng(sym).lognormal(mean, sigma) * self.latency_factor
    }

    fn sleep_ms(&self, ms: f64) {
        precise_sleep(Duration::from_secs_f64(ms * self.time_scale / 1000.0));
    }

    /// One sequential tick: every symbol in turn.
    #[traced_tick]
    pub fn tick(&self) -> Result<(), BotError> {
        mm_trace::set_parallel_symbols(1);
        mm_trace::annotate("mode", "sequential");
        mm_trace::annotate("symbols", self.symbols.len());
        let mut failed = 0;
        for sym in &self.symbols {
            if self.trade_symbol(sym).is_err() {
                failed += 1;
            }
        }
        if failed > 0 {
            mm_trace::partial_fail();
        }
        if failed == self.symbols.len() { Err(BotError("every symbol failed".into())) } else { Ok(()) }
    }

    fn trade_symbol(&self, sym: &str) -> Result<(), BotError> {
        let book = self.fetch_md(sym)?;
        let quote = self.spread(&book);
        self.guards(sym, quote)?;
        self.emit(sym, quote)?;
        Ok(())
    }

    #[stage("fetch_md")]
    fn fetch_md(&self, sym: &str) -> Result<Book, BotError> {
        self.get_book(sym)
    }

    #[exchange_req(verb = "GET", api = "book")]
    fn get_book(&self, sym: &str) -> Result<Book, BotError> {
        self.sleep_ms(self.latency(sym, (28.0, 0.35), (88.0, 0.08)) * self.fetch_factor);
        let rng = self.rng(sym);
        if rng.uniform() < 0.001 {
            return Err(BotError(format!("{sym}: book request timed out")));
        }
        let mid = 100.0 + 10.0 * rng.uniform();
        Ok(Book { bid: mid - 0.05, ask: mid + 0.05 })
    }

    #[stage]
    fn spread(&self, book: &Book) -> f64 {
        // A little real CPU work (a volatility estimate over a short synthetic window).
        let mut acc = 0.0f64;
        for i in 0..2_000u32 {
            acc += (f64::from(i) * 0.001 + book.bid).sin().abs();
        }
        let spread = (book.ask - book.bid) * (1.0 + acc / 1e5);
        self.sleep_ms(0.3);
        spread
    }

    #[stage]
    fn guards(&self, sym: &str, quote: f64) -> Result<(), BotError> {
        if self.rng(sym).uniform() < 0.1 {
            self.get_positions(sym)?;
        }
        let r = self.rng(sym).uniform();
        if r < 0.01 {
            mm_trace::guard_trip("vol_soft");
        } else if r < 0.013 {
            mm_trace::guard_trip("inventory_limit");
        } else if r < 0.0135 {
            mm_trace::guard_trip("stale_book");
            return Err(BotError(format!("{sym}: stale book, quote {quote:.4} withheld")));
        }
        Ok(())
    }

    #[exchange_req(verb = "GET", api = "positions")]
    fn get_positions(&self, sym: &str) -> Result<u64, BotError> {
        // Batching keeps the positions of every symbol fresh: a check is a cheap local read.
        self.sleep_ms(self.latency(sym, (15.0, 0.3), (5.0, 0.3)));
        Ok(0)
    }

    #[stage]
    fn emit(&self, sym: &str, quote: f64) -> Result<(), BotError> {
        self.place_order(sym, quote)
    }

    /// Orders are routed by symbol to one of two venues: the order latency is recorded per venue
    /// (a run-time label), and rejected orders count as `Err`s of `POST order`.
    #[exchange_req(verb = "POST", api = "order", venue = venue_of(sym))]
    fn place_order(&self, sym: &str, _quote: f64) -> Result<(), BotError> {
        self.sleep_ms(self.latency(sym, (12.6, 0.4), (52.0, 0.08)));
        if self.rng(sym).uniform() < 0.0015 {
            return Err(BotError(format!("{sym}: order rejected")));
        }
        Ok(())
    }
}

/// SplitMix64's finalizer: independent-looking seeds from consecutive numbers.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The venue a symbol's orders go to.
fn venue_of(sym: &str) -> &'static str {
    if sym.bytes().map(u32::from).sum::<u32>() % 2 == 0 { "binance" } else { "kraken" }
}

/// The async-batching bot: one task per symbol, carried into the tick's trace.
#[derive(Debug)]
pub struct AsyncBot {
    inner: std::sync::Arc<Bot>,
}

impl AsyncBot {
    /// Wraps a bot created with [`Mode::AsyncBatching`].
    pub fn new(bot: Bot) -> Self {
        AsyncBot { inner: std::sync::Arc::new(bot) }
    }

    /// One tick: fetch every book at once, then quote, then emit every order at once.
    #[traced_tick]
    pub async fn tick(&self) -> Result<(), BotError> {
        let n = self.inner.symbols.len();
        mm_trace::set_parallel_symbols(n);
        mm_trace::annotate("mode", "async");
        mm_trace::annotate("symbols", n);
        let books = self.fetch_all().await;
        let mut failed = books.iter().filter(|b| b.is_err()).count();
        let mut quotes = Vec::new();
        for (sym, book) in self.inner.symbols.iter().zip(&books) {
            if let Ok(book) = book {
                let q = self.inner.spread(book);
                if self.inner.guards(sym, q).is_ok() {
                    quotes.push((sym.clone(), q));
                } else {
                    failed += 1;
                }
            }
        }
        failed += self.emit_all(quotes).await;
        if failed > 0 {
            mm_trace::partial_fail();
        }
        if failed == n { Err(BotError("every symbol failed".into())) } else { Ok(()) }
    }

    #[stage("fetch_batch")]
    async fn fetch_all(&self) -> Vec<Result<Book, BotError>> {
        let tasks: Vec<_> = self
            .inner
            .symbols
            .iter()
            .map(|sym| {
                let bot = self.inner.clone();
                let sym = sym.clone();
                mm_trace::spawn(async move { fetch_md_async(bot, sym).await })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| Err(BotError(format!("fetch task failed: {e}")))));
        }
        out
    }

    #[stage("emit")]
    async fn emit_all(&self, quotes: Vec<(String, f64)>) -> usize {
        let tasks: Vec<_> = quotes
            .into_iter()
            .map(|(sym, q)| {
                let bot = self.inner.clone();
                mm_trace::spawn_blocking(move || bot.place_order(&sym, q))
            })
            .collect();
        let mut failed = 0;
        for t in tasks {
            if !matches!(t.await, Ok(Ok(()))) {
                failed += 1;
            }
        }
        failed
    }
}

#[stage("fetch_md")]
async fn fetch_md_async(bot: std::sync::Arc<Bot>, sym: String) -> Result<Book, BotError> {
    // The simulated HTTP client blocks; run it where blocking is allowed, as a real bot would
    // with a blocking client (tokio's timer has 1 ms granularity, too coarse for scaled time).
    mm_trace::spawn_blocking(move || bot.get_book(&sym))
        .await
        .unwrap_or_else(|e| Err(BotError(format!("book task failed: {e}"))))
}

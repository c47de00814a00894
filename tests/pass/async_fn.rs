#![deny(warnings)]
use mm_trace::stage;

#[derive(Debug)]
struct BotError;

impl From<std::num::ParseIntError> for BotError {
    fn from(_: std::num::ParseIntError) -> Self {
        BotError
    }
}

#[stage("fetch_md")]
async fn fetch(symbol: &str) -> Result<u32, BotError> {
    if symbol.is_empty() {
        return Err(BotError);
    }
    let n: u32 = "7".parse()?;
    Ok(n)
}

#[stage]
async fn unit() {}

#[stage]
async fn returns_impl(n: u8) -> impl std::fmt::Debug {
    n
}

struct Bot {
    mid: f64,
}

impl Bot {
    #[stage]
    async fn by_ref(&self) -> f64 {
        self.mid
    }

    #[stage]
    async fn by_mut(&mut self, x: f64) {
        self.mid += x;
    }

    #[stage]
    async fn generic<'a, T: AsRef<str> + Send>(&'a self, t: T) -> usize
    where
        T: 'a,
    {
        t.as_ref().len()
    }
}

trait Exchange {
    async fn ping(&self) -> bool;
}

impl Exchange for Bot {
    #[stage]
    async fn ping(&self) -> bool {
        self.mid > 0.0
    }
}

/// # Safety
/// Nothing to uphold; shows `async unsafe fn`.
#[stage]
async unsafe fn dangerous() -> u8 {
    1
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(f)
}

fn main() {
    assert_eq!(block_on(fetch("BTC")).unwrap(), 7);
    assert!(block_on(fetch("")).is_err());
    block_on(unit());
    let _ = block_on(returns_impl(3));
    let mut bot = Bot { mid: 1.0 };
    block_on(bot.by_mut(1.0));
    assert_eq!(block_on(bot.by_ref()), 2.0);
    assert_eq!(block_on(bot.generic("abc")), 3);
    assert!(block_on(bot.ping()));
    // SAFETY: `dangerous` has no preconditions.
    assert_eq!(block_on(unsafe { dangerous() }), 1);
}

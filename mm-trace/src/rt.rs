//! Runtime adapters (feature `tokio`).

use std::future::Future;

use crate::imp::TickContext;

/// `tokio::spawn` for work that belongs to the current tick: the task carries the tick's
/// context, so its stages join the tick's trace (under the span open here) and its histograms.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() {
/// #[mm_trace::stage]
/// async fn fetch_md(symbol: &'static str) -> usize { symbol.len() }
///
/// #[mm_trace::traced_tick]
/// async fn tick() -> usize {
///     let tasks: Vec<_> = ["BTC", "ETH", "SOL"].into_iter().map(|s| mm_trace::spawn(fetch_md(s))).collect();
///     let mut n = 0;
///     for t in tasks { n += t.await.unwrap(); }
///     n
/// }
/// assert_eq!(tick().await, 9);
/// # }
/// ```
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(TickContext::current().wrap(fut))
}

/// `tokio::task::spawn_blocking` carrying the current tick's context.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let ctx = TickContext::current();
    tokio::task::spawn_blocking(move || ctx.in_scope(f))
}

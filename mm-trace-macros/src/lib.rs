//! Attribute macros of [mm-trace](https://docs.rs/mm-trace): `#[stage]`, `#[traced_tick]` and
//! `#[exchange_req]`. Use them through `mm_trace` (`use mm_trace::{stage, traced_tick};`); the
//! expansions name `::mm_trace::__private`, which only that crate provides.
//!
//! With mm-trace's `enabled` feature off (`default-features = false`), every attribute still
//! checks its arguments and then returns the item token for token.

mod args;
mod expand;
mod item;

use proc_macro::TokenStream;

use args::Kind;

const ENABLED: bool = cfg!(feature = "enabled");

/// Times a function as a stage: its duration goes into the stage's histogram
/// (`mm_stage_duration_ms{stage="..."}`) and, in a sampled tick, into the tick's trace.
///
/// `#[stage]` uses the function's name; `#[stage("fetch_md")]` names it. Works on free
/// functions, methods with any receiver, trait impl and provided methods, generic functions,
/// `unsafe fn`, `async fn` (timed from first poll to completion, across `.await` and threads)
/// and functions returning `impl Future` (the returned future is timed). Early `return`, `?`
/// and panics close the span.
///
/// ```
/// use mm_trace::stage;
///
/// #[stage("fetch_md")]
/// fn fetch_market_data(symbols: &[&str]) -> Result<usize, String> {
///     if symbols.is_empty() {
///         return Err("no symbols".into());
///     }
///     Ok(symbols.len())
/// }
///
/// #[stage]
/// async fn quote(n: usize) -> usize { n * 2 }
///
/// assert_eq!(fetch_market_data(&["BTC-USD"]), Ok(1));
/// ```
///
/// A sync function expands to (roughly):
///
/// ```text
/// fn fetch_market_data(symbols: &[&str]) -> Result<usize, String> {
///     let __mm_guard = ::mm_trace::__private::StageGuard::enter_stage({
///         static __MM_SITE: Site = Site::stage("fetch_md");
///         &__MM_SITE
///     });
///     /* body as written */
/// }
/// ```
/// and an `async fn` to `Instrumented::new(site, async move { body }).await`.
#[proc_macro_attribute]
pub fn stage(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Stage, args.into(), item.into(), ENABLED).into()
}

/// Marks one step of the loop as a tick: the sampling decision (deterministic by tick id),
/// `tick_total` and the deadline check on every tick, and the span tree of sampled (and slow)
/// ticks. Stages called inside become the tick's children. Takes no arguments.
///
/// ```
/// use mm_trace::{stage, traced_tick};
///
/// struct Bot { quotes: u32 }
/// impl Bot {
///     #[traced_tick]
///     fn tick(&mut self) -> Result<(), String> {
///         self.emit();
///         Ok(())
///     }
///     #[stage]
///     fn emit(&mut self) { self.quotes += 1; }
/// }
///
/// let mut bot = Bot { quotes: 0 };
/// bot.tick().unwrap();
/// assert_eq!(bot.quotes, 1);
/// ```
#[proc_macro_attribute]
pub fn traced_tick(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Tick, args.into(), item.into(), ENABLED).into()
}

/// Times an exchange request, recorded by verb and api into `mm_exchange_req_ms{verb, api}`
/// (always, sampled tick or not) and into the tick's trace. Both arguments are required.
///
/// ```
/// use mm_trace::exchange_req;
///
/// #[exchange_req(verb = "POST", api = "order")]
/// async fn place(price: f64) -> Result<u64, String> { Ok(price as u64) }
/// ```
#[proc_macro_attribute]
pub fn exchange_req(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Exchange, args.into(), item.into(), ENABLED).into()
}

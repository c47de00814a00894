//! A stand-in for a library a bot depends on (an exchange client): instrumented with `tracing`
//! alone, it knows nothing of mm-trace. Its spans have the target `mm_trace_tracing_lib`.

use std::time::Duration;

use tracing::{info_span, instrument, warn};

/// Connects to the venue (a sync span, as a blocking client's).
#[instrument]
pub fn connect(venue: &str) -> usize {
    std::thread::sleep(Duration::from_micros(50));
    venue.len()
}

/// Fetches a book: an async span around an inner sync span, a retry warning on the way.
#[instrument(skip_all)]
pub async fn fetch_book(symbol: &str) -> Result<usize, String> {
    {
        let _decode = info_span!("decode_book").entered();
        std::hint::black_box(symbol.len());
    }
    tokio_free_yield().await;
    if symbol.is_empty() {
        return Err("empty symbol".into());
    }
    warn!(symbol, attempt = 1, "book fetch retried");
    Ok(symbol.len())
}

/// Places an order; returns `Err` for a zero quantity (an ERROR event marks the span failed).
#[instrument(err)]
pub fn place_order(qty: u32) -> Result<u32, String> {
    if qty == 0 { Err("zero quantity".into()) } else { Ok(qty) }
}

/// Yields once to the executor without depending on one (so the library stays runtime-free).
async fn tokio_free_yield() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

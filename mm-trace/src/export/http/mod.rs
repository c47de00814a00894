//! The optional endpoint (feature `http`): `/metrics` (0.0.4 or OpenMetrics, by `Accept`),
//! `/traces` and `/traces/<trace_id>`.
//!
//! One thread (`mm-trace-metrics`) runs an event loop over non-blocking sockets (`mio`: epoll on
//! Linux, kqueue on macOS): a connection costs a registration and at most `MAX_HEAD` bytes of
//! request head until its request is complete, so idle or trickling clients hold no thread and
//! cannot keep a scrape waiting; each has deadlines (`read_timeout` between bytes,
//! `request_timeout` for the whole head, `write_timeout` for the answer). Past `max_connections`
//! a new connection takes the place of the oldest one that has not sent a whole request yet
//! (a scraper sends its request at once, a client holding a slot idle does not). The answer is
//! rendered on the loop's thread, so the endpoint reads the collector from one thread at most.
//!
//! - `request.rs`: where a head ends, the route, `Accept` negotiation.
//! - `response.rs`: the answer to each route, as bytes.
//! - `event_loop.rs`: the loop, connection states and deadlines, the connection cap.

mod event_loop;
mod request;
mod response;

use std::fmt;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::Error;

/// Limits of the endpoint.
///
/// ```
/// # fn main() -> Result<(), mm_trace::Error> {
/// use std::time::Duration;
/// let opts = mm_trace::MetricsServerOptions { max_connections: 4, ..Default::default() };
/// assert_eq!(opts.read_timeout, Duration::from_secs(2));
/// let server = mm_trace::serve_metrics_with("127.0.0.1:0", opts)?;
/// drop(server);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsServerOptions {
    /// Connections open at once (default 256). One more takes the place of the oldest
    /// connection that has not sent a whole request yet (that one is answered `503` and
    /// closed); when every connection is being answered, the new one gets `503 Service
    /// Unavailable` with `Retry-After: 1`.
    pub max_connections: usize,
    /// Longest wait for the next bytes of a request; a slow client gets `408` and is closed.
    pub read_timeout: Duration,
    /// Longest time a whole request head may take to arrive (a client trickling bytes gets `408`).
    pub request_timeout: Duration,
    /// Longest time the client may take to receive the whole response.
    pub write_timeout: Duration,
}

impl Default for MetricsServerOptions {
    fn default() -> Self {
        Self {
            max_connections: 256,
            read_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// A running endpoint. Dropping it stops the server: its thread is woken and joined, so the
/// port is free again when `drop` returns.
///
/// ```
/// # fn main() -> Result<(), mm_trace::Error> {
/// let server = mm_trace::serve_metrics("127.0.0.1:0")?; // port 0: any free port
/// let url = format!("http://{}/metrics", server.local_addr());
/// assert!(url.starts_with("http://127.0.0.1:"));
/// drop(server); // stopped
/// # Ok(()) }
/// ```
pub struct MetricsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    waker: Arc<mio::Waker>,
    thread: Option<JoinHandle<()>>,
}

/// What the server's thread and its handle share.
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    /// Connections open now (for `Debug`).
    pub(super) active: AtomicUsize,
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .field("active_connections", &self.shared.active.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// The address the server listens on (with the real port when port 0 was asked for).
    ///
    /// ```
    /// # fn main() -> Result<(), mm_trace::Error> {
    /// let server = mm_trace::serve_metrics("127.0.0.1:0")?;
    /// assert_ne!(server.local_addr().port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        // Release: the loop that wakes up sees the flag.
        self.shared.stop.store(true, Release);
        let woke = self.waker.wake().is_ok();
        if let Some(t) = self.thread.take()
            && woke
        {
            let _ = t.join();
        }
    }
}

/// Which exposition `/metrics` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsFormat {
    /// Text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text, with exemplars.
    OpenMetrics,
}

/// How `/traces/<trace_id>` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceFormat {
    /// The golden trace JSON.
    Golden,
    /// Chrome trace events (`?format=chrome`).
    Chrome,
    /// The tick as an SVG picture (`.svg`).
    Svg,
}

/// What the endpoint serves, handed to it by `api/exporters.rs` (so this module reaches neither
/// the collector nor lib.rs). Each runs on the endpoint's thread, once per request, and must not
/// wait for recording threads or the trace worker.
#[derive(Clone, Copy)]
pub(crate) struct Endpoint {
    /// The exposition.
    pub(crate) metrics: fn(MetricsFormat) -> String,
    /// The JSON list of kept ticks in memory.
    pub(crate) traces: fn() -> String,
    /// One kept tick by trace id (and tick id), `None` once it has left memory.
    pub(crate) trace: fn(&str, Option<u64>, TraceFormat) -> Option<String>,
}

/// Binds `addr` and serves `endpoint` from a new thread.
pub(crate) fn serve<A: ToSocketAddrs + fmt::Display>(
    addr: A,
    opts: MetricsServerOptions,
    endpoint: Endpoint,
) -> Result<MetricsServer, Error> {
    let bind_err = |source| Error::Bind { addr: addr.to_string(), source };
    if opts.max_connections == 0 {
        return Err(Error::InvalidArgument("serve_metrics: max_connections must be at least 1".into()));
    }
    // A zero deadline would close every connection before it could say anything.
    for (name, d) in [
        ("read_timeout", opts.read_timeout),
        ("request_timeout", opts.request_timeout),
        ("write_timeout", opts.write_timeout),
    ] {
        if d.is_zero() {
            return Err(Error::InvalidArgument(format!("serve_metrics: {name} must be greater than zero")));
        }
    }
    let listener = TcpListener::bind(&addr).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let shared = Arc::new(Shared { stop: AtomicBool::new(false), active: AtomicUsize::new(0) });
    let (server, waker) = event_loop::Server::new(listener, opts, endpoint, shared.clone()).map_err(bind_err)?;
    let thread =
        std::thread::Builder::new().name("mm-trace-metrics".into()).spawn(move || server.run()).map_err(bind_err)?;
    Ok(MetricsServer { addr: local, shared, waker, thread: Some(thread) })
}

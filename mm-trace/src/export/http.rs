//! The optional `/metrics` endpoint: std networking only, one accept thread, one short-lived
//! thread per connection (at most `max_connections` at once).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Error;

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Request line and headers must fit in this many bytes.
const MAX_HEAD: usize = 8 * 1024;

/// Limits of the `/metrics` endpoint.
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
    /// Connections served at once; one more is answered `503 Service Unavailable` and closed.
    pub max_connections: usize,
    /// Longest wait for the next bytes of a request; a slow client gets `408` and is closed.
    pub read_timeout: Duration,
    /// Longest time a whole request may take to arrive (a client trickling bytes gets `408`).
    pub request_timeout: Duration,
    /// Longest wait for the client to take the response.
    pub write_timeout: Duration,
}

impl Default for MetricsServerOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            read_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// A running `/metrics` endpoint. Dropping it stops the server: the accept loop is woken and
/// its thread joined, so the port is free again when `drop` returns.
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
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    active: AtomicUsize,
    opts: MetricsServerOptions,
    render: RenderMetrics,
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
        // Release: the accept thread that sees the wake-up connection sees the flag.
        self.shared.stop.store(true, Release);
        let wake = match self.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, a.port())),
            SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, a.port())),
            a => a,
        };
        let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(2)).is_ok();
        if let Some(t) = self.thread.take() {
            // Without the wake-up the accept loop would block until the next connection: let
            // the thread go rather than hang the caller (it exits on that connection).
            if woke {
                let _ = t.join();
            }
        }
    }
}

/// What the endpoint serves at `/metrics`: rendered per scrape, on a connection thread.
pub(crate) type RenderMetrics = fn() -> String;

/// Binds `addr` and serves `/metrics` (the text `render` gives) from a new thread.
pub(crate) fn serve<A: ToSocketAddrs + fmt::Display>(
    addr: A,
    opts: MetricsServerOptions,
    render: RenderMetrics,
) -> Result<MetricsServer, Error> {
    let bind_err = |source| Error::Bind { addr: addr.to_string(), source };
    if opts.max_connections == 0 {
        return Err(Error::InvalidArgument("serve_metrics: max_connections must be at least 1".into()));
    }
    // A zero socket timeout is refused by std and the socket would stay blocking: one silent
    // client per slot would hang the endpoint for good.
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
    let shared = Arc::new(Shared { stop: AtomicBool::new(false), active: AtomicUsize::new(0), opts, render });
    let for_thread = shared.clone();
    let thread = std::thread::Builder::new()
        .name("mm-trace-metrics".into())
        .spawn(move || accept_loop(listener, for_thread))
        .map_err(bind_err)?;
    Ok(MetricsServer { addr: local, shared, thread: Some(thread) })
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Acquire) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors or an aborted handshake: back off briefly, keep serving.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Only this thread increments, so the check and the increment cannot race past the cap.
        if shared.active.load(Acquire) >= shared.opts.max_connections {
            reject_busy(stream);
            continue;
        }
        shared.active.fetch_add(1, AcqRel);
        let conn_shared = shared.clone();
        let spawned = std::thread::Builder::new().name("mm-trace-metrics-conn".into()).spawn(move || {
            let _slot = Slot(&conn_shared.active);
            handle(stream, &conn_shared.opts, conn_shared.render);
        });
        if spawned.is_err() {
            shared.active.fetch_sub(1, AcqRel);
        }
    }
}

/// Gives a connection slot back when the connection's thread ends (also on panic).
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AcqRel);
    }
}

/// Over the cap: answer 503 from the accept thread and close. The request is read first (briefly)
/// so that closing does not reset the connection before the client has read the answer.
fn reject_busy(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 2048];
    let _ = stream.read(&mut buf);
    let _ = write_response(
        &mut stream,
        "503 Service Unavailable",
        &[("Retry-After", "1")],
        "text/plain; charset=utf-8",
        b"too many connections\n",
        false,
    );
    let _ = stream.shutdown(Shutdown::Write);
}

enum Head {
    Complete(Vec<u8>),
    Closed,
    TooLarge,
    TimedOut,
}

fn read_head(stream: &mut TcpStream, opts: &MetricsServerOptions) -> Head {
    let deadline = Instant::now() + opts.request_timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&buf) {
            buf.truncate(end);
            return Head::Complete(buf);
        }
        if buf.len() > MAX_HEAD {
            return Head::TooLarge;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Head::TimedOut;
        }
        let _ = stream.set_read_timeout(Some(left.min(opts.read_timeout)));
        match stream.read(&mut chunk) {
            Ok(0) => {
                return if buf.is_empty() { Head::Closed } else { Head::Complete(buf) };
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Head::TimedOut;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Head::Closed,
        }
    }
}

/// End of the header block (`\r\n\r\n`, or a bare `\n\n` from lenient clients).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a request asks for, or why it is refused.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest(&'static str),
    VersionNotSupported,
}

fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::BadRequest("request is not UTF-8");
    };
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Route::BadRequest("malformed request line");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Route::BadRequest("malformed method");
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control()) {
        return Route::BadRequest("malformed request target");
    }
    match version {
        "HTTP/1.0" | "HTTP/1.1" => {}
        v if v.starts_with("HTTP/") && v.len() == 8 && v.as_bytes()[6] == b'.' => {
            return Route::VersionNotSupported;
        }
        _ => return Route::BadRequest("malformed HTTP version"),
    }
    for line in lines.filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((name, _)) if !name.is_empty() && !name.contains([' ', '\t']) => {}
            _ => return Route::BadRequest("malformed header line"),
        }
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != "/metrics" {
        return Route::NotFound;
    }
    match method {
        "GET" => Route::Metrics { head: false },
        "HEAD" => Route::Metrics { head: true },
        _ => Route::MethodNotAllowed,
    }
}

fn handle(mut stream: TcpStream, opts: &MetricsServerOptions, render: RenderMetrics) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(opts.write_timeout));
    let plain = "text/plain; charset=utf-8";
    let head = match read_head(&mut stream, opts) {
        Head::Complete(h) => h,
        Head::Closed => return,
        Head::TooLarge => {
            let _ = write_response(
                &mut stream,
                "431 Request Header Fields Too Large",
                &[],
                plain,
                b"request head too large\n",
                false,
            );
            return finish(stream);
        }
        Head::TimedOut => {
            let _ = write_response(&mut stream, "408 Request Timeout", &[], plain, b"request timed out\n", false);
            return finish(stream);
        }
    };
    let _ = match route(&head) {
        Route::Metrics { head } => {
            let body = render();
            write_response(&mut stream, "200 OK", &[], CONTENT_TYPE, body.as_bytes(), head)
        }
        Route::NotFound => {
            write_response(&mut stream, "404 Not Found", &[], plain, b"not found: metrics are at /metrics\n", false)
        }
        Route::MethodNotAllowed => write_response(
            &mut stream,
            "405 Method Not Allowed",
            &[("Allow", "GET, HEAD")],
            plain,
            b"method not allowed: use GET\n",
            false,
        ),
        Route::BadRequest(why) => write_response(
            &mut stream,
            "400 Bad Request",
            &[],
            plain,
            format!("bad request: {why}\n").as_bytes(),
            false,
        ),
        Route::VersionNotSupported => write_response(
            &mut stream,
            "505 HTTP Version Not Supported",
            &[],
            plain,
            b"use HTTP/1.0 or HTTP/1.1\n",
            false,
        ),
    };
    finish(stream);
}

/// Closes our side, then gives the client a moment to close its side, so unread request bytes
/// (a body we ignored) do not turn the close into a reset that could lose the response.
fn finish(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn write_response(
    stream: &mut TcpStream,
    status: &str,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    stream.write_all(&bytes)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), Route::Metrics { head: false });
        assert_eq!(route(b"HEAD /metrics?x=1 HTTP/1.0"), Route::Metrics { head: true });
        assert_eq!(route(b"GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1"), Route::MethodNotAllowed);
        assert_eq!(route(b"GET /metrics HTTP/2.0"), Route::VersionNotSupported);
        assert!(matches!(route(b"GET /metrics"), Route::BadRequest(_)));
        assert!(matches!(route(b"get /metrics HTTP/1.1"), Route::BadRequest(_)));
        assert!(matches!(route(b"GET metrics HTTP/1.1"), Route::BadRequest(_)));
        assert!(matches!(route(b"GET /metrics HTTP/1.1\r\nno colon\r\n"), Route::BadRequest(_)));
        assert!(matches!(route(b"\x16\x03\x01\x02"), Route::BadRequest(_)));
    }

    #[test]
    fn head_end_finds_crlf_and_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}

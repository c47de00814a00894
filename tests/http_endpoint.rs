//! The `/metrics` endpoint (feature `http`) over real sockets: status codes, headers, slow and
//! stuck clients, the connection cap, pipelined requests, stopping on drop, bind errors, and
//! ticks never blocked. Hostile clients in numbers: tests/http_hostile.rs; content negotiation,
//! exemplars and /traces: tests/openmetrics.rs.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mm_trace::__private::{Site, StageGuard, TickGuard};
use mm_trace::{MetricsServerOptions, TraceConfig};
use support::{Exposition, http_get, http_raw};

static SERIAL: Mutex<()> = Mutex::new(());
static TICK: Site = Site::tick("tick");
static STAGE: Site = Site::stage("fetch_md");

fn setup() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
    mm_trace::reset();
    g
}

fn ticks(n: usize) {
    for _ in 0..n {
        let _t = TickGuard::begin(&TICK);
        let _s = StageGuard::enter(&STAGE);
    }
}

/// Reads whatever the server sends until it closes; `Err` if it neither answers nor closes.
fn read_until_closed(conn: &mut TcpStream, limit: Duration) -> std::io::Result<String> {
    conn.set_read_timeout(Some(limit))?;
    let mut out = Vec::new();
    conn.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn get_metrics_is_the_exposition_with_its_content_type() {
    let _g = setup();
    ticks(3);
    mm_trace::guard_trip("vol_soft");
    let server = mm_trace::serve_metrics("127.0.0.1:0").unwrap();
    assert!(server.local_addr().ip().is_loopback());
    let r = http_get(server.local_addr(), "/metrics").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let ct = r.header("Content-Type").unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert_eq!(r.header("Content-Length").unwrap().parse::<usize>().unwrap(), r.body.len());
    let exp = Exposition::parse(&r.body);
    assert_eq!(exp.value("mm_ticks_total", &[]), Some(3.0));
    assert_eq!(exp.value("mm_guard_trips_total", &[("reason", "vol_soft")]), Some(1.0));
    assert_eq!(exp.value("mm_stage_duration_ms_count", &[("stage", "fetch_md")]), Some(3.0));
    // A query string is ignored; HEAD has the headers only; HTTP/1.0 works.
    assert_eq!(http_get(server.local_addr(), "/metrics?x=1").unwrap().status, 200);
    let head = http_raw(server.local_addr(), b"HEAD /metrics HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert!(head.header("Content-Length").unwrap().parse::<usize>().unwrap() > 0);
    // Live: the next scrape sees new ticks.
    ticks(2);
    let r = http_get(server.local_addr(), "/metrics").unwrap();
    assert_eq!(Exposition::parse(&r.body).value("mm_ticks_total", &[]), Some(5.0));
}

#[test]
fn other_paths_methods_and_malformed_requests_are_refused() {
    let _g = setup();
    let server = mm_trace::serve_metrics("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    for path in ["/", "/metric", "/metrics/extra", "/favicon.ico"] {
        assert_eq!(http_get(addr, path).unwrap().status, 404, "{path}");
    }
    let r = http_raw(addr, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    for method in ["PUT", "DELETE", "OPTIONS"] {
        let r = http_raw(addr, format!("{method} /metrics HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
        assert_eq!((r.status, r.header("Allow")), (405, Some("GET, HEAD")), "{method}");
    }
    for bad in [
        &b"GET /metrics\r\n\r\n"[..],
        b"get /metrics HTTP/1.1\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET  /metrics  HTTP/1.1\r\n\r\n",
    ] {
        let r = http_raw(addr, bad).unwrap();
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(bad));
        assert_eq!(r.header("Connection"), Some("close"));
    }
    assert_eq!(http_raw(addr, b"GET /metrics HTTP/2.0\r\n\r\n").unwrap().status, 505);
    let huge = format!("GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(16 * 1024));
    assert_eq!(http_raw(addr, huge.as_bytes()).unwrap().status, 431);
}

#[test]
fn a_silent_client_is_closed_within_the_read_timeout() {
    let _g = setup();
    let opts = MetricsServerOptions { read_timeout: Duration::from_millis(300), ..Default::default() };
    let server = mm_trace::serve_metrics_with("127.0.0.1:0", opts).unwrap();
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(server.local_addr()).unwrap();
    let answer = read_until_closed(&mut silent, Duration::from_secs(5)).expect("server neither answered nor closed");
    let waited = t0.elapsed();
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500), "closed after {waited:?}");

    // A client trickling bytes slower than the request timeout is cut off as well.
    let opts = MetricsServerOptions {
        read_timeout: Duration::from_millis(400),
        request_timeout: Duration::from_millis(600),
        ..Default::default()
    };
    let server = mm_trace::serve_metrics_with("127.0.0.1:0", opts).unwrap();
    let mut trickle = TcpStream::connect(server.local_addr()).unwrap();
    let t0 = Instant::now();
    let mut answer = String::new();
    for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n".iter().cycle().take(200) {
        if trickle.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        trickle.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 256];
        if let Ok(n) = trickle.read(&mut buf) {
            answer.push_str(&String::from_utf8_lossy(&buf[..n]));
            break;
        }
        trickle.set_nonblocking(false).unwrap();
    }
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(t0.elapsed() < Duration::from_secs(3), "trickling client kept for {:?}", t0.elapsed());
}

#[test]
fn zero_timeouts_and_zero_connections_are_rejected() {
    let _g = setup();
    for (name, opts) in [
        ("max_connections", MetricsServerOptions { max_connections: 0, ..Default::default() }),
        ("read_timeout", MetricsServerOptions { read_timeout: Duration::ZERO, ..Default::default() }),
        ("request_timeout", MetricsServerOptions { request_timeout: Duration::ZERO, ..Default::default() }),
        ("write_timeout", MetricsServerOptions { write_timeout: Duration::ZERO, ..Default::default() }),
    ] {
        // A zero timeout would mean "block forever" to the socket: one silent client per slot
        // would then hang the endpoint for good.
        let err = mm_trace::serve_metrics_with("127.0.0.1:0", opts).unwrap_err();
        assert!(matches!(err, mm_trace::Error::InvalidArgument(_)), "{name}: {err:?}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

/// Past the cap a new connection takes the place of the oldest one that has not sent a whole
/// request (answered `503` with `Retry-After`), so clients holding connections idle cannot lock
/// a scraper out; the connection count never exceeds the cap.
#[test]
fn connections_past_the_cap_replace_the_oldest_idle_one() {
    let _g = setup();
    let opts = MetricsServerOptions { max_connections: 2, read_timeout: Duration::from_secs(5), ..Default::default() };
    let server = mm_trace::serve_metrics_with("127.0.0.1:0", opts).unwrap();
    let addr = server.local_addr();
    let wait_active = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !format!("{server:?}").contains(&format!("active_connections: {n}")) {
            assert!(Instant::now() < deadline, "never {n} connections: {server:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut oldest = TcpStream::connect(addr).unwrap();
    wait_active(1);
    let mut younger = TcpStream::connect(addr).unwrap();
    wait_active(2);
    let r = http_get(addr, "/metrics").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let evicted = read_until_closed(&mut oldest, Duration::from_secs(5)).expect("the oldest idle connection stays");
    let evicted = support::parse_response(evicted.as_bytes()).unwrap();
    assert_eq!((evicted.status, evicted.header("Retry-After")), (503, Some("1")));
    // The younger one is still open and still served.
    younger.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let answer = read_until_closed(&mut younger, Duration::from_secs(5)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(!format!("{server:?}").contains("active_connections: 3"));
}

/// Two requests in one write: the first is answered, the rest ignored, the connection closed
/// (one request per connection).
#[test]
fn pipelined_requests_get_one_answer_and_a_close() {
    let _g = setup();
    ticks(1);
    let server = mm_trace::serve_metrics("127.0.0.1:0").unwrap();
    let two = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /traces HTTP/1.1\r\nHost: x\r\n\r\n";
    let r = http_raw(server.local_addr(), two).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.header("Content-Length").unwrap().parse::<usize>().unwrap(), r.body.len());
    assert!(!r.body.contains("HTTP/1.1"), "a second response followed the first");
    assert_eq!(Exposition::parse(&r.body).value("mm_ticks_total", &[]), Some(1.0));
}

#[test]
fn dropping_the_server_stops_it_and_frees_the_port() {
    let _g = setup();
    let server = mm_trace::serve_metrics("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    assert_eq!(http_get(addr, "/metrics").unwrap().status, 200);
    let t0 = Instant::now();
    drop(server);
    assert!(t0.elapsed() < Duration::from_secs(2), "drop took {:?}", t0.elapsed());
    let err = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect_err("still listening after drop");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    // The same port can be served again.
    let again = mm_trace::serve_metrics(addr).unwrap();
    assert_eq!(again.local_addr(), addr);
    assert_eq!(http_get(addr, "/metrics").unwrap().status, 200);
}

#[test]
fn binding_a_taken_port_is_a_bind_error_naming_the_address() {
    let _g = setup();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = taken.local_addr().unwrap();
    let err = mm_trace::serve_metrics(addr.to_string()).unwrap_err();
    match &err {
        mm_trace::Error::Bind { addr: a, source } => {
            assert_eq!(a, &addr.to_string());
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("expected Error::Bind, got {other:?}"),
    }
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    let err = mm_trace::serve_metrics("no-such-host.invalid:9898").unwrap_err();
    assert!(err.to_string().contains("no-such-host.invalid:9898"), "{err}");
}

#[test]
fn ticks_are_never_blocked_by_stuck_or_busy_clients() {
    let _g = setup();
    let opts = MetricsServerOptions { max_connections: 4, read_timeout: Duration::from_secs(10), ..Default::default() };
    let server = mm_trace::serve_metrics_with("127.0.0.1:0", opts).unwrap();
    let addr = server.local_addr();
    // One client stuck halfway through its request, one that never reads its response.
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let mut deaf = TcpStream::connect(addr).unwrap();
    deaf.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    // And one scraping as fast as it can.
    let stop = AtomicBool::new(false);
    let scrapes = std::thread::scope(|s| {
        let scraper = s.spawn(|| {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = http_get(addr, "/metrics") {
                    assert!(r.status == 200 || r.status == 503, "{r:?}");
                    n += u32::from(r.status == 200);
                }
            }
            n
        });
        let mut slowest = Duration::ZERO;
        for _ in 0..20_000 {
            let t0 = Instant::now();
            ticks(1);
            slowest = slowest.max(t0.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        let n = scraper.join().unwrap();
        // Generous for a loaded 2-core CI machine; a tick waiting on the stuck client would take 10 s.
        assert!(slowest < Duration::from_millis(500), "a tick took {slowest:?}");
        n
    });
    assert!(scrapes > 0);
    assert_eq!(mm_trace::summary().ticks, 20_000);
    let r = http_get(addr, "/metrics").unwrap();
    assert_eq!(Exposition::parse(&r.body).value("mm_ticks_total", &[]), Some(20_000.0));
    drop((half, deaf));
}

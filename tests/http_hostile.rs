//! The endpoint keeps answering scrapes while hostile clients hold connections (issue 15): with
//! 64 idle connections and 48 slowloris connections (one byte every 500 ms) open at once, at
//! least 90% of the scrapes (one every 250 ms for 8 s) are answered `200` within one second;
//! the server runs on a bounded number of threads, its memory stays bounded, no tick waits, and
//! a 1 MB request head still gets `431`. Loopback only; every loop is bounded in count and time.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mm_trace::__private::{Site, StageGuard, TickGuard};
use mm_trace::{MetricsServerOptions, TraceConfig};
use support::parse_response;

static SERIAL: Mutex<()> = Mutex::new(());
static TICK: Site = Site::tick("tick");
static STAGE: Site = Site::stage("fetch_md");

const IDLE: usize = 64;
const SLOWLORIS: usize = 48;
const SCRAPES: usize = 32;
const SCRAPE_EVERY: Duration = Duration::from_millis(250);
const TRICKLE_EVERY: Duration = Duration::from_millis(500);

/// Threads of this process whose name starts with `prefix` (Linux: /proc/self/task/*/comm).
fn threads_named(prefix: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0 };
    dir.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

/// Resident memory of this process in KiB (Linux), 0 if unknown.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A connection the attacker keeps open: reconnected whenever the server closes it.
struct Held {
    conn: Option<TcpStream>,
    sent: usize,
}

impl Held {
    fn open(addr: SocketAddr) -> Held {
        let conn = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok();
        if let Some(c) = &conn {
            let _ = c.set_nonblocking(true);
        }
        Held { conn, sent: 0 }
    }

    /// Whether the server closed it (or answered, which for these clients means closing).
    fn closed_by_server(&mut self) -> bool {
        let Some(c) = self.conn.as_mut() else { return true };
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }
}

/// Keeps `n` connections open until `stop`; with `trickle`, each sends one more byte of a
/// request head that never ends every `TRICKLE_EVERY`. Returns how many times it reconnected.
fn attacker(addr: SocketAddr, n: usize, trickle: bool, stop: &AtomicBool, open_now: &AtomicU64) -> u64 {
    let head = b"GET /metrics HTTP/1.1\r\nHost: victim\r\nX-Slow: ";
    let mut held: Vec<Held> = (0..n).map(|_| Held::open(addr)).collect();
    open_now.fetch_add(held.iter().filter(|h| h.conn.is_some()).count() as u64, Ordering::Relaxed);
    let mut reconnects = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        for h in held.iter_mut() {
            if h.closed_by_server() {
                *h = Held::open(addr);
                reconnects += 1;
                continue;
            }
            if trickle {
                let byte = head.get(h.sent).copied().unwrap_or(b'a');
                if let Some(c) = h.conn.as_mut()
                    && c.write(&[byte]).is_ok()
                {
                    h.sent += 1;
                }
            }
        }
        std::thread::sleep(if trickle { TRICKLE_EVERY } else { Duration::from_millis(50) });
    }
    reconnects
}

/// One scrape with a one-second budget for connect, request and the whole response.
fn scrape(addr: SocketAddr) -> Result<(u16, Duration), String> {
    let t0 = Instant::now();
    let budget = Duration::from_secs(1);
    let mut conn = TcpStream::connect_timeout(&addr, budget).map_err(|e| format!("connect: {e}"))?;
    let req = b"GET /metrics HTTP/1.1\r\nHost: scraper\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n";
    conn.write_all(req).map_err(|e| format!("write: {e}"))?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = budget.checked_sub(t0.elapsed()).ok_or("no complete answer within 1 s")?;
        conn.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read after {:?}: {e}", t0.elapsed())),
        }
    }
    let r = parse_response(&bytes).map_err(|e| e.to_string())?;
    if r.status == 200 {
        let len: usize = r.header("Content-Length").and_then(|v| v.parse().ok()).ok_or("no Content-Length")?;
        if len != r.body.len() {
            return Err(format!("body {} of {len} bytes", r.body.len()));
        }
    }
    Ok((r.status, t0.elapsed()))
}

/// The attack against a server with `opts`, asserting the figures of the issue.
fn hold_off_hostile_clients(opts: MetricsServerOptions) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    mm_trace::init(TraceConfig { sample_rate: 1.0, export_golden: false, ..Default::default() }).unwrap();
    for _ in 0..100 {
        let _t = TickGuard::begin(&TICK);
        let _s = StageGuard::enter(&STAGE);
    }
    let cap = opts.max_connections;
    let server = mm_trace::serve_metrics_with("127.0.0.1:0", opts).unwrap();
    let addr = server.local_addr();
    let rss_before = rss_kib();
    let stop = AtomicBool::new(false);
    let open_now = AtomicU64::new(0);
    let (results, reconnects, slowest_tick, peak_threads, big_head) = std::thread::scope(|s| {
        let idle = s.spawn(|| attacker(addr, IDLE, false, &stop, &open_now));
        let slow = s.spawn(|| attacker(addr, SLOWLORIS, true, &stop, &open_now));
        // Ticks keep running meanwhile: none may wait on the endpoint.
        let ticker = s.spawn(|| {
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                {
                    let _t = TickGuard::begin(&TICK);
                    let _s = StageGuard::enter(&STAGE);
                }
                slowest = slowest.max(t0.elapsed());
                std::thread::sleep(Duration::from_micros(200));
            }
            slowest
        });
        // Let the attackers open everything first.
        let t0 = Instant::now();
        while open_now.load(Ordering::Relaxed) < (IDLE + SLOWLORIS) as u64 && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut results = Vec::new();
        let mut peak_threads = 0;
        let start = Instant::now();
        for i in 0..SCRAPES {
            let at = start + SCRAPE_EVERY * i as u32;
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            results.push(scrape(addr));
            peak_threads = peak_threads.max(threads_named("mm-trace-metric"));
        }
        // A 1 MB request head, in the middle of it all, still gets its 431.
        let big_head = {
            let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            conn.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let head = format!("GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20));
            let _ = conn.write_all(head.as_bytes()); // the server may stop reading early
            let mut bytes = Vec::new();
            let _ = conn.read_to_end(&mut bytes);
            parse_response(&bytes).map(|r| r.status)
        };
        stop.store(true, Ordering::Relaxed);
        let reconnects = idle.join().unwrap() + slow.join().unwrap();
        (results, reconnects, ticker.join().unwrap(), peak_threads, big_head)
    });
    let rss_growth_kib = rss_kib().saturating_sub(rss_before);

    let ok: Vec<Duration> =
        results.iter().filter_map(|r| r.as_ref().ok().filter(|(s, _)| *s == 200).map(|r| r.1)).collect();
    let slowest_scrape = ok.iter().max().copied().unwrap_or_default();
    eprintln!(
        "hostile clients ({IDLE} idle + {SLOWLORIS} slowloris, cap {cap}, {reconnects} reconnects): {}/{SCRAPES} scrapes 200 \
         within 1 s, slowest {slowest_scrape:?}; server threads {peak_threads}; RSS +{rss_growth_kib} KiB; \
         slowest tick {slowest_tick:?}; 1 MB head -> {big_head:?}",
        ok.len()
    );
    for (i, r) in results.iter().enumerate() {
        if !matches!(r, Ok((200, _))) {
            eprintln!("  scrape {i}: {r:?}");
        }
    }
    assert!(ok.len() * 10 >= SCRAPES * 9, "only {} of {SCRAPES} scrapes answered 200 within 1 s", ok.len());
    assert_eq!(big_head.ok(), Some(431), "a 1 MB request head must get 431");
    assert!(peak_threads <= 2, "the endpoint ran {peak_threads} threads");
    assert!(rss_growth_kib < 64 * 1024, "RSS grew by {rss_growth_kib} KiB");
    // Generous for a loaded 2-core machine: a tick waiting on a connection would take seconds.
    assert!(slowest_tick < Duration::from_millis(250), "a tick took {slowest_tick:?}");
    drop(server);
}

/// The default limits: every hostile connection fits, none holds a thread.
#[test]
fn scrapes_are_answered_while_hostile_clients_hold_connections() {
    hold_off_hostile_clients(MetricsServerOptions::default());
}

/// More hostile connections than the cap: new connections replace the oldest idle ones, so a
/// scraper still gets through while the attackers keep reconnecting.
#[test]
fn scrapes_are_answered_when_hostile_clients_outnumber_the_cap() {
    hold_off_hostile_clients(MetricsServerOptions { max_connections: 16, ..Default::default() });
}

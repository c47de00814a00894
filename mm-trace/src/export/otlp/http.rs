//! A minimal HTTP/1.1 client for OTLP/HTTP over std's `TcpStream`: one `POST` at a time on a
//! kept-alive connection, every step bounded by the request's deadline. Plain `http://` only
//! (no TLS): a collector or sidecar on the host forwards over TLS.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime};

use crate::config::HttpUrl;

/// The most of a response body kept (error messages, a partial-success answer); a larger body
/// is read and thrown away, or the connection closed.
const BODY_KEPT: usize = 64 * 1024;
/// Past this a response body is not read to keep the connection: it is closed instead.
const BODY_DRAINED: usize = 1 << 20;

/// The answer to one request.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// `Retry-After`, as a delay from now (seconds, or an HTTP date).
    pub(crate) retry_after: Option<Duration>,
    /// The body (at most `BODY_KEPT` bytes of it).
    pub(crate) body: Vec<u8>,
}

/// A connection to one receiver, reopened when it breaks.
pub(crate) struct Client {
    url: HttpUrl,
    conn: Option<TcpStream>,
}

impl Client {
    pub(crate) fn new(url: HttpUrl) -> Client {
        Client { url, conn: None }
    }

    pub(crate) fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// `POST`s `body` with `headers`, all of it (connecting, sending, reading the answer) within
    /// `timeout`. A kept-alive connection that the receiver closed while idle is retried once on a
    /// fresh one at once: that failure says nothing about the receiver.
    pub(crate) fn post(
        &mut self,
        headers: &[(String, String)],
        body: &[u8],
        timeout: Duration,
    ) -> io::Result<Response> {
        let deadline = Instant::now() + timeout;
        let request = self.request(headers, body);
        if let Some(conn) = self.conn.take() {
            match exchange(&conn, &request, deadline) {
                Ok((resp, keep)) => {
                    if keep {
                        self.conn = Some(conn);
                    }
                    return Ok(resp);
                }
                Err(Failure::BeforeAnswer(_)) if Instant::now() < deadline => {}
                Err(Failure::BeforeAnswer(e) | Failure::InAnswer(e)) => return Err(e),
            }
        }
        let conn = connect(&self.url, deadline)?;
        match exchange(&conn, &request, deadline) {
            Ok((resp, keep)) => {
                if keep {
                    self.conn = Some(conn);
                }
                Ok(resp)
            }
            Err(Failure::BeforeAnswer(e) | Failure::InAnswer(e)) => Err(e),
        }
    }

    fn request(&self, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mm-trace/{}\r\nContent-Type: application/x-protobuf\r\n\
             Content-Length: {}\r\n",
            self.url.path,
            self.url.authority,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        for (k, v) in headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        out
    }
}

enum Failure {
    /// Nothing of an answer arrived (the write failed, or the connection closed or reset before
    /// the first byte).
    BeforeAnswer(io::Error),
    InAnswer(io::Error),
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("no answer within the timeout ({what})"))
}

fn remaining(deadline: Instant, what: &str) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() { Err(timed_out(what)) } else { Ok(left) }
}

fn connect(url: &HttpUrl, deadline: Instant) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{} resolves to no address", url.host));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline, "connecting")?) {
            Ok(conn) => {
                // One write per request; no waiting for an ACK of a first small segment.
                conn.set_nodelay(true)?;
                return Ok(conn);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Sends `request` and reads one response. `Ok(.., keep)`: whether the connection may be reused.
fn exchange(mut conn: &TcpStream, request: &[u8], deadline: Instant) -> Result<(Response, bool), Failure> {
    let before = Failure::BeforeAnswer;
    conn.set_write_timeout(Some(remaining(deadline, "sending").map_err(before)?)).map_err(before)?;
    conn.write_all(request).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::InAnswer(timed_out("sending")),
        _ => Failure::BeforeAnswer(e),
    })?;
    let mut reader = Reader { conn, deadline, buf: Vec::with_capacity(1024), pos: 0 };
    let head = reader.head()?;
    let (status, headers) = parse_head(&head).map_err(Failure::InAnswer)?;
    let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let mut keep = !header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let chunked = header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if chunked {
        reader.chunked().map_err(Failure::InAnswer)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| Failure::InAnswer(io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")))?;
        if len > BODY_DRAINED {
            keep = false;
            reader.exactly(BODY_KEPT).map_err(Failure::InAnswer)?
        } else {
            let mut body = reader.exactly(len).map_err(Failure::InAnswer)?;
            body.truncate(BODY_KEPT);
            body
        }
    } else {
        // No length: the body ends when the receiver closes the connection.
        keep = false;
        reader.until_closed().map_err(Failure::InAnswer)?
    };
    let retry_after = header("retry-after").and_then(parse_retry_after);
    Ok((Response { status, retry_after, body }, keep))
}

struct Reader<'a> {
    conn: &'a TcpStream,
    deadline: Instant,
    buf: Vec<u8>,
    pos: usize,
}

impl Reader<'_> {
    /// Reads more bytes into `buf`; `Ok(0)` at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut conn = self.conn;
        conn.set_read_timeout(Some(remaining(self.deadline, "waiting for the answer")?))?;
        let mut chunk = [0u8; 8192];
        loop {
            match conn.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(timed_out("waiting for the answer"));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The status line and headers, up to the blank line (at most 64 KiB).
    fn head(&mut self) -> Result<Vec<u8>, Failure> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = self.buf[..end].to_vec();
                self.pos = end + 4;
                return Ok(head);
            }
            if self.buf.len() > 64 * 1024 {
                return Err(Failure::InAnswer(io::Error::new(io::ErrorKind::InvalidData, "response head too long")));
            }
            let first = self.buf.is_empty();
            match self.fill() {
                Ok(0) if first => {
                    return Err(Failure::BeforeAnswer(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the connection closed before an answer",
                    )));
                }
                Ok(0) => {
                    return Err(Failure::InAnswer(io::Error::new(io::ErrorKind::UnexpectedEof, "answer cut short")));
                }
                Ok(_) => {}
                Err(e) if first && matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) => {
                    return Err(Failure::BeforeAnswer(e));
                }
                Err(e) => return Err(Failure::InAnswer(e)),
            }
        }
    }

    fn exactly(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() - self.pos < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "answer body cut short"));
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + i]).into_owned();
                self.pos += i + 2;
                return Ok(line);
            }
            if self.buf.len() - self.pos > 4096 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "chunk line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "answer body cut short"));
            }
        }
    }

    fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > BODY_DRAINED {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "answer body too large"));
            }
            let chunk = self.exactly(size)?;
            if body.len() < BODY_KEPT {
                body.extend_from_slice(&chunk[..chunk.len().min(BODY_KEPT - body.len())]);
            }
            if !self.line()?.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "chunk not followed by CRLF"));
            }
        }
    }

    fn until_closed(&mut self) -> io::Result<Vec<u8>> {
        while self.buf.len() - self.pos <= BODY_DRAINED && self.fill()? > 0 {}
        let mut out = self.buf[self.pos..].to_vec();
        out.truncate(BODY_KEPT);
        Ok(out)
    }
}

type Headers = Vec<(String, String)>;

fn parse_head(head: &[u8]) -> io::Result<(u16, Headers)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("malformed answer: {what}"));
    let text = std::str::from_utf8(head).map_err(|_| bad("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad(&format!("status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| bad(&format!("status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line.split_once(':').ok_or_else(|| bad(&format!("header line {line:?}")))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    // An HTTP/1.0 answer closes the connection unless it says otherwise.
    if version == "HTTP/1.0" && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("connection")) {
        headers.push(("Connection".into(), "close".into()));
    }
    Ok((status, headers))
}

/// `Retry-After: <seconds>` or `Retry-After: <IMF-fixdate>` as a delay from now.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110's preferred date form).
fn parse_http_date(v: &str) -> Option<SystemTime> {
    let (_, rest) = v.split_once(", ")?;
    let mut it = rest.split(' ');
    let day: u64 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == mon)? as u64
        + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy as i64;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + m * 60 + s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO), "in the past: now");
        assert_eq!(parse_retry_after("soon"), None);
    }

    /// A server that answers each connection's requests with the given raw answers in turn.
    fn serve(answers: Vec<&'static str>) -> HttpUrl {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                loop {
                    let mut buf = vec![0u8; 65536];
                    let n = conn.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    match answers.next() {
                        Some("CLOSE") => break,
                        Some(a) => conn.write_all(a.as_bytes()).unwrap(),
                        None => return,
                    }
                }
            }
        });
        HttpUrl::parse(&format!("http://127.0.0.1:{port}/v1/traces")).unwrap()
    }

    #[test]
    fn reads_lengths_chunks_and_reuses_or_reopens_connections() {
        let url = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "HTTP/1.1 503 Busy\r\nRetry-After: 2\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            // The server drops the kept-alive connection: the client reconnects at once.
            "CLOSE",
            "HTTP/1.1 400 Bad\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad",
        ]);
        let mut c = Client::new(url);
        let t = Duration::from_secs(5);
        let r = c.post(&[("x-k".into(), "v".into())], b"body", t).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        let r = c.post(&[], b"body", t).unwrap();
        assert_eq!((r.status, r.retry_after, r.body.as_slice()), (503, Some(Duration::from_secs(2)), &b"abcde"[..]));
        let r = c.post(&[], b"body", t).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"bad"[..]));
        assert!(c.conn.is_none(), "Connection: close is honoured");
    }

    #[test]
    fn a_silent_receiver_times_out_and_a_closed_port_fails_fast() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = HttpUrl::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let mut c = Client::new(url);
        let t0 = Instant::now();
        let e = c.post(&[], b"x", Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        drop(listener);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = Client::new(HttpUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap());
        assert!(c.post(&[], b"x", Duration::from_secs(2)).is_err());
    }
}

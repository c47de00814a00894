//! The endpoint's event loop: one thread, non-blocking sockets, a state and a deadline per
//! connection.
//!
//! A connection reads its request head (at most `MAX_HEAD` bytes kept), is answered in full,
//! closes its sending side, then lingers briefly reading and dropping what the client still
//! sends, so that closing does not reset the connection before the client has read the answer.
//! Every state has a deadline; the loop sleeps until the next one or the next event.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::request::{MAX_HEAD, head_end, route};
use super::response::{answer, busy, timed_out, too_large};
use super::{Endpoint, MetricsServerOptions, Shared};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Token of connection slot `i`: `FIRST_CONN + i`.
const FIRST_CONN: usize = 2;
/// How long a connection that has its answer is still read from before it is closed.
const LINGER: Duration = Duration::from_millis(500);
/// Longest sleep of the loop (a stop request wakes it at once through the waker).
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Pause before accepting again after `accept` failed (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

enum State {
    /// Reading the request head.
    Reading { head: Vec<u8>, last_read: Instant },
    /// Sending `out` from `pos`.
    Writing { out: Vec<u8>, pos: usize, deadline: Instant },
    /// Answered, sending side closed: reading and dropping what still arrives.
    Lingering { deadline: Instant },
}

struct Conn {
    stream: TcpStream,
    opened: Instant,
    state: State,
}

/// What to do with a connection after it was driven.
#[derive(PartialEq, Eq, Debug)]
enum Next {
    Keep,
    Close,
}

impl Conn {
    fn deadline(&self, opts: &MetricsServerOptions) -> Instant {
        match &self.state {
            State::Reading { last_read, .. } => {
                (self.opened + opts.request_timeout).min(*last_read + opts.read_timeout)
            }
            State::Writing { deadline, .. } | State::Lingering { deadline } => *deadline,
        }
    }

    fn answer_with(&mut self, out: Vec<u8>, now: Instant, opts: &MetricsServerOptions) {
        self.state = State::Writing { out, pos: 0, deadline: now + opts.write_timeout };
    }

    /// Moves the connection on as far as its socket allows without waiting.
    fn drive(&mut self, now: Instant, scratch: &mut [u8], opts: &MetricsServerOptions, endpoint: &Endpoint) -> Next {
        loop {
            match &mut self.state {
                State::Reading { head, last_read } => {
                    let out = match self.stream.read(scratch) {
                        Ok(0) if head.is_empty() => return Next::Close,
                        // The client finished sending without a blank line: what it sent is the head.
                        Ok(0) => Some(answer(route(head), endpoint)),
                        Ok(n) => {
                            *last_read = now;
                            let searched = head.len().saturating_sub(3);
                            let room = (MAX_HEAD + 1).saturating_sub(head.len());
                            head.extend_from_slice(&scratch[..n.min(room)]);
                            if let Some(end) = head_end(&head[searched..]) {
                                head.truncate(searched + end);
                                Some(answer(route(head), endpoint))
                            } else if head.len() > MAX_HEAD {
                                Some(too_large())
                            } else {
                                None
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
                        Err(_) => return Next::Close,
                    };
                    if let Some(out) = out {
                        self.answer_with(out, now, opts);
                    }
                }
                State::Writing { out, pos, .. } => {
                    while *pos < out.len() {
                        match self.stream.write(&out[*pos..]) {
                            Ok(0) => return Next::Close,
                            Ok(n) => *pos += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return Next::Close,
                        }
                    }
                    let _ = self.stream.shutdown(Shutdown::Write);
                    self.state = State::Lingering { deadline: now + LINGER };
                }
                State::Lingering { .. } => loop {
                    match self.stream.read(scratch) {
                        Ok(0) => return Next::Close,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Next::Close,
                    }
                },
            }
        }
    }

    /// Its deadline has passed: a head still being read is answered `408`, anything else closed.
    fn expire(&mut self, now: Instant, scratch: &mut [u8], opts: &MetricsServerOptions, endpoint: &Endpoint) -> Next {
        match self.state {
            State::Reading { .. } => {
                self.answer_with(timed_out(), now, opts);
                self.drive(now, scratch, opts, endpoint)
            }
            State::Writing { .. } | State::Lingering { .. } => Next::Close,
        }
    }
}

/// The loop's state: owned by the endpoint's thread.
pub(super) struct Server {
    poll: Poll,
    listener: TcpListener,
    opts: MetricsServerOptions,
    endpoint: Endpoint,
    shared: Arc<Shared>,
    /// Connection slots (token `FIRST_CONN + index`) and the free ones.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    accept_paused_until: Option<Instant>,
    scratch: Vec<u8>,
}

impl Server {
    pub(super) fn new(
        listener: std::net::TcpListener,
        opts: MetricsServerOptions,
        endpoint: Endpoint,
        shared: Arc<Shared>,
    ) -> io::Result<(Server, Arc<Waker>)> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let server = Server {
            poll,
            listener,
            opts,
            endpoint,
            shared,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            accept_paused_until: None,
            scratch: vec![0; 16 * 1024],
        };
        Ok((server, waker))
    }

    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            if self.shared.stop.load(Acquire) {
                return;
            }
            let timeout = self.sleep_for(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    std::thread::sleep(ACCEPT_BACKOFF);
                }
                continue;
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => {}
                    Token(t) => self.drive(t - FIRST_CONN, now),
                }
            }
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_paused_until = None;
                self.accept(now);
            }
            self.expire(Instant::now());
        }
    }

    /// Until the next deadline (or accept retry), at most `MAX_SLEEP`.
    fn sleep_for(&self, now: Instant) -> Duration {
        let next = self
            .conns
            .iter()
            .flatten()
            .map(|c| c.deadline(&self.opts))
            .chain(self.accept_paused_until)
            .min()
            .unwrap_or(now + MAX_SLEEP);
        next.saturating_duration_since(now).min(MAX_SLEEP)
    }

    fn accept(&mut self, now: Instant) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Out of descriptors, or an aborted handshake: retry shortly, keep serving.
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, now: Instant) {
        if self.open >= self.opts.max_connections {
            match self.victim() {
                Some(i) => {
                    if let Some(Some(c)) = self.conns.get_mut(i)
                        && matches!(c.state, State::Reading { .. })
                    {
                        // Best effort: it sent no whole request, so the answer fits the socket.
                        let _ = c.stream.write(&busy());
                    }
                    self.close(i);
                }
                None => {
                    let _ = stream.write(&busy());
                    let _ = stream.shutdown(Shutdown::Write);
                    return;
                }
            }
        }
        let _ = stream.set_nodelay(true);
        let i = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if self
            .poll
            .registry()
            .register(&mut stream, Token(FIRST_CONN + i), Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            self.free.push(i);
            return;
        }
        self.conns[i] = Some(Conn { stream, opened: now, state: State::Reading { head: Vec::new(), last_read: now } });
        self.open += 1;
        self.shared.active.store(self.open, Relaxed);
    }

    /// The connection a newcomer replaces at the cap: one lingering after its answer, else the
    /// oldest still reading its request; `None` when every connection is being answered.
    fn victim(&self) -> Option<usize> {
        let slots = || self.conns.iter().enumerate().filter_map(|(i, c)| Some((i, c.as_ref()?)));
        slots()
            .find(|(_, c)| matches!(c.state, State::Lingering { .. }))
            .or_else(|| slots().filter(|(_, c)| matches!(c.state, State::Reading { .. })).min_by_key(|(_, c)| c.opened))
            .map(|(i, _)| i)
    }

    fn drive(&mut self, i: usize, now: Instant) {
        let Some(Some(conn)) = self.conns.get_mut(i) else { return };
        if conn.drive(now, &mut self.scratch, &self.opts, &self.endpoint) == Next::Close {
            self.close(i);
        }
    }

    fn expire(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_mut() else { continue };
            if conn.deadline(&self.opts) <= now
                && conn.expire(now, &mut self.scratch, &self.opts, &self.endpoint) == Next::Close
            {
                self.close(i);
            }
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(mut conn) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.free.push(i);
            self.open -= 1;
            self.shared.active.store(self.open, Relaxed);
        }
    }
}

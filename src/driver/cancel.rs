//! Cancel requests: a CancelRequest on a fresh socket to the exact address a connection uses. The
//! exchange itself is [`CancelExchange`] (sans-IO); this module moves its bytes, blocking
//! ([`CancelToken::cancel`]) or on the reactor's `Poll` ([`Reactor::run_cancel`](super::Reactor::run_cancel)).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::stream::{Peer, connect_failure_text};
use super::tls::{self, TlsPlan};
use crate::conn::cancel::{CancelExchange, CancelState};
use crate::error::{Error, ErrorKind};

/// How long a cancel waits for the server to close the cancel socket, by default (PostgreSQL 17's
/// dblink waits 30 s).
pub const DEFAULT_CANCEL_TIMEOUT: Duration = Duration::from_secs(30);

/// What it takes to cancel a running query: the server address in use, the backend's pid and its
/// secret key (4 bytes in protocol 3.0, up to 256 in 3.2), and, for a connection that uses TLS, how
/// it runs TLS: the cancel request travels the way the connection did (libpq 17's cancel API), the
/// server verified as the connection verified it. Independent of the connection, so it can be used
/// from another thread.
#[derive(Clone)]
pub struct CancelToken {
    peer: Peer,
    pid: u32,
    key: Vec<u8>,
    tls: Option<TlsPlan>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("peer", &self.peer)
            .field("pid", &self.pid)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl CancelToken {
    /// A token for backend `pid` with `key` at `peer`.
    pub fn new(peer: Peer, pid: u32, key: Vec<u8>) -> CancelToken {
        CancelToken {
            peer,
            pid,
            key,
            tls: None,
        }
    }

    /// The same token cancelling over TLS with `plan` (`None`: in plain text).
    pub fn with_tls(mut self, plan: Option<TlsPlan>) -> CancelToken {
        self.tls = plan;
        self
    }

    /// Whether the cancel request travels over TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The address the cancel request goes to.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The backend process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends the CancelRequest and waits (at most `timeout`) until the server closes the socket, which
    /// says it has processed the request. Success means delivered, not that a query was cancelled.
    /// Blocking sockets with timeouts, for use from any thread.
    pub fn cancel(&self, timeout: Duration) -> Result<(), Error> {
        let mut io = self.io()?;
        let deadline = Instant::now() + timeout;
        match &self.peer {
            Peer::Tcp(addr) => {
                let mut s = std::net::TcpStream::connect_timeout(addr, timeout)
                    .map_err(|e| self.blocking_failure(&e))?;
                s.set_write_timeout(Some(timeout))
                    .map_err(|e| self.blocking_failure(&e))?;
                run_blocking(&mut io, self, &mut s, deadline, |s, t| {
                    s.set_read_timeout(t)
                })
            }
            Peer::Unix(path) => {
                let mut s = std::os::unix::net::UnixStream::connect(path)
                    .map_err(|e| self.blocking_failure(&e))?;
                s.set_write_timeout(Some(timeout))
                    .map_err(|e| self.blocking_failure(&e))?;
                run_blocking(&mut io, self, &mut s, deadline, |s, t| {
                    s.set_read_timeout(t)
                })
            }
        }
    }

    fn io(&self) -> Result<CancelIo, Error> {
        let exchange = match (&self.tls, &self.peer) {
            (Some(plan), Peer::Tcp(_)) => {
                CancelExchange::over_tls(self.pid, &self.key, plan.direct)?
            }
            _ => CancelExchange::new(self.pid, &self.key)?,
        };
        Ok(CancelIo::new(exchange, self.tls.clone()))
    }

    /// A failure of the blocking path: a timeout says so, anything else is libpq's connect text.
    fn blocking_failure(&self, e: &io::Error) -> Error {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            Error::new(ErrorKind::Io, "cancel request timed out")
        } else {
            self.failure(e)
        }
    }
}

fn describe(peer: &Peer) -> String {
    match peer {
        Peer::Tcp(addr) => format!(
            "connection to server at \"{}\", port {} failed: ",
            addr.ip(),
            addr.port()
        ),
        Peer::Unix(path) => format!(
            "connection to server on socket \"{}\" failed: ",
            path.display()
        ),
    }
}

/// A cancel exchange with its transport: plain, or a rustls session once the exchange wants TLS.
/// [`pump`](CancelIo::pump) moves its bytes over any stream, blocking or not.
struct CancelIo {
    exchange: CancelExchange,
    plan: Option<TlsPlan>,
    tls: Option<rustls::ClientConnection>,
    /// CancelRequest bytes handed to rustls whose ciphertext is not all written yet: the exchange
    /// counts them sent only then (a failure before is "not delivered").
    in_flight: usize,
}

impl CancelIo {
    fn new(exchange: CancelExchange, plan: Option<TlsPlan>) -> CancelIo {
        CancelIo {
            exchange,
            plan,
            tls: None,
            in_flight: 0,
        }
    }

    /// Advances until the exchange ends (`Ok(true)`) or the stream would block (`Ok(false)`; on a
    /// blocking stream with a read timeout, that the time is up). `Err` for a socket failure before
    /// the request was delivered.
    fn pump<S: Read + Write>(&mut self, s: &mut S) -> io::Result<bool> {
        let mut buf = [0u8; 4096];
        loop {
            if self.exchange.is_done() {
                return Ok(true);
            }
            if self.exchange.tls_wanted() && self.tls.is_none() {
                match self.plan.as_ref().map(|p| p.start()) {
                    Some(Ok(session)) => self.tls = Some(session),
                    Some(Err(e)) => self.exchange.tls_failed(e.message()),
                    None => self.exchange.tls_failed("SSL is not available"),
                }
                continue;
            }
            let Some(tls) = self.tls.as_mut() else {
                // Plain text: the SSLRequest and its answer, or the whole exchange.
                let step = if self.exchange.wants_write() {
                    s.write(self.exchange.pending_output()).map(|n| match n {
                        0 => self.exchange.handle_eof(),
                        n => self.exchange.consume_output(n),
                    })
                } else {
                    // The SSL answer: bytes after it in the same read were not the server's
                    // (the exchange refuses them); after the request, whatever comes is discarded.
                    s.read(&mut buf).map(|n| match n {
                        0 => self.exchange.handle_eof(),
                        n => self.exchange.handle_input(&buf[..n]),
                    })
                };
                match step {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.exchange.handle_error();
                        if self.exchange.state() == CancelState::Failed {
                            return Err(e);
                        }
                    }
                }
                continue;
            };
            let handshaking = self.exchange.tls_wanted();
            if handshaking && !tls.is_handshaking() {
                let direct = self.plan.as_ref().is_some_and(|p| p.direct);
                match tls::check_alpn(direct, tls.alpn_protocol()) {
                    Ok(()) => self.exchange.tls_established(),
                    Err(text) => self.exchange.tls_failed(text),
                }
                continue;
            }
            if self.exchange.wants_write() && self.in_flight == 0 {
                let out = self.exchange.pending_output();
                self.in_flight = tls.writer().write(out).unwrap_or(0);
            }
            if tls.wants_write() {
                match tls.write_tls(s) {
                    Ok(0) => self.exchange.handle_eof(),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if handshaking => {
                        self.exchange.tls_failed(tls::syscall_error_text(Some(&e)))
                    }
                    Err(e) => {
                        self.exchange.handle_error();
                        if self.exchange.state() == CancelState::Failed {
                            return Err(e);
                        }
                    }
                }
                continue;
            }
            if self.in_flight > 0 {
                self.exchange
                    .consume_output(std::mem::take(&mut self.in_flight));
                continue;
            }
            match tls.read_tls(s) {
                Ok(0) if handshaking => self.exchange.tls_failed(tls::syscall_error_text(None)),
                Ok(0) => self.exchange.handle_eof(),
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        // The alert goes out, best effort.
                        let _ = tls.write_tls(s);
                        if handshaking {
                            self.exchange.tls_failed(tls::error_text(&e));
                        } else {
                            self.exchange.handle_error();
                        }
                        continue;
                    }
                    loop {
                        match tls.reader().read(&mut buf) {
                            Ok(0) => {
                                self.exchange.handle_eof();
                                break;
                            }
                            Ok(n) => self.exchange.handle_input(&buf[..n]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => {
                                self.exchange.handle_eof();
                                break;
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if handshaking => {
                    self.exchange.tls_failed(tls::syscall_error_text(Some(&e)))
                }
                Err(_) => self.exchange.handle_error(),
            }
        }
    }

    /// The outcome once [`pump`](Self::pump) says the exchange has ended.
    fn outcome(&self, token: &CancelToken) -> Result<(), Error> {
        match (self.exchange.state(), self.exchange.error_text()) {
            (CancelState::Delivered, _) => Ok(()),
            (_, Some(text)) => Err(Error::new(
                ErrorKind::Io,
                format!("{}{text}", describe(&token.peer)),
            )),
            _ => Err(token.failure(&io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "server closed the connection before the cancel request was sent",
            ))),
        }
    }
}

/// Runs a cancel on a blocking socket until it ends or `deadline` passes.
fn run_blocking<S: Read + Write>(
    io: &mut CancelIo,
    token: &CancelToken,
    s: &mut S,
    deadline: Instant,
    set_read_timeout: impl Fn(&S, Option<Duration>) -> io::Result<()>,
) -> Result<(), Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    // Each read waits at most what is left at the start (a handshake's reads share it).
    set_read_timeout(s, Some(left)).map_err(|e| token.blocking_failure(&e))?;
    match io.pump(s) {
        Ok(true) => io.outcome(token),
        // A blocking read that would block has timed out.
        Ok(false) => Err(timed_out()),
        Err(e) => Err(token.blocking_failure(&e)),
    }
}

fn timed_out() -> Error {
    Error::new(ErrorKind::Io, "cancel request timed out")
}

/// A cancel request in progress on a non-blocking socket (driven by the reactor): the same exchange
/// as [`CancelToken::cancel`], moved by readiness events.
pub(crate) struct CancelRequest<'a> {
    token: &'a CancelToken,
    stream: super::Stream,
    io: CancelIo,
    connected: bool,
    result: Option<Result<(), Error>>,
}

impl<'a> CancelRequest<'a> {
    pub(crate) fn start(token: &'a CancelToken) -> Result<CancelRequest<'a>, Error> {
        let io = token.io()?;
        let stream = super::Stream::connect(&token.peer).map_err(|e| token.failure(&e))?;
        Ok(CancelRequest {
            token,
            stream,
            io,
            connected: false,
            result: None,
        })
    }

    pub(crate) fn stream_mut(&mut self) -> &mut super::Stream {
        &mut self.stream
    }

    /// Advances as far as the socket allows (until it would block); true when finished (either way).
    pub(crate) fn progress(&mut self) -> bool {
        if self.result.is_some() {
            return true;
        }
        if !self.connected {
            match self.stream.check_connected() {
                Ok(true) => self.connected = true,
                Ok(false) => return false,
                Err(e) => {
                    self.result = Some(Err(self.token.failure(&e)));
                    return true;
                }
            }
        }
        match self.io.pump(&mut self.stream) {
            Ok(false) => false,
            Ok(true) => {
                self.result = Some(self.io.outcome(self.token));
                true
            }
            Err(e) => {
                self.result = Some(Err(self.token.failure(&e)));
                true
            }
        }
    }

    pub(crate) fn outcome(&mut self) -> Result<(), Error> {
        self.result.take().unwrap_or(Ok(()))
    }
}

impl CancelToken {
    fn failure(&self, e: &io::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            format!(
                "{}{}",
                describe(&self.peer),
                connect_failure_text(&self.peer, e)
            ),
        )
    }
}

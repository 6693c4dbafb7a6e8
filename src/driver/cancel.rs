//! Cancel requests: a CancelRequest on a fresh socket to the exact address a connection uses. The
//! exchange itself is [`CancelExchange`] (sans-IO); this module moves its bytes, blocking
//! ([`CancelToken::cancel`]) or on the reactor's `Poll` ([`Reactor::run_cancel`](super::Reactor::run_cancel)).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::stream::{Peer, connect_failure_text};
use crate::conn::cancel::{CancelExchange, CancelState};
use crate::error::{Error, ErrorKind};

/// How long a cancel waits for the server to close the cancel socket, by default (PostgreSQL 17's
/// dblink waits 30 s).
pub const DEFAULT_CANCEL_TIMEOUT: Duration = Duration::from_secs(30);

/// What it takes to cancel a running query: the server address in use, the backend's pid and its
/// secret key (4 bytes in protocol 3.0, up to 256 in 3.2). Independent of the connection, so it can be
/// used from another thread.
#[derive(Clone)]
pub struct CancelToken {
    peer: Peer,
    pid: u32,
    key: Vec<u8>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("peer", &self.peer)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl CancelToken {
    /// A token for backend `pid` with `key` at `peer`.
    pub fn new(peer: Peer, pid: u32, key: Vec<u8>) -> CancelToken {
        CancelToken { peer, pid, key }
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
        let mut exchange = self.exchange()?;
        let deadline = Instant::now() + timeout;
        match &self.peer {
            Peer::Tcp(addr) => {
                let mut s = std::net::TcpStream::connect_timeout(addr, timeout)
                    .map_err(|e| self.blocking_failure(&e))?;
                s.set_write_timeout(Some(timeout))
                    .map_err(|e| self.blocking_failure(&e))?;
                run_blocking(&mut exchange, &mut s, deadline, |s, t| {
                    s.set_read_timeout(t)
                })
            }
            Peer::Unix(path) => {
                let mut s = std::os::unix::net::UnixStream::connect(path)
                    .map_err(|e| self.blocking_failure(&e))?;
                s.set_write_timeout(Some(timeout))
                    .map_err(|e| self.blocking_failure(&e))?;
                run_blocking(&mut exchange, &mut s, deadline, |s, t| {
                    s.set_read_timeout(t)
                })
            }
        }
        .map_err(|e| self.blocking_failure(&e))
    }

    fn exchange(&self) -> Result<CancelExchange, Error> {
        CancelExchange::new(self.pid, &self.key)
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

/// Runs `exchange` on a blocking socket until it ends or `deadline` passes (a `TimedOut` error).
fn run_blocking<S: Read + Write>(
    exchange: &mut CancelExchange,
    s: &mut S,
    deadline: Instant,
    set_read_timeout: impl Fn(&S, Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = [0u8; 64];
    while !exchange.is_done() {
        if exchange.wants_write() {
            match s.write(exchange.pending_output()) {
                Ok(0) => exchange.handle_eof(),
                Ok(n) => exchange.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    exchange.handle_error();
                    if exchange.state() == CancelState::Failed {
                        return Err(e);
                    }
                }
            }
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        set_read_timeout(s, Some(left))?;
        match s.read(&mut buf) {
            Ok(0) => exchange.handle_eof(),
            Ok(n) => exchange.handle_input(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(e);
            }
            Err(_) => exchange.handle_error(),
        }
    }
    match exchange.state() {
        CancelState::Delivered => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "server closed the connection before the cancel request was sent",
        )),
    }
}

/// A cancel request in progress on a non-blocking socket (driven by the reactor): the same exchange
/// as [`CancelToken::cancel`], moved by readiness events.
pub(crate) struct CancelRequest<'a> {
    token: &'a CancelToken,
    stream: super::Stream,
    exchange: CancelExchange,
    result: Option<Result<(), Error>>,
}

impl<'a> CancelRequest<'a> {
    pub(crate) fn start(token: &'a CancelToken) -> Result<CancelRequest<'a>, Error> {
        let exchange = token.exchange()?;
        let stream = super::Stream::connect(&token.peer).map_err(|e| token.failure(&e))?;
        Ok(CancelRequest {
            token,
            stream,
            exchange,
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
        if self.exchange.wants_write() {
            match self.stream.check_connected() {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => return self.fail(&e),
            }
        }
        let mut buf = [0u8; 64];
        while !self.exchange.is_done() {
            let step = if self.exchange.wants_write() {
                self.stream
                    .write(self.exchange.pending_output())
                    .map(|n| match n {
                        0 => self.exchange.handle_eof(),
                        n => self.exchange.consume_output(n),
                    })
            } else {
                self.stream.read(&mut buf).map(|n| match n {
                    0 => self.exchange.handle_eof(),
                    n => self.exchange.handle_input(&buf[..n]),
                })
            };
            match step {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.exchange.handle_error();
                    if self.exchange.state() == CancelState::Failed {
                        return self.fail(&e);
                    }
                }
            }
        }
        self.result = Some(match self.exchange.state() {
            CancelState::Delivered => Ok(()),
            _ => Err(self.token.failure(&io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "server closed the connection before the cancel request was sent",
            ))),
        });
        true
    }

    fn fail(&mut self, e: &io::Error) -> bool {
        self.result = Some(Err(self.token.failure(e)));
        true
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

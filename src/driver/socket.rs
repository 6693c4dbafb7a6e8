//! One connection's socket: a [`Connection`] over a non-blocking mio stream.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::conn::Connection;
use crate::error::{Error, ErrorKind};

/// The address a connection uses: where its cancel requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix-domain socket path (`<dir>/.s.PGSQL.<port>`).
    Unix(PathBuf),
}

/// A non-blocking stream: TCP or unix-domain.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(mio::net::TcpStream),
    /// Unix-domain socket.
    Unix(mio::net::UnixStream),
}

impl Stream {
    /// Starts a non-blocking connect to `peer`.
    pub fn connect(peer: &Peer) -> io::Result<Stream> {
        match peer {
            Peer::Tcp(addr) => {
                let s = mio::net::TcpStream::connect(*addr)?;
                // Round trips are small messages: never wait for Nagle.
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Peer::Unix(path) => Ok(Stream::Unix(mio::net::UnixStream::connect(path)?)),
        }
    }

    /// mio's rule for a non-blocking connect: after a writable event, `take_error` reports a failure;
    /// `peer_addr` failing with `NotConnected` means the event was spurious and the connect still runs.
    /// Returns `Ok(true)` once connected.
    pub fn check_connected(&self) -> io::Result<bool> {
        let (err, peer) = match self {
            Stream::Tcp(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
            Stream::Unix(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
        };
        if let Some(e) = err {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Unix(s) => s.register(registry, token, interests),
        }
    }
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Unix(s) => s.reregister(registry, token, interests),
        }
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
        }
    }
}

/// A [`Connection`] and its socket. Implements [`mio::event::Source`], so it can live in a caller's own
/// `Poll`: register it, and call [`PgSocket::on_event`] for its events.
#[derive(Debug)]
pub struct PgSocket {
    stream: Stream,
    conn: Connection,
    peer: Peer,
    connected: bool,
    connect_error: Option<io::Error>,
    interest: Option<Interest>,
    /// Reading stopped because the session asked for backpressure, not because the socket was empty:
    /// no new readiness edge will come, so the caller must read again once results were taken.
    read_paused: bool,
    /// Output was just sent: the answer may already be here (see [`PgSocket::take_read_hint`]).
    read_hint: bool,
    /// Sends to let pass without setting `read_hint`, after an early read found nothing.
    hint_skip: u8,
    /// How many sends the next miss lets pass: doubles (plus one) with every miss in a row, from
    /// [`HINT_BACKOFF_MIN`] up to `u8::MAX`; a hit starts it over.
    hint_backoff: u8,
}

/// After an early read found nothing, how many sends go by before the next early read. After misses
/// in a row the pause doubles (plus one) up to `u8::MAX`: a connection whose answers never come that
/// fast pays one empty read in 256 sends.
const HINT_BACKOFF_MIN: u8 = 15;

impl PgSocket {
    /// Starts a non-blocking connect to `peer`; `conn` is the session that will run over it.
    pub fn connect(peer: Peer, conn: Connection) -> io::Result<PgSocket> {
        let stream = Stream::connect(&peer)?;
        Ok(PgSocket {
            stream,
            conn,
            peer,
            connected: false,
            connect_error: None,
            interest: None,
            read_paused: false,
            read_hint: false,
            hint_skip: 0,
            hint_backoff: HINT_BACKOFF_MIN,
        })
    }

    /// The session.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The session, mutably (to send a query; call [`flush`](Self::flush) afterwards).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The address in use.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Whether the TCP/unix connect has completed.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The interest this socket needs now: readable always while open, writable while the connect is in
    /// progress or output is pending.
    pub fn wanted_interest(&self) -> Option<Interest> {
        if self.connect_error.is_some() {
            None
        } else if !self.connected || self.conn.wants_write() {
            Some(Interest::READABLE | Interest::WRITABLE)
        } else if self.conn.wants_read() {
            Some(Interest::READABLE)
        } else {
            None
        }
    }

    /// Registers or re-registers with `registry` if the wanted interest changed.
    pub fn update_registration(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let wanted = self.wanted_interest();
        if wanted == self.interest {
            return Ok(());
        }
        match (self.interest, wanted) {
            (None, Some(i)) => self.stream.register(registry, token, i)?,
            (Some(_), Some(i)) => self.stream.reregister(registry, token, i)?,
            (Some(_), None) => self.stream.deregister(registry)?,
            (None, None) => {}
        }
        self.interest = wanted;
        Ok(())
    }

    /// Deregisters from `registry` (if registered).
    pub fn deregister(&mut self, registry: &Registry) {
        if self.interest.take().is_some() {
            let _ = self.stream.deregister(registry);
        }
    }

    /// Handles a readiness event (or a spurious wake-up): completes the connect, writes pending output,
    /// reads available input. I/O failures end the session (the connection reports them); a failed
    /// TCP/unix connect is kept for [`take_connect_error`](Self::take_connect_error), so the caller can
    /// try the next address.
    pub fn on_event(&mut self, scratch: &mut [u8], read_closed: bool) {
        if self.connect_error.is_some() {
            return;
        }
        if !self.connected {
            match self.stream.check_connected() {
                Ok(true) => self.connected = true,
                Ok(false) => return,
                Err(e) => {
                    self.connect_error = Some(e);
                    return;
                }
            }
        }
        self.flush();
        self.read_available(scratch, read_closed);
        // Reading may have produced output (authentication replies, CopyFail).
        self.flush();
    }

    /// The error of a failed TCP/unix connect, once.
    pub fn take_connect_error(&mut self) -> Option<io::Error> {
        self.connect_error.take()
    }

    /// Whether the TCP/unix connect failed.
    pub fn connect_failed(&self) -> bool {
        self.connect_error.is_some()
    }

    /// Writes pending output until it is all sent or the socket would block.
    pub fn flush(&mut self) {
        if !self.connected {
            return;
        }
        let mut sent = false;
        while self.conn.wants_write() {
            match self.stream.write(self.conn.pending_output()) {
                Ok(0) => {
                    self.conn.handle_eof();
                    break;
                }
                Ok(n) => {
                    self.conn.consume_output(n);
                    sent = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // The peer is gone; what it sent before closing may still be readable.
                    let pending = self.conn.pending_output().len();
                    self.conn.consume_output(pending);
                    break;
                }
            }
        }
        if sent {
            if self.hint_skip == 0 {
                self.read_hint = true;
            } else {
                self.hint_skip -= 1;
            }
        }
    }

    /// Whether to read once before waiting for readiness, because output was just sent and the answer
    /// may already have arrived (the caller did other work after sending, or the server answered
    /// before the send returned): reading straight away then saves the wait, a syscall. Taking the
    /// hint clears it; report what the read found with [`hint_result`](Self::hint_result).
    pub fn take_read_hint(&mut self) -> bool {
        std::mem::take(&mut self.read_hint)
    }

    /// How an early read taken on a hint went. After one that found nothing, the next 15 sends set no
    /// hint, and after misses in a row 31, 63, ... up to 255; a read that found the answer starts over.
    pub fn hint_result(&mut self, bytes_read: usize) {
        if bytes_read == 0 {
            self.hint_skip = self.hint_backoff;
            self.hint_backoff = self.hint_backoff.saturating_mul(2).saturating_add(1);
        } else {
            self.hint_backoff = HINT_BACKOFF_MIN;
        }
    }

    /// Reads whatever input is available without blocking and hands it to the session.
    ///
    /// A short read means the socket's receive queue held no more data at that moment, so any data
    /// arriving later raises a new edge of readiness, and the extra read that would only return
    /// `WouldBlock` is skipped. The exception is an end of stream already queued behind the data:
    /// it raises no new edge, so when the event says the peer has closed (`read_closed`) the socket
    /// is read until `WouldBlock` or end of stream.
    ///
    /// Returns the number of bytes read.
    pub fn read_available(&mut self, scratch: &mut [u8], read_closed: bool) -> usize {
        if !self.connected {
            return 0;
        }
        self.read_paused = false;
        let mut total = 0;
        loop {
            if !self.conn.wants_read() {
                // Backpressure (chunked rows) or a closed session: only the former resumes.
                self.read_paused = !matches!(self.conn.state(), crate::conn::State::Closed);
                break;
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.conn.handle_eof();
                    break;
                }
                Ok(n) => {
                    total += n;
                    self.conn.handle_input(&scratch[..n]);
                    if n < scratch.len() && !read_closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.conn.handle_eof();
                    break;
                }
            }
        }
        total
    }

    /// Whether reading was paused by backpressure with input possibly left in the socket: read again
    /// (e.g. [`Reactor::read_now`](super::Reactor::read_now)) once results have been taken.
    pub fn read_paused(&self) -> bool {
        self.read_paused
    }

    /// Sends Terminate (best effort, without blocking) and shuts the socket down.
    pub fn close(&mut self) {
        if self.connected && !matches!(self.conn.state(), crate::conn::State::Closed) {
            self.conn.terminate();
            self.flush();
        }
        self.stream.shutdown();
    }
}

impl Source for PgSocket {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.interest = Some(interests);
        self.stream.register(registry, token, interests)
    }
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.interest = Some(interests);
        self.stream.reregister(registry, token, interests)
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.interest = None;
        self.stream.deregister(registry)
    }
}

/// libpq's wording of an OS error: the `strerror` text without Rust's ` (os error N)` suffix.
pub fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The hint libpq adds after a refused or missing server.
pub(crate) fn connect_failure_text(peer: &Peer, e: &io::Error) -> String {
    let mut text = os_error_text(e);
    match (peer, e.kind()) {
        (Peer::Tcp(_), io::ErrorKind::ConnectionRefused) => text
            .push_str("\n\tIs the server running on that host and accepting TCP/IP connections?"),
        (Peer::Unix(_), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => text
            .push_str(
                "\n\tIs the server running locally and accepting connections on that socket?",
            ),
        _ => {}
    }
    text
}

/// An error for an I/O failure of the connection itself.
pub(crate) fn io_error(e: io::Error) -> Error {
    Error::new(ErrorKind::Io, os_error_text(&e))
}

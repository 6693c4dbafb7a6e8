//! One connection's socket: a [`Connection`] over a non-blocking mio stream, through a
//! [`Transport`]. See [`PgSocket`].

use std::io::{self, Read, Write};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::stream::{OpenError, Peer, SocketOptions, Stream};
use super::tls::TlsPlan;
use super::transport::{Handshake, TlsTransport, Transport};
use crate::conn::{Connection, State};
use crate::error::{Error, ErrorKind};

/// A [`Connection`] and its socket: moves bytes stream <-> [`Transport`] <-> session. Implements
/// [`mio::event::Source`], so it can live in a caller's own `Poll`: register it, call
/// [`PgSocket::on_event`] for its events and [`update_registration`](PgSocket::update_registration)
/// after every call that can change what the session wants (an event, a
/// [`command`](PgSocket::command), taking a result).
///
/// Whether the socket reads is the session's call alone: it is registered for readability exactly
/// while [`Connection::wants_read`] says so, and `update_registration` is the one place that follows
/// the session. When chunked-rows backpressure stops the session's reading, the socket drops its read
/// interest, and bytes may stay queued in the kernel. Once the caller has taken enough results, the
/// session wants input again; no new readiness edge will announce the bytes already queued, so
/// `update_registration` reads them at once before registering again. Every path that takes results
/// goes through it ([`Reactor::poll_result`](super::Reactor::poll_result); any other path can
/// notice with [`PgSocket::read_stalled`]).
///
/// Fairness: one call reads at most [`Budgets::read_per_turn`](crate::conn::Budgets::read_per_turn)
/// bytes, so that a server sending without pause cannot hold the thread. When a call stops there,
/// the socket may still hold bytes whose readiness edge has already been consumed:
/// [`PgSocket::pending_read`] says so, and the caller must read again without waiting for an event
/// (the [`Reactor`](super::Reactor) does, at its next turn, after the other connections).
#[derive(Debug)]
pub struct PgSocket {
    stream: Stream,
    transport: Transport,
    conn: Connection,
    peer: Peer,
    /// How this connection runs TLS when its session asks for it; `None`: it never does.
    tls: Option<TlsPlan>,
    connected: bool,
    connect_error: Option<io::Error>,
    /// The interest the stream is registered with, if any: a mirror of the OS registration, not a
    /// decision (see [`wanted_interest`](PgSocket::wanted_interest)).
    interest: Option<Interest>,
    /// Output was just sent: the answer may already be here (see [`PgSocket::take_read_hint`]).
    read_hint: bool,
    /// Sends to let pass without setting `read_hint`, after an early read found nothing.
    hint_skip: u8,
    /// How many sends the next miss lets pass: doubles (plus one) with every miss in a row, from
    /// [`HINT_BACKOFF_MIN`] up to `u8::MAX`; a hit starts it over.
    hint_backoff: u8,
    /// The last read stopped at the per-turn budget: bytes may wait with no readiness edge to come.
    pending_read: bool,
    /// The startup is over and no TLS handshake runs: [`check_tls`](PgSocket::check_tls) has
    /// nothing left to do (it runs several times per round trip otherwise).
    tls_settled: bool,
    /// The socket was put in blocking mode for [`read_waiting`](PgSocket::read_waiting) (Linux:
    /// every other read and write passes `MSG_DONTWAIT`).
    blocking: bool,
}

/// After an early read found nothing, how many sends go by before the next early read. After misses
/// in a row the pause doubles (plus one) up to `u8::MAX`: a connection whose answers never come that
/// fast pays one empty read in 256 sends.
const HINT_BACKOFF_MIN: u8 = 15;

impl PgSocket {
    /// Starts a non-blocking connect to `peer` with libpq's default socket options; `conn` is the
    /// session that will run over it.
    pub fn connect(peer: Peer, conn: Connection) -> io::Result<PgSocket> {
        Ok(PgSocket::over(Stream::connect(&peer)?, peer, conn))
    }

    /// Starts a non-blocking connect to `peer`, setting `options` on a TCP socket (keepalives).
    pub fn connect_with(
        peer: Peer,
        conn: Connection,
        options: &SocketOptions,
    ) -> Result<PgSocket, OpenError> {
        Ok(PgSocket::over(Stream::open(&peer, options)?, peer, conn))
    }

    fn over(stream: Stream, peer: Peer, conn: Connection) -> PgSocket {
        PgSocket {
            stream,
            transport: Transport::Plain,
            conn,
            peer,
            tls: None,
            connected: false,
            connect_error: None,
            interest: None,
            read_hint: false,
            hint_skip: 0,
            hint_backoff: HINT_BACKOFF_MIN,
            pending_read: false,
            tls_settled: false,
            blocking: false,
        }
    }

    /// Sets how this connection runs TLS when its session asks for it ([`Connection::tls_wanted`]):
    /// the handshake starts then, through the same non-blocking socket.
    pub fn with_tls(mut self, plan: Option<TlsPlan>) -> PgSocket {
        self.tls = plan;
        self
    }

    /// The TLS plan this connection was opened with (also what a cancel request uses).
    pub fn tls_plan(&self) -> Option<&TlsPlan> {
        self.tls.as_ref()
    }

    /// Whether the connection is encrypted (libpq's `PQsslInUse`).
    pub fn ssl_in_use(&self) -> bool {
        self.transport.is_tls()
    }

    /// An attribute of the TLS session as libpq's `PQsslAttribute` names them (`library`,
    /// `protocol`, `cipher`, `key_bits`, `compression`); `None` for an unknown one or without TLS.
    pub fn ssl_attribute(&self, attribute: &str) -> Option<String> {
        if !self.transport.is_tls() {
            return None;
        }
        super::tls::session_attribute(self.transport.tls_session()?, attribute)
    }

    /// Starts the TLS handshake when the session asks for it, and tells the session when it has
    /// finished (or failed a check after it).
    #[inline]
    fn check_tls(&mut self) {
        if !self.tls_settled {
            self.check_tls_slow();
        }
    }

    #[cold]
    fn check_tls_slow(&mut self) {
        if matches!(self.transport, Transport::Plain) && self.conn.tls_wanted() {
            match self.tls.as_ref().map(|plan| (plan.start(), plan.direct)) {
                Some((Ok(session), direct)) => {
                    self.transport = Transport::Tls(Box::new(TlsTransport::new(session, direct)));
                }
                Some((Err(e), _)) => self.conn.handle_tls_failed(e),
                None => self.conn.handle_tls_failed(tls_failure(
                    "SSL is not available on this connection".into(),
                )),
            }
        }
        match self.transport.take_handshake() {
            Handshake::Pending => {}
            Handshake::Established(end_point) => self.conn.handle_tls_established(end_point),
            Handshake::Failed(text) => self.conn.handle_tls_failed(tls_failure(text)),
        }
        // A session never goes back to its startup, and a handshake only starts during it.
        self.tls_settled = self.conn.state() != State::Startup && !self.transport.is_handshaking();
    }

    /// Whether to read: the session wants input, or its TLS handshake runs.
    fn wants_input(&self) -> bool {
        self.conn.wants_read()
            || (self.transport.is_handshaking() && self.conn.state() == State::Startup)
    }

    /// The session.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The session, mutably: to read its state or take notifications. A command (a query) goes
    /// through [`command`](Self::command), which sends what it queued; taking results through
    /// [`Reactor::poll_result`](super::Reactor::poll_result) (or, on a caller's own `Poll`, followed
    /// by [`update_registration`](Self::update_registration)) resumes reading after backpressure.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Runs a command on the session (`|c| c.send_query(sql)`, ...) and writes what it queued, as far
    /// as the socket takes it (the rest goes out on writable events).
    #[inline]
    pub fn command<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let result = f(&mut self.conn);
        self.flush();
        result
    }

    /// The address in use.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The TCP stream, for a TCP connection (to read its socket options back, for instance).
    pub fn tcp_stream(&self) -> Option<&mio::net::TcpStream> {
        self.stream.tcp()
    }

    /// Whether the TCP/unix connect has completed.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The interest this socket needs now: while the connect is in progress, both; then readable
    /// while the session wants input, writable while output waits.
    pub fn wanted_interest(&self) -> Option<Interest> {
        if self.connect_error.is_some() {
            return None;
        }
        if !self.connected {
            return Some(Interest::READABLE | Interest::WRITABLE);
        }
        let read = self.wants_input().then_some(Interest::READABLE);
        let write = self
            .transport
            .wants_write(&self.conn)
            .then_some(Interest::WRITABLE);
        match (read, write) {
            (Some(r), Some(w)) => Some(r | w),
            (r, w) => r.or(w),
        }
    }

    /// Whether the last read stopped at the per-turn budget
    /// ([`Budgets::read_per_turn`](crate::conn::Budgets::read_per_turn)) while the session still
    /// wanted input: the socket may hold bytes whose readiness edge was already consumed, so read
    /// again ([`on_event`](Self::on_event) or [`read_available`](Self::read_available)) without
    /// waiting for readiness, after serving the other connections.
    pub fn pending_read(&self) -> bool {
        self.pending_read && self.wants_input()
    }

    /// Whether the session wants input while the socket is not registered for it: reading was
    /// paused by backpressure and the caller has since taken results. Bytes may be queued with no
    /// readiness edge to come; [`update_registration`](Self::update_registration) reads them.
    pub fn read_stalled(&self) -> bool {
        // Registered for readability (the steady state) first: one comparison.
        !self.registered_for_input() && self.connected && self.conn.wants_read()
    }

    /// Whether the stream is registered for readability (then reading is not
    /// [`read_stalled`](Self::read_stalled)).
    #[inline]
    pub(crate) fn registered_for_input(&self) -> bool {
        self.interest.is_some_and(|i| i.is_readable())
    }

    /// Brings the registration with `registry` in line with what the session wants. Where the
    /// session wants input again after a pause ([`read_stalled`](Self::read_stalled)), first reads
    /// what the socket already holds (until it would block or the session pauses again). Returns the
    /// number of bytes read so.
    #[inline]
    pub fn update_registration(&mut self, registry: &Registry, token: Token) -> io::Result<usize> {
        if self.registration_current() {
            return Ok(0);
        }
        self.update_registration_slow(registry, token)
    }

    /// The steady state, checked without computing [`wanted_interest`](Self::wanted_interest):
    /// registered for readability alone, connected, the session wants input and nothing waits to
    /// be written. (Registered for readability means not [`read_stalled`](Self::read_stalled).)
    #[inline]
    pub(crate) fn registration_current(&self) -> bool {
        self.interest == Some(Interest::READABLE)
            && self.connected
            && self.conn.wants_read()
            && !self.transport.wants_write(&self.conn)
    }

    #[inline(never)]
    fn update_registration_slow(&mut self, registry: &Registry, token: Token) -> io::Result<usize> {
        let mut resumed = 0;
        if self.read_stalled() {
            // Until `WouldBlock`: the bytes queued while paused raised their edge long ago.
            // The thread's read buffer may be in use: this can run inside a readiness event.
            resumed = super::with_free_scratch(|scratch| self.read_available(scratch, true));
            // Reading may have produced output (CopyFail, authentication replies).
            self.flush();
        }
        let wanted = self.wanted_interest();
        if wanted != self.interest {
            match (self.interest, wanted) {
                (None, Some(i)) => self.stream.register(registry, token, i)?,
                (Some(_), Some(i)) => self.stream.reregister(registry, token, i)?,
                (Some(_), None) => self.stream.deregister(registry)?,
                (None, None) => {}
            }
            self.interest = wanted;
        }
        Ok(resumed)
    }

    /// Removes the stream from `registry` (if registered). Named apart from
    /// [`Source::deregister`], which this type also implements.
    pub fn detach(&mut self, registry: &Registry) {
        if self.interest.take().is_some() {
            let _ = self.stream.deregister(registry);
        }
    }

    /// Handles a readiness event (or a spurious wake-up): completes the connect, writes pending output,
    /// reads available input. I/O failures end the session (the connection reports them); a failed
    /// TCP/unix connect is kept for [`take_connect_error`](Self::take_connect_error), so the caller can
    /// try the next address.
    #[inline]
    pub fn on_event(&mut self, scratch: &mut [u8], read_closed: bool) {
        // A failed connect leaves `connected` false.
        if !self.connected && !self.complete_connect() {
            return;
        }
        self.flush();
        self.read_available(scratch, read_closed);
        // Reading may have produced output (authentication replies, CopyFail).
        self.flush();
    }

    /// An event before the connect has completed: whether it has now (a failure is kept for
    /// [`take_connect_error`](Self::take_connect_error)).
    #[cold]
    fn complete_connect(&mut self) -> bool {
        if self.connect_error.is_some() {
            return false;
        }
        match self.stream.check_connected() {
            Ok(true) => {
                self.connected = true;
                true
            }
            Ok(false) => false,
            Err(e) => {
                self.connect_error = Some(e);
                false
            }
        }
    }

    /// The error of a failed TCP/unix connect, once.
    pub fn take_connect_error(&mut self) -> Option<io::Error> {
        self.connect_error.take()
    }

    /// Whether the TCP/unix connect failed.
    pub fn connect_failed(&self) -> bool {
        self.connect_error.is_some()
    }

    /// Whether the registration already follows a session with output waiting: registered for
    /// both readability and writability, connected, the session wants input and output waits (what
    /// [`wanted_interest`](Self::wanted_interest) would say), so that
    /// [`update_registration`](Self::update_registration) has nothing to do. The steady state of
    /// a pipeline being queued.
    #[inline]
    pub(crate) fn registered_for_output(&self) -> bool {
        self.interest == Some(Interest::READABLE | Interest::WRITABLE)
            && self.connected
            && self.conn.wants_read()
            && self.transport.wants_write(&self.conn)
    }

    /// Writes pending output until it is all sent or the socket would block. Commands
    /// ([`command`](Self::command)) and events do this themselves.
    #[inline]
    pub(crate) fn flush(&mut self) {
        // Nothing to write and no handshake to watch: the common case after a read.
        if self.connected && (!self.tls_settled || self.transport.wants_write(&self.conn)) {
            self.flush_out();
        }
    }

    #[inline(never)]
    fn flush_out(&mut self) {
        let sent = if self.is_plain() {
            self.write_plain()
        } else {
            self.write_transport()
        };
        if sent {
            if self.hint_skip == 0 {
                self.read_hint = true;
            } else {
                self.hint_skip -= 1;
            }
        }
    }

    /// The steady state of an unencrypted connection: the startup is over and the session's bytes
    /// go to the stream as they are.
    #[inline]
    fn is_plain(&self) -> bool {
        self.tls_settled && matches!(self.transport, Transport::Plain)
    }

    /// [`flush_out`](Self::flush_out) without TLS: the session's output straight to the stream,
    /// usually in one write. Returns whether anything was sent.
    #[inline]
    fn write_plain(&mut self) -> bool {
        // The common case first: all of it in one write.
        let out = self.conn.pending_output();
        let len = out.len();
        if len == 0 {
            return false;
        }
        match self.stream.write(out) {
            Ok(n) if n == len => {
                self.conn.consume_output(n);
                true
            }
            r => self.write_plain_rest(r),
        }
    }

    /// [`write_plain`](Self::write_plain) after a first write `first` that did not take it all.
    #[cold]
    #[inline(never)]
    fn write_plain_rest(&mut self, first: io::Result<usize>) -> bool {
        let mut sent = false;
        let mut result = Some(first);
        loop {
            let out = self.conn.pending_output();
            let len = out.len();
            if len == 0 {
                return sent;
            }
            let written = match result.take() {
                Some(r) => r,
                None => self.stream.write(out),
            };
            match written {
                Ok(0) => {
                    self.conn.handle_eof();
                    return sent;
                }
                Ok(n) => {
                    self.conn.consume_output(n);
                    sent = true;
                    if n == len {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return sent,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The peer is gone; what it sent before closing may still be readable.
                    self.transport.discard_output(&mut self.conn);
                    return sent;
                }
            }
        }
    }

    /// [`flush_out`](Self::flush_out) through the transport (TLS, or during the startup).
    #[cold]
    fn write_transport(&mut self) -> bool {
        self.check_tls();
        let mut sent = false;
        loop {
            self.transport.take_plaintext(&mut self.conn);
            if !self.transport.wants_write(&self.conn) {
                break;
            }
            match self.transport.write_tls(&mut self.stream, &mut self.conn) {
                Ok(0) => {
                    self.conn.handle_eof();
                    break;
                }
                Ok(_) => sent = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The peer is gone; what it sent before closing may still be readable.
                    self.transport.discard_output(&mut self.conn);
                    break;
                }
            }
        }
        sent
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

    /// Reads whatever input is available without blocking and hands it to the session, while the
    /// session wants input (backpressure stops it; the registration follows, see [`PgSocket`]).
    ///
    /// mio's contract is to read until `WouldBlock`. On Linux a short read ends the loop instead when
    /// `read_closed` is false: epoll's edge for a stream socket rises whenever data is added to its
    /// receive queue, so a read that returned less than asked for drained the queue, and any data
    /// arriving later raises a new edge; the `WouldBlock` read would be a wasted syscall on every
    /// round trip. The exception is an end of stream queued behind the data: it raises no new edge,
    /// so when the event says the peer has closed (`read_closed`), or the caller cannot count on an
    /// edge, the loop goes on to `WouldBlock` or the end of stream. Elsewhere (kqueue) the loop
    /// always does.
    ///
    /// At most [`Budgets::read_per_turn`](crate::conn::Budgets::read_per_turn) bytes are read (see
    /// [`pending_read`](Self::pending_read)). Returns the number of bytes read.
    pub fn read_available(&mut self, scratch: &mut [u8], read_closed: bool) -> usize {
        if self.connected && self.is_plain() {
            return self.read_plain(scratch, read_closed).0;
        }
        self.read_transport(scratch, read_closed)
    }

    /// [`read_available`](Self::read_available) through the transport (TLS, or during the startup).
    #[inline(never)]
    fn read_transport(&mut self, scratch: &mut [u8], read_closed: bool) -> usize {
        self.pending_read = false;
        if !self.connected {
            return 0;
        }
        let budget = self.conn.budgets().read_per_turn.max(1);
        let mut total = 0;
        while self.wants_input() {
            if total >= budget {
                // Fairness: the rest waits for the next turn, which must not wait for an edge.
                self.pending_read = true;
                break;
            }
            let want = scratch.len().min(budget - total).max(1);
            let scratch = &mut scratch[..want];
            match self.transport.read_tls(&mut self.stream, scratch) {
                Ok(0) => {
                    self.input_ended(None);
                    break;
                }
                Ok(n) => {
                    total += n;
                    let conn = &mut self.conn;
                    let closed = match self
                        .transport
                        .read_plaintext(scratch, n, |bytes| conn.handle_input(bytes))
                    {
                        Ok(closed) => closed,
                        Err(text) => {
                            self.tls_failed(text);
                            break;
                        }
                    };
                    self.check_tls();
                    if closed {
                        self.input_ended(None);
                        break;
                    }
                    // A short read drained the socket (see above), whatever the transport.
                    if cfg!(target_os = "linux") && n < scratch.len() && !read_closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.input_ended(Some(e));
                    break;
                }
            }
        }
        total
    }

    /// [`read_available`](Self::read_available) on a connected [plain](Self::is_plain) socket: the
    /// stream's bytes go to the session as they are. Returns the bytes read and whether the session
    /// still wants input after them (false, to be safe, after the end of the stream or a failure).
    #[inline]
    fn read_plain(&mut self, scratch: &mut [u8], read_closed: bool) -> (usize, bool) {
        self.pending_read = false;
        let budget = self.conn.budgets().read_per_turn.max(1);
        let mut total = 0;
        let mut wants = self.conn.wants_read();
        while wants {
            if total >= budget {
                self.pending_read = true;
                break;
            }
            let want = scratch.len().min(budget - total).max(1);
            let buf = &mut scratch[..want];
            match self.stream.read(buf) {
                Ok(0) => {
                    self.conn.handle_eof();
                    return (total, false);
                }
                Ok(n) => {
                    total += n;
                    self.conn.handle_input(&buf[..n]);
                    wants = self.conn.wants_read();
                    // A short read drained the socket (see `read_available`).
                    if cfg!(target_os = "linux") && n < want && !read_closed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.conn.handle_io_error(e);
                    return (total, false);
                }
            }
        }
        (total, wants)
    }

    /// Reads on a connected [plain](Self::is_plain) socket with nothing to write, then brings the
    /// registration in line: without asking the session again where it still wants input and
    /// nothing waits to be written (the steady state). `None` (nothing done) on any other socket.
    #[inline(always)]
    fn read_plain_registered(
        &mut self,
        scratch: &mut [u8],
        read_closed: bool,
        registry: &Registry,
        token: Token,
    ) -> Option<usize> {
        if !(self.connected && self.is_plain() && !self.conn.wants_write()) {
            return None;
        }
        let (n, wants) = self.read_plain(scratch, read_closed);
        self.after_plain_read(wants, registry, token);
        Some(n)
    }

    /// After a read on a plain socket (`wants`: the session still wants input): writes what reading
    /// produced (CopyFail, replies) and brings the registration in line, unless the steady state
    /// (registered for reading alone, nothing to write) still holds.
    #[inline(always)]
    fn after_plain_read(&mut self, wants: bool, registry: &Registry, token: Token) {
        if !(wants && self.interest == Some(Interest::READABLE) && !self.conn.wants_write()) {
            self.flush();
            let _ = self.update_registration(registry, token);
        }
    }

    /// Waits for input by sleeping in one `recv` instead of waiting for readiness and then reading
    /// (one system call where the other way takes two), then reads on as
    /// [`read_plain_registered`](Self::read_plain_registered) does. Only on a connected
    /// [plain](Self::is_plain) TCP socket that wants input, has nothing to write and no input left over
    /// from the last turn; `None` (nothing done) otherwise, or when the socket cannot be put in
    /// blocking mode. Returns the bytes read.
    #[cfg(target_os = "linux")]
    pub(crate) fn read_waiting(
        &mut self,
        scratch: &mut [u8],
        registry: &Registry,
        token: Token,
    ) -> Option<usize> {
        // TCP only: over a unix-domain socket a wait in `recv` costs the client more CPU than
        // waiting in `epoll_wait` and reading (measured: docs/benchmarks.md).
        if !(matches!(self.stream, Stream::Tcp(_))
            && self.connected
            && self.is_plain()
            && !self.pending_read
            && self.conn.wants_read()
            && !self.conn.wants_write())
        {
            return None;
        }
        if !self.blocking {
            self.stream.set_blocking().ok()?;
            self.blocking = true;
        }
        let want = scratch.len().min(self.conn.budgets().read_per_turn.max(1));
        let mut total = 0;
        let mut wants = false;
        match self.stream.recv_waiting(&mut scratch[..want]) {
            Ok(0) => self.conn.handle_eof(),
            Ok(n) => {
                total = n;
                self.conn.handle_input(&scratch[..n]);
                wants = self.conn.wants_read();
                if n == want && wants {
                    // More may wait: read on without sleeping, within a turn's budget.
                    let (more, still) = self.read_plain(scratch, false);
                    total += more;
                    wants = still;
                }
            }
            Err(e) => self.conn.handle_io_error(e),
        }
        self.after_plain_read(wants, registry, token);
        Some(total)
    }

    /// [`on_event`](Self::on_event), then
    /// [`update_registration`](Self::update_registration) (whose error is dropped: the next
    /// update tries again).
    #[inline(always)]
    pub(crate) fn on_event_registered(
        &mut self,
        scratch: &mut [u8],
        read_closed: bool,
        registry: &Registry,
        token: Token,
    ) {
        if self
            .read_plain_registered(scratch, read_closed, registry, token)
            .is_none()
        {
            self.on_event(scratch, read_closed);
            let _ = self.update_registration(registry, token);
        }
    }

    /// Outside an event: [`read_available`](Self::read_available), writes what reading produced
    /// and brings the registration in line (its error dropped). Returns the bytes read.
    #[inline]
    pub(crate) fn read_registered(
        &mut self,
        scratch: &mut [u8],
        registry: &Registry,
        token: Token,
    ) -> usize {
        if let Some(n) = self.read_plain_registered(scratch, false, registry, token) {
            return n;
        }
        let n = self.read_available(scratch, false);
        // Reading may have produced output (authentication replies, CopyFail).
        self.flush();
        let _ = self.update_registration(registry, token);
        n
    }

    /// The socket's end (or failure): during a TLS handshake libpq's `SSL SYSCALL error`, the
    /// handshake's failure; otherwise the session's end of input.
    fn input_ended(&mut self, e: Option<io::Error>) {
        if self.transport.is_handshaking() && self.conn.state() == State::Startup {
            let text = super::tls::syscall_error_text(e.as_ref());
            self.conn.handle_tls_failed(tls_failure(text));
            return;
        }
        match e {
            None => self.conn.handle_eof(),
            Some(e) => self.conn.handle_io_error(e),
        }
    }

    /// A TLS error (a bad record, a failed verification, an alert): sends rustls's alert (best
    /// effort), then fails the handshake, or ends a session already running.
    fn tls_failed(&mut self, text: String) {
        while self.transport.wants_write(&self.conn) {
            match self.transport.write_tls(&mut self.stream, &mut self.conn) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        self.transport.discard_output(&mut self.conn);
        // During startup (TLS 1.3 servers refuse a client certificate after the client's Finished)
        // the connection attempt fails with the TLS text, as libpq's; later the session ends (08006).
        if self.conn.state() == State::Startup {
            self.conn.handle_tls_failed(tls_failure(text));
        } else {
            self.conn.handle_io_error(io::Error::other(text));
        }
    }

    /// Sends Terminate (best effort, without blocking) and shuts the socket down.
    pub fn close(&mut self) {
        if self.connected && !matches!(self.conn.state(), crate::conn::State::Closed) {
            self.command(|conn| {
                conn.terminate();
                Ok(())
            })
            .ok();
            self.transport.send_close_notify();
            self.flush();
        }
        self.stream.shutdown();
    }
}

/// A TLS failure of this attempt, for the session (the driver adds the `connection to server at`
/// prefix).
fn tls_failure(text: String) -> Error {
    Error::new(ErrorKind::Connect, text)
        .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use mio::{Events, Poll};

    use super::*;
    use crate::conn::{PollResult, StartupConfig, State};

    const TOKEN: Token = Token(7);

    fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
    }

    fn data_row(out: &mut Vec<u8>, value: &[u8]) {
        let mut body = 1u16.to_be_bytes().to_vec();
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
        message(out, b'D', &body);
    }

    /// Handles the socket's events for at most `timeout`; returns how many there were.
    fn turn(poll: &mut Poll, socket: &mut PgSocket, timeout: Duration) -> usize {
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(timeout)).expect("poll");
        let n = events.iter().count();
        for event in events.iter() {
            let mut scratch = vec![0u8; 64 * 1024];
            socket.on_event(&mut scratch, event.is_read_closed());
        }
        socket
            .update_registration(poll.registry(), TOKEN)
            .expect("registration");
        n
    }

    /// Chunked-rows backpressure pauses a socket with bytes still queued in the kernel; once results
    /// are taken, `update_registration` reads them at once, without waiting for a readiness event
    /// (none would come for bytes that arrived before the pause).
    #[test]
    fn a_resumed_socket_reads_what_waits_without_an_edge() {
        let (poll, mut socket, _server) = stalled_socket();
        let read = socket
            .update_registration(poll.registry(), TOKEN)
            .expect("resume");
        assert!(
            read > 0,
            "the bytes queued during the pause were read at once"
        );
        assert!(!socket.read_stalled());
    }

    /// A readiness event for a stalled socket (paused by backpressure, its results since taken some
    /// other way than the reactor's `poll_result`, nothing queued in the kernel) is handled while the
    /// reactor holds the thread's read buffer: bringing the registration in line reads with a buffer
    /// of its own instead of borrowing the one in use (which panicked).
    #[test]
    fn a_stalled_socket_resumes_inside_an_event() {
        let (mut poll, mut socket, mut server) = started_socket();
        socket.conn_mut().set_budgets(crate::conn::Budgets {
            results: 8 << 10,
            ..Default::default()
        });
        socket
            .command(|c| c.send_query_chunked("SELECT x", 1))
            .expect("send");
        // 20 rows of 1,000 bytes at once, no end: more than the results budget.
        let mut rows = Vec::new();
        message(&mut rows, b'T', &one_text_column());
        for _ in 0..20 {
            data_row(&mut rows, &[b'v'; 1000]);
        }
        server.write_all(&rows).expect("rows");
        while socket.conn().wants_read() {
            assert!(
                turn(&mut poll, &mut socket, Duration::from_secs(5)) > 0,
                "rows"
            );
        }
        // Taken straight from the session: every row, none left in the kernel.
        let mut taken = 0;
        while taken < 20 {
            match socket.conn_mut().poll_result() {
                PollResult::Ready(Ok(_)) => taken += 1,
                other => panic!("row {taken}: {other:?}"),
            }
        }
        assert!(socket.read_stalled());
        super::super::with_scratch(|scratch| {
            socket.on_event_registered(scratch, false, poll.registry(), TOKEN)
        });
        assert!(!socket.read_stalled());
        assert_eq!(socket.interest, Some(Interest::READABLE));
    }

    /// A session over one end of a socket pair, past a trust startup, registered with its poll;
    /// the other end plays the server.
    fn started_socket() -> (Poll, PgSocket, mio::net::UnixStream) {
        let (client, mut server) = mio::net::UnixStream::pair().expect("socket pair");
        let mut poll = Poll::new().expect("poll");
        let startup = StartupConfig::builder("u", "d", "pgdblinktestnonce").build();
        let mut socket = PgSocket::over(
            Stream::Unix(client),
            Peer::Unix("pair".into()),
            Connection::new(startup),
        );
        socket
            .update_registration(poll.registry(), TOKEN)
            .expect("register");
        let mut hello = Vec::new();
        message(&mut hello, b'R', &0i32.to_be_bytes());
        message(&mut hello, b'Z', b"I");
        server.write_all(&hello).expect("server hello");
        while socket.conn().state() == State::Startup {
            assert!(
                turn(&mut poll, &mut socket, Duration::from_secs(5)) > 0,
                "startup"
            );
        }
        (poll, socket, server)
    }

    /// The body of a RowDescription of one text column `x`.
    fn one_text_column() -> Vec<u8> {
        let mut description = 1u16.to_be_bytes().to_vec();
        description.extend_from_slice(b"x\0");
        description.extend_from_slice(&[0; 6]);
        description.extend_from_slice(&25u32.to_be_bytes());
        description.extend_from_slice(&(-1i16).to_be_bytes());
        description.extend_from_slice(&(-1i32).to_be_bytes());
        description.extend_from_slice(&0i16.to_be_bytes());
        description
    }

    /// A socket paused by chunked-rows backpressure with bytes still queued in the kernel, whose
    /// results were then taken until the session wants input again: stalled.
    fn stalled_socket() -> (Poll, PgSocket, mio::net::UnixStream) {
        let (mut poll, mut socket, mut server) = started_socket();
        socket
            .command(|c| c.send_query_chunked("SELECT x", 1))
            .expect("send");

        // The server sends rows until the client pauses and the socket holds bytes it cannot
        // take: first the socket's buffers fill, while the client reads, then backpressure stops it.
        let mut rows = Vec::new();
        message(&mut rows, b'T', &one_text_column());
        let value = [b'v'; 1000];
        let mut pending = rows;
        let mut sent_rows = 0usize;
        let mut stuck = 0;
        while stuck < 3 {
            while pending.len() < 64 * 1024 {
                data_row(&mut pending, &value);
                sent_rows += 1;
            }
            match server.write(&pending) {
                Ok(n) => {
                    pending.drain(..n);
                    stuck = 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !socket.conn().wants_read() {
                        stuck += 1;
                    }
                }
                Err(e) => panic!("server write: {e}"),
            }
            turn(&mut poll, &mut socket, Duration::from_millis(1));
            assert!(sent_rows < 100_000, "backpressure never engaged");
        }
        assert!(!socket.conn().wants_read(), "paused");
        assert!(
            socket.wanted_interest().is_none_or(|i| !i.is_readable()),
            "a paused socket does not ask for readability"
        );
        assert!(!socket.read_stalled());

        // Take results until the session wants input again: the socket is stalled, and updating its
        // registration reads at once.
        while !socket.conn().wants_read() {
            assert!(matches!(
                socket.conn_mut().poll_result(),
                PollResult::Ready(Ok(_))
            ));
        }
        assert!(socket.read_stalled());
        (poll, socket, server)
    }
}

//! The sans-IO connection: one PostgreSQL session as a state machine.
//!
//! A [`Connection`] owns no socket, reads no clock and draws no random numbers. The driver (or a test)
//! moves bytes: what the server sent goes in through [`Connection::handle_input`] (in chunks of any
//! size) and [`Connection::handle_eof`]; what the client must send comes out of
//! [`Connection::pending_output`] and is acknowledged with [`Connection::consume_output`]. Results come
//! out of [`Connection::poll_result`]; notices and notifications out of their own queues.
//!
//! The order to drive it in, after every read or command:
//! 1. write `pending_output()` until it is empty (or the socket would block);
//! 2. check [`Connection::state`] (startup finished? connection closed?);
//! 3. take results with `poll_result`, notifications with `take_notifications`, notices with
//!    `take_notices`.
//!
//! Inside, by phase: `startup` takes the session from the first byte to the first ReadyForQuery
//! (SSLRequest, authentication, protocol negotiation; its state, password included, is dropped and
//! wiped there); `query` keeps one entry per request sent of what the server still owes, so requests
//! can be in flight back to back and the rule "after an error, skip to the sync point" lives in one
//! place; `result` builds the row sets and queues results and end markers for `poll_result`.
//!
//! Text is read as UTF-8: a `client_encoding` other than `UTF8` ends the session with an error, and
//! with a `SQL_ASCII` server (which does not check text) every value is checked, a value that is not
//! UTF-8 failing its statement with the server's own error (22021).
//!
//! ```
//! use pgdblink::conn::{Connection, PollResult, StartupConfig, State};
//!
//! // The SCRAM nonce must be random in real use (the driver draws it from the OS).
//! let config = StartupConfig::builder("alice", "db1", "rOprNGfwEbeRWgbNEkqO").build();
//! let mut conn = Connection::new(config);
//! // The client speaks first: a StartupMessage.
//! assert_eq!(conn.pending_output()[4..8], [0, 3, 0, 0]);
//! let n = conn.pending_output().len();
//! conn.consume_output(n);
//!
//! // The server: AuthenticationOk, BackendKeyData, ReadyForQuery(idle).
//! conn.handle_input(b"R\0\0\0\x08\0\0\0\0");
//! conn.handle_input(b"K\0\0\0\x0c\0\0\x10\x93\x11\x22\x33\x44Z\0\0\0\x05I");
//! assert_eq!(conn.state(), State::Idle);
//!
//! conn.send_query("SELECT 1").unwrap();
//! conn.consume_output(conn.pending_output().len());
//! assert!(conn.is_busy());
//! conn.handle_input(b"T\0\0\0\x21\0\x01?column?\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0");
//! conn.handle_input(b"D\0\0\0\x0b\0\x01\0\0\0\x011C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I");
//! let PollResult::Ready(Ok(result)) = conn.poll_result() else { panic!() };
//! assert_eq!(result.rows().unwrap().get(0, 0), Some("1"));
//! assert!(matches!(conn.poll_result(), PollResult::Done));
//! ```

mod budgets;
pub mod cancel;
mod extended;
mod input;
mod last_query;
mod query;
mod result;
mod startup;
#[cfg(test)]
mod tests;
mod types;

pub use budgets::Budgets;
pub use extended::{COPY_QUEUE_TEXT, PipelineStatus};
pub use query::CopyDirection;
pub use result::{Column, Notification, QueryResult, Row, RowIter, Rows};
pub use startup::{StartupConfig, StartupConfigBuilder};
pub use types::FromText;

use std::fmt;
use std::sync::Arc;

use bytes::{Buf, BytesMut};

use crate::error::{Error, ErrorKind};
use crate::protocol::backend::{BackendMessage, TransactionStatus};
use crate::protocol::{self, Decoded, Limits, frontend};
use budgets::{Bounded, Params};
use query::{CopyQueue, Requests};
use result::{Outbox, Output};
use startup::Startup;

/// libpq's text for a connection the server closed.
pub const SERVER_CLOSED_TEXT: &str = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.";
/// The text for a command sent while another is in progress.
pub const BUSY_TEXT: &str = "another command is already in progress";
/// The text for a command sent on a closed connection.
pub const NO_CONNECTION_TEXT: &str = "no connection to the server";
/// The error text for a COPY TO STDOUT, which pgdblink drains and reports.
pub const COPY_OUT_TEXT: &str = "COPY TO STDOUT is not supported here: use copy_out";
/// The CopyFail message pgdblink answers a COPY FROM STDIN with.
pub const COPY_IN_TEXT: &str = "COPY FROM STDIN is not supported here: use copy_in";

/// The default results budget ([`Budgets::results`]): the bytes of results (and of COPY TO STDOUT
/// data) the connection queues before it stops reading from the server until the caller takes
/// results (backpressure).
pub const MAX_QUEUED_ROW_BYTES: usize = 1 << 20;

/// The error of a whole row set longer than [`Budgets::max_result_bytes`] (SQLSTATE 54000).
pub const RESULT_TOO_LARGE_TEXT: &str = "result exceeds max_result_bytes";

/// How much the receive buffer grows at least when it needs room.
const RECV_RESERVE: usize = 32 * 1024;

/// The most notices a connection can keep with the default notice budget (1 MiB over at least
/// the fixed cost of each): older ones are dropped and counted.
pub const MAX_QUEUED_NOTICES: usize = (1 << 20) / budgets::ENTRY_COST;

/// The coarse state of a connection.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Startup and authentication are in progress.
    Startup,
    /// Ready for a query: nothing in flight, every result and the end marker delivered.
    Idle,
    /// A query is in flight, or its results (or the end marker) have not all been taken.
    Busy,
    /// The connection is closed: startup failed, the server closed it, or the protocol was violated.
    /// [`Connection::fatal_error`] says why.
    Closed,
}

/// Where TLS negotiation stands on a connection ([`Connection::tls_negotiation`]): what the
/// driver's sslmode fallbacks (libpq's `prefer` and `allow`) go by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsNegotiation {
    /// This attempt does not negotiate TLS (`sslmode=disable`, a Unix socket, `try_tls(false)`,
    /// or a transport without TLS under `prefer`/`allow`).
    NotAttempted,
    /// The negotiation ended without TLS on this socket: the server answered `N` (the session
    /// goes on in plaintext when sslmode allows it, else fails with `server does not support SSL,
    /// but SSL was required`), `E`, a byte that is no answer, or plaintext came right after `S`.
    /// libpq 17 does not fall back to a new connection after any of these.
    Refused,
    /// The session waits for the driver to run the TLS handshake
    /// ([`Connection::tls_wanted`]).
    Handshaking,
    /// The handshake finished ([`Connection::handle_tls_established`]): the session runs over TLS.
    Established,
    /// The handshake failed ([`Connection::handle_tls_failed`]): under `sslmode=prefer` libpq
    /// retries in plaintext on a new connection.
    Failed,
}

/// What [`Connection::poll_result`] returns.
#[must_use]
#[derive(Debug)]
pub enum PollResult {
    /// The next result of the query in flight: `Err` for a statement the server failed (or a lost
    /// connection).
    Ready(Result<QueryResult, Error>),
    /// More input is needed before the next result or the end marker.
    Pending,
    /// The end marker: every result has been taken. Returned again on every further call.
    Done,
}

/// Where the session stands.
#[derive(Debug)]
enum Phase {
    /// Startup and authentication; the state only they need is boxed, so it neither widens the
    /// struct every query walks nor outlives them (the password is wiped when it is dropped).
    Startup(Box<Startup>),
    /// ReadyForQuery was received: requests may be sent.
    Ready,
    /// Closed for good.
    Closed,
}

/// One PostgreSQL session, sans-IO. See the [module documentation](self).
pub struct Connection {
    phase: Phase,
    recv: BytesMut,
    /// The copy of the current input pass its rows are made text in as they are taken.
    mirror: result::Mirror,
    send: Vec<u8>,
    send_pos: usize,
    limits: Limits,
    budgets: Budgets,
    /// The requests in flight, oldest first: what the server owes.
    requests: Requests,
    /// Results and end markers for the caller.
    outbox: Outbox,
    /// `server_encoding` is `SQL_ASCII`: the server does not check text, so the client checks that
    /// every value is UTF-8.
    check_utf8: bool,
    eof: bool,
    protocol_minor: u32,
    tx_status: TransactionStatus,
    /// The last RowDescription's bytes and the columns built from them.
    last_columns: Option<(Vec<u8>, Arc<[Column]>)>,
    backend_key: Option<(u32, Vec<u8>)>,
    params: Params,
    notifications: Bounded<Notification>,
    notices: Bounded<Error>,
    error_buffer: String,
    /// Bytes dropped from the front of `error_buffer` (its budget).
    error_dropped: u64,
    /// Bytes of replies to the server's requests queued since the output was last all sent.
    replies: usize,
    /// Processing stopped at a budget with input left in `recv`: it resumes when the caller takes
    /// what is queued.
    stalled: bool,
    /// The input ended while `stalled`: the end is reported once the input before it is processed.
    pending_eof: Option<Option<std::io::Error>>,
    /// The text of the last query sent, for the cursor of an error with a position.
    last_query: last_query::LastQuery,
    fatal: Option<Error>,
    /// Where TLS negotiation stands.
    tls: TlsNegotiation,
    /// libpq's pipeline mode is on.
    pipeline: bool,
    /// Pipeline mode: the caller took an error (or an aborted query) and not yet the sync's
    /// [`QueryResult::PipelineSync`].
    pipeline_aborted: bool,
    /// COPY TO STDOUT data waiting for the caller.
    copy_out: CopyQueue,
    /// Tests: every message through the general path, to check the fast path against it.
    #[cfg(test)]
    slow_only: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("phase", &self.phase)
            .field("tx_status", &self.tx_status)
            .field("requests", &self.requests.len())
            .field("results", &self.outbox.len())
            .field("fatal", &self.fatal)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Output not yet sent when the connection is dropped may carry the password.
        if matches!(self.phase, Phase::Startup(_)) || self.fatal.is_some() {
            startup::wipe(&mut self.send);
        }
    }
}

impl Connection {
    /// Starts a session: queues the SSLRequest or the StartupMessage, or (with
    /// `sslnegotiation=direct`) waits for the TLS handshake at once.
    pub fn new(config: StartupConfig) -> Connection {
        let mut conn = Connection {
            limits: config.limits(),
            budgets: config.budgets(),
            protocol_minor: (config.max_protocol_version().code() & 0xffff) as u32,
            phase: Phase::Startup(Box::new(Startup::new(config))),
            recv: BytesMut::new(),
            mirror: result::Mirror::default(),
            send: Vec::with_capacity(256),
            send_pos: 0,
            requests: Requests::default(),
            outbox: Outbox::default(),
            check_utf8: false,
            eof: false,
            tx_status: TransactionStatus::Idle,
            last_columns: None,
            backend_key: None,
            params: Params::default(),
            notifications: Bounded::default(),
            notices: Bounded::default(),
            error_buffer: String::new(),
            error_dropped: 0,
            replies: 0,
            stalled: false,
            pending_eof: None,
            last_query: Default::default(),
            fatal: None,
            tls: TlsNegotiation::NotAttempted,
            pipeline: false,
            pipeline_aborted: false,
            copy_out: CopyQueue::default(),
            #[cfg(test)]
            slow_only: false,
        };
        conn.begin_startup();
        conn
    }

    // ----- getters -----

    /// The coarse state.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Startup(_) => State::Startup,
            Phase::Ready if self.requests.is_empty() && self.outbox.is_empty() => State::Idle,
            Phase::Ready => State::Busy,
            Phase::Closed => State::Closed,
        }
    }

    /// Why the connection is closed, if it is: the startup failure, the protocol violation, or the lost
    /// connection. Sticky.
    pub fn fatal_error(&self) -> Option<&Error> {
        self.fatal.as_ref()
    }

    /// Whether [`poll_result`](Self::poll_result) would return [`PollResult::Pending`]: a query is in
    /// flight, no result is ready and the end has not been reached. A closed connection is not busy.
    pub fn is_busy(&self) -> bool {
        matches!(self.phase, Phase::Ready) && !self.outbox.has_ready() && !self.requests.is_empty()
    }

    /// Bytes the client must send to the server.
    pub fn pending_output(&self) -> &[u8] {
        &self.send[self.send_pos..]
    }

    /// Whether there is output to send.
    pub fn wants_write(&self) -> bool {
        self.send_pos < self.send.len()
    }

    /// Whether the connection expects input: it is open, the server has not closed, and no
    /// backpressure holds: fewer than [`Budgets::results`] bytes of results (or of COPY data)
    /// wait to be taken, and fewer than [`Budgets::output`] bytes of replies to the server's
    /// requests wait to be sent. While it is false, input already received waits unprocessed.
    #[inline]
    pub fn wants_read(&self) -> bool {
        !(matches!(self.phase, Phase::Closed) | self.eof | self.over_budget())
    }

    /// Whether a back-pressure budget is reached: input is not processed until it is not.
    #[inline]
    fn over_budget(&self) -> bool {
        self.over_budget_with(self.outbox.bytes())
    }

    /// [`over_budget`](Self::over_budget) with `queued` bytes of results queued.
    #[inline(always)]
    fn over_budget_with(&self, queued: usize) -> bool {
        // One comparison for both result queues, and `|` rather than `||`: no branch per check on
        // a path the driver takes several times a query.
        (queued.max(self.copy_out.bytes()) >= self.budgets.results)
            | (self.replies >= self.budgets.output)
    }

    /// Goes on processing the input that waits since a budget stopped it, if the budgets allow now.
    /// Called wherever the caller takes what is queued.
    #[inline]
    fn resume(&mut self) {
        if self.stalled {
            self.resume_stalled();
        }
    }

    /// [`resume`](Self::resume) once processing has stopped at a budget: out of line, so that
    /// the callers (taking a result above all) stay small.
    #[cold]
    #[inline(never)]
    fn resume_stalled(&mut self) {
        if self.stalled && !self.over_budget() {
            self.stalled = false;
            self.process();
            if !self.stalled
                && let Some(source) = self.pending_eof.take()
            {
                self.end_input(source);
            }
        }
    }

    /// The budgets this connection runs with.
    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    /// Changes the budgets. Queues already over a smaller budget shrink as they are taken (or, for
    /// the drop-oldest ones, at the next arrival).
    pub fn set_budgets(&mut self, budgets: Budgets) {
        self.budgets = budgets;
        self.resume();
    }

    /// The bytes the server has made this connection hold for the caller, by the counts the
    /// budgets use: queued results and COPY data, a whole row set in progress, notices,
    /// notifications, the error-message buffer, server parameters and unsent replies to the
    /// server's requests (not the caller's own output, nor received bytes not processed yet, see
    /// [`buffered_input`](Self::buffered_input)). Stays within [`Budgets::total`] (and
    /// [`Budgets::max_result_bytes`] for a whole row set) plus about one message per queue.
    pub fn held_bytes(&self) -> usize {
        self.outbox.bytes()
            + self.copy_out.bytes()
            + self.requests.building_bytes()
            + self.notices.bytes()
            + self.notifications.bytes()
            + self.error_buffer.len()
            + self.params.bytes()
            + self.replies
    }

    /// Marks `n` bytes of [`pending_output`](Self::pending_output) as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.send_pos = (self.send_pos + n).min(self.send.len());
        if self.send_pos == self.send.len() {
            self.replies = 0;
            match &mut self.phase {
                Phase::Startup(startup) => {
                    self.send_pos = 0;
                    startup.output_sent();
                    // What was sent may have carried the password: wipe it, not just forget it.
                    startup::wipe(&mut self.send);
                }
                // Sent bytes stay, up to a bound, and the next messages go after them: the last
                // query's text is read from there (see `LastQuery`).
                _ if self.send.len() <= last_query::SENT_KEEP => {}
                _ => {
                    self.send_pos = 0;
                    self.last_query.release(&mut self.send);
                }
            }
            self.resume();
        }
    }

    /// How many received bytes are buffered: the start of a message waiting for its rest, and input
    /// a budget keeps unprocessed (at most what was fed while [`wants_read`](Self::wants_read) was
    /// false, which a driver does not do, plus one read).
    #[doc(hidden)]
    pub fn buffered_input(&self) -> usize {
        self.recv.len()
    }

    /// The backend's process id and cancel key, once known.
    pub fn backend_key(&self) -> Option<(u32, &[u8])> {
        self.backend_key
            .as_ref()
            .map(|(pid, key)| (*pid, key.as_slice()))
    }

    /// A server parameter reported by ParameterStatus (`server_version`, `client_encoding`, ...).
    /// At most [`Budgets::parameters`] names and [`Budgets::parameter_bytes`] bytes are kept besides
    /// the ones PostgreSQL reports itself; see [`parameters_dropped`](Self::parameters_dropped).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// How many ParameterStatus messages naming a new parameter were ignored because the
    /// parameter budgets were full.
    pub fn parameters_dropped(&self) -> u64 {
        self.params.dropped()
    }

    /// The transaction status from the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.tx_status
    }

    /// The negotiated protocol minor version (0 or 2).
    pub fn protocol_minor(&self) -> u32 {
        self.protocol_minor
    }

    /// libpq's error-message buffer (`PQerrorMessage`): formatted errors of the current query cycle,
    /// each ending in a newline; cleared when a query starts on an idle connection and after connect.
    /// Bounded by [`Budgets::error_message`]: past it the oldest half is dropped (see
    /// [`error_bytes_dropped`](Self::error_bytes_dropped)).
    pub fn error_message(&self) -> &str {
        &self.error_buffer
    }

    /// Whether notifications wait to be taken with [`take_notifications`](Self::take_notifications).
    pub fn has_notifications(&self) -> bool {
        self.notifications.bytes() > 0
    }

    /// How many bytes were dropped from the front of the error-message buffer (its budget).
    pub fn error_bytes_dropped(&self) -> u64 {
        self.error_dropped
    }

    /// Notifications received so far, in arrival order; they are forgotten. At most
    /// [`Budgets::notifications`] bytes are kept; older ones are dropped and counted by
    /// [`notifications_dropped`](Self::notifications_dropped).
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        self.notifications.take()
    }

    /// How many notifications were dropped because their queue was full.
    pub fn notifications_dropped(&self) -> u64 {
        self.notifications.dropped()
    }

    /// Notices received so far, in arrival order; they are forgotten. At most [`Budgets::notices`]
    /// bytes are kept; older ones are dropped and counted by [`notices_dropped`](Self::notices_dropped).
    pub fn take_notices(&mut self) -> Vec<Error> {
        self.notices.take()
    }

    /// How many notices were dropped because the queue was full.
    pub fn notices_dropped(&self) -> u64 {
        self.notices.dropped()
    }

    // ----- TLS -----

    /// Whether the session waits for the driver to run the TLS handshake now: after an `S` answer
    /// to SSLRequest, or from the start with `sslnegotiation=direct` (the driver offers ALPN
    /// `postgresql`). Meanwhile the session has no output and takes no plaintext input: bytes fed to
    /// [`handle_input`](Self::handle_input) now fail the connection (`received unencrypted data
    /// after SSL response`, CVE-2021-23222) and must not be given to the TLS library. The
    /// SSLRequest must have been written out ([`pending_output`](Self::pending_output) empty)
    /// before the handshake starts.
    pub fn tls_wanted(&self) -> bool {
        self.awaits_tls_handshake()
    }

    /// The TLS handshake finished. `server_end_point` is the `tls-server-end-point`
    /// channel-binding data (RFC 5929 section 4.1: the hash of the server certificate's DER with
    /// the hash of its signature algorithm, SHA-256 for MD5 and SHA-1), `None` when the certificate
    /// names no such hash (Ed25519, Ed448). The StartupMessage is queued, for the transport to
    /// encrypt; from now on [`handle_input`](Self::handle_input) takes the decrypted stream. Does
    /// nothing unless [`tls_wanted`](Self::tls_wanted).
    pub fn handle_tls_established(&mut self, server_end_point: Option<Vec<u8>>) {
        self.tls_established(server_end_point);
    }

    /// The TLS handshake failed with `error` (the driver's text): the connection fails with it, and
    /// [`tls_negotiation`](Self::tls_negotiation) says [`TlsNegotiation::Failed`] if the session was
    /// waiting for the handshake. Also usable for a TLS failure later on (the stage then stays
    /// [`TlsNegotiation::Established`]).
    pub fn handle_tls_failed(&mut self, error: Error) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if self.tls == TlsNegotiation::Handshaking {
            self.tls = TlsNegotiation::Failed;
        }
        self.fail(error);
    }

    /// Whether the session runs over TLS (libpq's `PQsslInUse`).
    pub fn tls_in_use(&self) -> bool {
        self.tls == TlsNegotiation::Established
    }

    /// Where TLS negotiation stands, for the driver's sslmode fallbacks.
    pub fn tls_negotiation(&self) -> TlsNegotiation {
        self.tls
    }

    // ----- commands -----

    /// Dispatches a simple Query. Allowed only in [`State::Idle`]; otherwise the error text is appended
    /// to the error buffer (as libpq does) and returned.
    ///
    /// In pipeline mode the ONE statement goes through the extended protocol, as
    /// [`send_query_params`](Self::send_query_params) with no parameters.
    pub fn send_query(&mut self, sql: &str) -> Result<(), Error> {
        if self.pipeline {
            return self.send_query_pipelined(sql, None);
        }
        self.start_query(sql, None)
    }

    /// Like [`send_query`](Self::send_query), in chunked-rows mode (libpq's `PQsetChunkedRowsMode`;
    /// `max_rows == 1` is its single-row mode): each row set is delivered as several [`Rows`] results
    /// of at most `max_rows` rows, every one but the last marked [`Rows::is_partial`], the last carrying
    /// the command tag. Rows are not accumulated, and while more than [`MAX_QUEUED_ROW_BYTES`] of rows
    /// wait to be taken the connection stops reading ([`wants_read`](Self::wants_read) is false), so a
    /// result of any size streams through bounded memory.
    pub fn send_query_chunked(&mut self, sql: &str, max_rows: usize) -> Result<(), Error> {
        if self.pipeline {
            return self.send_query_pipelined(sql, Some(max_rows.max(1)));
        }
        self.start_query(sql, Some(max_rows.max(1)))
    }

    /// Queues a Terminate message; the connection is closed afterwards (the caller closes the socket
    /// once the output is written).
    pub fn terminate(&mut self) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        // Before the answer to SSLRequest the server expects a TLS handshake or a startup packet:
        // a Terminate there would be a malformed packet (found by the conn_state fuzz target).
        if !self.awaits_ssl_response() {
            frontend::terminate(&mut self.send);
        }
        self.close(
            Error::new(ErrorKind::ConnectionLost, NO_CONNECTION_TEXT)
                .with_code(crate::sqlstate::CONNECTION_DOES_NOT_EXIST),
        );
    }

    /// The next result, the end marker, or "not yet". Taking a result may let input stopped by the
    /// results budget be processed.
    #[inline]
    pub fn poll_result(&mut self) -> PollResult {
        // Taking a result never stops processing: where it was not stopped, nothing resumes,
        // and the result goes straight to the caller.
        if self.stalled {
            return self.poll_result_stalled();
        }
        self.take_result()
    }

    /// [`poll_result`](Self::poll_result) while processing is stopped at a budget.
    #[cold]
    #[inline(never)]
    fn poll_result_stalled(&mut self) -> PollResult {
        let r = self.take_result();
        self.resume();
        r
    }

    /// The next result, the end marker, or "not yet", taken from the queue.
    #[inline(always)]
    fn take_result(&mut self) -> PollResult {
        match self.outbox.pop_marked() {
            // Only a result marked as it was queued changes a pipeline's aborted status.
            Some((Output::Result(r), true)) if self.pipeline => {
                self.pipeline_taken(&r);
                PollResult::Ready(r)
            }
            Some((Output::Result(r), _)) => PollResult::Ready(r),
            Some((Output::End, _)) => PollResult::Done,
            None if self.is_busy() => PollResult::Pending,
            None => PollResult::Done,
        }
    }
}

/// Whether a `client_encoding` value is UTF-8 (the server reports `UTF8`; accept its aliases).
fn is_utf8_name(name: &str) -> bool {
    ["UTF8", "UTF-8", "UNICODE"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// Server text as a `String`: the bytes as they are when valid UTF-8 (always, with the UTF8 client
/// encoding pgdblink asks for), else with replacement characters.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn error_from_fields(fields: crate::protocol::backend::ErrorFields<'_>) -> Error {
    let owned: Vec<(u8, String)> = fields
        .iter()
        .map(|(c, v)| (c, String::from_utf8_lossy(v).into_owned()))
        .collect();
    Error::from_fields(owned.iter().map(|(c, v)| (*c, v.as_str())))
}

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
//! ```
//! use pgdblink::conn::{Connection, PollResult, StartupConfig, State};
//!
//! let mut conn = Connection::new(StartupConfig::new("alice", "db1"));
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

pub mod cancel;
mod result;

pub use result::{Column, Notification, QueryResult, Row, RowIter, Rows};

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};

use crate::auth::{self, ChannelBinding, ScramClient, ScramKeyCache, ScramLimits};
use crate::error::{Error, ErrorKind};
use crate::protocol::backend::{Authentication, BackendMessage, TransactionStatus};
use crate::protocol::{self, Decoded, Limits, frontend};

/// libpq's text for a connection the server closed.
pub const SERVER_CLOSED_TEXT: &str = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.";
/// The text for a command sent while another is in progress.
pub const BUSY_TEXT: &str = "another command is already in progress";
/// The text for a command sent on a closed connection.
pub const NO_CONNECTION_TEXT: &str = "no connection to the server";
/// The error text for a COPY TO STDOUT, which pgdblink drains and reports.
pub const COPY_OUT_TEXT: &str = "COPY TO STDOUT is not supported";
/// The CopyFail message pgdblink answers a COPY FROM STDIN with.
pub const COPY_IN_TEXT: &str = "COPY FROM STDIN is not supported";

/// In chunked-rows mode, the bytes of row data the connection queues before it stops reading from
/// the server until the caller takes results (backpressure).
pub const MAX_QUEUED_ROW_BYTES: usize = 1 << 20;

/// How much the receive buffer grows at least when it needs room.
const RECV_RESERVE: usize = 32 * 1024;

/// How many notices a connection keeps before dropping the oldest.
pub const MAX_QUEUED_NOTICES: usize = 1024;

/// Everything the connection needs to start a session.
#[derive(Clone)]
pub struct StartupConfig {
    /// The user name (also used for MD5).
    pub user: String,
    /// The password, if any.
    pub password: Option<String>,
    /// Startup parameters in order (`user` and `database` included).
    pub params: Vec<(String, String)>,
    /// Whether to send an SSLRequest first (and fail, since TLS is not implemented, unless the server
    /// answers `N` and `ssl_required` is false).
    pub ssl_request: bool,
    /// Whether TLS is required (`sslmode=require` or stronger).
    pub ssl_required: bool,
    /// Protocol version to request: [`frontend::PROTOCOL_3_0`] or [`frontend::PROTOCOL_3_2`].
    pub protocol: u32,
    /// The lowest minor version acceptable after negotiation (0 or 2).
    pub min_minor: u32,
    /// `channel_binding` setting.
    pub channel_binding: ChannelBinding,
    /// The SCRAM client nonce (printable). Handed in by the driver; tests use a fixed one.
    pub scram_nonce: String,
    /// Limits on SCRAM parameters.
    pub scram_limits: ScramLimits,
    /// Decoder limits.
    pub limits: Limits,
    /// A cache of SCRAM keys derived from (password, salt, iteration count), shared between
    /// connections: a reconnect to the same server skips PBKDF2. The keys are as secret as the password.
    pub scram_cache: Option<Arc<Mutex<ScramKeyCache>>>,
}

impl StartupConfig {
    /// A protocol 3.0 startup for `user` on `database`, asking for `client_encoding` UTF8, with no
    /// password, no SSLRequest and a fixed SCRAM nonce (replace it with a random one in real use).
    pub fn new(user: &str, database: &str) -> StartupConfig {
        StartupConfig {
            user: user.to_owned(),
            password: None,
            params: vec![
                ("user".to_owned(), user.to_owned()),
                ("database".to_owned(), database.to_owned()),
                ("client_encoding".to_owned(), "UTF8".to_owned()),
            ],
            ssl_request: false,
            ssl_required: false,
            protocol: frontend::PROTOCOL_3_0,
            min_minor: 0,
            channel_binding: ChannelBinding::Prefer,
            scram_nonce: "pgdblinkpgdblinkpgdblink".to_owned(),
            scram_limits: ScramLimits::default(),
            limits: Limits::default(),
            scram_cache: None,
        }
    }

    /// Sets the password.
    pub fn password(mut self, password: &str) -> StartupConfig {
        self.password = Some(password.to_owned());
        self
    }
}

impl fmt::Debug for StartupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartupConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("params", &self.params)
            .field("ssl_request", &self.ssl_request)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

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

#[derive(Debug)]
enum Phase {
    /// Waiting for the one-byte answer to SSLRequest.
    SslResponse,
    /// StartupMessage sent; expecting `R`, `E` or `v`.
    AwaitingAuth,
    /// In a SASL exchange.
    Sasl,
    /// Authenticated; collecting ParameterStatus/BackendKeyData until ReadyForQuery.
    AwaitingReady,
    Idle,
    Busy,
    Closed,
}

#[derive(Debug, Default)]
enum CopyState {
    #[default]
    None,
    /// Draining a COPY TO STDOUT.
    Out,
    /// CopyFail sent for a COPY FROM STDIN.
    In,
}

/// One PostgreSQL session, sans-IO. See the [module documentation](self).
pub struct Connection {
    phase: Phase,
    /// Boxed, like `scram`: read only while the session starts, so neither widens the struct every
    /// query walks (with hundreds of connections, each line of it is a cache miss).
    config: Box<StartupConfig>,
    recv: BytesMut,
    send: Vec<u8>,
    send_pos: usize,
    scram: Option<Box<ScramClient>>,
    sasl_done: bool,
    protocol_minor: u32,
    backend_key: Option<(u32, Vec<u8>)>,
    params: Vec<(String, String)>,
    tx_status: TransactionStatus,
    /// Results ready for the caller.
    results: VecDeque<Result<QueryResult, Error>>,
    /// In chunked mode: the approximate bytes of row data in `results` and `pass_results`.
    queued_bytes: usize,
    /// Chunked-rows mode for the query in flight: deliver row sets in results of at most this many rows.
    chunk_rows: Option<usize>,
    /// Results completed in the current input pass whose rows refer to the pending chunk.
    pass_results: Vec<Result<QueryResult, Error>>,
    /// The row set under construction.
    current: Option<Rows>,
    /// The last RowDescription's bytes and the columns built from them.
    last_columns: Option<(Vec<u8>, Arc<[Column]>)>,
    copy: CopyState,
    /// ReadyForQuery (or a lost connection) ended the query in flight.
    query_done: bool,
    notifications: VecDeque<Notification>,
    notices: VecDeque<Error>,
    notices_dropped: u64,
    error_buffer: String,
    fatal: Option<Error>,
    eof: bool,
    /// The StartupMessage queued after an `N` answer to SSLRequest has not been sent yet: any byte from
    /// the server now was not asked for (CVE-2021-23222).
    startup_unsent_after_ssl: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("phase", &self.phase)
            .field("user", &self.config.user)
            .field("tx_status", &self.tx_status)
            .field("results", &self.results.len())
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts a session: queues the SSLRequest or the StartupMessage.
    pub fn new(config: StartupConfig) -> Connection {
        let mut conn = Connection {
            phase: Phase::AwaitingAuth,
            protocol_minor: config.protocol & 0xffff,
            config: Box::new(config),
            recv: BytesMut::new(),
            send: Vec::with_capacity(256),
            send_pos: 0,
            scram: None,
            sasl_done: false,
            backend_key: None,
            params: Vec::new(),
            tx_status: TransactionStatus::Idle,
            results: VecDeque::new(),
            queued_bytes: 0,
            chunk_rows: None,
            pass_results: Vec::new(),
            current: None,
            last_columns: None,
            copy: CopyState::None,
            query_done: true,
            notifications: VecDeque::new(),
            notices: VecDeque::new(),
            notices_dropped: 0,
            error_buffer: String::new(),
            fatal: None,
            eof: false,
            startup_unsent_after_ssl: false,
        };
        if conn.config.ssl_request {
            frontend::ssl_request(&mut conn.send);
            conn.phase = Phase::SslResponse;
        } else {
            conn.queue_startup();
        }
        conn
    }

    fn queue_startup(&mut self) {
        let params: Vec<(&str, &str)> = self
            .config
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match frontend::startup_message(self.config.protocol, params, &mut self.send) {
            Ok(()) => self.phase = Phase::AwaitingAuth,
            Err(e) => self.fail(Error::new(
                ErrorKind::Config,
                format!("invalid startup parameter: {e}"),
            )),
        }
    }

    // ----- getters -----

    /// The coarse state.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::SslResponse | Phase::AwaitingAuth | Phase::Sasl | Phase::AwaitingReady => {
                State::Startup
            }
            Phase::Idle => State::Idle,
            Phase::Busy => State::Busy,
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
        matches!(self.phase, Phase::Busy) && self.results.is_empty() && !self.query_done
    }

    /// Bytes the client must send to the server.
    pub fn pending_output(&self) -> &[u8] {
        &self.send[self.send_pos..]
    }

    /// Whether there is output to send.
    pub fn wants_write(&self) -> bool {
        self.send_pos < self.send.len()
    }

    /// Whether the connection expects input (it is open and the server has not closed).
    pub fn wants_read(&self) -> bool {
        let backpressure = self.chunk_rows.is_some() && self.queued_bytes >= MAX_QUEUED_ROW_BYTES;
        !(matches!(self.phase, Phase::Closed) || self.eof || backpressure)
    }

    /// Marks `n` bytes of [`pending_output`](Self::pending_output) as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.send_pos = (self.send_pos + n).min(self.send.len());
        if self.send_pos == self.send.len() {
            self.send.clear();
            self.send_pos = 0;
            self.startup_unsent_after_ssl = false;
        }
    }

    /// How many received bytes are buffered, waiting for the rest of a message (for the fuzz targets'
    /// memory property: never more than one message within the decoder's limits).
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
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
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
    pub fn error_message(&self) -> &str {
        &self.error_buffer
    }

    /// Notifications received so far, in arrival order; they are forgotten.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        self.notifications.drain(..).collect()
    }

    /// Notices received so far, in arrival order; they are forgotten. At most
    /// [`MAX_QUEUED_NOTICES`] are kept; older ones are dropped and counted by
    /// [`notices_dropped`](Self::notices_dropped).
    pub fn take_notices(&mut self) -> Vec<Error> {
        self.notices.drain(..).collect()
    }

    /// How many notices were dropped because the queue was full.
    pub fn notices_dropped(&self) -> u64 {
        self.notices_dropped
    }

    // ----- commands -----

    /// Dispatches a simple Query. Allowed only in [`State::Idle`]; otherwise the error text is appended
    /// to the error buffer (as libpq does) and returned.
    pub fn send_query(&mut self, sql: &str) -> Result<(), Error> {
        self.start_query(sql, None)
    }

    /// Like [`send_query`](Self::send_query), in chunked-rows mode (libpq's `PQsetChunkedRowsMode`;
    /// `max_rows == 1` is its single-row mode): each row set is delivered as several [`Rows`] results
    /// of at most `max_rows` rows, every one but the last marked [`Rows::is_partial`], the last carrying
    /// the command tag. Rows are not accumulated, and while more than [`MAX_QUEUED_ROW_BYTES`] of rows
    /// wait to be taken the connection stops reading ([`wants_read`](Self::wants_read) is false), so a
    /// result of any size streams through bounded memory.
    pub fn send_query_chunked(&mut self, sql: &str, max_rows: usize) -> Result<(), Error> {
        self.start_query(sql, Some(max_rows.max(1)))
    }

    fn start_query(&mut self, sql: &str, chunk_rows: Option<usize>) -> Result<(), Error> {
        match self.phase {
            Phase::Idle => {}
            Phase::Closed => {
                return Err(self.command_error(ErrorKind::ConnectionLost, NO_CONNECTION_TEXT));
            }
            Phase::Busy => return Err(self.command_error(ErrorKind::Usage, BUSY_TEXT)),
            _ => {
                return Err(self.command_error(ErrorKind::Usage, "connection is not ready yet"));
            }
        }
        self.error_buffer.clear();
        if let Err(e) = frontend::query(sql, &mut self.send) {
            return Err(self.command_error(ErrorKind::Usage, &format!("could not send query: {e}")));
        }
        self.phase = Phase::Busy;
        self.query_done = false;
        self.chunk_rows = chunk_rows;
        self.queued_bytes = 0;
        Ok(())
    }

    fn command_error(&mut self, kind: ErrorKind, text: &str) -> Error {
        self.error_buffer.push_str(text);
        self.error_buffer.push('\n');
        let e = Error::new(kind, text);
        if kind == ErrorKind::ConnectionLost {
            e.with_code(crate::sqlstate::CONNECTION_FAILURE)
        } else {
            e
        }
    }

    /// Queues a Terminate message; the connection is closed afterwards (the caller closes the socket
    /// once the output is written).
    pub fn terminate(&mut self) {
        if !matches!(self.phase, Phase::Closed) {
            // Before the answer to SSLRequest the server expects a TLS handshake or a startup packet:
            // a Terminate there would be a malformed packet (found by the conn_state fuzz target).
            if !matches!(self.phase, Phase::SslResponse) {
                frontend::terminate(&mut self.send);
            }
            self.close(
                Error::new(ErrorKind::ConnectionLost, NO_CONNECTION_TEXT)
                    .with_code(crate::sqlstate::CONNECTION_DOES_NOT_EXIST),
            );
        }
    }

    /// The next result, the end marker, or "not yet".
    pub fn poll_result(&mut self) -> PollResult {
        if let Some(r) = self.results.pop_front() {
            if self.chunk_rows.is_some() {
                self.queued_bytes = self.queued_bytes.saturating_sub(result_bytes(&r));
            }
            return PollResult::Ready(r);
        }
        match self.phase {
            Phase::Busy if self.query_done => {
                self.phase = Phase::Idle;
                PollResult::Done
            }
            Phase::Busy => PollResult::Pending,
            _ => PollResult::Done,
        }
    }

    // ----- input -----

    /// Feeds bytes received from the server (any amount, any split) and processes every complete
    /// message.
    pub fn handle_input(&mut self, data: &[u8]) {
        if matches!(self.phase, Phase::Closed) || self.eof {
            return;
        }
        if self.recv.capacity() - self.recv.len() < data.len() {
            // Reserve generously: row sets keep parts of this buffer alive (shared, not copied), and
            // the room after them serves the next reads without a new allocation.
            self.recv.reserve(data.len().max(RECV_RESERVE));
        }
        self.recv.extend_from_slice(data);
        self.process();
    }

    /// The server closed the connection (or the socket failed): a query in flight gets one error result
    /// (SQLSTATE 08006) and then the end marker; the connection is closed.
    pub fn handle_eof(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let err = if self.recv.is_empty() {
            Error::new(ErrorKind::ConnectionLost, SERVER_CLOSED_TEXT)
                .with_code(crate::sqlstate::CONNECTION_FAILURE)
        } else {
            Error::new(
                ErrorKind::ConnectionLost,
                "server closed the connection in the middle of a message",
            )
            .with_code(crate::sqlstate::CONNECTION_FAILURE)
        };
        self.fail(err);
    }

    /// Fails the connection: records the sticky error; a query in flight gets it as a result followed
    /// by the end marker; a startup fails.
    fn fail(&mut self, err: Error) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.error_buffer.push_str(&err.libpq_text());
        if matches!(self.phase, Phase::Busy) && !self.query_done {
            self.current = None;
            // Behind any result of this input pass still waiting for its chunk (see `process`).
            self.finish_result(Err(err.clone()), false);
            self.query_done = true;
        }
        self.close(err);
    }

    fn close(&mut self, err: Error) {
        // Results already queued stay retrievable (poll_result drains them before reporting Done).
        self.fatal.get_or_insert(err);
        self.phase = Phase::Closed;
        self.recv.clear();
    }

    fn process(&mut self) {
        let limits = self.config.limits;
        let mut consumed = 0usize;
        // Take the buffer out so that messages can borrow it while `self` is mutated.
        let recv = std::mem::take(&mut self.recv);
        loop {
            if matches!(self.phase, Phase::Closed) {
                break;
            }
            let buf = &recv[consumed..];
            if buf.is_empty() {
                break;
            }
            if matches!(self.phase, Phase::SslResponse) {
                consumed += 1;
                self.handle_ssl_response(buf[0]);
                continue;
            }
            if self.startup_unsent_after_ssl {
                self.fail(
                    Error::new(
                        ErrorKind::Protocol,
                        "received unencrypted data after SSL response",
                    )
                    .with_code(crate::sqlstate::PROTOCOL_VIOLATION),
                );
                break;
            }
            // The hot path: a row of the row set in progress, validated and indexed in one pass.
            if let Some(rows) = self.current.as_mut().filter(|_| {
                matches!(self.phase, Phase::Busy)
                    && !self.query_done
                    && matches!(self.copy, CopyState::None)
            }) && let Some(len) = protocol::backend::data_row_offsets(
                buf,
                &limits,
                rows.columns.len(),
                consumed,
                &mut rows.fields,
            ) {
                let values = protocol::backend::data_row_value_bytes(len, rows.columns.len());
                consumed += len;
                self.row_added(values);
                continue;
            }
            match protocol::decode(buf, &limits) {
                Ok(Decoded::Message(msg, len)) => {
                    let base = consumed;
                    consumed += len;
                    self.handle_message(msg, base, buf);
                }
                Ok(Decoded::NeedMore(_)) => break,
                Err(e) => {
                    self.fail(
                        Error::new(ErrorKind::Protocol, e.to_string())
                            .with_code(crate::sqlstate::PROTOCOL_VIOLATION),
                    );
                    break;
                }
            }
        }
        self.recv = recv;
        let rows_pending = self.current.as_ref().is_some_and(|rows| rows.pending > 0)
            || !self.pass_results.is_empty();
        if rows_pending {
            let chunk = self.recv.split_to(consumed).freeze();
            self.attach_chunk(chunk);
        } else {
            self.recv.advance(consumed);
        }
        if matches!(self.phase, Phase::Closed) {
            self.recv.clear();
        }
    }

    /// Gives the chunk just consumed to every row that refers to it.
    fn attach_chunk(&mut self, chunk: Bytes) {
        for mut r in self.pass_results.drain(..) {
            if let Ok(QueryResult::Rows(rows)) = &mut r {
                rows.attach(&chunk);
            }
            self.results.push_back(r);
        }
        if let Some(rows) = &mut self.current {
            rows.attach(&chunk);
        }
    }

    fn handle_ssl_response(&mut self, byte: u8) {
        match byte {
            b'N' if self.config.ssl_required => self.fail(
                Error::new(
                    ErrorKind::Connect,
                    "server does not support SSL, but SSL was required",
                )
                .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
            ),
            b'N' => {
                self.queue_startup();
                self.startup_unsent_after_ssl = true;
            }
            b'S' => self.fail(
                Error::new(
                    ErrorKind::Unsupported,
                    "SSL is not supported by this client (pgdblink has no TLS)",
                )
                .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
            ),
            b'E' => self.fail(
                Error::new(
                    ErrorKind::Connect,
                    "server does not support SSL, but SSL was required",
                )
                .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
            ),
            other => self.fail(
                Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "received invalid response to SSL negotiation: {}",
                        protocol::printable(other)
                    ),
                )
                .with_code(crate::sqlstate::PROTOCOL_VIOLATION),
            ),
        }
    }

    fn protocol_violation(&mut self, text: String) {
        self.fail(
            Error::new(ErrorKind::Protocol, text).with_code(crate::sqlstate::PROTOCOL_VIOLATION),
        );
    }

    fn push_notice(&mut self, notice: Error) {
        if self.notices.len() >= MAX_QUEUED_NOTICES {
            self.notices.pop_front();
            self.notices_dropped += 1;
        }
        self.notices.push_back(notice);
    }

    /// Handles one decoded message. `base` is its offset in `buf`'s underlying receive buffer, i.e.
    /// the start of `buf` in the current pass's chunk.
    fn handle_message(&mut self, msg: BackendMessage<'_>, base: usize, buf: &[u8]) {
        // Messages allowed in any state.
        match msg {
            BackendMessage::NoticeResponse(fields) => {
                let notice = error_from_fields(fields);
                self.push_notice(notice);
                return;
            }
            BackendMessage::NotificationResponse {
                pid,
                channel,
                payload,
            } => {
                self.notifications.push_back(Notification {
                    channel: String::from_utf8_lossy(channel).into_owned(),
                    pid,
                    payload: String::from_utf8_lossy(payload).into_owned(),
                });
                return;
            }
            BackendMessage::ParameterStatus { name, value } => {
                let name = String::from_utf8_lossy(name).into_owned();
                let value = String::from_utf8_lossy(value).into_owned();
                match self.params.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = value,
                    None => self.params.push((name, value)),
                }
                return;
            }
            _ => {}
        }
        match self.phase {
            Phase::AwaitingAuth | Phase::Sasl => self.handle_auth_message(msg),
            Phase::AwaitingReady => self.handle_ready_message(msg),
            Phase::Busy => self.handle_busy_message(msg, base, buf),
            Phase::Idle => self.handle_idle_message(msg),
            Phase::SslResponse | Phase::Closed => {}
        }
    }

    fn handle_auth_message(&mut self, msg: BackendMessage<'_>) {
        match msg {
            BackendMessage::Authentication(auth) => {
                if let Err(e) = self.handle_authentication(auth) {
                    self.fail(e);
                }
            }
            BackendMessage::ErrorResponse(fields) => {
                let e = error_from_fields(fields);
                self.fail(e);
            }
            BackendMessage::NegotiateProtocolVersion {
                newest_minor,
                unrecognized: _,
            } => {
                if matches!(self.phase, Phase::Sasl) {
                    return self.protocol_violation(
                        "received NegotiateProtocolVersion during authentication".into(),
                    );
                }
                // PostgreSQL sends the whole version number (3 << 16 | minor); keep the minor.
                let newest_minor = if newest_minor > 0xffff {
                    if newest_minor >> 16 != 3 {
                        return self.protocol_violation(format!(
                            "received invalid protocol negotiation message: major version {}",
                            newest_minor >> 16
                        ));
                    }
                    newest_minor & 0xffff
                } else {
                    newest_minor
                };
                let requested = self.config.protocol & 0xffff;
                if newest_minor >= requested {
                    return self.protocol_violation(format!(
                        "received invalid protocol negotiation message: server requested downgrade to a higher-numbered version ({newest_minor})"
                    ));
                }
                if newest_minor < self.config.min_minor {
                    return self.fail(
                        Error::new(
                            ErrorKind::Connect,
                            format!(
                                "server only supports protocol version 3.{newest_minor}, but min_protocol_version was set to 3.{}",
                                self.config.min_minor
                            ),
                        )
                        .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
                    );
                }
                self.protocol_minor = newest_minor;
            }
            other => self.protocol_violation(format!(
                "expected authentication request from server, but received {}",
                protocol::printable(other.tag())
            )),
        }
    }

    fn password(&self) -> Result<&str, Error> {
        match self.config.password.as_deref() {
            Some(p) if !p.is_empty() => Ok(p),
            _ => Err(
                Error::new(ErrorKind::Auth, "fe_sendauth: no password supplied")
                    .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
            ),
        }
    }

    /// The SCRAM exchange in progress, or a protocol error with `text` when none is.
    fn sasl_client(&mut self, text: &str) -> Result<&mut ScramClient, Error> {
        match (&self.phase, self.scram.as_mut()) {
            (Phase::Sasl, Some(scram)) => Ok(scram),
            _ => Err(Error::new(ErrorKind::Protocol, text)),
        }
    }

    fn handle_authentication(&mut self, auth: Authentication<'_>) -> Result<(), Error> {
        let unsupported = |text: &str| {
            Err(Error::new(ErrorKind::Unsupported, text)
                .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION))
        };
        let needs_binding = self.config.channel_binding == ChannelBinding::Require;
        // Once a SASL exchange has begun, only its continuation, its outcome and AuthenticationOk may
        // follow: a server that switches to another method now (say, cleartext) is trying to downgrade
        // the exchange, and must not get the password.
        if matches!(self.phase, Phase::Sasl)
            && !matches!(
                auth,
                Authentication::SaslContinue(_) | Authentication::SaslFinal(_) | Authentication::Ok
            )
        {
            return Err(Error::new(
                ErrorKind::Protocol,
                "unexpected authentication request during SASL exchange",
            )
            .with_code(crate::sqlstate::PROTOCOL_VIOLATION));
        }
        match auth {
            Authentication::Ok => {
                if matches!(self.phase, Phase::Sasl) && !self.sasl_done {
                    return Err(Error::new(
                        ErrorKind::Auth,
                        "server sent AuthenticationOk before SASL authentication was completed",
                    ));
                }
                if needs_binding {
                    return Err(Error::new(
                        ErrorKind::Auth,
                        "channel binding required, but server authenticated client without channel binding",
                    ));
                }
                self.phase = Phase::AwaitingReady;
                Ok(())
            }
            Authentication::CleartextPassword | Authentication::Md5Password { .. }
                if needs_binding =>
            {
                Err(Error::new(
                    ErrorKind::Auth,
                    "channel binding required but not supported by server's authentication request",
                ))
            }
            Authentication::CleartextPassword => {
                let pw = self.password()?.to_owned();
                frontend::password_message(pw.as_bytes(), &mut self.send)
                    .map_err(|e| Error::new(ErrorKind::Auth, e.to_string()))
            }
            Authentication::Md5Password { salt } => {
                let pw = self.password()?;
                let hashed = auth::md5_password(self.config.user.as_bytes(), pw.as_bytes(), salt);
                frontend::password_message(hashed.as_bytes(), &mut self.send)
                    .map_err(|e| Error::new(ErrorKind::Auth, e.to_string()))
            }
            Authentication::Sasl(mechanisms) => {
                if !matches!(self.phase, Phase::AwaitingAuth) {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "unexpected AuthenticationSASL during SASL exchange",
                    ));
                }
                let mechanism = auth::choose_sasl_mechanism(
                    mechanisms.iter(),
                    self.config.channel_binding,
                    false,
                )?;
                let pw = self.password()?;
                let scram = ScramClient::new(
                    pw.as_bytes(),
                    &self.config.scram_nonce,
                    self.config.scram_limits,
                );
                let first = scram.client_first_message();
                frontend::sasl_initial_response(mechanism, Some(&first), &mut self.send)
                    .map_err(|e| Error::new(ErrorKind::Auth, e.to_string()))?;
                self.scram = Some(Box::new(scram));
                self.phase = Phase::Sasl;
                Ok(())
            }
            Authentication::SaslContinue(data) => {
                let cache = self.config.scram_cache.clone();
                let scram = self.sasl_client(
                    "AuthenticationSASLContinue received from server, but SASL authentication was not started",
                )?;
                let reply = match &cache {
                    Some(cache) => {
                        // A poisoned lock only means another thread panicked mid-update; the cache
                        // holds whole entries, so it is still usable.
                        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                        scram.handle_server_first_cached(data, &mut cache)?
                    }
                    None => scram.handle_server_first(data)?,
                };
                frontend::sasl_response(&reply, &mut self.send)
                    .map_err(|e| Error::new(ErrorKind::Auth, e.to_string()))
            }
            Authentication::SaslFinal(data) => {
                let scram = self.sasl_client(
                    "AuthenticationSASLFinal received from server, but SASL authentication was not completed",
                )?;
                scram.handle_server_final(data)?;
                self.sasl_done = true;
                Ok(())
            }
            Authentication::KerberosV5 => unsupported("Kerberos 5 authentication not supported"),
            Authentication::Gss | Authentication::GssContinue(_) => {
                unsupported("GSSAPI authentication not supported")
            }
            Authentication::Sspi => unsupported("SSPI authentication not supported"),
            Authentication::Other { code: 1, .. } => {
                unsupported("Kerberos 4 authentication not supported")
            }
            Authentication::Other { code: 4, .. } => {
                unsupported("Crypt authentication not supported")
            }
            Authentication::Other { code, .. } => {
                unsupported(&format!("authentication method {code} not supported"))
            }
        }
    }

    fn handle_ready_message(&mut self, msg: BackendMessage<'_>) {
        match msg {
            BackendMessage::BackendKeyData { pid, key } => {
                if self.protocol_minor < 2 && key.len() != 4 {
                    return self.protocol_violation(format!(
                        "received invalid BackendKeyData message: key of {} bytes in protocol 3.0",
                        key.len()
                    ));
                }
                self.backend_key = Some((pid, key.to_vec()));
            }
            BackendMessage::ReadyForQuery(status) => {
                self.tx_status = status;
                self.phase = Phase::Idle;
                self.error_buffer.clear();
                self.scram = None;
            }
            BackendMessage::ErrorResponse(fields) => {
                let e = error_from_fields(fields);
                self.fail(e);
            }
            other => self.protocol_violation(format!(
                "unexpected message from server during startup: \"{}\"",
                protocol::printable(other.tag())
            )),
        }
    }

    fn handle_idle_message(&mut self, msg: BackendMessage<'_>) {
        match msg {
            // libpq routes an ErrorResponse on an idle connection to the notice processor; a FATAL one
            // is followed by the server closing the socket.
            BackendMessage::ErrorResponse(fields) => {
                let e = error_from_fields(fields);
                self.error_buffer.push_str(&e.libpq_text());
                self.push_notice(e);
            }
            other => {
                let text = format!(
                    "message type 0x{:02x} arrived from server while idle",
                    other.tag()
                );
                self.push_notice(Error::new(ErrorKind::Protocol, text));
            }
        }
    }

    fn finish_result(&mut self, r: Result<QueryResult, Error>, refers_pending: bool) {
        if self.chunk_rows.is_some() {
            self.queued_bytes += result_bytes(&r);
        }
        if refers_pending {
            self.pass_results.push(r);
        } else if self.pass_results.is_empty() {
            self.results.push_back(r);
        } else {
            // Keep order: results after one that waits for the chunk wait too.
            self.pass_results.push(r);
        }
    }

    /// A row's fields were appended to the row set in progress, its values `value_bytes` long: count
    /// it and them and, in chunked-rows mode, hand over a full chunk.
    fn row_added(&mut self, value_bytes: usize) {
        let Some(rows) = self.current.as_mut() else {
            return;
        };
        rows.value_bytes += value_bytes as u64;
        rows.push_pending_row();
        if let Some(max) = self.chunk_rows
            && rows.len() >= max
        {
            let columns = rows.columns.clone();
            let mut batch = std::mem::replace(rows, Rows::new(columns));
            batch.partial = true;
            let pending = batch.pending > 0;
            self.finish_result(Ok(QueryResult::Rows(batch)), pending);
        }
    }

    fn handle_busy_message(&mut self, msg: BackendMessage<'_>, base: usize, buf: &[u8]) {
        if self.query_done {
            // After ReadyForQuery nothing but the asynchronous messages handled above may arrive.
            return self.handle_idle_message(msg);
        }
        match msg {
            BackendMessage::RowDescription(desc) => {
                if self.current.is_some() {
                    return self.protocol_violation(
                        "server sent a second RowDescription before CommandComplete".into(),
                    );
                }
                // A query run again describes the same columns: reuse them instead of rebuilding.
                let columns = match &self.last_columns {
                    Some((bytes, columns)) if bytes.as_slice() == desc.as_bytes() => {
                        columns.clone()
                    }
                    _ => {
                        let columns: Arc<[Column]> = desc
                            .fields()
                            .map(|f| Column::new(text(f.name), f.type_oid))
                            .collect();
                        self.last_columns = Some((desc.as_bytes().to_vec(), columns.clone()));
                        columns
                    }
                };
                self.current = Some(Rows::new(columns));
            }
            BackendMessage::DataRow(row) => {
                if matches!(self.copy, CopyState::Out) {
                    return;
                }
                let Some(rows) = self.current.as_mut() else {
                    return self.protocol_violation(
                        "server sent data (\"D\" message) without prior row description (\"T\" message)".into(),
                    );
                };
                let ncols = rows.columns.len();
                if row.len() != ncols {
                    let n = row.len();
                    return self.protocol_violation(format!(
                        "unexpected field count in \"D\" message: {n} fields, {ncols} columns"
                    ));
                }
                // Offsets are relative to the chunk that will be frozen at the end of this pass, which
                // starts where `buf` starts minus `base`.
                let body_offset = base + offset_in(buf, row.body());
                if body_offset + row.body().len() >= protocol::backend::NULL_FIELD as usize {
                    return self.protocol_violation("row too large".into());
                }
                rows.fields.extend(row.ranges().map(|range| match range {
                    Some(r) => (body_offset + r.start) as u32,
                    None => protocol::backend::NULL_FIELD,
                }));
                self.row_added(row.value_bytes());
            }
            BackendMessage::CommandComplete { tag } => {
                match std::mem::take(&mut self.copy) {
                    CopyState::Out => {
                        self.finish_result(
                            Err(Error::new(ErrorKind::Unsupported, COPY_OUT_TEXT)
                                .with_severity("ERROR")
                                .with_code(crate::sqlstate::FEATURE_NOT_SUPPORTED)),
                            false,
                        );
                        let text = format!("ERROR:  {COPY_OUT_TEXT}\n");
                        self.error_buffer.push_str(&text);
                        return;
                    }
                    CopyState::In | CopyState::None => {}
                }
                match self.current.take() {
                    Some(mut rows) => {
                        // Borrowed, not copied, when valid UTF-8 (always, with the UTF8 encoding).
                        rows.tag = result::Tag::new(&String::from_utf8_lossy(tag));
                        let pending = rows.pending > 0;
                        self.finish_result(Ok(QueryResult::Rows(rows)), pending);
                    }
                    None => self.finish_result(Ok(QueryResult::Command(text(tag))), false),
                }
            }
            BackendMessage::EmptyQueryResponse => {
                self.finish_result(Ok(QueryResult::EmptyQuery), false);
            }
            BackendMessage::ErrorResponse(fields) => {
                let e = error_from_fields(fields);
                self.error_buffer.push_str(&e.libpq_text());
                self.current = None;
                self.copy = CopyState::None;
                self.finish_result(Err(e), false);
            }
            BackendMessage::ReadyForQuery(status) => {
                if self.current.is_some() {
                    return self.protocol_violation(
                        "server sent ReadyForQuery in the middle of a row set".into(),
                    );
                }
                self.tx_status = status;
                self.query_done = true;
                self.copy = CopyState::None;
            }
            BackendMessage::CopyOutResponse(_) => {
                self.current = None;
                self.copy = CopyState::Out;
            }
            BackendMessage::CopyInResponse(_) => {
                self.current = None;
                self.copy = CopyState::In;
                // The text has no NUL, so encoding cannot fail.
                let _ = frontend::copy_fail(COPY_IN_TEXT, &mut self.send);
            }
            BackendMessage::CopyData(_) | BackendMessage::CopyDone => {
                // Drained (COPY TO STDOUT) or, outside COPY, dropped as libpq does.
            }
            BackendMessage::BackendKeyData { .. } => {}
            BackendMessage::CopyBothResponse(_) => {
                self.protocol_violation("COPY BOTH (replication) is not supported".into())
            }
            other => self.protocol_violation(format!(
                "unexpected response from server; first received character was \"{}\"",
                protocol::printable(other.tag())
            )),
        }
    }
}

/// Server text as a `String`: the bytes as they are when valid UTF-8 (always, with the UTF8 client
/// encoding pgdblink asks for), else with replacement characters.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The approximate memory a queued result holds: its values and their offsets.
fn result_bytes(r: &Result<QueryResult, Error>) -> usize {
    match r {
        Ok(QueryResult::Rows(rows)) => rows.data_bytes(),
        _ => 0,
    }
}

/// The offset of `inner` within `outer` (a sub-slice of it).
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize)
}

fn error_from_fields(fields: crate::protocol::backend::ErrorFields<'_>) -> Error {
    let owned: Vec<(u8, String)> = fields
        .iter()
        .map(|(c, v)| (c, String::from_utf8_lossy(v).into_owned()))
        .collect();
    Error::from_fields(owned.iter().map(|(c, v)| (*c, v.as_str())))
}

//! The query side: a queue of the responses the server owes, one entry per request sent.
//!
//! Every request the client sends that the server answers gets a [`Request`] at the back of
//! [`Requests`]; the server answers in order, so its messages always belong to the front entry, and
//! the entry is popped (and its end marker queued for the caller) when its last response arrives.
//! Several requests may be in flight. The one rule for errors lives in [`Requests::skip_to_sync`].
//!
//! Per-request behaviour is a property of the entry, not of the connection: chunked-rows mode
//! ([`SimpleQuery::chunk_rows`]) and the state of the statement being answered ([`Statement`]: a row
//! set under construction, a COPY pgdblink drains or refuses, a row set refused on the client).

use std::collections::VecDeque;
use std::sync::Arc;

use super::result::{Chunk, Column, Outbox, Output, QueryResult, RowsBuilder};
use super::{
    Budgets, COPY_IN_TEXT, COPY_OUT_TEXT, Connection, Phase, RESULT_TOO_LARGE_TEXT,
    error_from_fields, text,
};
use crate::error::{Error, ErrorKind};
use crate::protocol::backend::{BackendMessage, DataRow, RowDescription, TransactionStatus};
use crate::protocol::{self, frontend};

mod copy;
mod dispatch;
mod fast;

pub(super) use copy::CopyQueue;
use dispatch::{FrontStep, front_step};

/// What the server owes for one request sent.
#[derive(Debug)]
pub(super) enum Request {
    /// A simple Query: for each statement a result (rows, a command, an empty query, an error, a
    /// refused COPY), then ReadyForQuery. A simple Query is its own sync point.
    Query(SimpleQuery),
    /// Parse -> ParseComplete: the request of `send_prepare`, whose one result (`Command("")`)
    /// is delivered here. (`prepare` is always true now: a query's own Parse is a [`Stage`] of
    /// its `Execute`.)
    Parse { prepare: bool, ends: bool },
    /// One extended query: (Parse ->) ParseComplete, Bind -> BindComplete, Describe of the
    /// portal -> RowDescription | NoData (a RowDescription starts the row set), Execute -> one
    /// statement's answer (rows, a command, an empty query, an error, a COPY). `stage` says
    /// which answer is owed next: one entry for the four messages.
    Execute {
        stage: Stage,
        q: SimpleQuery,
        ends: bool,
    },
    /// Sync -> ReadyForQuery: the sync point `skip_to_sync` stops at. In pipeline mode its result
    /// is [`QueryResult::PipelineSync`] with no end marker; outside, the end marker of the command
    /// it closes; `silent` ones (sent by pgdblink itself) deliver nothing.
    Sync { pipeline: bool, silent: bool },
    // A Flush is owed nothing and gets no entry.
}

impl Request {
    /// Whether the server answers this request with ReadyForQuery, which is where it stops
    /// skipping after an error.
    fn is_sync_point(&self) -> bool {
        matches!(self, Request::Query(_) | Request::Sync { .. })
    }

    /// Whether this is the last entry of a caller's command (its end marker is queued when it is
    /// answered, or skipped).
    fn ends_command(&self) -> bool {
        match self {
            Request::Parse { ends, .. } | Request::Execute { ends, .. } => *ends,
            _ => false,
        }
    }

    /// The statement-answering part of this entry, if it has one.
    fn query_mut(&mut self) -> Option<&mut SimpleQuery> {
        match self {
            Request::Query(q) | Request::Execute { q, .. } => Some(q),
            _ => None,
        }
    }

    fn query(&self) -> Option<&SimpleQuery> {
        match self {
            Request::Query(q) | Request::Execute { q, .. } => Some(q),
            _ => None,
        }
    }
}

/// Which answer an extended query ([`Request::Execute`]) is owed next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// ParseComplete.
    Parse,
    /// BindComplete.
    Bind,
    /// RowDescription or NoData (a ParameterDescription may come first).
    Describe,
    /// The statement's answer.
    Execute,
}

/// Which COPY the caller drives (`copy_in` / `copy_out`): the matching response starts it instead
/// of being refused or drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyDirection {
    /// COPY ... FROM STDIN: the caller sends the data.
    In,
    /// COPY ... TO STDOUT: the caller takes the data.
    Out,
}

/// A simple Query in flight.
#[derive(Debug)]
pub(super) struct SimpleQuery {
    /// Chunked-rows mode: deliver row sets in results of at most this many rows, and count their
    /// bytes for backpressure.
    chunk_rows: Option<usize>,
    /// The statement being answered.
    statement: Statement,
    /// The COPY the caller drives, if any.
    copy: Option<CopyDirection>,
    /// The bytes (whole DataRow messages) of the rows in the row set under construction: checked
    /// against [`Budgets::max_result_bytes`] for a whole row set, and in chunked-rows mode against
    /// [`Budgets::results`] (a batch is handed over early when they reach it).
    row_bytes: usize,
}

impl SimpleQuery {
    pub(super) fn new(chunk_rows: Option<usize>, copy: Option<CopyDirection>) -> SimpleQuery {
        SimpleQuery {
            chunk_rows,
            statement: Statement::Idle,
            copy,
            row_bytes: 0,
        }
    }

    /// The most bytes of rows the row set under construction may hold: a batch is handed over (in
    /// chunked-rows mode: when its rows would fill what the results budget has left, `queued`
    /// being the bytes already queued) or the row set fails (whole) beyond it.
    #[inline]
    fn row_limit(&self, budgets: &Budgets, queued: usize) -> usize {
        match self.chunk_rows {
            Some(_) => budgets.results.saturating_sub(queued),
            None => budgets.max_result_bytes,
        }
    }
}

/// The error of a whole row set longer than [`Budgets::max_result_bytes`].
fn result_too_large(limit: usize) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("{RESULT_TOO_LARGE_TEXT} ({limit} bytes)"),
    )
    .with_severity("ERROR")
    // program_limit_exceeded
    .with_code("54000")
}

/// Where the answer to the current statement of a request stands.
#[derive(Debug, Default)]
enum Statement {
    /// Between statements.
    #[default]
    Idle,
    /// A row set under construction.
    Rows(RowsBuilder),
    /// A COPY TO STDOUT, drained and reported as [`COPY_OUT_TEXT`] at its CommandComplete.
    CopyOut,
    /// A COPY FROM STDIN ended by the client (CopyFail, or CopyDone from the caller); the server's
    /// CommandComplete or error follows.
    CopyIn,
    /// A COPY FROM STDIN the caller feeds (`put_copy_data`, then `put_copy_end`).
    CopyInActive,
    /// A COPY TO STDOUT whose data the caller takes (`take_copy_data`); `done` after CopyDone.
    CopyOutActive { done: bool },
    /// A row set the client refused (a value not UTF-8): its rows and tag are dropped; its error
    /// result is already queued.
    Discard,
}

/// The requests in flight, oldest first.
#[derive(Debug, Default)]
pub(super) struct Requests {
    queue: VecDeque<Request>,
    /// After an error the server skips up to the next Sync, and no Sync is in the queue yet: the
    /// commands queued from now on get no answer of their own.
    skipping: bool,
}

impl Requests {
    /// Whether nothing is in flight.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many requests are in flight.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues a request; while the server skips to a Sync not yet sent, a command is answered on
    /// the spot with [`QueryResult::PipelineAborted`] and its end marker.
    #[inline(always)]
    pub(super) fn push(&mut self, request: Request, outbox: &mut Outbox) {
        if self.skipping && !request.is_sync_point() {
            Self::skip(request, outbox);
            return;
        }
        // Not skipping, or a sync point, which ends the skipping.
        self.skipping = false;
        self.queue.push_back(request);
    }

    /// [`push`](Self::push) while skipping: the request is answered on the spot, not queued (out
    /// of line, so that the common push moves the request once).
    #[cold]
    #[inline(never)]
    fn skip(request: Request, outbox: &mut Outbox) {
        if request.ends_command() {
            outbox.push(Output::Result(Ok(QueryResult::PipelineAborted)));
            outbox.push(Output::End);
        }
    }

    /// Whether the server skips to a Sync not yet queued.
    pub(super) fn is_skipping(&self) -> bool {
        self.skipping
    }

    /// Whether a Sync is queued.
    pub(super) fn has_sync(&self) -> bool {
        self.queue.iter().any(|r| matches!(r, Request::Sync { .. }))
    }

    /// The COPY the front request is in, for the caller to drive.
    pub(super) fn copy_state(&self) -> Option<CopyDirection> {
        match self
            .queue
            .front()
            .and_then(Request::query)
            .map(|q| &q.statement)
        {
            Some(Statement::CopyInActive) => Some(CopyDirection::In),
            Some(Statement::CopyOutActive { .. }) => Some(CopyDirection::Out),
            _ => None,
        }
    }

    /// The caller ends its COPY FROM STDIN: the server's answer follows.
    pub(super) fn end_copy_in(&mut self) {
        if let Some(q) = self.queue.front_mut().and_then(Request::query_mut)
            && matches!(q.statement, Statement::CopyInActive)
        {
            q.statement = Statement::CopyIn;
        }
    }

    /// The bytes of the rows of the row set in progress (see [`SimpleQuery::row_bytes`]).
    pub(super) fn building_bytes(&self) -> usize {
        match self.queue.front().and_then(Request::query) {
            Some(q) if matches!(q.statement, Statement::Rows(_)) => q.row_bytes,
            _ => 0,
        }
    }

    /// Whether the row set in progress (only the front request can have one) has rows in the
    /// receive buffer of this input pass.
    pub(super) fn rows_pending(&self) -> bool {
        match self.queue.front().and_then(Request::query) {
            Some(q) => matches!(&q.statement, Statement::Rows(rows) if rows.has_pending()),
            None => false,
        }
    }

    /// How many rows of the row set in progress refer to the receive buffer of this input pass.
    pub(super) fn pending_rows(&self) -> usize {
        match self.queue.front().and_then(Request::query) {
            Some(q) => match &q.statement {
                Statement::Rows(rows) => rows.pending(),
                _ => 0,
            },
            None => 0,
        }
    }

    /// Gives the rows received in this input pass their buffer, now frozen.
    pub(super) fn attach(&mut self, chunk: &Chunk) {
        if let Some(q) = self.queue.front_mut().and_then(Request::query_mut)
            && let Statement::Rows(rows) = &mut q.statement
        {
            rows.attach(chunk);
        }
    }

    /// How many caller's commands are in flight (pipeline mode queues several).
    pub(super) fn commands_in_flight(&self) -> usize {
        self.queue.iter().filter(|r| r.ends_command()).count()
    }

    /// Forgets every request (the connection closed).
    pub(super) fn clear(&mut self) {
        self.queue.clear();
        self.skipping = false;
    }

    /// The one rule for errors: after an ErrorResponse the server skips every message up to the
    /// next Sync, so the requests queued before that sync point get no answer of their own. Ends the
    /// failed front request and those unless it is itself a sync point (a simple Query, which ends
    /// with its ReadyForQuery, or a Sync), and returns how many entries ended. The failed command
    /// gets its end marker; every later command before the sync point gets
    /// [`QueryResult::PipelineAborted`] and its end marker (libpq's pipeline rule). With no sync
    /// point queued, the commands queued later are skipped too, until a Sync is queued.
    fn skip_to_sync(&mut self, outbox: &mut Outbox) -> usize {
        let mut ended = 0;
        let mut failed_ended = false;
        while let Some(front) = self.queue.front() {
            if front.is_sync_point() {
                return ended;
            }
            if front.ends_command() {
                if failed_ended {
                    outbox.push(Output::Result(Ok(QueryResult::PipelineAborted)));
                }
                outbox.push(Output::End);
                failed_ended = true;
            }
            self.queue.pop_front();
            ended += 1;
        }
        self.skipping = ended > 0;
        ended
    }
}

/// What one message did to the front request.
enum Step {
    /// Nothing for the connection to do.
    Continue,
    /// The server reported an error for the statement (already queued as a result).
    ServerError,
    /// ReadyForQuery: the request is answered.
    Ready(TransactionStatus),
    /// The front entry (of the extended protocol) is answered.
    Done,
    /// The server broke the protocol (fatal).
    Violation(String),
    /// A COPY FROM STDIN nobody feeds was answered with CopyFail.
    RefusedCopyIn,
}

/// The connection's parts a request's messages read and write.
struct Sink<'a> {
    /// The receive buffer of this input pass, which row offsets refer to.
    pass: &'a [u8],
    /// Whether to check that values are UTF-8 (`server_encoding` is `SQL_ASCII`).
    check_utf8: bool,
    outbox: &'a mut Outbox,
    error_buffer: &'a mut String,
    /// The query text an error with a position refers to, when known.
    query: Option<&'a str>,
    send: &'a mut Vec<u8>,
    last_columns: &'a mut Option<(Vec<u8>, Arc<[Column]>)>,
    copy_out: &'a mut CopyQueue,
    budgets: &'a Budgets,
}

impl SimpleQuery {
    /// Queues a result of this request.
    fn deliver(&self, outbox: &mut Outbox, r: Result<QueryResult, Error>) {
        outbox.push(Output::Result(r));
    }

    /// A row of `len` bytes was added to the row set in progress: in chunked-rows mode, hands over
    /// a full batch (or one that reached the results budget); a whole row set fails past
    /// `max_result_bytes`.
    #[inline]
    fn row_added(&mut self, len: usize, sink: &mut Sink<'_>) {
        self.row_bytes += len;
        let limit = self.row_limit(sink.budgets, sink.outbox.bytes());
        let Statement::Rows(rows) = &mut self.statement else {
            return;
        };
        match self.chunk_rows {
            Some(max) if rows.len() >= max || self.row_bytes >= limit => {
                let batch = rows.take_batch();
                self.row_bytes = 0;
                sink.outbox
                    .push(Output::Result(Ok(QueryResult::Rows(batch))));
            }
            None if self.row_bytes > limit => self.refuse_rows(result_too_large(limit), sink),
            _ => {}
        }
    }

    /// The row added last failed on the client (`e`): the statement's result is that error.
    fn refuse_rows(&mut self, e: Error, sink: &mut Sink<'_>) {
        sink.error_buffer.push_str(&e.libpq_text());
        self.statement = Statement::Discard;
        self.deliver(sink.outbox, Err(e));
    }

    /// One message for this request.
    fn handle(&mut self, msg: BackendMessage<'_>, sink: &mut Sink<'_>) -> Step {
        match msg {
            BackendMessage::RowDescription(desc) => return self.describe(&desc, sink),
            BackendMessage::DataRow(row) => return self.data_row(&row, sink),
            BackendMessage::CommandComplete { tag } => self.complete(tag, sink),
            BackendMessage::EmptyQueryResponse => {
                self.deliver(sink.outbox, Ok(QueryResult::EmptyQuery));
            }
            BackendMessage::ErrorResponse(fields) => {
                let e = error_from_fields(fields).with_query(sink.query);
                sink.error_buffer.push_str(&e.libpq_text());
                self.statement = Statement::Idle;
                self.deliver(sink.outbox, Err(e));
                return Step::ServerError;
            }
            BackendMessage::ReadyForQuery(status) => {
                if matches!(self.statement, Statement::Rows(_)) {
                    return Step::Violation(
                        "server sent ReadyForQuery in the middle of a row set".into(),
                    );
                }
                return Step::Ready(status);
            }
            BackendMessage::CopyOutResponse(_) if self.copy == Some(CopyDirection::Out) => {
                self.statement = Statement::CopyOutActive { done: false };
            }
            BackendMessage::CopyOutResponse(_) => self.statement = Statement::CopyOut,
            BackendMessage::CopyInResponse(_) if self.copy == Some(CopyDirection::In) => {
                self.statement = Statement::CopyInActive;
            }
            BackendMessage::CopyInResponse(_) => {
                self.statement = Statement::CopyIn;
                // The text has no NUL, so encoding cannot fail.
                let _ = frontend::copy_fail(COPY_IN_TEXT, sink.send);
                return Step::RefusedCopyIn;
            }
            BackendMessage::CopyData(data) => {
                if let Statement::CopyOutActive { done: false } = self.statement {
                    sink.copy_out.push(data);
                }
                // Otherwise drained (COPY TO STDOUT) or, outside COPY, dropped as libpq does.
            }
            BackendMessage::CopyDone => {
                if let Statement::CopyOutActive { done } = &mut self.statement {
                    *done = true;
                }
            }
            BackendMessage::BackendKeyData { .. } => {}
            BackendMessage::CopyBothResponse(_) => {
                return Step::Violation("COPY BOTH (replication) is not supported".into());
            }
            other => {
                return Step::Violation(format!(
                    "unexpected response from server; first received character was \"{}\"",
                    protocol::printable(other.tag())
                ));
            }
        }
        Step::Continue
    }

    /// RowDescription: a row set starts.
    fn describe(&mut self, desc: &RowDescription<'_>, sink: &mut Sink<'_>) -> Step {
        if !matches!(self.statement, Statement::Idle) {
            return Step::Violation(
                "server sent a second RowDescription before CommandComplete".into(),
            );
        }
        // A query run again describes the same columns: reuse them instead of rebuilding.
        let columns = match &*sink.last_columns {
            Some((bytes, columns)) if bytes.as_slice() == desc.as_bytes() => columns.clone(),
            _ => {
                let columns: Arc<[Column]> = desc
                    .fields()
                    .map(|f| Column::new(text(f.name), f.type_oid))
                    .collect();
                *sink.last_columns = Some((desc.as_bytes().to_vec(), columns.clone()));
                columns
            }
        };
        self.statement = Statement::Rows(RowsBuilder::new(columns));
        self.row_bytes = 0;
        Step::Continue
    }

    /// A DataRow the hot path did not take (see [`Connection::fast_data_rows`]).
    fn data_row(&mut self, row: &DataRow<'_>, sink: &mut Sink<'_>) -> Step {
        let rows = match &mut self.statement {
            Statement::Rows(rows) => rows,
            Statement::CopyOut | Statement::Discard => return Step::Continue,
            Statement::Idle
            | Statement::CopyIn
            | Statement::CopyInActive
            | Statement::CopyOutActive { .. } => {
                return Step::Violation(
                    "server sent data (\"D\" message) without prior row description (\"T\" message)"
                        .into(),
                );
            }
        };
        // Offsets are relative to the receive buffer of this pass, frozen at its end.
        if let Err(text) = rows.push_decoded(row, offset_in(sink.pass, row.body())) {
            return Step::Violation(text);
        }
        let refused = match sink.check_utf8 {
            true => rows.check_last_row_utf8(sink.pass).err(),
            false => None,
        };
        match refused {
            Some(e) => self.refuse_rows(e, sink),
            // The whole message: type, length word, field count and the field area.
            None => self.row_added(row.body().len() + 7, sink),
        }
        Step::Continue
    }

    /// CommandComplete: the statement's result.
    fn complete(&mut self, tag: &[u8], sink: &mut Sink<'_>) {
        match std::mem::take(&mut self.statement) {
            Statement::CopyOut => {
                let e = Error::new(ErrorKind::Unsupported, COPY_OUT_TEXT)
                    .with_severity("ERROR")
                    .with_code(crate::sqlstate::FEATURE_NOT_SUPPORTED);
                sink.error_buffer.push_str(&e.libpq_text());
                self.deliver(sink.outbox, Err(e));
            }
            Statement::Rows(rows) => {
                self.row_bytes = 0;
                self.deliver(sink.outbox, Ok(QueryResult::Rows(rows.finish(tag))));
            }
            Statement::Discard => {}
            Statement::Idle
            | Statement::CopyIn
            | Statement::CopyInActive
            | Statement::CopyOutActive { .. } => {
                self.deliver(sink.outbox, Ok(QueryResult::Command(text(tag))));
            }
        }
    }
}

/// The offset of `inner` within `outer` (a sub-slice of it).
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize)
}

impl Connection {
    /// Checks that a request may be sent: when idle (nothing in flight, every result and end
    /// marker taken), or at any time in pipeline mode outside COPY; otherwise the error text is
    /// appended to the error buffer (as libpq does) and returned. Clears the error buffer when idle.
    #[inline]
    pub(super) fn check_can_send(&mut self) -> Result<(), Error> {
        // The two common cases inline: idle, and pipeline mode outside COPY.
        if matches!(self.phase, Phase::Ready) {
            if self.requests.is_empty() && self.outbox.is_empty() {
                self.error_buffer.clear();
                return Ok(());
            }
            // No COPY the caller drives runs in pipeline mode: `send_copy` refuses to start one
            // there, and the mode is entered only when idle.
            if self.pipeline {
                debug_assert!(self.requests.copy_state().is_none());
                return Ok(());
            }
        }
        self.check_can_send_slow()
    }

    /// [`check_can_send`](Self::check_can_send) past its common cases (every case, in order).
    #[cold]
    #[inline(never)]
    fn check_can_send_slow(&mut self) -> Result<(), Error> {
        match self.phase {
            Phase::Ready if self.requests.is_empty() && self.outbox.is_empty() => {
                self.error_buffer.clear();
                Ok(())
            }
            Phase::Ready if self.requests.copy_state().is_some() => Err(self.command_error(
                ErrorKind::Usage,
                if self.pipeline {
                    super::extended::COPY_QUEUE_TEXT
                } else {
                    super::BUSY_TEXT
                },
            )),
            Phase::Ready if self.pipeline => Ok(()),
            Phase::Ready => Err(self.command_error(ErrorKind::Usage, super::BUSY_TEXT)),
            Phase::Closed => {
                Err(self.command_error(ErrorKind::ConnectionLost, super::NO_CONNECTION_TEXT))
            }
            Phase::Startup(_) => {
                Err(self.command_error(ErrorKind::Usage, "connection is not ready yet"))
            }
        }
    }

    /// Sends a simple Query: allowed only when idle (see [`check_can_send`](Self::check_can_send)).
    pub(super) fn start_query(
        &mut self,
        sql: &str,
        chunk_rows: Option<usize>,
    ) -> Result<(), Error> {
        self.start_simple(sql, chunk_rows, None)
    }

    /// Sends a simple Query whose COPY, if `copy` names it, the caller drives.
    #[inline]
    pub(super) fn start_simple(
        &mut self,
        sql: &str,
        chunk_rows: Option<usize>,
        copy: Option<CopyDirection>,
    ) -> Result<(), Error> {
        self.check_can_send()?;
        let mark = self.send.len();
        if let Err(e) = frontend::query(sql, &mut self.send) {
            return Err(self.encode_error(e));
        }
        // The text stays where the message has it (see `LastQuery`).
        self.last_query
            .remember_sent(mark + frontend::QUERY_TEXT_AT, sql.len());
        self.requests.push(
            Request::Query(SimpleQuery::new(chunk_rows, copy)),
            &mut self.outbox,
        );
        Ok(())
    }

    /// Queues an entry of the extended protocol (the message is already in the send buffer).
    #[inline]
    pub(super) fn push_request(&mut self, request: Request) {
        self.requests.push(request, &mut self.outbox);
    }

    /// Queues a simple Query without the idle check: several requests in flight, for the queue's
    /// tests until pipelining has its own API.
    #[cfg(test)]
    pub(super) fn queue_query_unchecked(&mut self, sql: &str, chunk_rows: Option<usize>) {
        frontend::query(sql, &mut self.send).expect("a query without NUL");
        self.requests.push(
            Request::Query(SimpleQuery::new(chunk_rows, None)),
            &mut self.outbox,
        );
    }

    /// A message that could not be encoded (a NUL in the text, a length past the protocol's):
    /// libpq's `could not send query` error. Out of line: the senders stay small.
    #[cold]
    #[inline(never)]
    pub(super) fn encode_error(&mut self, e: protocol::EncodeError) -> Error {
        self.command_error(ErrorKind::Usage, &format!("could not send query: {e}"))
    }

    pub(super) fn command_error(&mut self, kind: ErrorKind, text: &str) -> Error {
        self.error_buffer.push_str(text);
        self.error_buffer.push('\n');
        let e = Error::new(kind, text);
        if kind == ErrorKind::ConnectionLost {
            e.with_code(crate::sqlstate::CONNECTION_FAILURE)
        } else {
            e
        }
    }

    /// The COPY the caller drives now, if one is in progress.
    pub(super) fn copy_direction(&self) -> Option<CopyDirection> {
        self.requests.copy_state()
    }

    /// The hot path: adds the DataRows of the row set in progress found in `pass` from `at` on,
    /// each validated and indexed in one pass, and returns where they end (`at` when there are none).
    /// `pass` is the whole receive buffer of this input pass.
    #[inline]
    pub(in crate::conn) fn fast_data_rows(&mut self, pass: &[u8], mut at: usize) -> usize {
        let Some(q) = self.requests.queue.front_mut().and_then(Request::query_mut) else {
            return at;
        };
        let mut limit = q.row_limit(&self.budgets, self.outbox.bytes());
        let Statement::Rows(rows) = &mut q.statement else {
            return at;
        };
        let limits = self.limits;
        let plain = q.chunk_rows.is_none() && !self.check_utf8;
        let refused = loop {
            if plain {
                // Rows taken in one loop up to the row set's limit: nothing to check per row,
                // each made text in the pass's copy as it is taken.
                if rows.is_heap() {
                    // Only while no row refers to the pass yet: then all are in the copy.
                    let clean = rows.pending() == 0 && !self.outbox.needs_chunk();
                    self.mirror.start(pass, at, clean);
                }
                at = rows.push_run(pass, at, &limits, &mut q.row_bytes, limit, &mut self.mirror);
            }
            let Some(len) = pass
                .get(at..)
                .and_then(|buf| rows.push_fast(buf, &limits, at))
            else {
                return at;
            };
            at += len;
            q.row_bytes += len;
            if self.check_utf8
                && let Err(e) = rows.check_last_row_utf8(pass)
            {
                break e;
            }
            match q.chunk_rows {
                Some(max) if rows.len() >= max || q.row_bytes >= limit => {
                    let batch = rows.take_batch();
                    q.row_bytes = 0;
                    self.outbox
                        .push(Output::Result(Ok(QueryResult::Rows(batch))));
                    if self.outbox.bytes() >= self.budgets.results {
                        // Back-pressure: the caller's process loop stops here.
                        return at;
                    }
                    limit = self.budgets.results - self.outbox.bytes();
                }
                None if q.row_bytes > limit => break result_too_large(limit),
                _ => {}
            }
        };
        let mut sink = Sink {
            pass,
            check_utf8: true,
            outbox: &mut self.outbox,
            error_buffer: &mut self.error_buffer,
            query: None,
            send: &mut self.send,
            last_columns: &mut self.last_columns,
            copy_out: &mut self.copy_out,
            budgets: &self.budgets,
        };
        q.refuse_rows(refused, &mut sink);
        at
    }

    /// A message while requests are in flight (or, with none, while idle). `pass` is the receive
    /// buffer of this input pass, which `msg` borrows from.
    pub(super) fn handle_query_message(&mut self, msg: BackendMessage<'_>, pass: &[u8]) {
        // In pipeline mode the text is the last query's: an error of an earlier one shows its position
        // as a number.
        let query = match msg {
            BackendMessage::ErrorResponse(_)
                if !self.pipeline || self.requests.commands_in_flight() <= 1 =>
            {
                self.last_query.get(&self.send)
            }
            _ => None,
        };
        let queue = &mut self.requests.queue;
        let Some(front) = queue.front_mut() else {
            return self.handle_idle_message(msg);
        };
        let mut sink = Sink {
            pass,
            check_utf8: self.check_utf8,
            outbox: &mut self.outbox,
            error_buffer: &mut self.error_buffer,
            query,
            send: &mut self.send,
            last_columns: &mut self.last_columns,
            copy_out: &mut self.copy_out,
            budgets: &self.budgets,
        };
        if let BackendMessage::ErrorResponse(fields) = msg
            && !matches!(front, Request::Query(_))
        {
            // Whatever extended-protocol request failed, the error is the command's result.
            let e = error_from_fields(fields).with_query(sink.query);
            sink.error_buffer.push_str(&e.libpq_text());
            if let Some(q) = front.query_mut() {
                q.statement = Statement::Idle;
            }
            sink.outbox.push(Output::Result(Err(e)));
            self.requests.skip_to_sync(&mut self.outbox);
            return;
        }
        match front_step(queue, msg, &mut sink) {
            FrontStep::Step(step) => self.apply_step(step),
            FrontStep::Synced(status) => self.tx_status = status,
        }
    }

    /// What the connection does once the front request has handled a message.
    fn apply_step(&mut self, step: Step) {
        match step {
            Step::Continue => {}
            Step::ServerError => {
                self.requests.skip_to_sync(&mut self.outbox);
            }
            Step::Ready(status) => {
                self.tx_status = status;
                self.requests.queue.pop_front();
                self.outbox.push(Output::End);
            }
            Step::Done => {
                if let Some(done) = self.requests.queue.pop_front()
                    && done.ends_command()
                {
                    self.outbox.push(Output::End);
                }
            }
            Step::RefusedCopyIn => {
                // In the extended protocol the server ignores a Sync sent during COPY and, after the
                // CopyFail, skips to the next one: send it (libpq's PQputCopyEnd does).
                if matches!(
                    self.requests.queue.front(),
                    Some(Request::Execute {
                        stage: Stage::Execute,
                        ..
                    })
                ) {
                    frontend::sync(&mut self.send);
                    if !self.requests.has_sync() {
                        self.requests.queue.insert(
                            1,
                            Request::Sync {
                                pipeline: false,
                                silent: true,
                            },
                        );
                    }
                }
            }
            Step::Violation(text) => self.protocol_violation(text),
        }
    }

    fn handle_idle_message(&mut self, msg: BackendMessage<'_>) {
        match msg {
            // libpq routes an ErrorResponse on an idle connection to the notice processor; a FATAL one
            // is followed by the server closing the socket.
            BackendMessage::ErrorResponse(fields) => {
                let e = error_from_fields(fields);
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

    /// The connection failed: the request being answered gets `err` as its last result, and every
    /// command in flight its end marker.
    pub(super) fn fail_requests(&mut self, err: &Error) {
        if let Some(q) = self.requests.queue.front_mut().and_then(Request::query_mut) {
            q.statement = Statement::Idle;
        }
        if !self.requests.queue.is_empty() {
            self.outbox.push(Output::Result(Err(err.clone())));
        }
        let mut ends = 0;
        for r in self.requests.queue.drain(..) {
            if r.ends_command()
                || matches!(
                    r,
                    Request::Query(_)
                        | Request::Sync {
                            pipeline: false,
                            silent: false
                        }
                )
            {
                ends += 1;
            }
        }
        for _ in 0..ends {
            self.outbox.push(Output::End);
        }
    }
}

#[cfg(test)]
mod tests;

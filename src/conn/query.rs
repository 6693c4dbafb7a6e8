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

use bytes::Bytes;

use super::result::{Column, Outbox, Output, QueryResult, RowsBuilder};
use super::{COPY_IN_TEXT, COPY_OUT_TEXT, Connection, Phase, error_from_fields, text};
use crate::error::{Error, ErrorKind};
use crate::protocol::backend::{BackendMessage, DataRow, RowDescription, TransactionStatus};
use crate::protocol::{self, frontend};

/// What the server owes for one request sent.
#[derive(Debug)]
pub(super) enum Request {
    /// A simple Query: for each statement a result (rows, a command, an empty query, an error, a
    /// refused COPY), then ReadyForQuery. A simple Query is its own sync point.
    Query(SimpleQuery),
    // The extended protocol slots in here, each entry with the responses it is owed:
    //   Parse -> ParseComplete          Bind -> BindComplete          Close -> CloseComplete
    //   Describe -> [ParameterDescription] RowDescription | NoData
    //   Execute -> one statement's answer, as a `Statement` of `Query` (or PortalSuspended)
    //   Sync -> ReadyForQuery: the sync point `skip_to_sync` stops at
    // A Flush is owed nothing and gets no entry. COPY driven by the caller (copy_in/copy_out)
    // becomes further states of `Statement`.
}

impl Request {
    /// Whether the server answers this request with ReadyForQuery, which is where it stops
    /// skipping after an error.
    fn is_sync_point(&self) -> bool {
        match self {
            Request::Query(_) => true,
        }
    }
}

/// A simple Query in flight.
#[derive(Debug)]
pub(super) struct SimpleQuery {
    /// Chunked-rows mode: deliver row sets in results of at most this many rows, and count their
    /// bytes for backpressure.
    chunk_rows: Option<usize>,
    /// The statement being answered.
    statement: Statement,
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
    /// A COPY FROM STDIN answered with CopyFail; the server's error follows.
    CopyIn,
    /// A row set the client refused (a value not UTF-8): its rows and tag are dropped; its error
    /// result is already queued.
    Discard,
}

/// The requests in flight, oldest first.
#[derive(Debug, Default)]
pub(super) struct Requests {
    queue: VecDeque<Request>,
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

    fn push(&mut self, request: Request) {
        self.queue.push_back(request);
    }

    /// Whether the row set in progress (only the front request can have one) has rows in the
    /// receive buffer of this input pass.
    pub(super) fn rows_pending(&self) -> bool {
        match self.queue.front() {
            Some(Request::Query(q)) => {
                matches!(&q.statement, Statement::Rows(rows) if rows.has_pending())
            }
            None => false,
        }
    }

    /// Gives the rows received in this input pass their buffer, now frozen.
    pub(super) fn attach(&mut self, chunk: &Bytes) {
        if let Some(Request::Query(q)) = self.queue.front_mut()
            && let Statement::Rows(rows) = &mut q.statement
        {
            rows.attach(chunk);
        }
    }

    /// Forgets every request (the connection closed).
    pub(super) fn clear(&mut self) {
        self.queue.clear();
    }

    /// The one rule for errors: after an ErrorResponse the server skips every message up to the
    /// next Sync, so the requests queued before that sync point get no answer of their own. Ends the
    /// failed front request and those unless it is itself a sync point (a simple Query, which ends
    /// with its ReadyForQuery), and returns how many ended; each gets its end marker.
    fn skip_to_sync(&mut self, outbox: &mut Outbox) -> usize {
        let mut ended = 0;
        while self.queue.front().is_some_and(|r| !r.is_sync_point()) {
            self.queue.pop_front();
            outbox.push(Output::End, false);
            ended += 1;
        }
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
    /// The server broke the protocol (fatal).
    Violation(String),
}

/// The connection's parts a request's messages read and write.
struct Sink<'a> {
    /// The receive buffer of this input pass, which row offsets refer to.
    pass: &'a [u8],
    /// Whether to check that values are UTF-8 (`server_encoding` is `SQL_ASCII`).
    check_utf8: bool,
    outbox: &'a mut Outbox,
    error_buffer: &'a mut String,
    send: &'a mut Vec<u8>,
    last_columns: &'a mut Option<(Vec<u8>, Arc<[Column]>)>,
}

impl SimpleQuery {
    /// Queues a result of this request.
    fn deliver(&self, outbox: &mut Outbox, r: Result<QueryResult, Error>) {
        outbox.push(Output::Result(r), self.chunk_rows.is_some());
    }

    /// A row was added to the row set in progress: in chunked-rows mode, hands over a full batch.
    #[inline]
    fn row_added(&mut self, outbox: &mut Outbox) {
        if let Some(max) = self.chunk_rows
            && let Statement::Rows(rows) = &mut self.statement
            && rows.len() >= max
        {
            let batch = rows.take_batch();
            outbox.push(Output::Result(Ok(QueryResult::Rows(batch))), true);
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
                let e = error_from_fields(fields);
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
            BackendMessage::CopyOutResponse(_) => self.statement = Statement::CopyOut,
            BackendMessage::CopyInResponse(_) => {
                self.statement = Statement::CopyIn;
                // The text has no NUL, so encoding cannot fail.
                let _ = frontend::copy_fail(COPY_IN_TEXT, sink.send);
            }
            BackendMessage::CopyData(_) | BackendMessage::CopyDone => {
                // Drained (COPY TO STDOUT) or, outside COPY, dropped as libpq does.
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
        Step::Continue
    }

    /// A DataRow the hot path did not take (see [`Connection::fast_data_rows`]).
    fn data_row(&mut self, row: &DataRow<'_>, sink: &mut Sink<'_>) -> Step {
        let rows = match &mut self.statement {
            Statement::Rows(rows) => rows,
            Statement::CopyOut | Statement::Discard => return Step::Continue,
            Statement::Idle | Statement::CopyIn => {
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
            None => self.row_added(sink.outbox),
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
                self.deliver(sink.outbox, Ok(QueryResult::Rows(rows.finish(tag))));
            }
            Statement::Discard => {}
            Statement::Idle | Statement::CopyIn => {
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
    /// Sends a request: allowed only when idle (nothing in flight, every result and end marker
    /// taken); otherwise the error text is appended to the error buffer (as libpq does) and returned.
    pub(super) fn start_query(
        &mut self,
        sql: &str,
        chunk_rows: Option<usize>,
    ) -> Result<(), Error> {
        match self.phase {
            Phase::Ready if self.requests.is_empty() && self.outbox.len() == 0 => {}
            Phase::Ready => return Err(self.command_error(ErrorKind::Usage, super::BUSY_TEXT)),
            Phase::Closed => {
                return Err(
                    self.command_error(ErrorKind::ConnectionLost, super::NO_CONNECTION_TEXT)
                );
            }
            Phase::Startup(_) => {
                return Err(self.command_error(ErrorKind::Usage, "connection is not ready yet"));
            }
        }
        self.error_buffer.clear();
        if let Err(e) = frontend::query(sql, &mut self.send) {
            return Err(self.command_error(ErrorKind::Usage, &format!("could not send query: {e}")));
        }
        self.requests.push(Request::Query(SimpleQuery {
            chunk_rows,
            statement: Statement::Idle,
        }));
        Ok(())
    }

    /// Queues a simple Query without the idle check: several requests in flight, for the queue's
    /// tests until pipelining has its own API.
    #[cfg(test)]
    pub(super) fn queue_query_unchecked(&mut self, sql: &str, chunk_rows: Option<usize>) {
        frontend::query(sql, &mut self.send).expect("a query without NUL");
        self.requests.push(Request::Query(SimpleQuery {
            chunk_rows,
            statement: Statement::Idle,
        }));
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

    /// The hot path: adds the DataRows of the row set in progress found in `pass` from `at` on,
    /// each validated and indexed in one pass, and returns where they end (`at` when there are none).
    /// `pass` is the whole receive buffer of this input pass.
    #[inline]
    pub(super) fn fast_data_rows(&mut self, pass: &[u8], mut at: usize) -> usize {
        let Some(Request::Query(q)) = self.requests.queue.front_mut() else {
            return at;
        };
        let Statement::Rows(rows) = &mut q.statement else {
            return at;
        };
        let limits = self.limits;
        let refused = loop {
            let Some(len) = pass
                .get(at..)
                .and_then(|buf| rows.push_fast(buf, &limits, at))
            else {
                return at;
            };
            at += len;
            if self.check_utf8
                && let Err(e) = rows.check_last_row_utf8(pass)
            {
                break e;
            }
            if let Some(max) = q.chunk_rows
                && rows.len() >= max
            {
                let batch = rows.take_batch();
                self.outbox
                    .push(Output::Result(Ok(QueryResult::Rows(batch))), true);
            }
        };
        let mut sink = Sink {
            pass,
            check_utf8: true,
            outbox: &mut self.outbox,
            error_buffer: &mut self.error_buffer,
            send: &mut self.send,
            last_columns: &mut self.last_columns,
        };
        q.refuse_rows(refused, &mut sink);
        at
    }

    /// A message while requests are in flight (or, with none, while idle). `pass` is the receive
    /// buffer of this input pass, which `msg` borrows from.
    pub(super) fn handle_query_message(&mut self, msg: BackendMessage<'_>, pass: &[u8]) {
        let Some(front) = self.requests.queue.front_mut() else {
            return self.handle_idle_message(msg);
        };
        let mut sink = Sink {
            pass,
            check_utf8: self.check_utf8,
            outbox: &mut self.outbox,
            error_buffer: &mut self.error_buffer,
            send: &mut self.send,
            last_columns: &mut self.last_columns,
        };
        let step = match front {
            Request::Query(q) => q.handle(msg, &mut sink),
        };
        match step {
            Step::Continue => {}
            Step::ServerError => {
                self.requests.skip_to_sync(&mut self.outbox);
            }
            Step::Ready(status) => {
                self.tx_status = status;
                self.requests.queue.pop_front();
                self.outbox.push(Output::End, false);
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

    /// The connection failed: the request being answered gets `err` as its last result, and every
    /// request in flight its end marker.
    pub(super) fn fail_requests(&mut self, err: &Error) {
        if let Some(Request::Query(q)) = self.requests.queue.front_mut() {
            q.statement = Statement::Idle;
            q.deliver(&mut self.outbox, Err(err.clone()));
        }
        for _ in self.requests.queue.drain(..) {
            self.outbox.push(Output::End, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> Request {
        Request::Query(SimpleQuery {
            chunk_rows: None,
            statement: Statement::Idle,
        })
    }

    #[test]
    fn a_simple_query_is_its_own_sync_point() {
        let mut requests = Requests::default();
        let mut outbox = Outbox::default();
        requests.push(query());
        requests.push(query());
        assert_eq!(requests.skip_to_sync(&mut outbox), 0);
        assert_eq!(requests.len(), 2);
        assert_eq!(outbox.len(), 0);
    }
}

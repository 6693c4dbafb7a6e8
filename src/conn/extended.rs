//! libpq's extended-protocol API on the sans-IO session: parameters, prepared statements, pipeline
//! mode and COPY driven by the caller.
//!
//! Every call queues its messages (Parse, Bind, Describe, Execute, Sync) and one entry per message
//! in the queue of expected responses ([`super::query`]), so the results come out of
//! [`Connection::poll_result`] exactly as a simple query's do. Outside pipeline mode each call ends
//! with a Sync and its end marker comes with the ReadyForQuery; in pipeline mode the Sync is the
//! caller's ([`Connection::pipeline_sync`]), each command's end marker follows its last result,
//! and each sync point yields [`QueryResult::PipelineSync`] with no end marker.

use bytes::Bytes;

use super::query::{CopyDirection, Request, SimpleQuery, Stage};
use super::{Connection, Phase, QueryResult};
use crate::error::{Error, ErrorKind};
use crate::protocol::frontend;

/// libpq's text for queuing a command while a COPY is in progress in pipeline mode.
pub const COPY_QUEUE_TEXT: &str = "cannot queue commands during COPY";
/// libpq's text for entering pipeline mode on a busy connection.
pub const ENTER_BUSY_TEXT: &str = "cannot enter pipeline mode, connection not idle";
/// libpq's text for leaving pipeline mode with results not taken.
pub const EXIT_UNCOLLECTED_TEXT: &str = "cannot exit pipeline mode with uncollected results";
/// libpq's text for leaving pipeline mode with requests in flight.
pub const EXIT_BUSY_TEXT: &str = "cannot exit pipeline mode while busy";
/// libpq's text for leaving pipeline mode during COPY.
pub const EXIT_COPY_TEXT: &str = "cannot exit pipeline mode while in COPY";
/// libpq's text for a sync outside pipeline mode.
pub const SYNC_OFF_TEXT: &str = "cannot send pipeline when not in pipeline mode";
/// The text for a COPY started in pipeline mode (libpq does not allow COPY there).
pub const COPY_IN_PIPELINE_TEXT: &str = "COPY is not allowed in pipeline mode";
/// libpq's text for a blocking call (`query`, `exec`, ...) in pipeline mode.
pub const SYNC_IN_PIPELINE_TEXT: &str =
    "synchronous command execution functions are not allowed in pipeline mode";
/// libpq's text for COPY data sent while no COPY FROM STDIN is in progress.
pub const NO_COPY_TEXT: &str = "no COPY in progress";

/// libpq's `PQpipelineStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineStatus {
    /// Not in pipeline mode.
    Off,
    /// In pipeline mode.
    On,
    /// In pipeline mode, and a query failed: the queries up to the next sync point are skipped.
    Aborted,
}

impl Connection {
    /// libpq's `PQsendQueryParams`: ONE statement with `$1..$n` bound to `params` as text (`None`
    /// is SQL NULL), through the unnamed statement and portal (Parse, Bind, Describe, Execute and,
    /// outside pipeline mode, Sync). Results as with [`send_query`](Self::send_query); several
    /// statements get the server's 42601.
    #[inline]
    pub fn send_query_params(&mut self, sql: &str, params: &[Option<&str>]) -> Result<(), Error> {
        self.send_extended(Some(sql), "", params, None)
    }

    /// [`send_query`](Self::send_query) in pipeline mode (`chunk_rows` for its chunked-rows
    /// form): out of line, so that the simple Query's send stays small where it is inlined.
    #[inline(never)]
    pub(super) fn send_query_pipelined(
        &mut self,
        sql: &str,
        chunk_rows: Option<usize>,
    ) -> Result<(), Error> {
        self.send_extended(Some(sql), "", &[], chunk_rows)
    }

    /// Like [`send_query_params`](Self::send_query_params) in chunked-rows mode (see
    /// [`send_query_chunked`](Self::send_query_chunked)).
    pub fn send_query_params_chunked(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
        max_rows: usize,
    ) -> Result<(), Error> {
        self.send_extended(Some(sql), "", params, Some(max_rows.max(1)))
    }

    /// libpq's `PQsendPrepare`: creates the prepared statement `name` (`""` is the unnamed one) from
    /// `sql`, parameter types left to the server. Its one result is `Command("")`, then the end
    /// marker.
    pub fn send_prepare(&mut self, name: &str, sql: &str) -> Result<(), Error> {
        self.check_can_send()?;
        let mark = self.send.len();
        if let Err(e) = frontend::parse(name, sql, &[], &mut self.send) {
            self.send.truncate(mark);
            return Err(self.encode_error(e));
        }
        let pipeline = self.pipeline;
        self.last_query
            .remember_sent(mark + frontend::parse_text_at(name), sql.len());
        self.push_request(Request::Parse {
            prepare: true,
            ends: pipeline,
        });
        self.end_command();
        Ok(())
    }

    /// libpq's `PQsendQueryPrepared`: runs the prepared statement `name` with `params` as text.
    pub fn send_query_prepared(
        &mut self,
        name: &str,
        params: &[Option<&str>],
    ) -> Result<(), Error> {
        self.send_extended(None, name, params, None)
    }

    /// Parse (when `sql` is given, into `statement`), Bind, Describe, Execute (and Sync outside
    /// pipeline mode).
    #[inline(always)]
    fn send_extended(
        &mut self,
        sql: Option<&str>,
        statement: &str,
        params: &[Option<&str>],
        chunk_rows: Option<usize>,
    ) -> Result<(), Error> {
        self.check_can_send()?;
        let mark = self.send.len();
        if let Err(e) = frontend::query_params(sql, statement, params, &mut self.send) {
            self.send.truncate(mark);
            return Err(self.encode_error(e));
        }
        // The text stays where the Parse has it (see `LastQuery`).
        match sql {
            Some(sql) => self
                .last_query
                .remember_sent(mark + frontend::parse_text_at(statement), sql.len()),
            None => self.last_query.forget(),
        }
        let pipeline = self.pipeline;
        self.push_request(Request::Execute {
            stage: match sql {
                Some(_) => Stage::Parse,
                None => Stage::Bind,
            },
            q: SimpleQuery::new(chunk_rows, None),
            ends: pipeline,
        });
        self.end_command();
        Ok(())
    }

    /// Outside pipeline mode, the Sync that ends a command (and brings its end marker).
    fn end_command(&mut self) {
        if !self.pipeline {
            frontend::sync(&mut self.send);
            self.push_request(Request::Sync {
                pipeline: false,
                silent: false,
            });
        }
    }

    /// libpq's `PQenterPipelineMode`: only when idle (every result and end marker taken), else
    /// `cannot enter pipeline mode, connection not idle`; a no-op when already on. Sends nothing.
    pub fn enter_pipeline_mode(&mut self) -> Result<(), Error> {
        if self.pipeline {
            return Ok(());
        }
        match self.phase {
            Phase::Ready if self.requests.is_empty() && self.outbox.is_empty() => {
                self.pipeline = true;
                self.pipeline_aborted = false;
                Ok(())
            }
            Phase::Closed => {
                Err(self.command_error(ErrorKind::ConnectionLost, super::NO_CONNECTION_TEXT))
            }
            _ => Err(self.command_error(ErrorKind::Usage, ENTER_BUSY_TEXT)),
        }
    }

    /// libpq's `PQexitPipelineMode`: a no-op when off; refused while results wait to be taken
    /// (`cannot exit pipeline mode with uncollected results`), while requests are in flight (`cannot
    /// exit pipeline mode while busy`) or during COPY.
    pub fn exit_pipeline_mode(&mut self) -> Result<(), Error> {
        if !self.pipeline {
            return Ok(());
        }
        let busy = !self.requests.is_empty() || self.requests.is_skipping();
        let text = if self.copy_direction().is_some() {
            EXIT_COPY_TEXT
        } else if !self.outbox.is_empty() && (busy || !self.outbox.drop_end_markers()) {
            // Only end markers left with nothing in flight is libpq's pipeline-idle state, which
            // PQexitPipelineMode accepts: they are dropped.
            EXIT_UNCOLLECTED_TEXT
        } else if busy {
            EXIT_BUSY_TEXT
        } else {
            self.pipeline = false;
            self.pipeline_aborted = false;
            return Ok(());
        };
        Err(self.command_error(ErrorKind::Usage, text))
    }

    /// libpq's `PQpipelineSync`: queues a Sync (a sync point: its result is
    /// [`QueryResult::PipelineSync`]). Outside pipeline mode: `cannot send pipeline when not in
    /// pipeline mode`.
    pub fn pipeline_sync(&mut self) -> Result<(), Error> {
        if !self.pipeline {
            return Err(self.command_error(ErrorKind::Usage, SYNC_OFF_TEXT));
        }
        self.check_can_send()?;
        frontend::sync(&mut self.send);
        self.push_request(Request::Sync {
            pipeline: true,
            silent: false,
        });
        Ok(())
    }

    /// libpq's `PQsendFlushRequest`: queues a Flush, asking the server to send what it has
    /// buffered without a sync point.
    pub fn send_flush_request(&mut self) -> Result<(), Error> {
        match self.phase {
            Phase::Ready if self.copy_direction().is_none() => {
                frontend::flush(&mut self.send);
                Ok(())
            }
            Phase::Ready => Err(self.command_error(ErrorKind::Usage, COPY_QUEUE_TEXT)),
            _ => Err(self.command_error(ErrorKind::ConnectionLost, super::NO_CONNECTION_TEXT)),
        }
    }

    /// Refuses a blocking call in pipeline mode with libpq's text (its results would wait for a
    /// sync the caller has not sent).
    pub fn check_not_pipelined(&mut self) -> Result<(), Error> {
        if self.pipeline {
            return Err(self.command_error(ErrorKind::Usage, SYNC_IN_PIPELINE_TEXT));
        }
        Ok(())
    }

    /// Whether pipeline mode is on ([`pipeline_status`](Self::pipeline_status) is not `Off`), in
    /// one load.
    #[inline]
    pub(crate) fn pipeline_on(&self) -> bool {
        self.pipeline
    }

    /// libpq's `PQpipelineStatus`: [`PipelineStatus::Aborted`] from when the caller takes a failed
    /// query's error until it takes the sync point's [`QueryResult::PipelineSync`].
    pub fn pipeline_status(&self) -> PipelineStatus {
        match (self.pipeline, self.pipeline_aborted) {
            (false, _) => PipelineStatus::Off,
            (true, false) => PipelineStatus::On,
            (true, true) => PipelineStatus::Aborted,
        }
    }

    /// Whether requests are in flight or results (or end markers) wait to be taken: libpq's
    /// `PQtransactionStatus` says `PQTRANS_ACTIVE` then, and in pipeline mode an end marker taken
    /// while this holds separates two commands.
    pub fn is_active(&self) -> bool {
        !self.requests.is_empty() || !self.outbox.is_empty()
    }

    /// Pipeline mode: tracks the aborted status as the caller takes results.
    pub(super) fn pipeline_taken(&mut self, r: &Result<QueryResult, Error>) {
        match r {
            Err(_) | Ok(QueryResult::PipelineAborted) => self.pipeline_aborted = true,
            Ok(QueryResult::PipelineSync) => self.pipeline_aborted = false,
            Ok(_) => {}
        }
    }

    // ----- COPY driven by the caller -----

    /// Sends `sql` (a simple Query) expecting a COPY in `direction`: the matching CopyInResponse /
    /// CopyOutResponse starts a COPY the caller drives ([`copy_state`](Self::copy_state),
    /// [`put_copy_data`](Self::put_copy_data), [`put_copy_end`](Self::put_copy_end),
    /// [`take_copy_data`](Self::take_copy_data)); any other answer comes out of
    /// [`poll_result`](Self::poll_result) as with [`send_query`](Self::send_query) (a COPY the other
    /// way is refused or drained as there). Not in pipeline mode.
    pub fn send_copy(&mut self, sql: &str, direction: CopyDirection) -> Result<(), Error> {
        if self.pipeline {
            return Err(self.command_error(ErrorKind::Usage, COPY_IN_PIPELINE_TEXT));
        }
        self.start_simple(sql, None, Some(direction))?;
        // Data an earlier COPY left untaken (the caller stopped at its error) is not this one's.
        self.copy_out.clear();
        Ok(())
    }

    /// The COPY in progress that the caller drives, if any: `In` from the server's CopyInResponse
    /// until [`put_copy_end`](Self::put_copy_end) (or a server error); `Out` from its
    /// CopyOutResponse until its CommandComplete (or error).
    pub fn copy_state(&self) -> Option<CopyDirection> {
        self.copy_direction()
    }

    /// COPY FROM STDIN: queues `data` as one CopyData message (message boundaries need not match
    /// rows). Outside such a COPY: `no COPY in progress`.
    pub fn put_copy_data(&mut self, data: &[u8]) -> Result<(), Error> {
        if self.copy_direction() != Some(CopyDirection::In) {
            return Err(self.command_error(ErrorKind::Usage, NO_COPY_TEXT));
        }
        if let Err(e) = frontend::copy_data(data, &mut self.send) {
            return Err(self.command_error(ErrorKind::Usage, &format!("could not send data: {e}")));
        }
        Ok(())
    }

    /// COPY FROM STDIN: ends it with CopyDone (`None`) or CopyFail carrying `error` (the server then
    /// fails the COPY with 57014 `COPY from stdin failed: ...`). The server's result follows from
    /// [`poll_result`](Self::poll_result).
    pub fn put_copy_end(&mut self, error: Option<&str>) -> Result<(), Error> {
        if self.copy_direction() != Some(CopyDirection::In) {
            return Err(self.command_error(ErrorKind::Usage, NO_COPY_TEXT));
        }
        match error {
            None => frontend::copy_done(&mut self.send),
            Some(text) => {
                // A NUL cannot travel in a C string: cut the text there.
                let text = text.split('\0').next().unwrap_or_default();
                if let Err(e) = frontend::copy_fail(text, &mut self.send) {
                    return Err(
                        self.command_error(ErrorKind::Usage, &format!("could not send data: {e}"))
                    );
                }
            }
        }
        self.requests.end_copy_in();
        Ok(())
    }

    /// COPY TO STDOUT: the next CopyData's bytes (one row each, as the server sends them), if one
    /// has arrived. At most [`Budgets::results`](super::Budgets::results) bytes wait before the
    /// connection stops reading ([`wants_read`](Self::wants_read)) until they are taken.
    pub fn take_copy_data(&mut self) -> Option<Bytes> {
        let data = self.copy_out.pop();
        self.resume();
        data
    }

    /// COPY TO STDOUT: every CopyData that has arrived, back to back (rows stay whole: each
    /// CopyData is one row), or `None`. The fast way to move the data to a writer.
    pub fn take_copy_bytes(&mut self) -> Option<Bytes> {
        let data = self.copy_out.pop_all();
        self.resume();
        data
    }
}

//! Pipelines and COPY over the reactor: writing while reading, in bounded memory.
//!
//! A pipeline sends requests before reading any result, and a COPY FROM STDIN sends data without
//! waiting for answers. If the client only wrote, the server's send buffer would fill, the server
//! would stop reading, and both sides would wait forever. So a command that leaves more than
//! [`OUTPUT_THRESHOLD`] bytes unsent waits for the socket to take them, and while it waits every
//! connection (this one included) keeps being read: the socket stays registered for readability
//! whenever output is pending (see [`PgSocket`](super::PgSocket)). Output in memory stays below the
//! threshold plus one command; input read meanwhile is what the caller has not taken yet.

use std::io::{self, Read, Write};
use std::time::Duration;

use super::{ConnId, Reactor};
use crate::conn::{CopyDirection, PollResult, QueryResult, State};
use crate::error::{Error, ErrorKind};

/// The unsent output a connection may hold before a pipelined command or a COPY waits for the
/// socket to take it (libpq's `OUTBUFFER_THRESHOLD`).
pub const OUTPUT_THRESHOLD: usize = 64 * 1024;

/// The size of the reads from a COPY's source.
const COPY_CHUNK: usize = 64 * 1024;

/// How many COPY chunks are sent between two looks (without waiting) at every connection's input.
const CHUNKS_BETWEEN_POLLS: u32 = 16;

impl Reactor {
    /// Waits until connection `id` holds at most `limit` bytes of unsent output (or is closed, or
    /// paused by chunked-rows backpressure), reading every connection meanwhile. This is what keeps a pipeline of any length from
    /// deadlocking: the answers the server sends while the client writes are read and queued.
    pub fn wait_output(&mut self, id: ConnId, limit: usize) -> Result<(), Error> {
        // A connection paused by chunked-rows backpressure reads nothing until the caller takes
        // results: waiting for its output then could wait forever (the server stops reading while
        // its own output is full), so the output stays buffered instead.
        self.wait_until(None, |r| match r.get(id) {
            Some(s) => {
                let conn = s.conn();
                conn.pending_output().len() <= limit
                    || conn.state() == State::Closed
                    || !conn.wants_read()
            }
            None => true,
        })?;
        Ok(())
    }

    /// Runs a command on connection `id` like [`command`](Self::command); then, if more than
    /// [`OUTPUT_THRESHOLD`] bytes are left unsent, waits for the socket to take them while reading
    /// ([`wait_output`](Self::wait_output)).
    pub fn command_bounded<T>(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&mut crate::conn::Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // `command`, with one look-up of the socket.
        let (socket, registry) = self
            .socket_and_registry(id)
            .ok_or_else(|| Error::new(ErrorKind::Usage, "no such connection"))?;
        let waits = Self::command_sent(socket, registry, id, f)?;
        self.after_command(id, waits)
    }

    /// Runs `f` on `socket`, writes what it queued and follows the registration; returns the
    /// result and whether more than [`OUTPUT_THRESHOLD`] bytes are left unsent.
    #[inline(always)]
    fn command_sent<T>(
        socket: &mut super::PgSocket,
        registry: &mio::Registry,
        id: ConnId,
        f: impl FnOnce(&mut crate::conn::Connection) -> Result<T, Error>,
    ) -> Result<(T, bool), Error> {
        let result = socket.command(f);
        // The steady state (all sent, registered for reading alone) says at once that nothing
        // is left to wait for.
        if socket.registration_current() {
            return Ok((result?, false));
        }
        let _ = socket.update_registration(registry, mio::Token(id.index()));
        let result = result?;
        let conn = socket.conn();
        Ok((
            result,
            conn.wants_write() && conn.pending_output().len() > OUTPUT_THRESHOLD,
        ))
    }

    /// The end of a command: waits for the socket to take the output if `waits` says so.
    #[inline(always)]
    fn after_command<T>(&mut self, id: ConnId, (result, waits): (T, bool)) -> Result<T, Error> {
        if waits {
            self.wait_output(id, OUTPUT_THRESHOLD)?;
        }
        Ok(result)
    }

    /// Runs a command that queues a request, like [`command_bounded`](Self::command_bounded); in
    /// pipeline mode, what it queued is written only once more than [`OUTPUT_THRESHOLD`] bytes wait
    /// (as libpq does), or by the next sync, flush request or wait: one write for many requests.
    pub fn command_queued<T>(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&mut crate::conn::Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // One look-up of the socket for both modes.
        let (socket, registry) = self
            .socket_and_registry(id)
            .ok_or_else(|| Error::new(ErrorKind::Usage, "no such connection"))?;
        if !socket.conn().pipeline_on() {
            let waits = Self::command_sent(socket, registry, id, f)?;
            return self.after_command(id, waits);
        }
        let result = f(socket.conn_mut())?;
        if socket.conn().pending_output().len() <= OUTPUT_THRESHOLD {
            // Registered for writability (a no-op after the first): the next wait writes it.
            if !socket.registered_for_output() {
                let _ = socket.update_registration(registry, mio::Token(id.index()));
            }
            return Ok(result);
        }
        self.command_pipelined_flush(id)?;
        Ok(result)
    }

    /// [`command_queued`](Self::command_queued) in pipeline mode past [`OUTPUT_THRESHOLD`]: writes
    /// what the socket takes, and waits for it to take the rest while reading.
    #[cold]
    #[inline(never)]
    fn command_pipelined_flush(&mut self, id: ConnId) -> Result<(), Error> {
        if let Some(socket) = self.get_mut(id) {
            socket.flush();
        }
        let _ = self.update(id);
        if self
            .get(id)
            .is_some_and(|s| s.conn().pending_output().len() > OUTPUT_THRESHOLD)
        {
            self.wait_output(id, OUTPUT_THRESHOLD)?;
        }
        Ok(())
    }

    /// `COPY ... FROM STDIN` on connection `id`, fed from `data` as it is read (64 KiB at a time,
    /// never all in memory); returns the row count of the command tag. A server error (also one in
    /// the middle of the data) -> `Err` with its SQLSTATE; an `Err` from `data` -> CopyFail carrying
    /// its text, and the server's error (57014) is returned. A statement that is not a COPY FROM
    /// STDIN -> `Err`. The connection is usable after each. Other connections keep being read.
    pub fn copy_in(&mut self, id: ConnId, sql: &str, data: &mut dyn Read) -> Result<u64, Error> {
        self.command(id, |c| c.send_copy(sql, CopyDirection::In))?;
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut chunks = 0u32;
        let mut outcome = Outcome::default();
        loop {
            let copying = self
                .get(id)
                .is_some_and(|s| s.conn().copy_state() == Some(CopyDirection::In));
            if !copying {
                match self.poll_result(id) {
                    PollResult::Ready(r) => outcome.add(r),
                    PollResult::Done => break,
                    PollResult::Pending => self.progress(id, None)?,
                }
                continue;
            }
            let pending = self.get(id).map_or(0, |s| s.conn().pending_output().len());
            if pending > OUTPUT_THRESHOLD {
                self.wait_output(id, OUTPUT_THRESHOLD)?;
                if !self
                    .get(id)
                    .is_some_and(|s| s.conn().copy_state() == Some(CopyDirection::In))
                {
                    continue;
                }
            }
            chunks += 1;
            if chunks.is_multiple_of(CHUNKS_BETWEEN_POLLS) {
                // Every other connection keeps being read, and a server error is seen early.
                self.dispatch(Some(Duration::ZERO))?;
                continue;
            }
            match data.read(&mut buf) {
                Ok(0) => self.command(id, |c| c.put_copy_end(None))?,
                Ok(n) => self.command(id, |c| c.put_copy_data(&buf[..n]))?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let text = e.to_string();
                    self.command(id, |c| c.put_copy_end(Some(&text)))?;
                }
            }
        }
        outcome.finish("COPY FROM STDIN", "copy_in")
    }

    /// `COPY ... TO STDOUT` on connection `id`: each CopyData (one row) is written to `out` as it
    /// arrives, at most [`MAX_QUEUED_ROW_BYTES`](crate::conn::MAX_QUEUED_ROW_BYTES) waiting in
    /// memory; returns the row count. A server error -> `Err` with its SQLSTATE; an `Err` from
    /// `out` -> `Err` carrying it, once the rest of the COPY is drained. A statement that is not a
    /// COPY TO STDOUT -> `Err`. The connection is usable after each.
    pub fn copy_out(&mut self, id: ConnId, sql: &str, out: &mut dyn Write) -> Result<u64, Error> {
        self.command(id, |c| c.send_copy(sql, CopyDirection::Out))?;
        let mut outcome = Outcome::default();
        let mut write_error: Option<io::Error> = None;
        loop {
            let mut took = false;
            if let Some(socket) = self.get_mut(id) {
                while let Some(data) = socket.conn_mut().take_copy_bytes() {
                    took = true;
                    if write_error.is_none()
                        && let Err(e) = out.write_all(&data)
                    {
                        write_error = Some(e);
                    }
                }
            }
            // Taking data may have lifted backpressure: `poll_result` resumes reading then, and
            // what it reads is taken before any wait.
            match self.poll_result(id) {
                PollResult::Ready(r) => outcome.add(r),
                PollResult::Done => break,
                PollResult::Pending if took => {}
                PollResult::Pending => self.progress(id, None)?,
            }
        }
        if let Some(e) = write_error {
            return Err(
                Error::new(ErrorKind::Io, format!("could not write COPY data: {e}")).with_source(e),
            );
        }
        if outcome.first_error.is_none()
            && let Err(e) = out.flush()
        {
            return Err(
                Error::new(ErrorKind::Io, format!("could not write COPY data: {e}")).with_source(e),
            );
        }
        outcome.finish("COPY TO STDOUT", "copy_out")
    }
}

/// The results of a COPY's query.
#[derive(Default)]
struct Outcome {
    last: Option<QueryResult>,
    first_error: Option<Error>,
}

impl Outcome {
    fn add(&mut self, r: Result<QueryResult, Error>) {
        match r {
            Ok(r) => self.last = Some(r),
            Err(e) => {
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// The row count of a `COPY n` tag, or the error.
    fn finish(self, what: &str, call: &str) -> Result<u64, Error> {
        if let Some(e) = self.first_error {
            return Err(e);
        }
        let count = match &self.last {
            Some(QueryResult::Command(tag)) => tag
                .strip_prefix("COPY ")
                .and_then(|n| n.parse::<u64>().ok()),
            _ => None,
        };
        count.ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!("{call}: the statement is not a {what}"),
            )
        })
    }
}

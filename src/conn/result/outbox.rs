//! Results and end markers waiting for the caller, in order.

use std::collections::VecDeque;

use super::{Chunk, Error, QueryResult, Rows};
use crate::conn::budgets::{ENTRY_COST, error_bytes};

/// What [`Outbox`] hands out: a statement's result, or the end marker of a request.
#[derive(Debug)]
pub(in crate::conn) enum Output {
    /// One result (`Err` for a failed statement or a lost connection).
    Result(Result<QueryResult, Error>),
    /// The end marker of one request: every result of it has been taken.
    End,
}

#[derive(Debug)]
struct Queued {
    output: Output,
    /// The bytes counted against the results budget ([`Budgets::results`](crate::conn::Budgets::results)).
    bytes: usize,
}

/// Results and end markers waiting for the caller, in order. A result whose rows still refer to
/// the receive buffer of the current input pass waits (with everything behind it) until the pass
/// ends and [`attach`](Outbox::attach) gives them the frozen buffer: the waiting ones are always the
/// last `waiting` entries of the one queue, so nothing moves when they become ready.
#[derive(Debug, Default)]
pub(in crate::conn) struct Outbox {
    queue: VecDeque<Queued>,
    /// How many entries at the back of `queue` wait for the pass's buffer.
    waiting: usize,
    /// The bytes of the entries in `queue` (see [`output_bytes`]).
    bytes: usize,
}

/// What a column description is counted as, per column (its name and bookkeeping).
const COLUMN_COST: usize = 64;

/// The bytes an output is counted as: every message whole (a DataRow's length word, field count
/// and field lengths included, so empty and zero-column rows count), its columns, and
/// [`ENTRY_COST`]. Integer arithmetic only: no walk over rows or columns.
fn output_bytes(output: &Output) -> usize {
    ENTRY_COST
        + match output {
            Output::Result(Ok(QueryResult::Rows(rows))) => rows_bytes(rows),
            Output::Result(Ok(QueryResult::Command(tag))) => tag.len(),
            Output::Result(Ok(_)) | Output::End => 0,
            Output::Result(Err(e)) => error_bytes(e),
        }
}

/// A row set as received: 7 bytes of framing per DataRow (type, length, field count), 4 per field
/// and the values (what `data_bytes` counts), plus its columns.
fn rows_bytes(rows: &Rows) -> usize {
    rows.data_bytes()
        .saturating_add(rows.len().saturating_mul(7))
        .saturating_add(rows.d.columns.len().saturating_mul(COLUMN_COST))
}

impl Outbox {
    /// Queues a result or end marker, counting its bytes against the results budget.
    pub(in crate::conn) fn push(&mut self, output: Output) {
        let refers_pending =
            matches!(&output, Output::Result(Ok(QueryResult::Rows(rows))) if rows.d.pending > 0);
        let bytes = output_bytes(&output);
        self.bytes += bytes;
        if refers_pending || self.waiting > 0 {
            self.waiting += 1;
        }
        self.queue.push_back(Queued { output, bytes });
    }

    /// Whether results wait for the receive buffer of the current input pass.
    pub(in crate::conn) fn needs_chunk(&self) -> bool {
        self.waiting > 0
    }

    /// Gives the waiting results the frozen receive buffer of the pass and makes them ready.
    pub(in crate::conn) fn attach(&mut self, chunk: &Chunk) {
        for queued in self.queue.iter_mut().rev().take(self.waiting) {
            if let Output::Result(Ok(QueryResult::Rows(rows))) = &mut queued.output {
                rows.attach(chunk);
            }
        }
        self.waiting = 0;
    }

    /// The next ready result or end marker.
    pub(in crate::conn) fn pop(&mut self) -> Option<Output> {
        if !self.has_ready() {
            return None;
        }
        let queued = self.queue.pop_front()?;
        self.bytes -= queued.bytes;
        Some(queued.output)
    }

    /// Whether a result or end marker is ready (results waiting for the pass's buffer are not).
    pub(in crate::conn) fn has_ready(&self) -> bool {
        self.queue.len() > self.waiting
    }

    /// How many results and end markers are queued.
    pub(in crate::conn) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The bytes of the queued results and end markers.
    pub(in crate::conn) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops the queued end markers when nothing else is queued (libpq's pipeline-idle state, where
    /// the NULL ending a command's results is made up rather than queued); false, and nothing
    /// dropped, when a result is queued.
    pub(in crate::conn) fn drop_end_markers(&mut self) -> bool {
        if self.queue.iter().any(|q| !matches!(q.output, Output::End)) {
            return false;
        }
        self.queue.clear();
        self.waiting = 0;
        self.bytes = 0;
        true
    }
}

//! Results and end markers waiting for the caller, in order.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{Error, QueryResult};

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
    /// The row bytes counted against [`MAX_QUEUED_ROW_BYTES`](super::MAX_QUEUED_ROW_BYTES).
    row_bytes: usize,
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
    /// The row bytes of counted results in `queue`.
    row_bytes: usize,
}

impl Outbox {
    /// Queues a result or end marker; `count_rows` counts its row bytes for backpressure
    /// (chunked-rows mode).
    pub(in crate::conn) fn push(&mut self, output: Output, count_rows: bool) {
        let rows = match &output {
            Output::Result(Ok(QueryResult::Rows(rows))) => Some(rows),
            _ => None,
        };
        let refers_pending = rows.is_some_and(|rows| rows.d.pending > 0);
        let row_bytes = match rows {
            Some(rows) if count_rows => rows.data_bytes(),
            _ => 0,
        };
        self.row_bytes += row_bytes;
        if refers_pending || self.waiting > 0 {
            self.waiting += 1;
        }
        self.queue.push_back(Queued { output, row_bytes });
    }

    /// Whether results wait for the receive buffer of the current input pass.
    pub(in crate::conn) fn needs_chunk(&self) -> bool {
        self.waiting > 0
    }

    /// Gives the waiting results the frozen receive buffer of the pass and makes them ready.
    pub(in crate::conn) fn attach(&mut self, chunk: &Bytes) {
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
        self.row_bytes -= queued.row_bytes;
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

    /// The row bytes of queued chunked-rows results.
    pub(in crate::conn) fn row_bytes(&self) -> usize {
        self.row_bytes
    }
}

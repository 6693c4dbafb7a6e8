//! Results and end markers waiting for the caller, in order.

use std::collections::VecDeque;

use super::{Chunk, Chunks, Error, Fields, QueryResult, Rows};
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
    /// An end marker follows this result: folded into its entry rather than queued on its own
    /// (most requests end right after their last result), and handed out by the `pop` after it.
    end_after: bool,
    /// A result that changes a pipeline's aborted status when taken (an error, `PipelineAborted`,
    /// `PipelineSync`): marked as it is queued, so that taking a row set need not look.
    status: bool,
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
    /// The result popped last had an end marker folded into it: the next `pop` returns it.
    end_next: bool,
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
#[inline(always)]
fn rows_bytes(rows: &Rows) -> usize {
    let d = &*rows.d;
    // A small row set (one chunk, its few offsets inline, so at most 6 columns and, with any
    // column, 6 rows): the same sum with nothing that can saturate.
    if let (Chunks::One(_), Fields::Inline(n, _), Ok(values), 1..) = (
        &d.chunks,
        &d.fields,
        u32::try_from(d.value_bytes),
        d.ncols(),
    ) && d.nrows <= u32::from(*n)
    {
        return values as usize
            + usize::from(*n) * std::mem::size_of::<u32>()
            + d.nrows as usize * 7
            + d.ncols() * COLUMN_COST;
    }
    rows_bytes_general(rows)
}

/// [`rows_bytes`] of any row set: out of line, so that the small case stays short.
#[inline(never)]
fn rows_bytes_general(rows: &Rows) -> usize {
    rows.data_bytes()
        .saturating_add(rows.len().saturating_mul(7))
        .saturating_add(rows.d.ncols().saturating_mul(COLUMN_COST))
}

impl Outbox {
    /// Queues a result or end marker, counting its bytes against the results budget.
    pub(in crate::conn) fn push(&mut self, output: Output) {
        if let Output::End = output
            && self.fold_end()
        {
            return;
        }
        let refers_pending =
            matches!(&output, Output::Result(Ok(QueryResult::Rows(rows))) if rows.d.pending > 0);
        let status = matches!(
            &output,
            Output::Result(Err(_) | Ok(QueryResult::PipelineAborted | QueryResult::PipelineSync))
        );
        let bytes = output_bytes(&output);
        self.bytes += bytes;
        if refers_pending || self.waiting > 0 {
            self.waiting += 1;
        }
        self.queue.push_back(Queued {
            output,
            bytes,
            end_after: false,
            status,
        });
    }

    /// Queues a result and, when `end`, the end marker after it: as two `push`es.
    #[inline]
    pub(in crate::conn) fn push_with_end(&mut self, output: Output, end: bool) {
        self.push(output);
        if end && let Some(last) = self.queue.back_mut() {
            last.end_after = true;
        }
    }

    /// Queues a row set and, when `end`, the end marker after it: as [`push_with_end`]
    /// (Self::push_with_end) does, without looking at what the output is.
    #[inline(always)]
    pub(in crate::conn) fn push_rows(&mut self, rows: Rows, end: bool) {
        let bytes = ENTRY_COST + rows_bytes(&rows);
        self.push_rows_counted(rows, bytes, end);
    }

    /// [`push_rows`](Self::push_rows) with the bytes `rows` count as already known
    /// ([`entry_bytes`](Self::entry_bytes)).
    #[inline(always)]
    pub(in crate::conn) fn push_rows_counted(&mut self, rows: Rows, bytes: usize, end: bool) {
        self.bytes += bytes;
        if rows.d.pending > 0 || self.waiting > 0 {
            self.waiting += 1;
        }
        self.queue.push_back(Queued {
            output: Output::Result(Ok(QueryResult::Rows(rows))),
            bytes,
            end_after: end,
            status: false,
        });
    }

    /// The bytes the entry of `rows` counts: what [`push_rows`](Self::push_rows) adds to
    /// [`bytes`](Self::bytes).
    #[inline(always)]
    pub(in crate::conn) fn entry_bytes(rows: &Rows) -> usize {
        ENTRY_COST + rows_bytes(rows)
    }

    /// Queues an end marker: as `push(Output::End)`.
    #[inline]
    pub(in crate::conn) fn push_end(&mut self) {
        if !self.fold_end() {
            self.push(Output::End);
        }
    }

    /// An end marker right after a result rides in the result's entry: marks the last entry so
    /// when it is a result without one yet, and says whether it did.
    #[inline]
    fn fold_end(&mut self) -> bool {
        match self.queue.back_mut() {
            Some(last) if !last.end_after && matches!(last.output, Output::Result(_)) => {
                last.end_after = true;
                true
            }
            _ => false,
        }
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
    #[cfg(test)]
    pub(in crate::conn) fn pop(&mut self) -> Option<Output> {
        self.pop_marked().map(|(output, _)| output)
    }

    /// The next ready result or end marker, and whether it is a result that changes a
    /// pipeline's aborted status (an error, `PipelineAborted`, `PipelineSync`).
    #[inline(always)]
    pub(in crate::conn) fn pop_marked(&mut self) -> Option<(Output, bool)> {
        if self.end_next {
            self.end_next = false;
            return Some((Output::End, false));
        }
        if !self.has_ready() {
            return None;
        }
        let queued = self.queue.pop_front()?;
        self.bytes -= queued.bytes;
        self.end_next = queued.end_after;
        Some((queued.output, queued.status))
    }

    /// Whether a result or end marker is ready (results waiting for the pass's buffer are not).
    pub(in crate::conn) fn has_ready(&self) -> bool {
        self.end_next || self.queue.len() > self.waiting
    }

    /// How many results and end markers are queued.
    pub(in crate::conn) fn len(&self) -> usize {
        let folded = self.queue.iter().filter(|q| q.end_after).count();
        self.queue.len() + folded + usize::from(self.end_next)
    }

    /// Whether nothing is queued.
    pub(in crate::conn) fn is_empty(&self) -> bool {
        !self.end_next && self.queue.is_empty()
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
        self.end_next = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(tag: &str) -> Output {
        Output::Result(Ok(QueryResult::Command(tag.to_owned())))
    }

    fn drain(outbox: &mut Outbox) -> Vec<String> {
        std::iter::from_fn(|| outbox.pop())
            .map(|o| match o {
                Output::Result(Ok(r)) => r.command_tag().to_owned(),
                Output::Result(Err(e)) => format!("error {}", e.message()),
                Output::End => "end".to_owned(),
            })
            .collect()
    }

    #[test]
    fn end_markers_fold_into_results_and_keep_their_order() {
        let mut outbox = Outbox::default();
        outbox.push(command("A"));
        outbox.push(Output::End);
        outbox.push(command("B"));
        outbox.push(command("C"));
        outbox.push(Output::End);
        // A second marker in a row (a request with no result of its own) is queued on its own.
        outbox.push(Output::End);
        assert_eq!(outbox.len(), 6);
        assert!(!outbox.is_empty());
        assert_eq!(outbox.pop().map(|_| ()), Some(()));
        // The folded marker of A is next, and counts as queued until taken.
        assert_eq!(outbox.len(), 5);
        assert!(outbox.has_ready());
        assert_eq!(drain(&mut outbox), ["end", "B", "C", "end", "end"]);
        assert!(outbox.is_empty());
        assert_eq!(outbox.len(), 0);
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn small_row_sets_count_what_the_general_sum_counts() {
        for ncols in 0..=7usize {
            for nrows in 0..=3usize {
                let columns: std::sync::Arc<[super::super::Column]> = (0..ncols)
                    .map(|i| super::super::Column::new(format!("c{i}"), 25))
                    .collect();
                let mut rows = Rows::new(columns);
                rows.d
                    .fields
                    .extend((0..ncols * nrows).map(|i| i as u32 * 8 + 4));
                rows.d.nrows = nrows as u32;
                rows.d.value_bytes = 5 * (ncols * nrows) as u64;
                let general = rows_bytes_general(&rows);
                assert_eq!(rows_bytes(&rows), general, "{ncols} {nrows}");
            }
        }
    }

    #[test]
    fn dropping_end_markers_leaves_no_folded_one_behind() {
        let mut outbox = Outbox::default();
        outbox.push(command("A"));
        outbox.push(Output::End);
        assert!(!outbox.drop_end_markers(), "a result is queued");
        assert!(matches!(outbox.pop(), Some(Output::Result(_))));
        // Only A's end marker is left: libpq's pipeline-idle state may drop it.
        assert!(outbox.drop_end_markers());
        assert!(outbox.is_empty());
        assert!(outbox.pop().is_none());
    }
}

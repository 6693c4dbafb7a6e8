//! The fast path: the messages of the usual exchanges (`T D C Z` for a simple query, `1 2 T D C`
//! for an extended one, `n` and a Sync's `Z`) handled straight from the receive buffer, without
//! the general decoder and dispatch.
//!
//! Each case takes a message only when it is complete, valid and answers the front request the
//! usual way, and then does exactly what the general path does with it; anything else (another
//! type, a partial or malformed message, an unexpected state, a description not seen before) is
//! left to the general path, which gives the precise answer. So the result never depends on which
//! path took a message, nor on how the input was split.

use super::*;

impl Connection {
    /// Handles the message at `at` in `pass` (the receive buffer of this input pass) if the fast
    /// path takes it, and returns where it ends; returns `at`, with nothing changed, otherwise.
    /// `row_bytes` counts the DataRows taken. Only while [`Phase::Ready`].
    #[inline]
    pub(in crate::conn) fn fast_message(
        &mut self,
        pass: &[u8],
        at: usize,
        row_bytes: &mut usize,
    ) -> usize {
        let Some((&[tag, l0, l1, l2, l3], rest)) =
            pass.get(at..).and_then(|b| b.split_first_chunk::<5>())
        else {
            return at;
        };
        if tag == b'D' {
            let end = self.fast_data_rows(pass, at);
            *row_bytes += end - at;
            return end;
        }
        let len = u32::from_be_bytes([l0, l1, l2, l3]);
        // A length below 4 wraps and finds no body: the general path reports it.
        let Some(body) = rest.get(..(len as usize).wrapping_sub(4)) else {
            return at;
        };
        let max = match tag {
            b'T' => self.limits.max_data_message,
            _ => self.limits.max_small_message,
        };
        if len > max {
            return at;
        }
        let taken = match tag {
            b'C' => self.fast_complete(body, pass),
            b'Z' => self.fast_ready(body),
            b'T' => self.fast_describe(body),
            b'1' | b'2' | b'n' if body.is_empty() => self.fast_empty(tag),
            _ => false,
        };
        match taken {
            true => at + 5 + body.len(),
            false => at,
        }
    }

    /// CommandComplete of a row set or a command, for a simple query or an Execute; `pass` is the
    /// receive buffer of this input pass.
    #[inline]
    fn fast_complete(&mut self, body: &[u8], pass: &[u8]) -> bool {
        // A valid tag: NUL-terminated, no NUL inside. Checked with ASCII at once (tags are short
        // ASCII); anything else goes the general way.
        let Some((&0, tag)) = body.split_last() else {
            return false;
        };
        if !tag.iter().all(|&b| b != 0 && b.is_ascii()) {
            return false;
        }
        let queue = &mut self.requests.queue;
        let (q, ends) = match queue.front_mut() {
            Some(Request::Query(q)) => (q, None),
            Some(Request::Execute {
                stage: Stage::Execute,
                q,
                ends,
            }) => (q, Some(*ends)),
            _ => return false,
        };
        match std::mem::take(&mut q.statement) {
            Statement::Rows(mut rows) => {
                q.row_bytes = 0;
                rows.inline_values(pass);
                let rows = rows.finish_ascii(tag);
                match ends {
                    // A simple query: its ReadyForQuery ends it.
                    None => self.outbox.push_rows(rows, false),
                    Some(ends) => {
                        queue.pop_front();
                        self.outbox.push_rows(rows, ends);
                    }
                }
            }
            Statement::Idle => {
                let result = Output::Result(Ok(QueryResult::Command(text(tag))));
                match ends {
                    None => self.outbox.push(result),
                    Some(ends) => {
                        queue.pop_front();
                        self.outbox.push_with_end(result, ends);
                    }
                }
            }
            other => {
                q.statement = other;
                return false;
            }
        }
        true
    }

    /// ReadyForQuery answering a simple query or a Sync.
    #[inline]
    fn fast_ready(&mut self, body: &[u8]) -> bool {
        let status = match body {
            [b'I'] => TransactionStatus::Idle,
            [b'T'] => TransactionStatus::InTransaction,
            [b'E'] => TransactionStatus::Failed,
            _ => return false,
        };
        let queue = &mut self.requests.queue;
        let end = match queue.front() {
            Some(Request::Query(q)) if !matches!(q.statement, Statement::Rows(_)) => {
                Some(Output::End)
            }
            Some(Request::Sync { pipeline, silent }) => dispatch::synced_output(*pipeline, *silent),
            _ => return false,
        };
        queue.pop_front();
        self.tx_status = status;
        match end {
            Some(Output::End) => self.outbox.push_end(),
            Some(output) => self.outbox.push(output),
            None => {}
        }
        true
    }

    /// A RowDescription equal to the last one (its columns are reused), starting the row set of a
    /// simple query, or of the Execute behind a Describe.
    #[inline]
    fn fast_describe(&mut self, body: &[u8]) -> bool {
        let Some((count, fields)) = body.split_first_chunk::<2>() else {
            return false;
        };
        // Equal bytes after an equal count were validated when they were first described.
        let columns = match &self.last_columns {
            Some((bytes, columns))
                if columns.len() == usize::from(u16::from_be_bytes(*count))
                    && bytes.as_slice() == fields =>
            {
                columns
            }
            _ => return false,
        };
        let (q, stage) = match self.requests.queue.front_mut() {
            Some(Request::Query(q)) => (q, None),
            Some(Request::Execute { stage, q, .. }) if *stage == Stage::Describe => {
                (q, Some(stage))
            }
            _ => return false,
        };
        if !matches!(q.statement, Statement::Idle) {
            return false;
        }
        if let Some(stage) = stage {
            *stage = Stage::Execute;
        }
        q.statement = Statement::Rows(RowsBuilder::new(columns.clone()));
        q.row_bytes = 0;
        true
    }

    /// ParseComplete, BindComplete or NoData answering its request.
    #[inline]
    fn fast_empty(&mut self, tag: u8) -> bool {
        let queue = &mut self.requests.queue;
        if let Some(Request::Execute { stage, .. }) = queue.front_mut() {
            *stage = match (tag, *stage) {
                (b'1', Stage::Parse) => Stage::Bind,
                (b'2', Stage::Bind) => Stage::Describe,
                (b'n', Stage::Describe) => Stage::Execute,
                _ => return false,
            };
            return true;
        }
        match (tag, queue.front()) {
            (b'1', Some(&Request::Parse { prepare, ends })) => {
                queue.pop_front();
                match (prepare, ends) {
                    (false, false) => {}
                    (false, true) => self.outbox.push(Output::End),
                    (true, ends) => self.outbox.push_with_end(
                        Output::Result(Ok(QueryResult::Command(String::new()))),
                        ends,
                    ),
                }
            }
            _ => return false,
        }
        true
    }
}

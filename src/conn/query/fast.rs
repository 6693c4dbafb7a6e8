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
        let Some(&tag) = pass.get(at) else {
            return at;
        };
        if tag == b'D' {
            let end = self.fast_data_rows_apart(pass, at);
            *row_bytes += end - at;
            return end;
        }
        if tag == b'T' {
            return self.fast_row_set(pass, at, row_bytes);
        }
        if tag == b'd' {
            return self.fast_copy_data(pass, at);
        }
        // An extended query's ParseComplete and BindComplete, received together: compared as
        // one block and taken in one go (as `fast_empty` would take one, then the other).
        if tag == b'1'
            && pass.get(at..).and_then(<[u8]>::first_chunk) == Some(PARSE_BIND)
            && self.limits.max_small_message >= 4
            && let Some(Request::Execute { stage, .. }) = self.requests.queue.front_mut()
            && *stage == Stage::Parse
        {
            *stage = Stage::Describe;
            return at + PARSE_BIND.len();
        }
        // (A RowDescription went to `fast_row_set` above.)
        let Some(body) = frame(pass, at, self.limits.max_small_message) else {
            return at;
        };
        let taken = match tag {
            b'C' => self.fast_complete(body, pass, at + 5),
            b'Z' => self.fast_ready(body),
            b'1' | b'2' | b'n' if body.is_empty() => {
                return self.fast_empty(tag, at + 5).unwrap_or(at);
            }
            _ => false,
        };
        match taken {
            true => at + 5 + body.len(),
            false => at,
        }
    }

    /// [`fast_data_rows`](Self::fast_data_rows) out of line: the DataRows of a row set begun in
    /// an earlier pass (the rows of a row set begun in this one are taken with its
    /// RowDescription), a loop of their own, called once a pass, whose registers and frame the
    /// short exchanges need not share.
    #[inline(never)]
    fn fast_data_rows_apart(&mut self, pass: &[u8], at: usize) -> usize {
        self.fast_data_rows(pass, at)
    }

    /// CommandComplete of a row set or a command, for a simple query or an Execute; `pass` is the
    /// receive buffer of this input pass, in which `body` starts at `from`.
    #[inline]
    fn fast_complete(&mut self, body: &[u8], pass: &[u8], from: usize) -> bool {
        let Some(tag) = ascii_tag(body) else {
            return false;
        };
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
                let rows = rows.finish_ascii(pass.get(from..).unwrap_or(tag), tag.len());
                match ends {
                    // A simple query: its ReadyForQuery ends it.
                    None => self.outbox.push_rows(rows, false),
                    Some(ends) => {
                        discard_front(queue);
                        self.outbox.push_rows(rows, ends);
                    }
                }
            }
            Statement::Idle => {
                let result = Output::Result(Ok(QueryResult::Command(text(tag))));
                match ends {
                    None => self.outbox.push(result),
                    Some(ends) => {
                        discard_front(queue);
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
        let Some(status) = ready_status(body) else {
            return false;
        };
        let queue = &mut self.requests.queue;
        let end = match queue.front() {
            Some(Request::Query(q)) if !matches!(q.statement, Statement::Rows(_)) => {
                Some(Output::End)
            }
            Some(Request::Sync { pipeline, silent }) => dispatch::synced_output(*pipeline, *silent),
            _ => return false,
        };
        discard_front(queue);
        self.tx_status = status;
        match end {
            Some(Output::End) => self.outbox.push_end(),
            Some(output) => self.outbox.push(output),
            None => {}
        }
        true
    }

    /// A RowDescription equal to the last one (its columns are reused), starting the row set of a
    /// simple query, or of the Execute behind a Describe, at `at` in `pass`; returns where the
    /// messages taken end (`at` when it is not taken). The DataRows, CommandComplete and (for a
    /// simple query) ReadyForQuery after it are taken in the same go while they are complete and
    /// usual, with the row set kept here rather than in its request: exactly what taking them one
    /// by one does. At the first message that is not, the row set so far goes to its request and
    /// the one-by-one path goes on from there (`row_bytes` counts the DataRows taken).
    #[inline]
    fn fast_row_set(&mut self, pass: &[u8], at: usize, row_bytes: &mut usize) -> usize {
        let Some(body) = frame(pass, at, self.limits.max_data_message) else {
            return at;
        };
        let Some((count, fields)) = body.split_first_chunk::<2>() else {
            return at;
        };
        // Equal bytes after an equal count were validated when they were first described.
        let columns = match &self.last_columns {
            Some((bytes, columns))
                if columns.len() == usize::from(u16::from_be_bytes(*count))
                    && crate::protocol::short_eq(bytes, fields) =>
            {
                columns
            }
            _ => return at,
        };
        let (q, ends) = match self.requests.queue.front_mut() {
            Some(Request::Query(q)) => (q, None),
            Some(Request::Execute { stage, q, ends }) if *stage == Stage::Describe => {
                if !matches!(q.statement, Statement::Idle) {
                    return at;
                }
                *stage = Stage::Execute;
                (q, Some(*ends))
            }
            _ => return at,
        };
        if !matches!(q.statement, Statement::Idle) {
            return at;
        }
        let mut rows = RowsBuilder::new(columns.clone());
        let mut pos = at + 5 + body.len();
        // The DataRows, as `fast_data_rows` takes them: those of a whole row set (no batches, no
        // check per row), up to the first that would go beyond the row set's limit.
        let mut taken = 0usize;
        if q.chunk_rows.is_none() && !self.check_utf8 {
            let limit = self.budgets.max_result_bytes;
            loop {
                // Once the offsets are on the heap, in one loop; before, one by one.
                pos = rows.push_run(pass, pos, &self.limits, &mut taken, limit, &mut self.mirror);
                let Some(&[b'D', l0, l1, l2, l3]) = pass.get(pos..).and_then(<[u8]>::first_chunk)
                else {
                    break;
                };
                let next = (u32::from_be_bytes([l0, l1, l2, l3]) as usize).saturating_add(1);
                if taken.saturating_add(next) > limit {
                    break;
                }
                match pass
                    .get(pos..)
                    .and_then(|buf| rows.push_fast(buf, &self.limits, pos))
                {
                    Some(len) => {
                        pos += len;
                        taken += len;
                    }
                    None => break,
                }
            }
        }
        *row_bytes += taken;
        // The CommandComplete ending the row set.
        let tag = frame(pass, pos, self.limits.max_small_message)
            .filter(|_| pass.get(pos) == Some(&b'C'))
            .and_then(ascii_tag);
        let Some(tag) = tag else {
            q.statement = Statement::Rows(rows);
            q.row_bytes = taken;
            return pos;
        };
        let tag_len = tag.len();
        let tag_bytes = pass.get(pos + 5..).unwrap_or(tag);
        pos += 5 + tag_len + 1;
        q.row_bytes = 0;
        rows.inline_values(pass);
        let rows = rows.finish_ascii(tag_bytes, tag_len);
        // One push of the row set for every case below (the queue's push is then inlined).
        let bytes = Outbox::entry_bytes(&rows);
        let (end, next) = match ends {
            Some(ends) => {
                // An Execute whose statement is idle (its rows were built here): nothing of it to
                // drop.
                forget_front(&mut self.requests.queue);
                (ends, pos)
            }
            // The simple query's ReadyForQuery, unless the result reaches a budget (the caller's
            // loop stops there): its end marker rides in the result's entry, as `push_end` would
            // put it.
            None => match frame(pass, pos, self.limits.max_small_message)
                .filter(|_| pass.get(pos) == Some(&b'Z'))
                .and_then(ready_status)
            {
                Some(status) if !self.over_budget_with(self.outbox.bytes() + bytes) => {
                    // A simple query between statements: nothing of it to drop.
                    forget_front(&mut self.requests.queue);
                    self.tx_status = status;
                    (true, pos + 6)
                }
                _ => (false, pos),
            },
        };
        self.outbox.push_rows_counted(rows, bytes, end);
        next
    }

    /// ParseComplete, BindComplete or NoData answering its request, ending at `next`;
    /// returns where the messages taken end (`None`: not taken). (An extended query's
    /// ParseComplete and BindComplete received together are taken by
    /// [`fast_message`](Self::fast_message) in one go.)
    #[inline]
    fn fast_empty(&mut self, tag: u8, next: usize) -> Option<usize> {
        let queue = &mut self.requests.queue;
        if let Some(Request::Execute { stage, .. }) = queue.front_mut() {
            *stage = match (tag, *stage) {
                (b'1', Stage::Parse) => Stage::Bind,
                (b'2', Stage::Bind) => Stage::Describe,
                (b'n', Stage::Describe) => Stage::Execute,
                _ => return None,
            };
            return Some(next);
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
            _ => return None,
        }
        Some(next)
    }
}

/// Removes the front request, answered. Its statement is then usually idle, and a request
/// with an idle statement (or a Parse or Sync) holds nothing: the entry is then forgotten as it
/// is popped, so that it is neither copied out of the queue nor given to the drop glue of a
/// request (looked at in place first). Anything else is dropped.
#[inline(always)]
fn discard_front(queue: &mut std::collections::VecDeque<Request>) {
    let holds_nothing = match queue.front() {
        Some(Request::Query(q) | Request::Execute { q, .. }) => {
            matches!(q.statement, Statement::Idle)
        }
        Some(Request::Parse { .. } | Request::Sync { .. }) | None => true,
    };
    if holds_nothing {
        std::mem::forget(queue.pop_front());
    } else {
        drop(queue.pop_front());
    }
}

/// Removes the front request, answered, known to hold nothing (an idle statement): popped
/// without being copied out or looked at again.
#[inline(always)]
fn forget_front(queue: &mut std::collections::VecDeque<Request>) {
    debug_assert!(matches!(
        queue.front(),
        Some(Request::Query(q) | Request::Execute { q, .. }) if matches!(q.statement, Statement::Idle)
    ));
    std::mem::forget(queue.pop_front());
}

/// ParseComplete then BindComplete, as the server sends them for an extended query.
const PARSE_BIND: &[u8; 10] = b"1\0\0\0\x042\0\0\0\x04";

/// The body of the complete message at `at` in `pass` when its length is at most `max`.
#[inline(always)]
pub(super) fn frame(pass: &[u8], at: usize, max: u32) -> Option<&[u8]> {
    let (&[_, l0, l1, l2, l3], rest) = pass.get(at..)?.split_first_chunk::<5>()?;
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    if len > max {
        return None;
    }
    // A length below 4 wraps and finds no body: the general path reports it.
    rest.get(..(len as usize).wrapping_sub(4))
}

/// A CommandComplete's tag (its body without the NUL at its end) when it is ASCII without a NUL
/// inside: tags are short ASCII; anything else goes the general way.
#[inline(always)]
fn ascii_tag(body: &[u8]) -> Option<&[u8]> {
    let Some((&0, tag)) = body.split_last() else {
        return None;
    };
    let n = tag.len();
    let ascii = match (tag.first_chunk::<8>(), tag.last_chunk::<8>()) {
        // Two words, overlapping when shorter than 16 bytes (`SELECT 1` is 8): no loop.
        (Some(&first), Some(&last)) if n <= 16 => {
            ascii_word(u64::from_ne_bytes(first)) & ascii_word(u64::from_ne_bytes(last))
        }
        _ => tag.iter().all(|&b| b != 0 && b.is_ascii()),
    };
    ascii.then_some(tag)
}

/// Whether the 8 bytes of `w` are all ASCII and none is NUL.
#[inline(always)]
fn ascii_word(w: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A high bit set, or a zero byte (found exactly when no byte has its high bit set).
    (w | w.wrapping_sub(ONES)) & HIGHS == 0
}

/// The transaction status a ReadyForQuery's body reports.
#[inline(always)]
fn ready_status(body: &[u8]) -> Option<TransactionStatus> {
    match body {
        [b'I'] => Some(TransactionStatus::Idle),
        [b'T'] => Some(TransactionStatus::InTransaction),
        [b'E'] => Some(TransactionStatus::Failed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_checks_agree_with_the_byte_by_byte_ones() {
        let tags: [&[u8]; 9] = [
            b"SELECT 1",
            b"SELECT 123456789",
            b"INSERT 0 1",
            b"SELECT\x001",
            b"SELECT 1\xc3\xa9",
            b"\x80ELECT 12",
            b"SELECT 1234567\x7f",
            b"SELECT 12345678\0",
            b"SELECT 123456789012",
        ];
        for tag in tags {
            let mut body = tag.to_vec();
            body.push(0);
            let plain = tag.iter().all(|&b| b != 0 && b.is_ascii());
            assert_eq!(ascii_tag(&body).is_some(), plain, "{tag:?}");
        }
        let a: Vec<u8> = (0..40).collect();
        for n in [0, 5, 16, 17, 27, 32, 33, 40] {
            for i in 0..n {
                let mut b = a[..n].to_vec();
                assert!(crate::protocol::short_eq(&a[..n], &b));
                b[i] ^= 1;
                assert!(!crate::protocol::short_eq(&a[..n], &b), "{n} {i}");
            }
            assert!(n == 0 || !crate::protocol::short_eq(&a[..n], &a[..n - 1]));
        }
    }
}

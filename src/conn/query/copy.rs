//! COPY TO STDOUT data waiting for the caller, and the fast path that queues it.

use std::collections::VecDeque;

use bytes::Bytes;

use super::fast::frame;
use super::{Connection, Request, Statement};

impl Connection {
    /// The fast path's CopyData (see [`fast`](super::fast)): from `at` on in `pass`, every complete
    /// CopyData of the COPY TO STDOUT the front request is in, queued for the caller (or dropped,
    /// for a COPY pgdblink drains), in one loop. Stops before a message of another type, an
    /// incomplete or oversized one, or when the results budget is reached, exactly where the
    /// general path would have stopped or taken over; returns where it stopped.
    #[inline(never)]
    pub(in crate::conn) fn fast_copy_data(&mut self, pass: &[u8], mut at: usize) -> usize {
        let keep = match self.requests.queue.front().and_then(Request::query) {
            Some(q) => match q.statement {
                Statement::CopyOutActive { done: false } => true,
                Statement::CopyOut => false,
                _ => return at,
            },
            None => return at,
        };
        let max = self.limits.max_data_message;
        while pass.get(at) == Some(&b'd') && !self.over_budget() {
            let Some(body) = frame(pass, at, max) else {
                break;
            };
            if keep {
                self.copy_out.push(body);
            }
            at += 5 + body.len();
        }
        at
    }
}

/// The data of a COPY TO STDOUT waiting for the caller: the CopyData bodies back to back in one
/// buffer, and the length of each (no allocation per row).
#[derive(Debug, Default)]
pub(in crate::conn) struct CopyQueue {
    data: bytes::BytesMut,
    lengths: VecDeque<usize>,
}

impl CopyQueue {
    /// Queues one CopyData's bytes.
    pub(in crate::conn) fn push(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
        self.lengths.push_back(data.len());
    }

    /// The oldest CopyData's bytes.
    pub(in crate::conn) fn pop(&mut self) -> Option<Bytes> {
        let len = self.lengths.pop_front()?;
        Some(self.data.split_to(len).freeze())
    }

    /// Every CopyData queued, back to back.
    pub(in crate::conn) fn pop_all(&mut self) -> Option<Bytes> {
        if self.lengths.is_empty() {
            return None;
        }
        self.lengths.clear();
        Some(self.data.split().freeze())
    }

    /// The bytes queued, each CopyData's bookkeeping included (empty ones count too).
    pub(in crate::conn) fn bytes(&self) -> usize {
        self.data.len() + self.lengths.len() * std::mem::size_of::<usize>()
    }

    /// Forgets what is queued.
    pub(in crate::conn) fn clear(&mut self) {
        self.data.clear();
        self.lengths.clear();
    }
}

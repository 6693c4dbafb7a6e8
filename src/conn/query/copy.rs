//! COPY TO STDOUT data waiting for the caller.

use std::collections::VecDeque;

use bytes::Bytes;

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

//! The text of the last query sent (libpq's `last_query`), for the cursor display of an error with a
//! position: `LINE n:` and the caret (see [`Error::libpq_text`](crate::Error::libpq_text)).
//!
//! A query's text is not copied when it is sent: the send buffer already holds it, verbatim, inside
//! the Query (or Parse) message, and [`LastQuery`] only notes where. Sent bytes stay in the send
//! buffer (the next messages go after them) until it holds more than [`SENT_KEEP`] bytes; it is
//! emptied once all of it is sent, and the text is copied out of it first ([`LastQuery::release`]):
//! one copy in many queries. An error arriving while the text is in the send buffer copies it out
//! too (errors are rare).
//!
//! The copy lives in one buffer, reused: once it has held a query of a given size, remembering
//! another costs a copy and no allocation. A very large query's buffer is let go when a small one
//! follows, so it does not stay allocated for the life of the connection.

/// How many bytes the send buffer may keep once they are sent (see the module's text).
pub(super) const SENT_KEEP: usize = 8 * 1024;

/// The send buffer's capacity once the session is ready: what it keeps, and a few messages more.
pub(super) const SEND_ROOM: usize = SENT_KEEP + 1024;

/// Buffers above this capacity are released when a query that fits in it is copied in.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Where the last query's text is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The last request sent no query text (or none was sent yet).
    #[default]
    Nowhere,
    /// In the connection's send buffer, at `start..end`.
    Send,
    /// In [`LastQuery::own`], at `start..end`.
    Own,
}

/// The last query text sent, if the last request sent one.
#[derive(Debug, Default)]
pub(super) struct LastQuery {
    place: Place,
    start: usize,
    end: usize,
    /// The text once it is copied out of the send buffer.
    own: Vec<u8>,
}

impl LastQuery {
    /// Remembers `sql` as the query errors now refer to, copying it.
    #[cfg(test)]
    fn remember(&mut self, sql: &str) {
        self.copy_in(sql.as_bytes());
    }

    /// Remembers the query errors now refer to as the `len` bytes the send buffer holds from
    /// `start` on (a `&str` just written there): nothing is copied.
    #[inline]
    pub(super) fn remember_sent(&mut self, start: usize, len: usize) {
        self.place = Place::Send;
        self.start = start;
        self.end = start + len;
    }

    /// The last request sent no query text (a prepared statement run by name): errors show their
    /// position as ` at character N`, as libpq's do.
    pub(super) fn forget(&mut self) {
        self.place = Place::Nowhere;
    }

    /// The send buffer, all sent, is to be emptied: copies the text out of it first if it is
    /// there, then empties it.
    pub(super) fn release(&mut self, send: &mut Vec<u8>) {
        self.settle(send);
        send.clear();
    }

    /// The query text errors refer to, if known; `send` is the connection's send buffer (which
    /// may hold it: it is copied out then).
    pub(super) fn get(&mut self, send: &[u8]) -> Option<&str> {
        self.settle(send);
        match self.place {
            // The bytes were a `&str`: this always succeeds.
            Place::Own => std::str::from_utf8(self.own.get(self.start..self.end)?).ok(),
            _ => None,
        }
    }

    /// Copies the text out of the send buffer if it is there.
    fn settle(&mut self, send: &[u8]) {
        if self.place == Place::Send {
            let text = send.get(self.start..self.end).unwrap_or_default();
            self.copy_in(text);
        }
    }

    /// Keeps a copy of `text` in [`own`](Self::own).
    fn copy_in(&mut self, text: &[u8]) {
        if self.own.capacity() > KEEP_CAPACITY && text.len() <= KEEP_CAPACITY {
            self.own = Vec::new();
        }
        self.own.clear();
        self.own.extend_from_slice(text);
        self.place = Place::Own;
        self.start = 0;
        self.end = text.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_query_reuses_its_buffer() {
        let mut q = LastQuery::default();
        assert_eq!(q.get(&[]), None);
        q.remember("SELECT 1");
        assert_eq!(q.get(&[]), Some("SELECT 1"));
        let before = q.own.as_ptr();
        q.remember("SELECT 2");
        assert_eq!(q.own.as_ptr(), before);
        q.forget();
        assert_eq!(q.get(&[]), None);
        q.remember(&"x".repeat(KEEP_CAPACITY + 1));
        assert!(q.own.capacity() > KEEP_CAPACITY);
        q.remember("SELECT 3");
        assert!(q.own.capacity() <= KEEP_CAPACITY);
        assert_eq!(q.get(&[]), Some("SELECT 3"));
    }

    #[test]
    fn a_text_in_the_send_buffer_is_copied_out_when_released_or_asked_for() {
        let mut q = LastQuery::default();
        let mut send = b"Q\0\0\0\x0dSELECT 1\0".to_vec();
        q.remember_sent(5, 8);
        assert_eq!(q.place, Place::Send);
        q.release(&mut send);
        assert!(send.is_empty());
        assert_eq!(q.get(&send), Some("SELECT 1"));
        // Asked for while in the send buffer: copied out, and later messages and the buffer's
        // reuse leave the copy alone.
        send.extend_from_slice(b"Q\0\0\0\x0dSELECT 2\0");
        q.remember_sent(5, 8);
        assert_eq!(q.get(&send), Some("SELECT 2"));
        send.extend_from_slice(b"S\0\0\0\x04");
        q.release(&mut send);
        assert_eq!(q.get(&send), Some("SELECT 2"));
        // Forgotten: nothing, wherever it was.
        send.extend_from_slice(b"Q\0\0\0\x0dSELECT 3\0");
        q.remember_sent(5, 8);
        q.forget();
        q.release(&mut send);
        assert_eq!(q.get(&send), None);
    }
}

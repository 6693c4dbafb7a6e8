//! The text of the last query sent (libpq's `last_query`), for the cursor display of an error with a
//! position: `LINE n:` and the caret (see [`Error::libpq_text`](crate::Error::libpq_text)).
//!
//! One buffer, reused: once it has held a query of a given size, remembering another costs a copy
//! and no allocation. A very large query's buffer is let go when a small one follows, so it does not
//! stay allocated for the life of the connection.

/// Buffers above this capacity are released when a query that fits in it is remembered.
const KEEP_CAPACITY: usize = 64 * 1024;

/// The last query text sent, if the last request sent one.
#[derive(Debug, Default)]
pub(super) struct LastQuery {
    text: String,
    known: bool,
}

impl LastQuery {
    /// Remembers `sql` as the query errors now refer to.
    #[inline]
    pub(super) fn remember(&mut self, sql: &str) {
        if self.text.capacity() > KEEP_CAPACITY && sql.len() <= KEEP_CAPACITY {
            self.text = String::new();
        }
        self.text.clear();
        self.text.push_str(sql);
        self.known = true;
    }

    /// The last request sent no query text (a prepared statement run by name): errors show their
    /// position as ` at character N`, as libpq's do.
    pub(super) fn forget(&mut self) {
        self.known = false;
    }

    /// The query text errors refer to, if known.
    pub(super) fn get(&self) -> Option<&str> {
        self.known.then_some(self.text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_query_reuses_its_buffer() {
        let mut q = LastQuery::default();
        assert_eq!(q.get(), None);
        q.remember("SELECT 1");
        assert_eq!(q.get(), Some("SELECT 1"));
        let before = q.text.as_ptr();
        q.remember("SELECT 2");
        assert_eq!(q.text.as_ptr(), before);
        q.forget();
        assert_eq!(q.get(), None);
        q.remember(&"x".repeat(KEEP_CAPACITY + 1));
        assert!(q.text.capacity() > KEEP_CAPACITY);
        q.remember("SELECT 3");
        assert!(q.text.capacity() <= KEEP_CAPACITY);
        assert_eq!(q.get(), Some("SELECT 3"));
    }
}

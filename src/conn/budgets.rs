//! Budgets: how many bytes a server can make a connection store, queue by queue.
//!
//! Every queue a server can fill is bounded in bytes. Two policies apply (see [`Budgets`]):
//! back-pressure (the connection stops processing the server's input, and the driver stops reading
//! its socket, until the caller has taken enough) for what the caller is owed in order (results,
//! COPY data) and for replies the server does not read; drop-oldest with a counter the caller can
//! see for what arrives unasked (notices, notifications, the error-message buffer) and a cap on
//! the distinct server parameters kept.

use std::collections::{HashMap, VecDeque};

/// Per-connection budgets, in bytes unless said otherwise. Set with
/// [`StartupConfigBuilder::budgets`](super::StartupConfigBuilder::budgets) (or, for every
/// connection of a registry, `Dblink::set_budgets`); read back with
/// [`Connection::budgets`](super::Connection::budgets). Each queue may exceed its budget by at most
/// one message (the one that crossed it) plus a small fixed cost per queued entry.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Results and end markers queued for the caller (every message counted whole: rows, empty
    /// rows, zero-column rows, command tags, errors, column descriptions), and COPY TO STDOUT data
    /// queued for `take_copy_data`. Back-pressure: at or above it the connection stops processing
    /// input until the caller takes results. Default 1 MiB ([`MAX_QUEUED_ROW_BYTES`](super::MAX_QUEUED_ROW_BYTES)).
    pub results: usize,
    /// The largest whole (not chunked) row set: a longer one fails its statement with
    /// [`RESULT_TOO_LARGE_TEXT`](super::RESULT_TOO_LARGE_TEXT) (SQLSTATE 54000), its remaining
    /// rows are read and dropped, and the connection stays usable. Default: no limit (libpq's
    /// behaviour: a result is as large as the server makes it).
    pub max_result_bytes: usize,
    /// Notices kept for `take_notices`. Drop-oldest, counted by
    /// [`notices_dropped`](super::Connection::notices_dropped). Default 1 MiB.
    pub notices: usize,
    /// Notifications kept for `take_notifications`. Drop-oldest, counted by
    /// [`notifications_dropped`](super::Connection::notifications_dropped). Default 1 MiB.
    pub notifications: usize,
    /// The error-message buffer (`error_message`). Past it the oldest half of the text is dropped
    /// (the newest errors stay), counted by
    /// [`error_bytes_dropped`](super::Connection::error_bytes_dropped). Default 64 KiB.
    pub error_message: usize,
    /// Distinct server parameters (ParameterStatus names) kept, beyond the ones PostgreSQL reports
    /// itself, which are always kept. Further names are ignored and counted by
    /// [`parameters_dropped`](super::Connection::parameters_dropped). Default 256.
    pub parameters: usize,
    /// The bytes of the server parameters kept (names and values); further names are ignored as
    /// above. Default 64 KiB.
    pub parameter_bytes: usize,
    /// Replies the server makes the client owe it (authentication answers, CopyFail) while it does
    /// not read them. Back-pressure: at or above it the connection stops processing the server's
    /// requests until the output is written. Default 1 MiB.
    pub output: usize,
    /// How many bytes the driver reads from one connection per turn before it looks at the other
    /// connections and at the clock (fairness). Default 256 KiB.
    pub read_per_turn: usize,
}

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets {
            results: super::MAX_QUEUED_ROW_BYTES,
            max_result_bytes: usize::MAX,
            notices: 1 << 20,
            notifications: 1 << 20,
            error_message: 64 << 10,
            parameters: 256,
            parameter_bytes: 64 << 10,
            output: 1 << 20,
            read_per_turn: 256 << 10,
        }
    }
}

impl Budgets {
    /// Every budget set to `bytes` (the parameter count to `bytes / 64`, at least 1, and
    /// `read_per_turn` to at least 1 KiB); `max_result_bytes` stays unlimited. For tests and small
    /// embedded uses.
    pub fn uniform(bytes: usize) -> Budgets {
        Budgets {
            results: bytes,
            max_result_bytes: usize::MAX,
            notices: bytes,
            notifications: bytes,
            error_message: bytes,
            parameters: (bytes / 64).max(1),
            parameter_bytes: bytes,
            output: bytes,
            read_per_turn: bytes.max(1024),
        }
    }

    /// The sum of the byte budgets of the queues (not `max_result_bytes` nor `read_per_turn`): what
    /// [`Connection::held_bytes`](super::Connection::held_bytes) stays under, give or take one
    /// message per queue.
    pub fn total(&self) -> usize {
        self.results
            .saturating_add(self.results) // COPY TO STDOUT data
            .saturating_add(self.notices)
            .saturating_add(self.notifications)
            .saturating_add(self.error_message)
            .saturating_add(self.parameter_bytes)
            .saturating_add(self.output)
    }
}

/// The fixed cost counted for each queued entry (its bookkeeping), on top of its bytes.
pub(super) const ENTRY_COST: usize = 64;

/// An error's texts.
pub(super) fn error_bytes(e: &crate::Error) -> usize {
    [b'D', b'H', b'W', b'q', b'p', b'C', b'S']
        .iter()
        .map(|&c| e.field(c).map_or(0, str::len))
        .sum::<usize>()
        + e.message().len()
}

/// A drop-oldest queue bounded in bytes, with a count of what it dropped.
#[derive(Debug)]
pub(super) struct Bounded<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    dropped: u64,
}

impl<T> Default for Bounded<T> {
    fn default() -> Bounded<T> {
        Bounded {
            items: VecDeque::new(),
            bytes: 0,
            dropped: 0,
        }
    }
}

impl<T> Bounded<T> {
    /// Queues `item`, costing `bytes` (plus [`ENTRY_COST`]), then drops the oldest items while the
    /// queue is over `budget` (never the one just queued).
    pub(super) fn push(&mut self, item: T, bytes: usize, budget: usize) {
        let cost = bytes.saturating_add(ENTRY_COST);
        self.items.push_back((item, cost));
        self.bytes = self.bytes.saturating_add(cost);
        while self.bytes > budget && self.items.len() > 1 {
            if let Some((_, c)) = self.items.pop_front() {
                self.bytes -= c;
                self.dropped += 1;
            }
        }
    }

    /// Takes every item, oldest first.
    pub(super) fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        self.items.drain(..).map(|(item, _)| item).collect()
    }

    /// The bytes queued (with the per-entry cost).
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many items were dropped so far.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The parameters PostgreSQL reports itself (`GUC_REPORT`): always kept, whatever the budgets.
const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "scram_iterations",
    "search_path",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
];

/// Server parameters from ParameterStatus: a map (O(1) per message) bounded in names and bytes.
#[derive(Debug, Default)]
pub(super) struct Params {
    map: HashMap<String, String>,
    bytes: usize,
    dropped: u64,
}

impl Params {
    /// Records `name = value`; returns false when a new name was ignored (over the budgets).
    pub(super) fn set(&mut self, name: &str, value: &str, budgets: &Budgets) -> bool {
        if let Some(slot) = self.map.get_mut(name) {
            self.bytes = self.bytes - slot.len() + value.len();
            value.clone_into(slot);
            return true;
        }
        let cost = name.len() + value.len();
        let full = self.map.len() >= budgets.parameters
            || self.bytes.saturating_add(cost) > budgets.parameter_bytes;
        if full && !REPORTED.contains(&name) {
            self.dropped += 1;
            return false;
        }
        self.bytes += cost;
        self.map.insert(name.to_owned(), value.to_owned());
        true
    }

    /// The value of `name`.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The bytes kept (names and values).
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many new names were ignored.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Drops the oldest half of `buffer` (at a line start where one is near, else at a character
/// boundary) once it is over `budget`: amortised O(1) per byte appended. Returns the bytes dropped.
pub(super) fn trim_error_buffer(buffer: &mut String, budget: usize) -> usize {
    if buffer.len() <= budget {
        return 0;
    }
    let keep = budget / 2;
    let mut cut = buffer.len() - keep;
    while !buffer.is_char_boundary(cut) {
        cut += 1;
    }
    // Prefer to start at a whole line.
    if let Some(nl) = buffer[cut..].find('\n')
        && nl + 1 < buffer.len() - cut
    {
        cut += nl + 1;
    }
    buffer.drain(..cut);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_drops_oldest_by_bytes_and_counts() {
        let mut q = Bounded::default();
        for i in 0..100u32 {
            q.push(i, 100, 1000);
        }
        assert!(q.bytes() <= 1000);
        assert_eq!(q.dropped() as usize + q.take().len(), 100);
        // One item larger than the budget is kept alone.
        q.push(7, 5000, 1000);
        assert_eq!(q.take(), vec![7]);
    }

    #[test]
    fn params_keep_reported_names_past_the_budget() {
        let budgets = Budgets {
            parameters: 2,
            ..Budgets::default()
        };
        let mut p = Params::default();
        assert!(p.set("a", "1", &budgets));
        assert!(p.set("b", "1", &budgets));
        assert!(!p.set("c", "1", &budgets));
        assert!(p.set("client_encoding", "UTF8", &budgets));
        assert!(p.set("a", "22", &budgets));
        assert_eq!(p.get("a"), Some("22"));
        assert_eq!(p.get("c"), None);
        assert_eq!(p.dropped(), 1);
        assert_eq!(p.bytes(), 3 + 2 + 19);
    }

    #[test]
    fn error_buffer_keeps_the_newest_lines() {
        let mut s = String::new();
        for i in 0..100 {
            s.push_str(&format!("ERROR:  error number {i}\n"));
            trim_error_buffer(&mut s, 200);
            assert!(s.len() <= 200);
        }
        assert!(s.ends_with("error number 99\n"));
        assert!(s.starts_with("ERROR:"));
    }
}

//! Connection status as libpq reports it: `PQtransactionStatus`, the server version the
//! multi-host checks go by.

use crate::conn::{Connection, State};
use crate::protocol::backend::TransactionStatus as Ready;

/// libpq's `PQtransactionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `PQTRANS_IDLE`: connected, not in a transaction block.
    Idle,
    /// `PQTRANS_ACTIVE`: a command is in progress (a query in flight, or results or the end
    /// marker not yet taken; in pipeline mode, anything queued).
    Active,
    /// `PQTRANS_INTRANS`: idle, in a valid transaction block.
    InTransaction,
    /// `PQTRANS_INERROR`: idle, in a failed transaction block.
    InError,
    /// `PQTRANS_UNKNOWN`: the connection is not open (still connecting, or broken).
    Unknown,
}

impl TransactionStatus {
    /// The status of a session, as libpq computes it: unknown unless the session is open, active
    /// while a command is in progress, else what the last ReadyForQuery said.
    ///
    /// ```
    /// use pgdblink::conn::{Connection, StartupConfig};
    /// use pgdblink::driver::TransactionStatus;
    ///
    /// let conn = Connection::new(StartupConfig::builder("alice", "db1", "n").build());
    /// assert_eq!(TransactionStatus::of(&conn), TransactionStatus::Unknown); // still starting
    /// ```
    pub fn of(conn: &Connection) -> TransactionStatus {
        match conn.state() {
            State::Idle => match conn.transaction_status() {
                Ready::Idle => TransactionStatus::Idle,
                Ready::InTransaction => TransactionStatus::InTransaction,
                Ready::Failed => TransactionStatus::InError,
            },
            State::Busy => TransactionStatus::Active,
            _ => TransactionStatus::Unknown,
        }
    }
}

/// The server version as libpq's `PQserverVersion` computes it from the `server_version` report:
/// `major * 10000 + minor` from PostgreSQL 10, `major * 10000 + minor * 100 + patch` before; 0 when
/// not reported or not a number.
pub(crate) fn server_version(conn: &Connection) -> u32 {
    let Some(text) = conn.parameter("server_version") else {
        return 0;
    };
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (next(), next(), next()) {
        (Some(major), minor, _) if major >= 10 => major * 10000 + minor.unwrap_or(0),
        (Some(major), Some(minor), patch) => major * 10000 + minor * 100 + patch.unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::StartupConfig;

    fn with_version(v: &str) -> u32 {
        let mut conn = Connection::new(StartupConfig::builder("u", "d", "n").build());
        let mut input = Vec::new();
        // AuthenticationOk, ParameterStatus server_version.
        input.extend_from_slice(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]);
        let body = [b"server_version\0".as_slice(), v.as_bytes(), b"\0"].concat();
        input.push(b'S');
        input.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        input.extend_from_slice(&body);
        let out = conn.pending_output().len();
        conn.consume_output(out);
        conn.handle_input(&input);
        server_version(&conn)
    }

    #[test]
    fn server_version_numbers() {
        assert_eq!(with_version("17.2"), 170002);
        assert_eq!(with_version("16devel"), 160000);
        assert_eq!(with_version("9.6.24"), 90624);
        assert_eq!(with_version("8.4"), 80400);
        assert_eq!(with_version("x"), 0);
    }

    #[test]
    fn transaction_status_unknown_while_starting() {
        let conn = Connection::new(StartupConfig::builder("u", "d", "n").build());
        assert_eq!(TransactionStatus::of(&conn), TransactionStatus::Unknown);
    }
}

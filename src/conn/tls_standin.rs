//! TEMPORARY stand-in for the session's TLS interface (branch tlsconn, notes/tls-interface.md) so the
//! driver compiles alone. Removed when tlsconn is merged.
#![allow(missing_docs, dead_code)]

use super::{Connection, StartupConfig};
use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsNegotiation {
    NotAttempted,
    Refused,
    Handshaking,
    Established,
    Failed,
}

impl Connection {
    pub fn tls_wanted(&self) -> bool {
        false
    }
    pub fn handle_tls_established(&mut self, server_end_point: Option<Vec<u8>>) {
        let _ = server_end_point;
    }
    pub fn handle_tls_failed(&mut self, error: Error) {
        let _ = error;
        self.handle_eof();
    }
    pub fn tls_in_use(&self) -> bool {
        false
    }
    pub fn tls_negotiation(&self) -> TlsNegotiation {
        TlsNegotiation::NotAttempted
    }
}

impl StartupConfig {
    pub fn with_tls_attempt(self, available: bool, try_tls: bool) -> StartupConfig {
        let _ = (available, try_tls);
        self
    }
}

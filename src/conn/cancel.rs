//! One cancel request, sans-IO: the CancelRequest packet out, then the wait for the server to close
//! the socket, which says it has processed the request (PostgreSQL never answers a CancelRequest).
//!
//! No sockets and no clock: a driver connects a fresh socket to the address the session uses, writes
//! [`pending_output`](CancelExchange::pending_output), reads while
//! [`wants_read`](CancelExchange::wants_read), reports what happened, and bounds the wait itself.
//! The blocking `CancelToken::cancel` and the mio reactor's cancel both run this exchange.
//!
//! A connection that uses TLS cancels over TLS, as libpq 17's cancel API does
//! ([`CancelExchange::over_tls`]): an SSLRequest first (or, with `sslnegotiation=direct`, the handshake
//! at once), the one-byte answer with libpq's checks, then the driver runs the TLS handshake
//! ([`tls_wanted`](CancelExchange::tls_wanted)) and the CancelRequest travels encrypted.

use crate::error::{Error, ErrorKind};
use crate::protocol::frontend;

/// Where a [`CancelExchange`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelState {
    /// The SSLRequest is (partly) unsent.
    SslRequest,
    /// Waiting for the one-byte answer to SSLRequest.
    SslResponse,
    /// The driver runs the TLS handshake ([`CancelExchange::tls_established`] when it is done).
    TlsHandshake,
    /// The CancelRequest packet is (partly) unsent.
    Sending,
    /// The packet is sent; waiting for the server to close the socket.
    AwaitingClose,
    /// The server closed the socket after the whole packet was sent (or the socket failed then,
    /// which libpq counts the same): the request was delivered. Not a promise that a query was
    /// cancelled.
    Delivered,
    /// The socket failed or closed before the whole packet was sent, or the TLS negotiation failed
    /// ([`CancelExchange::error_text`] says why): not delivered.
    Failed,
}

/// The client side of one cancel request. See the [module documentation](self).
#[derive(Debug)]
pub struct CancelExchange {
    packet: Vec<u8>,
    sent: usize,
    state: CancelState,
    /// The SSLRequest's bytes not yet sent.
    ssl_request_sent: usize,
    /// Why a TLS negotiation failed (libpq's text).
    error: Option<String>,
}

/// The 8 bytes of an SSLRequest.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

impl CancelExchange {
    /// An exchange cancelling the query of backend `pid` with its secret `key` (4 bytes in protocol
    /// 3.0, up to 256 in 3.2).
    pub fn new(pid: u32, key: &[u8]) -> Result<CancelExchange, Error> {
        let mut packet = Vec::with_capacity(12 + key.len());
        frontend::cancel_request(pid, key, &mut packet)
            .map_err(|e| Error::new(ErrorKind::Usage, e.to_string()))?;
        Ok(CancelExchange {
            packet,
            sent: 0,
            state: CancelState::Sending,
            ssl_request_sent: 0,
            error: None,
        })
    }

    /// An exchange whose CancelRequest travels over TLS: after an SSLRequest answered `S`, or (with
    /// `direct`, `sslnegotiation=direct`) with the handshake at once.
    pub fn over_tls(pid: u32, key: &[u8], direct: bool) -> Result<CancelExchange, Error> {
        let mut exchange = CancelExchange::new(pid, key)?;
        exchange.state = if direct {
            CancelState::TlsHandshake
        } else {
            CancelState::SslRequest
        };
        Ok(exchange)
    }

    /// Whether the driver must run the TLS handshake now (the exchange produces and takes no bytes
    /// meanwhile).
    pub fn tls_wanted(&self) -> bool {
        self.state == CancelState::TlsHandshake
    }

    /// The handshake has finished: the CancelRequest is next (to be encrypted by the driver).
    pub fn tls_established(&mut self) {
        if self.state == CancelState::TlsHandshake {
            self.state = CancelState::Sending;
        }
    }

    /// The TLS negotiation failed with libpq's `text`: the request is not delivered.
    pub fn tls_failed(&mut self, text: impl Into<String>) {
        if !self.is_done() {
            self.error = Some(text.into());
            self.state = CancelState::Failed;
        }
    }

    /// Why the TLS negotiation failed, if it did.
    pub fn error_text(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Where the exchange stands.
    pub fn state(&self) -> CancelState {
        self.state
    }

    /// Whether the exchange has ended, either way.
    pub fn is_done(&self) -> bool {
        matches!(self.state, CancelState::Delivered | CancelState::Failed)
    }

    /// Bytes to write to the socket.
    pub fn pending_output(&self) -> &[u8] {
        match self.state {
            CancelState::SslRequest => &SSL_REQUEST[self.ssl_request_sent..],
            CancelState::Sending => &self.packet[self.sent..],
            _ => &[],
        }
    }

    /// Whether there are bytes to write.
    pub fn wants_write(&self) -> bool {
        !self.pending_output().is_empty()
    }

    /// Marks `n` bytes of [`pending_output`](Self::pending_output) as written.
    pub fn consume_output(&mut self, n: usize) {
        if self.state == CancelState::SslRequest {
            self.ssl_request_sent = (self.ssl_request_sent + n).min(SSL_REQUEST.len());
            if self.ssl_request_sent == SSL_REQUEST.len() {
                self.state = CancelState::SslResponse;
            }
        }
        if self.state == CancelState::Sending {
            self.sent = (self.sent + n).min(self.packet.len());
            if self.sent == self.packet.len() {
                self.state = CancelState::AwaitingClose;
            }
        }
    }

    /// Whether the driver should read: the packet is out and the server has not closed yet.
    pub fn wants_read(&self) -> bool {
        matches!(
            self.state,
            CancelState::AwaitingClose | CancelState::SslResponse
        )
    }

    /// Bytes the server sent. The answer to SSLRequest is checked as libpq checks it (`S` alone:
    /// bytes after it were not sent by the server, CVE-2021-23222). After the CancelRequest
    /// PostgreSQL sends none; whatever arrives is discarded (nothing is kept, whatever the amount).
    pub fn handle_input(&mut self, data: &[u8]) {
        if self.state != CancelState::SslResponse {
            return;
        }
        let Some((&first, rest)) = data.split_first() else {
            return;
        };
        match first {
            b'S' if rest.is_empty() => self.state = CancelState::TlsHandshake,
            b'S' => self.tls_failed("received unencrypted data after SSL response"),
            b'N' => self.tls_failed("server does not support SSL, but SSL was required"),
            b'E' => self.tls_failed("server sent an error response during SSL exchange"),
            other => self.tls_failed(format!(
                "received invalid response to SSL negotiation: {}",
                crate::protocol::printable(other)
            )),
        }
    }

    /// The server closed the socket (a read returned end of stream, or a write returned 0).
    pub fn handle_eof(&mut self) {
        self.end();
    }

    /// The socket failed (a reset, a broken pipe). After the whole packet was written this counts as
    /// the server having closed the socket, as in libpq; before, the request was not delivered and
    /// the driver reports its I/O error.
    pub fn handle_error(&mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.state = match self.state {
            CancelState::SslRequest | CancelState::SslResponse | CancelState::TlsHandshake => {
                if self.error.is_none() {
                    self.error = Some("server closed the connection unexpectedly".into());
                }
                CancelState::Failed
            }
            CancelState::Sending => CancelState::Failed,
            CancelState::AwaitingClose => CancelState::Delivered,
            done => done,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u32, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frontend::cancel_request(pid, key, &mut out).unwrap();
        out
    }

    #[test]
    fn sends_the_cancel_request_then_waits_for_the_close() {
        let mut ex = CancelExchange::new(4242, &[1, 2, 3, 4]).unwrap();
        assert_eq!(ex.state(), CancelState::Sending);
        assert!(ex.wants_write() && !ex.wants_read() && !ex.is_done());
        assert_eq!(
            ex.pending_output(),
            [
                0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x10, 0x92, 1, 2, 3, 4
            ]
        );
        assert_eq!(ex.pending_output(), packet(4242, &[1, 2, 3, 4]));
        ex.consume_output(16);
        assert_eq!(ex.state(), CancelState::AwaitingClose);
        assert!(!ex.wants_write() && ex.wants_read() && !ex.is_done());
        ex.handle_eof();
        assert_eq!(ex.state(), CancelState::Delivered);
        assert!(ex.is_done() && !ex.wants_read() && !ex.wants_write());
    }

    #[test]
    fn partial_writes_continue_where_they_stopped() {
        let key = [7u8; 32];
        let mut ex = CancelExchange::new(1, &key).unwrap();
        let whole = packet(1, &key);
        assert_eq!(ex.pending_output().len(), 12 + 32);
        ex.consume_output(5);
        assert_eq!(ex.pending_output(), &whole[5..]);
        assert_eq!(ex.state(), CancelState::Sending);
        ex.consume_output(1000);
        assert_eq!(ex.state(), CancelState::AwaitingClose);
        assert!(ex.pending_output().is_empty());
        // Further consumption changes nothing.
        ex.consume_output(3);
        assert_eq!(ex.state(), CancelState::AwaitingClose);
    }

    #[test]
    fn a_failure_after_the_packet_counts_as_delivered() {
        let mut ex = CancelExchange::new(9, &[0; 4]).unwrap();
        ex.consume_output(16);
        ex.handle_error();
        assert_eq!(ex.state(), CancelState::Delivered);
    }

    #[test]
    fn a_failure_or_close_before_the_whole_packet_is_a_failure() {
        let mut ex = CancelExchange::new(9, &[0; 4]).unwrap();
        ex.consume_output(3);
        ex.handle_error();
        assert_eq!(ex.state(), CancelState::Failed);
        assert!(ex.is_done() && !ex.wants_write() && !ex.wants_read());

        let mut ex = CancelExchange::new(9, &[0; 4]).unwrap();
        ex.handle_eof();
        assert_eq!(ex.state(), CancelState::Failed);
    }

    #[test]
    fn input_is_discarded_and_the_end_is_final() {
        let mut ex = CancelExchange::new(9, &[0; 4]).unwrap();
        ex.consume_output(16);
        ex.handle_input(&[b'E'; 4096]);
        assert_eq!(ex.state(), CancelState::AwaitingClose);
        ex.handle_eof();
        ex.handle_error();
        ex.handle_eof();
        assert_eq!(ex.state(), CancelState::Delivered);
    }

    #[test]
    fn over_tls_the_ssl_request_and_the_handshake_come_first() {
        let mut ex = CancelExchange::over_tls(4242, &[1, 2, 3, 4], false).unwrap();
        assert_eq!(ex.state(), CancelState::SslRequest);
        assert_eq!(ex.pending_output(), [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
        ex.consume_output(3);
        assert_eq!(ex.pending_output(), [8, 0x04, 0xd2, 0x16, 0x2f]);
        ex.consume_output(5);
        assert_eq!(ex.state(), CancelState::SslResponse);
        assert!(ex.wants_read() && !ex.wants_write() && !ex.tls_wanted());
        ex.handle_input(b"S");
        assert!(ex.tls_wanted() && !ex.wants_read() && !ex.wants_write());
        ex.tls_established();
        assert_eq!(ex.pending_output(), packet(4242, &[1, 2, 3, 4]));
        ex.consume_output(16);
        ex.handle_eof();
        assert_eq!(ex.state(), CancelState::Delivered);

        let direct = CancelExchange::over_tls(1, &[0; 4], true).unwrap();
        assert!(direct.tls_wanted() && direct.pending_output().is_empty());
    }

    #[test]
    fn over_tls_bad_answers_fail_with_libpq_texts() {
        for (answer, text) in [
            (
                &b"N"[..],
                "server does not support SSL, but SSL was required",
            ),
            (b"E", "server sent an error response during SSL exchange"),
            (b"Sxyz", "received unencrypted data after SSL response"),
            (b"X", "received invalid response to SSL negotiation: X"),
        ] {
            let mut ex = CancelExchange::over_tls(1, &[0; 4], false).unwrap();
            ex.consume_output(8);
            ex.handle_input(answer);
            assert_eq!(ex.state(), CancelState::Failed, "{answer:?}");
            assert_eq!(ex.error_text(), Some(text));
            assert!(ex.pending_output().is_empty(), "the key never goes out");
        }
        let mut ex = CancelExchange::over_tls(1, &[0; 4], false).unwrap();
        ex.consume_output(8);
        ex.handle_input(b"S");
        ex.tls_failed("SSL error: certificate verify failed");
        assert_eq!(ex.state(), CancelState::Failed);
        assert!(ex.pending_output().is_empty());
        let mut ex = CancelExchange::over_tls(1, &[0; 4], false).unwrap();
        ex.handle_eof();
        assert_eq!(ex.state(), CancelState::Failed);
    }

    #[test]
    fn an_oversized_key_is_refused() {
        assert!(CancelExchange::new(1, &[0; 300]).is_err());
    }
}

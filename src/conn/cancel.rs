//! One cancel request, sans-IO: the CancelRequest packet out, then the wait for the server to close
//! the socket, which says it has processed the request (PostgreSQL never answers a CancelRequest).
//!
//! No sockets and no clock: a driver connects a fresh socket to the address the session uses, writes
//! [`pending_output`](CancelExchange::pending_output), reads while
//! [`wants_read`](CancelExchange::wants_read), reports what happened, and bounds the wait itself.
//! The blocking `CancelToken::cancel` and the mio reactor's cancel both run this exchange.

use crate::error::{Error, ErrorKind};
use crate::protocol::frontend;

/// Where a [`CancelExchange`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelState {
    /// The CancelRequest packet is (partly) unsent.
    Sending,
    /// The packet is sent; waiting for the server to close the socket.
    AwaitingClose,
    /// The server closed the socket after the whole packet was sent (or the socket failed then,
    /// which libpq counts the same): the request was delivered. Not a promise that a query was
    /// cancelled.
    Delivered,
    /// The socket failed or closed before the whole packet was sent: not delivered.
    Failed,
}

/// The client side of one cancel request. See the [module documentation](self).
#[derive(Debug)]
pub struct CancelExchange {
    packet: Vec<u8>,
    sent: usize,
    state: CancelState,
}

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
        })
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
        if self.state == CancelState::Sending {
            self.sent = (self.sent + n).min(self.packet.len());
            if self.sent == self.packet.len() {
                self.state = CancelState::AwaitingClose;
            }
        }
    }

    /// Whether the driver should read: the packet is out and the server has not closed yet.
    pub fn wants_read(&self) -> bool {
        self.state == CancelState::AwaitingClose
    }

    /// Bytes the server sent. PostgreSQL sends none on a cancel socket; whatever arrives is
    /// discarded (nothing is kept, whatever the amount).
    pub fn handle_input(&mut self, _data: &[u8]) {}

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
    fn an_oversized_key_is_refused() {
        assert!(CancelExchange::new(1, &[0; 300]).is_err());
    }
}

//! The seam between a connection's socket and its session. See [`Transport`].

use std::io::{self, Read, Write};

use crate::conn::Connection;

/// What a connection's bytes go through between its socket and its session: what the bytes on the
/// wire are.
///
/// Today only plain text: the session's bytes go to the socket as they are. TLS (rustls) plugs in
/// here, so the methods are shaped after rustls's `ConnectionCommon`, and a [`PgSocket`] pumps bytes
/// stream <-> transport <-> [`Connection`] through them alone:
///
/// * in: [`read_tls`](Transport::read_tls) from the stream,
///   [`process_new_packets`](Transport::process_new_packets), then
///   [`read_plaintext`](Transport::read_plaintext) (rustls's `reader()`) into the session;
/// * out: [`take_plaintext`](Transport::take_plaintext) (rustls's `writer()`) from the session, then
///   [`write_tls`](Transport::write_tls) to the stream while [`wants_write`](Transport::wants_write).
///
/// A plain transport copies nothing: it reads into the caller's read buffer and hands that to the
/// session, and writes the session's pending output itself.
///
/// [`PgSocket`]: super::PgSocket
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Transport {
    /// No encryption: the session's bytes are the wire's.
    #[default]
    Plain,
}

impl Transport {
    /// rustls's `read_tls`: reads what the stream has into the transport. A plain transport reads
    /// into `buf` (the thread's read buffer) and keeps nothing;
    /// [`read_plaintext`](Self::read_plaintext) takes the same `buf`. `Ok(0)` is the end of the stream.
    #[inline]
    pub fn read_tls(&mut self, rd: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain => rd.read(buf),
        }
    }

    /// rustls's `process_new_packets`: turns what [`read_tls`](Self::read_tls) took in into
    /// plaintext (decrypting, answering handshake messages). A plain transport has nothing to do; an
    /// error ends the connection.
    #[inline]
    pub fn process_new_packets(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain => Ok(()),
        }
    }

    /// rustls's `reader()`: hands the plaintext received to `sink` (the session's `handle_input`).
    /// `buf` is the buffer [`read_tls`](Self::read_tls) was given and `filled` what that call
    /// returned: a plain transport's plaintext is `buf[..filled]` itself.
    #[inline]
    pub fn read_plaintext(&mut self, buf: &mut [u8], filled: usize, mut sink: impl FnMut(&[u8])) {
        match self {
            Transport::Plain => sink(&buf[..filled]),
        }
    }

    /// rustls's `writer()`: takes the session's pending output as plaintext to send. A plain
    /// transport takes nothing: [`write_tls`](Self::write_tls) writes the session's output as it
    /// is, without a copy.
    #[inline]
    pub fn take_plaintext(&mut self, conn: &mut Connection) {
        match self {
            Transport::Plain => {
                let _ = conn;
            }
        }
    }

    /// rustls's `wants_write`: whether bytes wait to be written to the stream.
    #[inline]
    pub fn wants_write(&self, conn: &Connection) -> bool {
        match self {
            Transport::Plain => conn.wants_write(),
        }
    }

    /// rustls's `write_tls`: writes waiting bytes to the stream, once; returns how many were
    /// written. A plain transport writes the session's pending output and marks what went as sent.
    #[inline]
    pub fn write_tls(&mut self, wr: &mut impl Write, conn: &mut Connection) -> io::Result<usize> {
        match self {
            Transport::Plain => {
                let n = wr.write(conn.pending_output())?;
                conn.consume_output(n);
                Ok(n)
            }
        }
    }

    /// Forgets every byte waiting to be written: the peer is gone.
    pub fn discard_output(&mut self, conn: &mut Connection) {
        match self {
            Transport::Plain => {
                let pending = conn.pending_output().len();
                conn.consume_output(pending);
            }
        }
    }
}

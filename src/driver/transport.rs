//! The seam between a connection's socket and its session. See [`Transport`].

use std::io::{self, BufRead, Read, Write};

use crate::conn::Connection;

use super::tls;

/// What a connection's bytes go through between its socket and its session: what the bytes on the
/// wire are.
///
/// Plain text (the session's bytes go to the socket as they are) or TLS (rustls). The methods are
/// shaped after rustls's `ConnectionCommon`, and a [`PgSocket`] pumps bytes
/// stream <-> transport <-> [`Connection`] through them alone:
///
/// * in: [`read_tls`](Transport::read_tls) from the stream into the caller's read buffer, then
///   [`read_plaintext`](Transport::read_plaintext) (rustls's `read_tls`, `process_new_packets`
///   and `reader()` for TLS) into the session;
/// * out: [`take_plaintext`](Transport::take_plaintext) (rustls's `writer()`) from the session, then
///   [`write_tls`](Transport::write_tls) to the stream while [`wants_write`](Transport::wants_write).
///
/// A plain transport copies nothing: it reads into the caller's read buffer and hands that to the
/// session, and writes the session's pending output itself. TLS reads the socket into the same
/// buffer (64 KiB per syscall), feeds rustls from it and hands rustls's plaintext over in place.
///
/// [`PgSocket`]: super::PgSocket
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Transport {
    /// No encryption: the session's bytes are the wire's.
    #[default]
    Plain,
    /// TLS: the session's bytes go through a rustls client session (from the handshake on).
    Tls(Box<TlsTransport>),
}

/// A rustls client session over a connection's socket. See [`Transport::Tls`].
#[derive(Debug)]
pub struct TlsTransport {
    session: rustls::ClientConnection,
    /// `sslnegotiation=direct`: ALPN `postgresql` must have been selected.
    direct: bool,
    /// The handshake has finished and the session was told.
    established: bool,
    /// The peer is gone: nothing more is written.
    dead: bool,
}

impl TlsTransport {
    /// A transport starting a handshake with `session`.
    pub fn new(session: rustls::ClientConnection, direct: bool) -> TlsTransport {
        TlsTransport {
            session,
            direct,
            established: false,
            dead: false,
        }
    }

    /// The rustls session.
    pub fn session(&self) -> &rustls::ClientConnection {
        &self.session
    }
}

/// What a finished handshake means for the session.
#[derive(Debug)]
pub enum Handshake {
    /// Still running (or not TLS, or already reported).
    Pending,
    /// Finished: the tls-server-end-point data for channel binding, if the certificate has one.
    Established(Option<Vec<u8>>),
    /// Finished, but a check after it failed (libpq's ALPN check): the text.
    Failed(String),
}

impl Transport {
    /// rustls's `read_tls`: reads what the stream has into the transport. A plain transport reads
    /// into `buf` (the thread's read buffer) and keeps nothing;
    /// [`read_plaintext`](Self::read_plaintext) takes the same `buf`. `Ok(0)` is the end of the stream.
    #[inline]
    pub fn read_tls(&mut self, rd: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        // TLS too: the socket's bytes go to the caller's (large) buffer, and from there to rustls
        // (see `read_plaintext`); rustls's own `read_tls` would read at most 4 KiB per syscall.
        let _ = self;
        rd.read(buf)
    }

    /// Whether a TLS handshake is running.
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(t) => !t.established,
        }
    }

    /// Whether the connection is encrypted (the handshake has finished).
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(t) if t.established)
    }

    /// The rustls session, if TLS.
    pub fn tls_session(&self) -> Option<&rustls::ClientConnection> {
        match self {
            Transport::Plain => None,
            Transport::Tls(t) => Some(&t.session),
        }
    }

    /// Once, when the TLS handshake has just finished: what the session must be told.
    pub fn take_handshake(&mut self) -> Handshake {
        let Transport::Tls(t) = self else {
            return Handshake::Pending;
        };
        if t.established || t.session.is_handshaking() {
            return Handshake::Pending;
        }
        t.established = true;
        if let Err(text) = tls::check_alpn(t.direct, t.session.alpn_protocol()) {
            return Handshake::Failed(text);
        }
        let end_point = t
            .session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| tls::server_end_point(cert.as_ref()));
        Handshake::Established(end_point)
    }

    /// rustls's `read_tls`, `process_new_packets` and `reader()`: hands the plaintext received to
    /// `sink` (the session's `handle_input`). `buf` is the buffer [`read_tls`](Self::read_tls) was
    /// given and `filled` what that call returned: a plain transport's plaintext is `buf[..filled]`
    /// itself; TLS feeds those bytes to rustls a record at a time, decrypting (or answering
    /// handshake messages) in between, and hands rustls's plaintext over without a copy.
    ///
    /// Returns whether the peer has closed the TLS stream (close_notify), or a TLS error in libpq's
    /// words ([`tls::error_text`]), which ends the connection.
    #[inline]
    pub fn read_plaintext(
        &mut self,
        buf: &mut [u8],
        filled: usize,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<bool, String> {
        match self {
            Transport::Plain => {
                sink(&buf[..filled]);
                Ok(false)
            }
            Transport::Tls(t) => {
                let mut input = &buf[..filled];
                while !input.is_empty() {
                    t.session
                        .read_tls(&mut input)
                        .map_err(|e| format!("SSL error: {e}"))?;
                    t.session
                        .process_new_packets()
                        .map_err(|e| tls::error_text(&e))?;
                    loop {
                        let mut reader = t.session.reader();
                        match reader.fill_buf() {
                            Ok([]) => return Ok(true),
                            Ok(data) => {
                                let n = data.len();
                                sink(data);
                                reader.consume(n);
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => return Ok(true),
                        }
                    }
                }
                Ok(false)
            }
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
            Transport::Tls(t) => {
                let out = conn.pending_output();
                if !out.is_empty() && !t.dead {
                    // rustls's writer buffers everything (it never returns a short write).
                    let n = t.session.writer().write(out).unwrap_or(0);
                    conn.consume_output(n);
                }
            }
        }
    }

    /// rustls's `wants_write`: whether bytes wait to be written to the stream.
    #[inline]
    pub fn wants_write(&self, conn: &Connection) -> bool {
        match self {
            Transport::Plain => conn.wants_write(),
            Transport::Tls(t) => !t.dead && (t.session.wants_write() || conn.wants_write()),
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
            Transport::Tls(t) => {
                if t.session.wants_write() {
                    t.session.write_tls(wr)
                } else {
                    // Only plaintext waits, which take_plaintext moves into the session first.
                    Err(io::ErrorKind::WouldBlock.into())
                }
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
            Transport::Tls(t) => {
                t.dead = true;
                let pending = conn.pending_output().len();
                conn.consume_output(pending);
            }
        }
    }

    /// Queues a TLS close_notify (before Terminate and the socket's shutdown); nothing in plain text.
    pub fn send_close_notify(&mut self) {
        if let Transport::Tls(t) = self {
            t.session.send_close_notify();
        }
    }
}

//! Cancel requests: a CancelRequest on a fresh socket to the exact address a connection uses.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::socket::{Peer, connect_failure_text};
use crate::error::{Error, ErrorKind};
use crate::protocol::frontend;

/// How long a cancel waits for the server to close the cancel socket, by default (PostgreSQL 17's
/// dblink waits 30 s).
pub const DEFAULT_CANCEL_TIMEOUT: Duration = Duration::from_secs(30);

/// What it takes to cancel a running query: the server address in use, the backend's pid and its
/// secret key (4 bytes in protocol 3.0, up to 256 in 3.2). Independent of the connection, so it can be
/// used from another thread.
#[derive(Clone)]
pub struct CancelToken {
    peer: Peer,
    pid: u32,
    key: Vec<u8>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("peer", &self.peer)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl CancelToken {
    /// A token for backend `pid` with `key` at `peer`.
    pub fn new(peer: Peer, pid: u32, key: Vec<u8>) -> CancelToken {
        CancelToken { peer, pid, key }
    }

    /// The address the cancel request goes to.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The backend process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends the CancelRequest and waits (at most `timeout`) until the server closes the socket, which
    /// says it has processed the request. Success means delivered, not that a query was cancelled.
    pub fn cancel(&self, timeout: Duration) -> Result<(), Error> {
        let mut packet = Vec::with_capacity(16);
        frontend::cancel_request(self.pid, &self.key, &mut packet)
            .map_err(|e| Error::new(ErrorKind::Usage, e.to_string()))?;
        let deadline = Instant::now() + timeout;
        let failed = |e: &io::Error| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                Error::new(ErrorKind::Io, "cancel request timed out")
            } else {
                self.failure(e)
            }
        };
        match &self.peer {
            Peer::Tcp(addr) => {
                let mut s =
                    std::net::TcpStream::connect_timeout(addr, timeout).map_err(|e| failed(&e))?;
                exchange(&mut s, &packet, deadline, |s, t| s.set_read_timeout(t))
                    .map_err(|e| failed(&e))
            }
            Peer::Unix(path) => {
                let mut s =
                    std::os::unix::net::UnixStream::connect(path).map_err(|e| failed(&e))?;
                s.set_write_timeout(Some(timeout)).map_err(|e| failed(&e))?;
                exchange(&mut s, &packet, deadline, |s, t| s.set_read_timeout(t))
                    .map_err(|e| failed(&e))
            }
        }
    }
}

fn describe(peer: &Peer) -> String {
    match peer {
        Peer::Tcp(addr) => format!(
            "connection to server at \"{}\", port {} failed: ",
            addr.ip(),
            addr.port()
        ),
        Peer::Unix(path) => format!(
            "connection to server on socket \"{}\" failed: ",
            path.display()
        ),
    }
}

/// Writes the packet, then reads until EOF or the deadline. Errors after the write (a reset) count as
/// the server having closed the socket, as in libpq.
fn exchange<S: Read + Write>(
    s: &mut S,
    packet: &[u8],
    deadline: Instant,
    set_timeout: impl Fn(&S, Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    s.write_all(packet)?;
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        set_timeout(s, Some(left))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(e);
            }
            Err(_) => return Ok(()),
        }
    }
}

/// A cancel request in progress on a non-blocking socket (driven by the reactor).
pub(crate) struct CancelRequest<'a> {
    token: &'a CancelToken,
    stream: super::Stream,
    packet: Vec<u8>,
    written: usize,
    result: Option<Result<(), Error>>,
}

impl<'a> CancelRequest<'a> {
    pub(crate) fn start(token: &'a CancelToken) -> Result<CancelRequest<'a>, Error> {
        let mut packet = Vec::with_capacity(16);
        frontend::cancel_request(token.pid, &token.key, &mut packet)
            .map_err(|e| Error::new(ErrorKind::Usage, e.to_string()))?;
        let stream = super::Stream::connect(&token.peer).map_err(|e| token.failure(&e))?;
        Ok(CancelRequest {
            token,
            stream,
            packet,
            written: 0,
            result: None,
        })
    }

    pub(crate) fn stream_mut(&mut self) -> &mut super::Stream {
        &mut self.stream
    }

    /// Advances as far as the socket allows; true when finished (either way).
    pub(crate) fn progress(&mut self) -> bool {
        if self.result.is_some() {
            return true;
        }
        if self.written < self.packet.len() {
            match self.stream.check_connected() {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    self.result = Some(Err(self.token.failure(&e)));
                    return true;
                }
            }
            while self.written < self.packet.len() {
                match self.stream.write(&self.packet[self.written..]) {
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.result = Some(Err(self.token.failure(&e)));
                        return true;
                    }
                }
            }
        }
        let mut buf = [0u8; 64];
        loop {
            match self.stream.read(&mut buf) {
                // The server closed the socket: the request has been processed.
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A reset after the request was written counts as closed, as in libpq.
                Err(_) => break,
            }
        }
        self.result = Some(Ok(()));
        true
    }

    pub(crate) fn outcome(&mut self) -> Result<(), Error> {
        self.result.take().unwrap_or(Ok(()))
    }
}

impl CancelToken {
    fn failure(&self, e: &io::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            format!(
                "{}{}",
                describe(&self.peer),
                connect_failure_text(&self.peer, e)
            ),
        )
    }
}

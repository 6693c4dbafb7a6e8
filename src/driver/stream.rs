//! The byte stream under a connection: a non-blocking TCP or unix-domain socket, the options the
//! connection string sets on it, and libpq's wording of its failures.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::conninfo::Config;
use crate::error::{Error, ErrorKind};

/// The address a connection uses: where its cancel requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix-domain socket path (`<dir>/.s.PGSQL.<port>`).
    Unix(PathBuf),
}

/// What the connection string says about a TCP socket (libpq's `keepalives`, `keepalives_idle`,
/// `keepalives_interval`, `keepalives_count` and `tcp_user_timeout`). Unix-domain sockets have none.
///
/// As libpq: with `keepalives` on (the default) `SO_KEEPALIVE` is set, and each of the others only
/// when given (otherwise the system's default stays); with `keepalives=0` nothing is set at all, so
/// `SO_KEEPALIVE` stays off and `tcp_user_timeout` is not applied either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// `keepalives`: whether to set `SO_KEEPALIVE` (default on).
    pub keepalives: bool,
    /// `keepalives_idle`: seconds of idleness before the first probe (`TCP_KEEPIDLE`).
    pub keepalives_idle: Option<Duration>,
    /// `keepalives_interval`: seconds between probes (`TCP_KEEPINTVL`).
    pub keepalives_interval: Option<Duration>,
    /// `keepalives_count`: probes lost before the connection is dead (`TCP_KEEPCNT`).
    pub keepalives_count: Option<u32>,
    /// `tcp_user_timeout`: how long (milliseconds in the connection string) sent data may stay
    /// unacknowledged before the connection is dead (`TCP_USER_TIMEOUT`, Linux); 0 is the system's
    /// default.
    pub tcp_user_timeout: Option<Duration>,
}

impl Default for SocketOptions {
    /// libpq's defaults: keepalives on, everything else the system's.
    fn default() -> SocketOptions {
        SocketOptions {
            keepalives: true,
            keepalives_idle: None,
            keepalives_interval: None,
            keepalives_count: None,
            tcp_user_timeout: None,
        }
    }
}

impl SocketOptions {
    /// The options a connection string sets. Negative values count as 0, as in libpq; a value that
    /// is not an integer is libpq's `invalid integer value "x" for connection option "keepalives_idle"`.
    pub fn from_config(config: &Config) -> Result<SocketOptions, Error> {
        let int = |keyword: &str| -> Result<Option<u32>, Error> {
            match config.get(keyword) {
                None => Ok(None),
                Some(value) => parse_int(value, keyword).map(|n| Some(n.max(0).unsigned_abs())),
            }
        };
        let keepalives = match config.get("keepalives") {
            None => true,
            Some(value) => parse_int(value, "keepalives")? != 0,
        };
        let seconds = |n: u32| Duration::from_secs(u64::from(n));
        Ok(SocketOptions {
            keepalives,
            keepalives_idle: int("keepalives_idle")?.map(seconds),
            keepalives_interval: int("keepalives_interval")?.map(seconds),
            keepalives_count: int("keepalives_count")?,
            tcp_user_timeout: int("tcp_user_timeout")?
                .map(|ms| Duration::from_millis(u64::from(ms))),
        })
    }

    /// Sets the options on a TCP socket. A failure names the option as libpq does:
    /// `setsockopt(TCP_KEEPIDLE) failed: Invalid argument`.
    fn apply(&self, stream: &mio::net::TcpStream) -> Result<(), String> {
        if !self.keepalives {
            return Ok(());
        }
        let socket = socket2::SockRef::from(stream);
        let failed = |option: &str, e: io::Error| {
            format!("setsockopt({option}) failed: {}", os_error_text(&e))
        };
        socket
            .set_keepalive(true)
            .map_err(|e| failed("SO_KEEPALIVE", e))?;
        // One option per call, so that a failure names its option.
        let keepalive = socket2::TcpKeepalive::new;
        if let Some(idle) = self.keepalives_idle {
            socket
                .set_tcp_keepalive(&keepalive().with_time(idle))
                .map_err(|e| failed("TCP_KEEPIDLE", e))?;
        }
        if let Some(interval) = self.keepalives_interval {
            socket
                .set_tcp_keepalive(&keepalive().with_interval(interval))
                .map_err(|e| failed("TCP_KEEPINTVL", e))?;
        }
        if let Some(count) = self.keepalives_count {
            socket
                .set_tcp_keepalive(&keepalive().with_retries(count))
                .map_err(|e| failed("TCP_KEEPCNT", e))?;
        }
        #[cfg(target_os = "linux")]
        if let Some(timeout) = self.tcp_user_timeout {
            socket
                .set_tcp_user_timeout(Some(timeout))
                .map_err(|e| failed("TCP_USER_TIMEOUT", e))?;
        }
        Ok(())
    }
}

/// libpq's `parse_int_param`: an `int` with optional surrounding whitespace and sign.
fn parse_int(value: &str, keyword: &str) -> Result<i32, Error> {
    let trimmed = value.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    match trimmed.parse::<i32>() {
        Ok(n) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(Error::new(
            ErrorKind::Config,
            format!("invalid integer value \"{value}\" for connection option \"{keyword}\""),
        )),
    }
}

/// A non-blocking stream: TCP or unix-domain.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(mio::net::TcpStream),
    /// Unix-domain socket.
    Unix(mio::net::UnixStream),
}

/// Why opening a stream failed: the connect itself (libpq adds its "Is the server running" hint),
/// or an option the connection string sets (the text names it).
#[derive(Debug)]
pub enum OpenError {
    /// The socket or its connect failed.
    Connect(io::Error),
    /// A socket option could not be set: libpq's `setsockopt(...) failed: ...`.
    Option(String),
}

impl Stream {
    /// Starts a non-blocking connect to `peer` with libpq's default socket options.
    pub fn connect(peer: &Peer) -> io::Result<Stream> {
        match Stream::open(peer, &SocketOptions::default()) {
            Ok(s) => Ok(s),
            Err(OpenError::Connect(e)) => Err(e),
            Err(OpenError::Option(text)) => Err(io::Error::other(text)),
        }
    }

    /// Starts a non-blocking connect to `peer`, setting `options` on a TCP socket.
    pub fn open(peer: &Peer, options: &SocketOptions) -> Result<Stream, OpenError> {
        match peer {
            Peer::Tcp(addr) => {
                let s = mio::net::TcpStream::connect(*addr).map_err(OpenError::Connect)?;
                // Round trips are small messages: never wait for Nagle.
                s.set_nodelay(true).map_err(OpenError::Connect)?;
                options.apply(&s).map_err(OpenError::Option)?;
                Ok(Stream::Tcp(s))
            }
            Peer::Unix(path) => Ok(Stream::Unix(
                mio::net::UnixStream::connect(path).map_err(OpenError::Connect)?,
            )),
        }
    }

    /// The TCP stream, if this is one (to read its socket options back, for instance).
    pub fn tcp(&self) -> Option<&mio::net::TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Unix(_) => None,
        }
    }

    /// mio's rule for a non-blocking connect: after a writable event, `take_error` reports a failure;
    /// `peer_addr` failing with `NotConnected` means the event was spurious and the connect still runs.
    /// Returns `Ok(true)` once connected.
    pub fn check_connected(&self) -> io::Result<bool> {
        let (err, peer) = match self {
            Stream::Tcp(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
            Stream::Unix(s) => (s.take_error()?, s.peer_addr().map(|_| ())),
        };
        if let Some(e) = err {
            return Err(e);
        }
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

/// On Linux every read and write passes `MSG_DONTWAIT`: they never block, whether or not the socket
/// is in blocking mode, which [`Stream::recv_waiting`] relies on (a client waiting for one
/// connection sleeps in `recv` itself instead of in `epoll_wait` first).
#[cfg(target_os = "linux")]
impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, recv};
        recv(self.raw_fd(), buf, MsgFlags::MSG_DONTWAIT).map_err(errno_error)
    }
}

#[cfg(target_os = "linux")]
impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, send};
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        send(self.raw_fd(), buf, flags).map_err(errno_error)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn errno_error(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

#[cfg(target_os = "linux")]
impl Stream {
    fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Puts the socket in blocking mode: [`read`](Read::read) and [`write`](Write::write) stay
    /// non-blocking (`MSG_DONTWAIT`); only [`recv_waiting`](Self::recv_waiting) sleeps.
    pub(crate) fn set_blocking(&self) -> io::Result<()> {
        let sock = match self {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            Stream::Unix(s) => socket2::SockRef::from(s),
        };
        sock.set_nonblocking(false)
    }

    /// One `recv` that sleeps until input, the end of the stream or an error arrives (on a socket
    /// put in blocking mode by [`set_blocking`](Self::set_blocking); otherwise it does not wait).
    /// An interrupted wait starts again.
    pub(crate) fn recv_waiting(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, recv};
        loop {
            match recv(self.raw_fd(), buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => {}
                r => return r.map_err(errno_error),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Unix(s) => s.register(registry, token, interests),
        }
    }
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Unix(s) => s.reregister(registry, token, interests),
        }
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
        }
    }
}

/// libpq's wording of an OS error: the `strerror` text without Rust's ` (os error N)` suffix.
pub fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The hint libpq adds after a refused or missing server.
pub(crate) fn connect_failure_text(peer: &Peer, e: &io::Error) -> String {
    let mut text = os_error_text(e);
    match (peer, e.kind()) {
        (Peer::Tcp(_), io::ErrorKind::ConnectionRefused) => text
            .push_str("\n\tIs the server running on that host and accepting TCP/IP connections?"),
        (Peer::Unix(_), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => text
            .push_str(
                "\n\tIs the server running locally and accepting connections on that socket?",
            ),
        _ => {}
    }
    text
}

/// An error for an I/O failure of the connection itself.
pub(crate) fn io_error(e: io::Error) -> Error {
    Error::io(ErrorKind::Io, os_error_text(&e), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(conninfo: &str) -> Result<SocketOptions, Error> {
        SocketOptions::from_config(&Config::parse(conninfo).unwrap())
    }

    #[test]
    fn keepalive_options_from_the_connection_string() {
        assert_eq!(options("host=h").unwrap(), SocketOptions::default());
        assert!(options("host=h").unwrap().keepalives);
        assert!(!options("host=h keepalives=0").unwrap().keepalives);
        let o = options(
            "host=h keepalives_idle=30 keepalives_interval=' 5 ' keepalives_count=+3 tcp_user_timeout=2500",
        )
        .unwrap();
        assert_eq!(o.keepalives_idle, Some(Duration::from_secs(30)));
        assert_eq!(o.keepalives_interval, Some(Duration::from_secs(5)));
        assert_eq!(o.keepalives_count, Some(3));
        assert_eq!(o.tcp_user_timeout, Some(Duration::from_millis(2500)));
        // Negative values count as 0, as in libpq.
        assert_eq!(
            options("host=h keepalives_count=-4")
                .unwrap()
                .keepalives_count,
            Some(0)
        );
        assert_eq!(
            options("host=h keepalives_idle=x").unwrap_err().message(),
            r#"invalid integer value "x" for connection option "keepalives_idle""#
        );
        assert_eq!(
            options("host=h tcp_user_timeout=1.5")
                .unwrap_err()
                .message(),
            r#"invalid integer value "1.5" for connection option "tcp_user_timeout""#
        );
    }
}

//! The floor: a client with no client library, in two variants. A connection is opened by hand
//! (StartupMessage, trust authentication); each query is one pre-encoded `Query` written with one
//! `send`, and its reply read until `ReadyForQuery`, looking only at the message headers. No parsing,
//! no allocation: the least user-space work any client can do per query. The kernel path is the
//! variant's:
//! - `Epoll`: non-blocking sockets in a `mio::Poll`, as pgdblink does it: `send`, `epoll_wait`,
//!   `recv`. The difference to pgdblink is what pgdblink's own code costs.
//! - `Blocking`: blocking sockets: `send`, then a `recv` that sleeps until the answer is there (two
//!   system calls per query; fan-out reads the connections in order).

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use pgdblink::bench::ScenarioResult;
use pgdblink::cluster::{Cluster, Role};
use pgdblink::protocol::frontend;

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Epoll,
    Blocking,
}

enum Sock {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

struct Raw {
    sock: Sock,
    reply: Reply,
}

/// The input of one reply, walked message header by message header.
struct Reply {
    buf: Vec<u8>,
    filled: usize,
    at: usize,
}

/// What one `read` brought.
#[derive(PartialEq)]
enum Got {
    /// The input so far ends with a complete `ReadyForQuery`: the reply is complete, and the
    /// buffer is reset for the next one.
    Reply,
    /// Part of a reply.
    Part,
    /// Nothing: the socket would block.
    Nothing,
}

impl Reply {
    /// One `read` into the buffer. An `ErrorResponse` is an error.
    fn read_from(&mut self, stream: &mut impl Read) -> Result<Got, String> {
        if self.filled == self.buf.len() {
            // Keep the incomplete message, drop the rest.
            self.buf.copy_within(self.at..self.filled, 0);
            self.filled -= self.at;
            self.at = 0;
        }
        let n = match stream.read(&mut self.buf[self.filled..]) {
            Ok(0) => return Err("server closed the connection".into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Got::Nothing),
            Err(e) => return Err(e.to_string()),
        };
        self.filled += n;
        while self.filled - self.at >= 5 {
            let kind = self.buf[self.at];
            let len = u32::from_be_bytes(self.buf[self.at + 1..self.at + 5].try_into().unwrap());
            let end = self.at + 1 + len as usize;
            if end > self.filled {
                break;
            }
            match kind {
                b'Z' if end == self.filled => {
                    self.filled = 0;
                    self.at = 0;
                    return Ok(Got::Reply);
                }
                b'E' => return Err("the server answered with an error".into()),
                _ => self.at = end,
            }
        }
        Ok(Got::Part)
    }
}

/// Sends the StartupMessage (trust authentication) on a blocking stream and reads up to the first
/// `ReadyForQuery`.
fn start(
    stream: &mut (impl Read + Write),
    cluster: &Cluster,
    reply: &mut Reply,
) -> Result<(), String> {
    let mut startup = Vec::new();
    frontend::startup_message(
        3 << 16,
        [
            ("user", Role::Trust.user()),
            ("database", cluster.database()),
        ],
        &mut startup,
    )
    .map_err(|e| e.to_string())?;
    stream.write_all(&startup).map_err(|e| e.to_string())?;
    while reply.read_from(stream)? != Got::Reply {}
    Ok(())
}

impl Raw {
    fn connect(cluster: &Cluster, unix: bool, mode: Mode) -> Result<Raw, String> {
        let e = |e: std::io::Error| e.to_string();
        let mut reply = Reply {
            buf: vec![0; 64 * 1024],
            filled: 0,
            at: 0,
        };
        // Connected and authenticated blocking, then switched to the mode measured.
        let nonblocking = mode == Mode::Epoll;
        let sock = if unix {
            let path = cluster
                .socket_dir()
                .join(format!(".s.PGSQL.{}", cluster.port()));
            let mut s = std::os::unix::net::UnixStream::connect(path).map_err(e)?;
            start(&mut s, cluster, &mut reply)?;
            s.set_nonblocking(nonblocking).map_err(e)?;
            Sock::Unix(mio::net::UnixStream::from_std(s))
        } else {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", cluster.port())).map_err(e)?;
            s.set_nodelay(true).map_err(e)?;
            start(&mut s, cluster, &mut reply)?;
            s.set_nonblocking(nonblocking).map_err(e)?;
            Sock::Tcp(mio::net::TcpStream::from_std(s))
        };
        Ok(Raw { sock, reply })
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match &mut self.sock {
            Sock::Tcp(s) => s,
            Sock::Unix(s) => s,
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let r = match &mut self.sock {
            Sock::Tcp(s) => s.write_all(bytes),
            Sock::Unix(s) => s.write_all(bytes),
        };
        r.map_err(|e| e.to_string())
    }

    /// One `recv` (see [`Reply::read_from`]).
    fn read_some(&mut self) -> Result<Got, String> {
        match &mut self.sock {
            Sock::Tcp(s) => self.reply.read_from(s),
            Sock::Unix(s) => self.reply.read_from(s),
        }
    }
}

fn select_1() -> Vec<u8> {
    let mut q = Vec::new();
    frontend::query("SELECT 1", &mut q).expect("a short query");
    q
}

/// Runs `round` (returning the queries it made) again and again for `duration`.
fn measured(
    name: &str,
    duration: Duration,
    mut round: impl FnMut() -> Result<u64, String>,
) -> Result<ScenarioResult, String> {
    let watch = super::Stopwatch::start();
    let mut ops = 0;
    while watch.elapsed() < duration {
        ops += round()?;
    }
    Ok(watch.result(name, ops))
}

/// `SELECT 1` on every connection, then every reply: by readiness (`Epoll`) or in connection
/// order (`Blocking`: a read sleeps until that backend has answered; the others answer meanwhile).
/// One round trip is `fan_out` with one connection.
pub fn fan_out(
    cluster: &Cluster,
    unix: bool,
    mode: Mode,
    n: usize,
    duration: Duration,
) -> Result<ScenarioResult, String> {
    let name = if n == 1 { "rt" } else { "fanout" };
    exchange(cluster, unix, mode, n, &select_1(), 1, name, duration)
}

/// The pipeline scenario's floor: one connection, each round the pre-encoded bytes of
/// [`PIPELINE_DEPTH`](pgdblink::bench::PIPELINE_DEPTH) extended-protocol `SELECT $1` queries
/// (Parse, Bind, Describe, Execute each, as libpq's `PQsendQueryParams` sends them) and a Sync,
/// written at once, and the replies read until the one `ReadyForQuery`.
pub fn pipeline(
    cluster: &Cluster,
    unix: bool,
    mode: Mode,
    duration: Duration,
) -> Result<ScenarioResult, String> {
    let depth = pgdblink::bench::PIPELINE_DEPTH;
    let e = |e: pgdblink::protocol::EncodeError| e.to_string();
    let mut batch = Vec::new();
    for i in 0..depth {
        let v = i.to_string();
        frontend::parse("", "SELECT $1", &[], &mut batch).map_err(e)?;
        frontend::bind("", "", &[], &[Some(v.as_bytes())], &[], &mut batch).map_err(e)?;
        frontend::describe(b'P', "", &mut batch).map_err(e)?;
        frontend::execute("", 0, &mut batch).map_err(e)?;
    }
    frontend::sync(&mut batch);
    exchange(
        cluster,
        unix,
        mode,
        1,
        &batch,
        depth as u64,
        "pipeline",
        duration,
    )
}

/// Sends `request` on `n` connections and reads each reply to its `ReadyForQuery`, in rounds,
/// for `duration`; each round counts `per_request` operations a connection.
#[allow(clippy::too_many_arguments)]
fn exchange(
    cluster: &Cluster,
    unix: bool,
    mode: Mode,
    n: usize,
    request: &[u8],
    per_request: u64,
    name: &str,
    duration: Duration,
) -> Result<ScenarioResult, String> {
    let e = |e: std::io::Error| e.to_string();
    let mut conns = (0..n)
        .map(|_| Raw::connect(cluster, unix, mode))
        .collect::<Result<Vec<_>, _>>()?;
    let mut poll = Poll::new().map_err(e)?;
    let mut events = Events::with_capacity(1024);
    if mode == Mode::Epoll {
        for (i, c) in conns.iter_mut().enumerate() {
            poll.registry()
                .register(c.source(), Token(i), Interest::READABLE)
                .map_err(e)?;
        }
    }
    let q = request;
    let mut round = || -> Result<u64, String> {
        for c in &mut conns {
            c.send(q)?;
        }
        match mode {
            Mode::Blocking => {
                for c in &mut conns {
                    while c.read_some()? != Got::Reply {}
                }
            }
            Mode::Epoll => {
                let mut left = n;
                while left > 0 {
                    poll.poll(&mut events, None).map_err(e)?;
                    for ev in events.iter() {
                        // Edge-triggered: read until the reply is complete or nothing is left.
                        let c = &mut conns[ev.token().0];
                        loop {
                            match c.read_some()? {
                                Got::Reply => {
                                    left -= 1;
                                    break;
                                }
                                Got::Part => {}
                                Got::Nothing => break,
                            }
                        }
                    }
                }
            }
        }
        Ok(n as u64 * per_request)
    };
    for _ in 0..100 / n.max(1) + 1 {
        round()?;
    }
    measured(name, duration, round)
}

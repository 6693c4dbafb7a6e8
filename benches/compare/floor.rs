//! The floor: a client with no client library, in two variants. A connection is opened by hand
//! (StartupMessage, trust authentication); each query is one pre-encoded `Query` written with one
//! `send`, and its reply read until `ReadyForQuery`, looking only at the message headers. No parsing,
//! no allocation: the least user-space work any client can do per query. The kernel path is the
//! variant's:
//! - `Epoll`: non-blocking sockets in a `mio::Poll`, as pgdblink does it: `send`, `epoll_wait`,
//!   `recv`. The difference to pgdblink is what pgdblink's own code costs.
//! - `Blocking`: blocking sockets: `send`, then a `recv` that sleeps until the answer is there (two
//!   system calls per query; fan-out reads the connections in order).
//!
//! The streaming scenarios have floors too, each timed from its `Query` to its `ReadyForQuery`, as
//! the other clients are:
//! - rows ([`rows`]): the others' query; its reply is received whole (every byte goes through a
//!   64 KiB buffer, pgdblink's read size), walked header by header and its `DataRow`s counted. The
//!   floor does **not** look at the values (the other clients visit every one): it shows what the
//!   server and the kernel allow, not what a usable client could do.
//! - COPY out ([`copy_out`]): the others' `COPY (...) TO STDOUT`; its `CopyData` counted (one a row)
//!   and dropped.
//! - COPY in ([`copy_in`]): the same rows into the same temporary table in the same text format, in
//!   `CopyData` messages of the same size (whole rows up to 64 KiB, as every peer batches them),
//!   encoded once before the runs (the others format them while they send; the floor's `send`s are
//!   all that is left), then `CopyDone`. Blocking only: the client only writes, and an epoll variant
//!   would add an `epoll_wait` each time the socket's buffer fills, not a different way to wait for
//!   the server.
//!
//! The row counts are checked after the clock stops (COPY in: no `ErrorResponse`). Every floor also
//! reads its backends' CPU time (`/proc/PID/schedstat`, the pid from `BackendKeyData`) before and
//! after, so the server's share of a row is measured in the same run, not inferred.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use pgdblink::bench::{ScenarioResult, process_cpu_time};
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
    /// The backend's process id.
    pid: u32,
}

/// The input of one reply, walked message header by message header.
struct Reply {
    buf: Vec<u8>,
    filled: usize,
    at: usize,
    /// `DataRow`s and `CopyData`s walked past: the rows of the streaming scenarios.
    rows: u64,
}

/// What one `read` brought.
#[derive(PartialEq)]
enum Got {
    /// The input so far ends with a complete `ReadyForQuery` (or `CopyInResponse`: the server then
    /// waits for the COPY data): the reply is complete, and the buffer is reset for the next one.
    Reply,
    /// Part of a reply.
    Part,
    /// Nothing: the socket would block.
    Nothing,
}

impl Reply {
    /// One `read` into the buffer. An `ErrorResponse` is an error.
    fn read_from(&mut self, stream: &mut impl Read) -> Result<Got, String> {
        if self.at > 0 {
            // Keep the incomplete message (a few bytes), drop the rest: every read gets the room.
            self.buf.copy_within(self.at..self.filled, 0);
            self.filled -= self.at;
            self.at = 0;
        }
        if self.filled == self.buf.len() {
            return Err("a message larger than the floor's buffer".into());
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
                b'D' | b'd' => {
                    self.rows += 1;
                    self.at = end;
                }
                b'Z' | b'G' if end == self.filled => {
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

/// Where a floor client connects (trust authentication): a TCP host or a unix socket directory
/// (a `host` starting with `/`), the port, the database and the user.
pub struct Target {
    host: String,
    port: u16,
    database: String,
    user: String,
}

impl Target {
    fn of(cluster: &Cluster, unix: bool) -> Target {
        Target {
            host: match unix {
                true => cluster.socket_dir().to_string_lossy().into_owned(),
                false => "127.0.0.1".to_owned(),
            },
            port: cluster.port(),
            database: cluster.database().to_owned(),
            user: Role::Trust.user().to_owned(),
        }
    }

    /// From the throwaway cluster's `host=... port=... dbname=... user=...` (no quoting).
    pub fn from_conninfo(conninfo: &str) -> Result<Target, String> {
        let get = |key: &str| {
            conninfo
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .ok_or_else(|| format!("no {key} in {conninfo:?}"))
        };
        Ok(Target {
            host: get("host")?.to_owned(),
            port: get("port")?.parse().map_err(|e| format!("port: {e}"))?,
            database: get("dbname")?.to_owned(),
            user: get("user")?.to_owned(),
        })
    }
}

/// Sends the StartupMessage (trust authentication) on a blocking stream and reads up to the first
/// `ReadyForQuery`; the backend's process id (from `BackendKeyData`), to read its CPU time.
fn start(stream: &mut (impl Read + Write), target: &Target) -> Result<u32, String> {
    let e = |e: std::io::Error| e.to_string();
    let mut startup = Vec::new();
    frontend::startup_message(
        3 << 16,
        [("user", &*target.user), ("database", &*target.database)],
        &mut startup,
    )
    .map_err(|e| e.to_string())?;
    stream.write_all(&startup).map_err(e)?;
    let (mut input, mut at, mut pid) = (Vec::new(), 0, None);
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).map_err(e)? {
            0 => return Err("server closed the connection at startup".into()),
            n if input.len() + n > 1 << 20 => return Err("a startup reply over 1 MiB".into()),
            n => input.extend_from_slice(&chunk[..n]),
        }
        while input.len() - at >= 5 {
            let len = u32::from_be_bytes(input[at + 1..at + 5].try_into().unwrap()) as usize;
            let (kind, body) = (input[at], at + 5);
            if at + 1 + len > input.len() {
                break;
            }
            match kind {
                b'K' if len >= 8 => {
                    pid = Some(u32::from_be_bytes(
                        input[body..body + 4].try_into().unwrap(),
                    ))
                }
                b'E' => return Err("the server refused the connection".into()),
                b'R' if len < 8 || input[body..body + 4] != [0; 4] => {
                    return Err("the floor speaks trust authentication only".into());
                }
                b'Z' => return pid.ok_or_else(|| "no BackendKeyData".to_owned()),
                _ => {}
            }
            at += 1 + len;
        }
    }
}

impl Raw {
    fn connect(target: &Target, mode: Mode) -> Result<Raw, String> {
        let e = |e: std::io::Error| e.to_string();
        let reply = Reply {
            buf: vec![0; 64 * 1024],
            filled: 0,
            at: 0,
            rows: 0,
        };
        let pid;
        // Connected and authenticated blocking, then switched to the mode measured.
        let nonblocking = mode == Mode::Epoll;
        let sock = if target.host.starts_with('/') {
            let path = std::path::Path::new(&target.host).join(format!(".s.PGSQL.{}", target.port));
            let mut s = std::os::unix::net::UnixStream::connect(path).map_err(e)?;
            pid = start(&mut s, target)?;
            s.set_nonblocking(nonblocking).map_err(e)?;
            Sock::Unix(mio::net::UnixStream::from_std(s))
        } else {
            let mut s = std::net::TcpStream::connect((&*target.host, target.port)).map_err(e)?;
            s.set_nodelay(true).map_err(e)?;
            pid = start(&mut s, target)?;
            s.set_nonblocking(nonblocking).map_err(e)?;
            Sock::Tcp(mio::net::TcpStream::from_std(s))
        };
        Ok(Raw { sock, reply, pid })
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

    /// Reads a whole reply on a blocking connection.
    fn wait(&mut self) -> Result<(), String> {
        while self.read_some()? != Got::Reply {}
        Ok(())
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

/// Runs `round` (returning the queries it made) again and again for `duration`; `pids` are the
/// backends whose CPU time is measured too.
fn measured(
    name: &str,
    duration: Duration,
    pids: &[u32],
    mut round: impl FnMut() -> Result<u64, String>,
) -> Result<ScenarioResult, String> {
    let server = ServerWatch::start(pids);
    let watch = super::Stopwatch::start();
    let mut ops = 0;
    while watch.elapsed() < duration {
        ops += round()?;
    }
    Ok(server.fill(watch.result(name, ops)))
}

/// The CPU time a set of local backends spent (from `/proc/PID/schedstat`).
struct ServerWatch<'a> {
    pids: &'a [u32],
    start: Option<Duration>,
}

impl<'a> ServerWatch<'a> {
    fn start(pids: &'a [u32]) -> ServerWatch<'a> {
        let start = ServerWatch::total(pids);
        ServerWatch { pids, start }
    }

    fn total(pids: &[u32]) -> Option<Duration> {
        pids.iter().map(|&p| process_cpu_time(p)).sum()
    }

    /// `result` with the backends' CPU seconds since the start, when they could be read.
    fn fill(&self, mut result: ScenarioResult) -> ScenarioResult {
        result.server_cpu_seconds = match (self.start, ServerWatch::total(self.pids)) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        result
    }
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
    exchange(
        cluster,
        unix,
        mode,
        1,
        &pipeline_batch()?,
        depth as u64,
        "pipeline",
        duration,
    )
}

/// [`PIPELINE_DEPTH`](pgdblink::bench::PIPELINE_DEPTH) queries and a Sync, encoded.
fn pipeline_batch() -> Result<Vec<u8>, String> {
    let e = |e: pgdblink::protocol::EncodeError| e.to_string();
    let mut batch = Vec::new();
    for i in 0..pgdblink::bench::PIPELINE_DEPTH {
        let v = i.to_string();
        frontend::parse("", "SELECT $1", &[], &mut batch).map_err(e)?;
        frontend::bind("", "", &[], &[Some(v.as_bytes())], &[], &mut batch).map_err(e)?;
        frontend::describe(b'P', "", &mut batch).map_err(e)?;
        frontend::execute("", 0, &mut batch).map_err(e)?;
    }
    frontend::sync(&mut batch);
    Ok(batch)
}

/// The rows scenario's floor: the others' query (`bench::rows`), its `n_rows` `DataRow`s received
/// and counted by their headers, the values not looked at.
pub fn rows(
    cluster: &Cluster,
    unix: bool,
    mode: Mode,
    n_rows: u64,
) -> Result<ScenarioResult, String> {
    let sql = format!("SELECT g, 'row ' || g FROM generate_series(1, {n_rows}) AS g");
    stream(cluster, unix, mode, &sql, n_rows, "rows")
}

/// The COPY out scenario's floor: the others' `COPY (...) TO STDOUT` (`bench::copy_out`), its
/// `n_rows` `CopyData` received, counted by their headers and dropped.
pub fn copy_out(
    cluster: &Cluster,
    unix: bool,
    mode: Mode,
    n_rows: u64,
) -> Result<ScenarioResult, String> {
    let sql = format!(
        "COPY (SELECT g::int8, 'row ' || g FROM generate_series(1, {n_rows}) AS g) TO STDOUT"
    );
    stream(cluster, unix, mode, &sql, n_rows, "copyout")
}

/// `sql` once on a fresh connection, timed from its `Query` to its `ReadyForQuery`; an error unless
/// its reply held `wanted` rows.
fn stream(
    cluster: &Cluster,
    unix: bool,
    mode: Mode,
    sql: &str,
    wanted: u64,
    name: &str,
) -> Result<ScenarioResult, String> {
    let request = query(sql)?;
    let mut floor = Floor::open(&Target::of(cluster, unix), mode, 1, &request, 0)?;
    floor.conns[0].reply.rows = 0;
    let pids = [floor.conns[0].pid];
    let server = ServerWatch::start(&pids);
    let watch = super::Stopwatch::start();
    floor.round()?;
    let result = server.fill(watch.result(name, floor.conns[0].reply.rows));
    if result.operations != wanted {
        return Err(format!("{} rows, wanted {wanted}", result.operations));
    }
    Ok(result)
}

fn query(sql: &str) -> Result<Vec<u8>, String> {
    let mut q = Vec::new();
    frontend::query(sql, &mut q).map_err(|e| e.to_string())?;
    Ok(q)
}

/// The COPY in scenario's rows (`n\trow n\n` for n from 1, text format, as every peer sends them),
/// encoded once: `CopyData` messages of whole rows up to 64 KiB (a peer's batch), then `CopyDone`.
pub struct CopyIn {
    rows: u64,
    /// The messages, one after the other.
    bytes: Vec<u8>,
    /// Where each `send` ends in `bytes`: one `CopyData` each, the last one with the `CopyDone`.
    ends: Vec<usize>,
}

impl CopyIn {
    pub fn new(rows: u64) -> Result<CopyIn, String> {
        use std::io::Write as _;
        let e = |e: pgdblink::protocol::EncodeError| e.to_string();
        let (mut bytes, mut ends) = (Vec::new(), Vec::new());
        let mut batch = Vec::with_capacity(64 * 1024 + 64);
        let mut i = 0u64;
        while i < rows {
            batch.clear();
            while batch.len() < 64 * 1024 && i < rows {
                i += 1;
                writeln!(batch, "{i}\trow {i}").map_err(|e| e.to_string())?;
            }
            frontend::copy_data(&batch, &mut bytes).map_err(e)?;
            ends.push(bytes.len());
        }
        frontend::copy_done(&mut bytes);
        ends.pop();
        ends.push(bytes.len());
        Ok(CopyIn { rows, bytes, ends })
    }
}

/// The COPY in scenario's floor (blocking): a temporary table as the others make it, then, timed,
/// `COPY bench_copy FROM STDIN`, its `CopyInResponse` awaited, the pre-encoded [`CopyIn`] written
/// one message a `send`, and the reply read until `ReadyForQuery`.
pub fn copy_in(cluster: &Cluster, unix: bool, data: &CopyIn) -> Result<ScenarioResult, String> {
    let mut conn = Raw::connect(&Target::of(cluster, unix), Mode::Blocking)?;
    conn.send(&query("CREATE TEMP TABLE bench_copy (a int8, b text)")?)?;
    conn.wait()?;
    let copy = query("COPY bench_copy FROM STDIN")?;
    let pids = [conn.pid];
    let server = ServerWatch::start(&pids);
    let watch = super::Stopwatch::start();
    conn.send(&copy)?;
    conn.wait()?;
    let mut from = 0;
    for &end in &data.ends {
        conn.send(&data.bytes[from..end])?;
        from = end;
    }
    conn.wait()?;
    Ok(server.fill(watch.result("copyin", data.rows)))
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
    let mut floor = Floor::connect(&Target::of(cluster, unix), mode, n, request, per_request)?;
    let pids: Vec<u32> = floor.conns.iter().map(|c| c.pid).collect();
    measured(name, duration, &pids, || floor.round())
}

/// `n` connections exchanging one request each per round, warmed up.
struct Floor<'a> {
    conns: Vec<Raw>,
    poll: Poll,
    events: Events,
    mode: Mode,
    request: &'a [u8],
    per_request: u64,
}

impl<'a> Floor<'a> {
    /// [`Floor::open`], then warmed up: a hundred queries or more.
    fn connect(
        target: &Target,
        mode: Mode,
        n: usize,
        request: &'a [u8],
        per_request: u64,
    ) -> Result<Floor<'a>, String> {
        let mut floor = Floor::open(target, mode, n, request, per_request)?;
        for _ in 0..100 / n.max(1) + 1 {
            floor.round()?;
        }
        Ok(floor)
    }

    /// `n` connections, connected and registered, no query sent yet.
    fn open(
        target: &Target,
        mode: Mode,
        n: usize,
        request: &'a [u8],
        per_request: u64,
    ) -> Result<Floor<'a>, String> {
        let e = |e: std::io::Error| e.to_string();
        let mut conns = (0..n)
            .map(|_| Raw::connect(target, mode))
            .collect::<Result<Vec<_>, _>>()?;
        let poll = Poll::new().map_err(e)?;
        if mode == Mode::Epoll {
            for (i, c) in conns.iter_mut().enumerate() {
                poll.registry()
                    .register(c.source(), Token(i), Interest::READABLE)
                    .map_err(e)?;
            }
        }
        Ok(Floor {
            conns,
            poll,
            events: Events::with_capacity(1024),
            mode,
            request,
            per_request,
        })
    }

    /// One round: the request on every connection, then every reply; the operations it made.
    fn round(&mut self) -> Result<u64, String> {
        let n = self.conns.len();
        for c in &mut self.conns {
            c.send(self.request)?;
        }
        match self.mode {
            Mode::Blocking => {
                for c in &mut self.conns {
                    while c.read_some()? != Got::Reply {}
                }
            }
            Mode::Epoll => {
                let mut left = n;
                while left > 0 {
                    self.poll
                        .poll(&mut self.events, None)
                        .map_err(|e| e.to_string())?;
                    for ev in self.events.iter() {
                        // Edge-triggered: read until the reply is complete or nothing is left.
                        let c = &mut self.conns[ev.token().0];
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
        Ok(n as u64 * self.per_request)
    }
}

/// `--callgrind-child floor KIND CONNINFO`: the `raw, epoll` floor client's loop of `KIND` (`rt`,
/// `fanout`, `pipeline`), `rounds` times over `conns` connections, counted by callgrind inside
/// [`cg_loop_floor`] (connecting and warming up are not).
pub fn counted(conninfo: &str, kind: &str, conns: usize, rounds: u64) -> Result<(), String> {
    let target = Target::from_conninfo(conninfo)?;
    let (request, per_request) = match kind {
        "pipeline" => (pipeline_batch()?, pgdblink::bench::PIPELINE_DEPTH as u64),
        _ => (select_1(), 1),
    };
    let mut floor = Floor::connect(&target, Mode::Epoll, conns, &request, per_request)?;
    cg_loop_floor(&mut floor, rounds)
}

#[inline(never)]
fn cg_loop_floor(floor: &mut Floor<'_>, rounds: u64) -> Result<(), String> {
    for _ in 0..rounds {
        floor.round()?;
    }
    Ok(())
}

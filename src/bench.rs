//! The benchmark scenarios of `pgdblink bench`, shared by the binary and anyone measuring pgdblink.
//!
//! Every scenario connects with a libpq connection string, runs in the calling thread (no async
//! runtime, no background threads) and returns a [`ScenarioResult`]: how many operations it did, the
//! wall-clock seconds they took, and the CPU time this thread spent on them. When the server runs on
//! this machine, the CPU time of its backends is measured too (from `/proc/<pid>/schedstat`).
//!
//! Round-trip figures depend heavily on where the client and the server run: on one core a round trip
//! is two context switches; across cores it includes cross-core wake-ups. [`pin_current_thread`] and
//! [`pin_process`] pin them (with util-linux's `taskset`); [`affinity`] reports the CPUs a thread or
//! process may run on.
//!
//! ```no_run
//! use std::time::Duration;
//! use pgdblink::bench;
//!
//! let r = bench::round_trips("host=127.0.0.1 user=postgres", Duration::from_secs(2))?;
//! println!("{}: {:.0} round trips/s, {:.1} µs client CPU each", r.name, r.ops_per_second(),
//!          r.client_cpu_us_per_op());
//! # Ok::<(), pgdblink::Error>(())
//! ```

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::QueryResult;
use crate::dblink::Dblink;
use crate::driver::Client;
use crate::error::{Error, ErrorKind};

mod fanout;
mod proxy;
mod report;

pub use fanout::{
    FANOUT_TIMEOUT, connect_fanout, single_connect_seconds, via_port, with_single_note,
};
pub use proxy::DelayProxy;
pub use report::{Machine, Repeated, machine};

/// What one scenario measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioResult {
    /// The scenario, e.g. `"round trips"`, `"connect (scram_user)"`.
    pub name: String,
    /// How many operations (round trips, rows, connections, cancels) were done.
    pub operations: u64,
    /// Wall-clock seconds the operations took.
    pub seconds: f64,
    /// CPU seconds this thread spent (user and system) during the operations.
    pub client_cpu_seconds: f64,
    /// CPU seconds the server's backends spent, when they run on this machine and could be read.
    pub server_cpu_seconds: Option<f64>,
    /// Anything else worth saying (latency percentiles, set-up time), `""` if nothing.
    pub notes: String,
}

impl ScenarioResult {
    /// Operations per wall-clock second.
    pub fn ops_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.operations as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Client CPU microseconds per operation.
    pub fn client_cpu_us_per_op(&self) -> f64 {
        per_op(self.client_cpu_seconds, self.operations)
    }

    /// Server CPU microseconds per operation, when measured.
    pub fn server_cpu_us_per_op(&self) -> Option<f64> {
        self.server_cpu_seconds.map(|s| per_op(s, self.operations))
    }
}

fn per_op(seconds: f64, operations: u64) -> f64 {
    if operations == 0 {
        0.0
    } else {
        seconds * 1e6 / operations as f64
    }
}

/// The CPU time the calling thread has used so far: the first field of `/proc/thread-self/schedstat`
/// (nanoseconds), or, where that file is missing, the process's user and system time from
/// `/proc/self/stat` (in 1/100 s). `None` where neither can be read (not Linux).
pub fn thread_cpu_time() -> Option<Duration> {
    if let Some(ns) = schedstat_ns("/proc/thread-self/schedstat") {
        return Some(Duration::from_nanos(ns));
    }
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces), from field 3 on: utime is field 14.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture (it is part of the ABI).
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The CPU time process `pid` (all its threads) has used, from `/proc/<pid>/schedstat`.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    schedstat_ns(&format!("/proc/{pid}/schedstat")).map(Duration::from_nanos)
}

fn schedstat_ns(path: &str) -> Option<u64> {
    fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether `pid` is a PostgreSQL backend on this machine (its process title starts `postgres:`), so
/// that its CPU time can be read. A backend of a remote server is never one of ours; a pid that
/// happens to exist here is rejected by the title check.
fn local_backend(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.starts_with(b"postgres: "))
        .unwrap_or(false)
}

/// Measures the CPU time of a set of local backends.
struct ServerCpu {
    pids: Vec<u32>,
    start: Option<Duration>,
}

impl ServerCpu {
    fn new(pids: Vec<u32>) -> ServerCpu {
        let pids = if pids.iter().all(|&p| local_backend(p)) {
            pids
        } else {
            Vec::new()
        };
        let start = ServerCpu::total(&pids);
        ServerCpu { pids, start }
    }

    fn total(pids: &[u32]) -> Option<Duration> {
        if pids.is_empty() {
            return None;
        }
        pids.iter().map(|&p| process_cpu_time(p)).sum()
    }

    fn seconds(&self) -> Option<f64> {
        let end = ServerCpu::total(&self.pids)?;
        Some(end.checked_sub(self.start?)?.as_secs_f64())
    }
}

/// Wall clock and thread CPU since a start.
struct Meter {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Meter {
    fn start() -> Meter {
        Meter {
            cpu: thread_cpu_time(),
            wall: Instant::now(),
        }
    }

    /// `(wall seconds, client CPU seconds)`.
    fn stop(&self) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64(),
            _ => 0.0,
        };
        (wall, cpu)
    }
}

fn result(
    name: impl Into<String>,
    operations: u64,
    meter: &Meter,
    server: Option<&ServerCpu>,
    notes: String,
) -> ScenarioResult {
    let (seconds, client_cpu_seconds) = meter.stop();
    ScenarioResult {
        name: name.into(),
        operations,
        seconds,
        client_cpu_seconds,
        server_cpu_seconds: server.and_then(ServerCpu::seconds),
        notes,
    }
}

/// The result of a scenario whose operations are rows: an error unless there were `wanted` of them.
fn rows_result(
    name: &str,
    got: u64,
    wanted: u64,
    meter: &Meter,
    server: &ServerCpu,
    notes: String,
) -> Result<ScenarioResult, Error> {
    let r = result(name, got, meter, Some(server), notes);
    if got != wanted {
        return Err(unexpected(&format!("row count {got}, wanted {wanted}")));
    }
    Ok(r)
}

fn unexpected(what: &str) -> Error {
    Error::new(ErrorKind::Other, format!("benchmark: unexpected {what}"))
}

/// Runs `sql` on `client` and checks it returns exactly one result.
fn one_result(client: &mut Client, sql: &str) -> Result<QueryResult, Error> {
    client.send_query(sql)?;
    let first = client
        .get_result()?
        .ok_or_else(|| unexpected("empty result"))?;
    if client.get_result()?.is_some() {
        return Err(unexpected("second result"));
    }
    Ok(first)
}

/// Round trips: `SELECT 1` on one connection, one after another, for `duration`. One operation is one
/// query sent and its result and end marker received.
pub fn round_trips(conninfo: &str, duration: Duration) -> Result<ScenarioResult, Error> {
    let mut client = Client::connect(conninfo)?;
    for _ in 0..100 {
        one_result(&mut client, "SELECT 1")?;
    }
    let server = ServerCpu::new(client.backend_pid().into_iter().collect());
    let meter = Meter::start();
    let mut operations = 0u64;
    while meter.wall.elapsed() < duration {
        one_result(&mut client, "SELECT 1")?;
        operations += 1;
    }
    Ok(result(
        "round trips",
        operations,
        &meter,
        Some(&server),
        "SELECT 1, one connection".to_owned(),
    ))
}

/// Row streaming: one query returning `n_rows` rows of two columns (`int4`, `text`), received, kept in
/// memory, and every value visited as text through [`Rows::iter`](crate::Rows::iter). One operation
/// is one row.
pub fn rows(conninfo: &str, n_rows: u64) -> Result<ScenarioResult, Error> {
    rows_visited(conninfo, n_rows, false)
}

/// [`rows`], every value read with [`Rows::get(row, col)`](crate::Rows::get) instead (random
/// access, as a `PQgetvalue` loop reads them): the name is `"rows-get"`.
pub fn rows_get(conninfo: &str, n_rows: u64) -> Result<ScenarioResult, Error> {
    rows_visited(conninfo, n_rows, true)
}

fn rows_visited(conninfo: &str, n_rows: u64, by_index: bool) -> Result<ScenarioResult, Error> {
    let mut client = Client::connect(conninfo)?;
    let sql = format!("SELECT g, 'row ' || g FROM generate_series(1, {n_rows}) AS g");
    let server = ServerCpu::new(client.backend_pid().into_iter().collect());
    let meter = Meter::start();
    let got = match one_result(&mut client, &sql)? {
        QueryResult::Rows(rows) => {
            // Visit every value, as a program using the rows would.
            let bytes = if by_index {
                visit_by_index(&rows)
            } else {
                visit_in_order(&rows)
            };
            std::hint::black_box(bytes);
            rows.len() as u64
        }
        _ => return Err(unexpected("result without rows")),
    };
    let access = if by_index { "get(row, col)" } else { "iter()" };
    rows_result(
        if by_index { "rows-get" } else { "rows" },
        got,
        n_rows,
        &meter,
        &server,
        format!("{n_rows} rows of (int4, text), one query, read with {access}"),
    )
}

/// Every value of `rows` through `Rows::iter`; the bytes seen.
#[inline(never)]
fn visit_in_order(rows: &crate::Rows) -> usize {
    let mut bytes = 0usize;
    for row in rows.iter() {
        bytes += row.get(0).map_or(0, str::len) + row.get(1).map_or(0, str::len);
    }
    bytes
}

/// Every value of `rows` through `Rows::get(row, col)`; the bytes seen.
#[inline(never)]
fn visit_by_index(rows: &crate::Rows) -> usize {
    let mut bytes = 0usize;
    for i in 0..rows.len() {
        bytes += rows.get(i, 0).map_or(0, str::len) + rows.get(i, 1).map_or(0, str::len);
    }
    bytes
}

/// Fan-out: `n_conns` connections in one [`Dblink`] (one thread, one `mio::Poll`); in rounds, `SELECT 1`
/// is sent to all of them and every result collected as it completes ([`Dblink::wait`]), for
/// `duration`. One operation is one query on one connection. Connecting is not timed (the notes say
/// how long it took).
pub fn fan_out(
    conninfo: &str,
    n_conns: usize,
    duration: Duration,
) -> Result<ScenarioResult, Error> {
    let mut db = Dblink::try_new()?;
    let names: Vec<String> = (0..n_conns).map(|i| format!("c{i}")).collect();
    let connect_start = Instant::now();
    let mut pids = Vec::new();
    for name in &names {
        db.connect(name, conninfo)?;
        pids.extend(db.conn(name)?.backend_key().map(|(pid, _)| pid));
    }
    let connect_seconds = connect_start.elapsed().as_secs_f64();
    fan_out_round(&mut db, &names)?;
    let server = ServerCpu::new(pids);
    let meter = Meter::start();
    let mut operations = 0u64;
    while meter.wall.elapsed() < duration {
        fan_out_round(&mut db, &names)?;
        operations += names.len() as u64;
    }
    Ok(result(
        format!("fan-out ({n_conns} connections)"),
        operations,
        &meter,
        Some(&server),
        format!("SELECT 1 on all at once, one thread; connecting took {connect_seconds:.2} s"),
    ))
}

/// One round of [`fan_out`]: `SELECT 1` sent on every connection named, then every result taken as
/// its connection becomes ready ([`Dblink::wait`]).
pub fn fan_out_round(db: &mut Dblink, names: &[String]) -> Result<(), Error> {
    for name in names {
        db.send_query(name, "SELECT 1")?;
    }
    let mut left = names.len();
    while left > 0 {
        let ready = db.wait(None)?;
        if ready.is_empty() {
            return Err(unexpected("wait without a ready connection"));
        }
        for name in ready {
            // Not busy: the result and (for SELECT 1) the end marker are here.
            while db.get_result(&name)?.is_some() {}
            left -= 1;
        }
    }
    Ok(())
}

/// The depth of the `pipeline` scenario: queries queued before the sync.
pub const PIPELINE_DEPTH: usize = 1000;

/// Pipelined queries: batches of [`PIPELINE_DEPTH`] `SELECT $1` (a text parameter, through the
/// extended protocol) queued in pipeline mode, a sync, then every result taken, for `duration`.
/// One operation is one query.
pub fn pipeline(conninfo: &str, duration: Duration) -> Result<ScenarioResult, Error> {
    let mut client = Client::connect(conninfo)?;
    let values: Vec<String> = (0..PIPELINE_DEPTH).map(|i| i.to_string()).collect();
    client.enter_pipeline_mode()?;
    pipeline_batch(&mut client, &values)?;
    let server = ServerCpu::new(client.backend_pid().into_iter().collect());
    let meter = Meter::start();
    let mut operations = 0u64;
    while meter.wall.elapsed() < duration {
        pipeline_batch(&mut client, &values)?;
        operations += values.len() as u64;
    }
    let r = result(
        "pipeline",
        operations,
        &meter,
        Some(&server),
        format!("SELECT $1, {PIPELINE_DEPTH} queries a sync, one connection"),
    );
    client.exit_pipeline_mode()?;
    Ok(r)
}

/// One batch of [`pipeline`] on a client in pipeline mode: `SELECT $1` for each value, a sync, then
/// every result checked and the sync's result taken.
pub fn pipeline_batch(client: &mut Client, values: &[String]) -> Result<(), Error> {
    for v in values {
        client.send_query_params("SELECT $1", &[Some(v)])?;
    }
    client.pipeline_sync()?;
    for v in values {
        match client.get_result()? {
            Some(QueryResult::Rows(rows)) if rows.get(0, 0) == Some(v.as_str()) => {}
            other => return Err(unexpected(&format!("pipeline result {other:?}"))),
        }
        if client.get_result()?.is_some() {
            return Err(unexpected("second result"));
        }
    }
    match client.get_result()? {
        Some(QueryResult::PipelineSync) => Ok(()),
        other => Err(unexpected(&format!("sync result {other:?}"))),
    }
}

/// COPY FROM STDIN: `n_rows` rows of `(int8, text)` generated on the fly and streamed into an
/// unlogged table. One operation is one row.
pub fn copy_in(conninfo: &str, n_rows: u64) -> Result<ScenarioResult, Error> {
    let mut client = Client::connect(conninfo)?;
    client.query("CREATE TEMP TABLE bench_copy (a int8, b text)")?;
    let server = ServerCpu::new(client.backend_pid().into_iter().collect());
    let mut source = CopyRows::new(n_rows);
    let meter = Meter::start();
    let got = client.copy_in("COPY bench_copy FROM STDIN", &mut source)?;
    rows_result(
        "copy in",
        got,
        n_rows,
        &meter,
        &server,
        format!("{n_rows} rows of (int8, text), text format"),
    )
}

/// COPY TO STDOUT: `n_rows` rows of `(int8, text)` streamed to a sink that counts their bytes. One
/// operation is one row.
pub fn copy_out(conninfo: &str, n_rows: u64) -> Result<ScenarioResult, Error> {
    let mut client = Client::connect(conninfo)?;
    let sql = format!(
        "COPY (SELECT g::int8, 'row ' || g FROM generate_series(1, {n_rows}) AS g) TO STDOUT"
    );
    let server = ServerCpu::new(client.backend_pid().into_iter().collect());
    let mut sink = std::io::sink();
    let meter = Meter::start();
    let got = client.copy_out(&sql, &mut sink)?;
    rows_result(
        "copy out",
        got,
        n_rows,
        &meter,
        &server,
        format!("{n_rows} rows of (int8, text), text format"),
    )
}

/// COPY text rows `n\trow n\n`, generated as they are read.
struct CopyRows {
    next: u64,
    rows: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl CopyRows {
    fn new(rows: u64) -> CopyRows {
        CopyRows {
            next: 0,
            rows,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for CopyRows {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Write as _;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            while self.buf.len() < 64 * 1024 && self.next < self.rows {
                self.next += 1;
                writeln!(self.buf, "{}\trow {}", self.next, self.next)?;
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Connection set-up: connect (startup, authentication, parameter status, ReadyForQuery), then close
/// (Terminate), one after another for `duration`. The authentication method is whatever the server
/// asks of the conninfo's user, so pass one role per method to compare them. One operation is one
/// connection opened and closed.
pub fn connect(conninfo: &str, duration: Duration) -> Result<ScenarioResult, Error> {
    drop(Client::connect(conninfo)?);
    let meter = Meter::start();
    let mut operations = 0u64;
    while meter.wall.elapsed() < duration {
        drop(Client::connect(conninfo)?);
        operations += 1;
    }
    Ok(result(
        "connect",
        operations,
        &meter,
        None,
        "connect + Terminate".to_owned(),
    ))
}

/// Checks that `conninfo` connects over TLS: connects and asks the server whether its own backend's
/// connection is encrypted (`pg_stat_ssl`), so that a figure labelled TLS is one. Returns the TLS
/// version and cipher the server reports, e.g. `"TLSv1.3 TLS_AES_256_GCM_SHA384"`.
///
/// # Errors
///
/// `TLS not available: ...` with the reason: the connection failed (the driver's error follows), or
/// it is not encrypted.
pub fn require_tls(conninfo: &str) -> Result<String, Error> {
    let unavailable =
        |why: String| Error::new(ErrorKind::Other, format!("TLS not available: {why}"));
    let mut client = Client::connect(conninfo)
        .map_err(|e| unavailable(format!("connecting over TLS failed: {e}")))?;
    let sql = "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    match one_result(&mut client, sql)? {
        QueryResult::Rows(rows) if rows.get(0, 0) == Some("t") => Ok(format!(
            "{} {}",
            rows.get(0, 1).unwrap_or("?"),
            rows.get(0, 2).unwrap_or("?")
        )),
        QueryResult::Rows(_) => Err(unavailable(
            "the connection is not encrypted (the server's pg_stat_ssl says ssl = false)"
                .to_owned(),
        )),
        _ => Err(unexpected("result from pg_stat_ssl")),
    }
}

/// Cancel latency: `n` times, a query that announces itself with a notice and then sleeps is sent; once
/// the notice has arrived (the query is running), a cancel request is sent and the time until the
/// query's `57014` error and end marker have been received is measured. One operation is one cancel.
pub fn cancel_latency(conninfo: &str, n: u64) -> Result<ScenarioResult, Error> {
    const SLEEPER: &str = "DO $$BEGIN RAISE NOTICE 'sleeping'; PERFORM pg_sleep(60); END$$";
    let mut client = Client::connect(conninfo)?;
    let mut latencies = Vec::with_capacity(n as usize);
    let mut wall = 0.0;
    let mut cpu = 0.0;
    for _ in 0..n {
        client.send_query(SLEEPER)?;
        wait_for_notice(&mut client)?;
        let meter = Meter::start();
        client.cancel()?;
        match client.get_result() {
            Err(e) if e.code() == Some(crate::sqlstate::QUERY_CANCELED) => {}
            Err(e) => return Err(e),
            Ok(_) => return Err(unexpected("result of a cancelled query")),
        }
        if client.get_result()?.is_some() {
            return Err(unexpected("second result"));
        }
        let (w, c) = meter.stop();
        latencies.push(w);
        wall += w;
        cpu += c;
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[i] * 1e3
    };
    let notes = format!(
        "latency median {:.2} ms, max {:.2} ms",
        pick(0.5),
        pick(1.0)
    );
    Ok(ScenarioResult {
        name: "cancel".to_owned(),
        operations: n,
        seconds: wall,
        client_cpu_seconds: cpu,
        server_cpu_seconds: None,
        notes,
    })
}

fn wait_for_notice(client: &mut Client) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if !client.take_notices().is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(unexpected(
                "silence: the sleeping query sent no notice in 30 s",
            ));
        }
        if let Some(outcome) = client.get_result_timeout(Duration::from_millis(1))? {
            return Err(match outcome {
                Some(_) => unexpected("result before the cancel"),
                None => unexpected("end of the query before the cancel"),
            });
        }
    }
}

/// The id of the calling thread (the pid for the main thread), from `/proc/thread-self`.
pub fn current_thread_id() -> Option<u32> {
    let link = fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Pins the calling thread to CPU `core` with `taskset -p -c CORE <tid>` (util-linux).
pub fn pin_current_thread(core: usize) -> Result<(), Error> {
    let tid = current_thread_id()
        .ok_or_else(|| Error::new(ErrorKind::Other, "cannot find this thread's id in /proc"))?;
    taskset(&["-p", "-c", &core.to_string(), &tid.to_string()])
}

/// Pins every thread of process `pid` to CPU `core` with `taskset -a -p -c CORE <pid>`. Processes it
/// forks afterwards (a postmaster's backends) inherit the pinning.
pub fn pin_process(pid: u32, core: usize) -> Result<(), Error> {
    taskset(&["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
}

fn taskset(args: &[&str]) -> Result<(), Error> {
    let output = Command::new("taskset").args(args).output().map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot run taskset (util-linux) to pin to a CPU: {e}"),
        )
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Other,
            format!(
                "taskset {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ))
    }
}

/// The CPUs process or thread `pid` may run on, as `/proc/<pid>/status` lists them (`"0-1"`,
/// `"3"`); `None` when that cannot be read.
pub fn affinity(pid: u32) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let Some(a) = thread_cpu_time() else { return };
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(20) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let b = thread_cpu_time().expect("readable twice");
        assert!(b > a, "{a:?} then {b:?}");
    }

    #[test]
    fn scenario_result_rates() {
        let r = ScenarioResult {
            name: "x".into(),
            operations: 4,
            seconds: 2.0,
            client_cpu_seconds: 0.000_02,
            server_cpu_seconds: None,
            notes: String::new(),
        };
        assert_eq!(r.ops_per_second(), 2.0);
        assert!((r.client_cpu_us_per_op() - 5.0).abs() < 1e-9);
        assert_eq!(r.server_cpu_us_per_op(), None);
    }

    #[test]
    fn require_tls_says_whether_the_connection_is_encrypted() {
        use crate::cluster::{Cluster, Role};
        let tls = Cluster::shared_tls().unwrap();
        let plain = Cluster::shared().unwrap();
        let session = require_tls(&tls.conninfo_tls(Role::Scram, "verify-full")).unwrap();
        assert!(session.starts_with("TLSv1."), "{session}");
        for conninfo in [
            tls.conninfo_tls(Role::Trust, "disable"),
            plain.conninfo(Role::Trust),
        ] {
            let err = require_tls(&conninfo).unwrap_err().to_string();
            assert_eq!(
                err,
                "TLS not available: the connection is not encrypted (the server's pg_stat_ssl \
                 says ssl = false)"
            );
        }
        // A connection that fails says why, after the same words.
        let err = require_tls(&tls.conninfo_tls(Role::SslOnly, "disable"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("TLS not available: connecting over TLS failed: ")
                && err.contains("no encryption"),
            "{err}"
        );
    }

    #[test]
    fn current_thread_id_is_a_task_of_this_process() {
        if let Some(tid) = current_thread_id() {
            let pid = std::process::id();
            assert!(fs::metadata(format!("/proc/{pid}/task/{tid}")).is_ok());
        }
    }
}

//! pgdblink side by side with libpq's asynchronous API and tokio-postgres, on the same throwaway
//! PostgreSQL cluster, in the same run: round trips, rows, fan-out over 50 and 500 connections, SCRAM
//! connection set-up, pipelined `SELECT $1` 1,000 deep (tokio-postgres: implicit pipelining of a
//! prepared statement), and (against libpq only) COPY in and out of 1M rows.
//!
//! `cargo bench --bench compare` (`-- --seconds 5 --repeat 5` for longer runs; each scenario runs
//! `--repeat` times per client, interleaved, and the median is reported with the spread of the runs;
//! `--only LIST` runs the scenarios named in a comma-separated list of `round-trips`, `rows`,
//! `fan-out`, `connect`, `pipeline`, `copy-in`, `copy-out`; `--no-pin` leaves client and server free
//! to use every core; `--unix` connects every client over the cluster's unix socket instead of TCP on
//! 127.0.0.1; `--tls` gives the cluster certificates made at start and connects pgdblink (rustls) and
//! libpq (OpenSSL) with `sslmode=verify-full` against the generated CA, SCRAM with channel binding —
//! tokio-postgres and the raw floor clients are left out over TLS: tokio-postgres needs a TLS
//! connector crate and the raw clients speak no TLS).
//!
//! Besides the ratio of the medians, each client's *paired* ratio to libpq is reported: the median,
//! over the repeats, of the ratio between the two runs of the same repeat (which ran one right after
//! the other), so a slow drift of the machine or the server cancels out. The server and the client are
//! pinned to one core (`taskset`, when available) so a round trip does not pay a cross-core wake-up; the
//! output says whether pinning took effect. The libpq peer (`benches/peers/libpq_peer.c`) is compiled at
//! run time with `cc` and libpq's headers (Debian: `libpq-dev`); without them it is skipped with a note.
//! tokio-postgres runs on a current-thread runtime in the measuring thread, using the simple query
//! protocol like the others. Every client but the raw floors visits every value of the row result.
//!
//! Every scenario but connecting also runs *raw* clients with no client library, the floor of what a
//! client costs on the machine: a hand-opened connection, pre-encoded messages written with one `send`
//! each, the reply read until `ReadyForQuery` looking only at message headers. `raw, epoll` waits as
//! pgdblink does (non-blocking sockets, `epoll_wait`, then `recv`), so its distance to pgdblink is what
//! pgdblink's own code costs; `raw, blocking` sleeps in a blocking `recv` instead (two system calls per
//! query). In the rows scenario the floors receive every byte of the reply but only count the
//! `DataRow`s: they never look at a value, so they bound what the server and the kernel allow, not
//! what a client that uses the rows can reach. COPY out: the `CopyData` counted and dropped. COPY in:
//! the same rows in the same text format and message sizes, encoded once before the clock starts,
//! written by `raw, blocking` only (the client only writes; an epoll variant would differ only by an
//! `epoll_wait` each time the socket buffer fills). See the `floor` module.
//!
//! The table goes to stdout; `target/compare.json` gets the same figures, and the CPU time of the
//! server's backends where it is measured (pgdblink's scenarios and the floors, which read the
//! backends' `/proc/PID/schedstat`); the progress lines on stderr show it per operation.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pgdblink::bench::{self, ScenarioResult};
use pgdblink::cluster::{Cluster, ClusterOptions, Role};

const CORE: usize = 0;
/// The sslmode of `--tls`.
const TLS_SSLMODE: &str = "verify-full";

/// Whether the libpq peer is pinned too (cleared by `--no-pin`).
static PIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// One client's way to run a scenario once.
type Run<'a> = &'a mut dyn FnMut() -> Result<ScenarioResult, String>;

/// One line of the table: a client in a scenario.
struct Row {
    scenario: String,
    client: &'static str,
    result: Option<ScenarioResult>,
    note: String,
    /// Median over the repeats of (this client's ops/s / libpq's ops/s in the same repeat), and the
    /// same for client CPU per operation; `None` for libpq itself or without paired runs.
    paired: Option<(f64, f64)>,
    /// The slowest and the fastest run's operations per second.
    lo: f64,
    hi: f64,
}

/// The scenario keys `--only` takes, each with the prefix of the scenario names it selects.
const SCENARIOS: [(&str, &str); 8] = [
    ("round-trips", "round trips"),
    ("rows", "rows"),
    ("fan-out", "fan-out"),
    ("connect", "connect ("),
    ("connect-fanout", "connect fan-out"),
    ("pipeline", "pipeline"),
    ("copy-in", "copy in"),
    ("copy-out", "copy out"),
];

fn median_of(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The command line of a run (see the module's documentation).
struct Options {
    /// `--seconds`: how long each timed run lasts (default 3).
    seconds: f64,
    /// `--repeat`: runs per client and scenario (default 3).
    repeat: usize,
    /// `--unix`: every client connects over the cluster's unix socket instead of TCP on 127.0.0.1.
    unix: bool,
    /// `--tls`: every client connects with sslmode=verify-full to a cluster with certificates.
    tls: bool,
    /// `--no-pin`: client and server left free to use every core.
    no_pin: bool,
    /// `--only`: the prefixes of the scenario names to run ([`SCENARIOS`]); `None` runs them all.
    only: Option<Vec<&'static str>>,
    /// `--svg`: where the chart goes.
    svg: PathBuf,
    /// `--callgrind`: count instructions instead of timing.
    callgrind: bool,
}

impl Options {
    /// Parses the arguments; a bad `--only` key or `--tls` with `--unix` exits with status 2.
    fn parse(args: &[String]) -> Options {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
        };
        let flag = |flag: &str| args.iter().any(|a| a == flag);
        let (unix, tls) = (flag("--unix"), flag("--tls"));
        if tls && unix {
            eprintln!("--tls and --unix exclude each other: TLS is never used over a unix socket");
            std::process::exit(2);
        }
        Options {
            seconds: value("--seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(3.0),
            repeat: value("--repeat").and_then(|v| v.parse().ok()).unwrap_or(3),
            unix,
            tls,
            no_pin: flag("--no-pin"),
            only: value("--only").map(|list| list.split(',').map(scenario_prefix).collect()),
            // `cargo bench` runs this in benches/: a relative path is the workspace root's.
            svg: value("--svg")
                .map(|p| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p))
                .unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/compare.svg")
                }),
            callgrind: flag("--callgrind"),
        }
    }
}

/// The prefix of the scenario names an `--only` key selects; an unknown key exits with status 2.
fn scenario_prefix(key: &str) -> &'static str {
    match SCENARIOS.iter().find(|(k, _)| *k == key.trim()) {
        Some((_, prefix)) => prefix,
        None => {
            let keys: Vec<&str> = SCENARIOS.iter().map(|(k, _)| *k).collect();
            eprintln!(
                "--only: unknown scenario {key:?}; one of {}",
                keys.join(", ")
            );
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--callgrind-child") {
        callgrind::child(&args[2..]);
    }
    let opts = Options::parse(&args);
    let cluster = Cluster::start_with(ClusterOptions {
        // Fan-out runs open 500 connections each, one run right after the other while the previous
        // run's backends may still be exiting.
        max_connections: Some(1200),
        tls: opts.tls,
        ..ClusterOptions::default()
    })
    .expect("throwaway cluster");
    let pinned = pinning(&opts, &cluster);
    let (trust, scram) = conninfos(&opts, &cluster);
    let pinned = format!("{pinned}; transport: {}", transport(&opts, &trust));
    let peer = build_libpq_peer();
    if opts.callgrind {
        let counts = callgrind::run_all(&peer, &trust);
        println!("{pinned}");
        callgrind::print(&counts);
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let setup = scenarios::Setup {
        cluster: &cluster,
        trust: &trust,
        scram: &scram,
        peer: &peer,
        rt: &rt,
        seconds: opts.seconds,
        duration: Duration::from_secs_f64(opts.seconds),
        unix: opts.unix,
        copy_in_rows: std::cell::OnceCell::new(),
    };
    let mut runner = Runner::new(&opts);
    scenarios::run_all(&mut runner, &setup);

    report::print_table(&runner.table, &pinned);
    report::write_json(&runner.table, &pinned);
    report::write_chart(&runner.table, &opts.svg, opts.repeat, opts.no_pin);
}

/// Runs the scenarios `--only` selects and collects the table's rows. Each scenario runs `repeat`
/// times per client, the clients interleaved (so a disturbance hits all of them alike); the median
/// run by operations/s is reported.
struct Runner {
    only: Option<Vec<&'static str>>,
    tls: bool,
    repeat: usize,
    table: Vec<Row>,
}

impl Runner {
    fn new(opts: &Options) -> Runner {
        Runner {
            only: opts.only.clone(),
            tls: opts.tls,
            repeat: opts.repeat,
            table: Vec::new(),
        }
    }

    /// Runs the scenario `name` with `clients` (unless `--only` leaves it out) and adds a row per
    /// client to the table.
    fn run(&mut self, name: &str, clients: &mut [(&'static str, Run)]) {
        if self
            .only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|prefix| name.starts_with(prefix)))
        {
            return;
        }
        // Over TLS only pgdblink and libpq run (see the module's documentation).
        let tls = self.tls;
        let mut clients: Vec<&mut (&'static str, Run)> = clients
            .iter_mut()
            .filter(|(c, _)| !tls || matches!(*c, "pgdblink" | "libpq"))
            .collect();
        eprintln!("{name} ({} runs each, interleaved)", self.repeat);
        let mut runs: Vec<Vec<Result<ScenarioResult, String>>> =
            clients.iter().map(|_| Vec::new()).collect();
        for _ in 0..self.repeat {
            for (i, (_, run)) in clients.iter_mut().enumerate() {
                runs[i].push(run());
            }
        }
        let libpq = clients.iter().position(|(c, _)| *c == "libpq");
        let paired = paired_ratios(&runs, libpq);
        for ((client, results), paired) in clients.iter().zip(runs).zip(paired) {
            self.table.push(summarize(name, client.0, results, paired));
        }
    }
}

/// Each client's paired ratios to libpq (`libpq`: its index in `runs`); `None` for libpq itself, or
/// without libpq.
fn paired_ratios(
    runs: &[Vec<Result<ScenarioResult, String>>],
    libpq: Option<usize>,
) -> Vec<Option<(f64, f64)>> {
    runs.iter()
        .enumerate()
        .map(|(i, mine)| paired_ratio(mine, &runs[libpq.filter(|&l| l != i)?]))
        .collect()
}

/// The median over the repeats of (`mine`'s ops/s / `theirs`'s ops/s in the same repeat), and the same
/// for client CPU per operation; `None` without a repeat where both runs succeeded.
fn paired_ratio(
    mine: &[Result<ScenarioResult, String>],
    theirs: &[Result<ScenarioResult, String>],
) -> Option<(f64, f64)> {
    let pairs: Vec<(f64, f64)> = mine
        .iter()
        .zip(theirs)
        .filter_map(|(m, t)| {
            let (m, t) = (m.as_ref().ok()?, t.as_ref().ok()?);
            Some((
                m.ops_per_second() / t.ops_per_second(),
                m.client_cpu_us_per_op() / t.client_cpu_us_per_op(),
            ))
        })
        .collect();
    Some((
        median_of(pairs.iter().map(|p| p.0).collect())?,
        median_of(pairs.iter().map(|p| p.1).collect())?,
    ))
}

/// One client's row of a scenario from its runs: the median run by operations/s, the slowest and
/// the fastest; says so on stderr, with each failed run's error.
fn summarize(
    scenario: &str,
    client: &'static str,
    results: Vec<Result<ScenarioResult, String>>,
    paired: Option<(f64, f64)>,
) -> Row {
    let mut ok: Vec<ScenarioResult> = Vec::new();
    let mut err = None;
    for r in results {
        match r {
            Ok(r) => ok.push(r),
            Err(e) => {
                eprintln!("  {client}: a run failed: {e}");
                err = Some(e)
            }
        }
    }
    ok.sort_by(|a, b| a.ops_per_second().total_cmp(&b.ops_per_second()));
    let (lo, hi) = match (ok.first(), ok.last()) {
        (Some(lo), Some(hi)) => (lo.ops_per_second(), hi.ops_per_second()),
        _ => (0.0, 0.0),
    };
    let spread = if ok.is_empty() {
        String::new()
    } else {
        format!("{lo:.0}..{hi:.0}")
    };
    let median = (!ok.is_empty()).then(|| ok.swap_remove(ok.len() / 2));
    eprintln!(
        "  {client:<15} {}",
        match &median {
            Some(r) => format!(
                "median {:.0} ops/s (runs {spread}){}",
                r.ops_per_second(),
                r.server_cpu_us_per_op()
                    .map(|s| format!(", server CPU {s:.3} µs/op"))
                    .unwrap_or_default()
            ),
            None => err.clone().unwrap_or_default(),
        }
    );
    Row {
        scenario: scenario.to_owned(),
        client,
        note: if median.is_some() {
            spread
        } else {
            err.unwrap_or_default()
        },
        result: median,
        paired,
        lo,
        hi,
    }
}

/// pgdblink's side of the connect fan-out: `Dblink::connect_start` for all, `wait`, and
/// `connect_finish` ([`bench::connect_fanout`]).
fn pgdblink_connect_fanout(conninfo: &str, n: usize) -> Result<ScenarioResult, String> {
    bench::connect_fanout(conninfo, n).map_err(|e| e.to_string())
}

/// Pins client and server to one core unless `--no-pin`; says which.
fn pinning(opts: &Options, cluster: &Cluster) -> String {
    if opts.no_pin {
        PIN.store(false, std::sync::atomic::Ordering::Relaxed);
        "NOT pinned (--no-pin): client and server share both cores; round trips include cross-core wake-ups".to_owned()
    } else {
        pin(cluster)
    }
}

/// The trust and SCRAM roles' conninfos over the transport the options ask for.
fn conninfos(opts: &Options, cluster: &Cluster) -> (String, String) {
    if opts.tls {
        (
            cluster.conninfo_tls(Role::Trust, TLS_SSLMODE),
            cluster.conninfo_tls(Role::Scram, TLS_SSLMODE),
        )
    } else if opts.unix {
        (
            cluster.conninfo_unix(Role::Trust),
            cluster.conninfo_unix(Role::Scram),
        )
    } else {
        (cluster.conninfo(Role::Trust), cluster.conninfo(Role::Scram))
    }
}

/// The transport's description; with `--tls`, exits with status 1 unless pgdblink's connection
/// really is TLS.
fn transport(opts: &Options, trust: &str) -> String {
    if opts.tls {
        // A figure labelled TLS must be one: pgdblink's connection is checked (libpq's cannot be
        // anything else with verify-full).
        let session = bench::require_tls(trust).unwrap_or_else(|e| {
            eprintln!("--tls: {e}");
            std::process::exit(1);
        });
        format!(
            "TLS over TCP on 127.0.0.1 ({session}, sslmode={TLS_SSLMODE}; pgdblink: rustls, libpq: \
             OpenSSL; SCRAM with channel binding; tokio-postgres and raw floors left out)"
        )
    } else if opts.unix {
        "unix socket".to_owned()
    } else {
        "TCP over 127.0.0.1".to_owned()
    }
}

/// Pins the server (postmaster and, by inheritance, every backend) and this thread to one core.
fn pin(cluster: &Cluster) -> String {
    let server = bench::pin_process(cluster.postmaster_pid(), CORE).map_err(|e| e.to_string());
    let client = bench::pin_current_thread(CORE).map_err(|e| e.to_string());
    match (server, client) {
        (Ok(()), Ok(())) => format!("client and server pinned to core {CORE} (taskset)"),
        (s, c) => format!(
            "NOT pinned (server: {}, client: {}): round trips include cross-core wake-ups",
            s.err().unwrap_or_else(|| "ok".into()),
            c.err().unwrap_or_else(|| "ok".into())
        ),
    }
}

/// Compiles the libpq peer, or says why it cannot.
fn build_libpq_peer() -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/libpq_peer.c");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/libpq_peer");
    let include = Command::new("pg_config")
        .arg("--includedir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "/usr/include/postgresql".to_owned());
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg(format!("-I{include}"))
        .arg("-lpq")
        .output()
        .map_err(|e| format!("libpq peer skipped: cc: {e}"))?;
    if !status.status.success() {
        return Err(format!(
            "libpq peer skipped: could not compile it (is libpq-dev installed?): {}",
            String::from_utf8_lossy(&status.stderr)
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(out)
}

/// Runs the libpq peer pinned to the same core and parses `ops seconds cpu`.
fn run_peer(peer: &Result<PathBuf, String>, args: &[&str]) -> Result<ScenarioResult, String> {
    let peer = peer.as_ref().map_err(Clone::clone)?;
    let mut cmd = if PIN.load(std::sync::atomic::Ordering::Relaxed) && which("taskset") {
        let mut c = Command::new("taskset");
        c.args(["-c", &CORE.to_string()]).arg(peer);
        c
    } else {
        Command::new(peer)
    };
    let out = cmd.args(args).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if f.len() != 3 {
        return Err(format!("unexpected peer output {text:?}"));
    }
    Ok(scenario(args[0], f[0] as u64, f[1], f[2]))
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn scenario(name: &str, operations: u64, seconds: f64, cpu: f64) -> ScenarioResult {
    ScenarioResult {
        name: name.to_owned(),
        operations,
        seconds,
        client_cpu_seconds: cpu,
        server_cpu_seconds: None,
        notes: String::new(),
    }
}

/// Wall clock and this thread's CPU time from a start.
struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch {
            cpu: bench::thread_cpu_time().unwrap_or_default(),
            wall: Instant::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.wall.elapsed()
    }

    /// The result of `operations` done since the start.
    fn result(&self, name: &str, operations: u64) -> ScenarioResult {
        let seconds = self.wall.elapsed().as_secs_f64();
        let cpu = bench::thread_cpu_time()
            .unwrap_or_default()
            .saturating_sub(self.cpu);
        scenario(name, operations, seconds, cpu.as_secs_f64())
    }
}

#[path = "compare/callgrind.rs"]
mod callgrind;
#[path = "compare/chart.rs"]
mod chart;
#[path = "compare/floor.rs"]
mod floor;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/scenarios.rs"]
mod scenarios;
#[path = "compare/tokio_peer.rs"]
mod tokio_peer;

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

/// Connections of the connect fan-out scenario, and the proxy's delay each way.
const FANOUT_CONNECTS: usize = 200;
const PROXY_DELAY: Duration = Duration::from_millis(5);

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
    let seconds = opts.seconds;
    let duration = Duration::from_secs_f64(seconds);
    let rows_n: u64 = 1_000_000;
    let (unix, tls, repeat) = (opts.unix, opts.tls, opts.repeat);
    let cluster = Cluster::start_with(ClusterOptions {
        // Fan-out runs open 500 connections each, one run right after the other while the previous
        // run's backends may still be exiting.
        max_connections: Some(1200),
        tls,
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

    let mut table: Vec<Row> = Vec::new();
    // The COPY in floor's pre-encoded rows (about 18 MB), made only if that scenario runs.
    let copy_in_rows = std::cell::OnceCell::new();
    // Each scenario runs `repeat` times per client, the clients interleaved (so a disturbance hits all
    // of them alike); the median run by operations/s is reported.
    let mut scenario = |name: &str, clients: &mut [(&'static str, Run)]| {
        if opts
            .only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|prefix| name.starts_with(prefix)))
        {
            return;
        }
        // Over TLS only pgdblink and libpq run (see the module's documentation).
        let mut clients: Vec<&mut (&'static str, Run)> = clients
            .iter_mut()
            .filter(|(c, _)| !tls || matches!(*c, "pgdblink" | "libpq"))
            .collect();
        eprintln!("{name} ({repeat} runs each, interleaved)");
        let mut runs: Vec<Vec<Result<ScenarioResult, String>>> =
            clients.iter().map(|_| Vec::new()).collect();
        for _ in 0..repeat {
            for (i, (_, run)) in clients.iter_mut().enumerate() {
                runs[i].push(run());
            }
        }
        let libpq = clients.iter().position(|(c, _)| *c == "libpq");
        let paired: Vec<Option<(f64, f64)>> = runs
            .iter()
            .enumerate()
            .map(|(i, mine)| {
                let theirs = &runs[libpq.filter(|&l| l != i)?];
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
            })
            .collect();
        for (((client, _), results), paired) in clients.iter().zip(runs).zip(paired) {
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
            let spread = match (ok.first(), ok.last()) {
                (Some(lo), Some(hi)) => {
                    format!("{:.0}..{:.0}", lo.ops_per_second(), hi.ops_per_second())
                }
                _ => String::new(),
            };
            let (lo, hi) = match (ok.first(), ok.last()) {
                (Some(lo), Some(hi)) => (lo.ops_per_second(), hi.ops_per_second()),
                _ => (0.0, 0.0),
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
            table.push(Row {
                scenario: name.to_owned(),
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
            });
        }
    };

    scenario(
        "round trips",
        &mut [
            ("pgdblink", &mut || {
                bench::round_trips(&trust, duration).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(&peer, &["rt", &trust, &seconds.to_string()])
            }),
            ("tokio-postgres", &mut || {
                rt.block_on(tokio_peer::tokio_round_trips(&trust, duration))
            }),
            ("raw, epoll", &mut || {
                floor::fan_out(&cluster, unix, floor::Mode::Epoll, 1, duration)
            }),
            ("raw, blocking", &mut || {
                floor::fan_out(&cluster, unix, floor::Mode::Blocking, 1, duration)
            }),
        ],
    );
    scenario(
        "rows (1M x 2 columns)",
        &mut [
            ("pgdblink", &mut || {
                bench::rows(&trust, rows_n).map_err(|e| e.to_string())
            }),
            ("pgdblink, get()", &mut || {
                bench::rows_get(&trust, rows_n).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(&peer, &["rows", &trust, &rows_n.to_string()])
            }),
            ("tokio-postgres", &mut || {
                rt.block_on(tokio_peer::tokio_rows(&trust, rows_n))
            }),
            ("raw, epoll", &mut || {
                floor::rows(&cluster, unix, floor::Mode::Epoll, rows_n)
            }),
            ("raw, blocking", &mut || {
                floor::rows(&cluster, unix, floor::Mode::Blocking, rows_n)
            }),
        ],
    );
    for n in [50usize, 500] {
        let name = format!("fan-out, {n} connections");
        scenario(
            &name,
            &mut [
                ("pgdblink", &mut || {
                    bench::fan_out(&trust, n, duration).map_err(|e| e.to_string())
                }),
                ("libpq", &mut || {
                    run_peer(
                        &peer,
                        &["fanout", &trust, &n.to_string(), &seconds.to_string()],
                    )
                }),
                ("tokio-postgres", &mut || {
                    rt.block_on(tokio_peer::tokio_fan_out(&trust, n, duration))
                }),
                ("raw, epoll", &mut || {
                    floor::fan_out(&cluster, unix, floor::Mode::Epoll, n, duration)
                }),
                ("raw, blocking", &mut || {
                    floor::fan_out(&cluster, unix, floor::Mode::Blocking, n, duration)
                }),
            ],
        );
    }
    scenario(
        "connect (SCRAM)",
        &mut [
            ("pgdblink", &mut || {
                bench::connect(&scram, duration).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(&peer, &["connect", &scram, &seconds.to_string()])
            }),
            ("tokio-postgres", &mut || {
                rt.block_on(tokio_peer::tokio_connect(&scram, duration))
            }),
        ],
    );
    scenario(
        "pipeline (SELECT $1, depth 1,000)",
        &mut [
            ("pgdblink", &mut || {
                bench::pipeline(&trust, duration).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(&peer, &["pipeline", &trust, &seconds.to_string()])
            }),
            ("tokio-postgres", &mut || {
                rt.block_on(tokio_peer::tokio_pipeline(&trust, duration))
            }),
            ("raw, epoll", &mut || {
                floor::pipeline(&cluster, unix, floor::Mode::Epoll, duration)
            }),
            ("raw, blocking", &mut || {
                floor::pipeline(&cluster, unix, floor::Mode::Blocking, duration)
            }),
        ],
    );
    scenario(
        "copy in (1M rows)",
        &mut [
            ("pgdblink", &mut || {
                bench::copy_in(&trust, rows_n).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(&peer, &["copyin", &trust, &rows_n.to_string()])
            }),
            ("tokio-postgres", &mut || {
                rt.block_on(tokio_peer::tokio_copy_in(&trust, rows_n))
            }),
            ("raw, blocking", &mut || {
                // Encoded once, at the first run: not timed.
                if copy_in_rows.get().is_none() {
                    let _ = copy_in_rows.set(floor::CopyIn::new(rows_n)?);
                }
                floor::copy_in(&cluster, unix, copy_in_rows.get().expect("just set"))
            }),
        ],
    );
    scenario(
        "copy out (1M rows)",
        &mut [
            ("pgdblink", &mut || {
                bench::copy_out(&trust, rows_n).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(&peer, &["copyout", &trust, &rows_n.to_string()])
            }),
            ("tokio-postgres", &mut || {
                rt.block_on(tokio_peer::tokio_copy_out(&trust, rows_n))
            }),
            ("raw, epoll", &mut || {
                floor::copy_out(&cluster, unix, floor::Mode::Epoll, rows_n)
            }),
            ("raw, blocking", &mut || {
                floor::copy_out(&cluster, unix, floor::Mode::Blocking, rows_n)
            }),
        ],
    );
    // Through a proxy delaying every byte PROXY_DELAY each way (not over the unix socket).
    let proxy = (!unix).then(|| {
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], cluster.port()));
        bench::DelayProxy::start(target, PROXY_DELAY).expect("the delaying proxy")
    });
    if let Some(proxy) = &proxy {
        let far = bench::via_port(&scram, cluster.port(), proxy.port());
        let n = FANOUT_CONNECTS.to_string();
        scenario(
            &format!(
                "connect fan-out ({FANOUT_CONNECTS} SCRAM, +{} ms each way)",
                PROXY_DELAY.as_millis()
            ),
            &mut [
                ("pgdblink", &mut || {
                    pgdblink_connect_fanout(&far, FANOUT_CONNECTS)
                }),
                ("libpq", &mut || run_peer(&peer, &["connpoll", &far, &n])),
                ("libpq, blocking", &mut || {
                    run_peer(&peer, &["conndb", &far, &n])
                }),
                ("one connection", &mut || {
                    run_peer(&peer, &["conndb", &far, "1"])
                }),
            ],
        );
    }

    report::print_table(&table, &pinned);
    report::write_json(&table, &pinned);
    report::write_chart(&table, &opts.svg, repeat, opts.no_pin);
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
#[path = "compare/tokio_peer.rs"]
mod tokio_peer;

//! The compare bench's scenarios, in the order they run, each with its clients.

use std::cell::OnceCell;
use std::path::PathBuf;
use std::time::Duration;

use pgdblink::bench;
use pgdblink::cluster::Cluster;

use super::{Runner, floor, pgdblink_connect_fanout, run_peer, tokio_peer};

/// Connections of the connect fan-out scenario, and the proxy's delay each way.
const FANOUT_CONNECTS: usize = 200;
const PROXY_DELAY: Duration = Duration::from_millis(5);

/// Runs every scenario `runner` selects.
pub fn run_all(runner: &mut Runner, s: &Setup) {
    query_scenarios(runner, s);
    connect_and_pipeline_scenarios(runner, s);
    copy_scenarios(runner, s);
    connect_fanout_scenario(runner, s);
}

/// What the scenarios' clients share.
pub struct Setup<'a> {
    pub cluster: &'a Cluster,
    /// The trust and the SCRAM role's conninfos.
    pub trust: &'a str,
    pub scram: &'a str,
    /// The libpq peer's executable, or why there is none.
    pub peer: &'a Result<PathBuf, String>,
    /// tokio-postgres's current-thread runtime.
    pub rt: &'a tokio::runtime::Runtime,
    /// `--seconds`, and as a duration.
    pub seconds: f64,
    pub duration: Duration,
    /// `--unix`: the raw floors connect over the unix socket.
    pub unix: bool,
    /// The COPY in floor's pre-encoded rows (about 18 MB), made only if that scenario runs.
    pub copy_in_rows: OnceCell<floor::CopyIn>,
}

/// Rows fetched by the rows scenario and copied by the COPY scenarios.
const ROWS: u64 = 1_000_000;

/// Round trips, rows, and fan-out over 50 and 500 connections.
fn query_scenarios(runner: &mut Runner, s: &Setup) {
    let (trust, seconds, duration) = (s.trust, s.seconds, s.duration);
    runner.run(
        "round trips",
        &mut [
            ("pgdblink", &mut || {
                bench::round_trips(trust, duration).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(s.peer, &["rt", trust, &seconds.to_string()])
            }),
            ("tokio-postgres", &mut || {
                s.rt.block_on(tokio_peer::tokio_round_trips(trust, duration))
            }),
            ("raw, epoll", &mut || {
                floor::fan_out(s.cluster, s.unix, floor::Mode::Epoll, 1, duration)
            }),
            ("raw, blocking", &mut || {
                floor::fan_out(s.cluster, s.unix, floor::Mode::Blocking, 1, duration)
            }),
        ],
    );
    runner.run(
        "rows (1M x 2 columns)",
        &mut [
            ("pgdblink", &mut || {
                bench::rows(trust, ROWS).map_err(|e| e.to_string())
            }),
            ("pgdblink, get()", &mut || {
                bench::rows_get(trust, ROWS).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(s.peer, &["rows", trust, &ROWS.to_string()])
            }),
            ("tokio-postgres", &mut || {
                s.rt.block_on(tokio_peer::tokio_rows(trust, ROWS))
            }),
            ("raw, epoll", &mut || {
                floor::rows(s.cluster, s.unix, floor::Mode::Epoll, ROWS)
            }),
            ("raw, blocking", &mut || {
                floor::rows(s.cluster, s.unix, floor::Mode::Blocking, ROWS)
            }),
        ],
    );
    for n in [50usize, 500] {
        runner.run(
            &format!("fan-out, {n} connections"),
            &mut [
                ("pgdblink", &mut || {
                    bench::fan_out(trust, n, duration).map_err(|e| e.to_string())
                }),
                ("libpq", &mut || {
                    run_peer(
                        s.peer,
                        &["fanout", trust, &n.to_string(), &seconds.to_string()],
                    )
                }),
                ("tokio-postgres", &mut || {
                    s.rt.block_on(tokio_peer::tokio_fan_out(trust, n, duration))
                }),
                ("raw, epoll", &mut || {
                    floor::fan_out(s.cluster, s.unix, floor::Mode::Epoll, n, duration)
                }),
                ("raw, blocking", &mut || {
                    floor::fan_out(s.cluster, s.unix, floor::Mode::Blocking, n, duration)
                }),
            ],
        );
    }
}

/// SCRAM connection set-up, and pipelined `SELECT $1` 1,000 deep.
fn connect_and_pipeline_scenarios(runner: &mut Runner, s: &Setup) {
    let (trust, scram, seconds, duration) = (s.trust, s.scram, s.seconds, s.duration);
    runner.run(
        "connect (SCRAM)",
        &mut [
            ("pgdblink", &mut || {
                bench::connect(scram, duration).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(s.peer, &["connect", scram, &seconds.to_string()])
            }),
            ("tokio-postgres", &mut || {
                s.rt.block_on(tokio_peer::tokio_connect(scram, duration))
            }),
        ],
    );
    runner.run(
        "pipeline (SELECT $1, depth 1,000)",
        &mut [
            ("pgdblink", &mut || {
                bench::pipeline(trust, duration).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(s.peer, &["pipeline", trust, &seconds.to_string()])
            }),
            ("tokio-postgres", &mut || {
                s.rt.block_on(tokio_peer::tokio_pipeline(trust, duration))
            }),
            ("raw, epoll", &mut || {
                floor::pipeline(s.cluster, s.unix, floor::Mode::Epoll, duration)
            }),
            ("raw, blocking", &mut || {
                floor::pipeline(s.cluster, s.unix, floor::Mode::Blocking, duration)
            }),
        ],
    );
}

/// COPY in and out of [`ROWS`] rows.
fn copy_scenarios(runner: &mut Runner, s: &Setup) {
    let trust = s.trust;
    runner.run(
        "copy in (1M rows)",
        &mut [
            ("pgdblink", &mut || {
                bench::copy_in(trust, ROWS).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(s.peer, &["copyin", trust, &ROWS.to_string()])
            }),
            ("tokio-postgres", &mut || {
                s.rt.block_on(tokio_peer::tokio_copy_in(trust, ROWS))
            }),
            ("raw, blocking", &mut || {
                // Encoded once, at the first run: not timed.
                if s.copy_in_rows.get().is_none() {
                    let _ = s.copy_in_rows.set(floor::CopyIn::new(ROWS)?);
                }
                floor::copy_in(s.cluster, s.unix, s.copy_in_rows.get().expect("just set"))
            }),
        ],
    );
    runner.run(
        "copy out (1M rows)",
        &mut [
            ("pgdblink", &mut || {
                bench::copy_out(trust, ROWS).map_err(|e| e.to_string())
            }),
            ("libpq", &mut || {
                run_peer(s.peer, &["copyout", trust, &ROWS.to_string()])
            }),
            ("tokio-postgres", &mut || {
                s.rt.block_on(tokio_peer::tokio_copy_out(trust, ROWS))
            }),
            ("raw, epoll", &mut || {
                floor::copy_out(s.cluster, s.unix, floor::Mode::Epoll, ROWS)
            }),
            ("raw, blocking", &mut || {
                floor::copy_out(s.cluster, s.unix, floor::Mode::Blocking, ROWS)
            }),
        ],
    );
}

/// [`FANOUT_CONNECTS`] SCRAM connections through a proxy delaying every byte [`PROXY_DELAY`] each
/// way (not over the unix socket).
fn connect_fanout_scenario(runner: &mut Runner, s: &Setup) {
    if s.unix {
        return;
    }
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], s.cluster.port()));
    let proxy = bench::DelayProxy::start(target, PROXY_DELAY).expect("the delaying proxy");
    let far = bench::via_port(s.scram, s.cluster.port(), proxy.port());
    let n = FANOUT_CONNECTS.to_string();
    runner.run(
        &format!(
            "connect fan-out ({FANOUT_CONNECTS} SCRAM, +{} ms each way)",
            PROXY_DELAY.as_millis()
        ),
        &mut [
            ("pgdblink", &mut || {
                pgdblink_connect_fanout(&far, FANOUT_CONNECTS)
            }),
            ("libpq", &mut || run_peer(s.peer, &["connpoll", &far, &n])),
            ("libpq, blocking", &mut || {
                run_peer(s.peer, &["conndb", &far, &n])
            }),
            ("one connection", &mut || {
                run_peer(s.peer, &["conndb", &far, "1"])
            }),
        ],
    );
}

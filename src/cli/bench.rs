//! `pgdblink bench`: the scenarios of [`pgdblink::bench`] with progress, a table or JSON.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use pgdblink::Error;
use pgdblink::bench::{self, ScenarioResult};
use pgdblink::cluster::{Cluster, ClusterOptions, Role};
use pgdblink::driver::Client;

use super::table::{Align, Table};

/// A scenario of `pgdblink bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `SELECT 1` one after another on one connection.
    RoundTrips,
    /// One query streaming `--rows` rows of two columns, read with `iter()`.
    Rows,
    /// The same rows read with `Rows::get(row, col)` (random access).
    RowsGet,
    /// `SELECT 1` on `--connections` connections at once, one thread.
    FanOut,
    /// Connection set-up and tear-down, per authentication method.
    Connect,
    /// Cancel a running query and wait for its error (`--cancels` times).
    Cancel,
    /// Pipelined `SELECT $1`, 1,000 queries a sync, on one connection.
    Pipeline,
    /// COPY FROM STDIN of `--rows` rows.
    CopyIn,
    /// COPY TO STDOUT of `--rows` rows.
    CopyOut,
    /// `--connections` connections opened at once through a proxy delaying 5 ms each way.
    ConnectFanout,
}

impl Scenario {
    /// The default run (`rows-get` is asked for by name).
    pub const ALL: [Scenario; 9] = [
        Scenario::RoundTrips,
        Scenario::Rows,
        Scenario::FanOut,
        Scenario::Connect,
        Scenario::Cancel,
        Scenario::Pipeline,
        Scenario::CopyIn,
        Scenario::CopyOut,
        Scenario::ConnectFanout,
    ];
}

/// What `pgdblink bench` was asked to do.
#[derive(Debug)]
pub struct Plan {
    pub conninfo: Option<String>,
    pub auth: Vec<(String, String)>,
    pub scenarios: Vec<Scenario>,
    pub duration: Duration,
    pub rows: u64,
    pub connections: usize,
    pub cancels: u64,
    pub pin: Option<usize>,
    /// Runs of each scenario; the median is reported with the spread of the runs.
    pub repeat: usize,
    pub json: bool,
    /// Every scenario over TLS (sslmode=verify-full) on a throwaway cluster with certificates.
    pub tls: bool,
}

/// The sslmode of `--tls`: the strongest, as a careful user would connect.
const TLS_SSLMODE: &str = "verify-full";

/// One step: a label for the progress line and the scenario to run.
struct Step {
    label: String,
    scenario: Scenario,
    conninfo: String,
    /// For `connect`: the name of the authentication method.
    method: Option<String>,
}

struct Progress {
    tty: bool,
}

impl Progress {
    fn show(&self, text: &str) {
        let mut err = std::io::stderr();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{text}");
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

pub fn bench(plan: &Plan) -> Result<(), Error> {
    let progress = Progress {
        tty: std::io::stderr().is_terminal(),
    };
    // Pin this thread first: the cluster's processes are started from it, but they are pinned
    // explicitly below, so the order does not matter for them.
    if let Some(core) = plan.pin {
        bench::pin_current_thread(core)?;
    }
    let (cluster, main_conninfo) = match &plan.conninfo {
        Some(conninfo) => (None, conninfo.clone()),
        None => {
            progress.show(if plan.tls {
                "starting a throwaway PostgreSQL cluster with TLS certificates ..."
            } else {
                "starting a throwaway PostgreSQL cluster ..."
            });
            let cluster = Cluster::start_with(ClusterOptions {
                tls: plan.tls,
                ..ClusterOptions::default()
            })?;
            if let Some(core) = plan.pin {
                bench::pin_process(cluster.postmaster_pid(), core)?;
            }
            let conninfo = role_conninfo(&cluster, Role::Trust, plan.tls);
            (Some(cluster), conninfo)
        }
    };
    progress.show("connecting ...");
    let tls = if plan.tls {
        Some(bench::require_tls(&main_conninfo).inspect_err(|_| progress.clear())?)
    } else {
        None
    };
    let version = {
        let client = Client::connect(&main_conninfo)?;
        client
            .conn()
            .parameter("server_version")
            .unwrap_or("?")
            .to_owned()
    };

    let mut steps = Vec::new();
    for &scenario in &plan.scenarios {
        let mut push = |label: String, conninfo: &str, method: Option<String>| {
            steps.push(Step {
                label,
                scenario,
                conninfo: conninfo.to_owned(),
                method,
            })
        };
        let secs = plan.duration.as_secs_f64();
        match scenario {
            Scenario::RoundTrips => push(format!("round trips ({secs} s)"), &main_conninfo, None),
            Scenario::Rows => push(format!("rows ({} rows)", plan.rows), &main_conninfo, None),
            Scenario::RowsGet => push(
                format!("rows-get ({} rows)", plan.rows),
                &main_conninfo,
                None,
            ),
            Scenario::ConnectFanout => push(
                format!("connect fan-out ({} connections)", plan.connections),
                &main_conninfo,
                None,
            ),
            Scenario::FanOut => push(
                format!("fan-out ({} connections, {secs} s)", plan.connections),
                &main_conninfo,
                None,
            ),
            Scenario::Connect => {
                let mut methods: Vec<(String, String)> = match &cluster {
                    Some(c) => [
                        ("trust", Role::Trust),
                        ("password", Role::Password),
                        ("md5", Role::Md5),
                        ("scram-sha-256", Role::Scram),
                        ("cert", Role::Cert),
                    ]
                    .into_iter()
                    // A client certificate needs TLS.
                    .filter(|&(_, r)| plan.tls || r != Role::Cert)
                    .map(|(m, r)| (m.to_owned(), role_conninfo(c, r, plan.tls)))
                    .collect(),
                    None => vec![("conninfo".to_owned(), main_conninfo.clone())],
                };
                methods.extend(plan.auth.iter().cloned());
                for (method, conninfo) in methods {
                    push(
                        format!("connect: {method} ({secs} s)"),
                        &conninfo,
                        Some(method),
                    );
                }
            }
            Scenario::Cancel => push(
                format!("cancel ({} times)", plan.cancels),
                &main_conninfo,
                None,
            ),
            Scenario::Pipeline => push(format!("pipeline ({secs} s)"), &main_conninfo, None),
            Scenario::CopyIn => push(
                format!("copy in ({} rows)", plan.rows),
                &main_conninfo,
                None,
            ),
            Scenario::CopyOut => push(
                format!("copy out ({} rows)", plan.rows),
                &main_conninfo,
                None,
            ),
        }
    }

    let mut results = Vec::new();
    let total = steps.len();
    let repeat = plan.repeat.max(1);
    for (i, step) in steps.iter().enumerate() {
        let mut runs = Vec::with_capacity(repeat);
        for run in 0..repeat {
            let of = if repeat > 1 {
                format!(", run {}/{repeat}", run + 1)
            } else {
                String::new()
            };
            progress.show(&format!("[{}/{}] {}{of} ...", i + 1, total, step.label));
            runs.push(run_step(step, plan, cluster.as_ref()).inspect_err(|_| progress.clear())?);
        }
        results.extend(bench::Repeated::of(runs));
    }
    progress.clear();

    let mut server = match &cluster {
        Some(c) => format!(
            "throwaway cluster, PostgreSQL {version} ({}), 127.0.0.1:{} over TCP",
            c.bin_dir().display(),
            c.port()
        ),
        None => format!("--conninfo, PostgreSQL {version}"),
    };
    if let Some(tls) = &tls {
        let _ = write!(
            server,
            ", TLS ({tls}; sslmode={TLS_SSLMODE}, certificates made at start; SCRAM with channel \
             binding)"
        );
    }
    let pinning = pinning_note(plan.pin, cluster.as_ref());
    if plan.json {
        let about = About {
            server: &server,
            server_version: &version,
            pinning: &pinning,
            pin: plan.pin,
            repeat,
        };
        outln!("{}", json(&about, &results));
    } else {
        outln!("server: {server}");
        outln!("pinning: {pinning}");
        outln!();
        out!("{}", table(&results));
    }
    Ok(())
}

/// Runs one step once.
fn run_step(step: &Step, plan: &Plan, cluster: Option<&Cluster>) -> Result<ScenarioResult, Error> {
    let mut r = match step.scenario {
        Scenario::RoundTrips => bench::round_trips(&step.conninfo, plan.duration),
        Scenario::Rows => bench::rows(&step.conninfo, plan.rows),
        Scenario::RowsGet => bench::rows_get(&step.conninfo, plan.rows),
        Scenario::FanOut => bench::fan_out(&step.conninfo, plan.connections, plan.duration),
        Scenario::Connect => bench::connect(&step.conninfo, plan.duration),
        Scenario::Cancel => bench::cancel_latency(&step.conninfo, plan.cancels),
        Scenario::Pipeline => bench::pipeline(&step.conninfo, plan.duration),
        Scenario::CopyIn => bench::copy_in(&step.conninfo, plan.rows),
        Scenario::CopyOut => bench::copy_out(&step.conninfo, plan.rows),
        Scenario::ConnectFanout => match cluster {
            // Through a proxy delaying 5 ms each way, so the figure reflects a network.
            Some(c) => {
                let target = std::net::SocketAddr::from(([127, 0, 0, 1], c.port()));
                let proxy = bench::DelayProxy::start(target, Duration::from_millis(5))
                    .map_err(|e| Error::new(pgdblink::ErrorKind::Io, e.to_string()))?;
                let conninfo = bench::via_port(&step.conninfo, c.port(), proxy.port());
                bench::connect_fanout(&conninfo, plan.connections)
            }
            // A server given with --conninfo is measured as it is reached.
            None => bench::connect_fanout(&step.conninfo, plan.connections),
        },
    }?;
    if let Some(method) = &step.method {
        r.name = format!("connect: {method}");
    }
    Ok(r)
}

/// The connection string of `role` on the throwaway cluster, over TLS with `--tls`.
fn role_conninfo(cluster: &Cluster, role: Role, tls: bool) -> String {
    if tls {
        cluster.conninfo_tls(role, TLS_SSLMODE)
    } else {
        cluster.conninfo(role)
    }
}

fn pinning_note(pin: Option<usize>, cluster: Option<&Cluster>) -> String {
    match (pin, cluster) {
        (Some(core), Some(_)) => format!(
            "client thread and server (postmaster and every backend it forks) pinned to CPU {core} \
             with taskset"
        ),
        (Some(core), None) => format!(
            "client thread pinned to CPU {core} with taskset; the server (not started by pgdblink) \
             is not pinned"
        ),
        (None, _) => {
            let client = bench::current_thread_id()
                .and_then(bench::affinity)
                .unwrap_or_else(|| "?".to_owned());
            let server = cluster
                .and_then(|c| bench::affinity(c.postmaster_pid()))
                .map(|s| format!(", server on CPUs {s}"))
                .unwrap_or_default();
            format!(
                "none (client may run on CPUs {client}{server}); round trips include cross-core \
                 wake-ups, use --pin CORE to measure on one core"
            )
        }
    }
}

fn table(results: &[bench::Repeated]) -> String {
    let t = Table {
        headers: [
            "scenario",
            "operations",
            "seconds",
            "operations/s",
            "client CPU µs/op",
            "server CPU µs/op",
            "notes",
        ]
        .map(String::from)
        .to_vec(),
        align: vec![
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Left,
        ],
        rows: results
            .iter()
            .map(|rep| {
                let r = &rep.median;
                let notes = if rep.ops_per_second.len() > 1 {
                    let (min, max) = rep.min_max();
                    format!(
                        "{}; median of {} runs, {min:.0}..{max:.0} ops/s",
                        r.notes,
                        rep.ops_per_second.len()
                    )
                } else {
                    r.notes.clone()
                };
                vec![
                    r.name.clone(),
                    r.operations.to_string(),
                    format!("{:.3}", r.seconds),
                    format!("{:.0}", r.ops_per_second()),
                    format!("{:.2}", r.client_cpu_us_per_op()),
                    r.server_cpu_us_per_op()
                        .map(|v| format!("{v:.2}"))
                        .unwrap_or_else(|| "-".to_owned()),
                    notes,
                ]
            })
            .collect(),
    };
    t.render()
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_owned()
    }
}

/// What the JSON says about the run besides the figures.
struct About<'a> {
    server: &'a str,
    server_version: &'a str,
    pinning: &'a str,
    pin: Option<usize>,
    repeat: usize,
}

fn json(about: &About<'_>, results: &[bench::Repeated]) -> String {
    let m = bench::machine();
    let list = |v: &[f64]| {
        v.iter()
            .map(|&x| json_number(x))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"server\": {},", json_string(about.server));
    let _ = writeln!(
        out,
        "  \"server_version\": {},",
        json_string(about.server_version)
    );
    let _ = writeln!(
        out,
        "  \"machine\": {{\"cpu_model\": {}, \"cores\": {}, \"cpus_online\": {}, \"kernel\": {}, \
         \"virtual_machine\": {}}},",
        json_string(&m.cpu_model),
        m.cores,
        m.cpus_online,
        json_string(&m.kernel),
        m.virtual_machine
    );
    let _ = writeln!(out, "  \"pinning\": {},", json_string(about.pinning));
    let _ = writeln!(
        out,
        "  \"pinned_cpu\": {},",
        about.pin.map_or("null".to_owned(), |c| c.to_string())
    );
    let _ = writeln!(out, "  \"repeat\": {},", about.repeat);
    out.push_str("  \"results\": [");
    for (i, rep) in results.iter().enumerate() {
        let r = &rep.median;
        let (min, max) = rep.min_max();
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(
            out,
            "    {{\"name\": {}, \"operations\": {}, \"seconds\": {}, \"operations_per_second\": {}, \
             \"client_cpu_seconds\": {}, \"client_cpu_us_per_operation\": {}, \
             \"server_cpu_seconds\": {}, \"server_cpu_us_per_operation\": {}, \"notes\": {}, \
             \"runs_operations_per_second\": [{}], \"runs_client_cpu_us_per_operation\": [{}], \
             \"operations_per_second_min\": {}, \"operations_per_second_max\": {}, \
             \"spread_percent\": {}}}",
            json_string(&r.name),
            r.operations,
            json_number(r.seconds),
            json_number(r.ops_per_second()),
            json_number(r.client_cpu_seconds),
            json_number(r.client_cpu_us_per_op()),
            r.server_cpu_seconds.map_or("null".to_owned(), json_number),
            r.server_cpu_us_per_op()
                .map_or("null".to_owned(), json_number),
            json_string(&r.notes),
            list(&rep.ops_per_second),
            list(&rep.client_cpu_us_per_op),
            json_number(min),
            json_number(max),
            json_number(rep.spread_percent()),
        );
    }
    out.push_str("\n  ]\n}");
    out
}

//! The `pgdblink` command line: `bench`, `run` and `shell`.

mod cli;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use cli::bench::{Plan, Scenario};

/// The NULL marker of `run` and `shell` unless `--null` says otherwise.
const NULL: &str = "∅";

/// A pure-Rust PostgreSQL client with dblink's asynchronous API: benchmark it, fan SQL out to many
/// servers, or try dblink's verbs at a prompt.
#[derive(Parser, Debug)]
#[command(name = "pgdblink", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure round trips, row streaming, fan-out, connection set-up and cancel latency.
    ///
    /// Without --conninfo, a throwaway PostgreSQL cluster is started in $TMPDIR and removed
    /// afterwards, also when pgdblink is interrupted (Ctrl-C) or killed.
    Bench(BenchArgs),
    /// Send SQL to every named connection at once and print each one's results.
    ///
    /// Results are psql-style aligned tables (SQL NULL shown as ∅ unless --null says otherwise),
    /// command tags, notices, and errors with their SQLSTATE, DETAIL and HINT, followed by the time
    /// each connection took from sending the SQL to its last result. Exit status 0 only if every
    /// connection succeeded.
    Run(RunArgs),
    /// An interactive prompt with dblink's verbs (connect, send, busy, result, cancel, errmsg,
    /// notify, conns, disconnect, query, exec).
    ///
    /// With a terminal, it has line editing and history (rustyline). Otherwise it reads one command
    /// a line from standard input, without prompts, so sessions can be scripted. Errors are printed
    /// and the session goes on. SQL NULL is shown as ∅ unless --null says otherwise.
    Shell(ShellArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Scenarios: round-trips, rows, rows-get, fan-out, connect, cancel, pipeline, copy-in, copy-out."
)]
struct BenchArgs {
    /// Measure an existing server (a libpq connection string or URI) instead of a throwaway cluster.
    #[arg(long, value_name = "CONNINFO")]
    conninfo: Option<String>,
    /// Also measure connection set-up with this connection string, labelled LABEL (repeatable);
    /// with --conninfo, for the authentication methods of an existing server.
    #[arg(long = "auth", value_name = "LABEL=CONNINFO", value_parser = named)]
    auth: Vec<(String, String)>,
    /// The scenarios to run, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    scenarios: Vec<Scenario>,
    /// How long each timed scenario (round trips, fan-out, each connect method) runs.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    duration: Duration,
    /// Rows streamed by the rows, copy-in and copy-out scenarios.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    rows: u64,
    /// Connections of the fan-out scenario.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// Queries cancelled by the cancel scenario.
    #[arg(long, value_name = "N", default_value_t = 20)]
    cancels: u64,
    /// Pin the client thread, and the throwaway cluster's server processes, to CPU CORE (taskset).
    #[arg(long, value_name = "CORE")]
    pin: Option<usize>,
    /// Run each scenario N times; the median run is reported, with the spread of the runs.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Run every scenario over TLS: the throwaway cluster gets certificates made at start, and every
    /// connection uses sslmode=verify-full with the generated CA (SCRAM with channel binding).
    #[arg(long, conflicts_with = "conninfo")]
    tls: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// A connection: its name and a libpq connection string or URI (repeatable, at least one).
    #[arg(long = "conn", value_name = "NAME=CONNINFO", required = true, value_parser = named)]
    conns: Vec<(String, String)>,
    /// The text shown for SQL NULL.
    #[arg(long, value_name = "TEXT", default_value = NULL)]
    null: String,
    /// The SQL to send (one or more statements, as a simple query).
    #[arg(value_name = "SQL")]
    sql: String,
}

#[derive(Args, Debug)]
struct ShellArgs {
    /// The text shown for SQL NULL.
    #[arg(long, value_name = "TEXT", default_value = NULL)]
    null: String,
    /// Echo each command read from a non-terminal input, after a `pgdblink> ` prompt.
    #[arg(long)]
    echo: bool,
}

/// Parses `NAME=CONNINFO` (the first `=` separates them).
fn named(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, conninfo)) if !name.is_empty() && !conninfo.trim().is_empty() => {
            Ok((name.to_owned(), conninfo.to_owned()))
        }
        _ => Err(format!(
            "expected NAME=CONNINFO, e.g. a='host=localhost dbname=postgres', got \"{s}\""
        )),
    }
}

/// Parses a positive number of seconds.
fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("expected a number of seconds, got \"{s}\""))?;
    if v.is_finite() && v > 0.0 && v < 1e6 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "expected a positive number of seconds, got \"{s}\""
        ))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Bench(a) => {
            if let Some((label, _)) = a
                .auth
                .iter()
                .enumerate()
                .find(|(i, (l, _))| a.auth[..*i].iter().any(|(m, _)| m == l))
                .map(|(_, p)| p)
            {
                return usage_error(&format!("--auth label \"{label}\" given twice"));
            }
            let plan = Plan {
                conninfo: a.conninfo,
                auth: a.auth,
                scenarios: if a.scenarios.is_empty() {
                    Scenario::ALL.to_vec()
                } else {
                    a.scenarios
                },
                duration: a.duration,
                rows: a.rows,
                connections: a.connections as usize,
                cancels: a.cancels,
                pin: a.pin,
                repeat: a.repeat as usize,
                json: a.json,
                tls: a.tls,
            };
            cli::bench::bench(&plan).map(|()| true)
        }
        Command::Run(a) => {
            for (i, (name, _)) in a.conns.iter().enumerate() {
                if a.conns[..i].iter().any(|(n, _)| n == name) {
                    return usage_error(&format!("connection name \"{name}\" given twice"));
                }
            }
            cli::run::run(&a.conns, &a.sql, &a.null)
        }
        Command::Shell(a) => cli::shell::shell(&a.null, a.echo).map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("pgdblink: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error for the terminal: libpq's text (one line, or its own continuation lines).
fn one_line(e: &pgdblink::Error) -> String {
    let text = if e.severity().is_some() {
        e.libpq_text()
    } else {
        e.to_string()
    };
    text.trim_end().to_owned()
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\nFor more information, try '--help'.");
    ExitCode::from(2)
}

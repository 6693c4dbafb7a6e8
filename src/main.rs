//! The `pgdblink` command line: `bench`, `run` and `shell`.

mod cli;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use cli::bench::{Plan, Scenario};

/// The NULL marker of `run` and `shell` unless `--null` says otherwise: nothing, as psql.
const NULL: &str = "";

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
    /// On stdout: a status line per connection (`[NAME] ok in T ms`) and its results as psql-style
    /// aligned tables (SQL NULL shown as nothing unless --null says otherwise; a value that would
    /// read as the NULL marker is shown in double quotes) and command tags. On stderr: errors with
    /// their SQLSTATE, DETAIL and HINT, notices and warnings, each first line prefixed `[NAME] `.
    /// Rows are printed as they arrive, 1000 at a time, each chunk aligned on its own (as psql's
    /// FETCH_COUNT). Ctrl-C cancels the statements in flight (a second Ctrl-C ends pgdblink at
    /// once). Exit status 0 only if every connection succeeded and no Ctrl-C came.
    Run(RunArgs),
    /// An interactive prompt with dblink's verbs (connect, send, busy, result, cancel, errmsg,
    /// notify, conns, disconnect, query, exec, open, fetch, close, wait) and libpq's parameters and
    /// pipelines (bind, prepare, execute, pipeline).
    ///
    /// A command that takes SQL goes on over several lines until one ends with `;` (outside quotes,
    /// dollar quotes and comments), as in psql. With a terminal, it has line editing and history
    /// (rustyline); Ctrl-C at the prompt clears the line, while a command waits it cancels the
    /// statements in flight. Otherwise it reads commands from standard input without prompts, so
    /// sessions can be scripted: errors go to stderr and the session goes on (stops with
    /// --on-error-stop), and the exit status is 1 if any command failed. SQL NULL is shown as
    /// nothing unless --null or `\pset null TEXT` says otherwise.
    Shell(ShellArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Scenarios: round-trips, rows, rows-get, fan-out, connect, cancel, pipeline, copy-in, copy-out, connect-fanout."
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
    /// A connection: its name and a libpq connection string or URI (repeatable, at least one); an
    /// empty string (`a=`) takes everything from the PG* environment and libpq's defaults.
    #[arg(long = "conn", value_name = "NAME=CONNINFO", required = true, value_parser = named_conn)]
    conns: Vec<(String, String)>,
    /// The text shown for SQL NULL [default: nothing].
    #[arg(long, value_name = "TEXT", default_value = NULL, hide_default_value = true)]
    null: String,
    /// The SQL to send (one or more statements, as a simple query). It may begin with `-` or `--`
    /// (a comment): everything from the first argument that is not an option is SQL.
    #[arg(value_name = "SQL", allow_hyphen_values = true)]
    sql: String,
}

#[derive(Args, Debug)]
struct ShellArgs {
    /// The text shown for SQL NULL [default: nothing].
    #[arg(long, value_name = "TEXT", default_value = NULL, hide_default_value = true)]
    null: String,
    /// Stop at the first failed command (as psql's ON_ERROR_STOP), with exit status 3. Without it
    /// a script goes on after a failure and exits with status 1 at its end.
    #[arg(long)]
    on_error_stop: bool,
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

/// Parses `NAME=CONNINFO` where CONNINFO may be empty (libpq's defaults and the environment).
fn named_conn(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, conninfo)) if !name.is_empty() => Ok((name.to_owned(), conninfo.to_owned())),
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
            cli::bench::bench(&plan).map(|()| 0)
        }
        Command::Run(a) => {
            for (i, (name, _)) in a.conns.iter().enumerate() {
                if a.conns[..i].iter().any(|(n, _)| n == name) {
                    return usage_error(&format!("connection name \"{name}\" given twice"));
                }
            }
            cli::interrupt::Interrupt::install()
                .and_then(|interrupt| cli::run::run(&a.conns, &a.sql, &a.null, &interrupt))
                .map(|ok| if ok { 0 } else { 1 })
        }
        Command::Shell(a) => cli::interrupt::Interrupt::install().and_then(|interrupt| {
            let options = cli::shell::Options {
                null: a.null,
                echo: a.echo,
                on_error_stop: a.on_error_stop,
            };
            cli::shell::shell(options, &interrupt)
        }),
    };
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(status),
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

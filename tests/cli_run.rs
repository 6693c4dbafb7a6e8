//! `pgdblink run` and `shell` as a user drives them: Ctrl-C (SIGINT to the child, checked on the
//! server in pg_stat_activity), streamed output of a large result in bounded memory, the output
//! format (NULL, multi-line and wide values, `SELECT;`), SQL beginning with a comment, an empty
//! connection string, and stdout/stderr kept apart.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pgdblink::cluster::{Cluster, Role};
use pgdblink::driver::Client;

fn pgdblink() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgdblink"));
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null());
    cmd
}

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

/// Runs `pgdblink args`; its exit code, stdout and stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = pgdblink().args(args).output().expect("run pgdblink");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "pgdblink panicked:\n{stderr}");
    (output.status.code(), stdout, stderr)
}

/// Waits on the server (a loop inside one statement, at most 10 s) until exactly `expected`
/// backends with this application_name run a statement.
fn wait_active(app: &str, expected: u32) {
    let mut client = Client::connect(&cluster().conninfo(Role::Super)).expect("connect");
    let sql = format!(
        "DO $wait$ DECLARE started timestamptz := clock_timestamp(); BEGIN \
           LOOP \
             PERFORM pg_stat_clear_snapshot(); \
             EXIT WHEN (SELECT count(*) FROM pg_stat_activity \
                        WHERE application_name = '{app}' AND state = 'active') = {expected}; \
             IF clock_timestamp() - started > interval '10 s' THEN \
               RAISE EXCEPTION '{app}: {expected} active backends not seen within 10 s'; \
             END IF; \
             PERFORM pg_sleep(0.005); \
           END LOOP; \
         END $wait$"
    );
    client.query(&sql).expect("wait on pg_stat_activity");
}

fn sigint(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn output_of(mut child: Child) -> (Option<i32>, String, String) {
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().expect("wait");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (status.code(), stdout, stderr)
}

#[test]
fn run_sigint_cancels_every_statement_and_exits_1() {
    let app = "cli_run_sigint";
    let conninfo = format!("{} application_name={app}", cluster().conninfo(Role::Trust));
    let child = pgdblink()
        .args([
            "run",
            "--conn",
            &format!("a={conninfo}"),
            "--conn",
            &format!("b={conninfo}"),
        ])
        .arg("SELECT pg_sleep(30)")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_active(app, 2);
    let sent = Instant::now();
    sigint(&child);
    let (code, stdout, stderr) = output_of(child);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(sent.elapsed() < Duration::from_secs(20), "not cancelled");
    for name in ["a", "b"] {
        assert!(
            stderr.contains(&format!(
                "[{name}] ERROR:  canceling statement due to user request\nSQLSTATE: 57014\n"
            )),
            "{stderr}"
        );
        assert!(stdout.contains(&format!("[{name}] failed in ")), "{stdout}");
    }
    assert!(stderr.contains("Cancel request sent\n"), "{stderr}");
    wait_active(app, 0);
}

/// `shell` reading a script from a pipe: SIGINT while `query` waits cancels the statement, reports
/// 57014 and stops the script with status 1. (A terminal's Ctrl-C at the prompt is rustyline's
/// `Interrupted`, which clears the line; this drives the piped shell, where SIGINT is what arrives.)
#[test]
fn shell_piped_sigint_cancels_the_running_statement() {
    let app = "cli_shell_sigint";
    let conninfo = format!("{} application_name={app}", cluster().conninfo(Role::Trust));
    let mut child = pgdblink()
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    // The pipe stays open: the shell is waiting for the statement, not at the end of its input.
    writeln!(
        stdin,
        "connect a {conninfo}\nquery a SELECT pg_sleep(30);\nconns"
    )
    .unwrap();
    stdin.flush().unwrap();
    wait_active(app, 1);
    sigint(&child);
    let (code, stdout, stderr) = output_of(child);
    drop(stdin);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("ERROR:  canceling statement due to user request\nSQLSTATE: 57014\n"),
        "{stderr}"
    );
    // The script stopped: `conns` did not run.
    assert_eq!(stdout, "OK\n");
    wait_active(app, 0);
}

/// 2,000,000 rows stream through `run` chunk by chunk: its peak resident memory stays small.
#[test]
fn run_streams_a_large_result_in_bounded_memory() {
    let a = format!("a={}", cluster().conninfo(Role::Trust));
    let mut child = pgdblink()
        .args(["run", "--conn", &a])
        .arg("SELECT g, repeat('x', 20) FROM generate_series(1, 2000000) g")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let mut lines = 0u64;
    let mut last = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        lines += 1;
        if lines.is_multiple_of(50_000) {
            peak_kb = peak_kb.max(vm_hwm_kb(&status_file));
        }
        if line.starts_with('(') {
            last.clone_from(&line);
        }
        line.clear();
    }
    peak_kb = peak_kb.max(vm_hwm_kb(&status_file));
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(last, "(2000000 rows)\n");
    // "[a]", header, rule, 2,000,000 rows, footer, blank, status line, blank.
    assert_eq!(lines, 2_000_007);
    assert!(peak_kb > 0, "VmHWM never read");
    assert!(peak_kb < 40 * 1024, "peak RSS {peak_kb} kB");
}

/// VmHWM (peak resident set) of a running process, in kB; 0 once it is gone.
fn vm_hwm_kb(status_file: &str) -> u64 {
    std::fs::read_to_string(status_file)
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

#[test]
fn run_shows_values_as_psql_and_null_apart() {
    let a = format!("a={}", cluster().conninfo(Role::Trust));
    let (code, stdout, stderr) = run(&[
        "run",
        "--conn",
        &a,
        "-- SQL that begins with a comment\n\
         SELECT NULL AS n, '' AS e, E'one\\ntwo' AS ml, '日本語' AS cjk, 1 AS i;\nSELECT;",
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(stderr, "");
    let expected = " n | e  | ml  |  cjk   | i\n\
                    ---+----+-----+--------+---\n   \
                    | \"\" | one+| 日本語 | 1\n   \
                    |    | two |        |\n\
                    (1 row)\n\
                    \n\
                    --\n\
                    (1 row)\n\
                    \n";
    assert!(stdout.starts_with("[a] ok in "), "{stdout}");
    assert_eq!(stdout.split_once('\n').unwrap().1, expected, "{stdout}");
    // A chosen marker: a value that reads as it is quoted.
    let (_, stdout, _) = run(&[
        "run",
        "--null",
        "NULL",
        "--conn",
        &a,
        "SELECT NULL AS n, 'NULL' AS s",
    ]);
    assert!(stdout.contains(" NULL | \"NULL\"\n"), "{stdout}");
}

#[test]
fn run_errors_and_notices_go_to_stderr() {
    let a = format!("a={}", cluster().conninfo(Role::Trust));
    let (code, stdout, stderr) = run(&[
        "run",
        "--conn",
        &a,
        "DO $$BEGIN RAISE NOTICE 'hello'; END$$; SELECT 1 AS one; SELECT 1/0",
    ]);
    assert_eq!(code, Some(1));
    assert!(stdout.starts_with("[a] failed in "), "{stdout}");
    assert!(
        stdout.contains("DO\n one\n-----\n   1\n(1 row)\n"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("ERROR") && !stdout.contains("NOTICE"),
        "{stdout}"
    );
    assert!(stderr.starts_with("[a] NOTICE:  hello\n"), "{stderr}");
    assert!(
        stderr.ends_with("[a] ERROR:  division by zero\nSQLSTATE: 22012\n"),
        "{stderr}"
    );
}

/// `--conn a=`: everything from the PG* environment, as libpq.
#[test]
fn run_empty_conninfo_takes_the_environment() {
    let c = cluster();
    let output = pgdblink()
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", c.port().to_string())
        .env("PGUSER", Role::Trust.user())
        .env("PGDATABASE", c.database())
        .args(["run", "--conn", "a=", "SELECT current_user AS u"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(" trust_user\n(1 row)"), "{stdout}");
}

/// The SQLSTATE line follows the whole message, also one of several lines.
#[test]
fn run_connection_failure_sqlstate_after_the_message() {
    let (code, stdout, stderr) = run(&["run", "--conn", "down=host=127.0.0.1 port=1", "SELECT 1"]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "[down] could not connect\n\n");
    assert!(
        stderr.contains(
            "[down] ERROR:  could not establish connection\nSQLSTATE: 08001\nDETAIL:  connection \
             to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
        ),
        "{stderr}"
    );
}

/// A script's statements over several lines, the cursor, parameter and pipeline verbs, `\pset null`,
/// and the exit status: 1 after a failed command, 3 when --on-error-stop stops at it.
#[test]
fn shell_script_multiline_cursors_params_pipeline() {
    let conninfo = cluster().conninfo(Role::Trust);
    let script = format!(
        "connect a {conninfo}\n\
         send a SELECT 1 AS one,\n  'x;y' AS t; -- ends here\n\
         result a\nresult a\n\
         bind 41 NULL 'NULL'\n\
         query a SELECT $1::int + 1 AS v, $2::text IS NULL AS n2, $3::text AS t3;\n\
         \\pset null (null)\n\
         query a SELECT NULL AS n, '(null)' AS s;\n\
         open a cur SELECT g FROM generate_series(1, 5) g;\n\
         fetch a cur 3\nclose a cur\n\
         pipeline a on\nbind 7\nsend a SELECT $1::int AS seven;\nsend a SELECT 1/0;\n\
         pipeline a sync\nresult a\nresult a\nresult a\nresult a\nresult a\npipeline a off\n\
         send a SELECT $$;$$ AS d;\nwait 10\nresult a\nresult a\n\
         query a SELECT 1/0;\n\
         conns\n"
    );
    let shell = |extra: &[&str]| {
        let mut child = pgdblink()
            .arg("shell")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        output_of(child)
    };
    let (code, stdout, stderr) = shell(&[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let expected = "OK\n1\n one |  t\n-----+-----\n   1 | x;y\n(1 row)\n\n(end of results)\n\
                    3 parameters\n \
                    v  | n2 |  t3\n----+----+------\n 42 | t  | NULL\n(1 row)\n\n\
                    Null display is \"(null)\".\n   \
                    n    |    s\n--------+----------\n (null) | \"(null)\"\n(1 row)\n\n\
                    OK\n g\n---\n 1\n 2\n 3\n(3 rows)\n\nOK\n\
                    on\n1 parameter\n1\n1\non\n \
                    seven\n-------\n     7\n(1 row)\n\n(end of results)\n(end of results)\n\
                    (pipeline sync)\noff\n\
                    1\na\n d\n---\n ;\n(1 row)\n\n(end of results)\n\
                    a\n";
    assert_eq!(stdout, expected);
    assert_eq!(
        stderr,
        "ERROR:  division by zero\nSQLSTATE: 22012\nERROR:  division by zero\nSQLSTATE: 22012\n"
    );
    let (code, stdout, _) = shell(&["--on-error-stop"]);
    assert_eq!(code, Some(3));
    assert!(
        stdout.ends_with(
            "on\n1 parameter\n1\n1\non\n \
                              seven\n-------\n     7\n(1 row)\n\n(end of results)\n"
        ),
        "{stdout}"
    );
}

/// Issue 17: with one silent host (a listener that accepts the TCP connection and never answers) and
/// one healthy server, `run` prints the healthy connection's result while the other is still
/// connecting; SIGINT then abandons the attempt and `run` exits 1.
#[test]
fn run_silent_host_never_hides_the_others() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().unwrap().port();
    let a = format!("a={}", cluster().conninfo(Role::Trust));
    let b = format!("b=host=127.0.0.1 port={silent_port} user=x dbname=x sslmode=disable");
    let mut child = pgdblink()
        .args(["run", "--conn", &b, "--conn", &a])
        .arg("SELECT 41 + 1 AS answer")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    // The healthy connection's whole block arrives while the silent one still connects (it has no
    // connect_timeout, so it would wait forever).
    while !seen.contains("(1 row)") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "run ended early: {seen}"
        );
        seen.push_str(&line);
    }
    assert!(seen.contains("[a] ok in "), "{seen}");
    assert!(seen.contains("42"), "{seen}");
    assert!(!seen.contains("[b]"), "{seen}");
    assert!(child.try_wait().unwrap().is_none(), "run ended: {seen}");
    sigint(&child);
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest}\n{stderr}");
    assert!(rest.contains("[b] could not connect"), "{rest}");
    assert!(
        stderr.contains("[b] connection attempt abandoned (Ctrl-C)"),
        "{stderr}"
    );
    drop(silent);
}

/// A host that refuses and one that works: both outcomes printed, the failure with libpq's text on
/// stderr, exit status 1.
#[test]
fn run_reports_each_connect_outcome() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let a = format!("a={}", cluster().conninfo(Role::Trust));
    let b = format!("b=host=127.0.0.1 port={closed_port} user=x dbname=x sslmode=disable");
    let (code, stdout, stderr) = run(&["run", "--conn", &a, "--conn", &b, "SELECT 1 AS one"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("[a] ok in "), "{stdout}");
    assert!(stdout.contains("[b] could not connect"), "{stdout}");
    assert!(
        stderr.contains("[b] ERROR:  could not establish connection\nSQLSTATE: 08001\n")
            && stderr.contains(&format!(
                "DETAIL:  connection to server at \"127.0.0.1\", port {closed_port} failed: \
                 Connection refused"
            )),
        "{stderr}"
    );
}

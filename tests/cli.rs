//! The `pgdblink` binary run as a user runs it: `bench` on its own throwaway cluster (also interrupted
//! with SIGINT), `run` against two connections, `shell` driven through its standard input, and the
//! error paths (bad arguments, unreachable servers).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgdblink::cluster::{Cluster, Role};

fn pgdblink() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgdblink"));
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let output = cmd.output().expect("run pgdblink");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "pgdblink panicked:\n{stderr}");
    (output, stdout, stderr)
}

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

/// A fresh, empty directory to use as the child's `$TMPDIR` (short, so that the cluster's socket path
/// fits, and world-traversable, so that a server run as another user reaches it).
fn temp_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = PathBuf::from(format!("/tmp/pgdlcli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `pgdblink bench args` with its throwaway cluster under `tmp`; it must succeed. Returns
/// its stdout and stderr.
fn run_bench(tmp: &Path, args: &[&str]) -> (String, String) {
    let (output, stdout, stderr) = run(pgdblink().env("TMPDIR", tmp).arg("bench").args(args));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The bench table on `stdout` has the row `row` with a positive operation count.
fn assert_row_has_operations(stdout: &str, row: &str) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!(" {row} ")))
        .unwrap_or_else(|| panic!("no row {row:?} in\n{stdout}"));
    let ops: u64 = line.split('|').nth(1).unwrap().trim().parse().unwrap();
    assert!(ops > 0, "{line}");
}

/// The throwaway cluster under `tmp` is gone (waiting up to 30 s), then `tmp` itself is removed.
fn assert_cluster_removed(tmp: &Path) {
    assert_eq!(wait_empty(tmp), Vec::<String>::new(), "cluster left behind");
    let _ = std::fs::remove_dir(tmp);
}

/// Waits (up to 30 s) until `dir` is empty.
fn wait_empty(dir: &Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = entries(dir);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bench_default_cluster_short_run_prints_table_and_removes_cluster() {
    let tmp = temp_dir("bench");
    let (stdout, stderr) = run_bench(
        &tmp,
        &[
            "--duration",
            "0.2",
            "--rows",
            "2000",
            "--connections",
            "3",
            "--cancels",
            "2",
        ],
    );
    assert!(
        stdout.contains("server: throwaway cluster, PostgreSQL"),
        "{stdout}"
    );
    assert!(stdout.contains("pinning: none"), "{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.contains("scenario"))
        .expect("table header");
    for column in [
        "operations",
        "seconds",
        "operations/s",
        "client CPU µs/op",
        "server CPU µs/op",
    ] {
        assert!(header.contains(column), "{header}");
    }
    for row in [
        "round trips",
        "rows",
        "fan-out (3 connections)",
        "connect: trust",
        "connect: password",
        "connect: md5",
        "connect: scram-sha-256",
        "cancel",
        "pipeline",
        "copy in",
        "copy out",
        "connect fan-out (3 connections)",
    ] {
        assert_row_has_operations(&stdout, row);
    }
    assert!(stdout.contains(" 2000 "), "rows counted: {stdout}");
    assert!(stderr.contains("[8/12] cancel"), "progress: {stderr}");
    assert!(stderr.contains("[11/12] copy out"), "progress: {stderr}");
    assert!(
        stderr.contains("[12/12] connect fan-out"),
        "progress: {stderr}"
    );
    assert_cluster_removed(&tmp);
}

#[test]
fn bench_tls_runs_the_scenarios_over_tls() {
    let tmp = temp_dir("benchtls");
    let (stdout, _) = run_bench(
        &tmp,
        &[
            "--tls",
            "--scenarios",
            "round-trips,rows,connect",
            "--duration",
            "0.2",
            "--rows",
            "2000",
        ],
    );
    // The figures are TLS ones: the server's pg_stat_ssl said so, with the protocol it reported.
    assert!(stdout.contains(", TLS (TLSv1."), "{stdout}");
    assert!(stdout.contains("sslmode=verify-full"), "{stdout}");
    for row in [
        "round trips",
        "rows",
        "connect: trust",
        "connect: scram-sha-256",
        "connect: cert",
    ] {
        assert_row_has_operations(&stdout, row);
    }
    assert_cluster_removed(&tmp);
}

#[test]
fn bench_json_with_pinning() {
    let tmp = temp_dir("json");
    let (stdout, _) = run_bench(
        &tmp,
        &[
            "--scenarios",
            "round-trips,rows",
            "--duration",
            "0.2",
            "--rows",
            "100",
            "--pin",
            "0",
            "--json",
        ],
    );
    let json = stdout.trim();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    assert!(json.contains("\"pinned_cpu\": 0"), "{json}");
    assert!(json.contains("pinned to CPU 0"), "{json}");
    assert!(json.contains("\"name\": \"round trips\""), "{json}");
    assert!(
        json.contains("\"name\": \"rows\", \"operations\": 100,"),
        "{json}"
    );
    assert!(!json.contains("fan-out"), "{json}");
    assert_cluster_removed(&tmp);
}

/// Ctrl-C: SIGINT ends pgdblink at once (no handler), its cluster's guardian sees the pipe close and
/// stops the server and removes the directory.
#[test]
fn bench_interrupted_removes_cluster() {
    let tmp = temp_dir("sigint");
    let mut child = pgdblink()
        .env("TMPDIR", &tmp)
        .args(["bench", "--duration", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .expect("progress before the end")
            .expect("stderr");
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("[1/") {
            break;
        }
    }
    // The cluster exists while the first scenario runs.
    let cluster_dirs = entries(&tmp);
    assert_eq!(cluster_dirs.len(), 1, "{cluster_dirs:?}\n{seen}");
    let postmaster_pid =
        std::fs::read_to_string(tmp.join(&cluster_dirs[0]).join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok());
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(!exit.success(), "{exit:?}");
    assert_eq!(
        wait_empty(&tmp),
        Vec::<String>::new(),
        "cluster left behind"
    );
    if let Some(pid) = postmaster_pid {
        let gone = !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.rsplit(") ").next().unwrap_or("").starts_with('Z'))
                .unwrap_or(true)
            || !std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .starts_with(b"/usr/lib/postgresql");
        assert!(gone, "postmaster {pid} still running");
    }
    let _ = std::fs::remove_dir(&tmp);
}

#[test]
fn bench_unreachable_server_fails_with_libpq_text() {
    let (output, stdout, stderr) = run(pgdblink().args([
        "bench",
        "--conninfo",
        "host=127.0.0.1 port=1 user=x dbname=x",
    ]));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "pgdblink: connection to server at \"127.0.0.1\", port 1 failed: Connection refused"
        ),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for args in [
        &["frobnicate"][..],
        &["bench", "--duration", "-1"],
        &["bench", "--scenarios", "round-trips,nope"],
        &["bench", "--connections", "0"],
        &["run", "SELECT 1"],
        &["run", "--conn", "noequals", "SELECT 1"],
        &[
            "run", "--conn", "a=host=x", "--conn", "a=host=y", "SELECT 1",
        ],
        &["shell", "--bogus"],
    ] {
        let (output, stdout, stderr) = run(pgdblink().args(args));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {stdout}\n{stderr}"
        );
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

#[test]
fn help_for_every_subcommand() {
    for sub in ["bench", "run", "shell"] {
        let (output, stdout, _) = run(pgdblink().args([sub, "--help"]));
        assert!(output.status.success());
        assert!(
            stdout.contains(&format!("Usage: pgdblink {sub}")),
            "{stdout}"
        );
    }
    let (_, stdout, _) = run(pgdblink().args(["run", "--help"]));
    assert!(stdout.contains("SQL NULL shown as nothing"), "{stdout}");
}

#[test]
fn run_two_connections_prints_tables() {
    let a = format!("a={}", cluster().conninfo(Role::Trust));
    let b = format!("b={}", cluster().conninfo(Role::Scram));
    let (output, stdout, stderr) = run(pgdblink().args([
        "run",
        "--conn",
        &a,
        "--conn",
        &b,
        "SELECT 42 AS answer, NULL AS nothing, current_user AS who; \
         DO $$BEGIN RAISE NOTICE 'hello'; END$$; SELECT 'x' AS t WHERE false",
    ]));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // Each connection's block as it completed: its status line, then its results.
    for (name, who) in [("a", "trust_user"), ("b", "scram_user")] {
        let start = stdout
            .find(&format!("[{name}] ok in "))
            .unwrap_or_else(|| panic!("no [{name}] in {stdout}"));
        let block = &stdout[start..];
        let block = block.split_once('\n').unwrap().1;
        let expected = format!(
            " answer | nothing |    who\n\
             --------+---------+------------\n     \
             42 |         | {who}\n\
             (1 row)\n\
             \n\
             DO\n \
             t\n\
             ---\n\
             (0 rows)\n\
             \n"
        );
        assert!(block.starts_with(&expected), "{block}\nwanted\n{expected}");
        assert!(
            stderr.contains(&format!("[{name}] NOTICE:  hello\n")),
            "{stderr}"
        );
    }
}

#[test]
fn run_errors_show_sqlstate_detail_hint_and_exit_1() {
    let a = format!("a={}", cluster().conninfo(Role::Trust));
    let b = format!("b={}", cluster().conninfo(Role::Md5));
    let (output, stdout, stderr) = run(pgdblink().args([
        "run",
        "--null",
        "[NULL]",
        "--conn",
        &a,
        "--conn",
        &b,
        "SELECT NULL AS n; DO $$BEGIN IF current_user = 'md5_user' THEN \
         RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', HINT = 'the hint', \
         ERRCODE = 'P0099'; END IF; END$$",
    ]));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("[a] ok in "), "{stdout}");
    assert!(stdout.contains(" [NULL]\n(1 row)"), "{stdout}");
    assert!(stdout.contains("[b] failed in "), "{stdout}");
    assert!(
        stderr
            .contains("[b] ERROR:  boom\nSQLSTATE: P0099\nDETAIL:  the detail\nHINT:  the hint\n"),
        "{stderr}"
    );
}

#[test]
fn run_unreachable_connection_fails_others_still_run() {
    let a = format!("a={}", cluster().conninfo(Role::Trust));
    let (output, stdout, stderr) = run(pgdblink().args([
        "run",
        "--conn",
        "down=host=127.0.0.1 port=1 user=x dbname=x",
        "--conn",
        &a,
        "SELECT 1 AS one",
    ]));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("[down] could not connect\n"), "{stdout}");
    assert!(
        stderr.contains(
            "[down] ERROR:  could not establish connection\nSQLSTATE: 08001\n\
             DETAIL:  connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
        ),
        "{stderr}"
    );
    assert!(stdout.contains("[a] ok in "), "{stdout}");
    assert!(stdout.contains(" one\n-----\n   1\n(1 row)\n"), "{stdout}");
}

#[test]
fn shell_scripted_session() {
    let conninfo = cluster().conninfo(Role::Scram);
    let script = format!(
        "-- a scripted session\n\
         connect a {conninfo}\n\
         send a SELECT 42 AS answer, NULL AS nothing;\n\
         busy a\n\
         result a\n\
         result a\n\
         errmsg a\n\
         send a SELECT pg_sleep(60);\n\
         busy a\n\
         query '{conninfo}' SELECT pg_sleep(0.3) AS slept;\n\
         cancel a\n\
         result a\n\
         result a\n\
         errmsg a\n\
         connect a {conninfo}\n\
         query a SELECT 1/0;\n\
         exec a SET work_mem = '8MB';\n\
         frobnicate\n\
         result nosuch\n\
         conns\n\
         disconnect a\n\
         conns\n\
         quit\n\
         conns\n"
    );
    let mut child = pgdblink()
        .arg("shell")
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
    let started = Instant::now();
    let output = child.wait_with_output().expect("shell");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Some commands failed: status 1 at the end of the script.
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the cancel did not work"
    );
    assert!(!stdout.contains('\x1b'), "escape codes in {stdout:?}");
    // `busy` right after `send` of SELECT 42 may say 0 or 1; everything else is fixed.
    let busy_first = stdout.lines().nth(2).unwrap_or("");
    assert!(busy_first == "0" || busy_first == "1", "{stdout}");
    let expected = format!(
        "OK\n\
         1\n\
         {busy_first}\n \
         answer | nothing\n\
         --------+---------\n     \
         42 |\n\
         (1 row)\n\
         \n\
         (end of results)\n\
         OK\n\
         1\n\
         1\n \
         slept\n\
         -------\n \
         \"\"\n\
         (1 row)\n\
         \n\
         OK\n\
         (end of results)\n\
         ERROR:  canceling statement due to user request\n\
         SET\n\
         a\n\
         OK\n\
         (none)\n"
    );
    assert_eq!(stdout, expected);
    assert_eq!(
        stderr,
        "ERROR:  canceling statement due to user request\n\
         SQLSTATE: 57014\n\
         ERROR:  duplicate connection name\n\
         SQLSTATE: 42710\n\
         ERROR:  division by zero\n\
         SQLSTATE: 22012\n\
         unknown command \"frobnicate\"; `help` lists the commands\n\
         ERROR:  connection \"nosuch\" not available\n\
         SQLSTATE: 08003\n"
    );
}

/// `shell`'s `connect` over TLS says so as psql does.
#[test]
fn shell_connect_over_tls_names_the_protocol() {
    let cluster = Cluster::shared_tls().expect("TLS cluster");
    let conninfo = cluster.conninfo_tls(Role::Trust, "verify-full");
    let mut child = pgdblink()
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("connect t {conninfo}\nquit\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("shell");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("SSL connection"))
        .unwrap_or_else(|| panic!("no SSL line in {stdout:?}"));
    assert!(
        line.starts_with("SSL connection (protocol: TLSv1.")
            && line.ends_with(", compression: off)"),
        "{line}"
    );
}

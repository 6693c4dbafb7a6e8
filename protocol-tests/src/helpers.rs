//! Helpers shared by the test files: the `keeper` connection of the fault tests, the process's
//! peak resident set for the memory tests, and the memory and time bounds every fault scenario
//! asserts (bytes a connection holds, a child process's peaks, a deadline).

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use pgdblink::Dblink;
use pgdblink::cluster::{Cluster, Role};
use pgdblink::conn::Connection;

/// A Dblink with a connection named `keeper` to the real cluster (in the child process of
/// [`in_child`], to its parent's cluster).
pub fn dblink_with_keeper() -> Dblink {
    let conninfo = match std::env::var(KEEPER_ENV) {
        Ok(conninfo) => conninfo,
        Err(_) => Cluster::shared()
            .expect("throwaway cluster")
            .conninfo(Role::Trust),
    };
    let mut db = Dblink::new();
    db.connect("keeper", &conninfo).expect("keeper connects");
    db
}

/// The keeper still answers `SELECT 1`.
pub fn assert_keeper_works(db: &mut Dblink) {
    let r = db
        .query("keeper", "SELECT 1")
        .expect("keeper still answers");
    assert_eq!(r.rows().and_then(|r| r.get(0, 0)), Some("1"));
}

/// The peak resident set of this process, in KiB (`VmHWM` in /proc/self/status).
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The SQL that waits, on the server, until `count(*)` of the `pg_stat_activity` rows of backend
/// `pid` where `condition` holds equals `expected`: it re-reads the statistics snapshot in a loop
/// and fails after 10 s. The test waits for the state it needs, not for a fixed time; run it through
/// any second connection (`Client::query`, `Dblink::exec`).
pub fn wait_for_backend_sql(pid: u32, condition: &str, expected: u32) -> String {
    format!(
        "DO $wait$ DECLARE started timestamptz := clock_timestamp(); BEGIN \
           LOOP \
             PERFORM pg_stat_clear_snapshot(); \
             EXIT WHEN (SELECT count(*) FROM pg_stat_activity \
                        WHERE pid = {pid} AND {condition}) = {expected}; \
             IF clock_timestamp() - started > interval '10 s' THEN \
               RAISE EXCEPTION 'backend {pid}: condition not seen within 10 s'; \
             END IF; \
             PERFORM pg_sleep(0.005); \
           END LOOP; \
         END $wait$"
    )
}

/// [`wait_for_backend_sql`] for a backend inside `pg_sleep`.
pub fn wait_until_sleeping_sql(pid: u32) -> String {
    wait_for_backend_sql(pid, "state = 'active' AND wait_event = 'PgSleep'", 1)
}

/// The SQL that waits, on the server, until `count(*)` of the `pg_stat_activity` rows (other than
/// the waiting backend's own) where `condition` holds equals `expected`; as
/// [`wait_for_backend_sql`], for a backend whose pid the client does not know — behind PgBouncer,
/// whose BackendKeyData carries its own key, and whose server connection changes per transaction.
/// Match the query text with a marker: `query LIKE '%marker-123%'`.
pub fn wait_for_activity_sql(condition: &str, expected: u32) -> String {
    format!(
        "DO $wait$ DECLARE started timestamptz := clock_timestamp(); BEGIN \
           LOOP \
             PERFORM pg_stat_clear_snapshot(); \
             EXIT WHEN (SELECT count(*) FROM pg_stat_activity \
                        WHERE pid <> pg_backend_pid() AND {condition}) = {expected}; \
             IF clock_timestamp() - started > interval '10 s' THEN \
               RAISE EXCEPTION 'activity: condition not seen within 10 s'; \
             END IF; \
             PERFORM pg_sleep(0.005); \
           END LOOP; \
         END $wait$"
    )
}

// ----- the three bounds every fault scenario asserts: outcome (in the test), memory and time -----

/// What a connection may hold beyond [`Budgets::total`](pgdblink::conn::Budgets::total): one
/// message per queue (the largest any fault scenario sends) and the per-entry costs.
pub const ONE_MESSAGE: usize = 64 << 10;

/// Asserts that `conn` holds ([`Connection::held_bytes`]) no more than its budgets' total plus
/// [`ONE_MESSAGE`]; returns the bytes held. `what` names it in the failure.
pub fn assert_conn_bounded(conn: &Connection, what: &str) -> usize {
    let held = conn.held_bytes();
    let bound = conn.budgets().total() + ONE_MESSAGE;
    assert!(held <= bound, "{what} holds {held} bytes, bound {bound}");
    held
}

/// [`assert_conn_bounded`] for the named connection `name` of `db`, which must exist.
pub fn assert_bounded(db: &Dblink, name: &str) -> usize {
    let conn = db
        .conn(name)
        .unwrap_or_else(|e| panic!("no connection {name:?} to measure: {e}"));
    assert_conn_bounded(conn, name)
}

/// For a connection that failed: its name `name` is gone (nothing of it is held), and the
/// `keeper` holds within its budgets.
pub fn assert_gone_keeper_bounded(db: &Dblink, name: &str) {
    assert!(
        !db.connections().iter().any(|n| n == name),
        "{name} is still registered"
    );
    assert_bounded(db, "keeper");
}

/// Runs `f` on this thread and asserts that it finished within `limit`. A watchdog aborts the
/// process (with a message) if `f` has not returned by twice `limit` plus 10 s: a hang fails the
/// run instead of stalling it.
pub fn within<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let (done, watch) = mpsc::channel::<()>();
    let grace = limit * 2 + Duration::from_secs(10);
    let name = thread::current().name().unwrap_or("?").to_owned();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(grace) {
            eprintln!("{name}: not finished within {grace:?} (bound {limit:?}): stuck");
            std::process::abort();
        }
    });
    let started = Instant::now();
    let out = f();
    let elapsed = started.elapsed();
    drop(done);
    assert!(elapsed <= limit, "took {elapsed:?}, bound {limit:?}");
    out
}

/// The peak virtual size of this process, in KiB (`VmPeak` in /proc/self/status): unlike the
/// resident set, it also grows with memory reserved and never touched (a buffer reserved for a
/// declared length whose bytes never come).
pub fn peak_vm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmPeak")
}

/// Set in the child process [`in_child`] starts.
const CHILD_ENV: &str = "PGDBLINK_FAULT_CHILD";
/// The keeper's connection string handed to the child, so that it uses the parent's cluster.
const KEEPER_ENV: &str = "PGDBLINK_FAULT_KEEPER";

/// The peaks of a child process, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct ChildPeaks {
    /// `VmHWM`: the peak resident set.
    pub rss_kib: u64,
    /// `VmPeak`: the peak virtual size.
    pub vm_kib: u64,
}

/// Runs the test `name` of this test binary alone in a child process (whose `keeper` connects to
/// this process's cluster) and returns its peaks, asserted within `max_rss_kib` and `max_vm_kib`;
/// returns `None` in the child itself, which runs the scenario and ends it with
/// [`report_child_peaks`]. The scenario's memory is measured where its connections are gone and
/// nothing else runs.
pub fn in_child(name: &str, max_rss_kib: u64, max_vm_kib: u64) -> Option<ChildPeaks> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return None;
    }
    let cluster = Cluster::shared().expect("throwaway cluster");
    let stdout = run_test_in_child(
        name,
        &[
            (CHILD_ENV, "1"),
            (KEEPER_ENV, &cluster.conninfo(Role::Trust)),
        ],
    );
    let peaks = ChildPeaks {
        rss_kib: child_reported(&stdout, "PEAK_RSS_KIB="),
        vm_kib: child_reported(&stdout, "PEAK_VM_KIB="),
    };
    assert!(
        peaks.rss_kib <= max_rss_kib && peaks.vm_kib <= max_vm_kib,
        "{name}: child peaks {peaks:?}, bounds {max_rss_kib} KiB resident, {max_vm_kib} KiB virtual"
    );
    Some(peaks)
}

/// Runs the test `name` of this test binary alone in a child process with `envs` set, asserts that
/// it passed, and returns what it printed.
pub fn run_test_in_child(name: &str, envs: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The number a child printed after `key` (`PEAK_RSS_KIB=`, ...).
pub fn child_reported(stdout: &str, key: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.split_once(key).map(|(_, v)| v))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("the child reports {key}:\n{stdout}"))
}

/// In the child of [`in_child`], prints its peaks for the parent (nothing elsewhere).
pub fn report_child_peaks() {
    if std::env::var_os(CHILD_ENV).is_some() {
        println!("PEAK_RSS_KIB={}", peak_rss_kib());
        println!("PEAK_VM_KIB={}", peak_vm_kib());
    }
}

/// A fault scenario with its bounds: a `Dblink` with a `keeper` (connected before the clock
/// starts) is handed to `f`, which asserts the outcome and the bytes its connections hold
/// ([`assert_bounded`]); `f` must finish within `time`, and afterwards the keeper holds within its
/// budgets and still answers.
pub fn fault_scenario<T>(time: Duration, f: impl FnOnce(&mut Dblink) -> T) -> T {
    let mut db = dblink_with_keeper();
    let out = within(time, || f(&mut db));
    assert_bounded(&db, "keeper");
    assert_keeper_works(&mut db);
    out
}

//! Helpers shared by the test files: the `keeper` connection of the fault tests, and the process's
//! peak resident set for the memory tests.

use pgdblink::Dblink;
use pgdblink::cluster::{Cluster, Role};

/// A Dblink with a connection named `keeper` to the real cluster.
pub fn dblink_with_keeper() -> Dblink {
    let cluster = Cluster::shared().expect("throwaway cluster");
    let mut db = Dblink::new();
    db.connect("keeper", &cluster.conninfo(Role::Trust))
        .expect("keeper connects");
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

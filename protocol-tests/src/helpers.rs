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

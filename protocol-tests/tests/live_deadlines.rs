//! Queries with a deadline against the real server: `Dblink::query_timeout` and
//! `Client::query_timeout` cancel a statement that outlives its deadline, return the server's 57014
//! once the results are drained, and leave the connection usable; a statement that ends in time
//! returns its result as `query` does.

use std::time::{Duration, Instant};

use pgdblink::cluster::{Cluster, Role};
use pgdblink::driver::Client;
use pgdblink::{Dblink, QueryResult, sqlstate};

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

fn value(r: &QueryResult) -> Option<&str> {
    match r {
        QueryResult::Rows(rows) => rows.get(0, 0),
        other => panic!("expected rows, got {other:?}"),
    }
}

#[test]
fn dblink_query_timeout_cancels_and_keeps_the_connection() {
    let mut db = Dblink::new();
    db.connect("c", &cluster().conninfo(Role::Trust)).unwrap();
    let started = Instant::now();
    let e = db
        .query_timeout("c", "SELECT pg_sleep(30)", Some(Duration::from_millis(300)))
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED), "{e:?}");
    assert_eq!(e.message(), "canceling statement due to user request");
    // Cancelled, not waited out: far less than the 30 s statement.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!db.is_busy("c").unwrap());
    assert!(db.get_result("c").unwrap().is_none());
    // The session is usable: the same backend runs the next statement (so the sleep is over).
    let pid = db.backend_pid("c").unwrap();
    let r = db.query("c", "SELECT pg_backend_pid()").unwrap();
    assert_eq!(value(&r), Some(pid.to_string().as_str()));
}

#[test]
fn dblink_query_timeout_returns_a_result_in_time() {
    let mut db = Dblink::new();
    db.connect("c", &cluster().conninfo(Role::Trust)).unwrap();
    let r = db
        .query_timeout(
            "c",
            "SELECT 1; SELECT 'last'",
            Some(Duration::from_secs(60)),
        )
        .unwrap();
    assert_eq!(value(&r), Some("last"));
    let r = db.query_timeout("c", "SELECT 'none'", None).unwrap();
    assert_eq!(value(&r), Some("none"));
    // A statement error inside the deadline is returned as query returns it.
    let e = db
        .query_timeout("c", "SELECT 1/0", Some(Duration::from_secs(60)))
        .unwrap_err();
    assert_eq!(e.code(), Some("22012"));
    assert_eq!(
        db.error_message("c").unwrap().as_deref(),
        Some("ERROR:  division by zero")
    );
}

#[test]
fn dblink_query_timeout_on_a_temporary_connection() {
    let mut db = Dblink::new();
    let conninfo = cluster().conninfo(Role::Trust);
    let e = db
        .query_timeout(
            &conninfo,
            "SELECT pg_sleep(30)",
            Some(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED), "{e:?}");
    assert!(db.connections().is_empty());
    let r = db
        .query_timeout(&conninfo, "SELECT 7", Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(value(&r), Some("7"));
}

#[test]
fn dblink_query_timeout_refuses_a_busy_connection() {
    let mut db = Dblink::new();
    db.connect("c", &cluster().conninfo(Role::Trust)).unwrap();
    db.send_query("c", "SELECT 1").unwrap();
    let e = db
        .query_timeout("c", "SELECT 2", Some(Duration::from_secs(1)))
        .unwrap_err();
    assert_eq!(e.message(), "another command is already in progress");
    // The first query's results are intact.
    assert_eq!(value(&db.get_result("c").unwrap().unwrap()), Some("1"));
    assert!(db.get_result("c").unwrap().is_none());
}

#[test]
fn client_query_timeout_cancels_and_keeps_the_connection() {
    let mut client = Client::connect(&cluster().conninfo(Role::Trust)).unwrap();
    let e = client
        .query_timeout("SELECT pg_sleep(30)", Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED), "{e:?}");
    let results = client
        .query_timeout("SELECT 'again'", Duration::from_secs(60))
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(value(&results[0]), Some("again"));
}

#[test]
fn dblink_wait_ready_waits_on_one_name_and_takes_nothing() {
    let mut db = Dblink::new();
    let conninfo = cluster().conninfo(Role::Trust);
    for name in ["holder", "slow", "fast"] {
        db.connect(name, &conninfo).unwrap();
    }
    // "slow" waits on a lock that "holder" keeps until told: its state, not a clock, decides.
    db.query("holder", "SELECT pg_advisory_lock(42001)")
        .unwrap();
    db.send_query("slow", "SELECT pg_advisory_lock(42001), 'slow'")
        .unwrap();
    db.send_query("fast", "SELECT 'fast'").unwrap();
    // A result waiting on "fast" does not end a wait on "slow", and nothing is taken.
    assert!(db.wait_ready("fast", None).unwrap());
    assert!(
        !db.wait_ready("slow", Some(Duration::from_millis(100)))
            .unwrap()
    );
    assert!(db.is_busy("slow").unwrap());
    assert!(!db.is_busy("fast").unwrap());
    db.query("holder", "SELECT pg_advisory_unlock(42001)")
        .unwrap();
    assert!(
        db.wait_ready("slow", Some(Duration::from_secs(60)))
            .unwrap()
    );
    assert!(!db.is_busy("slow").unwrap());
    let r = db.get_result("slow").unwrap().unwrap();
    match &r {
        QueryResult::Rows(rows) => assert_eq!(rows.get(0, 1), Some("slow")),
        other => panic!("expected rows, got {other:?}"),
    }
    assert!(db.get_result("slow").unwrap().is_none());
    assert_eq!(
        value(&db.get_result("fast").unwrap().unwrap()),
        Some("fast")
    );
    assert!(db.get_result("fast").unwrap().is_none());
    // Nothing in flight: ready at once; an unknown name is the usual error.
    assert!(db.wait_ready("fast", Some(Duration::ZERO)).unwrap());
    assert!(db.wait_ready("nope", None).is_err());
}

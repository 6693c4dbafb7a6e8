//! The named-connection API against a real PostgreSQL (the throwaway cluster of this test binary):
//! every function of the contract and the error cases of the dblink reference, section 1.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pgdblink::cluster::{Cluster, ClusterOptions, Role};
use pgdblink::{Dblink, QueryResult, sqlstate};
use protocol_tests::helpers;

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

fn trust() -> String {
    cluster().conninfo(Role::Trust)
}

fn value(result: &QueryResult) -> Option<&str> {
    result.rows().and_then(|r| r.get(0, 0))
}

/// The backend pid of the named connection.
fn pid_of(db: &Dblink, name: &str) -> u32 {
    db.conn(name).unwrap().backend_key().unwrap().0
}

/// Waits on the server, through the connection `watcher`, until `condition` (an SQL condition on
/// the `pg_stat_activity` row of backend `pid`) holds for `expected` rows.
fn wait_for_backend(db: &mut Dblink, watcher: &str, pid: u32, condition: &str, expected: u32) {
    db.exec(
        watcher,
        &helpers::wait_for_backend_sql(pid, condition, expected),
    )
    .unwrap();
}

/// Waits until backend `pid` is inside `pg_sleep`, as `watcher` sees it.
fn wait_until_sleeping(db: &mut Dblink, watcher: &str, pid: u32) {
    db.exec(watcher, &helpers::wait_until_sleeping_sql(pid))
        .unwrap();
}

#[test]
fn connect_names_are_exact_and_duplicates_refused() {
    let mut db = Dblink::new();
    db.connect("c1", &trust()).unwrap();
    db.connect("C1", &trust()).unwrap();
    db.connect("", &trust()).unwrap();
    let e = db.connect("c1", &trust()).expect_err("duplicate");
    assert_eq!(e.code(), Some(sqlstate::DUPLICATE_OBJECT));
    assert!(!e.is_closed());
    assert_eq!(e.message(), "duplicate connection name");
    let mut names = db.connections();
    names.sort();
    assert_eq!(names, vec!["", "C1", "c1"]);
    assert_eq!(
        value(&db.query("", "SELECT 'empty name'").unwrap()),
        Some("empty name")
    );
}

#[test]
fn failed_connect_does_not_reserve_the_name() {
    let mut db = Dblink::new();
    let e = db
        .connect("bad", "host=127.0.0.1 port=1 dbname=x user=x")
        .expect_err("refused");
    assert_eq!(
        e.code(),
        Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
    );
    assert_eq!(e.message(), "could not establish connection");
    assert_eq!(
        e.detail(),
        Some(
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"
        )
    );
    assert!(db.connections().is_empty());
    db.connect("bad", &trust()).expect("name is free");
}

#[test]
fn connect_errors_carry_libpq_texts() {
    let mut db = Dblink::new();
    for (conninfo, detail) in [
        (
            "nosuchkeyword=1",
            "invalid connection option \"nosuchkeyword\"",
        ),
        (
            "dbname='x",
            "unterminated quoted string in connection info string",
        ),
        (
            "port=badport",
            "invalid integer value \"badport\" for connection option \"port\"",
        ),
        (
            "myconn",
            "missing \"=\" after \"myconn\" in connection info string",
        ),
    ] {
        let e = db.connect("x", conninfo).expect_err(conninfo);
        assert_eq!(
            e.code(),
            Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
            "{conninfo}"
        );
        assert_eq!(e.detail(), Some(detail), "{conninfo}");
    }
    let wrong = cluster().conninfo(Role::Scram).replace("pencil", "nope");
    let e = db.connect("x", &wrong).expect_err("wrong password");
    assert!(
        e.detail()
            .unwrap()
            .ends_with("FATAL:  password authentication failed for user \"scram_user\"")
    );
}

#[test]
fn unknown_name_is_08003_everywhere() {
    let mut db = Dblink::new();
    let check = |e: pgdblink::Error| {
        assert_eq!(e.code(), Some(sqlstate::CONNECTION_DOES_NOT_EXIST));
        assert_eq!(e.message(), "connection \"nope\" not available");
    };
    check(db.disconnect("nope").unwrap_err());
    check(db.send_query("nope", "SELECT 1").unwrap_err());
    check(db.is_busy("nope").unwrap_err());
    check(db.get_result("nope").unwrap_err());
    check(db.cancel_query("nope").unwrap_err());
    check(db.error_message("nope").unwrap_err());
    check(db.get_notify("nope").unwrap_err());
    check(db.take_notices("nope").unwrap_err());
    check(db.open("nope", "c", "SELECT 1").unwrap_err());
    check(db.fetch("nope", "c", 1).unwrap_err());
    check(db.close("nope", "c").unwrap_err());
}

#[test]
fn disconnect_forgets_and_second_disconnect_fails() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    db.send_query("c", "SELECT pg_sleep(5)").unwrap();
    db.disconnect("c")
        .expect("busy connection can be disconnected");
    assert_eq!(
        db.disconnect("c").unwrap_err().code(),
        Some(sqlstate::CONNECTION_DOES_NOT_EXIST)
    );
    assert!(db.connections().is_empty());
}

/// Names are found by their likely index before hashing: a name whose index another name took
/// over, and a name that is not open at that index, still resolve as the hash map says.
#[test]
fn names_resolve_after_an_index_is_reused() {
    let mut db = Dblink::new();
    db.connect("a", &trust()).unwrap();
    db.connect("b", &trust()).unwrap();
    let pid_b = pid_of(&db, "b");
    db.send_query("a", "SELECT 'a'").unwrap();
    db.disconnect("a").unwrap();
    // "c" takes the index "a" had; "a" is gone, and the guess after the send pointed at it.
    db.connect("c", &trust()).unwrap();
    assert_eq!(
        db.get_result("a").unwrap_err().code(),
        Some(sqlstate::CONNECTION_DOES_NOT_EXIST)
    );
    for name in ["c", "b"] {
        db.send_query(name, &format!("SELECT '{name}'")).unwrap();
    }
    let mut left = 2;
    while left > 0 {
        for name in db.wait(None).unwrap() {
            let result = db.get_result(&name).unwrap().unwrap();
            assert_eq!(value(&result), Some(name.as_str()));
            assert!(db.get_result(&name).unwrap().is_none());
            left -= 1;
        }
    }
    assert_eq!(pid_of(&db, "b"), pid_b);
    assert_ne!(pid_of(&db, "c"), pid_b);
}

#[test]
fn disconnect_rolls_back_open_transaction() {
    let mut db = Dblink::new();
    db.connect("w", &trust()).unwrap();
    db.exec("w", "CREATE TABLE IF NOT EXISTS dbl_rollback(x int)")
        .unwrap();
    db.exec("w", "BEGIN").unwrap();
    db.exec("w", "INSERT INTO dbl_rollback VALUES (1)").unwrap();
    db.disconnect("w").unwrap();
    db.connect("r", &trust()).unwrap();
    // The server may still be finishing the old backend; it rolls back either way.
    let n = db.query("r", "SELECT count(*) FROM dbl_rollback").unwrap();
    assert_eq!(value(&n), Some("0"));
}

#[test]
fn async_results_in_order_then_end_marker() {
    let mut db = Dblink::new();
    db.connect("c1", &trust()).unwrap();
    assert!(
        db.get_result("c1").unwrap().is_none(),
        "idle: end marker at once"
    );
    db.send_query("c1", "SELECT 1; SELECT 1/0; SELECT 3")
        .unwrap();
    assert_eq!(value(&db.get_result("c1").unwrap().unwrap()), Some("1"));
    let e = db.get_result("c1").unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Some(sqlstate::DIVISION_BY_ZERO), "division by zero")
    );
    assert_eq!(
        db.error_message("c1").unwrap().as_deref(),
        Some("ERROR:  division by zero")
    );
    assert!(db.get_result("c1").unwrap().is_none());
    assert!(db.get_result("c1").unwrap().is_none());
    // The error message persists until the next query is dispatched.
    assert_eq!(
        db.error_message("c1").unwrap().as_deref(),
        Some("ERROR:  division by zero")
    );
    db.send_query("c1", "SELECT 2").unwrap();
    assert_eq!(db.error_message("c1").unwrap(), None);
    assert_eq!(value(&db.get_result("c1").unwrap().unwrap()), Some("2"));
    assert!(db.get_result("c1").unwrap().is_none());
}

#[test]
fn zero_rows_and_end_marker_are_distinct() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    db.send_query("c", "SELECT 1 WHERE false").unwrap();
    let r = db
        .get_result("c")
        .unwrap()
        .expect("a result with zero rows");
    assert_eq!(r.rows().unwrap().len(), 0);
    assert_eq!(r.command_tag(), "SELECT 0");
    assert!(db.get_result("c").unwrap().is_none());
}

#[test]
fn busy_rules_and_error_buffer() {
    let mut db = Dblink::new();
    db.connect("c1", &trust()).unwrap();
    // c1's query waits for an advisory lock `holder` keeps until released: busy for as long as the
    // test needs, however slow the machine.
    db.connect("holder", &trust()).unwrap();
    db.query("holder", "SELECT pg_advisory_lock(7340001)")
        .unwrap();
    db.send_query("c1", "SELECT pg_advisory_lock(7340001)")
        .unwrap();
    assert!(db.is_busy("c1").unwrap());
    for _ in 0..3 {
        let e = db.send_query("c1", "SELECT 2").unwrap_err();
        assert_eq!(e.message(), "another command is already in progress");
        assert_eq!(e.code(), None);
    }
    assert_eq!(
        db.error_message("c1").unwrap().as_deref(),
        Some(
            "another command is already in progress\nanother command is already in progress\nanother command is already in progress"
        )
    );
    // query/exec on the busy connection refuse and leave the pending result retrievable.
    assert_eq!(
        db.query("c1", "SELECT 7").unwrap_err().message(),
        "another command is already in progress"
    );
    assert_eq!(
        db.exec("c1", "SET x.y = 1").unwrap_err().message(),
        "another command is already in progress"
    );
    assert!(db.is_busy("c1").unwrap());
    db.query("holder", "SELECT pg_advisory_unlock(7340001)")
        .unwrap();
    let r = db
        .get_result("c1")
        .unwrap()
        .expect("the blocked query's result");
    assert_eq!(r.rows().unwrap().columns()[0].name(), "pg_advisory_lock");
    // Results delivered, end marker not yet taken: still refused (the strict reuse rule).
    assert!(!db.is_busy("c1").unwrap());
    assert!(db.send_query("c1", "SELECT 3").is_err());
    assert!(db.get_result("c1").unwrap().is_none());
    db.send_query("c1", "SELECT 3").unwrap();
    assert_eq!(value(&db.get_result("c1").unwrap().unwrap()), Some("3"));
}

#[test]
fn is_busy_false_when_idle_and_after_completion() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    assert!(!db.is_busy("c").unwrap());
    db.send_query("c", "SELECT 1").unwrap();
    // `wait` returns once the query is no longer busy (or after 5 s, and then the assertion fails).
    db.wait(Some(Duration::from_secs(5))).unwrap();
    assert!(!db.is_busy("c").unwrap());
    assert!(db.get_result("c").unwrap().is_some());
}

#[test]
fn cancel_query_gives_57014_and_leaves_state() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    db.connect("watch", &cluster().conninfo(Role::Super))
        .unwrap();
    db.cancel_query("c").expect("idle cancel is OK");
    db.send_query("c", "SELECT pg_sleep(10)").unwrap();
    let pid = pid_of(&db, "c");
    wait_until_sleeping(&mut db, "watch", pid);
    let start = Instant::now();
    db.cancel_query("c").unwrap();
    let e = db.get_result("c").unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED));
    assert!(!e.is_closed());
    assert_eq!(e.message(), "canceling statement due to user request");
    assert_eq!(
        db.error_message("c").unwrap().as_deref(),
        Some("ERROR:  canceling statement due to user request")
    );
    assert!(db.get_result("c").unwrap().is_none());
    assert!(start.elapsed() < Duration::from_secs(5));
    // The connection is usable again.
    assert_eq!(
        value(&db.query("c", "SELECT 'after'").unwrap()),
        Some("after")
    );
}

#[test]
fn cancel_of_broken_connection_explains() {
    let mut db = Dblink::new();
    db.connect("v", &trust()).unwrap();
    let pid = pid_of(&db, "v");
    db.connect("admin", &cluster().conninfo(Role::Super))
        .unwrap();
    db.query("admin", &format!("SELECT pg_terminate_backend({pid})"))
        .unwrap();
    // The backend has sent its FATAL and closed once it is gone from pg_stat_activity.
    wait_for_backend(&mut db, "admin", pid, "true", 0);
    // Whether the FATAL was read before this send (the connection is closed: refused) or only
    // after it (the query gets the FATAL and the lost connection as results), the connection ends
    // up closed, with every error saying so.
    let mut errors = Vec::new();
    if let Err(e) = db.send_query("v", "SELECT 1") {
        errors.push(e);
    }
    loop {
        match db.get_result("v") {
            Ok(None) => break,
            Ok(Some(r)) => panic!("a result from a terminated backend: {r:?}"),
            Err(e) => errors.push(e),
        }
        assert!(errors.len() < 5, "no end marker: {errors:?}");
    }
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| e.is_closed()), "{errors:?}");
    let again = db.send_query("v", "SELECT 1").unwrap_err();
    assert_eq!(again.message(), "no connection to the server");
    assert!(again.is_closed());
    // The FATAL may be lost: a query written to the closed socket makes the server's kernel answer
    // with a reset, which can discard what the client had not read yet.
    let msg = db.error_message("v").unwrap().unwrap();
    assert!(
        msg.contains("FATAL:  terminating connection due to administrator command")
            || msg.contains("server closed the connection unexpectedly"),
        "{msg}"
    );
    // Cancelling on the closed connection neither hangs nor disturbs anything else.
    let _ = db.cancel_query("v");
    assert_eq!(value(&db.query("admin", "SELECT 1").unwrap()), Some("1"));
}

#[test]
fn connection_loss_mid_query() {
    let mut db = Dblink::new();
    db.connect("victim", &trust()).unwrap();
    db.connect("other", &trust()).unwrap();
    db.connect("admin", &cluster().conninfo(Role::Super))
        .unwrap();
    let pid = pid_of(&db, "victim");
    db.send_query("victim", "SELECT pg_sleep(10)").unwrap();
    db.send_query("other", "SELECT pg_sleep(0.5), 'other ok'")
        .unwrap();
    wait_until_sleeping(&mut db, "admin", pid);
    db.exec("admin", &format!("SELECT pg_terminate_backend({pid})"))
        .expect_err("exec of a SELECT is refused");
    db.query("admin", &format!("SELECT pg_terminate_backend({pid})"))
        .unwrap();
    let terminated = db.get_result("victim").unwrap_err();
    assert_eq!(terminated.code(), Some(sqlstate::ADMIN_SHUTDOWN));
    assert!(terminated.is_closed());
    let lost = db.get_result("victim").unwrap_err();
    assert_eq!(lost.code(), Some(sqlstate::CONNECTION_FAILURE));
    assert!(lost.is_closed());
    assert!(db.get_result("victim").unwrap().is_none());
    assert!(!db.is_busy("victim").unwrap());
    assert_eq!(
        db.send_query("victim", "SELECT 1").unwrap_err().message(),
        "no connection to the server"
    );
    let msg = db.error_message("victim").unwrap().unwrap();
    assert!(
        msg.contains("FATAL:  terminating connection due to administrator command"),
        "{msg}"
    );
    // The other connection was not disturbed.
    let r = db.get_result("other").unwrap().unwrap();
    assert_eq!(r.rows().unwrap().get(0, 1), Some("other ok"));
    assert!(db.get_result("other").unwrap().is_none());
    db.disconnect("victim").unwrap();
}

#[test]
fn query_returns_last_result() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    let r = db.query("c", "SELECT 1; SELECT 2 AS a, 3 AS b").unwrap();
    assert_eq!(r.rows().unwrap().get(0, 1), Some("3"));
    assert_eq!(
        db.query("c", "SELECT 1; SET application_name = 'x'")
            .unwrap(),
        QueryResult::Command("SET".into())
    );
    assert_eq!(db.query("c", "").unwrap(), QueryResult::EmptyQuery);
    for sql in ["SELECT 1/0; SELECT 2", "SELECT 1; SELECT 1/0"] {
        assert_eq!(
            db.query("c", sql).unwrap_err().code(),
            Some(sqlstate::DIVISION_BY_ZERO),
            "{sql}"
        );
        // Drained: the connection is usable right away.
        assert_eq!(value(&db.query("c", "SELECT 'ok'").unwrap()), Some("ok"));
    }
    let r = db.query("c", "SELECT NULL::text, ''::text").unwrap();
    let rows = r.rows().unwrap();
    assert_eq!((rows.get(0, 0), rows.get(0, 1)), (None, Some("")));
}

#[test]
fn query_and_exec_with_connection_string() {
    let mut db = Dblink::new();
    let r = db.query(&trust(), "SELECT current_user").unwrap();
    assert_eq!(value(&r), Some("trust_user"));
    assert_eq!(db.exec(&trust(), "SET work_mem = '8MB'").unwrap(), "SET");
    assert!(
        db.connections().is_empty(),
        "the temporary connection is closed"
    );
    let e = db.query("myconn", "SELECT 1").unwrap_err();
    assert_eq!(e.message(), "could not establish connection");
    assert_eq!(
        e.detail(),
        Some("missing \"=\" after \"myconn\" in connection info string")
    );
}

#[test]
fn exec_tags_and_refusals() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    assert_eq!(
        db.exec(
            "c",
            "CREATE TEMP TABLE me(x int); INSERT INTO me VALUES (1),(2),(3)"
        )
        .unwrap(),
        "INSERT 0 3"
    );
    assert_eq!(
        db.exec("c", "UPDATE me SET x = x + 1 WHERE x = 1").unwrap(),
        "UPDATE 1"
    );
    assert_eq!(
        db.exec("c", "DELETE FROM me WHERE x = 2").unwrap(),
        "DELETE 2"
    );
    assert_eq!(db.exec("c", "BEGIN").unwrap(), "BEGIN");
    assert_eq!(db.exec("c", "ABORT").unwrap(), "ROLLBACK");
    assert_eq!(
        db.exec("c", "SELECT 1; SET work_mem = '4MB'").unwrap(),
        "SET"
    );
    let e = db.exec("c", "SET work_mem = '4MB'; SELECT 1").unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Some(sqlstate::PROHIBITED_SQL_STATEMENT_ATTEMPTED),
            "statement returning results not allowed"
        )
    );
    assert_eq!(db.exec("c", ";").unwrap(), "");
    let e = db
        .exec(
            "c",
            "INSERT INTO me VALUES (4); SELECT 1/0; INSERT INTO me VALUES (5)",
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::DIVISION_BY_ZERO));
    assert_eq!(
        value(&db.query("c", "SELECT count(*) FROM me").unwrap()),
        Some("1")
    );
    let e = db
        .exec("c", "DO $d$ BEGIN RAISE EXCEPTION 'boom %', 1 USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = 'P0099'; END $d$")
        .unwrap_err();
    assert_eq!(
        (e.code(), e.detail(), e.hint()),
        (Some("P0099"), Some("the detail"), Some("the hint"))
    );
    assert_eq!(
        db.error_message("c").unwrap().as_deref(),
        Some(
            "ERROR:  boom 1\nDETAIL:  the detail\nHINT:  the hint\nCONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE"
        )
    );
}

#[test]
fn syntax_error_message_has_position() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    let e = db.query("c", "SELECT frm foo bar").unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::SYNTAX_ERROR));
    assert!(e.position().is_some());
}

#[test]
fn cursors_with_transaction_bookkeeping() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    db.exec("c", "CREATE TEMP TABLE foo(f1 int)").unwrap();
    db.exec(
        "c",
        "INSERT INTO foo SELECT g FROM generate_series(1, 10) g",
    )
    .unwrap();
    db.open("c", "c1", "SELECT f1 FROM foo ORDER BY f1")
        .unwrap();
    db.open("c", "c2", "SELECT f1 FROM foo ORDER BY f1 DESC")
        .unwrap();
    let rows = db.fetch("c", "c1", 4).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.command_tag(), "FETCH 4");
    assert_eq!(rows.get(3, 0), Some("4"));
    assert_eq!(db.fetch("c", "c2", 1).unwrap().get(0, 0), Some("10"));
    db.close("c", "c2").unwrap();
    // c1 still open: the transaction is still open, so DECLARE works.
    assert_eq!(
        db.exec("c", "DECLARE xact_test CURSOR FOR SELECT 1")
            .unwrap(),
        "DECLARE CURSOR"
    );
    assert_eq!(db.fetch("c", "c1", 100).unwrap().len(), 6);
    assert_eq!(db.fetch("c", "c1", 100).unwrap().len(), 0, "past the end");
    db.close("c", "c1").unwrap();
    // Closing the last cursor committed: DECLARE now needs a transaction block.
    let e = db
        .exec("c", "DECLARE xact_test2 CURSOR FOR SELECT 1")
        .unwrap_err();
    assert_eq!(
        e.message(),
        "DECLARE CURSOR can only be used in transaction blocks"
    );
    // A missing cursor.
    let e = db.fetch("c", "nosuch", 1).unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Some(sqlstate::INVALID_CURSOR_NAME),
            "cursor \"nosuch\" does not exist"
        )
    );
    assert_eq!(
        db.close("c", "nosuch").unwrap_err().code(),
        Some(sqlstate::INVALID_CURSOR_NAME)
    );
}

#[test]
fn cursor_in_callers_transaction_stays_open() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    db.exec("c", "BEGIN").unwrap();
    db.open("c", "k", "SELECT 1").unwrap();
    db.close("c", "k").unwrap();
    assert_eq!(
        db.exec("c", "DECLARE still_in_xact CURSOR FOR SELECT 1")
            .unwrap(),
        "DECLARE CURSOR"
    );
    assert_eq!(db.exec("c", "COMMIT").unwrap(), "COMMIT");
}

#[test]
fn cursor_open_failure_leaves_failed_transaction() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    let e = db
        .open("c", "rmt", "SELECT * FROM foobar_missing")
        .unwrap_err();
    assert_eq!(e.message(), "relation \"foobar_missing\" does not exist");
    let e = db.open("c", "rmt2", "SELECT 1").unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::IN_FAILED_SQL_TRANSACTION));
    assert_eq!(db.exec("c", "ABORT").unwrap(), "ROLLBACK");
}

#[test]
fn notifications_via_get_notify() {
    let mut db = Dblink::new();
    db.connect("l", &trust()).unwrap();
    db.connect("n", &trust()).unwrap();
    db.exec("l", "LISTEN regression").unwrap();
    db.exec("n", "NOTIFY regression, 'first'").unwrap();
    // A notification that arrives while a query runs is kept for get_notify.
    db.send_query("l", "SELECT pg_sleep(0.3)").unwrap();
    db.exec("n", "NOTIFY regression, 'second'").unwrap();
    while db.get_result("l").unwrap().is_some() {}
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < 2 && Instant::now() < deadline {
        got.extend(db.get_notify("l").unwrap());
        if got.len() < 2 {
            db.wait_notify(Some(deadline.saturating_duration_since(Instant::now())))
                .unwrap();
        }
    }
    let payloads: Vec<_> = got.iter().map(|n| n.payload.as_str()).collect();
    assert_eq!(payloads, vec!["first", "second"]);
    assert_eq!(got[0].channel, "regression");
    assert_eq!(got[0].pid, db.conn("n").unwrap().backend_key().unwrap().0);
    assert!(
        db.get_notify("l").unwrap().is_empty(),
        "consumed once returned"
    );
}

#[test]
fn notices_kept_per_connection() {
    let mut db = Dblink::new();
    db.connect("a", &trust()).unwrap();
    db.connect("b", &trust()).unwrap();
    db.exec(
        "a",
        "DO $$ BEGIN RAISE NOTICE 'remote notice marker 12345'; END $$",
    )
    .unwrap();
    let notices = db.take_notices("a").unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].message(), "remote notice marker 12345");
    assert_eq!(notices[0].severity(), Some("NOTICE"));
    assert!(db.take_notices("b").unwrap().is_empty());
    assert!(db.take_notices("a").unwrap().is_empty());
}

#[test]
fn copy_never_wedges_a_named_connection() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    let e = db.query("c", "COPY (SELECT 1) TO STDOUT").unwrap_err();
    assert_eq!(
        e.message(),
        "COPY TO STDOUT is not supported here: use copy_out"
    );
    db.exec("c", "CREATE TEMP TABLE ci(a int)").unwrap();
    assert_eq!(
        db.exec("c", "COPY ci FROM STDIN").unwrap_err().code(),
        Some(sqlstate::QUERY_CANCELED)
    );
    assert_eq!(
        value(&db.query("c", "SELECT 'usable'").unwrap()),
        Some("usable")
    );
}

#[test]
fn waiting_on_one_keeps_reading_the_others() {
    // A connection whose server sends far more than a socket buffer holds must not stall while the
    // caller blocks on another connection.
    let mut db = Dblink::new();
    db.connect("big", &trust()).unwrap();
    db.connect("slow", &trust()).unwrap();
    let big = pid_of(&db, "big");
    db.send_query(
        "big",
        "SELECT repeat('x', 1000) FROM generate_series(1, 20000)",
    )
    .unwrap();
    // `slow` runs until big's backend has sent its whole result and gone idle, which it can only do
    // if the client keeps reading `big` while it waits on `slow` (the server polls, up to 30 s).
    let finished = format!(
        "EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = {big} AND state = 'idle' \
         AND query LIKE 'SELECT repeat%')"
    );
    db.send_query(
        "slow",
        &format!(
            "DO $$ BEGIN \
             FOR i IN 1..3000 LOOP \
                 PERFORM pg_stat_clear_snapshot(); \
                 EXIT WHEN {finished}; \
                 PERFORM pg_sleep(0.01); \
             END LOOP; \
             IF NOT {finished} THEN RAISE EXCEPTION 'big never went idle'; END IF; \
             END $$"
        ),
    )
    .unwrap();
    assert_eq!(
        db.get_result("slow").unwrap(),
        Some(QueryResult::Command("DO".into()))
    );
    // By now `big` was read while we waited on `slow` (its 20 MB cannot fit in socket buffers); the
    // last few of them may still be in the kernel, read a turn's budget at a time by `is_busy`.
    let mut turns = 0;
    while db.is_busy("big").unwrap() {
        turns += 1;
        assert!(turns < 1000, "big is still busy");
    }
    assert_eq!(
        db.get_result("big").unwrap().unwrap().rows().unwrap().len(),
        20_000
    );
}

#[test]
fn wait_returns_at_once_when_nothing_in_flight() {
    let mut db = Dblink::new();
    db.connect("c", &trust()).unwrap();
    let start = Instant::now();
    assert!(db.wait(Some(Duration::from_secs(10))).unwrap().is_empty());
    assert!(start.elapsed() < Duration::from_secs(1));
    db.send_query("c", "SELECT pg_sleep(2)").unwrap();
    assert!(
        db.wait(Some(Duration::from_millis(100)))
            .unwrap()
            .is_empty(),
        "timeout"
    );
}

#[test]
fn fan_out_200_connections() {
    // Its own cluster, so 200 connections don't crowd the other tests' shared one.
    let own = Cluster::start_with(ClusterOptions::default()).expect("cluster");
    let conninfo = own.conninfo(Role::Trust);
    let mut db = Dblink::new();
    let names: Vec<String> = (0..200).map(|i| format!("conn{i}")).collect();
    for name in &names {
        db.connect(name, &conninfo).unwrap();
    }
    for (i, name) in names.iter().enumerate() {
        db.send_query(name, &format!("SELECT {i}, pg_backend_pid()"))
            .unwrap();
    }
    let mut done = HashSet::new();
    let mut pids = HashSet::new();
    while done.len() < names.len() {
        for name in db.wait(Some(Duration::from_secs(30))).unwrap() {
            let i: usize = name[4..].parse().unwrap();
            let r = db.get_result(&name).unwrap().unwrap();
            let rows = r.rows().unwrap();
            assert_eq!(
                rows.get(0, 0),
                Some(i.to_string().as_str()),
                "result of {name}"
            );
            pids.insert(rows.get(0, 1).unwrap().to_owned());
            assert!(db.get_result(&name).unwrap().is_none());
            assert!(done.insert(name));
        }
    }
    assert_eq!(pids.len(), 200, "200 distinct backends");
    assert!(db.wait(Some(Duration::from_secs(1))).unwrap().is_empty());
}

#[test]
fn wait_reports_ready_connections_until_their_results_are_taken() {
    let mut db = Dblink::new();
    db.connect("a", &trust()).unwrap();
    db.connect("b", &trust()).unwrap();
    db.send_query("a", "SELECT 1").unwrap();
    assert_eq!(db.wait(Some(Duration::from_secs(10))).unwrap(), vec!["a"]);
    // Not taken yet: reported again, at once.
    assert_eq!(db.wait(Some(Duration::from_secs(10))).unwrap(), vec!["a"]);
    while db.get_result("a").unwrap().is_some() {}
    assert!(
        db.wait(Some(Duration::from_secs(10))).unwrap().is_empty(),
        "nothing in flight"
    );

    // Readiness noticed while the caller waited on another connection is still reported.
    db.send_query("a", "SELECT 2").unwrap();
    db.send_query("b", "SELECT pg_sleep(0.3)").unwrap();
    assert!(db.get_result("b").unwrap().is_some());
    let start = Instant::now();
    let mut ready = db.wait(Some(Duration::from_secs(10))).unwrap();
    ready.sort();
    assert_eq!(ready, vec!["a", "b"]);
    assert!(start.elapsed() < Duration::from_secs(1));
}

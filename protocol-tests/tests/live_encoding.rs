//! Text encodings against a real PostgreSQL (the throwaway cluster this test binary starts and removes
//! when it exits): pgdblink reads text as UTF-8, so it refuses any other `client_encoding`, and where
//! the server does not check text itself (a `SQL_ASCII` database) it checks every value, turning
//! bytes that are not UTF-8 into the server's own error (22021) instead of a silent NULL.

use pgdblink::cluster::{Cluster, Role};
use pgdblink::{Dblink, QueryResult};

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

const REFUSED: &str = "client_encoding \"LATIN1\" is not supported: pgdblink reads text as UTF-8";

#[test]
fn a_latin1_client_encoding_in_the_connection_string_fails_the_connect() {
    let mut db = Dblink::new();
    let conninfo = format!("{} client_encoding=LATIN1", cluster().conninfo(Role::Trust));
    let e = db
        .connect("c", &conninfo)
        .expect_err("LATIN1 must be refused");
    assert_eq!(e.code(), Some("08001"));
    assert!(e.detail().is_some_and(|d| d.contains(REFUSED)), "{e:?}");
    assert!(db.connections().is_empty());
    // The same server with UTF8 is fine.
    db.connect("c", &cluster().conninfo(Role::Trust))
        .expect("UTF8");
    let shown = db.query("c", "SHOW client_encoding").expect("show");
    assert_eq!(shown.rows().and_then(|r| r.get(0, 0)), Some("UTF8"));
}

#[test]
fn set_client_encoding_mid_session_fails_the_statement_and_closes_the_connection() {
    let mut db = Dblink::new();
    db.connect("c", &cluster().conninfo(Role::Trust))
        .expect("connect");
    db.send_query("c", "SELECT 1; SET client_encoding TO LATIN1")
        .expect("send");
    let first = db.get_result("c").expect("the first statement's rows");
    assert_eq!(
        first
            .as_ref()
            .and_then(QueryResult::rows)
            .and_then(|r| r.get(0, 0)),
        Some("1")
    );
    // PostgreSQL reports the new value after the SET's CommandComplete, before ReadyForQuery: the
    // query in flight gets the refusal as its last result.
    let set = db.get_result("c").expect("the SET's command tag");
    assert_eq!(set.as_ref().map(QueryResult::command_tag), Some("SET"));
    let e = db.get_result("c").expect_err("then the refusal");
    assert_eq!(e.message(), REFUSED);
    assert!(db.get_result("c").expect("end marker").is_none());
    // Nothing later is read in the wrong encoding: the connection is gone.
    let e = db.query("c", "SELECT 'é'").expect_err("closed");
    assert!(e.message().contains("no connection to the server"), "{e:?}");
}

#[test]
fn a_sql_ascii_database_value_that_is_not_utf8_is_error_22021_and_valid_rows_read_fine() {
    let mut db = Dblink::new();
    let admin = cluster().conninfo(Role::Super);
    db.exec(
        &admin,
        "CREATE DATABASE enc_sql_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' \
         TEMPLATE template0",
    )
    .expect("create database");
    let conninfo = format!("{admin} dbname=enc_sql_ascii");
    db.connect("a", &conninfo).expect("connect");
    let shown = db.query("a", "SHOW server_encoding").expect("show");
    assert_eq!(shown.rows().and_then(|r| r.get(0, 0)), Some("SQL_ASCII"));
    // E'\351' is the byte 0xe9: Latin-1's é, not UTF-8. A SQL_ASCII server stores it unchecked.
    db.exec(
        "a",
        "CREATE TABLE t (id int, v text); \
         INSERT INTO t VALUES (1, 'caf' || E'\\303\\251'), (2, E'caf\\351 au lait'), (3, 'fine')",
    )
    .expect("create table");
    let e = db
        .query("a", "SELECT v FROM t ORDER BY id")
        .expect_err("the bad byte fails the statement");
    assert_eq!(e.code(), Some("22021"));
    assert_eq!(
        e.message(),
        "invalid byte sequence for encoding \"UTF8\": 0xe9 0x20 0x61"
    );
    let rows = db
        .query("a", "SELECT v FROM t WHERE id <> 2 ORDER BY id")
        .expect("valid rows");
    let rows = rows.rows().expect("rows");
    assert_eq!(rows.get(0, 0), Some("café"));
    assert_eq!(rows.get(1, 0), Some("fine"));
    // In a multi-statement query only the statement with the bad value fails; the connection stays.
    db.send_query("a", "SELECT v FROM t WHERE id = 2")
        .expect("send");
    let e = db.get_result("a").expect_err("22021");
    assert_eq!(e.code(), Some("22021"));
    assert!(db.get_result("a").expect("end").is_none());
    let one = db.query("a", "SELECT 1").expect("usable");
    assert_eq!(one.rows().and_then(|r| r.get(0, 0)), Some("1"));
}

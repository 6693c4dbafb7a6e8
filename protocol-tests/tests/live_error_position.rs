//! libpq's error cursor against a real PostgreSQL (the throwaway cluster this test binary starts and
//! removes when it exits): an error with a position reads, in `error_message` and
//! `Error::libpq_text`, with the `LINE n:` line and the caret under the position, exactly as libpq's
//! `reportErrorPosition` writes them: single-line, multi-line (LF and CR LF), tab and multi-byte
//! queries, long lines cut with `...`.
//!
//! Each case has a fixed expectation (the errors are undefined columns, whose text and position
//! every PostgreSQL version reports alike), and is also compared byte for byte with what psql (libpq
//! itself) prints for the same query when /usr/bin/psql is installed.

use std::path::Path;
use std::process::Command;

use pgdblink::Dblink;
use pgdblink::cluster::{Cluster, Role};

const PSQL: &str = "/usr/bin/psql";

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

/// What psql prints on stderr for `sql`, or `None` when psql is not installed.
fn psql_error(sql: &str) -> Option<String> {
    if !Path::new(PSQL).exists() {
        eprintln!("{PSQL} not installed: not comparing with libpq");
        return None;
    }
    let out = Command::new(PSQL)
        .args([
            "-X",
            "-q",
            "-d",
            &cluster().conninfo(Role::Trust),
            "-c",
            sql,
        ])
        // libpq counts characters in the client encoding: UTF8, as pgdblink's.
        .env("PGCLIENTENCODING", "UTF8")
        .env_remove("PGOPTIONS")
        .output()
        .expect("run psql");
    assert!(!out.status.success(), "psql succeeded on {sql:?}");
    Some(String::from_utf8(out.stderr).expect("psql's stderr is UTF-8"))
}

/// Runs `sql` (which fails with an undefined column) through `send_query` and through
/// `query_params`, checks both against `expected` (the libpq text), and against psql's.
fn check(sql: &str, expected: &str) {
    let mut db = Dblink::new();
    db.connect("c", &cluster().conninfo(Role::Trust))
        .expect("connect");
    db.send_query("c", sql).expect("send");
    let e = db.get_result("c").expect_err("the statement fails");
    assert!(db.get_result("c").expect("end marker").is_none());
    assert_eq!(e.code(), Some("42703"), "{e:?}");
    assert_eq!(e.query(), Some(sql));
    assert_eq!(e.libpq_text(), expected, "libpq_text of {sql:?}");
    let message = db.error_message("c").expect("name").expect("an error");
    assert_eq!(format!("{message}\n"), expected, "error_message of {sql:?}");
    // The extended protocol (Parse fails) shows the same cursor.
    db.send_query_params("c", sql, &[]).expect("send params");
    let e = db.get_result("c").expect_err("the statement fails");
    assert!(db.get_result("c").expect("end marker").is_none());
    assert_eq!(e.libpq_text(), expected, "extended protocol, {sql:?}");
    // The other named connection of the registry is unaffected, and the next error shows its own
    // query.
    db.send_query("c", "SELECT 1, nope").expect("send");
    let e = db.get_result("c").expect_err("fails");
    assert!(db.get_result("c").expect("end marker").is_none());
    assert_eq!(
        e.libpq_text(),
        "ERROR:  column \"nope\" does not exist\nLINE 1: SELECT 1, nope\n                  ^\n"
    );
    if let Some(psql) = psql_error(sql) {
        assert_eq!(psql, expected, "psql's text for {sql:?}");
    }
}

const NOPE: &str = "ERROR:  column \"nope\" does not exist\n";

#[test]
fn single_line_query_gets_line_1_and_the_caret() {
    check(
        "SELECT 1 AS one, nope FROM generate_series(1, 2)",
        &format!(
            "{NOPE}LINE 1: SELECT 1 AS one, nope FROM generate_series(1, 2)\n                         ^\n"
        ),
    );
}

#[test]
fn multi_line_query_shows_the_line_holding_the_position() {
    check(
        "SELECT 1,\n  2,\n  nope\nFROM generate_series(1, 2)",
        &format!("{NOPE}LINE 3:   nope\n          ^\n"),
    );
    // CR LF ends one line; a lone CR ends one too.
    check(
        "SELECT 1,\r\n  2,\r  nope",
        &format!("{NOPE}LINE 3:   nope\n          ^\n"),
    );
}

#[test]
fn tabs_show_as_one_space_each() {
    check(
        "SELECT\t1,\t\tnope",
        &format!("{NOPE}LINE 1: SELECT 1,  nope\n                   ^\n"),
    );
}

#[test]
fn multi_byte_text_counts_characters_and_wide_ones_take_two_columns() {
    // Two-byte letters (one column each) before the position.
    check(
        "SELECT 'éàü' AS é, nope",
        &format!("{NOPE}LINE 1: SELECT 'éàü' AS é, nope\n                           ^\n"),
    );
    // CJK ideographs: three bytes, two columns each.
    check(
        "SELECT '漢字かな' AS k, nope",
        &format!("{NOPE}LINE 1: SELECT '漢字かな' AS k, nope\n                                ^\n"),
    );
}

#[test]
fn long_lines_are_cut_to_about_60_columns_with_dots() {
    // The position early in a long line: cut on the right.
    let tail = format!("'{}'", "x".repeat(80));
    let sql = format!("SELECT nope, {tail}");
    let shown = &sql[..60];
    check(
        &sql,
        &format!("{NOPE}LINE 1: {shown}...\n               ^\n"),
    );
    // The position far into a long line: cut on both sides.
    let head = format!("'{}'", "a".repeat(80));
    let sql = format!("SELECT {head}, nope, {tail}");
    // nope starts at byte (= character) 7 + 82 + 2 = 91; the line is cut 10 columns after it, at
    // 101, then on the left to 60 columns, from 41.
    let shown = &sql[41..101];
    check(
        &sql,
        &format!(
            "{NOPE}LINE 1: ...{shown}...\n{}^\n",
            " ".repeat(11 + 91 - 41)
        ),
    );
    // The position near the end of a long line: cut on the left only.
    let sql = format!("SELECT {head}, nope");
    let shown = &sql[sql.len() - 60..];
    check(
        &sql,
        &format!("{NOPE}LINE 1: ...{shown}\n{}^\n", " ".repeat(11 + 60 - 4)),
    );
}

#[test]
fn a_long_line_of_wide_characters_is_cut_by_columns() {
    let sql = format!("SELECT nope, '{}'", "漢".repeat(40));
    // 60 columns: "SELECT nope, '" is 14, then 23 ideographs (46 columns) fit.
    let shown: String = sql.chars().take(14 + 23).collect();
    check(
        &sql,
        &format!("{NOPE}LINE 1: {shown}...\n               ^\n"),
    );
}

#[test]
fn internal_query_position_points_into_the_internal_query() {
    let mut db = Dblink::new();
    db.connect("c", &cluster().conninfo(Role::Trust))
        .expect("connect");
    let sql = "DO $$ BEGIN PERFORM nope; END $$";
    let e = db.query("c", sql).expect_err("fails");
    assert_eq!(e.code(), Some("42703"));
    // The server reports the position in the internal query (`p`, `q`) and no `P`.
    assert!(e.position().is_none(), "{e:?}");
    let text = e.libpq_text();
    assert!(
        text.starts_with("ERROR:  column \"nope\" does not exist\nLINE 1: SELECT nope\n               ^\nQUERY:  SELECT nope\nCONTEXT:  "),
        "{text}"
    );
    if let Some(psql) = psql_error(sql) {
        assert_eq!(psql, text);
    }
}

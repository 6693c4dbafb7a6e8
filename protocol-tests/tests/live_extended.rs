//! Parameters, prepared statements, pipeline mode and COPY against a real PostgreSQL (the throwaway
//! cluster of this test binary). The pipeline tests mirror PostgreSQL's
//! `src/test/modules/libpq_pipeline` scenarios one by one.

use std::io::{self, Read, Write};

use pgdblink::cluster::{Cluster, Role};
use pgdblink::driver::Client;
use pgdblink::{Dblink, PipelineStatus, QueryResult, sqlstate};

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

fn trust() -> String {
    cluster().conninfo(Role::Trust)
}

fn connected(name: &str) -> Dblink {
    let mut db = Dblink::new();
    db.connect(name, &trust()).unwrap();
    db
}

fn value(result: &QueryResult) -> Option<&str> {
    result.rows().and_then(|r| r.get(0, 0))
}

/// Takes one result and asserts it is Some(Ok).
fn result(db: &mut Dblink, name: &str) -> QueryResult {
    db.get_result(name).unwrap().expect("a result")
}

fn end(db: &mut Dblink, name: &str) {
    assert!(db.get_result(name).unwrap().is_none(), "end marker");
}

fn sync(db: &mut Dblink, name: &str) {
    assert_eq!(result(db, name), QueryResult::PipelineSync);
}

/// A fresh table name per test (the tests share one cluster and run in parallel).
fn table(db: &mut Dblink, name: &str, t: &str, columns: &str) {
    db.exec(name, &format!("DROP TABLE IF EXISTS {t}")).unwrap();
    db.exec(name, &format!("CREATE TABLE {t} ({columns})"))
        .unwrap();
}

#[test]
fn parameters_are_bound_as_text_and_none_is_null() {
    let mut db = connected("c");
    db.send_query_params(
        "c",
        "SELECT $1::int + 1, $2::text IS NULL, $3",
        &[Some("41"), None, Some("'; DROP TABLE x; --")],
    )
    .unwrap();
    let r = result(&mut db, "c");
    let rows = r.rows().unwrap();
    assert_eq!(rows.get(0, 0), Some("42"));
    assert_eq!(rows.get(0, 1), Some("t"));
    assert_eq!(rows.get(0, 2), Some("'; DROP TABLE x; --"));
    assert_eq!(rows.command_tag(), "SELECT 1");
    end(&mut db, "c");
    // The end marker again on every further call.
    end(&mut db, "c");

    let r = db
        .query_params("c", "SELECT $1::text || '!'", &[Some("hi")])
        .unwrap();
    assert_eq!(value(&r), Some("hi!"));
    // A connection string: a temporary connection.
    let r = db
        .query_params(&trust(), "SELECT $1::int * 2", &[Some("21")])
        .unwrap();
    assert_eq!(value(&r), Some("42"));

    // Commands and empty statements as with a simple query.
    let r = db
        .query_params("c", "SET application_name = 'x'", &[])
        .unwrap();
    assert_eq!(r, QueryResult::Command("SET".into()));
    assert_eq!(
        db.query_params("c", "", &[]).unwrap(),
        QueryResult::EmptyQuery
    );
}

#[test]
fn several_statements_and_bad_parameters_are_the_servers_errors() {
    let mut db = connected("c");
    let e = db.query_params("c", "SELECT 1; SELECT 2", &[]).unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::SYNTAX_ERROR));
    assert_eq!(
        e.message(),
        "cannot insert multiple commands into a prepared statement"
    );
    let e = db
        .query_params("c", "SELECT $1::int", &[Some("abc")])
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::INVALID_TEXT_REPRESENTATION));
    assert!(
        db.error_message("c")
            .unwrap()
            .unwrap()
            .starts_with("ERROR:  invalid input syntax for type integer: \"abc\"\nCONTEXT:  ")
    );
    // Too few parameters: 08P01 from the server, and the connection is usable after.
    let e = db
        .query_params("c", "SELECT $1, $2", &[Some("1")])
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::PROTOCOL_VIOLATION));
    assert_eq!(value(&db.query("c", "SELECT 7").unwrap()), Some("7"));
    // Busy: the dblink rule holds for the new sends too.
    db.send_query("c", "SELECT 1").unwrap();
    let e = db.send_query_params("c", "SELECT 2", &[]).unwrap_err();
    assert_eq!(e.message(), "another command is already in progress");
    assert_eq!(e.code(), None);
    result(&mut db, "c");
    end(&mut db, "c");
}

#[test]
fn prepared_statements_answer_command_then_end() {
    let mut db = connected("c");
    db.send_prepare("c", "double", "SELECT $1::int * 2")
        .unwrap();
    assert_eq!(result(&mut db, "c"), QueryResult::Command(String::new()));
    end(&mut db, "c");
    for i in 0..3 {
        db.send_query_prepared("c", "double", &[Some(&i.to_string())])
            .unwrap();
        let expected = (i * 2).to_string();
        assert_eq!(value(&result(&mut db, "c")), Some(expected.as_str()));
        end(&mut db, "c");
    }
    // Reusing a name: 42P05; an unknown name: 26000.
    db.send_prepare("c", "double", "SELECT 1").unwrap();
    let e = db.get_result("c").unwrap_err();
    assert_eq!(e.code(), Some("42P05"));
    assert_eq!(e.message(), "prepared statement \"double\" already exists");
    end(&mut db, "c");
    db.send_query_prepared("c", "nope", &[]).unwrap();
    assert_eq!(db.get_result("c").unwrap_err().code(), Some("26000"));
    end(&mut db, "c");
}

/// libpq_pipeline `disallowed_in_pipeline` and `simple_pipeline`.
#[test]
fn pipeline_enter_and_exit_rules() {
    let mut db = connected("c");
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::Off);
    // Exiting when off, and a sync outside pipeline mode.
    db.exit_pipeline_mode("c").unwrap();
    let e = db.pipeline_sync("c").unwrap_err();
    assert_eq!(
        e.message(),
        "cannot send pipeline when not in pipeline mode"
    );
    assert_eq!(e.code(), None);
    // Entering a busy connection.
    db.send_query("c", "SELECT 1").unwrap();
    let e = db.enter_pipeline_mode("c").unwrap_err();
    assert_eq!(
        e.message(),
        "cannot enter pipeline mode, connection not idle"
    );
    assert_eq!(e.code(), None);
    result(&mut db, "c");
    end(&mut db, "c");

    db.enter_pipeline_mode("c").unwrap();
    db.enter_pipeline_mode("c").unwrap();
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::On);
    // The blocking calls are refused (libpq's disallowed_in_pipeline).
    for e in [
        db.query("c", "SELECT 1").unwrap_err(),
        db.exec("c", "SET x.y = 1").unwrap_err(),
        db.query_params("c", "SELECT 1", &[]).unwrap_err(),
    ] {
        assert_eq!(
            e.message(),
            "synchronous command execution functions are not allowed in pipeline mode"
        );
        assert_eq!(e.code(), None);
    }
    db.send_query_params("c", "SELECT $1", &[Some("1")])
        .unwrap();
    let e = db.exit_pipeline_mode("c").unwrap_err();
    assert!(e.message().starts_with("cannot exit pipeline mode"), "{e}");
    db.pipeline_sync("c").unwrap();
    assert_eq!(value(&result(&mut db, "c")), Some("1"));
    end(&mut db, "c");
    // After the query's results, before its sync is taken.
    let e = db.exit_pipeline_mode("c").unwrap_err();
    assert!(e.message().starts_with("cannot exit pipeline mode"), "{e}");
    sync(&mut db, "c");
    end(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::Off);
    // Out of pipeline mode, a simple query with several statements works again.
    db.send_query("c", "SELECT 1; SELECT 2").unwrap();
    assert_eq!(value(&result(&mut db, "c")), Some("1"));
    assert_eq!(value(&result(&mut db, "c")), Some("2"));
    end(&mut db, "c");
}

/// libpq_pipeline `multi_pipelines`: two pipelines back to back.
#[test]
fn multi_pipelines() {
    let mut db = connected("c");
    db.enter_pipeline_mode("c").unwrap();
    db.send_query_params("c", "SELECT $1", &[Some("1")])
        .unwrap();
    db.pipeline_sync("c").unwrap();
    db.send_query_params("c", "SELECT $1", &[Some("2")])
        .unwrap();
    db.pipeline_sync("c").unwrap();
    assert_eq!(value(&result(&mut db, "c")), Some("1"));
    end(&mut db, "c");
    sync(&mut db, "c");
    assert!(db.exit_pipeline_mode("c").is_err());
    assert_eq!(value(&result(&mut db, "c")), Some("2"));
    end(&mut db, "c");
    assert!(db.exit_pipeline_mode("c").is_err());
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
}

/// libpq_pipeline `pipeline_abort`.
#[test]
fn pipeline_abort() {
    let mut db = connected("c");
    table(&mut db, "c", "pipeline_abort", "id int");
    db.enter_pipeline_mode("c").unwrap();
    let insert = "INSERT INTO pipeline_abort VALUES ($1)";
    db.send_query_params("c", insert, &[Some("1")]).unwrap();
    db.send_query_params("c", "SELECT no_such_function($1)", &[Some("1")])
        .unwrap();
    db.send_query_params("c", insert, &[Some("2")]).unwrap();
    db.pipeline_sync("c").unwrap();
    db.send_query_params("c", insert, &[Some("3")]).unwrap();
    db.pipeline_sync("c").unwrap();

    assert_eq!(
        result(&mut db, "c"),
        QueryResult::Command("INSERT 0 1".into())
    );
    end(&mut db, "c");
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::On);
    let e = db.get_result("c").unwrap_err();
    assert_eq!(e.code(), Some("42883"));
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::Aborted);
    end(&mut db, "c");
    assert_eq!(result(&mut db, "c"), QueryResult::PipelineAborted);
    end(&mut db, "c");
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::Aborted);
    sync(&mut db, "c");
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::On);
    assert_eq!(
        result(&mut db, "c"),
        QueryResult::Command("INSERT 0 1".into())
    );
    end(&mut db, "c");
    sync(&mut db, "c");

    // A multi-statement query in pipeline mode: the server's 42601.
    db.send_query("c", "SELECT 1; SELECT 2").unwrap();
    db.pipeline_sync("c").unwrap();
    assert_eq!(
        db.get_result("c").unwrap_err().code(),
        Some(sqlstate::SYNTAX_ERROR)
    );
    end(&mut db, "c");
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
    // The first insert was rolled back with the implicit transaction, the second skipped.
    let r = db
        .query("c", "SELECT string_agg(id::text, ',') FROM pipeline_abort")
        .unwrap();
    assert_eq!(value(&r), Some("3"));
}

/// libpq_pipeline `singlerow` where libpq allows it: chunked rows per query inside a pipeline, and an
/// error in the middle of a row set.
#[test]
fn chunked_rows_inside_a_pipeline() {
    let mut db = connected("c");
    db.enter_pipeline_mode("c").unwrap();
    db.send_query_chunked("c", "SELECT g FROM generate_series(1, 5) g", 2)
        .unwrap();
    db.send_query_chunked("c", "SELECT 1/(3-g) FROM generate_series(1, 5) g", 1)
        .unwrap();
    db.pipeline_sync("c").unwrap();
    let sizes: Vec<usize> = (0..3)
        .map(|_| result(&mut db, "c").rows().unwrap().len())
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
    end(&mut db, "c");
    assert_eq!(result(&mut db, "c").rows().unwrap().get(0, 0), Some("0"));
    assert_eq!(result(&mut db, "c").rows().unwrap().get(0, 0), Some("1"));
    assert_eq!(
        db.get_result("c").unwrap_err().code(),
        Some(sqlstate::DIVISION_BY_ZERO)
    );
    end(&mut db, "c");
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
}

/// libpq_pipeline `pipelined_insert`: 10,000 prepared inserts in one transaction, all sent before
/// a single result is read.
#[test]
fn pipelined_insert_of_10000_rows() {
    let mut db = connected("c");
    let n = 10_000;
    db.enter_pipeline_mode("c").unwrap();
    db.send_query("c", "BEGIN").unwrap();
    db.send_query("c", "DROP TABLE IF EXISTS pq_pipeline_demo")
        .unwrap();
    db.send_query(
        "c",
        "CREATE UNLOGGED TABLE pq_pipeline_demo(id serial primary key, itemno integer, int8filler int8)",
    )
    .unwrap();
    db.send_prepare(
        "c",
        "my_insert",
        "INSERT INTO pq_pipeline_demo(itemno, int8filler) VALUES ($1, $2)",
    )
    .unwrap();
    for i in 0..n {
        let filler = (1i64 << 62) - i64::from(i);
        db.send_query_prepared(
            "c",
            "my_insert",
            &[Some(&i.to_string()), Some(&filler.to_string())],
        )
        .unwrap();
    }
    db.send_query("c", "COMMIT").unwrap();
    db.pipeline_sync("c").unwrap();
    for tag in ["BEGIN", "DROP TABLE", "CREATE TABLE", ""] {
        assert_eq!(result(&mut db, "c"), QueryResult::Command(tag.into()));
        end(&mut db, "c");
    }
    for _ in 0..n {
        assert_eq!(
            result(&mut db, "c"),
            QueryResult::Command("INSERT 0 1".into())
        );
        end(&mut db, "c");
    }
    assert_eq!(result(&mut db, "c"), QueryResult::Command("COMMIT".into()));
    end(&mut db, "c");
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
    let r = db
        .query("c", "SELECT count(*) FROM pq_pipeline_demo")
        .unwrap();
    assert_eq!(value(&r), Some("10000"));
}

/// Never a deadlock: 100,000 queries written before a single result is read. The server's answers
/// are read while the client writes.
#[test]
fn a_pipeline_of_100000_queries_does_not_deadlock() {
    let mut db = connected("c");
    let n = 100_000u32;
    db.enter_pipeline_mode("c").unwrap();
    for i in 0..n {
        db.send_query_params("c", "SELECT $1::int", &[Some(&i.to_string())])
            .unwrap();
    }
    db.pipeline_sync("c").unwrap();
    for i in 0..n {
        let r = result(&mut db, "c");
        assert_eq!(value(&r), Some(i.to_string().as_str()));
        end(&mut db, "c");
    }
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
}

/// libpq_pipeline `transaction`: a transaction spans syncs, and an error inside it survives the
/// sync (the transaction stays failed until ROLLBACK).
#[test]
fn transaction_across_syncs() {
    let mut db = connected("c");
    table(&mut db, "c", "pipeline_tx", "id int");
    db.enter_pipeline_mode("c").unwrap();
    db.send_prepare("c", "rollback", "ROLLBACK").unwrap();
    db.send_query("c", "BEGIN").unwrap();
    db.send_query("c", "INSERT INTO pipeline_tx VALUES (1)")
        .unwrap();
    db.pipeline_sync("c").unwrap();
    db.send_query("c", "SELECT 1/0").unwrap();
    // Skipped: the pipeline is aborted.
    db.send_query_prepared("c", "rollback", &[]).unwrap();
    db.pipeline_sync("c").unwrap();
    db.send_query("c", "INSERT INTO pipeline_tx VALUES (2)")
        .unwrap();
    db.pipeline_sync("c").unwrap();
    db.send_query_prepared("c", "rollback", &[]).unwrap();
    db.pipeline_sync("c").unwrap();
    db.send_query("c", "INSERT INTO pipeline_tx VALUES (3)")
        .unwrap();
    db.pipeline_sync("c").unwrap();

    for tag in ["", "BEGIN", "INSERT 0 1"] {
        assert_eq!(result(&mut db, "c"), QueryResult::Command(tag.into()));
        end(&mut db, "c");
    }
    sync(&mut db, "c");
    assert_eq!(
        db.get_result("c").unwrap_err().code(),
        Some(sqlstate::DIVISION_BY_ZERO)
    );
    end(&mut db, "c");
    assert_eq!(result(&mut db, "c"), QueryResult::PipelineAborted);
    end(&mut db, "c");
    sync(&mut db, "c");
    // Still inside the failed transaction.
    assert_eq!(
        db.get_result("c").unwrap_err().code(),
        Some(sqlstate::IN_FAILED_SQL_TRANSACTION)
    );
    end(&mut db, "c");
    sync(&mut db, "c");
    assert_eq!(
        result(&mut db, "c"),
        QueryResult::Command("ROLLBACK".into())
    );
    end(&mut db, "c");
    sync(&mut db, "c");
    assert_eq!(
        result(&mut db, "c"),
        QueryResult::Command("INSERT 0 1".into())
    );
    end(&mut db, "c");
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
    let r = db
        .query("c", "SELECT string_agg(id::text, ',') FROM pipeline_tx")
        .unwrap();
    assert_eq!(value(&r), Some("3"));
}

/// libpq_pipeline `nosync` and `pipeline_idle`: results through a flush request with no sync;
/// each result is followed by one end marker, and an idle pipeline answers the end marker at once.
#[test]
fn flush_request_without_sync_then_idle() {
    let mut db = connected("c");
    db.enter_pipeline_mode("c").unwrap();
    for i in 0..10 {
        db.send_query_params("c", "SELECT $1", &[Some(&i.to_string())])
            .unwrap();
    }
    db.send_flush_request("c").unwrap();
    for i in 0..10 {
        assert_eq!(value(&result(&mut db, "c")), Some(i.to_string().as_str()));
        end(&mut db, "c");
    }
    // Idle in pipeline mode: not busy, the end marker at once, no spurious notices.
    assert!(!db.is_busy("c").unwrap());
    end(&mut db, "c");
    db.send_query("c", "SELECT 'after'").unwrap();
    db.send_flush_request("c").unwrap();
    assert_eq!(value(&result(&mut db, "c")), Some("after"));
    end(&mut db, "c");
    end(&mut db, "c");
    assert!(db.take_notices("c").unwrap().is_empty());
    db.pipeline_sync("c").unwrap();
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
}

/// libpq_pipeline `uniqviol`: a stream of prepared inserts with one unique violation; one error,
/// then every later insert aborted, reading while writing.
#[test]
fn unique_violation_aborts_the_rest() {
    let mut db = connected("c");
    table(
        &mut db,
        "c",
        "ppln_uniqviol",
        "id bigint primary key, idata bigint",
    );
    db.enter_pipeline_mode("c").unwrap();
    db.send_prepare(
        "c",
        "insertion",
        "INSERT INTO ppln_uniqviol VALUES ($1, $2) RETURNING id",
    )
    .unwrap();
    db.pipeline_sync("c").unwrap();
    assert_eq!(result(&mut db, "c"), QueryResult::Command(String::new()));
    end(&mut db, "c");
    sync(&mut db, "c");
    let n = 5000;
    for i in 0..n {
        // Row 3000 repeats id 100.
        let id = if i == 3000 { 100 } else { i };
        db.send_query_prepared("c", "insertion", &[Some(&id.to_string()), Some("1")])
            .unwrap();
    }
    db.pipeline_sync("c").unwrap();
    for _ in 0..3000 {
        assert!(result(&mut db, "c").rows().is_some());
        end(&mut db, "c");
    }
    assert_eq!(
        db.get_result("c").unwrap_err().code(),
        Some(sqlstate::UNIQUE_VIOLATION)
    );
    end(&mut db, "c");
    for _ in 3001..n {
        assert_eq!(result(&mut db, "c"), QueryResult::PipelineAborted);
        end(&mut db, "c");
    }
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
    // The whole pipeline was one implicit transaction, rolled back.
    let r = db.query("c", "SELECT count(*) FROM ppln_uniqviol").unwrap();
    assert_eq!(value(&r), Some("0"));
}

/// The same operations on `Client`.
#[test]
fn client_params_pipeline_and_copy() {
    let mut client = Client::connect(&trust()).unwrap();
    let r = client
        .query_params("SELECT $1::int + 1", &[Some("1")])
        .unwrap();
    assert_eq!(value(&r[0]), Some("2"));
    client.enter_pipeline_mode().unwrap();
    client.send_prepare("s", "SELECT $1::text").unwrap();
    client.send_query_prepared("s", &[None]).unwrap();
    client.pipeline_sync().unwrap();
    assert_eq!(
        client.get_result().unwrap(),
        Some(QueryResult::Command(String::new()))
    );
    assert_eq!(client.get_result().unwrap(), None);
    let r = client.get_result().unwrap().unwrap();
    assert_eq!(r.rows().unwrap().get(0, 0), None);
    assert!(r.rows().unwrap().is_null(0, 0));
    assert_eq!(client.get_result().unwrap(), None);
    assert_eq!(
        client.get_result().unwrap(),
        Some(QueryResult::PipelineSync)
    );
    assert_eq!(client.pipeline_status(), PipelineStatus::On);
    client.exit_pipeline_mode().unwrap();
    client.query("CREATE TEMP TABLE t (a int)").unwrap();
    assert_eq!(
        client
            .copy_in("COPY t FROM STDIN", &mut &b"1\n2\n"[..])
            .unwrap(),
        2
    );
    let mut out = Vec::new();
    assert_eq!(client.copy_out("COPY t TO STDOUT", &mut out).unwrap(), 2);
    assert_eq!(out, b"1\n2\n");
}

/// A reader producing `rows` rows of text COPY data on the fly.
struct Rows {
    next: u64,
    rows: u64,
    pending: Vec<u8>,
}

impl Read for Rows {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.len() < buf.len() && self.next < self.rows {
            self.next += 1;
            writeln!(self.pending, "{}\trow {}", self.next, self.next)?;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[test]
fn copy_in_and_out_round_trip() {
    let mut db = connected("c");
    table(&mut db, "c", "copy_rt", "a int, b text");
    let n = 100_000;
    let mut rows = Rows {
        next: 0,
        rows: n,
        pending: Vec::new(),
    };
    assert_eq!(
        db.copy_in("c", "COPY copy_rt FROM STDIN", &mut rows)
            .unwrap(),
        n
    );
    // Zero rows.
    assert_eq!(
        db.copy_in("c", "COPY copy_rt FROM STDIN", &mut io::empty())
            .unwrap(),
        0
    );
    let mut out = Vec::new();
    let got = db
        .copy_out(
            "c",
            "COPY (SELECT * FROM copy_rt ORDER BY a) TO STDOUT",
            &mut out,
        )
        .unwrap();
    assert_eq!(got, n);
    let mut expected = Vec::new();
    Rows {
        next: 0,
        rows: n,
        pending: Vec::new(),
    }
    .read_to_end(&mut expected)
    .unwrap();
    assert!(out == expected, "the data came back as it went in");
    // CSV with a header, and binary: header, trailer and NULL round trip.
    let mut csv = Vec::new();
    db.copy_out(
        "c",
        "COPY (SELECT 1 AS a, NULL::text AS b) TO STDOUT (FORMAT csv, HEADER)",
        &mut csv,
    )
    .unwrap();
    assert_eq!(csv, b"a,b\n1,\n");
    let mut binary = Vec::new();
    db.copy_out(
        "c",
        "COPY (SELECT 7::int, NULL::text) TO STDOUT (FORMAT binary)",
        &mut binary,
    )
    .unwrap();
    assert!(binary.starts_with(b"PGCOPY\n\xff\r\n\0"));
    table(&mut db, "c", "copy_bin", "a int, b text");
    assert_eq!(
        db.copy_in(
            "c",
            "COPY copy_bin FROM STDIN (FORMAT binary)",
            &mut &binary[..]
        )
        .unwrap(),
        1
    );
    let r = db.query("c", "SELECT a, b IS NULL FROM copy_bin").unwrap();
    assert_eq!(r.rows().unwrap().get(0, 0), Some("7"));
    assert_eq!(r.rows().unwrap().get(0, 1), Some("t"));
}

/// A reader that fails after some data.
struct Failing(usize);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        self.0 -= 1;
        let row = b"1\n";
        buf[..row.len()].copy_from_slice(row);
        Ok(row.len())
    }
}

#[test]
fn copy_errors_leave_the_connection_usable() {
    let mut db = connected("c");
    table(&mut db, "c", "copy_err", "a int");
    // A reader error: CopyFail with its text, the server's 57014.
    let e = db
        .copy_in("c", "COPY copy_err FROM STDIN", &mut Failing(3))
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED));
    assert_eq!(e.message(), "COPY from stdin failed: disk on fire");
    assert_eq!(
        value(&db.query("c", "SELECT count(*) FROM copy_err").unwrap()),
        Some("0")
    );
    // A bad row: the server's error with its SQLSTATE.
    let e = db
        .copy_in("c", "COPY copy_err FROM STDIN", &mut &b"1\nx\n3\n"[..])
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::INVALID_TEXT_REPRESENTATION));
    // A bad row early in a long stream: the error stops the COPY.
    let mut rows = Rows {
        next: 0,
        rows: 1_000_000,
        pending: b"not a number\n".to_vec(),
    };
    let e = db
        .copy_in("c", "COPY copy_err FROM STDIN", &mut rows)
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::INVALID_TEXT_REPRESENTATION));
    // An error in the middle of a COPY TO STDOUT: the rows before it were written.
    let mut out = Vec::new();
    let e = db
        .copy_out(
            "c",
            "COPY (SELECT 1/(g-5) FROM generate_series(1,10) g) TO STDOUT",
            &mut out,
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::DIVISION_BY_ZERO));
    // A statement that is not the matching COPY.
    let e = db.copy_in("c", "SELECT 1", &mut io::empty()).unwrap_err();
    assert_eq!(
        e.message(),
        "copy_in: the statement is not a COPY FROM STDIN"
    );
    assert!(
        db.copy_out("c", "COPY copy_err FROM STDIN", &mut Vec::new())
            .is_err()
    );
    assert!(
        db.copy_in("c", "COPY copy_err TO STDOUT", &mut io::empty())
            .is_err()
    );
    assert!(db.copy_out("c", "SELECT 1", &mut Vec::new()).is_err());
    // A failing writer: Err carrying it, the rest drained.
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("pipe closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let e = db
        .copy_out(
            "c",
            "COPY (SELECT g FROM generate_series(1, 100000) g) TO STDOUT",
            &mut Broken,
        )
        .unwrap_err();
    assert!(e.message().contains("pipe closed"), "{e}");
    // COPY sent with send_query: dblink's behaviour, no wedge, the text names copy_in.
    db.send_query("c", "COPY copy_err FROM STDIN").unwrap();
    let e = db.get_result("c").unwrap_err();
    assert!(e.message().contains("copy_in"), "{e}");
    end(&mut db, "c");
    // COPY in pipeline mode is refused.
    db.enter_pipeline_mode("c").unwrap();
    assert!(
        db.copy_in("c", "COPY copy_err FROM STDIN", &mut io::empty())
            .is_err()
    );
    db.exit_pipeline_mode("c").unwrap();
    assert_eq!(
        value(&db.query("c", "SELECT 'usable'").unwrap()),
        Some("usable")
    );
}

/// A long COPY on one connection while another has a large result in flight: both complete (the
/// COPY's loop dispatches every connection's events).
#[test]
fn copy_and_a_query_on_another_connection_both_complete() {
    let mut db = connected("copy");
    db.connect("other", &trust()).unwrap();
    table(&mut db, "copy", "copy_other", "a int, b text");
    db.send_query(
        "other",
        "SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g",
    )
    .unwrap();
    let mut rows = Rows {
        next: 0,
        rows: 300_000,
        pending: Vec::new(),
    };
    assert_eq!(
        db.copy_in("copy", "COPY copy_other FROM STDIN", &mut rows)
            .unwrap(),
        300_000
    );
    assert_eq!(result(&mut db, "other").rows().unwrap().len(), 200_000);
    end(&mut db, "other");
}

/// A pipeline whose first query streams chunked rows (reading pauses while 1 MiB of rows waits to be
/// taken) followed by 100,000 more queries sent before any result is taken: no deadlock, the output
/// waits in memory until the caller takes rows, and then everything completes.
#[test]
fn chunked_backpressure_inside_a_long_pipeline_does_not_deadlock() {
    let mut db = connected("c");
    db.enter_pipeline_mode("c").unwrap();
    db.send_query_chunked(
        "c",
        "SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g",
        1000,
    )
    .unwrap();
    let n = 100_000u32;
    for i in 0..n {
        db.send_query_params("c", "SELECT $1::int", &[Some(&i.to_string())])
            .unwrap();
    }
    db.pipeline_sync("c").unwrap();
    let mut rows = 0;
    while let Some(r) = db.get_result("c").unwrap() {
        rows += r.rows().unwrap().len();
    }
    assert_eq!(rows, 200_000);
    for i in 0..n {
        assert_eq!(value(&result(&mut db, "c")), Some(i.to_string().as_str()));
        end(&mut db, "c");
    }
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
}

/// libpq_pipeline `prepared`: a statement prepared inside a pipeline, then its result's column
/// types (libpq reads them with PQsendDescribePrepared; pgdblink has no describe call, so the
/// statement is executed and its RowDescription read), and the columns of a cursor DECLAREd in a
/// transaction (libpq: PQsendDescribePortal; here a FETCH from it inside the pipeline).
#[test]
fn prepared() {
    const INT4: u32 = 23;
    const TEXT: u32 = 25;
    const NUMERIC: u32 = 1700;
    const INTERVAL: u32 = 1186;
    let mut db = connected("c");
    db.enter_pipeline_mode("c").unwrap();
    db.send_prepare(
        "c",
        "select_one",
        "SELECT $1::int4, '42', $1::numeric, interval '1 sec'",
    )
    .unwrap();
    db.send_query_prepared("c", "select_one", &[Some("7")])
        .unwrap();
    db.pipeline_sync("c").unwrap();
    assert_eq!(result(&mut db, "c"), QueryResult::Command(String::new()));
    end(&mut db, "c");
    let r = result(&mut db, "c");
    let rows = r.rows().expect("rows");
    let types: Vec<u32> = rows.columns().iter().map(|c| c.type_oid()).collect();
    assert_eq!(types, [INT4, TEXT, NUMERIC, INTERVAL]);
    let values: Vec<Option<&str>> = (0..4).map(|c| rows.get(0, c)).collect();
    assert_eq!(values, [Some("7"), Some("42"), Some("7"), Some("00:00:01")]);
    end(&mut db, "c");
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();

    db.exec("c", "BEGIN").unwrap();
    db.exec("c", "DECLARE cursor_one CURSOR FOR SELECT 1")
        .unwrap();
    db.enter_pipeline_mode("c").unwrap();
    db.send_query_params("c", "FETCH ALL FROM cursor_one", &[])
        .unwrap();
    db.pipeline_sync("c").unwrap();
    let r = result(&mut db, "c");
    let rows = r.rows().expect("rows");
    assert_eq!(rows.columns()[0].type_oid(), INT4);
    assert_eq!(rows.get(0, 0), Some("1"));
    end(&mut db, "c");
    sync(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
    db.exec("c", "COMMIT").unwrap();
}

/// libpq_pipeline `pipeline_idle`: results through flush requests with no sync at all; exit refused
/// while a query is pending and allowed once its results are taken (no sync needed); no notices.
/// Then a WARNING in the middle of a result set: it arrives as a notice, the result is intact, and
/// pipeline mode can be left right after the result.
#[test]
fn pipeline_idle() {
    let mut db = connected("c");
    db.enter_pipeline_mode("c").unwrap();
    db.send_query_params("c", "SELECT 1", &[]).unwrap();
    db.send_flush_request("c").unwrap();
    assert_eq!(value(&result(&mut db, "c")), Some("1"));
    end(&mut db, "c");
    db.send_query_params("c", "SELECT 2", &[]).unwrap();
    let e = db.exit_pipeline_mode("c").unwrap_err();
    assert!(e.message().starts_with("cannot exit pipeline mode"), "{e}");
    db.send_flush_request("c").unwrap();
    assert_eq!(value(&result(&mut db, "c")), Some("2"));
    end(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::Off);
    assert!(db.take_notices("c").unwrap().is_empty());

    // A WARNING in the middle of a result set.
    db.enter_pipeline_mode("c").unwrap();
    db.send_query_params("c", "SELECT pg_catalog.pg_advisory_unlock(1,1)", &[])
        .unwrap();
    db.send_flush_request("c").unwrap();
    assert_eq!(value(&result(&mut db, "c")), Some("f"));
    // libpq could leave pipeline mode right here, before the end marker is read (as
    // `pipeline_idle_exit_before_the_end_marker` does); taking the end marker first works too.
    end(&mut db, "c");
    db.exit_pipeline_mode("c").unwrap();
    let notices = db.take_notices("c").unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].severity(), Some("WARNING"));
    assert_eq!(
        notices[0].message(),
        "you don't own a lock of type ExclusiveLock"
    );
    // The connection goes on normally.
    let r = db.query("c", "SELECT 'after'").unwrap();
    assert_eq!(value(&r), Some("after"));
}

/// libpq_pipeline `pipeline_idle`, second part, exactly as libpq does it: PQexitPipelineMode
/// succeeds right after the last result is taken, before the NULL that ends it (libpq makes that
/// NULL up when idle; it is not an uncollected result).
#[test]
fn pipeline_idle_exit_before_the_end_marker() {
    let mut db = connected("c");
    db.enter_pipeline_mode("c").unwrap();
    db.send_query_params("c", "SELECT 1", &[]).unwrap();
    db.send_flush_request("c").unwrap();
    assert_eq!(value(&result(&mut db, "c")), Some("1"));
    db.exit_pipeline_mode("c").unwrap();
    assert_eq!(db.pipeline_status("c").unwrap(), PipelineStatus::Off);
    assert!(db.get_result("c").unwrap().is_none());
    let r = db.query("c", "SELECT 'after'").unwrap();
    assert_eq!(value(&r), Some("after"));
}

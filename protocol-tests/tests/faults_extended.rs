//! Faults of pipelines and COPY that a real server cannot be made to produce, from the scripted fake
//! server: a server that stops reading in the middle of a pipeline, errors and dropped connections in
//! the middle of a COPY, CopyData outside COPY. Each gives a clear `Err`, no panic, no hang, bounded
//! memory, and the named connection to the real cluster in the same `Dblink` keeps working.
//!
//! Each scenario runs in `fault_scenario` (a time bound on the whole, [`BOUND`] unless said, and
//! the keeper within its budgets afterwards) and checks the bytes the faulty connection holds
//! (`assert_bounded`: its budgets plus one message) after the fault and before it disconnects.

use std::io::{self, Read};
use std::time::Duration;

use pgdblink::driver::OUTPUT_THRESHOLD;
use pgdblink::{Dblink, QueryResult, sqlstate};
use protocol_tests::fake_server::{FakeServer, Step, select_1_result, trust_startup};
use protocol_tests::helpers::{assert_bounded, fault_scenario};
use protocol_tests::wire;

/// How long a scenario may take.
const BOUND: Duration = Duration::from_secs(3);

/// The script of a trust session that runs `steps`, then answers a `SELECT 1`, then reads the
/// client's Terminate.
fn select_1_after<const N: usize>(steps: [Step; N]) -> Vec<Step> {
    let mut script = vec![Step::ExpectStartup, Step::Send(trust_startup())];
    script.extend(steps);
    script.extend([
        Step::Expect(b'Q'),
        Step::Send(select_1_result()),
        Step::Expect(b'X'),
        Step::Close,
    ]);
    script
}

/// `SELECT 1` on the fake connection answers 1 (and it holds within its budgets before and after).
fn assert_select_1(db: &mut Dblink) {
    assert_bounded(db, "fake");
    let r = db.query("fake", "SELECT 1").unwrap();
    assert_eq!(r.rows().unwrap().get(0, 0), Some("1"));
    assert_bounded(db, "fake");
}

/// Checks the bytes the fake connection holds, closes it, and checks the server's script ran to
/// its end (`fault_scenario` checks the keeper).
fn end(db: &mut Dblink, server: FakeServer) {
    assert_bounded(db, "fake");
    db.disconnect("fake").unwrap();
    server.finish();
}

/// A CopyInResponse (`G`) or CopyOutResponse (`H`) of one text column.
fn copy_response(kind: u8) -> Vec<u8> {
    let mut out = Vec::new();
    wire::message(&mut out, kind, &wire::Body::default().u8(0).i16(1).i16(0).0);
    out
}

fn copy_in_response() -> Vec<u8> {
    copy_response(b'G')
}

fn copy_out_response() -> Vec<u8> {
    copy_response(b'H')
}

fn error(code: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::error_fields(
        &mut out,
        b'E',
        &[
            (b'S', "ERROR"),
            (b'V', "ERROR"),
            (b'C', code),
            (b'M', message),
        ],
    );
    out
}

/// Endless COPY data.
struct Endless;

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for chunk in buf.chunks_mut(2) {
            chunk.copy_from_slice(&b"1\n"[..chunk.len()]);
        }
        Ok(buf.len())
    }
}

/// A server that stops reading in the middle of a pipeline: the client's sends block on a full
/// socket; no deadlock (it keeps reading, and sees the server close), and the client holds at most
/// its output threshold unsent, whatever the number of queries queued.
#[test]
fn fault_server_stops_reading_mid_pipeline() {
    fault_scenario(Duration::from_secs(6), |db| {
        let server = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Send(trust_startup()),
            // Read nothing: the socket buffers fill, then the server goes away.
            Step::AwaitClient,
            Step::Sleep(Duration::from_secs(2)),
            Step::Close,
        ]);
        db.connect("fake", &server.conninfo("")).unwrap();
        db.enter_pipeline_mode("fake").unwrap();
        let mut sent = 0u64;
        let e = loop {
            match db.send_query_params("fake", "SELECT $1", &[Some("0123456789")]) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            let unsent = db.conn("fake").unwrap().pending_output().len();
            assert_bounded(db, "fake");
            assert!(
                unsent <= OUTPUT_THRESHOLD + 100,
                "{unsent} bytes unsent after {sent} queries"
            );
            assert!(sent < 10_000_000, "the server never went away");
        };
        assert!(sent > 1000, "only {sent} queries sent");
        assert_eq!(e.message(), "no connection to the server");
        assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE));
        // The first query in flight gets the lost connection as its result.
        let e = db.get_result("fake").unwrap_err();
        assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE));
        end(db, server);
    });
}

/// A server error in the middle of a COPY FROM STDIN (after the data, as PostgreSQL reports a bad
/// row): the error with its SQLSTATE, and the connection is usable.
#[test]
fn fault_server_error_mid_copy_in() {
    fault_scenario(BOUND, |db| {
        let mut answer = error("22P02", "invalid input syntax for type integer: \"x\"");
        wire::ready_for_query(&mut answer, b'I');
        let server = FakeServer::single(select_1_after([
            Step::Expect(b'Q'),
            Step::Send(copy_in_response()),
            Step::Expect(b'd'),
            Step::Expect(b'c'),
            Step::Send(answer),
        ]));
        db.connect("fake", &server.conninfo("")).unwrap();
        let e = db
            .copy_in("fake", "COPY t FROM STDIN", &mut &b"x\n"[..])
            .unwrap_err();
        assert_eq!(e.code(), Some(sqlstate::INVALID_TEXT_REPRESENTATION));
        assert_select_1(db);
        end(db, server);
    });
}

/// A server error in the middle of a COPY TO STDOUT: the rows before it are written, the error has
/// its SQLSTATE, the connection is usable.
#[test]
fn fault_server_error_mid_copy_out() {
    fault_scenario(BOUND, |db| {
        let mut answer = copy_out_response();
        for row in [&b"1\n"[..], b"2\n"] {
            wire::message(&mut answer, b'd', row);
        }
        answer.extend(error("22012", "division by zero"));
        wire::ready_for_query(&mut answer, b'I');
        let server = FakeServer::single(select_1_after([Step::Expect(b'Q'), Step::Send(answer)]));
        db.connect("fake", &server.conninfo("")).unwrap();
        let mut out = Vec::new();
        let e = db
            .copy_out("fake", "COPY t TO STDOUT", &mut out)
            .unwrap_err();
        assert_eq!(e.code(), Some(sqlstate::DIVISION_BY_ZERO));
        assert_eq!(out, b"1\n2\n");
        assert_select_1(db);
        end(db, server);
    });
}

/// The connection dropped in the middle of a COPY FROM STDIN fed by an endless reader: 08006, no
/// hang.
#[test]
fn fault_connection_dropped_mid_copy_in() {
    fault_scenario(BOUND, |db| {
        let server = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Send(trust_startup()),
            Step::Expect(b'Q'),
            Step::Send(copy_in_response()),
            Step::Expect(b'd'),
            Step::Close,
        ]);
        db.connect("fake", &server.conninfo("")).unwrap();
        let e = db
            .copy_in("fake", "COPY t FROM STDIN", &mut Endless)
            .unwrap_err();
        assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE));
        assert!(e.is_closed());
        end(db, server);
    });
}

/// The connection dropped in the middle of a COPY TO STDOUT: the rows before it, then 08006.
#[test]
fn fault_connection_dropped_mid_copy_out() {
    fault_scenario(BOUND, |db| {
        let mut answer = copy_out_response();
        wire::message(&mut answer, b'd', b"1\n");
        let server = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Send(trust_startup()),
            Step::Expect(b'Q'),
            Step::Send(answer),
            Step::Close,
        ]);
        db.connect("fake", &server.conninfo("")).unwrap();
        let mut out = Vec::new();
        let e = db
            .copy_out("fake", "COPY t TO STDOUT", &mut out)
            .unwrap_err();
        assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE));
        assert_eq!(out, b"1\n");
        end(db, server);
    });
}

/// CopyData and CopyDone outside COPY, in the middle of a result and while idle: dropped inside a
/// query (as libpq does), a notice while idle; the results are intact.
#[test]
fn fault_copy_data_outside_copy() {
    fault_scenario(BOUND, |db| {
        let mut answer = Vec::new();
        wire::row_description(&mut answer, &[("a", 23)]);
        wire::message(&mut answer, b'd', b"stray\n");
        wire::data_row(&mut answer, &[Some(b"1")]);
        wire::message(&mut answer, b'c', &[]);
        wire::command_complete(&mut answer, "SELECT 1");
        wire::ready_for_query(&mut answer, b'I');
        wire::message(&mut answer, b'd', b"idle\n");
        let server = FakeServer::single(select_1_after([Step::Expect(b'Q'), Step::Send(answer)]));
        db.connect("fake", &server.conninfo("")).unwrap();
        let r = db.query("fake", "SELECT 1").unwrap();
        let rows = r.rows().unwrap();
        assert_eq!((rows.len(), rows.get(0, 0)), (1, Some("1")));
        assert_select_1(db);
        let notices = db.take_notices("fake").unwrap();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(
            notices[0].message(),
            "message type 0x64 arrived from server while idle"
        );
        end(db, server);
    });
}

/// A pipeline whose server answers a Sync with an error (a deferred constraint failing at the
/// implicit COMMIT): the error, then the sync point, the pipeline usable after.
#[test]
fn fault_error_answering_a_sync() {
    fault_scenario(BOUND, |db| {
        let mut answer = Vec::new();
        wire::message(&mut answer, b'1', &[]);
        wire::message(&mut answer, b'2', &[]);
        wire::message(&mut answer, b'n', &[]);
        wire::command_complete(&mut answer, "INSERT 0 1");
        answer.extend(error(
            "23505",
            "duplicate key value violates unique constraint \"t_pkey\"",
        ));
        wire::ready_for_query(&mut answer, b'I');
        let server = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Send(trust_startup()),
            Step::Expect(b'P'),
            Step::Expect(b'B'),
            Step::Expect(b'D'),
            Step::Expect(b'E'),
            Step::Expect(b'S'),
            Step::Send(answer),
            Step::Expect(b'X'),
            Step::Close,
        ]);
        db.connect("fake", &server.conninfo("")).unwrap();
        db.enter_pipeline_mode("fake").unwrap();
        db.send_query("fake", "INSERT INTO t VALUES (1)").unwrap();
        db.pipeline_sync("fake").unwrap();
        assert_eq!(
            db.get_result("fake").unwrap(),
            Some(QueryResult::Command("INSERT 0 1".into()))
        );
        assert_bounded(db, "fake");
        assert_eq!(db.get_result("fake").unwrap(), None);
        let e = db.get_result("fake").unwrap_err();
        assert_eq!(e.code(), Some(sqlstate::UNIQUE_VIOLATION));
        assert_eq!(
            db.get_result("fake").unwrap(),
            Some(QueryResult::PipelineSync)
        );
        assert_eq!(db.get_result("fake").unwrap(), None);
        db.exit_pipeline_mode("fake").unwrap();
        end(db, server);
    });
}

//! Fault injection in every backend message type: a scripted fake server
//! (`protocol_tests::fake_server`, whose scripts check what the client sends) answers a query with a
//! message of each type carrying a huge declared length, cut short by the server closing, or a
//! garbage body. Each gives a clear `Err` with its code and exact text, in bounded time, without
//! waiting for (or allocating) a declared body, and the other named connection of the same `Dblink`
//! (`keeper`, to the real throwaway cluster) keeps working. Startup faults are in
//! `faults_startup.rs`.
//!
//! Each test loops over the 24 backend message types (three tests, 72 faults). Every fault asserts
//! its outcome, the bytes the connection holds after every result (`held_bytes` within its budgets
//! plus one message) and its time ([`BOUND`]); every test asserts the time of its loop and the
//! keeper's budgets, and the huge declared lengths run again in a child process whose peak
//! resident set and peak virtual size stay far below the 2 GiB declared (nothing reserved).

use std::time::Duration;

use pgdblink::{Dblink, Error, QueryResult, sqlstate};
use protocol_tests::fake_server::{FakeServer, Step, trust_startup};
use protocol_tests::helpers::{
    assert_bounded, fault_scenario, in_child, report_child_peaks, within,
};
use protocol_tests::wire;

const LOST: &str = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.";

/// How long any fault here may take to be reported.
const BOUND: Duration = Duration::from_secs(3);

/// How long a loop over every message type may take.
const LOOP_BOUND: Duration = Duration::from_secs(40);

/// The peak resident set of a child process running a loop, in KiB.
const CHILD_RSS_KIB: u64 = 64 << 10;
/// The peak virtual size of a child process running a loop, in KiB: half the declared length.
const CHILD_VM_KIB: u64 = 1 << 20;

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::message(&mut out, tag, body);
    out
}

/// Startup, then `then` after the StartupMessage.
fn after_startup(then: Vec<Step>) -> Vec<Step> {
    let mut script = vec![Step::ExpectStartup];
    script.extend(then);
    script
}

/// Every backend message type byte.
const TAGS: &[u8] = b"RKvSZTDCIEN123nstGHWdcVA";

/// Connects `fake` (trust), sends a query, lets the server answer `answer` then run `then`; returns
/// every result up to the end marker, within [`BOUND`], checking the bytes held after each.
fn query_fault(db: &mut Dblink, answer: Vec<u8>, then: Step) -> Vec<Result<QueryResult, Error>> {
    let server = FakeServer::single(after_startup(vec![
        Step::Send(trust_startup()),
        Step::Expect(b'Q'),
        Step::Send(answer),
        then,
    ]));
    db.connect("fake", &server.conninfo("")).expect("connects");
    let results = within(BOUND, || {
        db.send_query("fake", "SELECT 1").unwrap();
        let mut results = Vec::new();
        loop {
            let r = db.get_result("fake");
            assert_bounded(db, "fake");
            match r {
                Ok(None) => break,
                Ok(Some(r)) => results.push(Ok(r)),
                Err(e) => results.push(Err(e)),
            }
            assert!(results.len() < 10, "no end marker");
        }
        results
    });
    db.disconnect("fake").unwrap();
    server.finish();
    results
}

/// The last result, which must be an error.
fn last_error(results: &[Result<QueryResult, Error>]) -> &Error {
    match results.last() {
        Some(Err(e)) => e,
        other => panic!("expected an error last, got {other:?}"),
    }
}

#[test]
fn fault_every_message_type_with_a_huge_declared_length() {
    let name = "fault_every_message_type_with_a_huge_declared_length";
    if let Some(peaks) = in_child(name, CHILD_RSS_KIB, CHILD_VM_KIB) {
        eprintln!("{name}: child peaks {peaks:?}");
        return;
    }
    fault_scenario(LOOP_BOUND, |db| {
        for &tag in TAGS {
            let mut header = vec![tag];
            header.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
            let results = query_fault(db, header, Step::Hang(Duration::from_millis(300)));
            let e = last_error(&results);
            assert_eq!(
                e.message(),
                format!(
                    "lost synchronization with server: got message type \"{}\", length 2147483647",
                    tag as char
                )
            );
            assert_eq!(e.code(), Some(sqlstate::PROTOCOL_VIOLATION));
            assert!(e.is_closed());
        }
    });
    report_child_peaks();
}

#[test]
fn fault_every_message_type_truncated_by_the_server_closing() {
    fault_scenario(LOOP_BOUND, |db| {
        for &tag in TAGS {
            // 1000 bytes announced, 10 sent.
            let mut cut = vec![tag];
            cut.extend_from_slice(&1004u32.to_be_bytes());
            cut.extend_from_slice(&[0; 10]);
            let results = query_fault(db, cut, Step::Close);
            let e = last_error(&results);
            assert_eq!(
                e.message(),
                "server closed the connection in the middle of a message",
                "{}",
                tag as char
            );
            assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE));
        }
    });
}

#[test]
fn fault_every_message_type_with_a_garbage_body() {
    fault_scenario(LOOP_BOUND, |db| {
        let short = |tag: char, what: &str| {
            format!("insufficient data in \"{tag}\" message: {what} runs past the end")
        };
        let invalid = |tag: char, what: &str| format!("invalid \"{tag}\" message: {what}");
        let extra = |tag: char| {
            format!(
                "message contents do not agree with length in message type \"{tag}\" (3 extra bytes)"
            )
        };
        for &tag in TAGS {
            let results = query_fault(db, message(tag, b"\xff\xff\xff"), Step::Close);
            let e = last_error(&results);
            let t = tag as char;
            let expected = match t {
                'R' => short(t, "authentication code"),
                'K' | 'A' => short(t, "process id"),
                'v' => short(t, "newest minor version"),
                'V' => short(t, "result length"),
                'S' => invalid(t, "parameter name is not NUL-terminated"),
                'Z' => invalid(t, "bad transaction status"),
                'T' | 'D' => invalid(t, "bad field count"),
                'C' => invalid(t, "command tag is not NUL-terminated"),
                'E' | 'N' => invalid(t, "field value is not NUL-terminated"),
                't' => invalid(t, "bad parameter count"),
                'G' | 'H' | 'W' => invalid(t, "bad column count"),
                'I' | '1' | '2' | '3' | 'n' | 's' | 'c' => extra(t),
                // CopyData outside a COPY is dropped, as libpq drops it: the close is what ends it.
                'd' => LOST.to_owned(),
                _ => unreachable!(),
            };
            assert_eq!(e.message(), expected, "{t}");
            let code = if t == 'd' {
                sqlstate::CONNECTION_FAILURE
            } else {
                sqlstate::PROTOCOL_VIOLATION
            };
            assert_eq!(e.code(), Some(code), "{t}");
            assert!(e.is_closed());
        }
    });
}

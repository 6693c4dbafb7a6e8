//! Fault injection: a scripted fake server (`protocol_tests::fake_server`) does what a real server
//! cannot be made to do. Every fault must give a clear `Err` (exact texts asserted), no panic, no hang
//! and no unbounded memory, and every other named connection in the same `Dblink` (one to the real
//! throwaway cluster, opened before the fault) must keep working.
//!
//! Each scenario runs in `fault_scenario`: its outcome (exact texts and codes), the bytes the faulty
//! connection holds after every call while it is registered (`assert_bounded`: its budgets plus one
//! message) or, once a failed connect dropped its name, the keeper's, a time bound on the whole
//! scenario ([`BOUND`] unless said), and the huge declared length again in a child process whose
//! peaks show nothing was reserved for it.

use std::time::{Duration, Instant};

use pgdblink::{Dblink, Error, QueryResult, sqlstate};
use protocol_tests::fake_server::{FakeServer, Step, query_script, select_1_result, trust_startup};
use protocol_tests::helpers::{
    assert_bounded, assert_gone_keeper_bounded, assert_keeper_works, fault_scenario, in_child,
    report_child_peaks, within,
};
use protocol_tests::wire;

/// How long a scenario may take.
const BOUND: Duration = Duration::from_secs(3);

/// Takes every result of the query in flight on `name` up to the end marker, checking the bytes
/// it holds after each.
fn drain(db: &mut Dblink, name: &str) -> Vec<Result<QueryResult, Error>> {
    let mut out = Vec::new();
    loop {
        let r = db.get_result(name);
        assert_bounded(db, name);
        match r {
            Ok(None) => break,
            Ok(Some(r)) => out.push(Ok(r)),
            Err(e) => out.push(Err(e)),
        }
        assert!(out.len() < 10, "no end marker");
    }
    // The end marker is returned again.
    assert!(matches!(db.get_result(name), Ok(None)));
    out
}

/// The one error among `results`.
fn the_error(results: &[Result<QueryResult, Error>]) -> &Error {
    let errors: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "expected one error in {results:?}");
    errors[0]
}

/// Connects `name` to a fake server that answers the query with `answer` and then closes; returns
/// the results of the query.
fn query_fault(db: &mut Dblink, answer: Vec<u8>) -> Vec<Result<QueryResult, Error>> {
    let server = FakeServer::single(query_script(answer, Step::Close));
    db.connect("fake", &server.conninfo(""))
        .expect("fake connects");
    db.send_query("fake", "SELECT 1").expect("query sent");
    let results = drain(db, "fake");
    assert_bounded(db, "fake");
    // A broken connection refuses further queries, and disconnect still works.
    let e = db.send_query("fake", "SELECT 1").expect_err("closed");
    assert_eq!(e.message(), "no connection to the server");
    db.disconnect("fake").expect("disconnect");
    server.finish();
    results
}

fn assert_protocol_error(results: &[Result<QueryResult, Error>], text: &str) {
    let e = the_error(results);
    assert_eq!(e.message(), text);
    assert_eq!(e.code(), Some(sqlstate::PROTOCOL_VIOLATION));
    assert!(e.is_closed());
}

const LOST: &str = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.";

#[test]
fn fault_server_closes_at_every_byte_of_startup() {
    fault_scenario(Duration::from_secs(10), |db| {
        let startup = trust_startup();
        let started = Instant::now();
        for cut in 0..startup.len() {
            let server = FakeServer::single(vec![
                Step::ExpectStartup,
                Step::Send(startup[..cut].to_vec()),
                Step::Close,
            ]);
            let e = db
                .connect("fake", &server.conninfo(""))
                .expect_err("a cut startup fails");
            assert_eq!(
                e.code(),
                Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
                "cut at {cut}"
            );
            assert_eq!(e.message(), "could not establish connection");
            let detail = e.detail().expect("reason");
            let prefix = format!(
                "connection to server at \"127.0.0.1\", port {} failed: ",
                server.port()
            );
            assert!(detail.starts_with(&prefix), "cut at {cut}: {detail}");
            let reason = &detail[prefix.len()..];
            // Cut on a message boundary: the server just closed; inside a message: mid-message.
            assert!(
                reason == LOST
                    || reason == "server closed the connection in the middle of a message",
                "cut at {cut}: {reason}"
            );
            // A failed connect does not reserve the name.
            assert!(!db.connections().contains(&"fake".to_owned()));
            assert_gone_keeper_bounded(db, "fake");
            server.finish();
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn fault_server_closes_at_every_byte_of_result() {
    fault_scenario(Duration::from_secs(10), |db| {
        let result = select_1_result();
        for cut in 0..result.len() {
            let results = query_fault(db, result[..cut].to_vec());
            let e = the_error(&results);
            assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE), "cut at {cut}");
            assert!(e.is_closed(), "cut at {cut}");
            assert!(
                e.message() == LOST
                    || e.message() == "server closed the connection in the middle of a message",
                "cut at {cut}: {}",
                e.message()
            );
            // The rows arrive only when CommandComplete did, and before the error.
            let complete = result.len() - 6;
            if cut >= complete {
                let rows = results[0].as_ref().expect("rows first");
                assert_eq!(rows.rows().and_then(|r| r.get(0, 0)), Some("1"));
            } else {
                assert_eq!(results.len(), 1, "cut at {cut}");
            }
        }
    });
}

#[test]
fn fault_length_below_four() {
    fault_scenario(BOUND, |db| {
        let results = query_fault(db, b"T\0\0\0\x03".to_vec());
        assert_protocol_error(
            &results,
            "lost synchronization with server: got message type \"T\", length 3",
        );
    });
}

#[test]
fn fault_length_above_cap_refused_without_allocating() {
    // Again in a child process: its peak virtual size stays under the gigabyte declared.
    let name = "fault_length_above_cap_refused_without_allocating";
    if let Some(peaks) = in_child(name, 64 << 10, 1 << 20) {
        eprintln!("{name}: child peaks {peaks:?}");
        return;
    }
    fault_scenario(BOUND, |db| {
        let mut answer = Vec::new();
        wire::row_description(&mut answer, &[("x", 25)]);
        // A DataRow announcing 2^30 + 1 bytes, of which only the header is sent: the client must refuse
        // it at once rather than wait for (or allocate) a gigabyte.
        answer.extend_from_slice(b"D\x40\0\0\x01\0\x01");
        let server = FakeServer::single(query_script(answer, Step::Hang(Duration::from_secs(3))));
        db.connect("fake", &server.conninfo("")).unwrap();
        let started = Instant::now();
        db.send_query("fake", "SELECT x").unwrap();
        let results = drain(db, "fake");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waited for the body"
        );
        assert_protocol_error(
            &results,
            "lost synchronization with server: got message type \"D\", length 1073741825",
        );
        db.disconnect("fake").unwrap();
        server.finish();
    });
    report_child_peaks();
}

#[test]
fn fault_unknown_tag() {
    fault_scenario(BOUND, |db| {
        let results = query_fault(db, b"q\0\0\0\x04".to_vec());
        assert_protocol_error(
            &results,
            "unexpected response from server; first received character was \"q\"",
        );
    });
}

#[test]
fn fault_data_row_with_more_fields_than_row_description() {
    fault_scenario(BOUND, |db| {
        let mut answer = Vec::new();
        wire::row_description(&mut answer, &[("a", 25)]);
        wire::data_row(&mut answer, &[Some(b"1"), Some(b"2")]);
        wire::command_complete(&mut answer, "SELECT 1");
        wire::ready_for_query(&mut answer, b'I');
        let results = query_fault(db, answer);
        assert_protocol_error(
            &results,
            "unexpected field count in \"D\" message: 2 fields, 1 columns",
        );
    });
}

#[test]
fn fault_data_row_negative_field_length() {
    fault_scenario(BOUND, |db| {
        let mut answer = Vec::new();
        wire::row_description(&mut answer, &[("a", 25)]);
        wire::message(&mut answer, b'D', &wire::Body::default().i16(1).i32(-2).0);
        let results = query_fault(db, answer);
        assert_protocol_error(&results, "invalid \"D\" message: bad field length");
    });
}

#[test]
fn fault_truncated_error_response() {
    fault_scenario(BOUND, |db| {
        // The length covers the fields, but the list's terminating NUL is missing.
        let mut answer = Vec::new();
        wire::message(&mut answer, b'E', b"SERROR\0C42000\0Mbroken");
        let results = query_fault(db, answer);
        assert_protocol_error(
            &results,
            "invalid \"E\" message: field value is not NUL-terminated",
        );
        // Cut off by the server closing in the middle of it.
        let mut full = Vec::new();
        wire::error_fields(&mut full, b'E', &[(b'S', "ERROR"), (b'M', "boom")]);
        let results = query_fault(db, full[..full.len() - 3].to_vec());
        let e = the_error(&results);
        assert_eq!(
            e.message(),
            "server closed the connection in the middle of a message"
        );
        assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE));
    });
}

#[test]
fn fault_ssl_response_followed_by_extra_bytes_refused() {
    // CVE-2021-23222: bytes after the one-byte answer to SSLRequest were not asked for (a man in the
    // middle may have injected them). Over TCP pgdblink sends SSLRequest only when SSL is required
    // (it has no TLS, so prefer/allow go plain), so `N` is refused before the injected bytes are even
    // looked at; the `ssl_response_with_extra_bytes` transcript covers the sans-IO path where `N` is
    // acceptable and the extra bytes alone cause the refusal.
    fault_scenario(BOUND, |db| {
        let mut answer = b"N".to_vec();
        answer.extend_from_slice(&trust_startup());
        let server = FakeServer::single(vec![
            Step::ExpectSslRequest,
            Step::Send(answer),
            Step::Close,
        ]);
        let conninfo = server.conninfo("sslmode=require");
        let e = db.connect("fake", &conninfo).expect_err("refused");
        assert_eq!(
            e.code(),
            Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
        );
        assert_eq!(e.message(), "could not establish connection");
        assert_eq!(
            e.detail(),
            Some(
                format!(
                    "connection to server at \"127.0.0.1\", port {} failed: server does not support SSL, but SSL was required",
                    server.port()
                )
                .as_str()
            )
        );
        assert!(!db.connections().contains(&"fake".to_owned()));
        assert_gone_keeper_bounded(db, "fake");
        // The client sent its SSLRequest (checked by the script) and nothing else: no StartupMessage
        // into the injected conversation.
        let received = server.finish();
        assert_eq!(received[0].len(), 1);
    });
}

/// Connects to a fake server that asks for SCRAM and answers with `first`; returns the connect
/// error's reason.
fn scram_fault(db: &mut Dblink, first: fn(&str) -> String, extra: Vec<Step>) -> String {
    let mut sasl = Vec::new();
    wire::authentication(&mut sasl, 10, b"SCRAM-SHA-256\0\0");
    let mut script = vec![
        Step::ExpectStartup,
        Step::Send(sasl),
        Step::ScramFirst(first),
    ];
    script.extend(extra);
    script.push(Step::Close);
    let server = FakeServer::single(script);
    let e = db
        .connect("fake", &server.conninfo("password=pencil"))
        .expect_err("refused");
    assert_eq!(
        e.code(),
        Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
    );
    assert_gone_keeper_bounded(db, "fake");
    let detail = e.detail().expect("reason").to_owned();
    let prefix = format!(
        "connection to server at \"127.0.0.1\", port {} failed: ",
        server.port()
    );
    server.finish();
    detail
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{detail}"))
        .to_owned()
}

#[test]
fn fault_scram_iteration_count_zero() {
    fault_scenario(BOUND, |db| {
        let reason = scram_fault(db, |n| format!("r={n}srv,s=c2FsdA==,i=0"), vec![]);
        assert_eq!(reason, "malformed SCRAM message (invalid iteration count)");
    });
}

#[test]
fn fault_scram_iteration_count_billion_refused_quickly() {
    fault_scenario(BOUND, |db| {
        let started = Instant::now();
        let reason = scram_fault(db, |n| format!("r={n}srv,s=c2FsdA==,i=1000000000"), vec![]);
        assert_eq!(
            reason,
            "SCRAM iteration count 1000000000 exceeds the limit of 1000000"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "ran PBKDF2");
    });
}

#[test]
fn fault_scram_nonce_without_client_prefix() {
    fault_scenario(BOUND, |db| {
        let reason = scram_fault(
            db,
            |_| "r=serveronlynonce,s=c2FsdA==,i=4096".to_owned(),
            vec![],
        );
        assert_eq!(reason, "invalid SCRAM response (nonce mismatch)");
    });
}

#[test]
fn fault_scram_bad_server_signature() {
    fault_scenario(BOUND, |db| {
        let mut fin = Vec::new();
        // Base64 of 32 zero bytes: well formed, but not the signature the password gives.
        wire::authentication(
            &mut fin,
            12,
            b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        );
        let reason = scram_fault(
            db,
            |n| format!("r={n}srv,s=c2FsdA==,i=4096"),
            vec![Step::Expect(b'p'), Step::Send(fin)],
        );
        assert_eq!(reason, "incorrect server signature");
    });
}

#[test]
fn fault_server_never_answers_connect_timeout() {
    fault_scenario(BOUND + Duration::from_secs(1), |db| {
        let server = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Hang(Duration::from_secs(4)),
        ]);
        let started = Instant::now();
        let e = db
            .connect("fake", &server.conninfo(""))
            .expect_err("timed out");
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(3),
            "{elapsed:?}"
        );
        assert_eq!(
            e.code(),
            Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
        );
        assert_eq!(
            e.detail(),
            Some(
                format!(
                    "connection to server at \"127.0.0.1\", port {} failed: timeout expired",
                    server.port()
                )
                .as_str()
            )
        );
        server.finish();
    });
}

#[test]
fn fault_cancel_never_acknowledged_times_out() {
    fault_scenario(BOUND, |db| {
        // Connection 1: a session whose query never finishes. Connection 2: the cancel socket, which the
        // server accepts and then neither answers nor closes.
        let server = FakeServer::start(vec![
            vec![
                Step::ExpectStartup,
                Step::Send(trust_startup()),
                Step::Expect(b'Q'),
                Step::Hang(Duration::from_secs(3)),
            ],
            vec![Step::ExpectCancel, Step::Hang(Duration::from_secs(3))],
        ]);
        db.connect("fake", &server.conninfo("")).unwrap();
        db.send_query("fake", "SELECT pg_sleep(100)").unwrap();
        db.set_cancel_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let e = db.cancel_query("fake").expect_err("timed out");
        assert_eq!(e.message(), "cancel request timed out");
        assert!(started.elapsed() < Duration::from_secs(1));
        // The connection's state is untouched: still busy.
        assert!(db.is_busy("fake").unwrap());
        assert_bounded(db, "fake");
        db.disconnect("fake").unwrap();
        let received = server.finish();
        // The cancel connection received exactly one 16-byte CancelRequest.
        assert_eq!(received[1].len(), 1);
        let cancel = &received[1][0];
        assert_eq!(cancel.len(), 16);
        assert_eq!(&cancel[4..8], &80_877_102u32.to_be_bytes());
        assert_eq!(&cancel[8..12], &4242u32.to_be_bytes());
    });
}

#[test]
fn fault_trickled_one_byte_at_a_time_still_works() {
    fault_scenario(BOUND, |db| {
        let pause = Duration::from_micros(300);
        let server = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Trickle(trust_startup(), pause),
            Step::Expect(b'Q'),
            Step::Trickle(select_1_result(), pause),
            // Terminate on disconnect.
            Step::Expect(b'X'),
            Step::Close,
        ]);
        db.connect("fake", &server.conninfo("")).unwrap();
        assert_eq!(
            db.conn("fake").unwrap().parameter("server_version"),
            Some("17.0")
        );
        assert_bounded(db, "fake");
        // The other connection is served while this one trickles.
        db.send_query("fake", "SELECT 1").unwrap();
        assert_keeper_works(db);
        let results = drain(db, "fake");
        assert_eq!(results.len(), 1);
        let rows = results[0].as_ref().expect("rows");
        assert_eq!(rows.rows().and_then(|r| r.get(0, 0)), Some("1"));
        assert_eq!(rows.command_tag(), "SELECT 1");
        db.disconnect("fake").unwrap();
        // Startup, the query, and Terminate on disconnect.
        assert_eq!(server.finish()[0].len(), 3);
    });
}

#[test]
fn fault_connection_reset_mid_query() {
    fault_scenario(BOUND, |db| {
        let mut partial = Vec::new();
        wire::row_description(&mut partial, &[("a", 25)]);
        // Once the client's query is on its way, the server sends part of a result, then closes without
        // reading the query: the kernel answers with a reset.
        let server = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Send(trust_startup()),
            Step::AwaitClient,
            Step::Send(partial),
            Step::Reset,
        ]);
        db.connect("fake", &server.conninfo("")).unwrap();
        db.send_query("fake", "SELECT a FROM t").unwrap();
        let results = drain(db, "fake");
        let e = the_error(&results);
        assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE));
        assert_eq!(e.message(), LOST);
        assert!(e.is_closed());
        let cause = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            cause.map(|c| c.kind()),
            Some(std::io::ErrorKind::ConnectionReset),
            "{e:?}"
        );
        assert_eq!(db.error_message("fake").unwrap().as_deref(), Some(LOST));
        db.disconnect("fake").unwrap();
        server.finish();
    });
}

/// A server that answers the startup with `startup`, takes one query and sits on it, and accepts one
/// CancelRequest on a second connection.
fn query_then_cancel(startup: Vec<u8>) -> FakeServer {
    FakeServer::start(vec![
        vec![
            Step::ExpectStartup,
            Step::Send(startup),
            Step::Expect(b'Q'),
            Step::Hang(Duration::from_secs(2)),
        ],
        vec![Step::ExpectCancel, Step::Close],
    ])
}

#[test]
fn cancel_with_protocol_3_2_key_sends_the_whole_key() {
    // A protocol 3.2 server (PostgreSQL 18 sends 32-byte keys): the CancelRequest must carry the whole
    // key, 12 + 32 bytes, and the server closing the socket completes the cancel.
    let key: Vec<u8> = (0u8..32).collect();
    let mut startup = Vec::new();
    wire::authentication(&mut startup, 0, &[]);
    wire::backend_key_data(&mut startup, 777, &key);
    wire::ready_for_query(&mut startup, b'I');
    let server = query_then_cancel(startup);
    fault_scenario(BOUND, |db| {
        db.connect("v32", &server.conninfo("max_protocol_version=3.2"))
            .unwrap();
        assert_eq!(db.conn("v32").unwrap().protocol_minor(), 2);
        db.send_query("v32", "SELECT pg_sleep(100)").unwrap();
        db.cancel_query("v32").expect("cancel delivered");
        assert_bounded(db, "v32");
        db.disconnect("v32").unwrap();
        let received = server.finish();
        let startup_packet = &received[0][0];
        assert_eq!(
            &startup_packet[4..8],
            &196_610u32.to_be_bytes(),
            "asked for 3.2"
        );
        let cancel = &received[1][0];
        assert_eq!(cancel.len(), 12 + 32);
        assert_eq!(&cancel[0..4], &44u32.to_be_bytes());
        assert_eq!(&cancel[4..8], &80_877_102u32.to_be_bytes());
        assert_eq!(&cancel[8..12], &777u32.to_be_bytes());
        assert_eq!(&cancel[12..], key.as_slice());
    });
}

#[test]
fn protocol_3_2_request_negotiated_down_to_3_0_uses_the_4_byte_key() {
    // A server older than PostgreSQL 18 answers a 3.2 StartupMessage with NegotiateProtocolVersion
    // (newest minor 0, no unrecognized options) and goes on in 3.0: the session is protocol 3.0 and
    // the CancelRequest carries the 4-byte key.
    let mut startup = Vec::new();
    wire::message(
        &mut startup,
        b'v',
        &wire::Body::default().i32(0x0003_0000).i32(0).0,
    );
    startup.extend_from_slice(&trust_startup());
    let server = query_then_cancel(startup);
    fault_scenario(BOUND, |db| {
        db.connect("v30", &server.conninfo("max_protocol_version=3.2"))
            .expect("negotiated down");
        assert_eq!(db.conn("v30").unwrap().protocol_minor(), 0);
        assert_eq!(
            db.conn("v30").unwrap().backend_key(),
            Some((4242, &[1u8, 2, 3, 4][..]))
        );
        db.send_query("v30", "SELECT pg_sleep(100)").unwrap();
        db.cancel_query("v30").expect("cancel delivered");
        assert_bounded(db, "v30");
        db.disconnect("v30").unwrap();
        let received = server.finish();
        assert_eq!(
            &received[0][0][4..8],
            &0x0003_0002u32.to_be_bytes(),
            "asked for 3.2"
        );
        let cancel = &received[1][0];
        assert_eq!(cancel.len(), 16);
        assert_eq!(&cancel[8..12], &4242u32.to_be_bytes());
        assert_eq!(&cancel[12..], &[1, 2, 3, 4]);
    });
}

#[test]
fn fake_server_dropped_unchecked_panics() {
    let server = FakeServer::single(vec![Step::ExpectStartup, Step::Close]);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(server)));
    assert!(
        dropped.is_err(),
        "an unchecked FakeServer must fail the test"
    );
}

#[test]
fn fake_server_finish_fails_when_the_client_sends_something_else() {
    // The script expects a Parse; the client sends a Query.
    let server = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::Expect(b'P'),
        Step::Close,
    ]);
    let mut db = Dblink::new();
    within(BOUND, || {
        db.connect("fake", &server.conninfo("")).expect("connects");
        db.send_query("fake", "SELECT 1").expect("sent");
        let lost = drain(&mut db, "fake");
        assert_eq!(the_error(&lost).code(), Some(sqlstate::CONNECTION_FAILURE));
        db.disconnect("fake").unwrap();
    });
    let outcome = server.join();
    let e = outcome[0].as_ref().expect_err("the script failed");
    assert!(e.starts_with("expected message type 'P', got 'Q'"), "{e}");
}

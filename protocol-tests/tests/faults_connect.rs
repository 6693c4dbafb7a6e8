//! Multi-host connecting against scripted fake servers, for what a real server cannot be made to
//! do: servers that do not report `in_hot_standby` / `default_transaction_read_only` (before
//! PostgreSQL 14) and get libpq's probe query, `57P03` at startup, silent hosts. The scripts check
//! what the client sends.
//!
//! Each scenario asserts its outcome, a time bound on the whole (`within`: [`BOUND`], or the
//! connect timeouts involved plus [`BOUND`]), and its memory: an accepted connection holds within
//! its budgets plus one message (`assert_bounded`), a rejected one keeps nothing (its name is not
//! registered).

use std::net::TcpListener;
use std::time::Duration;

use pgdblink::{Dblink, TransactionStatus, sqlstate};
use protocol_tests::fake_server::{FakeServer, Step, trust_startup};
use protocol_tests::helpers::{assert_bounded, within};
use protocol_tests::wire;

/// How long a scenario may take, beyond the connect timeouts it waits for.
const BOUND: Duration = Duration::from_secs(3);

/// A one-row, one-column answer to a probe, then ReadyForQuery.
fn probe_answer(column: &str, type_oid: u32, value: &str, tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::row_description(&mut out, &[(column, type_oid)]);
    wire::data_row(&mut out, &[Some(value.as_bytes())]);
    wire::command_complete(&mut out, tag);
    wire::ready_for_query(&mut out, b'I');
    out
}

fn show_read_only(value: &str) -> Vec<u8> {
    probe_answer("transaction_read_only", 25, value, "SHOW")
}

fn in_recovery(value: &str) -> Vec<u8> {
    probe_answer("pg_is_in_recovery", 16, value, "SELECT 1")
}

/// A session that starts (trust, no read-only/standby reports), reads the probe and answers it,
/// then reads `last` (`X` when the client rejects the server, `X` at disconnect otherwise).
fn probed(answer: Vec<u8>) -> Vec<Step> {
    vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::ReadMessage,
        Step::Send(answer),
        Step::Expect(b'X'),
    ]
}

/// The SQL of a simple Query packet (`Q`, length, text, NUL).
fn query_text(packet: &[u8]) -> &str {
    assert_eq!(packet[0], b'Q', "a simple Query");
    std::str::from_utf8(&packet[5..packet.len() - 1]).expect("UTF-8 query")
}

/// The one-line detail of a failed connect (whose name is not kept: nothing of it is held).
fn connect_error(db: &mut Dblink, name: &str, conninfo: &str) -> String {
    let e = db.connect(name, conninfo).expect_err("connect fails");
    assert_eq!(
        e.code(),
        Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
    );
    assert!(db.conn(name).is_err(), "{name} is still registered");
    e.detail().expect("libpq's reason").to_owned()
}

#[test]
fn unreported_read_only_is_probed_with_show() {
    within(BOUND, || {
        for (attrs, value, accepted) in [
            ("read-write", "off", true),
            ("read-write", "on", false),
            ("read-only", "on", true),
            ("read-only", "off", false),
        ] {
            let server = FakeServer::single(probed(show_read_only(value)));
            let conninfo = server.conninfo(&format!("target_session_attrs={attrs}"));
            let mut db = Dblink::new();
            if accepted {
                db.connect("c", &conninfo).expect("accepted");
                // The probe's results were all taken: the session is idle.
                assert_eq!(db.transaction_status("c").unwrap(), TransactionStatus::Idle);
                assert_bounded(&db, "c");
                db.disconnect("c").unwrap();
            } else {
                let text = connect_error(&mut db, "c", &conninfo);
                let want = if attrs == "read-write" {
                    "session is read-only"
                } else {
                    "session is not read-only"
                };
                assert_eq!(
                    text,
                    format!(
                        "connection to server at \"127.0.0.1\", port {} failed: {want}",
                        server.port()
                    )
                );
            }
            let received = server.finish();
            assert_eq!(
                query_text(&received[0][1]),
                "SHOW transaction_read_only",
                "{attrs}"
            );
        }
    });
}

#[test]
fn unreported_standby_is_probed_with_pg_is_in_recovery() {
    within(BOUND, || {
        for (attrs, value, accepted) in [
            ("primary", "f", true),
            ("primary", "t", false),
            ("standby", "t", true),
            ("standby", "f", false),
            ("prefer-standby", "t", true),
        ] {
            let server = FakeServer::single(probed(in_recovery(value)));
            let conninfo = server.conninfo(&format!("target_session_attrs={attrs}"));
            let mut db = Dblink::new();
            if accepted {
                db.connect("c", &conninfo).expect("accepted");
                assert_bounded(&db, "c");
                db.disconnect("c").unwrap();
            } else {
                let text = connect_error(&mut db, "c", &conninfo);
                let want = if attrs == "primary" {
                    "server is in hot standby mode"
                } else {
                    "server is not in hot standby mode"
                };
                assert!(text.ends_with(want), "{attrs}: {text}");
            }
            let received = server.finish();
            assert_eq!(
                query_text(&received[0][1]),
                "SELECT pg_catalog.pg_is_in_recovery()",
                "{attrs}"
            );
        }
    });
}

#[test]
fn prefer_standby_second_pass_takes_the_primary() {
    within(BOUND, || {
        // Pass 1 probes and rejects the primary (Terminate); pass 2 accepts it without a probe.
        let server = FakeServer::start(vec![
            probed(in_recovery("f")),
            vec![
                Step::ExpectStartup,
                Step::Send(trust_startup()),
                Step::Expect(b'X'),
            ],
        ]);
        let mut db = Dblink::new();
        db.connect("c", &server.conninfo("target_session_attrs=prefer-standby"))
            .expect("second pass accepts");
        assert_eq!(db.port("c").unwrap(), server.port());
        assert_bounded(&db, "c");
        db.disconnect("c").unwrap();
        server.finish();
    });
}

#[test]
fn any_sends_no_probe() {
    within(BOUND, || {
        let server = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Send(trust_startup()),
            Step::Expect(b'X'),
        ]);
        let mut db = Dblink::new();
        db.connect("c", &server.conninfo("target_session_attrs=any"))
            .unwrap();
        assert_bounded(&db, "c");
        db.disconnect("c").unwrap();
        server.finish();
    });
}

#[test]
fn failed_probe_moves_to_the_next_host_with_libpqs_text() {
    within(BOUND, || {
        let mut error = Vec::new();
        wire::error_fields(
            &mut error,
            b'E',
            &[
                (b'S', "ERROR"),
                (b'C', "42883"),
                (b'M', "function pg_is_in_recovery() does not exist"),
            ],
        );
        wire::ready_for_query(&mut error, b'I');
        let bad = FakeServer::single(probed(error));
        let good = FakeServer::single(probed(in_recovery("f")));
        let mut db = Dblink::new();
        let conninfo = format!(
            "host=127.0.0.1,127.0.0.1 port={},{} user=alice dbname=db1 sslmode=disable \
             target_session_attrs=primary",
            bad.port(),
            good.port()
        );
        db.connect("c", &conninfo).expect("the second host");
        assert_eq!(db.port("c").unwrap(), good.port());
        assert_bounded(&db, "c");
        db.disconnect("c").unwrap();
        bad.finish();
        good.finish();

        // Alone, the failed probe is the error: the server's line, then libpq's.
        let bad = FakeServer::single(probed({
            let mut e = Vec::new();
            wire::error_fields(&mut e, b'E', &[(b'S', "ERROR"), (b'M', "nope")]);
            wire::ready_for_query(&mut e, b'I');
            e
        }));
        let text = connect_error(
            &mut db,
            "c",
            &bad.conninfo("target_session_attrs=read-write"),
        );
        assert_eq!(
            text,
            format!(
                "connection to server at \"127.0.0.1\", port {} failed: ERROR:  nope\n\
                 \"SHOW transaction_read_only\" failed",
                bad.port()
            )
        );
        bad.finish();
    });
}

/// A FATAL at startup with this SQLSTATE.
fn startup_fatal(code: &str, message: &str) -> Vec<Step> {
    let mut out = Vec::new();
    wire::error_fields(
        &mut out,
        b'E',
        &[(b'S', "FATAL"), (b'C', code), (b'M', message)],
    );
    vec![Step::ExpectStartup, Step::Send(out), Step::Close]
}

#[test]
fn cannot_connect_now_moves_to_the_next_host() {
    within(BOUND, || {
        let starting =
            FakeServer::single(startup_fatal("57P03", "the database system is starting up"));
        let good = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Send(trust_startup()),
            Step::Expect(b'X'),
        ]);
        let mut db = Dblink::new();
        let conninfo = format!(
            "host=127.0.0.1,127.0.0.1 port={},{} user=alice dbname=db1 sslmode=disable",
            starting.port(),
            good.port()
        );
        db.connect("c", &conninfo).expect("the second host");
        assert_eq!(db.host("c").unwrap(), "127.0.0.1");
        assert_eq!(db.port("c").unwrap(), good.port());
        assert_bounded(&db, "c");
        db.disconnect("c").unwrap();
        starting.finish();
        good.finish();
    });
}

#[test]
fn authentication_failure_leaves_the_other_hosts_untried() {
    within(BOUND, || {
        // libpq: "If a connection is established successfully, but authentication fails, the
        // remaining hosts in the list are not tried."
        let refusing = FakeServer::single(startup_fatal(
            "28P01",
            "password authentication failed for user \"alice\"",
        ));
        let untried = TcpListener::bind("127.0.0.1:0").unwrap();
        untried.set_nonblocking(true).unwrap();
        let mut db = Dblink::new();
        let conninfo = format!(
            "host=127.0.0.1,127.0.0.1 port={},{} user=alice dbname=db1 sslmode=disable",
            refusing.port(),
            untried.local_addr().unwrap().port()
        );
        let text = connect_error(&mut db, "c", &conninfo);
        assert_eq!(
            text,
            format!(
                "connection to server at \"127.0.0.1\", port {} failed: FATAL:  password \
                 authentication failed for user \"alice\"",
                refusing.port()
            )
        );
        assert!(
            untried.accept().is_err(),
            "the second host was never connected to"
        );
        refusing.finish();
    });
}

#[test]
fn connect_timeout_applies_per_host() {
    within(Duration::from_secs(2) + BOUND, || {
        // Two listeners that never answer: each host gets its own connect_timeout.
        let silent: Vec<TcpListener> = (0..2)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: Vec<u16> = silent
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let mut db = Dblink::new();
        let conninfo = format!(
            "host=127.0.0.1,127.0.0.1 port={},{} user=alice dbname=db1 sslmode=disable \
             connect_timeout=1",
            ports[0], ports[1]
        );
        let text = connect_error(&mut db, "c", &conninfo);
        assert_eq!(
            text,
            format!(
                "connection to server at \"127.0.0.1\", port {} failed: timeout expired\n\
                 connection to server at \"127.0.0.1\", port {} failed: timeout expired",
                ports[0], ports[1]
            )
        );
    });
}

#[test]
fn silent_host_does_not_delay_another_connect() {
    within(Duration::from_secs(2) + BOUND, || {
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = FakeServer::single(vec![
            Step::ExpectStartup,
            Step::Send(trust_startup()),
            Step::Expect(b'X'),
        ]);
        let mut db = Dblink::new();
        db.connect_start(
            "silent",
            &format!(
                "host=127.0.0.1 port={} user=alice dbname=db1 sslmode=disable connect_timeout=2",
                silent.local_addr().unwrap().port()
            ),
        )
        .unwrap();
        db.connect_start("good", &good.conninfo("")).unwrap();
        // The good one ends first: the silent one can only end at its timeout.
        assert_eq!(db.wait(None).unwrap(), ["good"]);
        db.connect_finish("good").unwrap();
        assert_eq!(
            db.transaction_status("good").unwrap(),
            TransactionStatus::Idle
        );
        // Until then the silent one is listed and describes its attempt.
        let mut names = db.connections();
        names.sort();
        assert_eq!(names, ["good", "silent"]);
        assert_eq!(db.backend_pid("silent").unwrap(), 0);
        assert_eq!(db.wait(Some(Duration::from_secs(10))).unwrap(), ["silent"]);
        let e = db.connect_finish("silent").unwrap_err();
        assert!(
            e.detail().unwrap().ends_with("failed: timeout expired"),
            "{e}"
        );
        assert_eq!(db.connections(), ["good"]);
        assert_bounded(&db, "good");
        assert!(db.conn("silent").is_err(), "silent is still registered");
        db.disconnect("good").unwrap();
        good.finish();
    });
}

/// A host name that does not resolve reads as libpq's line, with the resolver's own text after the
/// colon (`Name or service not known` where the name does not exist; whatever the system's
/// resolver says otherwise) and without Rust's "failed to lookup address information" words.
#[test]
fn dns_failure_reads_as_libpq() {
    let mut db = Dblink::new();
    let e = db
        .connect(
            "c",
            "host=nonexistent.invalid port=5432 user=alice dbname=db1 connect_timeout=5",
        )
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
    );
    let detail = e.detail().expect("libpq's reason");
    assert!(
        detail.starts_with("could not translate host name \"nonexistent.invalid\" to address: "),
        "{detail}"
    );
    assert!(!detail.contains("failed to lookup"), "{detail}");
    assert!(!detail.contains("os error"), "{detail}");
    assert!(db.connections().is_empty());
}

//! Fault injection at startup, with libpq's texts: a scripted fake server
//! (`protocol_tests::fake_server`, whose scripts check what the client sends) plays a peer that is not
//! PostgreSQL, breaks the protocol at each startup state, negotiates the protocol badly, sends errors
//! and notices without fields, and resets the connection in every phase (startup, authentication, an
//! extended query, COPY both ways, a pipeline). Each fault gives a clear `Err` with its code and exact
//! text, in bounded time, and the other named connection of the same `Dblink` (`keeper`, to the real
//! throwaway cluster) keeps working. Faults in every message type are in `faults_messages.rs`.
//!
//! Each scenario runs in `fault_scenario`: a time bound on the whole ([`BOUND`] per connect or
//! query, more for scenarios of several), the bytes the fake connection holds while it is
//! registered (`assert_bounded`: its budgets plus one message) and, once a failed connect dropped
//! its name, the keeper's (`assert_gone_keeper_bounded`); implausible declared lengths must be
//! refused within [`REFUSED`], without waiting for the body.
//!
//! Where libpq can be run against the same fake peer (`/usr/bin/psql`, skipped when not installed),
//! the reason pgdblink gives is compared with libpq's byte for byte.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pgdblink::{Dblink, Error, sqlstate};
use protocol_tests::fake_server::{FakeServer, Step, select_1_result, trust_startup};
use protocol_tests::helpers::{
    assert_bounded, assert_gone_keeper_bounded, assert_keeper_works, fault_scenario, within,
};
use protocol_tests::wire;

const PSQL: &str = "/usr/bin/psql";

const LOST: &str = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.";

/// How long any fault here may take to be reported.
const BOUND: Duration = Duration::from_secs(3);

/// How long a message of implausible declared length may take to be refused (the server then
/// stays silent for [`BOUND`]: waiting for the body would fail the test).
const REFUSED: Duration = Duration::from_secs(1);

/// Connects `fake` to a server running `script` (conninfo plus `extra`), which must fail; checks the
/// dblink error (08001, `could not establish connection`, libpq's prefix in the detail), that the
/// name is not kept, that the connect failed within [`BOUND`], that the script ran to its end and
/// that the keeper still works and holds within its budgets; returns the reason after the prefix.
fn startup_fault(db: &mut Dblink, script: Vec<Step>, extra: &str) -> String {
    let server = FakeServer::single(script);
    let e = within(BOUND, || {
        db.connect("fake", &server.conninfo(extra))
            .expect_err("the connect fails")
    });
    assert_eq!(
        e.code(),
        Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
    );
    assert_eq!(e.message(), "could not establish connection");
    let detail = e.detail().expect("a reason");
    let prefix = format!(
        "connection to server at \"127.0.0.1\", port {} failed: ",
        server.port()
    );
    // An empty reason (libpq's, for an empty error text) leaves no space after the colon.
    let reason = match detail.strip_prefix(&prefix) {
        Some(reason) => reason,
        None if detail == prefix.trim_end() => "",
        None => panic!("{detail}"),
    };
    assert!(!db.connections().contains(&"fake".to_owned()));
    assert_gone_keeper_bounded(db, "fake");
    server.finish();
    assert_keeper_works(db);
    reason.to_owned()
}

/// The reason libpq (psql) gives against a fake server running `script`, or `None` when psql is not
/// installed.
fn libpq_reason(script: Vec<Step>) -> Option<String> {
    if !Path::new(PSQL).exists() {
        eprintln!("{PSQL} not installed: not comparing with libpq");
        return None;
    }
    let server = FakeServer::single(script);
    let conninfo = format!(
        "host=127.0.0.1 port={} user=alice dbname=db1 sslmode=disable gssencmode=disable connect_timeout=2",
        server.port()
    );
    let port = server.port();
    let out = Command::new(PSQL)
        .args(["-X", "-d", &conninfo, "-c", "SELECT 1"])
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .output()
        .expect("run psql");
    server.finish();
    let stderr = String::from_utf8(out.stderr).expect("UTF-8");
    let prefix =
        format!("psql: error: connection to server at \"127.0.0.1\", port {port} failed: ");
    let reason = stderr
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{stderr}"));
    Some(reason.strip_suffix('\n').unwrap_or(reason).to_owned())
}

/// Checks pgdblink's reason for `script` and, when psql is there, libpq's, against `expected`.
fn startup_fault_like_libpq(script: Vec<Step>, expected: &str) {
    fault_scenario(BOUND, |db| {
        assert_eq!(startup_fault(db, script.clone(), ""), expected);
    });
    if let Some(libpq) = libpq_reason(script) {
        assert_eq!(libpq, expected, "libpq's text");
    }
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::message(&mut out, tag, body);
    out
}

fn auth(code: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::authentication(&mut out, code, payload);
    out
}

fn notice(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::error_fields(
        &mut out,
        b'N',
        &[
            (b'S', "NOTICE"),
            (b'V', "NOTICE"),
            (b'C', "00000"),
            (b'M', text),
        ],
    );
    out
}

/// Startup, then `then` after the StartupMessage.
fn after_startup(then: Vec<Step>) -> Vec<Step> {
    let mut script = vec![Step::ExpectStartup];
    script.extend(then);
    script
}

// ----- a peer that is not PostgreSQL; messages out of place before authentication -----

#[test]
fn fault_startup_http_peer_is_not_postgresql() {
    startup_fault_like_libpq(
        after_startup(vec![
            Step::Send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec()),
            Step::Close,
        ]),
        "expected authentication request from server, but received H",
    );
}

#[test]
fn fault_startup_parameter_status_before_authentication() {
    let mut status = Vec::new();
    wire::parameter_status(&mut status, "server_version", "17.0");
    startup_fault_like_libpq(
        after_startup(vec![Step::Send(status), Step::Close]),
        "expected authentication request from server, but received S",
    );
}

#[test]
fn fault_startup_ready_for_query_before_authentication() {
    let mut ready = Vec::new();
    wire::ready_for_query(&mut ready, b'I');
    startup_fault_like_libpq(
        after_startup(vec![Step::Send(ready), Step::Close]),
        "expected authentication request from server, but received Z",
    );
}

#[test]
fn fault_startup_data_row_during_sasl_exchange() {
    fault_scenario(BOUND, |db| {
        let mut row = Vec::new();
        wire::data_row(&mut row, &[Some(b"1")]);
        let reason = startup_fault(
            db,
            after_startup(vec![
                Step::Send(auth(10, b"SCRAM-SHA-256\0\0")),
                Step::Expect(b'p'),
                Step::Send(row),
                Step::Close,
            ]),
            "password=pencil",
        );
        assert_eq!(
            reason,
            "expected authentication request from server, but received D"
        );
    });
}

#[test]
fn fault_startup_cleartext_request_during_sasl_exchange_gets_no_password() {
    fault_scenario(BOUND, |db| {
        let reason = startup_fault(
            db,
            after_startup(vec![
                Step::Send(auth(10, b"SCRAM-SHA-256\0\0")),
                Step::Expect(b'p'),
                Step::Send(auth(3, b"")),
                Step::Close,
            ]),
            "password=pencil",
        );
        assert_eq!(
            reason,
            "unexpected authentication request during SASL exchange"
        );
    });
}

#[test]
fn fault_startup_row_description_before_ready_for_query() {
    fault_scenario(BOUND, |db| {
        let mut answer = auth(0, b"");
        wire::row_description(&mut answer, &[("a", 25)]);
        let reason = startup_fault(db, after_startup(vec![Step::Send(answer), Step::Close]), "");
        assert_eq!(
            reason,
            "unexpected message from server during startup: \"T\""
        );
    });
}

#[test]
fn fault_startup_second_authentication_after_ok() {
    fault_scenario(BOUND, |db| {
        let mut answer = auth(0, b"");
        answer.extend(auth(3, b""));
        let reason = startup_fault(
            db,
            after_startup(vec![Step::Send(answer), Step::Close]),
            "password=pencil",
        );
        assert_eq!(
            reason,
            "unexpected message from server during startup: \"R\""
        );
    });
}

#[test]
fn fault_startup_authentication_request_of_implausible_length() {
    fault_scenario(BOUND * 2, |db| {
        // 1 MiB declared: refused at once, without waiting for (or allocating) the body.
        for header in [&b"R\0\x10\0\0"[..], b"R\0\0\0\x04"] {
            let reason = within(REFUSED, || {
                startup_fault(
                    db,
                    after_startup(vec![Step::Send(header.to_vec()), Step::Hang(BOUND)]),
                    "",
                )
            });
            assert_eq!(reason, "received invalid authentication request");
        }
    });
}

#[test]
fn fault_startup_negotiation_of_implausible_length() {
    fault_scenario(BOUND, |db| {
        let reason = within(REFUSED, || {
            startup_fault(
                db,
                after_startup(vec![
                    Step::Send(b"v\0\0\x13\x88".to_vec()),
                    Step::Hang(BOUND),
                ]),
                "",
            )
        });
        assert_eq!(reason, "received invalid protocol negotiation message");
    });
}

#[test]
fn fault_startup_error_of_the_protocol_before_3_0() {
    // PostgreSQL before 14 answered some failures before the startup packet this way: `E` and a
    // NUL-terminated text.
    startup_fault_like_libpq(
        after_startup(vec![
            Step::Send(b"EFATAL:  sorry, too many clients already\n\0".to_vec()),
            Step::Close,
        ]),
        "FATAL:  sorry, too many clients already",
    );
}

#[test]
fn fault_startup_endless_error_of_the_protocol_before_3_0() {
    fault_scenario(BOUND, |db| {
        let mut flood = b"E".to_vec();
        flood.extend(std::iter::repeat_n(b'x', 40_000));
        let reason = within(REFUSED, || {
            startup_fault(
                db,
                after_startup(vec![Step::Send(flood), Step::Hang(BOUND)]),
                "",
            )
        });
        assert_eq!(reason, "received invalid error message");
    });
}

#[test]
fn fault_startup_error_response_without_fields() {
    // Five bytes long, so libpq reads it as an error of the old protocol with an empty text.
    startup_fault_like_libpq(
        after_startup(vec![Step::Send(message(b'E', b"\0")), Step::Close]),
        "",
    );
}

#[test]
fn fault_startup_notices_before_and_after_authentication_are_kept() {
    fault_scenario(BOUND, |db| {
        let mut answer = notice("before authentication");
        answer.extend(auth(0, b""));
        answer.extend(notice("after authentication"));
        answer.extend(trust_startup()[9..].to_vec());
        let server = FakeServer::single(after_startup(vec![
            Step::Send(answer),
            Step::Expect(b'Q'),
            Step::Send(select_1_result()),
            Step::Expect(b'X'),
        ]));
        db.connect("fake", &server.conninfo("")).expect("connects");
        assert_bounded(db, "fake");
        let notices = db.take_notices("fake").unwrap();
        let texts: Vec<&str> = notices.iter().map(Error::message).collect();
        assert_eq!(texts, ["before authentication", "after authentication"]);
        assert_eq!(notices[0].severity(), Some("NOTICE"));
        let r = db.query("fake", "SELECT 1").expect("works");
        assert_eq!(r.rows().and_then(|r| r.get(0, 0)), Some("1"));
        assert_bounded(db, "fake");
        db.disconnect("fake").unwrap();
        server.finish();
    });
}

#[test]
fn fault_startup_pgpass_warning_reaches_take_notices() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("pgdblink-pgpass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let passfile = dir.join("pgpass");
    std::fs::write(&passfile, "*:*:*:*:pencil\n").unwrap();
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    fault_scenario(BOUND, |db| {
        let server = FakeServer::single(after_startup(vec![
            Step::Send(trust_startup()),
            Step::Expect(b'X'),
        ]));
        db.connect(
            "fake",
            &server.conninfo(&format!("passfile={}", passfile.display())),
        )
        .expect("connects (trust)");
        assert_bounded(db, "fake");
        let notices = db.take_notices("fake").unwrap();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].severity(), Some("WARNING"));
        assert_eq!(
            notices[0].message(),
            format!(
                "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                passfile.display()
            )
        );
        // Taken once.
        assert!(db.take_notices("fake").unwrap().is_empty());
        db.disconnect("fake").unwrap();
        server.finish();
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

// ----- NegotiateProtocolVersion, as libpq 18 checks it -----

/// NegotiateProtocolVersion offering `version` with `options`.
fn negotiate(version: i32, options: &[&str]) -> Vec<u8> {
    let mut body = wire::Body::default().i32(version).i32(options.len() as i32);
    for o in options {
        body = body.cstr(o.as_bytes());
    }
    message(b'v', &body.0)
}

fn negotiation_fault(offer: Vec<u8>, extra: &str) -> String {
    fault_scenario(BOUND, |db| {
        startup_fault(
            db,
            after_startup(vec![Step::Send(offer), Step::Close]),
            extra,
        )
    })
}

const INVALID: &str = "received invalid protocol negotiation message: ";

#[test]
fn fault_negotiation_names_an_option_never_requested() {
    let reason = negotiation_fault(negotiate(0x3_0000, &["_pq_.compression"]), "");
    assert_eq!(
        reason,
        format!(
            "{INVALID}server reported an unsupported parameter that was not requested (\"_pq_.compression\")"
        )
    );
}

#[test]
fn fault_negotiation_names_an_option_without_the_pq_prefix() {
    let reason = negotiation_fault(negotiate(0x3_0000, &["compression"]), "");
    assert_eq!(
        reason,
        format!(
            "{INVALID}server reported unsupported parameter name without a \"_pq_.\" prefix (\"compression\")"
        )
    );
}

#[test]
fn fault_negotiation_offers_a_higher_version() {
    let reason = negotiation_fault(negotiate(0x3_0002, &[]), "");
    assert_eq!(
        reason,
        format!("{INVALID}server requested downgrade to a higher-numbered version")
    );
}

#[test]
fn fault_negotiation_offers_3_1() {
    let reason = negotiation_fault(negotiate(0x3_0001, &[]), "max_protocol_version=3.2");
    assert_eq!(
        reason,
        format!("{INVALID}server requested downgrade to non-existent 3.1 protocol version")
    );
}

#[test]
fn fault_negotiation_offers_a_version_before_3_0() {
    let reason = negotiation_fault(negotiate(0x2_0000, &[]), "max_protocol_version=3.2");
    assert_eq!(
        reason,
        format!("{INVALID}server requested downgrade to pre-3.0 protocol version")
    );
}

#[test]
fn fault_negotiation_asks_for_no_change() {
    let reason = negotiation_fault(negotiate(0x3_0002, &[]), "max_protocol_version=3.2");
    assert_eq!(
        reason,
        format!("{INVALID}server negotiated but asks for no changes")
    );
}

#[test]
fn fault_negotiation_twice() {
    let mut offers = negotiate(0x3_0000, &[]);
    offers.extend(negotiate(0x3_0000, &[]));
    let reason = negotiation_fault(offers, "max_protocol_version=3.2");
    assert_eq!(reason, "received duplicate protocol negotiation message");
}

#[test]
fn fault_negotiation_below_min_protocol_version() {
    let reason = negotiation_fault(
        negotiate(0x3_0000, &[]),
        "max_protocol_version=3.2 min_protocol_version=3.2",
    );
    assert_eq!(
        reason,
        "server only supports protocol version 3.0, but \"min_protocol_version\" was set to 3.2"
    );
}

// ----- ErrorResponse and NoticeResponse without fields, in a query -----

#[test]
fn fault_query_error_and_notice_without_fields() {
    fault_scenario(BOUND, |db| {
        let mut answer = message(b'N', b"\0");
        answer.extend(message(b'E', b"\0"));
        wire::ready_for_query(&mut answer, b'I');
        let server = FakeServer::single(after_startup(vec![
            Step::Send(trust_startup()),
            Step::Expect(b'Q'),
            Step::Send(answer),
            Step::Expect(b'Q'),
            Step::Send(select_1_result()),
            Step::Expect(b'X'),
        ]));
        db.connect("fake", &server.conninfo("")).unwrap();
        let e = db.query("fake", "SELECT boom").expect_err("the error");
        assert_bounded(db, "fake");
        assert_eq!(e.message(), "no error message available");
        assert_eq!(e.code(), None);
        assert!(!e.is_closed());
        assert_eq!(
            db.error_message("fake").unwrap().as_deref(),
            Some("no error message available")
        );
        let notices = db.take_notices("fake").unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].message(), "no error message available");
        // The connection is still usable.
        let r = db.query("fake", "SELECT 1").expect("works");
        assert_eq!(r.rows().and_then(|r| r.get(0, 0)), Some("1"));
        assert_bounded(db, "fake");
        db.disconnect("fake").unwrap();
        server.finish();
    });
}

// ----- connection reset in every phase -----

/// The error is a reset seen as a lost connection.
fn assert_reset(e: &Error) {
    assert_eq!(e.code(), Some(sqlstate::CONNECTION_FAILURE), "{e:?}");
    assert!(e.is_closed());
}

/// A scenario's end after the server's reset: `e` is the 08006 error, the connection holds no
/// more than its bound, and it is dropped; the server's script ran to its end.
fn ended_by_reset(db: &mut Dblink, e: &Error, server: FakeServer) {
    assert_reset(e);
    assert_bounded(db, "fake");
    db.disconnect("fake").unwrap();
    server.finish();
}

#[test]
fn fault_reset_during_startup_and_authentication() {
    fault_scenario(BOUND * 3, |db| {
        // The StartupMessage is never read: the kernel answers the close with a reset.
        let reason = startup_fault(db, vec![Step::Reset], "");
        assert_eq!(reason, LOST);
        // The password is never read.
        let reason = startup_fault(
            db,
            after_startup(vec![Step::Send(auth(3, b"")), Step::Reset]),
            "password=pencil",
        );
        assert_eq!(reason, LOST);
        // Authenticated, the password unread, no ReadyForQuery.
        let mut answer = auth(3, b"");
        answer.extend(auth(0, b""));
        let reason = startup_fault(
            db,
            after_startup(vec![Step::Send(answer), Step::Reset]),
            "password=pencil",
        );
        assert_eq!(reason, LOST);
    });
}

#[test]
fn fault_reset_during_extended_query() {
    fault_scenario(BOUND, |db| {
        let mut answer = message(b'1', b"");
        answer.extend(message(b'2', b""));
        wire::row_description(&mut answer, &[("a", 25)]);
        wire::data_row(&mut answer, &[Some(b"1")]);
        let server = FakeServer::single(after_startup(vec![
            Step::Send(trust_startup()),
            // Parse, Bind, Describe, Execute and Sync stay unread: closing makes a reset.
            Step::AwaitClient,
            Step::Send(answer),
            Step::Reset,
        ]));
        db.connect("fake", &server.conninfo("")).unwrap();
        db.send_query_params("fake", "SELECT $1", &[Some("1")])
            .unwrap();
        let e = db.get_result("fake").expect_err("reset");
        assert_reset(&e);
        assert_eq!(e.message(), LOST);
        assert!(db.get_result("fake").expect("end marker").is_none());
        assert_bounded(db, "fake");
        db.disconnect("fake").unwrap();
        server.finish();
    });
}

#[test]
fn fault_reset_during_copy_out() {
    fault_scenario(BOUND, |db| {
        let mut answer = message(b'H', &wire::Body::default().u8(0).i16(1).i16(0).0);
        answer.extend(message(b'd', b"1\n"));
        let server = FakeServer::single(after_startup(vec![
            Step::Send(trust_startup()),
            // The query stays unread: closing makes a reset.
            Step::AwaitClient,
            Step::Send(answer),
            Step::Reset,
        ]));
        db.connect("fake", &server.conninfo("")).unwrap();
        let mut out = Vec::new();
        let e = db
            .copy_out("fake", "COPY t TO STDOUT", &mut out)
            .expect_err("reset");
        ended_by_reset(db, &e, server);
    });
}

#[test]
fn fault_reset_during_copy_in() {
    fault_scenario(BOUND, |db| {
        let server = FakeServer::single(after_startup(vec![
            Step::Send(trust_startup()),
            Step::Expect(b'Q'),
            Step::Send(message(b'G', &wire::Body::default().u8(0).i16(1).i16(0).0)),
            Step::AwaitClient,
            Step::Reset,
        ]));
        db.connect("fake", &server.conninfo("")).unwrap();
        let mut data = std::io::repeat(b'1').take_bytes(64 << 20);
        let e = db
            .copy_in("fake", "COPY t FROM STDIN", &mut data)
            .expect_err("reset");
        ended_by_reset(db, &e, server);
    });
}

#[test]
fn fault_reset_during_pipeline() {
    fault_scenario(BOUND, |db| {
        let mut parsed = message(b'1', b"");
        parsed.extend(message(b'2', b""));
        let server = FakeServer::single(after_startup(vec![
            Step::Send(trust_startup()),
            Step::AwaitClient,
            Step::Send(parsed),
            Step::Reset,
        ]));
        db.connect("fake", &server.conninfo("")).unwrap();
        db.enter_pipeline_mode("fake").unwrap();
        db.send_query_params("fake", "SELECT $1", &[Some("1")])
            .unwrap();
        db.send_query_params("fake", "SELECT $1", &[Some("2")])
            .unwrap();
        db.pipeline_sync("fake").unwrap();
        let e = db.get_result("fake").expect_err("reset");
        ended_by_reset(db, &e, server);
    });
}

/// `Read::take` under a name that does not clash with the prelude's `Iterator::take`.
trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}

impl<R: std::io::Read> TakeBytes for R {}

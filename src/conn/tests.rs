//! Unit tests of the connection: the request queue, the startup config, the encoding rules, and
//! results received in different chunkings.

use super::*;
use crate::conninfo::{
    ChannelBindingMode, Config, MapEnvironment, ProtocolVersion, SslMode, Target,
};

/// A backend message: tag, length, body.
fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(s: &[u8]) -> Vec<u8> {
    let mut out = s.to_vec();
    out.push(0);
    out
}

fn row_description(names: &[&str]) -> Vec<u8> {
    let mut body = (names.len() as i16).to_be_bytes().to_vec();
    for name in names {
        body.extend_from_slice(&cstr(name.as_bytes()));
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&25u32.to_be_bytes());
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
    msg(b'T', &body)
}

pub(in crate::conn) fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut body = (values.len() as i16).to_be_bytes().to_vec();
    for value in values {
        match value {
            Some(v) => {
                body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                body.extend_from_slice(v);
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    msg(b'D', &body)
}

fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', &cstr(tag.as_bytes()))
}

fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

fn param(name: &str, value: &str) -> Vec<u8> {
    let mut body = cstr(name.as_bytes());
    body.extend_from_slice(&cstr(value.as_bytes()));
    msg(b'S', &body)
}

fn error(code: &str, text: &str) -> Vec<u8> {
    let mut body = b"SERROR\0".to_vec();
    body.extend_from_slice(&cstr(format!("C{code}").as_bytes()));
    body.extend_from_slice(&cstr(format!("M{text}").as_bytes()));
    body.push(0);
    msg(b'E', &body)
}

fn auth_ok() -> Vec<u8> {
    msg(b'R', &[0, 0, 0, 0])
}

fn config() -> StartupConfig {
    StartupConfig::builder("alice", "db1", "testnonce").build()
}

/// A connection past startup, with these ParameterStatus messages sent before ReadyForQuery.
fn ready_connection(params: &[(&str, &str)]) -> Connection {
    let mut conn = Connection::new(config());
    conn.consume_output(conn.pending_output().len());
    let mut input = auth_ok();
    for (name, value) in params {
        input.extend_from_slice(&param(name, value));
    }
    input.extend_from_slice(&ready());
    conn.handle_input(&input);
    assert_eq!(conn.state(), State::Idle, "{:?}", conn.fatal_error());
    conn
}

/// Everything `poll_result` returns until the end marker (or `Pending`), described.
fn drain(conn: &mut Connection) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match conn.poll_result() {
            PollResult::Ready(Ok(QueryResult::Rows(rows))) => {
                let values: Vec<String> = rows
                    .iter()
                    .map(|row| {
                        format!(
                            "{:?}",
                            (0..row.len()).map(|c| row.get(c)).collect::<Vec<_>>()
                        )
                    })
                    .collect();
                out.push(format!("rows {} {}", rows.command_tag(), values.join(" ")));
            }
            PollResult::Ready(Ok(other)) => out.push(format!("{other:?}")),
            PollResult::Ready(Err(e)) => {
                out.push(format!("error {} {}", e.code().unwrap_or("-"), e.message()))
            }
            PollResult::Pending => {
                out.push("pending".into());
                return out;
            }
            PollResult::Done => {
                out.push("done".into());
                return out;
            }
        }
    }
}

// ---- the request queue ----

#[test]
fn several_requests_in_flight_are_answered_in_order_each_with_its_end_marker() {
    let mut conn = ready_connection(&[]);
    conn.queue_query_unchecked("SELECT 1", None);
    conn.queue_query_unchecked("SELECT 2; SELECT 3", None);
    assert_eq!(conn.requests.len(), 2);
    assert!(conn.is_busy());
    let mut input = row_description(&["a"]);
    input.extend(data_row(&[Some(b"1")]));
    input.extend(complete("SELECT 1"));
    input.extend(ready());
    input.extend(row_description(&["b"]));
    input.extend(data_row(&[Some(b"2")]));
    input.extend(complete("SELECT 1"));
    conn.handle_input(&input);
    assert_eq!(conn.requests.len(), 1);
    assert_eq!(drain(&mut conn), ["rows SELECT 1 [Some(\"1\")]", "done"]);
    // The second request is still owed: its first result, then "not yet".
    assert_eq!(conn.state(), State::Busy);
    assert_eq!(drain(&mut conn), ["rows SELECT 1 [Some(\"2\")]", "pending"]);
    let mut input = row_description(&["c"]);
    input.extend(data_row(&[Some(b"3")]));
    input.extend(complete("SELECT 1"));
    input.extend(ready());
    conn.handle_input(&input);
    assert_eq!(drain(&mut conn), ["rows SELECT 1 [Some(\"3\")]", "done"]);
    assert_eq!(conn.state(), State::Idle);
    assert!(matches!(conn.poll_result(), PollResult::Done));
}

#[test]
fn an_error_ends_its_request_at_the_sync_point_and_the_next_request_goes_on() {
    let mut conn = ready_connection(&[]);
    conn.queue_query_unchecked("SELECT 1/0; SELECT 2", None);
    conn.queue_query_unchecked("SELECT 3", None);
    // The server skips the rest of the first query string: error, then ReadyForQuery.
    let mut input = error("22012", "division by zero");
    input.extend(msg(b'Z', b"I"));
    input.extend(row_description(&["c"]));
    input.extend(data_row(&[Some(b"3")]));
    input.extend(complete("SELECT 1"));
    input.extend(ready());
    conn.handle_input(&input);
    assert_eq!(drain(&mut conn), ["error 22012 division by zero", "done"]);
    assert_eq!(drain(&mut conn), ["rows SELECT 1 [Some(\"3\")]", "done"]);
    assert_eq!(conn.error_message(), "ERROR:  division by zero\n");
}

#[test]
fn a_lost_connection_ends_every_request_in_flight() {
    let mut conn = ready_connection(&[]);
    conn.queue_query_unchecked("SELECT 1", None);
    conn.queue_query_unchecked("SELECT 2", None);
    conn.handle_eof();
    assert_eq!(conn.state(), State::Closed);
    let first = drain(&mut conn);
    assert_eq!(first.len(), 2);
    assert!(
        first[0].starts_with("error 08006 server closed"),
        "{first:?}"
    );
    assert_eq!(drain(&mut conn), ["done"]);
    assert!(!conn.is_busy());
}

#[test]
fn chunked_mode_is_a_property_of_the_request() {
    let mut conn = ready_connection(&[]);
    conn.queue_query_unchecked("SELECT g", Some(2));
    conn.queue_query_unchecked("SELECT g", None);
    let mut input = Vec::new();
    for _ in 0..2 {
        input.extend(row_description(&["g"]));
        for v in [b"1", b"2", b"3"] {
            input.extend(data_row(&[Some(v)]));
        }
        input.extend(complete("SELECT 3"));
        input.extend(ready());
    }
    conn.handle_input(&input);
    assert_eq!(
        drain(&mut conn),
        [
            "rows  [Some(\"1\")] [Some(\"2\")]",
            "rows SELECT 3 [Some(\"3\")]",
            "done"
        ]
    );
    assert_eq!(
        drain(&mut conn),
        [
            "rows SELECT 3 [Some(\"1\")] [Some(\"2\")] [Some(\"3\")]",
            "done"
        ]
    );
}

#[test]
fn chunked_backpressure_stops_reading_until_results_are_taken() {
    let mut conn = ready_connection(&[]);
    conn.send_query_chunked("SELECT big", 1).unwrap();
    let value = vec![b'x'; 64 * 1024];
    let mut input = row_description(&["v"]);
    for _ in 0..20 {
        input.extend(data_row(&[Some(&value)]));
    }
    conn.handle_input(&input);
    assert!(!conn.wants_read());
    let mut taken = 0;
    while !conn.wants_read() {
        assert!(matches!(conn.poll_result(), PollResult::Ready(Ok(_))));
        taken += 1;
    }
    assert!(taken > 0 && taken < 20);
}

// ---- the startup config ----

#[test]
fn the_nonce_given_is_the_one_scram_sends() {
    let config = StartupConfig::builder("alice", "db1", "givenNonce123")
        .password("pencil")
        .build();
    let mut conn = Connection::new(config);
    conn.consume_output(conn.pending_output().len());
    conn.handle_input(&msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"));
    let out = String::from_utf8_lossy(conn.pending_output()).into_owned();
    assert!(out.contains("n,,n=,r=givenNonce123"), "{out:?}");
}

#[test]
fn debug_never_shows_the_password() {
    let builder = StartupConfig::builder("alice", "db1", "n").password("s3cr3t-pw");
    let config = builder.clone().build();
    let conn = Connection::new(config.clone());
    for text in [
        format!("{builder:?}"),
        format!("{config:?}"),
        format!("{conn:?}"),
    ] {
        assert!(!text.contains("s3cr3t-pw"), "{text}");
    }
    assert!(format!("{config:?}").contains("********"));
}

#[test]
fn the_password_is_kept_in_zeroizing_storage_and_dropped_when_authentication_ends() {
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
    let config = StartupConfig::builder("alice", "db1", "n")
        .password("pencil")
        .build();
    wiped_on_drop(config.password_storage().expect("a password"));
    // Cleartext: the password goes out, and is forgotten at AuthenticationOk.
    let mut conn = Connection::new(config.clone());
    conn.consume_output(conn.pending_output().len());
    conn.handle_input(&msg(b'R', &3u32.to_be_bytes()));
    assert!(String::from_utf8_lossy(conn.pending_output()).contains("pencil"));
    conn.consume_output(conn.pending_output().len());
    assert!(conn.send.is_empty());
    conn.handle_input(&auth_ok());
    let Phase::Startup(startup) = &conn.phase else {
        panic!("still starting")
    };
    assert!(!startup.has_secrets());
    conn.handle_input(&ready());
    assert!(matches!(conn.phase, Phase::Ready));
    // A failed startup drops it too.
    let mut conn = Connection::new(config);
    conn.handle_input(&error("28P01", "password authentication failed"));
    assert!(matches!(conn.phase, Phase::Closed));
}

#[test]
fn from_params_maps_the_connection_string() {
    let env = MapEnvironment::new()
        .with_user("osuser")
        .with_var("PGAPPNAME", "app");
    let params = Config::parse(
        "host=db user=u dbname=d password=pw sslmode=require channel_binding=disable \
         options='-c work_mem=1MB' max_protocol_version=3.2 min_protocol_version=3.2",
    )
    .unwrap()
    .resolve(&env)
    .unwrap();
    let target: &Target = &params.targets[0];
    let config = StartupConfig::from_params(&params, target, true, "abc".into()).unwrap();
    assert_eq!(config.user(), "u");
    assert!(config.has_password());
    assert_eq!(config.sslmode(), SslMode::Require);
    assert!(config.sends_ssl_request());
    assert_eq!(config.channel_binding(), ChannelBindingMode::Disable);
    assert_eq!(config.max_protocol_version(), ProtocolVersion::V3_2);
    assert_eq!(config.min_protocol_version(), ProtocolVersion::V3_2);
    let names: Vec<(&str, &str)> = config
        .params()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("user", "u"),
            ("database", "d"),
            ("options", "-c work_mem=1MB"),
            ("application_name", "app"),
            ("client_encoding", "UTF8")
        ]
    );
    // sslmode does not apply to Unix sockets; prefer (the default) sends nothing without TLS.
    let unix = StartupConfig::from_params(&params, target, false, "abc".into()).unwrap();
    assert!(!unix.sends_ssl_request());
    let plain = Config::parse("host=db user=u")
        .unwrap()
        .resolve(&env)
        .unwrap();
    let config = StartupConfig::from_params(&plain, &plain.targets[0], true, "abc".into()).unwrap();
    assert_eq!(config.sslmode(), SslMode::Prefer);
    assert!(!config.sends_ssl_request() && !config.has_password());
    assert_eq!(config.max_protocol_version(), ProtocolVersion::V3_0);
    // The password from .pgpass, when the string gives none.
    let mut target = plain.targets[0].clone();
    target.pgpass_password = Some("from-pgpass".into());
    assert!(
        StartupConfig::from_params(&plain, &target, true, "abc".into())
            .unwrap()
            .has_password()
    );
    // Nonces the protocol cannot carry.
    for nonce in ["", "a,b", "sp ace"] {
        let e =
            StartupConfig::from_params(&plain, &plain.targets[0], true, nonce.into()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}

// ---- encodings ----

#[test]
fn a_non_utf8_client_encoding_at_startup_fails_the_connect_and_terminates() {
    let mut conn = Connection::new(config());
    conn.consume_output(conn.pending_output().len());
    let mut input = auth_ok();
    input.extend(param("client_encoding", "LATIN1"));
    input.extend(ready());
    conn.handle_input(&input);
    assert_eq!(conn.state(), State::Closed);
    let e = conn.fatal_error().unwrap();
    assert_eq!(
        e.message(),
        "client_encoding \"LATIN1\" is not supported: pgdblink reads text as UTF-8"
    );
    assert_eq!(conn.pending_output(), b"X\0\0\0\x04");
}

#[test]
fn a_client_encoding_change_mid_query_fails_the_query_and_closes() {
    let mut conn = ready_connection(&[("client_encoding", "UTF8")]);
    conn.send_query("SELECT 1; SET client_encoding TO LATIN1")
        .unwrap();
    conn.consume_output(conn.pending_output().len());
    let mut input = row_description(&["a"]);
    input.extend(data_row(&[Some(b"1")]));
    input.extend(complete("SELECT 1"));
    input.extend(param("client_encoding", "LATIN1"));
    input.extend(complete("SET"));
    input.extend(ready());
    conn.handle_input(&input);
    assert_eq!(conn.state(), State::Closed);
    let results = drain(&mut conn);
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0], "rows SELECT 1 [Some(\"1\")]");
    assert!(results[1].contains("client_encoding \"LATIN1\" is not supported"));
    assert_eq!(results[2], "done");
    assert_eq!(conn.pending_output(), b"X\0\0\0\x04");
    assert!(conn.send_query("SELECT 1").is_err());
}

#[test]
fn with_sql_ascii_a_value_that_is_not_utf8_fails_its_statement_only() {
    for split in [usize::MAX, 1, 7] {
        let mut conn = ready_connection(&[("server_encoding", "SQL_ASCII")]);
        conn.send_query("SELECT v FROM t; SELECT 'ok'").unwrap();
        let mut input = row_description(&["v"]);
        input.extend(data_row(&[Some(b"caf\xc3\xa9")]));
        input.extend(data_row(&[Some(b"caf\xe9 au lait")]));
        input.extend(data_row(&[Some(b"fine")]));
        input.extend(complete("SELECT 3"));
        input.extend(row_description(&["ok"]));
        input.extend(data_row(&[Some(&b"ok"[..])]));
        input.extend(complete("SELECT 1"));
        input.extend(ready());
        for part in input.chunks(split.min(input.len())) {
            conn.handle_input(part);
        }
        assert_eq!(
            drain(&mut conn),
            [
                "error 22021 invalid byte sequence for encoding \"UTF8\": 0xe9 0x20 0x61",
                "rows SELECT 1 [Some(\"ok\")]",
                "done"
            ],
            "split {split}"
        );
        assert!(conn.error_message().contains("invalid byte sequence"));
        assert_eq!(conn.state(), State::Idle);
    }
}

#[test]
fn sql_ascii_checks_in_chunked_mode_too_and_utf8_servers_are_not_checked() {
    let mut conn = ready_connection(&[("server_encoding", "SQL_ASCII")]);
    conn.send_query_chunked("SELECT v", 1).unwrap();
    let mut input = row_description(&["v"]);
    input.extend(data_row(&[Some(b"a")]));
    input.extend(data_row(&[Some(b"\xe9")]));
    input.extend(data_row(&[Some(b"b")]));
    input.extend(complete("SELECT 3"));
    input.extend(ready());
    conn.handle_input(&input);
    assert_eq!(
        drain(&mut conn),
        [
            "rows  [Some(\"a\")]",
            "error 22021 invalid byte sequence for encoding \"UTF8\": 0xe9",
            "done"
        ]
    );
    let conn = ready_connection(&[("server_encoding", "UTF8")]);
    assert!(!conn.check_utf8);
}

// ---- results in different chunkings ----

#[test]
fn equal_results_received_in_different_chunkings_are_equal() {
    let mut input = row_description(&["a", "b"]);
    for i in 0..50 {
        let a = i.to_string();
        input.extend(data_row(&[
            Some(a.as_bytes()),
            (i % 4 != 0).then_some(&b"xyz"[..]),
        ]));
    }
    input.extend(complete("SELECT 50"));
    input.extend(ready());
    let results = |split: usize| {
        let mut conn = ready_connection(&[]);
        conn.send_query("SELECT a, b").unwrap();
        for part in input.chunks(split) {
            conn.handle_input(part);
        }
        let PollResult::Ready(Ok(QueryResult::Rows(rows))) = conn.poll_result() else {
            panic!("no rows");
        };
        rows
    };
    let whole = results(input.len());
    for split in [1, 3, 64, 1000] {
        let other = results(split);
        assert_eq!(other, whole, "split {split}");
        assert_eq!(
            QueryResult::Rows(other.clone()),
            QueryResult::Rows(whole.clone())
        );
    }
    // Different values are not equal.
    let mut changed = input.clone();
    let at = changed.windows(3).position(|w| w == b"xyz").unwrap();
    changed[at] = b'X';
    let mut conn = ready_connection(&[]);
    conn.send_query("SELECT a, b").unwrap();
    conn.handle_input(&changed);
    let PollResult::Ready(Ok(QueryResult::Rows(rows))) = conn.poll_result() else {
        panic!("no rows");
    };
    assert_ne!(rows, whole);
}

mod fast_path;
mod tls;

/// 200,000 distinct ParameterStatus names: O(1) each, a bounded map, the reported names kept.
#[test]
fn parameter_status_flood_is_bounded_and_linear() {
    let mut conn = Connection::new(config());
    let n = conn.pending_output().len();
    conn.consume_output(n);
    let mut input = auth_ok();
    for i in 0..200_000 {
        input.extend(param(&format!("guc_{i}"), "value"));
    }
    input.extend(param("server_version", "17"));
    input.extend(msg(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]));
    input.extend(ready());
    for chunk in input.chunks(65536) {
        conn.handle_input(chunk);
    }
    assert_eq!(conn.state(), State::Idle, "{:?}", conn.fatal_error());
    assert_eq!(conn.parameter("server_version"), Some("17"));
    assert_eq!(conn.parameters_dropped(), 200_000 - 256);
    assert!(conn.held_bytes() <= conn.budgets().parameter_bytes + 1024);
}

#[test]
fn an_error_position_refers_to_the_last_query_wherever_its_text_is() {
    // The text is read from the send buffer until it is copied out (`LastQuery`): an error gets
    // it whether it arrives before the query is written, after, or after the buffer was emptied.
    let mut conn = ready_connection(&[]);
    let mut positioned = b"SERROR\0C42703\0Mcolumn does not exist\0P8\0".to_vec();
    positioned.push(0);
    let positioned = msg(b'E', &positioned);
    for round in 0..400 {
        let sql = format!("SELECT nope{round} -- {}", "x".repeat(round % 97));
        conn.send_query(&sql).unwrap();
        // Every third error arrives before the output is written.
        if round % 3 != 0 {
            conn.consume_output(conn.pending_output().len());
        }
        let mut input = positioned.clone();
        input.extend_from_slice(&ready());
        conn.handle_input(&input);
        match conn.poll_result() {
            PollResult::Ready(Err(e)) => {
                assert_eq!(e.query(), Some(sql.as_str()), "round {round}");
                assert_eq!(e.position(), Some("8"));
            }
            other => panic!("round {round}: {other:?}"),
        }
        assert!(matches!(conn.poll_result(), PollResult::Done));
        conn.consume_output(conn.pending_output().len());
    }
    // A prepared statement run by name sends no text: the position stays a number.
    conn.send_query_prepared("s", &[]).unwrap();
    conn.consume_output(conn.pending_output().len());
    let mut input = positioned.clone();
    input.extend_from_slice(&ready());
    conn.handle_input(&input);
    match conn.poll_result() {
        PollResult::Ready(Err(e)) => assert_eq!(e.query(), None),
        other => panic!("{other:?}"),
    }
}

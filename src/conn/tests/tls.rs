//! TLS negotiation and channel binding, as the session sees them.

use super::*;

use crate::conninfo::SslNegotiation;

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

fn tls_config(mode: SslMode) -> StartupConfigBuilder {
    StartupConfig::builder("alice", "db1", "testnonce")
        .password("pencil")
        .sslmode(mode)
        .tls_available(true)
}

/// Takes the client's output.
fn take_output(conn: &mut Connection) -> Vec<u8> {
    let out = conn.pending_output().to_vec();
    conn.consume_output(out.len());
    out
}

/// A connection whose TLS handshake the driver has just finished.
fn established(config: StartupConfig, end_point: Option<Vec<u8>>) -> Connection {
    let mut conn = Connection::new(config);
    assert_eq!(take_output(&mut conn), SSL_REQUEST);
    conn.handle_input(b"S");
    assert!(conn.tls_wanted());
    assert!(conn.pending_output().is_empty());
    conn.handle_tls_established(end_point);
    assert!(conn.tls_in_use());
    assert_eq!(take_output(&mut conn)[4..8], [0, 3, 0, 0]);
    conn
}

fn sasl(mechanisms: &[&str]) -> Vec<u8> {
    let mut body = 10u32.to_be_bytes().to_vec();
    for m in mechanisms {
        body.extend_from_slice(&cstr(m.as_bytes()));
    }
    body.push(0);
    msg(b'R', &body)
}

#[test]
fn who_negotiates_tls_follows_sslmode_transport_and_attempt() {
    use SslMode::*;
    for (mode, available, expected) in [
        (Disable, true, false),
        (Allow, true, true),
        (Prefer, true, true),
        (Require, true, true),
        (VerifyCa, true, true),
        (VerifyFull, true, true),
        // A transport without TLS: only the modes that need it ask (and fail at `S`).
        (Allow, false, false),
        (Prefer, false, false),
        (Require, false, true),
    ] {
        let config = StartupConfig::builder("a", "d", "n")
            .sslmode(mode)
            .tls_available(available);
        assert_eq!(
            config.clone().build().sends_ssl_request(),
            expected,
            "{mode:?} {available}"
        );
        // Never over a Unix socket, never on an attempt told not to.
        assert!(!config.clone().over_tcp(false).build().sends_ssl_request());
        assert!(!config.clone().try_tls(false).build().sends_ssl_request());
        let direct = config.sslnegotiation(SslNegotiation::Direct).build();
        assert!(!direct.sends_ssl_request());
        assert_eq!(direct.starts_with_tls(), expected, "{mode:?}");
    }
    // A config from from_params gets the driver's settings afterwards.
    let config = config().with_tls_available(true).with_try_tls(false);
    assert!(config.tls_available() && !config.try_tls() && !config.sends_ssl_request());
}

#[test]
fn from_params_maps_sslnegotiation() {
    let env = MapEnvironment::new().with_user("osuser");
    let params = Config::parse("host=db sslmode=require sslnegotiation=direct")
        .unwrap()
        .resolve(&env)
        .unwrap();
    let config = StartupConfig::from_params(&params, &params.targets[0], true, "n".into()).unwrap();
    assert_eq!(config.sslnegotiation(), SslNegotiation::Direct);
    let config = config.to_builder().tls_available(true).build();
    assert!(config.starts_with_tls() && !config.sends_ssl_request());
}

#[test]
fn s_answer_waits_for_the_handshake_then_queues_the_startup_message() {
    let mut conn = Connection::new(tls_config(SslMode::Prefer).build());
    assert_eq!(conn.tls_negotiation(), TlsNegotiation::NotAttempted);
    assert_eq!(take_output(&mut conn), SSL_REQUEST);
    conn.handle_input(b"S");
    assert!(conn.tls_wanted());
    assert_eq!(conn.tls_negotiation(), TlsNegotiation::Handshaking);
    assert!(!conn.wants_write());
    // A terminate now writes nothing in plaintext.
    let mut terminated = Connection::new(tls_config(SslMode::Prefer).build());
    take_output(&mut terminated);
    terminated.handle_input(b"S");
    terminated.terminate();
    assert!(terminated.pending_output().is_empty());
    assert_eq!(terminated.state(), State::Closed);

    conn.handle_tls_established(Some(vec![1; 32]));
    assert!(!conn.tls_wanted());
    assert_eq!(conn.tls_negotiation(), TlsNegotiation::Established);
    assert_eq!(take_output(&mut conn)[4..8], [0, 3, 0, 0]);
    // A second call changes nothing.
    conn.handle_tls_established(None);
    assert!(conn.pending_output().is_empty());
    conn.handle_input(&auth_ok());
    conn.handle_input(&ready());
    assert_eq!(conn.state(), State::Idle);
    assert!(conn.tls_in_use());
}

#[test]
fn handle_tls_established_without_a_handshake_does_nothing() {
    let mut conn = Connection::new(config());
    let startup = take_output(&mut conn);
    conn.handle_tls_established(Some(vec![1; 32]));
    assert!(conn.pending_output().is_empty() && !conn.tls_in_use());
    assert_eq!(startup[4..8], [0, 3, 0, 0]);
}

#[test]
fn a_failed_handshake_fails_the_attempt_with_the_drivers_error() {
    let mut conn = Connection::new(tls_config(SslMode::Prefer).build());
    take_output(&mut conn);
    conn.handle_input(b"S");
    conn.handle_tls_failed(Error::new(
        ErrorKind::Connect,
        "SSL error: certificate verify failed",
    ));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.tls_negotiation(), TlsNegotiation::Failed);
    assert_eq!(
        conn.fatal_error().unwrap().message(),
        "SSL error: certificate verify failed"
    );
    assert!(!conn.tls_in_use());
}

#[test]
fn plaintext_after_s_is_refused_and_never_handed_to_tls() {
    for chunks in [&[&b"SR"[..]][..], &[b"S", b"R"]] {
        let mut conn = Connection::new(tls_config(SslMode::Require).build());
        take_output(&mut conn);
        for chunk in chunks {
            conn.handle_input(chunk);
        }
        assert_eq!(conn.state(), State::Closed);
        assert!(!conn.tls_wanted());
        assert_eq!(conn.tls_negotiation(), TlsNegotiation::Refused);
        assert_eq!(
            conn.fatal_error().unwrap().message(),
            "received unencrypted data after SSL response"
        );
        assert_eq!(conn.buffered_input(), 0);
    }
}

#[test]
fn e_answer_fails_without_reading_the_message_as_libpq_17() {
    for mode in [SslMode::Prefer, SslMode::Require, SslMode::Allow] {
        let mut conn = Connection::new(tls_config(mode).build());
        take_output(&mut conn);
        conn.handle_input(&error("XX000", "injected"));
        assert_eq!(conn.state(), State::Closed);
        assert_eq!(conn.tls_negotiation(), TlsNegotiation::Refused);
        let e = conn.fatal_error().unwrap();
        assert_eq!(
            e.message(),
            "server sent an error response during SSL exchange"
        );
        assert_eq!(e.code(), Some("08001"));
        assert!(conn.pending_output().is_empty());
    }
}

#[test]
fn n_answer_goes_on_in_plaintext_only_where_allowed() {
    for mode in [SslMode::Allow, SslMode::Prefer] {
        let mut conn = Connection::new(tls_config(mode).build());
        take_output(&mut conn);
        conn.handle_input(b"N");
        assert_eq!(conn.tls_negotiation(), TlsNegotiation::Refused);
        assert_eq!(take_output(&mut conn)[4..8], [0, 3, 0, 0]);
    }
    for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
        let mut conn = Connection::new(tls_config(mode).build());
        take_output(&mut conn);
        conn.handle_input(b"N");
        assert_eq!(
            conn.fatal_error().unwrap().message(),
            "server does not support SSL, but SSL was required"
        );
    }
}

#[test]
fn direct_negotiation_starts_with_the_handshake() {
    let config = tls_config(SslMode::Require)
        .sslnegotiation(SslNegotiation::Direct)
        .build();
    let mut conn = Connection::new(config.clone());
    assert!(conn.tls_wanted());
    assert!(conn.pending_output().is_empty());
    assert_eq!(conn.tls_negotiation(), TlsNegotiation::Handshaking);
    conn.handle_tls_established(None);
    assert_eq!(take_output(&mut conn)[4..8], [0, 3, 0, 0]);
    // Plaintext before the handshake is refused.
    let mut conn = Connection::new(config);
    conn.handle_input(b"N");
    assert_eq!(
        conn.fatal_error().unwrap().message(),
        "received unencrypted data before SSL handshake"
    );
    // Without a TLS transport, direct fails at once.
    let conn = Connection::new(
        tls_config(SslMode::Require)
            .tls_available(false)
            .sslnegotiation(SslNegotiation::Direct)
            .build(),
    );
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.pending_output().is_empty());
}

#[test]
fn scram_plus_is_chosen_over_tls_and_binding_checked_at_authentication_ok() {
    let end_point = vec![0x5a; 32];
    let mut conn = established(
        tls_config(SslMode::Require)
            .channel_binding(ChannelBindingMode::Require)
            .build(),
        Some(end_point),
    );
    conn.handle_input(&sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]));
    let out = take_output(&mut conn);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("SCRAM-SHA-256-PLUS\0")
            && text.contains("p=tls-server-end-point,,n=,r=testnonce"),
        "{text:?}"
    );
    // The server skips the exchange: refused, as libpq does.
    conn.handle_input(&auth_ok());
    assert_eq!(
        conn.fatal_error().unwrap().message(),
        "server sent AuthenticationOk before SASL authentication was completed"
    );
}

#[test]
fn channel_binding_require_refusals_send_no_secret() {
    let md5 = msg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]);
    let cleartext = msg(b'R', &[0, 0, 0, 3]);
    let only_scram = sasl(&["SCRAM-SHA-256"]);
    let require = || {
        tls_config(SslMode::Require)
            .channel_binding(ChannelBindingMode::Require)
            .build()
    };
    let cases: [(&[u8], &str); 4] = [
        (
            &md5,
            "channel binding required but not supported by server's authentication request",
        ),
        (
            &cleartext,
            "channel binding required but not supported by server's authentication request",
        ),
        (
            &only_scram,
            "channel binding is required, but server did not offer an authentication method that supports channel binding",
        ),
        (
            &auth_ok(),
            "channel binding required, but server authenticated client without channel binding",
        ),
    ];
    for (input, text) in cases {
        let mut conn = established(require(), Some(vec![1; 32]));
        conn.handle_input(input);
        assert_eq!(conn.fatal_error().unwrap().message(), text);
        assert!(conn.pending_output().is_empty(), "{text}");
    }
    // PLUS offered without the binding data (an Ed25519 certificate).
    let mut conn = established(require(), None);
    conn.handle_input(&sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]));
    assert_eq!(
        conn.fatal_error().unwrap().message(),
        "channel binding is required, but client does not support it"
    );
    assert!(conn.pending_output().is_empty());
    // Without TLS.
    let mut conn = Connection::new(
        config()
            .to_builder()
            .password("pencil")
            .channel_binding(ChannelBindingMode::Require)
            .build(),
    );
    take_output(&mut conn);
    conn.handle_input(&only_scram);
    assert_eq!(
        conn.fatal_error().unwrap().message(),
        "channel binding required, but SSL not in use"
    );
    assert!(conn.pending_output().is_empty());
}

#[test]
fn channel_binding_prefer_over_tls_sends_y_without_plus_and_n_without_data() {
    for (end_point, offered, header) in [
        (Some(vec![1; 32]), &["SCRAM-SHA-256"][..], "y,,n=,r="),
        (
            None,
            &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"][..],
            "n,,n=,r=",
        ),
    ] {
        let mut conn = established(tls_config(SslMode::Require).build(), end_point);
        conn.handle_input(&sasl(offered));
        let out = take_output(&mut conn);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("SCRAM-SHA-256\0"), "{text:?}");
        assert!(text.contains(header), "{text:?}");
    }
}

#[test]
fn a_tls_failure_after_the_handshake_keeps_the_stage_established() {
    let mut conn = established(tls_config(SslMode::Require).build(), None);
    conn.handle_input(&auth_ok());
    conn.handle_input(&ready());
    assert_eq!(conn.state(), State::Idle);
    conn.handle_tls_failed(Error::new(
        ErrorKind::ConnectionLost,
        "SSL connection has been closed unexpectedly",
    ));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.tls_negotiation(), TlsNegotiation::Established);
    assert_eq!(
        conn.fatal_error().unwrap().message(),
        "SSL connection has been closed unexpectedly"
    );
}

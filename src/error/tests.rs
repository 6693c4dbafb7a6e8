//! Tests of [`Error`]: display, libpq's text (with the cursor), sources, equality, `is_closed`.

use super::*;

#[test]
fn error_display_matches_psql() {
    let e = Error::from_fields([
        (b'S', "ERROR"),
        (b'V', "ERROR"),
        (b'C', "P0099"),
        (b'M', "boom 1"),
        (b'D', "the detail"),
        (b'H', "the hint"),
        (b'W', "PL/pgSQL function inline_code_block line 1 at RAISE"),
    ]);
    assert_eq!(
        e.to_string(),
        "ERROR:  boom 1\nDETAIL:  the detail\nHINT:  the hint"
    );
    assert_eq!(
        e.libpq_text(),
        "ERROR:  boom 1\nDETAIL:  the detail\nHINT:  the hint\n\
         CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n"
    );
    assert_eq!(e.code(), Some("P0099"));
    assert_eq!(e.kind(), ErrorKind::Server);
}

#[test]
fn error_libpq_text_shows_the_cursor_under_the_position() {
    let fields = [
        (b'S', "ERROR"),
        (b'C', "42601"),
        (b'M', "syntax error at or near \"FRM\""),
        (b'P', "15"),
    ];
    let e = Error::from_fields(fields).with_query(Some("SELECT 1,\n  2 FRM t"));
    assert_eq!(e.query(), Some("SELECT 1,\n  2 FRM t"));
    assert_eq!(
        e.libpq_text(),
        "ERROR:  syntax error at or near \"FRM\"\nLINE 2:   2 FRM t\n            ^\n"
    );
    // Without the query: the position as a number.
    assert_eq!(
        Error::from_fields(fields).libpq_text(),
        "ERROR:  syntax error at or near \"FRM\" at character 15\n"
    );
    // A position that is no number shows nothing, as libpq's atoi makes it 0.
    let e = Error::from_fields([(b'S', "ERROR"), (b'M', "m"), (b'P', "x")]).with_query(Some("q"));
    assert_eq!(e.libpq_text(), "ERROR:  m\n");
    // No position: the query is not kept.
    let e = Error::from_fields([(b'S', "ERROR"), (b'M', "m")]).with_query(Some("q"));
    assert_eq!(e.query(), None);
    // The cursor comes before DETAIL and HINT.
    let e = Error::from_fields([
        (b'S', "ERROR"),
        (b'M', "m"),
        (b'D', "d"),
        (b'H', "h"),
        (b'P', "1"),
    ])
    .with_query(Some("X"));
    assert_eq!(
        e.libpq_text(),
        "ERROR:  m\nLINE 1: X\n        ^\nDETAIL:  d\nHINT:  h\n"
    );
}

#[test]
fn error_libpq_text_internal_position_points_into_the_internal_query() {
    let e = Error::from_fields([
        (b'S', "ERROR"),
        (b'M', "column \"nope\" does not exist"),
        (b'p', "8"),
        (b'q', "SELECT nope"),
        (b'W', "PL/pgSQL function f() line 3 at PERFORM"),
    ]);
    assert_eq!(
        e.libpq_text(),
        "ERROR:  column \"nope\" does not exist\nLINE 1: SELECT nope\n               ^\n\
         QUERY:  SELECT nope\nCONTEXT:  PL/pgSQL function f() line 3 at PERFORM\n"
    );
    // An internal position without its query: a number.
    let e = Error::from_fields([(b'S', "ERROR"), (b'M', "m"), (b'p', "8")]);
    assert_eq!(e.libpq_text(), "ERROR:  m at character 8\n");
}

#[test]
fn error_without_fields_says_no_error_message_available() {
    let e = Error::from_fields([]);
    assert_eq!(e.message(), NO_ERROR_MESSAGE_TEXT);
    assert_eq!(e.libpq_text(), "no error message available\n");
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.code(), None);
    // A field, even without a message, is not "no fields".
    let e = Error::from_fields([(b'S', "ERROR")]);
    assert_eq!(e.libpq_text(), "ERROR:  \n");
}

#[test]
fn error_client_side_has_no_prefix() {
    let e = Error::new(ErrorKind::Usage, "another command is already in progress");
    assert_eq!(e.to_string(), "another command is already in progress");
    assert_eq!(e.libpq_text(), "another command is already in progress\n");
    assert_eq!(e.code(), None);
}

#[test]
fn error_io_source_downcasts_to_the_io_error() {
    use std::error::Error as _;
    use std::io;
    let e = Error::io(
        ErrorKind::ConnectionLost,
        "server closed the connection unexpectedly",
        io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer"),
    );
    let source = e.source().expect("a source");
    let io = source.downcast_ref::<io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(io.to_string(), "reset by peer");
    // The message is the caller's, the cause is only the source.
    assert_eq!(e.message(), "server closed the connection unexpectedly");
    // Kept through clones.
    let clone = e.clone();
    let kind = clone
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    assert_eq!(kind, Some(io::ErrorKind::ConnectionReset));

    let from: Error = io::Error::from(io::ErrorKind::TimedOut).into();
    assert_eq!(from.kind(), ErrorKind::Io);
    let kind = from
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    assert_eq!(kind, Some(io::ErrorKind::TimedOut));
    assert!(Error::new(ErrorKind::Io, "no cause").source().is_none());
}

#[test]
fn error_from_decode_error_keeps_it_as_source() {
    use crate::protocol::DecodeError;
    use std::error::Error as _;
    let decode = DecodeError::LengthTooSmall { tag: b'T', len: 3 };
    let e = Error::from(decode);
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert_eq!(e.code(), Some(crate::sqlstate::PROTOCOL_VIOLATION));
    assert_eq!(
        e.message(),
        "lost synchronization with server: got message type \"T\", length 3"
    );
    let source = e.source().and_then(|s| s.downcast_ref::<DecodeError>());
    assert_eq!(source, Some(&decode));
    assert!(e.is_closed());
}

#[test]
fn error_equality_compares_the_source_by_text() {
    use std::io;
    let a = Error::io(ErrorKind::Io, "x", io::Error::other("one"));
    let b = Error::io(ErrorKind::Io, "x", io::Error::other("one"));
    let c = Error::io(ErrorKind::Io, "x", io::Error::other("two"));
    assert_eq!(a, b);
    assert_eq!(a, a.clone());
    assert_ne!(a, c);
    assert_ne!(a, Error::new(ErrorKind::Io, "x"));
}

#[test]
fn error_is_closed_covers_lost_connections_class_08_57p_and_fatal() {
    use crate::sqlstate;
    let server = |severity: &str, code: &str| {
        Error::from_fields([
            (b'S', severity),
            (b'V', severity),
            (b'C', code),
            (b'M', "m"),
        ])
    };
    let closed = [
        Error::new(
            ErrorKind::ConnectionLost,
            "server closed the connection unexpectedly",
        ),
        Error::new(ErrorKind::ConnectionLost, "no connection to the server"),
        Error::new(ErrorKind::Usage, "connection \"x\" not available")
            .with_code(sqlstate::CONNECTION_DOES_NOT_EXIST),
        Error::new(ErrorKind::Other, "lost").with_code(sqlstate::CONNECTION_FAILURE),
        Error::new(ErrorKind::Connect, "could not establish connection")
            .with_code(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
        Error::new(ErrorKind::Protocol, "bad").with_code(sqlstate::PROTOCOL_VIOLATION),
        server("FATAL", sqlstate::ADMIN_SHUTDOWN),
        // The code alone (say, a copy without its severity) is enough.
        Error::new(ErrorKind::Server, "terminating").with_code(sqlstate::ADMIN_SHUTDOWN),
        Error::new(ErrorKind::Server, "crash").with_code(sqlstate::CRASH_SHUTDOWN),
        server("FATAL", sqlstate::IDLE_SESSION_TIMEOUT),
        server("FATAL", sqlstate::INVALID_PASSWORD),
        server("FATAL", sqlstate::IDLE_IN_TRANSACTION_SESSION_TIMEOUT),
        server("PANIC", sqlstate::INTERNAL_ERROR),
        // A localized FATAL: the non-localized severity decides.
        Error::from_fields([
            (b'S', "SCHWERWIEGEND"),
            (b'V', "FATAL"),
            (b'C', sqlstate::INTERNAL_ERROR),
            (b'M', "m"),
        ]),
    ];
    for e in &closed {
        assert!(e.is_closed(), "{e:?}");
    }
    let open = [
        server("ERROR", sqlstate::DIVISION_BY_ZERO),
        server("ERROR", sqlstate::QUERY_CANCELED),
        server("NOTICE", sqlstate::SUCCESSFUL_COMPLETION),
        server("WARNING", sqlstate::WARNING),
        Error::new(ErrorKind::Usage, "another command is already in progress"),
        Error::new(ErrorKind::Usage, "duplicate connection name")
            .with_code(sqlstate::DUPLICATE_OBJECT),
        Error::new(
            ErrorKind::Protocol,
            "message type 0x5a arrived from server while idle",
        ),
        Error::new(ErrorKind::Io, "cancel request timed out"),
        Error::new(ErrorKind::Config, "invalid connection option"),
        Error::new(ErrorKind::Io, "error").with_severity("ERROR"),
    ];
    for e in &open {
        assert!(!e.is_closed(), "{e:?}");
    }
}

#[test]
fn error_debug_names_every_field_and_the_source() {
    let e = Error::from_fields([
        (b'S', "ERREUR"),
        (b'V', "ERROR"),
        (b'C', crate::sqlstate::UNIQUE_VIOLATION),
        (
            b'M',
            "duplicate key value violates unique constraint \"t_pkey\"",
        ),
        (b'D', "Key (id)=(1) already exists."),
        (b'H', "the hint"),
        (b'P', "12"),
        (b'p', "3"),
        (b'q', "SELECT inner"),
        (b'W', "SQL function \"f\""),
        (b's', "public"),
        (b't', "t"),
        (b'c', "id"),
        (b'd', "int4"),
        (b'n', "t_pkey"),
        (b'F', "nbtinsert.c"),
        (b'L', "664"),
        (b'R', "_bt_check_unique"),
        (b'Z', "future field"),
    ])
    .with_source(std::io::Error::other("the cause"));
    let debug = format!("{e:?}");
    for part in [
        "kind: Server",
        "severity: \"ERREUR\"",
        "severity_nonlocalized: \"ERROR\"",
        "code: \"23505\"",
        "message: \"duplicate key value violates unique constraint \\\"t_pkey\\\"\"",
        "detail: \"Key (id)=(1) already exists.\"",
        "hint: \"the hint\"",
        "position: \"12\"",
        "context: \"SQL function \\\"f\\\"\"",
        "internal_position: \"3\"",
        "internal_query: \"SELECT inner\"",
        "schema_name: \"public\"",
        "table_name: \"t\"",
        "column_name: \"id\"",
        "datatype_name: \"int4\"",
        "constraint_name: \"t_pkey\"",
        "source_file: \"nbtinsert.c\"",
        "source_line: \"664\"",
        "source_function: \"_bt_check_unique\"",
        "other_fields: [('Z', \"future field\")]",
        "source: Custom { kind: Other, error: \"the cause\" }",
    ] {
        assert!(debug.contains(part), "{part} missing from {debug}");
    }
    // No raw field codes for the named fields.
    assert!(!debug.contains("(112,"), "{debug}");
    assert_eq!(e.field(b'V'), Some("ERROR"));
    assert_eq!(e.field(b'n'), Some("t_pkey"));
    // A client-side error shows only what it has.
    assert_eq!(
        format!("{:?}", Error::new(ErrorKind::Usage, "busy")),
        "Error { kind: Usage, message: \"busy\" }"
    );
}

#[test]
fn error_is_send_sync() {
    fn check<T: Send + Sync + std::error::Error + 'static>() {}
    check::<Error>();
}

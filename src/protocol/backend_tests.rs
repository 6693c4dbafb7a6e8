//! Unit tests of the backend decoder: every message kind, every prefix, every malformation class.

use super::*;

/// A message: type byte, Int32 length (body + 4), body.
fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn dec(bytes: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    decode(bytes, &Limits::default())
}

/// Decodes `bytes`, which must be exactly one complete message.
fn one(bytes: &[u8]) -> BackendMessage<'_> {
    match dec(bytes) {
        Ok(Decoded::Message(m, used)) => {
            assert_eq!(used, bytes.len(), "consumed count");
            m
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

fn err(bytes: &[u8]) -> DecodeError {
    match dec(bytes) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn row(fields: &[Option<&[u8]>]) -> Vec<u8> {
    let mut body = (fields.len() as i16).to_be_bytes().to_vec();
    for f in fields {
        match f {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                body.extend_from_slice(v);
            }
        }
    }
    msg(b'D', &body)
}

fn field_desc(
    name: &[u8],
    table: u32,
    col: i16,
    ty: u32,
    size: i16,
    typmod: i32,
    fmt: i16,
) -> Vec<u8> {
    cat(&[
        name,
        b"\0",
        &table.to_be_bytes(),
        &col.to_be_bytes(),
        &ty.to_be_bytes(),
        &size.to_be_bytes(),
        &typmod.to_be_bytes(),
        &fmt.to_be_bytes(),
    ])
}

/// One valid message of every kind (and several authentication variants).
fn valid_messages() -> Vec<Vec<u8>> {
    vec![
        msg(b'R', &0u32.to_be_bytes()),
        msg(b'R', &2u32.to_be_bytes()),
        msg(b'R', &3u32.to_be_bytes()),
        msg(
            b'R',
            &cat(&[&5u32.to_be_bytes(), &[0xe8, 0x85, 0xe7, 0x75]]),
        ),
        msg(b'R', &7u32.to_be_bytes()),
        msg(b'R', &cat(&[&8u32.to_be_bytes(), b"tok"])),
        msg(b'R', &9u32.to_be_bytes()),
        msg(
            b'R',
            &cat(&[
                &10u32.to_be_bytes(),
                b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0",
            ]),
        ),
        msg(
            b'R',
            &cat(&[&11u32.to_be_bytes(), b"r=abc,s=c2FsdA==,i=4096"]),
        ),
        msg(b'R', &cat(&[&12u32.to_be_bytes(), b"v=sig"])),
        msg(b'R', &cat(&[&99u32.to_be_bytes(), b"xy"])),
        msg(
            b'K',
            &cat(&[&4243u32.to_be_bytes(), &[0x11, 0x22, 0x33, 0x44]]),
        ),
        msg(b'S', b"client_encoding\0UTF8\0"),
        msg(b'Z', b"I"),
        msg(
            b'T',
            &cat(&[
                &2i16.to_be_bytes(),
                &field_desc(b"a", 0, 0, 23, 4, -1, 0),
                &field_desc(b"b", 16384, 2, 25, -1, -1, 0),
            ]),
        ),
        row(&[Some(b"1"), None, Some(b"")]),
        msg(b'C', b"SELECT 1\0"),
        msg(b'I', b""),
        msg(b'E', b"SERROR\0VERROR\0C22012\0Mdivision by zero\0\0"),
        msg(b'N', b"SNOTICE\0Mn1\0\0"),
        msg(b'A', &cat(&[&77u32.to_be_bytes(), b"c\0p\0"])),
        msg(
            b'v',
            &cat(&[
                &0x0003_0000u32.to_be_bytes(),
                &1i32.to_be_bytes(),
                b"_pq_.test_option\0",
            ]),
        ),
        msg(
            b'G',
            &cat(&[
                &[0],
                &2i16.to_be_bytes(),
                &0i16.to_be_bytes(),
                &0i16.to_be_bytes(),
            ]),
        ),
        msg(
            b'H',
            &cat(&[&[0], &1i16.to_be_bytes(), &0i16.to_be_bytes()]),
        ),
        msg(b'W', &cat(&[&[1], &0i16.to_be_bytes()])),
        msg(b'd', b"1\n"),
        msg(b'c', b""),
        msg(b'1', b""),
        msg(b'2', b""),
        msg(b'3', b""),
        msg(b'n', b""),
        msg(
            b't',
            &cat(&[
                &2i16.to_be_bytes(),
                &23u32.to_be_bytes(),
                &25u32.to_be_bytes(),
            ]),
        ),
        msg(b's', b""),
        msg(b'V', &cat(&[&3i32.to_be_bytes(), b"abc"])),
        msg(b'V', &(-1i32).to_be_bytes()),
    ]
}

// ---- every kind, every accessor -------------------------------------------------------------

#[test]
fn authentication_codes_decoded() {
    let a = |code: u32, payload: &[u8]| match one(&msg(b'R', &cat(&[&code.to_be_bytes(), payload])))
    {
        BackendMessage::Authentication(a) => format!("{a:?}"),
        other => panic!("{other:?}"),
    };
    assert_eq!(a(0, b""), "Ok");
    assert_eq!(a(2, b""), "KerberosV5");
    assert_eq!(a(3, b""), "CleartextPassword");
    assert_eq!(a(7, b""), "Gss");
    assert_eq!(a(9, b""), "Sspi");
    let m = msg(b'R', &cat(&[&5u32.to_be_bytes(), &[1, 2, 3, 4]]));
    assert_eq!(
        one(&m),
        BackendMessage::Authentication(Authentication::Md5Password { salt: [1, 2, 3, 4] })
    );
    let m = msg(b'R', &cat(&[&8u32.to_be_bytes(), b"gss"]));
    assert_eq!(
        one(&m),
        BackendMessage::Authentication(Authentication::GssContinue(b"gss"))
    );
    let m = msg(b'R', &cat(&[&11u32.to_be_bytes(), b"r=1"]));
    assert_eq!(
        one(&m),
        BackendMessage::Authentication(Authentication::SaslContinue(b"r=1"))
    );
    let m = msg(b'R', &cat(&[&12u32.to_be_bytes(), b"v=2"]));
    assert_eq!(
        one(&m),
        BackendMessage::Authentication(Authentication::SaslFinal(b"v=2"))
    );
    for code in [1u32, 4, 6, 13, 99, u32::MAX] {
        let m = msg(b'R', &cat(&[&code.to_be_bytes(), b"p"]));
        assert_eq!(
            one(&m),
            BackendMessage::Authentication(Authentication::Other {
                code,
                payload: b"p"
            })
        );
    }
}

#[test]
fn authentication_sasl_list_decoded() {
    let m = msg(
        b'R',
        &cat(&[
            &10u32.to_be_bytes(),
            b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0",
        ]),
    );
    let BackendMessage::Authentication(Authentication::Sasl(list)) = one(&m) else {
        panic!()
    };
    assert_eq!(list.len(), 2);
    assert!(!list.is_empty());
    assert_eq!(
        list.iter().collect::<Vec<_>>(),
        [&b"SCRAM-SHA-256-PLUS"[..], b"SCRAM-SHA-256"]
    );
    // An empty list is just the terminating empty string.
    let m = msg(b'R', &cat(&[&10u32.to_be_bytes(), b"\0"]));
    let BackendMessage::Authentication(Authentication::Sasl(list)) = one(&m) else {
        panic!()
    };
    assert!(list.is_empty());
    assert_eq!(list.iter().count(), 0);
}

#[test]
fn authentication_sasl_list_without_terminator_rejected() {
    // The mechanism list must end with an empty string.
    let m = msg(b'R', &cat(&[&10u32.to_be_bytes(), b"SCRAM-SHA-256\0"]));
    assert_eq!(
        err(&m),
        DecodeError::Truncated {
            tag: b'R',
            what: "SASL mechanism"
        }
    );
    let m = msg(b'R', &cat(&[&10u32.to_be_bytes(), b"SCRAM-SHA-256"]));
    assert_eq!(
        err(&m),
        DecodeError::MissingNul {
            tag: b'R',
            what: "SASL mechanism"
        }
    );
    let m = msg(b'R', &cat(&[&10u32.to_be_bytes(), b"SCRAM-SHA-256\0\0x"]));
    assert_eq!(
        err(&m),
        DecodeError::TrailingBytes {
            tag: b'R',
            extra: 1
        }
    );
}

#[test]
fn authentication_payload_on_empty_codes_rejected() {
    for code in [0u32, 2, 3, 7, 9] {
        let m = msg(b'R', &cat(&[&code.to_be_bytes(), b"x"]));
        assert_eq!(
            err(&m),
            DecodeError::TrailingBytes {
                tag: b'R',
                extra: 1
            },
            "code {code}"
        );
    }
}

#[test]
fn authentication_md5_salt_must_be_4_bytes() {
    let m = msg(b'R', &cat(&[&5u32.to_be_bytes(), &[1, 2, 3]]));
    assert_eq!(
        err(&m),
        DecodeError::Truncated {
            tag: b'R',
            what: "salt"
        }
    );
    let m = msg(b'R', &cat(&[&5u32.to_be_bytes(), &[1, 2, 3, 4, 5]]));
    assert_eq!(
        err(&m),
        DecodeError::TrailingBytes {
            tag: b'R',
            extra: 1
        }
    );
}

#[test]
fn authentication_truncated_code_rejected() {
    assert_eq!(
        err(&msg(b'R', &[0, 0, 0])),
        DecodeError::Truncated {
            tag: b'R',
            what: "authentication code"
        }
    );
}

#[test]
fn backend_key_data_decoded() {
    let m = msg(
        b'K',
        &cat(&[&4243u32.to_be_bytes(), &[0x11, 0x22, 0x33, 0x44]]),
    );
    assert_eq!(
        one(&m),
        BackendMessage::BackendKeyData {
            pid: 4243,
            key: &[0x11, 0x22, 0x33, 0x44]
        }
    );
    // Protocol 3.2: up to 256 bytes.
    let key = [7u8; 256];
    let m = msg(b'K', &cat(&[&1u32.to_be_bytes(), &key]));
    assert_eq!(
        one(&m),
        BackendMessage::BackendKeyData { pid: 1, key: &key }
    );
}

#[test]
fn backend_key_data_key_of_3_and_257_bytes_rejected() {
    for n in [0usize, 3, 257] {
        let m = msg(b'K', &cat(&[&1u32.to_be_bytes(), &vec![1u8; n]]));
        assert_eq!(
            err(&m),
            DecodeError::InvalidValue {
                tag: b'K',
                what: "secret key length"
            },
            "{n}"
        );
    }
    assert_eq!(
        err(&msg(b'K', &[0, 0])),
        DecodeError::Truncated {
            tag: b'K',
            what: "process id"
        }
    );
}

#[test]
fn parameter_status_decoded() {
    let m = msg(b'S', b"DateStyle\0ISO, MDY\0");
    assert_eq!(
        one(&m),
        BackendMessage::ParameterStatus {
            name: b"DateStyle",
            value: b"ISO, MDY"
        }
    );
    let m = msg(b'S', b"\0\0");
    assert_eq!(
        one(&m),
        BackendMessage::ParameterStatus {
            name: b"",
            value: b""
        }
    );
}

#[test]
fn parameter_status_truncated_string_rejected() {
    assert_eq!(
        err(&msg(b'S', b"name\0")),
        DecodeError::Truncated {
            tag: b'S',
            what: "parameter value"
        }
    );
    assert_eq!(
        err(&msg(b'S', b"name\0val")),
        DecodeError::MissingNul {
            tag: b'S',
            what: "parameter value"
        }
    );
    assert_eq!(
        err(&msg(b'S', b"name")),
        DecodeError::MissingNul {
            tag: b'S',
            what: "parameter name"
        }
    );
    assert_eq!(
        err(&msg(b'S', b"")),
        DecodeError::Truncated {
            tag: b'S',
            what: "parameter name"
        }
    );
    assert_eq!(
        err(&msg(b'S', b"a\0b\0c")),
        DecodeError::TrailingBytes {
            tag: b'S',
            extra: 1
        }
    );
}

#[test]
fn ready_for_query_decoded() {
    assert_eq!(
        one(&msg(b'Z', b"I")),
        BackendMessage::ReadyForQuery(TransactionStatus::Idle)
    );
    assert_eq!(
        one(&msg(b'Z', b"T")),
        BackendMessage::ReadyForQuery(TransactionStatus::InTransaction)
    );
    assert_eq!(
        one(&msg(b'Z', b"E")),
        BackendMessage::ReadyForQuery(TransactionStatus::Failed)
    );
    for s in [
        TransactionStatus::Idle,
        TransactionStatus::InTransaction,
        TransactionStatus::Failed,
    ] {
        assert_eq!(
            one(&msg(b'Z', &[s.as_byte()])),
            BackendMessage::ReadyForQuery(s)
        );
    }
}

#[test]
fn ready_for_query_bad_status_rejected() {
    assert_eq!(
        err(&msg(b'Z', b"X")),
        DecodeError::InvalidValue {
            tag: b'Z',
            what: "transaction status"
        }
    );
    assert_eq!(
        err(&msg(b'Z', b"")),
        DecodeError::Truncated {
            tag: b'Z',
            what: "transaction status"
        }
    );
    assert_eq!(
        err(&msg(b'Z', b"II")),
        DecodeError::TrailingBytes {
            tag: b'Z',
            extra: 1
        }
    );
}

#[test]
fn row_description_decoded() {
    let m = msg(
        b'T',
        &cat(&[
            &2i16.to_be_bytes(),
            &field_desc(b"id", 16384, 1, 23, 4, -1, 0),
            &field_desc(b"name", 16384, 2, 1043, -1, 68, 1),
        ]),
    );
    let BackendMessage::RowDescription(rd) = one(&m) else {
        panic!()
    };
    assert_eq!(rd.len(), 2);
    assert!(!rd.is_empty());
    let f: Vec<_> = rd.fields().collect();
    assert_eq!(
        f[0],
        FieldDescription {
            name: b"id",
            table_oid: 16384,
            column_id: 1,
            type_oid: 23,
            type_size: 4,
            type_modifier: -1,
            format: 0
        }
    );
    assert_eq!(
        f[1],
        FieldDescription {
            name: b"name",
            table_oid: 16384,
            column_id: 2,
            type_oid: 1043,
            type_size: -1,
            type_modifier: 68,
            format: 1
        }
    );
    let m = msg(b'T', &0i16.to_be_bytes());
    let BackendMessage::RowDescription(rd) = one(&m) else {
        panic!()
    };
    assert!(rd.is_empty());
    assert_eq!(rd.fields().count(), 0);
}

#[test]
fn row_description_malformed_rejected() {
    assert_eq!(
        err(&msg(b'T', &[0])),
        DecodeError::Truncated {
            tag: b'T',
            what: "field count"
        }
    );
    assert_eq!(
        err(&msg(b'T', &(-1i16).to_be_bytes())),
        DecodeError::InvalidValue {
            tag: b'T',
            what: "field count"
        }
    );
    let fd = field_desc(b"a", 0, 0, 23, 4, -1, 0);
    assert_eq!(
        err(&msg(b'T', &cat(&[&2i16.to_be_bytes(), &fd]))),
        DecodeError::Truncated {
            tag: b'T',
            what: "column name"
        }
    );
    assert_eq!(
        err(&msg(
            b'T',
            &cat(&[&1i16.to_be_bytes(), &fd[..fd.len() - 1]])
        )),
        DecodeError::Truncated {
            tag: b'T',
            what: "field description"
        }
    );
    assert_eq!(
        err(&msg(b'T', &cat(&[&1i16.to_be_bytes(), b"abc"]))),
        DecodeError::MissingNul {
            tag: b'T',
            what: "column name"
        }
    );
    assert_eq!(
        err(&msg(b'T', &cat(&[&1i16.to_be_bytes(), &fd, b"zz"]))),
        DecodeError::TrailingBytes {
            tag: b'T',
            extra: 2
        }
    );
}

#[test]
fn data_row_decoded() {
    let m = row(&[Some(b"42"), None, Some(b""), Some(b"row-12345")]);
    let BackendMessage::DataRow(r) = one(&m) else {
        panic!()
    };
    assert_eq!(r.len(), 4);
    assert!(!r.is_empty());
    let fields: Vec<_> = r.fields().collect();
    assert_eq!(
        fields,
        [Some(&b"42"[..]), None, Some(b""), Some(b"row-12345")]
    );
    assert_eq!(r.fields().len(), 4);
    let ranges: Vec<_> = r.ranges().collect();
    assert_eq!(ranges, [Some(4..6), None, Some(14..14), Some(18..27)]);
    assert_eq!(r.body().len(), 27);
    for (f, rg) in r.fields().zip(r.ranges()) {
        assert_eq!(f, rg.map(|rg| &r.body()[rg]));
    }
    let m = row(&[]);
    let BackendMessage::DataRow(r) = one(&m) else {
        panic!()
    };
    assert!(r.is_empty());
    assert_eq!(r.fields().next(), None);
    assert_eq!(r.ranges().next(), None);
}

#[test]
fn data_row_negative_length_rejected() {
    let m = msg(b'D', &cat(&[&1i16.to_be_bytes(), &(-2i32).to_be_bytes()]));
    assert_eq!(
        err(&m),
        DecodeError::InvalidValue {
            tag: b'D',
            what: "field length"
        }
    );
    let m = msg(b'D', &cat(&[&1i16.to_be_bytes(), &i32::MIN.to_be_bytes()]));
    assert_eq!(
        err(&m),
        DecodeError::InvalidValue {
            tag: b'D',
            what: "field length"
        }
    );
}

#[test]
fn data_row_negative_count_rejected() {
    let m = msg(b'D', &(-1i16).to_be_bytes());
    assert_eq!(
        err(&m),
        DecodeError::InvalidValue {
            tag: b'D',
            what: "field count"
        }
    );
}

#[test]
fn data_row_truncated_rejected() {
    assert_eq!(
        err(&msg(b'D', &[0])),
        DecodeError::Truncated {
            tag: b'D',
            what: "field count"
        }
    );
    let m = msg(
        b'D',
        &cat(&[&2i16.to_be_bytes(), &1i32.to_be_bytes(), b"x"]),
    );
    assert_eq!(
        err(&m),
        DecodeError::Truncated {
            tag: b'D',
            what: "field length"
        }
    );
    let m = msg(b'D', &cat(&[&1i16.to_be_bytes(), &[0, 0]]));
    assert_eq!(
        err(&m),
        DecodeError::Truncated {
            tag: b'D',
            what: "field length"
        }
    );
    let m = msg(
        b'D',
        &cat(&[&1i16.to_be_bytes(), &5i32.to_be_bytes(), b"abcd"]),
    );
    assert_eq!(
        err(&m),
        DecodeError::Truncated {
            tag: b'D',
            what: "field value"
        }
    );
    let m = msg(
        b'D',
        &cat(&[&1i16.to_be_bytes(), &i32::MAX.to_be_bytes(), b"abcd"]),
    );
    assert_eq!(
        err(&m),
        DecodeError::Truncated {
            tag: b'D',
            what: "field value"
        }
    );
}

#[test]
fn data_row_trailing_bytes_rejected() {
    let m = msg(
        b'D',
        &cat(&[&1i16.to_be_bytes(), &1i32.to_be_bytes(), b"xyz"]),
    );
    assert_eq!(
        err(&m),
        DecodeError::TrailingBytes {
            tag: b'D',
            extra: 2
        }
    );
}

#[test]
fn command_complete_decoded() {
    assert_eq!(
        one(&msg(b'C', b"INSERT 0 1\0")),
        BackendMessage::CommandComplete { tag: b"INSERT 0 1" }
    );
    assert_eq!(
        err(&msg(b'C', b"INSERT")),
        DecodeError::MissingNul {
            tag: b'C',
            what: "command tag"
        }
    );
    assert_eq!(
        err(&msg(b'C', b"A\0B")),
        DecodeError::TrailingBytes {
            tag: b'C',
            extra: 1
        }
    );
}

#[test]
fn empty_body_messages_decoded() {
    let cases = [
        (b'I', BackendMessage::EmptyQueryResponse),
        (b'c', BackendMessage::CopyDone),
        (b'1', BackendMessage::ParseComplete),
        (b'2', BackendMessage::BindComplete),
        (b'3', BackendMessage::CloseComplete),
        (b'n', BackendMessage::NoData),
        (b's', BackendMessage::PortalSuspended),
    ];
    for (tag, expected) in cases {
        assert_eq!(one(&msg(tag, b"")), expected);
        assert_eq!(expected.tag(), tag);
        assert_eq!(
            err(&msg(tag, b"x")),
            DecodeError::TrailingBytes { tag, extra: 1 }
        );
    }
}

#[test]
fn error_response_decoded() {
    let m = msg(
        b'E',
        b"SERROR\0VERROR\0C22012\0Mdivision by zero\0Fint.c\0\0",
    );
    let BackendMessage::ErrorResponse(f) = one(&m) else {
        panic!()
    };
    let fields: Vec<_> = f.iter().collect();
    assert_eq!(
        fields,
        [
            (b'S', &b"ERROR"[..]),
            (b'V', b"ERROR"),
            (b'C', b"22012"),
            (b'M', b"division by zero"),
            (b'F', b"int.c")
        ]
    );
    assert_eq!(f.get(b'C'), Some(&b"22012"[..]));
    assert_eq!(f.get(b'H'), None);
    // The terminator alone is a valid (empty) field list.
    let m = msg(b'E', b"\0");
    let BackendMessage::ErrorResponse(f) = one(&m) else {
        panic!()
    };
    assert_eq!(f.iter().count(), 0);
}

#[test]
fn notice_response_decoded() {
    let m = msg(b'N', b"SNOTICE\0Mn1\0\0");
    let BackendMessage::NoticeResponse(f) = one(&m) else {
        panic!()
    };
    assert_eq!(
        f.iter().collect::<Vec<_>>(),
        [(b'S', &b"NOTICE"[..]), (b'M', b"n1")]
    );
    assert_eq!(f.as_bytes(), b"SNOTICE\0Mn1\0");
}

#[test]
fn error_response_missing_terminator_rejected() {
    let e = DecodeError::MissingNul {
        tag: b'E',
        what: "field list terminator",
    };
    assert_eq!(err(&msg(b'E', b"SERROR\0")), e);
    assert_eq!(err(&msg(b'E', b"")), e);
    assert_eq!(
        err(&msg(b'E', b"SERROR")),
        DecodeError::MissingNul {
            tag: b'E',
            what: "field value"
        }
    );
    assert_eq!(
        err(&msg(b'E', b"S")),
        DecodeError::Truncated {
            tag: b'E',
            what: "field value"
        }
    );
    assert_eq!(
        err(&msg(b'N', b"Mx\0\0\0")),
        DecodeError::TrailingBytes {
            tag: b'N',
            extra: 1
        }
    );
}

#[test]
fn notification_response_decoded() {
    let m = msg(b'A', &cat(&[&4243u32.to_be_bytes(), b"chan\0payload\0"]));
    assert_eq!(
        one(&m),
        BackendMessage::NotificationResponse {
            pid: 4243,
            channel: b"chan",
            payload: b"payload"
        }
    );
    let m = msg(b'A', &cat(&[&1u32.to_be_bytes(), b"chan\0"]));
    assert_eq!(
        err(&m),
        DecodeError::Truncated {
            tag: b'A',
            what: "payload"
        }
    );
    let m = msg(b'A', &cat(&[&1u32.to_be_bytes(), b"chan\0\0x"]));
    assert_eq!(
        err(&m),
        DecodeError::TrailingBytes {
            tag: b'A',
            extra: 1
        }
    );
}

#[test]
fn negotiate_protocol_version_decoded() {
    let m = msg(
        b'v',
        &cat(&[
            &0x0003_0000u32.to_be_bytes(),
            &2i32.to_be_bytes(),
            b"_pq_.a\0_pq_.b\0",
        ]),
    );
    let BackendMessage::NegotiateProtocolVersion {
        newest_minor,
        unrecognized,
    } = one(&m)
    else {
        panic!()
    };
    assert_eq!(newest_minor, 0x0003_0000);
    assert_eq!(unrecognized.len(), 2);
    assert_eq!(
        unrecognized.iter().collect::<Vec<_>>(),
        [&b"_pq_.a"[..], b"_pq_.b"]
    );
}

#[test]
fn negotiate_protocol_version_malformed_rejected() {
    let v = 0x0003_0000u32.to_be_bytes();
    assert_eq!(
        err(&msg(b'v', &cat(&[&v, &(-1i32).to_be_bytes()]))),
        DecodeError::InvalidValue {
            tag: b'v',
            what: "option count"
        }
    );
    assert_eq!(
        err(&msg(b'v', &cat(&[&v, &2i32.to_be_bytes(), b"a\0"]))),
        DecodeError::Truncated {
            tag: b'v',
            what: "option name"
        }
    );
    assert_eq!(
        err(&msg(b'v', &cat(&[&v, &1i32.to_be_bytes(), b"a"]))),
        DecodeError::MissingNul {
            tag: b'v',
            what: "option name"
        }
    );
    assert_eq!(
        err(&msg(b'v', &cat(&[&v, &0i32.to_be_bytes(), b"a\0"]))),
        DecodeError::TrailingBytes {
            tag: b'v',
            extra: 2
        }
    );
    assert_eq!(
        err(&msg(b'v', &v)),
        DecodeError::Truncated {
            tag: b'v',
            what: "option count"
        }
    );
}

#[test]
fn copy_responses_decoded() {
    let body = cat(&[
        &[1],
        &2i16.to_be_bytes(),
        &1i16.to_be_bytes(),
        &0i16.to_be_bytes(),
    ]);
    for tag in [b'G', b'H', b'W'] {
        let bytes = msg(tag, &body);
        let m = one(&bytes);
        let c = match m {
            BackendMessage::CopyInResponse(c) if tag == b'G' => c,
            BackendMessage::CopyOutResponse(c) if tag == b'H' => c,
            BackendMessage::CopyBothResponse(c) if tag == b'W' => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(c.format, 1);
        assert_eq!(c.len(), 2);
        assert!(!c.is_empty());
        assert_eq!(c.column_formats().collect::<Vec<_>>(), [1, 0]);
    }
}

#[test]
fn copy_response_malformed_rejected() {
    assert_eq!(
        err(&msg(b'H', b"")),
        DecodeError::Truncated {
            tag: b'H',
            what: "copy format"
        }
    );
    assert_eq!(
        err(&msg(b'H', &[0, 0xff, 0xff])),
        DecodeError::InvalidValue {
            tag: b'H',
            what: "column count"
        }
    );
    assert_eq!(
        err(&msg(b'H', &[0, 0, 2, 0, 0])),
        DecodeError::Truncated {
            tag: b'H',
            what: "column format"
        }
    );
    assert_eq!(
        err(&msg(b'H', &[0, 0, 0, 9])),
        DecodeError::TrailingBytes {
            tag: b'H',
            extra: 1
        }
    );
}

#[test]
fn copy_data_decoded() {
    assert_eq!(one(&msg(b'd', b"1\n")), BackendMessage::CopyData(b"1\n"));
    assert_eq!(one(&msg(b'd', b"")), BackendMessage::CopyData(b""));
}

#[test]
fn parameter_description_decoded() {
    let m = msg(
        b't',
        &cat(&[
            &2i16.to_be_bytes(),
            &23u32.to_be_bytes(),
            &25u32.to_be_bytes(),
        ]),
    );
    let BackendMessage::ParameterDescription(p) = one(&m) else {
        panic!()
    };
    assert_eq!(p.len(), 2);
    assert!(!p.is_empty());
    assert_eq!(p.oids().collect::<Vec<_>>(), [23, 25]);
    assert_eq!(
        err(&msg(b't', &(-3i16).to_be_bytes())),
        DecodeError::InvalidValue {
            tag: b't',
            what: "parameter count"
        }
    );
    assert_eq!(
        err(&msg(
            b't',
            &cat(&[&2i16.to_be_bytes(), &23u32.to_be_bytes()])
        )),
        DecodeError::Truncated {
            tag: b't',
            what: "parameter type"
        }
    );
}

#[test]
fn function_call_response_decoded() {
    let m = msg(b'V', &cat(&[&3i32.to_be_bytes(), b"abc"]));
    assert_eq!(one(&m), BackendMessage::FunctionCallResponse(Some(b"abc")));
    let m = msg(b'V', &(-1i32).to_be_bytes());
    assert_eq!(one(&m), BackendMessage::FunctionCallResponse(None));
    let m = msg(b'V', &(-2i32).to_be_bytes());
    assert_eq!(
        err(&m),
        DecodeError::InvalidValue {
            tag: b'V',
            what: "result length"
        }
    );
    let m = msg(b'V', &cat(&[&4i32.to_be_bytes(), b"abc"]));
    assert_eq!(
        err(&m),
        DecodeError::Truncated {
            tag: b'V',
            what: "result value"
        }
    );
    let m = msg(b'V', &cat(&[&(-1i32).to_be_bytes(), b"abc"]));
    assert_eq!(
        err(&m),
        DecodeError::TrailingBytes {
            tag: b'V',
            extra: 3
        }
    );
}

// ---- framing ----------------------------------------------------------------------------------

#[test]
fn every_strict_prefix_needs_more() {
    for m in valid_messages() {
        for p in 0..m.len() {
            let expected = if p < 5 { 5 - p } else { m.len() - p };
            assert_eq!(
                dec(&m[..p]),
                Ok(Decoded::NeedMore(expected)),
                "{:?} prefix {p}",
                m[0] as char
            );
        }
    }
}

#[test]
fn need_more_count_is_consistent() {
    // Feeding exactly the announced count, repeatedly, always completes the message.
    for m in valid_messages() {
        for start in 0..m.len() {
            let mut have = start;
            loop {
                match dec(&m[..have]).unwrap() {
                    Decoded::NeedMore(n) => {
                        assert!(n > 0 && have + n <= m.len());
                        have += n;
                    }
                    Decoded::Message(_, used) => {
                        assert_eq!((have, used), (m.len(), m.len()));
                        break;
                    }
                }
            }
        }
    }
}

#[test]
fn trailing_stream_bytes_do_not_change_result() {
    let all = valid_messages();
    for m in &all {
        let mut longer = m.clone();
        longer.extend_from_slice(b"Z\0\0\0\x05I garbage");
        assert_eq!(dec(m), dec(&longer));
    }
    // A whole stream decodes message by message.
    let stream = all.concat();
    let (_, count) = exercise(&stream);
    assert_eq!(count, all.len());
}

#[test]
fn length_below_4_rejected() {
    for len in [0u32, 3] {
        let mut m = vec![b'Z'];
        m.extend_from_slice(&len.to_be_bytes());
        assert_eq!(err(&m), DecodeError::LengthTooSmall { tag: b'Z', len });
    }
    // Negative as Int32 is huge as u32: rejected as too large.
    assert!(matches!(
        err(b"D\xff\xff\xff\xff"),
        DecodeError::LengthTooLarge { tag: b'D', .. }
    ));
}

#[test]
fn unknown_tag_rejected() {
    assert_eq!(err(&msg(b'?', b"")), DecodeError::UnknownTag(b'?'));
    // Reported from the header alone.
    assert_eq!(err(b"x\0\0\0\x10"), DecodeError::UnknownTag(b'x'));
    // Frontend-only types are unknown to the backend decoder.
    for tag in [b'Q', b'P', b'B', b'X', b'p', b'f', 0] {
        assert_eq!(err(&msg(tag, b"")), DecodeError::UnknownTag(tag));
    }
}

#[test]
fn small_message_cap_enforced_from_header() {
    let limits = Limits::default();
    // Exactly the cap: accepted, waiting for the body.
    let mut m = vec![b'S'];
    m.extend_from_slice(&30_000u32.to_be_bytes());
    assert_eq!(decode(&m, &limits), Ok(Decoded::NeedMore(30_000 - 4)));
    m[1..5].copy_from_slice(&30_001u32.to_be_bytes());
    assert_eq!(
        decode(&m, &limits),
        Err(DecodeError::LengthTooLarge {
            tag: b'S',
            len: 30_001,
            max: 30_000
        })
    );
    // A complete message of exactly the cap decodes.
    let mut body = vec![b'a'; 30_000 - 4 - 3];
    body.extend_from_slice(b"\0b\0");
    let m = msg(b'S', &body);
    assert!(matches!(
        decode(&m, &limits),
        Ok(Decoded::Message(
            BackendMessage::ParameterStatus { .. },
            30_001
        ))
    ));
}

#[test]
fn data_message_cap_enforced_from_header() {
    let limits = Limits {
        max_data_message: 100,
        max_small_message: 10,
    };
    for tag in [b'T', b'D', b'd', b'V', b'E', b'N', b'A'] {
        let mut m = vec![tag];
        m.extend_from_slice(&100u32.to_be_bytes());
        assert_eq!(decode(&m, &limits), Ok(Decoded::NeedMore(96)));
        m[1..5].copy_from_slice(&101u32.to_be_bytes());
        assert_eq!(
            decode(&m, &limits),
            Err(DecodeError::LengthTooLarge {
                tag,
                len: 101,
                max: 100
            })
        );
    }
    // A DataRow of exactly the cap decodes; one byte more is rejected.
    let m = row(&[Some(&[b'x'; 100 - 4 - 2 - 4])]);
    assert_eq!(m.len(), 101);
    assert!(matches!(
        decode(&m, &limits),
        Ok(Decoded::Message(BackendMessage::DataRow(_), 101))
    ));
    let m = row(&[Some(&[b'x'; 100 - 4 - 2 - 4 + 1])]);
    assert!(matches!(
        decode(&m, &limits),
        Err(DecodeError::LengthTooLarge { .. })
    ));
    // Small types use the small cap.
    let mut m = vec![b'C'];
    m.extend_from_slice(&11u32.to_be_bytes());
    assert_eq!(
        decode(&m, &limits),
        Err(DecodeError::LengthTooLarge {
            tag: b'C',
            len: 11,
            max: 10
        })
    );
    // Default data cap: 1 GiB.
    let mut m = vec![b'd'];
    m.extend_from_slice(&0x4000_0001u32.to_be_bytes());
    assert!(matches!(
        dec(&m),
        Err(DecodeError::LengthTooLarge {
            len: 0x4000_0001,
            ..
        })
    ));
    m[1..5].copy_from_slice(&0x4000_0000u32.to_be_bytes());
    assert_eq!(dec(&m), Ok(Decoded::NeedMore(0x4000_0000 - 4)));
}

#[test]
fn display_texts_follow_libpq() {
    let e = DecodeError::LengthTooSmall { tag: b'Z', len: 2 };
    assert_eq!(
        e.to_string(),
        "lost synchronization with server: got message type \"Z\", length 2"
    );
    let e = DecodeError::UnknownTag(1);
    assert_eq!(
        e.to_string(),
        "unexpected response from server; first received character was \"\\x01\""
    );
}

// ---- real captures (dblink-libpq.md) ----------------------------------------------------------

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn captured_scram_exchange_decoded() {
    // S→C R len=23: AuthenticationSASL, list ending with the empty string.
    let m = cat(&[b"R", &hex("00000017 0000000a"), b"SCRAM-SHA-256\0\0"]);
    let BackendMessage::Authentication(Authentication::Sasl(list)) = one(&m) else {
        panic!()
    };
    assert_eq!(list.iter().collect::<Vec<_>>(), [&b"SCRAM-SHA-256"[..]]);
    // S→C R len=92: AuthenticationSASLContinue.
    let first =
        b"r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,s=bE2m1hdqDMcQinW6Q5OfJw==,i=4096";
    let m = cat(&[b"R", &hex("0000005c 0000000b"), first]);
    assert_eq!(
        one(&m),
        BackendMessage::Authentication(Authentication::SaslContinue(first))
    );
    // S→C R len=54: AuthenticationSASLFinal.
    let last = b"v=rmRuWbSMjZYURbcfW8suJdFJrVnkq78H0D1IkIwIKgs=";
    let m = cat(&[b"R", &hex("00000036 0000000c"), last]);
    assert_eq!(
        one(&m),
        BackendMessage::Authentication(Authentication::SaslFinal(last))
    );
    // S→C R len=8: AuthenticationOk.
    assert_eq!(
        one(&cat(&[b"R", &hex("00000008 00000000")])),
        BackendMessage::Authentication(Authentication::Ok)
    );
}

#[test]
fn captured_pg15_backend_key_data_decoded() {
    // PG15: K with len=12 (8-byte body: pid, 4-byte key).
    let m = cat(&[b"K", &hex("0000000c 00001093 11223344")]);
    assert_eq!(
        one(&m),
        BackendMessage::BackendKeyData {
            pid: 4243,
            key: &[0x11, 0x22, 0x33, 0x44]
        }
    );
}

#[test]
fn captured_pg15_negotiate_protocol_version_decoded() {
    // PG15 answering a 3.2 request: v = 00030000 00000000 (3.0, no unrecognized options). The first
    // Int32 carries the full version code, as libpq's pqGetNegotiateProtocolVersion3 expects.
    let m = cat(&[b"v", &hex("0000000c 00030000 00000000")]);
    let BackendMessage::NegotiateProtocolVersion {
        newest_minor,
        unrecognized,
    } = one(&m)
    else {
        panic!()
    };
    assert_eq!(newest_minor, 0x0003_0000);
    assert!(unrecognized.is_empty());
}

#[test]
fn captured_v2_format_error_rejected() {
    // A major version other than 3 gets a v2-format error: 'E' then text. Its "length" is ASCII.
    let m = b"EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\0";
    assert!(matches!(
        err(m),
        DecodeError::LengthTooLarge {
            tag: b'E',
            len: 0x4641_5441,
            ..
        }
    ));
}

#[test]
fn captured_copy_out_sequence_decoded() {
    // COPY (SELECT 1) TO STDOUT → H(format 0, 1 col) d('1\n') c C('COPY 1') Z
    let stream = cat(&[
        &msg(b'H', &[0, 0, 1, 0, 0]),
        &msg(b'd', b"1\n"),
        &msg(b'c', b""),
        &msg(b'C', b"COPY 1\0"),
        &msg(b'Z', b"I"),
    ]);
    let mut pos = 0;
    let mut tags = vec![];
    while let Ok(Decoded::Message(m, used)) = dec(&stream[pos..]) {
        tags.push(m.tag());
        pos += used;
    }
    assert_eq!(tags, b"HdcCZ");
    assert_eq!(pos, stream.len());
}

#[test]
fn decode_mutated_messages_never_panic() {
    // A deterministic miniature of the fuzz target: every byte of every valid message replaced by
    // boundary values, each result run through the same invariant checks.
    for m in valid_messages() {
        for i in 0..m.len() {
            for v in [0x00, 0x01, 0x04, 0x7f, 0x80, 0xfe, 0xff] {
                let mut bad = m.clone();
                bad[i] = v;
                exercise(&bad);
                bad.truncate(i);
                exercise(&bad);
            }
        }
    }
}

#[test]
fn data_row_fast_path_matches_decode() {
    let limits = Limits::default();
    let mut row = Vec::new();
    // Two rows back to back: a value, a NULL, an empty value.
    for _ in 0..2 {
        row.extend_from_slice(b"D\0\0\0\x15\0\x03\0\0\0\x03abc\xff\xff\xff\xff\0\0\0\0");
    }
    let mut out = Vec::new();
    assert_eq!(data_row_offsets(&row, &limits, 3, 10, &mut out), Some(22));
    assert_eq!(out, vec![10 + 11, NULL_FIELD, 10 + 22]);
    // Values of 3, NULL and 0 bytes.
    assert_eq!(data_row_value_bytes(22, 3), 3);
    match decode(&row, &limits) {
        Ok(Decoded::Message(BackendMessage::DataRow(decoded), 22)) => {
            assert_eq!(decoded.value_bytes(), 3)
        }
        other => panic!("{other:?}"),
    }
    // The same through the shared property check, for every cut of the stream.
    for cut in 0..=row.len() {
        exercise(&row[..cut]);
    }
}

#[test]
fn data_row_fast_path_declines_everything_else() {
    let limits = Limits::default();
    let valid = b"D\0\0\0\x0b\0\x01\0\0\0\x011".to_vec();
    let mut out = vec![1];
    assert_eq!(
        data_row_offsets(&valid, &limits, 2, 0, &mut out),
        None,
        "wrong column count"
    );
    assert_eq!(
        data_row_offsets(&valid[..11], &limits, 1, 0, &mut out),
        None,
        "partial"
    );
    let mut bad_len = valid.clone();
    bad_len[10] = 2; // the field claims 2 bytes, one is there
    assert_eq!(data_row_offsets(&bad_len, &limits, 1, 0, &mut out), None);
    let mut negative = valid.clone();
    negative[7..11].copy_from_slice(&(-2i32).to_be_bytes());
    assert_eq!(data_row_offsets(&negative, &limits, 1, 0, &mut out), None);
    let mut trailing = b"D\0\0\0\x0c\0\x01\0\0\0\x011".to_vec();
    trailing.push(b'x');
    assert_eq!(
        data_row_offsets(&trailing, &limits, 1, 0, &mut out),
        None,
        "trailing bytes"
    );
    assert_eq!(
        data_row_offsets(b"C\0\0\0\x0dSELECT 1\0", &limits, 1, 0, &mut out),
        None
    );
    assert_eq!(
        data_row_offsets(&valid, &limits, 1, u32::MAX as usize, &mut out),
        None,
        "offset overflow"
    );
    assert_eq!(
        data_row_offsets(
            &valid,
            &limits,
            1,
            u32::MAX as usize - valid.len(),
            &mut out
        ),
        None,
        "an offset could be NULL_FIELD"
    );
    assert_eq!(out, vec![1], "untouched");
    for bytes in [&bad_len, &negative, &trailing] {
        exercise(bytes);
    }
}

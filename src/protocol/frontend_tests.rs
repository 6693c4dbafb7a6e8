//! Byte-exact tests of the frontend encoders.

use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn enc(f: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut buf).unwrap();
    buf
}

/// Runs an encoder that must fail, checking that `buf` is left exactly as it was.
fn fails(f: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>) -> EncodeError {
    let mut buf = b"prior".to_vec();
    let e = f(&mut buf).unwrap_err();
    assert_eq!(buf, b"prior");
    e
}

#[test]
fn startup_message_captured_bytes() {
    // Captured from dblink [V15]: protocol 3.0, user, database, application_name.
    let b = enc(|b| {
        startup_message(
            PROTOCOL_3_0,
            [
                ("user", "alice"),
                ("database", "db1"),
                ("application_name", "dbl_app"),
            ],
            b,
        )
    });
    let body = b"user\0alice\0database\0db1\0application_name\0dbl_app\0\0";
    let mut expected = ((8 + body.len()) as u32).to_be_bytes().to_vec();
    expected.extend_from_slice(&[0, 3, 0, 0]);
    expected.extend_from_slice(body);
    assert_eq!(b, expected);
}

#[test]
fn startup_message_no_params() {
    let b = enc(|b| startup_message(PROTOCOL_3_2, [], b));
    assert_eq!(hex(&b), "000000090003000200");
}

#[test]
fn startup_message_interior_nul_rejected() {
    assert_eq!(
        fails(|b| startup_message(PROTOCOL_3_0, [("user", "a\0b")], b)),
        EncodeError::InteriorNul {
            what: "parameter value"
        }
    );
    assert_eq!(
        fails(|b| startup_message(PROTOCOL_3_0, [("us\0er", "a")], b)),
        EncodeError::InteriorNul {
            what: "parameter name"
        }
    );
}

#[test]
fn ssl_request_bytes() {
    let mut b = Vec::new();
    ssl_request(&mut b);
    assert_eq!(hex(&b), "0000000804d2162f");
}

#[test]
fn cancel_request_captured_bytes() {
    // Captured from dblink/libpq15: pid 4243, key 0x11223344.
    let b = enc(|b| cancel_request(4243, &[0x11, 0x22, 0x33, 0x44], b));
    assert_eq!(hex(&b), "0000001004d2162e0000109311223344");
}

#[test]
fn cancel_request_long_key() {
    // Protocol 3.2: length 12 + key length.
    let key = [0xabu8; 32];
    let b = enc(|b| cancel_request(1, &key, b));
    assert_eq!(&b[..12], [0, 0, 0, 44, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1]);
    assert_eq!(&b[12..], key);
    assert_eq!(enc(|b| cancel_request(1, &[0; 256], b)).len(), 268);
}

#[test]
fn cancel_request_key_of_3_and_257_bytes_rejected() {
    let e = EncodeError::InvalidValue {
        what: "cancel key length",
    };
    assert_eq!(fails(|b| cancel_request(1, &[0; 3], b)), e);
    assert_eq!(fails(|b| cancel_request(1, &[0; 257], b)), e);
}

#[test]
fn password_message_captured_bytes() {
    // Captured cleartext: `p` `secret\0`.
    let b = enc(|b| password_message(b"secret", b));
    assert_eq!(b, b"p\0\0\0\x0bsecret\0");
    assert_eq!(
        fails(|b| password_message(b"se\0cret", b)),
        EncodeError::InteriorNul { what: "password" }
    );
}

#[test]
fn sasl_initial_response_captured_bytes() {
    // C→S p len=54 "SCRAM-SHA-256\0" | Int32 32 | "n,,n=,r=xV3yFJ/WUxMSClp1AbComiHv"
    let b = enc(|b| {
        sasl_initial_response(
            "SCRAM-SHA-256",
            Some(b"n,,n=,r=xV3yFJ/WUxMSClp1AbComiHv"),
            b,
        )
    });
    let mut expected = b"p\0\0\0\x36SCRAM-SHA-256\0\0\0\0\x20".to_vec();
    expected.extend_from_slice(b"n,,n=,r=xV3yFJ/WUxMSClp1AbComiHv");
    assert_eq!(b, expected);
}

#[test]
fn sasl_initial_response_without_data() {
    let b = enc(|b| sasl_initial_response("M", None, b));
    assert_eq!(hex(&b), "700000000a4d00ffffffff");
    assert_eq!(
        fails(|b| sasl_initial_response("M\0", None, b)),
        EncodeError::InteriorNul {
            what: "SASL mechanism"
        }
    );
}

#[test]
fn sasl_response_captured_bytes() {
    // C→S p len=108: raw client-final, no inner length.
    let data = b"c=biws,r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,p=yBaOHC359dYM52Zc1ffpypveTi/BNwdJBp4uPpg72Fk=";
    let b = enc(|b| sasl_response(data, b));
    assert_eq!(&b[..5], b"p\0\0\0\x6c");
    assert_eq!(&b[5..], data);
}

#[test]
fn query_bytes() {
    let b = enc(|b| query("SELECT 1", b));
    assert_eq!(b, b"Q\0\0\0\x0dSELECT 1\0");
    assert_eq!(
        fails(|b| query("SELECT\0 1", b)),
        EncodeError::InteriorNul { what: "query" }
    );
}

#[test]
fn fixed_messages_bytes() {
    let mut b = Vec::new();
    terminate(&mut b);
    copy_done(&mut b);
    sync(&mut b);
    flush(&mut b);
    assert_eq!(b, b"X\0\0\0\x04c\0\0\0\x04S\0\0\0\x04H\0\0\0\x04");
}

#[test]
fn copy_data_and_fail_bytes() {
    assert_eq!(enc(|b| copy_data(b"1\t\0x\n", b)), b"d\0\0\0\x091\t\0x\n");
    assert_eq!(
        enc(|b| copy_fail("COPY FROM STDIN is not supported", b)),
        b"f\0\0\0\x25COPY FROM STDIN is not supported\0"
    );
    assert_eq!(
        fails(|b| copy_fail("a\0", b)),
        EncodeError::InteriorNul {
            what: "copy failure message"
        }
    );
}

#[test]
fn parse_bytes() {
    let b = enc(|b| parse("s1", "SELECT $1", &[23, 0], b));
    assert_eq!(b, b"P\0\0\0\x1bs1\0SELECT $1\0\0\x02\0\0\0\x17\0\0\0\0");
    assert_eq!(
        fails(|b| parse("s\0x", "q", &[], b)),
        EncodeError::InteriorNul {
            what: "statement name"
        }
    );
    assert_eq!(
        fails(|b| parse("", "q\0", &[], b)),
        EncodeError::InteriorNul { what: "query" }
    );
}

#[test]
fn parse_too_many_param_types_rejected() {
    let types = vec![0u32; 32_768];
    assert_eq!(
        fails(|b| parse("", "q", &types, b)),
        EncodeError::TooLong {
            what: "parameter types"
        }
    );
    // 32767 is the largest count that fits an Int16.
    assert_eq!(
        enc(|b| parse("", "q", &types[..32_767], b)).len(),
        1 + 4 + 1 + 2 + 2 + 4 * 32_767
    );
}

#[test]
fn bind_bytes() {
    let b = enc(|b| bind("p", "s", &[0], &[Some(b"42"), None], &[1], b));
    let expected = b"B\0\0\0\x1cp\0s\0\0\x01\0\0\0\x02\0\0\0\x0242\xff\xff\xff\xff\0\x01\0\x01";
    assert_eq!(hex(&b), hex(expected));
    let b = enc(|b| bind("", "", &[], &[], &[], b));
    assert_eq!(b, b"B\0\0\0\x0c\0\0\0\0\0\0\0\0");
}

#[test]
fn bind_malformed_rejected() {
    assert_eq!(
        fails(|b| bind("p\0", "", &[], &[], &[], b)),
        EncodeError::InteriorNul {
            what: "portal name"
        }
    );
    assert_eq!(
        fails(|b| bind("", "s\0", &[], &[], &[], b)),
        EncodeError::InteriorNul {
            what: "statement name"
        }
    );
    let many = vec![None; 32_768];
    assert_eq!(
        fails(|b| bind("", "", &[], &many, &[], b)),
        EncodeError::TooLong { what: "parameters" }
    );
    let formats = vec![0i16; 32_768];
    assert_eq!(
        fails(|b| bind("", "", &formats, &[], &[], b)),
        EncodeError::TooLong {
            what: "parameter formats"
        }
    );
    assert_eq!(
        fails(|b| bind("", "", &[], &[], &formats, b)),
        EncodeError::TooLong {
            what: "result formats"
        }
    );
}

#[test]
fn describe_and_close_bytes() {
    assert_eq!(enc(|b| describe(b'S', "s1", b)), b"D\0\0\0\x08Ss1\0");
    assert_eq!(enc(|b| describe(b'P', "", b)), b"D\0\0\0\x06P\0");
    assert_eq!(enc(|b| close(b'S', "s1", b)), b"C\0\0\0\x08Ss1\0");
    assert_eq!(enc(|b| close(b'P', "", b)), b"C\0\0\0\x06P\0");
}

#[test]
fn describe_and_close_bad_kind_rejected() {
    let e = EncodeError::InvalidValue {
        what: "describe/close kind",
    };
    assert_eq!(fails(|b| describe(b'X', "", b)), e);
    assert_eq!(fails(|b| close(b's', "", b)), e);
    assert_eq!(
        fails(|b| close(b'S', "a\0", b)),
        EncodeError::InteriorNul {
            what: "close target name"
        }
    );
}

#[test]
fn execute_bytes() {
    assert_eq!(enc(|b| execute("", 0, b)), b"E\0\0\0\x09\0\0\0\0\0");
    assert_eq!(enc(|b| execute("p", 100, b)), b"E\0\0\0\x0ap\0\0\0\0\x64");
    assert_eq!(
        fails(|b| execute("", 1 << 31, b)),
        EncodeError::TooLong { what: "row limit" }
    );
}

#[test]
fn encoders_append_after_existing_bytes() {
    let mut b = b"xy".to_vec();
    query("", &mut b).unwrap();
    sync(&mut b);
    assert_eq!(b, b"xyQ\0\0\0\x05\0S\0\0\0\x04");
}

#[test]
fn nul_search_finds_every_position_in_short_and_long_strings() {
    for len in [0, 1, 7, 8, 9, 10, 12, 14, 15, 16, 17, 24, 63, 64, 65, 200] {
        let clean: Vec<u8> = (0..len).map(|i| 1 + (i % 255) as u8).collect();
        assert!(!super::has_nul(&clean), "len {len}");
        // Bytes with the high bit set next to the NUL must not hide it, nor fake one.
        let high = vec![0x80u8; len];
        assert!(!super::has_nul(&high), "len {len}");
        for at in 0..len {
            for around in [1u8, 0x80, 0xff] {
                let mut s = vec![around; len];
                s[at] = 0;
                assert!(super::has_nul(&s), "len {len}, NUL at {at}");
            }
        }
    }
    assert_eq!(
        fails(|b| parse("", "SELECT 1 -- twelve bytes\0", &[], b)),
        EncodeError::InteriorNul { what: "query" }
    );
}

/// The unnamed statement and portal in text format (every query's) have their own encoding
/// paths: the same bytes as the general ones, the same errors.
#[test]
fn unnamed_fast_paths_match_the_general_encoding() {
    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }
    for sql in [
        "",
        "SELECT 1",
        "SELECT $1, 'a longer query text than sixty-four bytes, to be sure'",
    ] {
        assert_eq!(
            enc(|b| query(sql, b)),
            enc(|b| super::query_general(sql, b))
        );
        let mut body = vec![0];
        body.extend_from_slice(sql.as_bytes());
        body.extend_from_slice(&[0, 0, 0]);
        assert_eq!(enc(|b| parse("", sql, &[], b)), message(b'P', &body));
    }
    let params: [Option<&[u8]>; 3] = [Some(b"42"), None, Some(b"")];
    for statement in ["", "stmt"] {
        let mut body = vec![0];
        body.extend_from_slice(statement.as_bytes());
        body.extend_from_slice(b"\0\0\0\0\x03\0\0\0\x0242\xff\xff\xff\xff\0\0\0\0\0\0");
        assert_eq!(
            enc(|b| bind("", statement, &[], &params, &[], b)),
            message(b'B', &body)
        );
    }
    assert_eq!(enc(|b| describe(b'P', "", b)), message(b'D', b"P\0"));
    assert_eq!(enc(|b| describe(b'S', "", b)), message(b'D', b"S\0"));
    assert_eq!(enc(|b| execute("", 7, b)), message(b'E', b"\0\0\0\0\x07"));
    assert_eq!(
        fails(|b| parse("", "SELECT\0", &[], b)),
        EncodeError::InteriorNul { what: "query" }
    );
    assert_eq!(
        fails(|b| bind("", "s\0", &[], &params, &[], b)),
        EncodeError::InteriorNul {
            what: "statement name"
        }
    );
    assert_eq!(
        fails(|b| describe(b'X', "", b)),
        EncodeError::InvalidValue {
            what: "describe/close kind"
        }
    );
    assert_eq!(
        fails(|b| execute("", u32::MAX, b)),
        EncodeError::TooLong { what: "row limit" }
    );
}

#[test]
fn bind_text_params_matches_bind() {
    let text: [Option<&str>; 3] = [Some("42"), None, Some("")];
    let bytes: Vec<Option<&[u8]>> = text.iter().map(|p| p.map(str::as_bytes)).collect();
    for statement in ["", "stmt"] {
        assert_eq!(
            enc(|b| bind_text_params(statement, &text, b)),
            enc(|b| bind("", statement, &[], &bytes, &[], b))
        );
    }
    let many = vec![None; 32_768];
    assert_eq!(
        fails(|b| bind_text_params("", &many, b)),
        EncodeError::TooLong { what: "parameters" }
    );
    assert_eq!(
        fails(|b| bind_text_params("s\0", &text, b)),
        EncodeError::InteriorNul {
            what: "statement name"
        }
    );
}

/// The four messages one by one, as `send_extended` wrote them before [`query_params`].
fn query_params_general(
    sql: Option<&str>,
    statement: &str,
    params: &[Option<&str>],
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if let Some(sql) = sql {
        parse(statement, sql, &[], buf)?;
    }
    bind_text_params(statement, params, buf)?;
    describe(b'P', "", buf)?;
    execute("", 0, buf)
}

#[test]
fn query_params_matches_the_messages_one_by_one() {
    let text: [Option<&str>; 3] = [Some("42"), None, Some("é")];
    let many = vec![None; 32_768];
    type Case<'a> = (Option<&'a str>, &'a str, &'a [Option<&'a str>]);
    let cases: [Case; 9] = [
        (Some("SELECT $1"), "", &text[..1]),
        (Some("SELECT 1"), "", &[]),
        (Some("SELECT $1, $2, $3"), "", &text),
        (Some("SELECT $1"), "stmt", &text),
        (None, "stmt", &text),
        (None, "", &[]),
        (Some("SELECT \0"), "", &text),
        (Some("SELECT 1"), "", &many),
        (None, "s\0", &text),
    ];
    for (sql, statement, params) in cases {
        let mut one = b"prior".to_vec();
        let mut general = one.clone();
        let r1 = query_params(sql, statement, params, &mut one);
        let r2 = query_params_general(sql, statement, params, &mut general);
        assert_eq!(r1, r2, "{sql:?} {statement:?}");
        if r1.is_ok() {
            assert_eq!(one, general, "{sql:?} {statement:?}");
        }
    }
}

#[test]
fn the_query_text_is_where_the_offsets_say() {
    // `LastQuery` refers to the text inside the messages instead of copying it.
    let sql = "SELECT $1 -- é";
    let b = enc(|b| query(sql, b));
    assert_eq!(&b[QUERY_TEXT_AT..QUERY_TEXT_AT + sql.len()], sql.as_bytes());
    for name in ["", "stmt"] {
        let b = enc(|b| parse(name, sql, &[], b));
        let at = parse_text_at(name);
        assert_eq!(&b[at..at + sql.len()], sql.as_bytes());
        let b = enc(|b| parse(name, sql, &[23], b));
        assert_eq!(&b[at..at + sql.len()], sql.as_bytes());
        let b = enc(|b| query_params(Some(sql), name, &[Some("1"), None], b));
        assert_eq!(&b[at..at + sql.len()], sql.as_bytes());
    }
}

#[test]
fn query_params_writes_texts_and_values_of_every_short_length() {
    let source = "SELECT $1 é abcdefghijklmnopqrstuvwxyz";
    for n in (0..=20).filter(|&n| source.is_char_boundary(n)) {
        let sql = &source[..n];
        let value = "0123456789abcdefghijklmnopqrstuvwxyz";
        let value = &value[..n];
        let got = enc(|b| query_params(Some(sql), "", &[Some(value), None, Some("")], b));
        // Built by hand, byte by byte.
        let mut want = vec![b'P'];
        want.extend_from_slice(&(sql.len() as u32 + 8).to_be_bytes());
        want.push(0);
        want.extend(sql.bytes());
        want.extend([0, 0, 0, b'B']);
        want.extend_from_slice(&(value.len() as u32 + 4 + 12 + 8).to_be_bytes());
        want.extend([0, 0, 0, 0, 0, 3]);
        want.extend_from_slice(&(value.len() as u32).to_be_bytes());
        want.extend(value.bytes());
        want.extend([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]);
        want.extend([b'D', 0, 0, 0, 6, b'P', 0, b'E', 0, 0, 0, 9, 0, 0, 0, 0, 0]);
        assert_eq!(got, want, "{n}");
    }
}

/// `query`'s short-text block (8 to 16 bytes) against the general encoding at every length
/// around it, after bytes already queued and with a NUL anywhere.
#[test]
fn query_short_texts_match_the_general_encoding() {
    let text = "SELECT 1234567890abcdefghijklmnopqrstuvwxyz";
    for n in 0..=24 {
        let sql = &text[..n];
        let mut fast = b"queued".to_vec();
        let mut general = fast.clone();
        query(sql, &mut fast).unwrap();
        super::query_general(sql, &mut general).unwrap();
        assert_eq!(fast, general, "length {n}");
        for nul in 0..n {
            let mut bytes = sql.as_bytes().to_vec();
            bytes[nul] = 0;
            let with_nul = std::str::from_utf8(&bytes).unwrap();
            let mut buf = Vec::new();
            assert_eq!(
                query(with_nul, &mut buf),
                Err(EncodeError::InteriorNul { what: "query" })
            );
        }
    }
}

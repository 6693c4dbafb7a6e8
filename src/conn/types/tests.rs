//! Unit tests of the typed values: every expected error text below was captured from PostgreSQL
//! 15 (`SELECT $$input$$::type`); `protocol-tests/tests/live_types.rs` compares with the server
//! live.

use super::*;
use crate::conn::{Connection, PollResult, QueryResult, Rows, StartupConfig};

fn col() -> Column {
    Column::new("v", 25)
}

fn parse<'a, T: FromText<'a>>(text: &'a str) -> Result<T, (String, String)> {
    T::from_text(text, &col()).map_err(|e| {
        assert_eq!(e.severity(), Some("ERROR"), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::Other, "{e:?}");
        (e.code().unwrap_or("-").to_owned(), e.message().to_owned())
    })
}

fn err(code: &str, message: &str) -> (String, String) {
    (code.to_owned(), message.to_owned())
}

// ---- integers ----

#[test]
fn int_accepts_sign_and_surrounding_white_space() {
    assert_eq!(parse::<i32>(" +12 "), Ok(12));
    assert_eq!(parse::<i32>("\t12\n"), Ok(12));
    assert_eq!(parse::<i32>("-0"), Ok(0));
    assert_eq!(parse::<i32>("007"), Ok(7));
    assert_eq!(parse::<i16>("-32768"), Ok(i16::MIN));
    assert_eq!(parse::<i16>("32767"), Ok(i16::MAX));
    assert_eq!(parse::<i32>("2147483647"), Ok(i32::MAX));
    assert_eq!(parse::<i32>("-2147483648"), Ok(i32::MIN));
    assert_eq!(parse::<i64>(" -9223372036854775808 "), Ok(i64::MIN));
    assert_eq!(parse::<i64>("9223372036854775807"), Ok(i64::MAX));
}

#[test]
fn int_invalid_syntax_has_the_server_text() {
    for (input, ty) in [
        ("abc", "integer"),
        ("", "integer"),
        (" ", "integer"),
        ("+-1", "integer"),
        ("12x", "integer"),
        ("1_000", "integer"),
        ("0x10", "integer"),
        ("1 2", "integer"),
        ("1.0", "integer"),
        ("١٢", "integer"),
    ] {
        let want = format!("invalid input syntax for type {ty}: \"{input}\"");
        assert_eq!(parse::<i32>(input), Err(err("22P02", &want)));
    }
    assert_eq!(
        parse::<i16>("abc"),
        Err(err(
            "22P02",
            "invalid input syntax for type smallint: \"abc\""
        ))
    );
    assert_eq!(
        parse::<i64>("abc"),
        Err(err(
            "22P02",
            "invalid input syntax for type bigint: \"abc\""
        ))
    );
}

#[test]
fn int_out_of_range_is_22003_even_with_junk_after_the_digits() {
    assert_eq!(
        parse::<i32>("99999999999x"),
        Err(err(
            "22003",
            "value \"99999999999x\" is out of range for type integer"
        ))
    );
    assert_eq!(
        parse::<i16>("40000"),
        Err(err(
            "22003",
            "value \"40000\" is out of range for type smallint"
        ))
    );
    assert_eq!(
        parse::<i16>("32768"),
        Err(err(
            "22003",
            "value \"32768\" is out of range for type smallint"
        ))
    );
    assert_eq!(
        parse::<i32>("-2147483649"),
        Err(err(
            "22003",
            "value \"-2147483649\" is out of range for type integer"
        ))
    );
    assert_eq!(
        parse::<i64>("99999999999999999999"),
        Err(err(
            "22003",
            "value \"99999999999999999999\" is out of range for type bigint"
        ))
    );
    assert_eq!(
        parse::<i64>("9223372036854775808"),
        Err(err(
            "22003",
            "value \"9223372036854775808\" is out of range for type bigint"
        ))
    );
}

// ---- oid ----

#[test]
fn oid_follows_strtoul_and_the_sign_extension_rule() {
    assert_eq!(parse::<u32>(" +7 "), Ok(7));
    assert_eq!(parse::<u32>("4294967295"), Ok(u32::MAX));
    assert_eq!(parse::<u32>("-1"), Ok(4294967295));
    assert_eq!(parse::<u32>("-2147483648"), Ok(2147483648));
    assert_eq!(parse::<u32>("-0"), Ok(0));
    for bad in ["", "abc", "-", " ", "4294967296x", "1.5"] {
        let want = format!("invalid input syntax for type oid: \"{bad}\"");
        assert_eq!(parse::<u32>(bad), Err(err("22P02", &want)), "{bad:?}");
    }
    for far in [
        "4294967296",
        "-2147483649",
        "99999999999999999999999x",
        "-4294967295",
    ] {
        let want = format!("value \"{far}\" is out of range for type oid");
        assert_eq!(parse::<u32>(far), Err(err("22003", &want)), "{far:?}");
    }
}

// ---- bool ----

#[test]
fn bool_accepts_what_boolin_accepts() {
    for t in ["t", "true", "TRUE ", "tr", " yes ", "y", "on", "ON", "1"] {
        assert_eq!(parse::<bool>(t), Ok(true), "{t:?}");
    }
    for f in ["f", "false", "Fal", "no", "n", "of", "off", "0", "\tF\n"] {
        assert_eq!(parse::<bool>(f), Ok(false), "{f:?}");
    }
    for bad in ["x", "", "o", "10", "truex", "yess", "onn", " ", "-1", "t t"] {
        let want = format!("invalid input syntax for type boolean: \"{bad}\"");
        assert_eq!(parse::<bool>(bad), Err(err("22P02", &want)), "{bad:?}");
    }
}

// ---- floats ----

#[test]
fn float_reads_server_output_and_strtod_forms() {
    assert!(parse::<f64>("NaN").unwrap().is_nan());
    assert!(parse::<f64>("nan(123)").unwrap().is_nan());
    assert!(parse::<f64>("-nan").unwrap().is_nan());
    assert_eq!(parse::<f64>("Infinity"), Ok(f64::INFINITY));
    assert_eq!(parse::<f64>("-Infinity"), Ok(f64::NEG_INFINITY));
    assert_eq!(parse::<f64>("+inf"), Ok(f64::INFINITY));
    assert_eq!(parse::<f32>("Infinity"), Ok(f32::INFINITY));
    assert!(parse::<f32>("NaN").unwrap().is_nan());
    assert_eq!(parse::<f64>(".5"), Ok(0.5));
    assert_eq!(parse::<f64>("5."), Ok(5.0));
    assert_eq!(parse::<f64>(" -1.5e-05 "), Ok(-1.5e-5));
    assert_eq!(parse::<f64>("1e+100"), Ok(1e100));
    assert!(parse::<f64>("-0").unwrap().is_sign_negative());
    assert_eq!(parse::<f64>("4e-320"), Ok(4e-320));
    assert_eq!(parse::<f32>("1e-40"), Ok(1e-40));
    assert_eq!(parse::<f32>("3.4028235e+38"), Ok(f32::MAX));
    assert_eq!(parse::<f64>("1.7976931348623157e+308"), Ok(f64::MAX));
    assert_eq!(parse::<f64>("0.1"), Ok(0.1));
    assert_eq!(parse::<f32>("0.1"), Ok(0.1f32));
    assert_eq!(parse::<f64>("0e-99999"), Ok(0.0));
}

#[test]
fn float_hexadecimal_as_glibc_reads_it() {
    assert_eq!(parse::<f64>("0x10"), Ok(16.0));
    assert_eq!(parse::<f64>("0x1.8p1"), Ok(3.0));
    assert_eq!(parse::<f64>("0x.8"), Ok(0.5));
    assert_eq!(parse::<f64>("-0X1P-2"), Ok(-0.25));
    assert_eq!(
        parse::<f64>("0x1p"),
        Err(err(
            "22P02",
            "invalid input syntax for type double precision: \"0x1p\""
        ))
    );
    assert_eq!(
        parse::<f64>("0x1.fffffffffffff8p1023"),
        Err(err(
            "22003",
            "\"0x1.fffffffffffff8p1023\" is out of range for type double precision"
        ))
    );
    assert_eq!(parse::<f64>("0x1.fffffffffffffp1023"), Ok(f64::MAX));
    assert_eq!(parse::<f64>("0x1p-1074"), Ok(f64::from_bits(1)));
    assert_eq!(
        parse::<f64>("0x1p-1075"),
        Err(err(
            "22003",
            "\"0x1p-1075\" is out of range for type double precision"
        ))
    );
    assert_eq!(parse::<f64>("0x1.8p-1075"), Ok(f64::from_bits(1)));
    assert_eq!(parse::<f64>("0x1.00000000000008p0"), Ok(1.0));
    assert_eq!(
        parse::<f64>("0x1.000000000000080000000001p0"),
        Ok(1.0 + f64::EPSILON)
    );
    assert_eq!(
        parse::<f64>("0x1.00000000000018p0"),
        Ok(1.0 + 2.0 * f64::EPSILON)
    );
    assert_eq!(parse::<f32>("0x1.fffffep127"), Ok(f32::MAX));
    assert_eq!(
        parse::<f32>("0x1.ffffffp127"),
        Err(err(
            "22003",
            "\"0x1.ffffffp127\" is out of range for type real"
        ))
    );
    assert_eq!(parse::<f32>("0x1p-149"), Ok(f32::from_bits(1)));
    assert_eq!(parse::<f64>("0x0000000000000000000000001p0"), Ok(1.0));
    assert_eq!(
        parse::<f64>("0x123456789abcdef0123p0"),
        Ok(0x0123_4567_89ab_cdef_0123_u128 as f64)
    );
}

#[test]
fn float_errors_have_the_server_text() {
    for bad in ["abc", "", "1e", ".", "1e+", "0x", "infinit", "1,5", "- 1"] {
        let want = format!("invalid input syntax for type double precision: \"{bad}\"");
        assert_eq!(parse::<f64>(bad), Err(err("22P02", &want)), "{bad:?}");
        let want = format!("invalid input syntax for type real: \"{bad}\"");
        assert_eq!(parse::<f32>(bad), Err(err("22P02", &want)), "{bad:?}");
    }
    // float8in quotes the number alone, float4in the whole input.
    for (input, number) in [
        ("1e999", "1e999"),
        (" 1e999x", "1e999"),
        ("  -1e309  ", "-1e309"),
        ("1e-400", "1e-400"),
        ("1.7976931348623159e308", "1.7976931348623159e308"),
        ("0x1p99999", "0x1p99999"),
        ("0x1p-1080", "0x1p-1080"),
    ] {
        let want = format!("\"{number}\" is out of range for type double precision");
        assert_eq!(parse::<f64>(input), Err(err("22003", &want)), "{input:?}");
    }
    for input in ["1e39", " 1e39 ", "1e-50", "3.4028236e38", "1e39x"] {
        let want = format!("\"{input}\" is out of range for type real");
        assert_eq!(parse::<f32>(input), Err(err("22003", &want)), "{input:?}");
    }
}

// ---- bytea ----

#[test]
fn bytea_hex_and_escape_formats() {
    assert_eq!(parse::<Vec<u8>>("\\x00ff"), Ok(vec![0, 255]));
    assert_eq!(parse::<Vec<u8>>("\\x"), Ok(vec![]));
    assert_eq!(
        parse::<Vec<u8>>("\\xDEADbeef"),
        Ok(vec![0xde, 0xad, 0xbe, 0xef])
    );
    assert_eq!(parse::<Vec<u8>>("\\x 00 ff "), Ok(vec![0, 255]));
    assert_eq!(parse::<Vec<u8>>("a\\\\b\\001"), Ok(b"a\\b\x01".to_vec()));
    assert_eq!(parse::<Vec<u8>>("\\377\\000"), Ok(vec![255, 0]));
    assert_eq!(parse::<Vec<u8>>("abc"), Ok(b"abc".to_vec()));
    assert_eq!(parse::<Vec<u8>>("é"), Ok("é".as_bytes().to_vec()));
    assert_eq!(parse::<Vec<u8>>(""), Ok(vec![]));
}

#[test]
fn bytea_errors_have_the_server_text() {
    let odd = err("22023", "invalid hexadecimal data: odd number of digits");
    assert_eq!(parse::<Vec<u8>>("\\x0"), Err(odd.clone()));
    assert_eq!(parse::<Vec<u8>>("\\x00 f"), Err(odd));
    let digit = |d: &str| err("22023", &format!("invalid hexadecimal digit: \"{d}\""));
    assert_eq!(parse::<Vec<u8>>("\\x0 0"), Err(digit(" ")));
    assert_eq!(parse::<Vec<u8>>("\\xzz"), Err(digit("z")));
    assert_eq!(parse::<Vec<u8>>("\\x0é"), Err(digit("é")));
    assert_eq!(parse::<Vec<u8>>("\\xé0"), Err(digit("é")));
    let escape = err("22P02", "invalid input syntax for type bytea");
    for bad in ["\\X00", "a\\b", "\\400", "\\", "\\01", "x\\8"] {
        assert_eq!(parse::<Vec<u8>>(bad), Err(escape.clone()), "{bad:?}");
    }
}

// ---- text ----

#[test]
fn text_never_fails_and_str_borrows() {
    let text = String::from(" any thing\\x ");
    let borrowed: &str = parse(&text).unwrap();
    assert!(std::ptr::eq(borrowed, text.as_str()));
    assert_eq!(parse::<String>(&text), Ok(text.clone()));
}

// ---- through Rows and Row ----

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The rows the server sends for these columns (name, type OID) and values.
fn rows(columns: &[(&str, u32)], values: &[&[Option<&[u8]>]]) -> Rows {
    let mut conn = Connection::new(StartupConfig::builder("alice", "db1", "nonce").build());
    conn.consume_output(conn.pending_output().len());
    conn.handle_input(&[msg(b'R', &[0; 4]), msg(b'Z', b"I")].concat());
    conn.send_query("SELECT").unwrap();
    let mut input = Vec::new();
    let mut body = (columns.len() as i16).to_be_bytes().to_vec();
    for (name, oid) in columns {
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&[0; 7]);
        body.extend_from_slice(&oid.to_be_bytes());
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
    input.extend(msg(b'T', &body));
    for row in values {
        let mut body = (row.len() as i16).to_be_bytes().to_vec();
        for value in *row {
            match value {
                Some(v) => {
                    body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    body.extend_from_slice(v);
                }
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        input.extend(msg(b'D', &body));
    }
    input.extend(msg(b'C', b"SELECT\0"));
    input.extend(msg(b'Z', b"I"));
    conn.handle_input(&input);
    match conn.poll_result() {
        PollResult::Ready(Ok(QueryResult::Rows(rows))) => rows,
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_as_converts_and_gives_none_for_null() {
    let rows = rows(
        &[("i", 23), ("b", 16), ("t", 25)],
        &[
            &[Some(b"42"), Some(b"t"), Some(b"hello")],
            &[None, None, None],
            &[Some(b"-7"), Some(b"f"), Some(b"")],
        ],
    );
    assert_eq!(rows.get_as::<i32>(0, 0).unwrap(), Some(42));
    assert_eq!(rows.get_as::<i64>(2, 0).unwrap(), Some(-7));
    assert_eq!(rows.get_as::<bool>(0, 1).unwrap(), Some(true));
    assert_eq!(rows.get_as::<bool>(2, 1).unwrap(), Some(false));
    assert_eq!(rows.get_as::<&str>(0, 2).unwrap(), Some("hello"));
    assert_eq!(rows.get_as::<&str>(2, 2).unwrap(), Some(""));
    assert_eq!(rows.get_as::<String>(2, 2).unwrap(), Some(String::new()));
    for col in 0..3 {
        assert_eq!(rows.get_as::<i32>(1, col).unwrap(), None);
        assert_eq!(rows.get_as::<&str>(1, col).unwrap(), None);
        assert_eq!(rows.get_as::<Vec<u8>>(1, col).unwrap(), None);
    }
    // Zero-copy: the &str is the one `get` returns, in the received buffer.
    let a: &str = rows.get_as(0, 2).unwrap().unwrap();
    assert!(std::ptr::eq(a, rows.get(0, 2).unwrap()));

    let row = rows.row(0).unwrap();
    assert_eq!(row.get_as::<i16>(0).unwrap(), Some(42));
    assert_eq!(row.get_as::<bool>(1).unwrap(), Some(true));
    let s: &str = row.get_as(2).unwrap().unwrap();
    assert!(std::ptr::eq(s, row.get(2).unwrap()));
    let collected: Vec<Option<i32>> = rows.iter().map(|r| r.get_as(0).unwrap()).collect();
    assert_eq!(collected, [Some(42), None, Some(-7)]);

    let e = rows.get_as::<i32>(0, 2).unwrap_err();
    assert_eq!(e.code(), Some("22P02"));
    assert_eq!(
        e.message(),
        "invalid input syntax for type integer: \"hello\""
    );
    assert_eq!(
        e.to_string(),
        "ERROR:  invalid input syntax for type integer: \"hello\""
    );
    let e = row.get_as::<bool>(0).unwrap_err();
    assert_eq!(e.message(), "invalid input syntax for type boolean: \"42\"");
}

#[test]
fn get_as_index_out_of_range_has_libpq_text_and_no_sqlstate() {
    let rows = rows(
        &[("a", 25), ("b", 25)],
        &[
            &[Some(b"1"), Some(b"2")],
            &[Some(b"3"), None],
            &[None, None],
        ],
    );
    let check = |e: Error, want: &str| {
        assert_eq!(e.message(), want);
        assert_eq!(e.code(), None);
        assert_eq!(e.kind(), ErrorKind::Usage);
    };
    check(
        rows.get_as::<i32>(7, 0).unwrap_err(),
        "row number 7 is out of range 0..2",
    );
    check(
        rows.get_as::<i32>(0, 5).unwrap_err(),
        "column number 5 is out of range 0..1",
    );
    // The row is checked first, as PQgetvalue does.
    check(
        rows.get_as::<i32>(3, 9).unwrap_err(),
        "row number 3 is out of range 0..2",
    );
    check(
        rows.row(1).unwrap().get_as::<&str>(2).unwrap_err(),
        "column number 2 is out of range 0..1",
    );
    let empty = self::rows(&[("a", 25)], &[]);
    check(
        empty.get_as::<i32>(0, 0).unwrap_err(),
        "row number 0 is out of range 0..-1",
    );
    let no_columns = self::rows(&[], &[&[]]);
    check(
        no_columns.get_as::<i32>(0, 0).unwrap_err(),
        "column number 0 is out of range 0..-1",
    );
    check(
        no_columns.row(0).unwrap().get_as::<i32>(0).unwrap_err(),
        "column number 0 is out of range 0..-1",
    );
}

#[test]
fn column_is_passed_to_from_text() {
    struct TypeOf(u32, String);
    impl FromText<'_> for TypeOf {
        fn from_text(text: &str, column: &Column) -> Result<TypeOf, Error> {
            Ok(TypeOf(
                column.type_oid(),
                format!("{}={text}", column.name()),
            ))
        }
    }
    let rows = rows(&[("x", 23), ("y", 1043)], &[&[Some(b"1"), Some(b"v")]]);
    let TypeOf(oid, text) = rows.get_as(0, 1).unwrap().unwrap();
    assert_eq!((oid, text.as_str()), (1043, "y=v"));
}

#[test]
fn arbitrary_text_never_panics() {
    let pieces = [
        "0",
        "9",
        "x",
        "X",
        "p",
        "e",
        ".",
        "-",
        "+",
        " ",
        "\\",
        "\\x",
        "7",
        "3",
        "é",
        "✓",
        "n",
        "a",
        "i",
        "(",
        ")",
        "f",
        "t",
        "o",
        "\u{b}",
        "1e400",
        "0x1p-1074",
        "ffffffffffffffffffff",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 8) as usize;
        let text: String = (0..len)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let c = col();
        let _ = bool::from_text(&text, &c);
        let _ = i16::from_text(&text, &c);
        let _ = i32::from_text(&text, &c);
        let _ = i64::from_text(&text, &c);
        let _ = u32::from_text(&text, &c);
        let _ = f32::from_text(&text, &c);
        let _ = f64::from_text(&text, &c);
        let _ = Vec::<u8>::from_text(&text, &c);
        // Whatever Rust reads as a decimal number, float8in reads the same (both round correctly).
        if let Ok(rust) = text.parse::<f64>()
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
            && rust.is_finite()
            && (rust != 0.0 || !text.bytes().any(|b| b.is_ascii_digit() && b != b'0'))
        {
            assert_eq!(
                f64::from_text(&text, &c).map(f64::to_bits),
                Ok(rust.to_bits()),
                "{text:?}"
            );
        }
    }
}

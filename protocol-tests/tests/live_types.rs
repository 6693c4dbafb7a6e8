//! Typed values (`FromText`, `get_as`) against a real PostgreSQL: every type read from values the
//! server produced, and, for many texts, pgdblink's conversion compared with the server's own input
//! function (`SELECT 'abc'::int4`): the same value, or the same SQLSTATE, severity and message.

use std::fmt::Debug;

use pgdblink::cluster::{Cluster, Role};
use pgdblink::driver::Client;
use pgdblink::{ErrorKind, FromText, QueryResult, Rows};

fn client() -> Client {
    let cluster = Cluster::shared().expect("throwaway cluster");
    Client::connect(&cluster.conninfo(Role::Super)).expect("connect")
}

fn rows(client: &mut Client, sql: &str) -> Rows {
    match client.query(sql).expect(sql).pop() {
        Some(QueryResult::Rows(rows)) => rows,
        other => panic!("{sql}: {other:?}"),
    }
}

/// `text` as an SQL literal (dollar-quoted; the texts here never hold the quote).
fn literal(text: &str) -> String {
    assert!(!text.contains("$q$"));
    format!("$q${text}$q$")
}

#[test]
fn every_type_reads_the_values_the_server_produces() {
    let mut c = client();
    let r = rows(
        &mut c,
        r"SELECT '-32768'::int2, '32767'::int2, '2147483647'::int4, '-2147483648'::int4,
                 '-9223372036854775808'::int8, '9223372036854775807'::int8,
                 'pg_class'::regclass::oid, '4294967295'::oid, true, false,
                 'NaN'::float8, 'Infinity'::float8, '-Infinity'::float8, 'Infinity'::float4,
                 '-Infinity'::float4, 'NaN'::float4, '-0'::float8, '1e-40'::float4,
                 '4e-320'::float8, '3.4028235e38'::float4, '1.7976931348623157e308'::float8,
                 0.1::float8, 0.1::float4,
                 '\x00ff'::bytea, '\x'::bytea, 'héllo ✓'::text, ''::text,
                 NULL::int2, NULL::int4, NULL::int8, NULL::oid, NULL::bool, NULL::float4,
                 NULL::float8, NULL::bytea, NULL::text",
    );
    assert_eq!(r.get_as::<i16>(0, 0).unwrap(), Some(i16::MIN));
    assert_eq!(r.get_as::<i16>(0, 1).unwrap(), Some(i16::MAX));
    assert_eq!(r.get_as::<i32>(0, 2).unwrap(), Some(i32::MAX));
    assert_eq!(r.get_as::<i32>(0, 3).unwrap(), Some(i32::MIN));
    assert_eq!(r.get_as::<i64>(0, 4).unwrap(), Some(i64::MIN));
    assert_eq!(r.get_as::<i64>(0, 5).unwrap(), Some(i64::MAX));
    assert_eq!(r.get_as::<u32>(0, 6).unwrap(), Some(1259));
    assert_eq!(r.get_as::<u32>(0, 7).unwrap(), Some(u32::MAX));
    assert_eq!(r.get_as::<bool>(0, 8).unwrap(), Some(true));
    assert_eq!(r.get_as::<bool>(0, 9).unwrap(), Some(false));
    assert!(r.get_as::<f64>(0, 10).unwrap().unwrap().is_nan());
    assert_eq!(r.get_as::<f64>(0, 11).unwrap(), Some(f64::INFINITY));
    assert_eq!(r.get_as::<f64>(0, 12).unwrap(), Some(f64::NEG_INFINITY));
    assert_eq!(r.get_as::<f32>(0, 13).unwrap(), Some(f32::INFINITY));
    assert_eq!(r.get_as::<f32>(0, 14).unwrap(), Some(f32::NEG_INFINITY));
    assert!(r.get_as::<f32>(0, 15).unwrap().unwrap().is_nan());
    let zero = r.get_as::<f64>(0, 16).unwrap().unwrap();
    assert!(zero == 0.0 && zero.is_sign_negative());
    assert_eq!(r.get_as::<f32>(0, 17).unwrap(), Some(1e-40));
    assert_eq!(r.get_as::<f64>(0, 18).unwrap(), Some(4e-320));
    assert_eq!(r.get_as::<f32>(0, 19).unwrap(), Some(f32::MAX));
    assert_eq!(r.get_as::<f64>(0, 20).unwrap(), Some(f64::MAX));
    assert_eq!(r.get_as::<f64>(0, 21).unwrap(), Some(0.1));
    assert_eq!(r.get_as::<f32>(0, 22).unwrap(), Some(0.1));
    assert_eq!(r.get_as::<Vec<u8>>(0, 23).unwrap(), Some(vec![0, 255]));
    assert_eq!(r.get_as::<Vec<u8>>(0, 24).unwrap(), Some(vec![]));
    let text: &str = r.get_as(0, 25).unwrap().unwrap();
    assert_eq!(text, "héllo ✓");
    assert!(
        std::ptr::eq(text, r.get(0, 25).unwrap()),
        "&str is not a copy"
    );
    assert_eq!(r.get_as::<String>(0, 26).unwrap(), Some(String::new()));
    let row = r.row(0).unwrap();
    assert_eq!(row.get_as::<i16>(27).unwrap(), None);
    assert_eq!(row.get_as::<i32>(28).unwrap(), None);
    assert_eq!(row.get_as::<i64>(29).unwrap(), None);
    assert_eq!(row.get_as::<u32>(30).unwrap(), None);
    assert_eq!(row.get_as::<bool>(31).unwrap(), None);
    assert_eq!(row.get_as::<f32>(32).unwrap(), None);
    assert_eq!(row.get_as::<f64>(33).unwrap(), None);
    assert_eq!(row.get_as::<Vec<u8>>(34).unwrap(), None);
    assert_eq!(row.get_as::<&str>(35).unwrap(), None);
    assert_eq!(row.get_as::<String>(35).unwrap(), None);
}

#[test]
fn floats_match_the_servers_binary_representation_bit_for_bit() {
    let mut c = client();
    c.query("SELECT setseed(0.25)").unwrap();
    // Normal numbers over the whole exponent range, and denormals.
    let r = rows(
        &mut c,
        "SELECT v, float8send(v) FROM (
             SELECT (random() - 0.5) * 10 ^ (trunc(random() * 600) - 300) AS v
             FROM generate_series(1, 1500)
             UNION ALL SELECT (random() - 0.5) * 1e-310 FROM generate_series(1, 300)) s",
    );
    assert_eq!(r.len(), 1800);
    for row in &r {
        let v: f64 = row.get_as(0).unwrap().unwrap();
        let bits: Vec<u8> = row.get_as(1).unwrap().unwrap();
        let want = f64::from_be_bytes(bits.try_into().unwrap());
        assert_eq!(v.to_bits(), want.to_bits(), "{:?} -> {v:e}", row.get(0));
    }
    let r = rows(
        &mut c,
        "SELECT v, float4send(v) FROM (
             SELECT ((random() - 0.5) * 10 ^ (trunc(random() * 60) - 30))::float4 AS v
             FROM generate_series(1, 1000)
             UNION ALL SELECT ((random() - 0.5) * 1e-40)::float4 FROM generate_series(1, 200)) s",
    );
    assert_eq!(r.len(), 1200);
    for row in &r {
        let v: f32 = row.get_as(0).unwrap().unwrap();
        let bits: Vec<u8> = row.get_as(1).unwrap().unwrap();
        let want = f32::from_be_bytes(bits.try_into().unwrap());
        assert_eq!(v.to_bits(), want.to_bits(), "{:?} -> {v:e}", row.get(0));
    }
}

#[test]
fn bytea_reads_hex_and_escape_output() {
    let mut c = client();
    let sql = "SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), ''), 'hex'), ''::bytea
               FROM generate_series(0, 255) i";
    let all: Vec<u8> = (0..=255).collect();
    let hex = rows(&mut c, sql);
    assert!(hex.get(0, 0).unwrap().starts_with("\\x0001"));
    assert_eq!(hex.get_as::<Vec<u8>>(0, 0).unwrap(), Some(all.clone()));
    c.query("SET bytea_output = escape").unwrap();
    let escape = rows(&mut c, sql);
    assert!(escape.get(0, 0).unwrap().starts_with("\\000\\001"));
    assert_eq!(escape.get_as::<Vec<u8>>(0, 0).unwrap(), Some(all));
    assert_eq!(escape.get_as::<Vec<u8>>(0, 1).unwrap(), Some(vec![]));
    let md5 = rows(
        &mut c,
        "SELECT md5(i::text), decode(md5(i::text), 'hex') FROM generate_series(1, 200) i",
    );
    for row in &md5 {
        let hex = row.get(0).unwrap();
        let want: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(row.get_as::<Vec<u8>>(1).unwrap(), Some(want));
    }
}

#[test]
fn index_out_of_range_has_libpq_text() {
    let mut c = client();
    let r = rows(&mut c, "SELECT 1, 2 FROM generate_series(1, 3)");
    let e = r.get_as::<i32>(7, 0).unwrap_err();
    assert_eq!(e.message(), "row number 7 is out of range 0..2");
    assert_eq!((e.code(), e.kind()), (None, ErrorKind::Usage));
    let e = r.get_as::<i32>(0, 5).unwrap_err();
    assert_eq!(e.message(), "column number 5 is out of range 0..1");
    assert_eq!(e.code(), None);
    let e = r.row(2).unwrap().get_as::<i32>(5).unwrap_err();
    assert_eq!(e.message(), "column number 5 is out of range 0..1");
    assert_eq!(r.get_as::<i32>(2, 1).unwrap(), Some(2));
}

/// A deterministic generator of test texts.
struct Texts(u64);

impl Texts {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A text of up to `max` characters from `alphabet`.
    fn text(&mut self, alphabet: &[&str], max: usize) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }

    /// A decimal number, with white space, a sign and junk now and then.
    fn number(&mut self, digits: usize) -> String {
        let mut out = String::new();
        for (chance, piece) in [(6, " "), (5, "-"), (9, "+"), (12, "\t")] {
            if self.below(chance) == 0 {
                out.push_str(piece);
            }
        }
        let n = 1 + self.below(digits);
        out.extend((0..n).map(|_| char::from(b'0' + self.below(10) as u8)));
        for (chance, piece) in [
            (6, " "),
            (15, "x"),
            (20, "\n"),
            (25, "\u{a0}"),
            (30, "\u{b}"),
        ] {
            if self.below(chance) == 0 {
                out.push_str(piece);
            }
        }
        out
    }
}

/// For each text: pgdblink's conversion of the text (read from the server as `text`) and the
/// server's cast of the same text to `ty` agree: both fail with the same SQLSTATE, severity and
/// message, or both succeed with the same value (pgdblink reads the server's output of the cast
/// for comparison).
fn parity<T>(c: &mut Client, ty: &str, texts: &[String], same: fn(&T, &T) -> bool) -> usize
where
    T: for<'a> FromText<'a> + Debug,
{
    let mut failures = Vec::new();
    let mut errors = 0;
    for chunk in texts.chunks(200) {
        let values: Vec<String> = chunk.iter().map(|t| format!("({})", literal(t))).collect();
        let fetched = rows(c, &format!("VALUES {}", values.join(", ")));
        assert_eq!(fetched.len(), chunk.len());
        for (i, text) in chunk.iter().enumerate() {
            assert_eq!(fetched.get(i, 0), Some(text.as_str()));
            let ours = fetched.get_as::<T>(i, 0).map(Option::unwrap);
            let server = c
                .query(&format!("SELECT {}::{ty}", literal(text)))
                .map(|mut r| match r.pop() {
                    Some(QueryResult::Rows(rows)) => rows,
                    other => panic!("{other:?}"),
                });
            let agree = match (&ours, &server) {
                (Ok(ours), Ok(rows)) => {
                    let theirs = rows.get_as::<T>(0, 0).expect("server output").unwrap();
                    same(ours, &theirs)
                }
                (Err(ours), Err(theirs)) => {
                    errors += 1;
                    ours.code() == theirs.code()
                        && ours.message() == theirs.message()
                        && ours.severity() == theirs.severity()
                }
                _ => false,
            };
            if !agree {
                failures.push(format!(
                    "{ty} {text:?}: pgdblink {ours:?}, server {:?}",
                    server.map(|r| r.get(0, 0).map(str::to_owned))
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    errors
}

fn eq<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

fn curated(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn integer_and_oid_errors_match_the_server() {
    let mut c = client();
    let mut texts = curated(&[
        "abc",
        "",
        " ",
        "+-1",
        "12x",
        " +12 ",
        "\t12",
        "99999999999x",
        "1_000",
        "0x10",
        "40000",
        "-32768",
        "32768",
        "-32769",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999",
        "4294967295",
        "4294967296",
        "-1",
        "-0",
        "4294967296x",
        "99999999999999999999999x",
        "18446744073709551615",
        "18446744073709551616",
        "-18446744073709551615",
        "1.0",
        "1e3",
        "١٢",
        "12\u{a0}",
        "\u{b}7\u{c}",
        "--1",
        "- 1",
        "+",
        "-",
    ]);
    let mut texts_gen = Texts(0x9e37_79b9_7f4a_7c15);
    let alphabet = ["0", "1", "9", "5", "-", "+", " ", "\t", "x", "é", "."];
    for i in 0..300 {
        texts.push(match i % 3 {
            0 => texts_gen.text(&alphabet, 8),
            1 => texts_gen.number(12),
            _ => texts_gen.number(22),
        });
    }
    let errors = parity::<i16>(&mut c, "int2", &texts, eq)
        + parity::<i32>(&mut c, "int4", &texts, eq)
        + parity::<i64>(&mut c, "int8", &texts, eq)
        + parity::<u32>(&mut c, "oid", &texts, eq);
    assert!(errors > 4 * 100, "too few failing texts compared: {errors}");
}

#[test]
fn boolean_errors_match_the_server() {
    let mut c = client();
    let mut texts = curated(&[
        "x",
        "",
        "o",
        "of",
        "on",
        "off",
        "offf",
        "tr",
        "TRUE ",
        " yes ",
        "1",
        "0",
        "10",
        "t",
        "f",
        "n",
        "no",
        "y",
        "ye",
        "yess",
        "\tFalse\n",
        "truex",
        "é",
        "t\u{a0}",
    ]);
    let mut texts_gen = Texts(7);
    let alphabet = [
        "t", "T", "r", "u", "e", "f", "a", "l", "s", "y", "n", "o", "O", "1", "0", " ", "\t",
    ];
    for _ in 0..400 {
        texts.push(texts_gen.text(&alphabet, 6));
    }
    let errors = parity::<bool>(&mut c, "bool", &texts, eq);
    assert!(errors > 100, "too few failing texts compared: {errors}");
}

#[test]
fn float_errors_match_the_server() {
    let mut c = client();
    let mut texts = curated(&[
        "abc",
        "",
        "1e",
        ".",
        ".5",
        "5.",
        "1e+",
        "0x",
        "0x10",
        "0x1.8p1",
        "0x.8",
        "0x1p99999",
        "0x1p-1080",
        "0x1p-1074",
        "0x1p-1075",
        "0x1.8p-1075",
        "0x1p-149",
        "0x1p-150",
        "0x1.fffffep127",
        "0x1.ffffffp127",
        "1e999",
        " 1e999x",
        "1e39",
        " 1e39 ",
        "1e-50",
        "1e-400",
        "4e-320",
        "1e-40",
        "1e-45",
        "1e-46",
        "nan(123)",
        "nan(",
        "-nan",
        "NaN",
        "inf",
        "infinit",
        "Infinity",
        "+Infinity",
        "-Infinity",
        "-INF",
        "3.4028236e38",
        "3.4028235e38",
        "1.7976931348623159e308",
        "1.7976931348623157e308",
        "1e39x",
        "1e309x",
        "  -1e309  ",
        "0e-99999",
        "1e-99999",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "1,5",
        "- 1",
        "1e5\u{a0}",
    ]);
    let mut texts_gen = Texts(99);
    let alphabet = [
        "0", "1", "9", "5", ".", "e", "E", "+", "-", " ", "x", "p", "a", "f", "n", "i", "N", "(",
        ")", "_", "\t",
    ];
    for i in 0..400 {
        let text = match i % 4 {
            0 => texts_gen.text(&alphabet, 10),
            1 => format!(
                "{}e{}",
                texts_gen.number(25),
                texts_gen.below(700) as i64 - 350
            ),
            2 => format!("{}.{}", texts_gen.number(3), texts_gen.number(30).trim()),
            _ => {
                let hex = ["0", "1", "f", "8", "a", ".", "p", "-", "9"];
                format!("0x{}", texts_gen.text(&hex, 24))
            }
        };
        texts.push(text);
    }
    let errors = parity::<f64>(&mut c, "float8", &texts, |a, b| {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }) + parity::<f32>(&mut c, "float4", &texts, |a, b| {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    });
    assert!(errors > 2 * 100, "too few failing texts compared: {errors}");
}

#[test]
fn bytea_errors_match_the_server() {
    let mut c = client();
    let mut texts = curated(&[
        "\\x0",
        "\\x0 0",
        "\\x 00 ff ",
        "\\xzz",
        "\\xé0",
        "\\x0é",
        "\\X00",
        "a\\b",
        "a\\\\b\\001",
        "\\400",
        "\\377",
        "\\",
        "\\01",
        "abc",
        "",
        "\\x",
        "\\x\t0a\r\n",
        "é",
    ]);
    let mut texts_gen = Texts(5);
    let hex = ["0", "9", "a", "F", " ", "\t", "g", "é", "\n"];
    let escape = ["\\", "0", "3", "4", "7", "8", "a", "x", " "];
    for i in 0..300 {
        texts.push(match i % 2 {
            0 => format!("\\x{}", texts_gen.text(&hex, 8)),
            _ => texts_gen.text(&escape, 8),
        });
    }
    let errors = parity::<Vec<u8>>(&mut c, "bytea", &texts, eq);
    assert!(errors > 100, "too few failing texts compared: {errors}");
}

#[test]
fn text_reads_any_value_unchanged() {
    let mut c = client();
    let texts = curated(&["", " ", "abc", "héllo ✓", "\\x00", "tab\there", "NULL"]);
    parity::<String>(&mut c, "text", &texts, eq);
    let r = rows(
        &mut c,
        "SELECT 'a'::varchar, 'b'::char(3), 'c'::name, 42::int4",
    );
    let got: Vec<&str> = (0..4).map(|i| r.get_as(0, i).unwrap().unwrap()).collect();
    assert_eq!(got, ["a", "b  ", "c", "42"]);
}

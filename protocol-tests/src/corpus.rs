//! The generated seed corpora of the fuzz targets (`fuzz/corpus/<target>/`), built here so that a test
//! (`tests/fuzz_corpus.rs`) can check the committed files against their generator byte for byte, and
//! rewrite them with `PGDBLINK_BLESS=1`.
//!
//! - `backend_decode`: hand-made server streams, realistic and malformed ([`backend_decode_seeds`]);
//! - `conn_state`: one seed per conversation of the transcripts in `protocol-tests/transcripts/`
//!   ([`conn_state_seeds`]);
//! - `scram`: the server-first/server-final pairs of the SCRAM transcripts ([`scram_seeds`]);
//! - `conninfo`: the connection-string literals of `src/conninfo/tests.rs` ([`conninfo_seeds`]);
//! - `frontend_roundtrip`: a few hand-made message sequences ([`frontend_roundtrip_seeds`]).
//!
//! Files named `regression_*` are not generated: they are fuzz findings, committed by hand.

use std::fs;
use std::path::{Path, PathBuf};

use pgdblink::fuzzing::ConnInput;
use pgdblink::sqlstate;

use crate::transcript::{backend_bytes, words};

/// One generated seed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    /// The fuzz target (the directory under `fuzz/corpus/`).
    pub target: &'static str,
    /// The file name.
    pub name: String,
    /// The contents.
    pub bytes: Vec<u8>,
}

/// The fuzz targets that have a generated corpus, in the order [`seed_corpus`] lists them.
pub const TARGETS: [&str; 5] = [
    "backend_decode",
    "conn_state",
    "scram",
    "conninfo",
    "frontend_roundtrip",
];

/// Whether a corpus file is a committed fuzz finding rather than a generated seed.
pub fn is_regression(name: &str) -> bool {
    name.starts_with("regression_")
}

/// The directory of the committed corpus of `target`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every generated seed of every target.
pub fn seed_corpus() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, seeds: Vec<(String, Vec<u8>)>| {
        out.extend(seeds.into_iter().map(|(name, bytes)| Seed {
            target,
            name,
            bytes,
        }));
    };
    add("backend_decode", backend_decode_seeds());
    add("conn_state", conn_state_seeds());
    add("scram", scram_seeds());
    add("conninfo", conninfo_seeds());
    add("frontend_roundtrip", frontend_roundtrip_seeds());
    out
}

// ---------------------------------------------------------------------------------------------
// backend_decode
// ---------------------------------------------------------------------------------------------

/// A backend message: type, length word, body.
fn m(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn i16b(n: i16) -> [u8; 2] {
    n.to_be_bytes()
}

fn i32b(n: i32) -> [u8; 4] {
    n.to_be_bytes()
}

fn u32b(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

/// `R` with an authentication code and payload.
fn auth(code: u32, payload: &[u8]) -> Vec<u8> {
    m(b'R', &[&u32b(code)[..], payload].concat())
}

/// `S`.
fn ps(name: &[u8], value: &[u8]) -> Vec<u8> {
    m(b'S', &[name, b"\0", value, b"\0"].concat())
}

/// One RowDescription field (type modifier -1, text format).
fn fd(name: &[u8], table: u32, col: i16, typ: u32, size: i16) -> Vec<u8> {
    [
        name,
        b"\0",
        &u32b(table),
        &i16b(col),
        &u32b(typ),
        &i16b(size),
        &i32b(-1),
        &i16b(0),
    ]
    .concat()
}

/// A text column of no table.
fn text_col(name: &[u8]) -> Vec<u8> {
    fd(name, 0, 0, 25, -1)
}

/// `T`.
fn rowdesc(fields: &[Vec<u8>]) -> Vec<u8> {
    m(
        b'T',
        &[&i16b(fields.len() as i16)[..], &fields.concat()].concat(),
    )
}

/// `D` (`None` = NULL).
fn row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut body = i16b(values.len() as i16).to_vec();
    for v in values {
        match v {
            None => body.extend_from_slice(&i32b(-1)),
            Some(v) => {
                body.extend_from_slice(&i32b(v.len() as i32));
                body.extend_from_slice(v);
            }
        }
    }
    m(b'D', &body)
}

/// `E` or `N` with fields in the order given.
fn err_msg(tag: u8, fields: &[(u8, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (code, value) in fields {
        body.push(*code);
        body.extend_from_slice(value);
        body.push(0);
    }
    body.push(0);
    m(tag, &body)
}

fn err(fields: &[(u8, &[u8])]) -> Vec<u8> {
    err_msg(b'E', fields)
}

/// `C`.
fn cc(tag: &[u8]) -> Vec<u8> {
    m(b'C', &[tag, b"\0"].concat())
}

/// `Z`.
fn z(status: u8) -> Vec<u8> {
    m(b'Z', &[status])
}

/// What a server sends after authentication: the parameters PostgreSQL 15 reports, BackendKeyData,
/// ReadyForQuery.
fn after_auth() -> Vec<u8> {
    let params: [(&[u8], &[u8]); 13] = [
        (b"application_name", b"dbl_app"),
        (b"client_encoding", b"UTF8"),
        (b"DateStyle", b"ISO, MDY"),
        (b"default_transaction_read_only", b"off"),
        (b"in_hot_standby", b"off"),
        (b"integer_datetimes", b"on"),
        (b"IntervalStyle", b"postgres"),
        (b"is_superuser", b"on"),
        (b"server_encoding", b"UTF8"),
        (b"server_version", b"15.18"),
        (b"session_authorization", b"alice"),
        (b"standard_conforming_strings", b"on"),
        (b"TimeZone", b"UTC"),
    ];
    let mut out: Vec<u8> = params.iter().flat_map(|(n, v)| ps(n, v)).collect();
    out.extend(m(b'K', &[u32b(4243), u32b(0x1122_3344)].concat()));
    out.extend(z(b'I'));
    out
}

/// A concatenation of messages.
fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// The `backend_decode` seeds: realistic server streams (startup with every authentication method,
/// query results, notifications, COPY, the extended protocol), streams cut mid-message, and
/// malformed messages, one file each.
pub fn backend_decode_seeds() -> Vec<(String, Vec<u8>)> {
    let sasl = auth(10, b"SCRAM-SHA-256\0\0");
    let scram = cat(&[
        sasl.clone(),
        auth(
            11,
            b"r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,s=bE2m1hdqDMcQinW6Q5OfJw==,i=4096",
        ),
        auth(12, b"v=rmRuWbSMjZYURbcfW8suJdFJrVnkq78H0D1IkIwIKgs="),
        auth(0, b""),
    ]);
    let fatal = |code: &'static [u8], message: &'static [u8]| {
        err(&[
            (b'S', b"FATAL"),
            (b'V', b"FATAL"),
            (b'C', code),
            (b'M', message),
        ])
    };
    let int4 = |name: &[u8]| fd(name, 0, 0, 23, 4);
    let two_rows: Vec<u8> = (0..5)
        .flat_map(|i| {
            let id = i.to_string();
            let name = format!("row-{i}");
            row(&[Some(id.as_bytes()), Some(name.as_bytes())])
        })
        .collect();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        // Startup sequences.
        ("startup_trust", cat(&[auth(0, b""), after_auth()])),
        ("startup_scram", cat(&[scram.clone(), after_auth()])),
        (
            "startup_scram_plus_offered",
            auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
        ),
        (
            "startup_md5",
            cat(&[auth(5, &[0xE8, 0x85, 0xE7, 0x75]), auth(0, b""), after_auth()]),
        ),
        (
            "startup_cleartext",
            cat(&[auth(3, b""), auth(0, b""), after_auth()]),
        ),
        (
            "startup_gss_sspi_kerberos",
            cat(&[auth(7, b""), auth(8, b"\x60\x82tok"), auth(9, b""), auth(2, b"")]),
        ),
        (
            "startup_unknown_auth_99",
            cat(&[auth(99, b""), auth(6, b"xx")]),
        ),
        (
            "startup_negotiate_3_2",
            cat(&[
                m(b'v', &[u32b(0x0003_0000), u32b(0)].concat()),
                auth(0, b""),
                after_auth(),
            ]),
        ),
        (
            "startup_negotiate_option",
            m(
                b'v',
                &[&u32b(0x0003_0000)[..], &u32b(1), b"_pq_.test_option\0"].concat(),
            ),
        ),
        (
            "startup_key_3_2_32_bytes",
            cat(&[
                auth(0, b""),
                m(b'K', &[&u32b(77)[..], &(0u8..32).collect::<Vec<u8>>()].concat()),
                z(b'I'),
            ]),
        ),
        (
            "startup_bad_password",
            cat(&[
                scram[..sasl.len()].to_vec(),
                err(&[
                    (b'S', b"FATAL"),
                    (b'V', b"FATAL"),
                    (b'C', sqlstate::INVALID_PASSWORD.as_bytes()),
                    (
                        b'M',
                        b"password authentication failed for user \"scram_user\"",
                    ),
                    (b'F', b"auth.c"),
                    (b'L', b"326"),
                    (b'R', b"auth_failed"),
                ]),
            ]),
        ),
        (
            "startup_no_such_db",
            cat(&[
                auth(0, b""),
                fatal(sqlstate::INVALID_CATALOG_NAME.as_bytes(), b"database \"nosuchdb\" does not exist"),
            ]),
        ),
        (
            "startup_protocol_4",
            fatal(
                sqlstate::FEATURE_NOT_SUPPORTED.as_bytes(),
                b"unsupported frontend protocol 4.0: server supports 3.0 to 3.0",
            ),
        ),
        (
            "startup_v2_error",
            b"EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\0".to_vec(),
        ),
        // Simple query results.
        (
            "query_select_1",
            cat(&[
                rowdesc(&[int4(b"?column?")]),
                row(&[Some(b"1")]),
                cc(b"SELECT 1"),
                z(b'I'),
            ]),
        ),
        (
            "query_two_columns",
            cat(&[
                rowdesc(&[fd(b"id", 16384, 1, 23, 4), fd(b"name", 16384, 2, 25, -1)]),
                two_rows,
                cc(b"SELECT 5"),
                z(b'I'),
            ]),
        ),
        (
            "query_nulls",
            cat(&[
                rowdesc(&[text_col(b"a"), text_col(b"b"), text_col(b"c")]),
                row(&[None, Some(b""), None]),
                row(&[Some(b"x"), None, Some(b"")]),
                cc(b"SELECT 2"),
                z(b'I'),
            ]),
        ),
        (
            "query_empty_result",
            cat(&[rowdesc(&[text_col(b"a")]), cc(b"SELECT 0"), z(b'I')]),
        ),
        (
            "query_zero_columns",
            cat(&[rowdesc(&[]), row(&[]), cc(b"SELECT 1"), z(b'I')]),
        ),
        (
            "query_multi_with_error",
            cat(&[
                rowdesc(&[int4(b"a")]),
                row(&[Some(b"1")]),
                cc(b"SELECT 1"),
                err(&[
                    (b'S', b"ERROR"),
                    (b'V', b"ERROR"),
                    (b'C', sqlstate::DIVISION_BY_ZERO.as_bytes()),
                    (b'M', b"division by zero"),
                    (b'F', b"int.c"),
                    (b'L', b"841"),
                    (b'R', b"int4div"),
                ]),
                z(b'I'),
            ]),
        ),
        (
            "query_notice_then_rows",
            cat(&[
                err_msg(
                    b'N',
                    &[
                        (b'S', b"NOTICE"),
                        (b'V', b"NOTICE"),
                        (b'C', sqlstate::SUCCESSFUL_COMPLETION.as_bytes()),
                        (b'M', b"n1"),
                        (b'W', b"PL/pgSQL function inline_code_block line 1 at RAISE"),
                    ],
                ),
                cc(b"DO"),
                rowdesc(&[int4(b"?column?")]),
                row(&[Some(b"2")]),
                cc(b"SELECT 1"),
                z(b'I'),
            ]),
        ),
        (
            "query_transaction",
            cat(&[
                cc(b"BEGIN"),
                z(b'T'),
                err(&[(b'S', b"ERROR"), (b'C', sqlstate::DIVISION_BY_ZERO.as_bytes()), (b'M', b"division by zero")]),
                z(b'E'),
                err(&[
                    (b'S', b"ERROR"),
                    (b'C', sqlstate::IN_FAILED_SQL_TRANSACTION.as_bytes()),
                    (
                        b'M',
                        b"current transaction is aborted, commands ignored until end of transaction block",
                    ),
                ]),
                z(b'E'),
                cc(b"ROLLBACK"),
                z(b'I'),
            ]),
        ),
        ("query_empty", cat(&[m(b'I', b""), z(b'I')])),
        (
            "query_insert",
            cat(&[cc(b"INSERT 0 1"), cc(b"UPDATE 3"), cc(b"DELETE 0"), z(b'I')]),
        ),
        (
            "query_error_all_fields",
            cat(&[
                err(&[
                    (b'S', b"ERROR"),
                    (b'V', b"ERROR"),
                    (b'C', sqlstate::SYNTAX_ERROR.as_bytes()),
                    (b'M', b"syntax error at or near \"SELEC\""),
                    (b'D', b"detail"),
                    (b'H', b"hint"),
                    (b'P', b"1"),
                    (b'p', b"2"),
                    (b'q', b"internal"),
                    (b'W', b"context"),
                    (b's', b"public"),
                    (b't', b"tbl"),
                    (b'c', b"col"),
                    (b'd', b"dom"),
                    (b'n', b"cons"),
                    (b'F', b"scan.l"),
                    (b'L', b"1176"),
                    (b'R', b"scanner_yyerror"),
                ]),
                z(b'I'),
            ]),
        ),
        (
            "query_cancelled",
            cat(&[
                rowdesc(&[fd(b"pg_sleep", 0, 0, 2278, 4)]),
                err(&[
                    (b'S', b"ERROR"),
                    (b'C', sqlstate::QUERY_CANCELED.as_bytes()),
                    (b'M', b"canceling statement due to user request"),
                ]),
                z(b'I'),
            ]),
        ),
        (
            "query_parameter_status_midstream",
            cat(&[
                rowdesc(&[text_col(b"a")]),
                row(&[Some(b"1")]),
                ps(b"TimeZone", b"Europe/Paris"),
                row(&[Some(b"2")]),
                cc(b"SELECT 2"),
                z(b'I'),
            ]),
        ),
        // Notifications.
        (
            "notify_self",
            cat(&[
                cc(b"LISTEN"),
                cc(b"NOTIFY"),
                m(b'A', &[&u32b(4243)[..], b"c\0p\0"].concat()),
                z(b'I'),
            ]),
        ),
        (
            "notify_idle_empty_payload",
            cat(&[
                m(b'A', &[&u32b(1)[..], b"channel\0\0"].concat()),
                m(b'A', &[&u32b(2)[..], b"other\0payload text\0"].concat()),
            ]),
        ),
        (
            "fatal_while_idle",
            fatal(
                sqlstate::ADMIN_SHUTDOWN.as_bytes(),
                b"terminating connection due to administrator command",
            ),
        ),
        // COPY.
        (
            "copy_out",
            cat(&[
                m(b'H', &[&[0u8][..], &i16b(1), &i16b(0)].concat()),
                m(b'd', b"1\n"),
                m(b'c', b""),
                cc(b"COPY 1"),
                z(b'I'),
            ]),
        ),
        (
            "copy_out_binary",
            cat(&[
                m(b'H', &[&[1u8][..], &i16b(2), &i16b(1), &i16b(1)].concat()),
                m(b'd', b"PGCOPY\n\xff\r\n\0"),
                m(b'd', b""),
                m(b'c', b""),
                cc(b"COPY 0"),
                z(b'I'),
            ]),
        ),
        (
            "copy_in_failed",
            cat(&[
                m(b'G', &[&[0u8][..], &i16b(2), &i16b(0), &i16b(0)].concat()),
                err(&[
                    (b'S', b"ERROR"),
                    (b'C', sqlstate::QUERY_CANCELED.as_bytes()),
                    (
                        b'M',
                        b"COPY from stdin failed: COPY FROM STDIN is not supported",
                    ),
                    (b'W', b"COPY ci, line 1"),
                ]),
                z(b'I'),
            ]),
        ),
        (
            "copy_both",
            cat(&[
                m(b'W', &[&[0u8][..], &i16b(0)].concat()),
                m(b'd', &[&b"w"[..], &[0u8; 24]].concat()),
            ]),
        ),
        // Extended protocol.
        (
            "extended_query",
            cat(&[
                m(b'1', b""),
                m(b't', &[&i16b(2)[..], &u32b(23), &u32b(25)].concat()),
                rowdesc(&[text_col(b"a")]),
                m(b'2', b""),
                row(&[Some(b"x")]),
                m(b's', b""),
                row(&[Some(b"y")]),
                cc(b"SELECT 2"),
                m(b'3', b""),
                m(b'n', b""),
                z(b'I'),
            ]),
        ),
        (
            "function_call",
            cat(&[
                m(b'V', &[&i32b(3)[..], b"abc"].concat()),
                m(b'V', &i32b(-1)),
                z(b'I'),
            ]),
        ),
        // Partial streams (end mid-message).
        ("partial_header", z(b'I')[..3].to_vec()),
        ("partial_body", {
            let r = row(&[Some(b"12345")]);
            cat(&[rowdesc(&[text_col(b"a")]), r[..r.len() - 2].to_vec()])
        }),
        // Malformed samples.
        ("bad_length_small", b"Z\0\0\0\x03I".to_vec()),
        ("bad_length_huge_small_type", b"S\x00\x01\x00\x00".to_vec()),
        ("bad_unknown_tag", m(b'?', b"xx")),
        (
            "bad_datarow_len_minus_2",
            m(b'D', &[&i16b(1)[..], &i32b(-2)].concat()),
        ),
        ("bad_datarow_negative_count", m(b'D', &i16b(-1))),
        (
            "bad_datarow_trailing",
            m(b'D', &[&i16b(1)[..], &i32b(1), b"ab"].concat()),
        ),
        (
            "bad_datarow_overrun",
            m(b'D', &[&i16b(1)[..], &i32b(100), b"ab"].concat()),
        ),
        ("bad_key_3_bytes", m(b'K', &[&u32b(1)[..], b"abc"].concat())),
        (
            "bad_key_257_bytes",
            m(b'K', &[&u32b(1)[..], &[0u8; 257]].concat()),
        ),
        ("bad_ready_status", m(b'Z', b"X")),
        ("bad_error_no_terminator", m(b'E', b"SERROR\0Mboom\0")),
        ("bad_sasl_list_unterminated", auth(10, b"SCRAM-SHA-256\0")),
        ("bad_md5_short_salt", auth(5, b"\x01\x02\x03")),
        ("bad_auth_ok_payload", auth(0, b"x")),
        (
            "bad_rowdesc_missing_nul",
            m(b'T', &[&i16b(1)[..], b"abc"].concat()),
        ),
        (
            "bad_negotiate_negative_count",
            m(b'v', &[u32b(0x0003_0000), i32b(-1)].concat()),
        ),
        (
            "bad_copy_negative_columns",
            m(b'H', &[&[0u8][..], &i16b(-1)].concat()),
        ),
        (
            "bad_param_desc_truncated",
            m(b't', &[&i16b(3)[..], &u32b(23)].concat()),
        ),
        ("bad_function_len_minus_2", m(b'V', &i32b(-2))),
        ("bad_parse_complete_payload", m(b'1', b"\0")),
    ];
    seeds
        .into_iter()
        .map(|(name, bytes)| (name.to_owned(), bytes))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// conn_state, scram: from the transcripts
// ---------------------------------------------------------------------------------------------

/// The transcripts, sorted by file name: `(file stem, text)`.
fn transcripts() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("transcripts");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let text =
                fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (name, text)
        })
        .collect()
}

/// One conversation of a transcript, as the `conn_state` harness needs it.
struct Conversation {
    options: u8,
    chunked: bool,
    segments: Vec<Vec<u8>>,
}

impl Conversation {
    fn new() -> Conversation {
        Conversation {
            options: 0,
            chunked: false,
            segments: vec![Vec::new()],
        }
    }

    fn encode(&self) -> Vec<u8> {
        ConnInput::encode(self.options, self.chunked, &self.segments)
    }
}

/// The transcripts' conversations as `conn_state` seeds: each a transcript's server bytes cut into
/// segments where the transcript's client acts, with the option bits its `config` line asks for, and
/// chunked results if the transcript sends a chunked query. A transcript holding several
/// conversations gives one seed each (`<name>_<n>`, the last one numbered too).
pub fn conn_state_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (name, script) in transcripts() {
        let mut current = Conversation::new();
        let mut conversations = 0;
        for line in script.lines() {
            let w = words(line).unwrap_or_else(|e| panic!("{name}: {e}"));
            let Some(kind) = w.first() else { continue };
            match kind.as_slice() {
                b"config" => {
                    if conversations > 0 {
                        seeds.push((format!("{name}_{conversations}"), current.encode()));
                        current = Conversation::new();
                    }
                    conversations += 1;
                    for a in &w[1..] {
                        let a = String::from_utf8_lossy(a);
                        current.options |= match a.split_once('=').unwrap_or((&a, "")) {
                            ("password", _) => 0x01,
                            ("protocol", "3.2") => 0x02,
                            ("ssl", "require") => 0x0c,
                            ("ssl", _) => 0x04,
                            ("min_minor", "2") => 0x10,
                            ("channel_binding", "require") => 0x20,
                            ("max_small_message" | "max_data_message", _) => 0x40,
                            _ => 0,
                        };
                    }
                }
                b"B" if w.get(1).is_some_and(|m| m == b"EOF") => current.options |= 0x80,
                b"B" => current
                    .segments
                    .last_mut()
                    .expect("a segment")
                    .extend_from_slice(
                        &backend_bytes(&w[1..]).unwrap_or_else(|e| panic!("{name}: {e}")),
                    ),
                b"call" | b"F" => {
                    if kind == b"call" && w.get(1).is_some_and(|c| c == b"send_query_chunked") {
                        current.chunked = true;
                    }
                    if !current.segments.last().expect("a segment").is_empty() {
                        current.segments.push(Vec::new());
                    }
                }
                _ => {}
            }
        }
        let name = if conversations > 1 {
            format!("{name}_{conversations}")
        } else {
            name
        };
        seeds.push((name, current.encode()));
    }
    seeds
}

/// The `scram` seeds: the first AuthenticationSASLContinue and AuthenticationSASLFinal payloads of
/// each transcript that has them, joined by a newline.
pub fn scram_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (name, script) in transcripts() {
        let (mut first, mut last) = (None, None);
        for line in script.lines() {
            let w = words(line).unwrap_or_else(|e| panic!("{name}: {e}"));
            if w.len() >= 3 && w[0] == b"B" {
                match w[1].as_slice() {
                    b"AuthenticationSASLContinue" if first.is_none() => first = Some(w[2].clone()),
                    b"AuthenticationSASLFinal" if last.is_none() => last = Some(w[2].clone()),
                    _ => {}
                }
            }
        }
        if let Some(mut seed) = first {
            seed.push(b'\n');
            seed.extend_from_slice(&last.unwrap_or_default());
            seeds.push((name, seed));
        }
    }
    seeds
}

// ---------------------------------------------------------------------------------------------
// conninfo
// ---------------------------------------------------------------------------------------------

/// String literals in Rust source (plain and raw, without `#` delimiters).
fn string_literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == 'r'
            && chars.get(i + 1) == Some(&'"')
            && (i == 0 || !chars[i - 1].is_alphanumeric())
        {
            let start = i + 2;
            let mut j = start;
            while j < chars.len() && chars[j] != '"' {
                j += 1;
            }
            out.push(chars[start..j.min(chars.len())].iter().collect());
            i = j + 1;
        } else if chars[i] == '"' {
            let mut s = String::new();
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    j += 1;
                    s.push(match chars[j] {
                        'n' => '\n',
                        't' => '\t',
                        '0' => '\0',
                        c => c,
                    });
                } else {
                    s.push(chars[j]);
                }
                j += 1;
            }
            out.push(s);
            i = j + 1;
        } else if chars[i] == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3; // a char literal such as '"'
        } else {
            i += 1;
        }
    }
    out
}

/// The `conninfo` seeds: every string literal of the parser's tests (`src/conninfo/tests.rs`) that
/// looks like a connection string, sorted and deduplicated, as `tests_NNN`.
pub fn conninfo_seeds() -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/conninfo/tests.rs");
    let src =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut literals: Vec<String> = string_literals(&src)
        .into_iter()
        .filter(|s| s.contains('=') || s.contains("://"))
        .collect();
    literals.sort();
    literals.dedup();
    literals
        .into_iter()
        .enumerate()
        .map(|(i, s)| (format!("tests_{i:03}"), s.into_bytes()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// frontend_roundtrip
// ---------------------------------------------------------------------------------------------

/// The `frontend_roundtrip` seeds: ops separated by 0xff, the first byte of each choosing the
/// message (see `pgdblink::fuzzing::frontend_roundtrip`).
pub fn frontend_roundtrip_seeds() -> Vec<(String, Vec<u8>)> {
    let mut ops = Vec::new();
    for (op, arg) in [
        (0u8, &b"SELECT 1"[..]),
        (1, b"stmtSELECT $1"),
        (2, b"portalstmt\x01\x02\x05abc"),
        (3, b"Sname"),
        (4, b"Pname"),
        (5, b"portal"),
        (6, b""),
        (7, b"copy data\n"),
        (8, b"failed"),
        (9, b"pencil"),
        (10, b"n,,n=,r=abc"),
        (11, b""),
        (0, b"bad\0query"),
    ] {
        ops.push(op);
        ops.extend_from_slice(arg);
        ops.push(0xff);
    }
    vec![
        ("all_messages".to_owned(), ops),
        ("query".to_owned(), b"\0SELECT 1".to_vec()),
        (
            "parse_bind_execute_sync".to_owned(),
            b"\x01sSELECT $1\xff\x02ps\x01\x02\xff\x05p\xff\x06".to_vec(),
        ),
    ]
}

//! Replays the committed seed corpus of every fuzz target through the same checking functions the
//! fuzzers run (`pgdblink::protocol::backend::exercise` and `pgdblink::fuzzing::*`), so every ordinary
//! `cargo test` on the stable toolchain checks them, and holds the named regression tests for what
//! fuzzing found. `generate_fuzz_seed_corpora` (ignored) rewrites the generated seeds.

use std::fs;
use std::path::{Path, PathBuf};

use pgdblink::fuzzing::{self, ConnInput};
use pgdblink::protocol::backend::exercise;
use protocol_tests::transcript::{backend_bytes, words};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The files of a target's corpus, sorted, with their contents.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Runs `check` on every file of `target`'s corpus, naming the file that panics.
fn replay<T>(target: &str, min_files: usize, check: impl Fn(&[u8]) -> T) -> Vec<T> {
    let files = corpus(target);
    assert!(
        files.len() >= min_files,
        "only {} corpus files for {target}",
        files.len()
    );
    files
        .iter()
        .map(|(path, bytes)| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(bytes)))
                .unwrap_or_else(|_| panic!("{target} check panicked on {}", path.display()))
        })
        .collect()
}

#[test]
fn fuzz_corpus_backend_decode_replays_without_panic() {
    let results = replay("backend_decode", 30, exercise);
    let messages: usize = results.iter().map(|(_, n)| n).sum();
    // The realistic streams in the corpus decode to many messages, not just errors.
    assert!(messages >= 100, "only {messages} messages decoded");
}

#[test]
fn fuzz_corpus_conn_state_replays() {
    let summaries = replay("conn_state", 30, fuzzing::conn_state);
    // The transcripts' conversations reach every state: ready, rows, errors, closed.
    let all = summaries.concat();
    for needle in [
        "-- Idle",
        "rows \"SELECT 1\"",
        "error Some(",
        "-- Closed",
        "notify ",
    ] {
        assert!(all.contains(needle), "no corpus file reaches {needle:?}");
    }
}

#[test]
fn fuzz_corpus_scram_replays() {
    let completed = replay("scram", 4, fuzzing::scram);
    assert!(
        completed.iter().any(|&c| c),
        "no seed completes the exchange"
    );
    assert!(completed.iter().any(|&c| !c), "no seed is refused");
}

#[test]
fn fuzz_corpus_conninfo_replays() {
    let parsed = replay("conninfo", 30, |b| {
        std::str::from_utf8(b).is_ok_and(fuzzing::conninfo)
    });
    assert!(parsed.iter().filter(|&&p| p).count() >= 20);
}

#[test]
fn fuzz_corpus_frontend_roundtrip_replays() {
    let counts = replay("frontend_roundtrip", 3, fuzzing::frontend_roundtrip);
    assert!(counts.iter().sum::<usize>() >= 10);
}

/// The transcripts' conversations as conn_state seeds, each a transcript's server bytes cut into
/// segments where the client acts, with the option bits its `config` line asks for.
fn conn_state_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("transcripts");
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    let mut seeds = Vec::new();
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let script = fs::read_to_string(&path).unwrap();
        let mut options = 0u8;
        let mut segments: Vec<Vec<u8>> = vec![Vec::new()];
        let mut conversations = 0;
        for line in script.lines() {
            let w = words(line).unwrap();
            let Some(kind) = w.first() else { continue };
            match kind.as_slice() {
                b"config" => {
                    // A transcript may hold several conversations: one seed each.
                    if conversations > 0 {
                        let seed = ConnInput::encode(options, &segments);
                        seeds.push((format!("{name}_{conversations}"), seed));
                        options = 0;
                        segments = vec![Vec::new()];
                    }
                    conversations += 1;
                    for a in &w[1..] {
                        let a = String::from_utf8_lossy(a);
                        options |= match a.split_once('=').unwrap_or((&a, "")) {
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
                b"B" if w[1] == b"EOF" => options |= 0x80,
                b"B" => segments
                    .last_mut()
                    .unwrap()
                    .extend_from_slice(&backend_bytes(&w[1..]).unwrap()),
                b"call" | b"F" if !segments.last().unwrap().is_empty() => {
                    segments.push(Vec::new());
                }
                _ => {}
            }
        }
        let name = if conversations > 1 {
            format!("{name}_{conversations}")
        } else {
            name
        };
        seeds.push((name, ConnInput::encode(options, &segments)));
    }
    seeds
}

/// String literals in Rust source (plain and raw), for the conninfo seeds.
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

/// Rewrites the generated seed corpora (conn_state from the transcripts, scram from the transcripts'
/// SCRAM messages, conninfo from the connection strings of `src/conninfo/tests.rs`,
/// frontend_roundtrip from a few hand-made inputs). Run with
/// `cargo test -p protocol-tests --test fuzz_corpus -- --ignored generate`.
#[test]
#[ignore]
fn generate_fuzz_seed_corpora() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    };
    for (name, bytes) in conn_state_seeds() {
        write("conn_state", &name, &bytes);
    }

    // SCRAM: the server-first and server-final of each transcript that has them.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("transcripts");
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let script = fs::read_to_string(&path).unwrap();
        let (mut first, mut last) = (None, None);
        for line in script.lines() {
            let w = words(line).unwrap();
            if w.len() >= 3 && w[0] == b"B" {
                match w[1].as_slice() {
                    b"AuthenticationSASLContinue" if first.is_none() => first = Some(w[2].clone()),
                    b"AuthenticationSASLFinal" if last.is_none() => last = Some(w[2].clone()),
                    _ => {}
                }
            }
        }
        if let Some(first) = first {
            let mut seed = first;
            seed.push(b'\n');
            seed.extend_from_slice(&last.unwrap_or_default());
            write("scram", path.file_stem().unwrap().to_str().unwrap(), &seed);
        }
    }

    // conninfo: every string literal of the parser's tests that looks like a connection string.
    let src =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/conninfo/tests.rs"))
            .unwrap();
    let mut literals: Vec<String> = string_literals(&src)
        .into_iter()
        .filter(|s| s.contains('=') || s.contains("://"))
        .collect();
    literals.sort();
    literals.dedup();
    for (i, s) in literals.iter().enumerate() {
        write("conninfo", &format!("tests_{i:03}"), s.as_bytes());
    }

    // frontend_roundtrip: ops separated by 0xff, the first byte of each choosing the message.
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
    write("frontend_roundtrip", "all_messages", &ops);
    write("frontend_roundtrip", "query", b"\0SELECT 1");
    write(
        "frontend_roundtrip",
        "parse_bind_execute_sync",
        b"\x01sSELECT $1\xff\x02ps\x01\x02\xff\x05p\xff\x06",
    );
}

/// Fuzz finding (conn_state): closing a connection still waiting for the answer to its SSLRequest
/// queued a Terminate, which the server would read as a startup packet of length 0x58000000.
#[test]
fn conn_state_terminate_before_ssl_response_is_not_sent() {
    let input = fs::read(corpus_dir("conn_state").join("regression_terminate_before_ssl_response"))
        .expect("regression file");
    fuzzing::conn_state(&input);

    let mut conn = pgdblink::conn::Connection::new(fuzzing::conn_config(0x04));
    let n = conn.pending_output().len();
    conn.consume_output(n);
    conn.terminate();
    assert!(
        conn.pending_output().is_empty(),
        "Terminate sent before the SSL response"
    );
    assert_eq!(conn.state(), pgdblink::conn::State::Closed);
}

/// Fuzz finding (conn_state): after AuthenticationSASL and the client's SASLInitialResponse, a server
/// answering AuthenticationCleartextPassword got the password in clear text. A method switch in the
/// middle of a SASL exchange is now refused before anything is sent.
#[test]
fn conn_state_cleartext_request_during_sasl_is_refused() {
    let input = fs::read(corpus_dir("conn_state").join("regression_cleartext_during_sasl"))
        .expect("regression file");
    fuzzing::conn_state(&input);
}

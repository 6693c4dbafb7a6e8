//! Replays the committed seed corpus of every fuzz target through the same checking functions the
//! fuzzers run (`pgdblink::protocol::backend::exercise` and `pgdblink::fuzzing::*`), so every ordinary
//! `cargo test` on the stable toolchain checks them, checks the committed corpora against their
//! generator (`protocol_tests::corpus`; `PGDBLINK_BLESS=1` rewrites them), and holds the named
//! regression tests for what fuzzing found.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use pgdblink::fuzzing::{self, ConnInput};
use pgdblink::protocol::backend::exercise;
use protocol_tests::corpus::{self, corpus_dir};

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
        "partial \"\" cols",
        "PipelineSync",
        "PipelineAborted",
        "copy data b",
        "copy=Some(In)",
        // The small-budget seeds reach max_result_bytes.
        "result exceeds max_result_bytes",
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

/// The committed corpora are exactly what the generator (`protocol_tests::corpus`) makes, plus the
/// hand-committed `regression_*` findings. With `PGDBLINK_BLESS=1` the generated files are rewritten
/// (and stale ones removed) instead.
#[test]
fn fuzz_corpora_match_their_generator() {
    let bless = std::env::var_os("PGDBLINK_BLESS").is_some_and(|v| v == "1");
    let seeds = corpus::seed_corpus();
    let mut problems = Vec::new();
    for target in corpus::TARGETS {
        let dir = corpus::corpus_dir(target);
        let generated: BTreeMap<&str, &[u8]> = seeds
            .iter()
            .filter(|s| s.target == target)
            .map(|s| (s.name.as_str(), s.bytes.as_slice()))
            .collect();
        assert!(!generated.is_empty(), "no seeds generated for {target}");
        assert!(
            generated.keys().all(|n| !corpus::is_regression(n)),
            "a generated {target} seed named like a regression"
        );
        if bless {
            fs::create_dir_all(&dir).unwrap();
        }
        let committed: BTreeMap<String, Vec<u8>> = corpus(target)
            .into_iter()
            .map(|(p, b)| (p.file_name().unwrap().to_string_lossy().into_owned(), b))
            .filter(|(n, _)| !corpus::is_regression(n))
            .collect();
        for (name, bytes) in &generated {
            match committed.get(*name) {
                Some(c) if c == bytes => continue,
                Some(_) => problems.push(format!("{target}/{name} differs from the generator")),
                None => problems.push(format!("{target}/{name} is missing")),
            }
            if bless {
                fs::write(dir.join(name), bytes).unwrap();
            }
        }
        for name in committed.keys() {
            if !generated.contains_key(name.as_str()) {
                problems.push(format!("{target}/{name} is not generated (stale?)"));
                if bless {
                    fs::remove_file(dir.join(name)).unwrap();
                }
            }
        }
    }
    if bless {
        eprintln!("blessed: {}", problems.join("; "));
        return;
    }
    assert!(
        problems.is_empty(),
        "the committed fuzz corpora do not match their generator:\n  {}\n\
         Rewrite them with `PGDBLINK_BLESS=1 cargo test -p protocol-tests --test fuzz_corpus`.",
        problems.join("\n  ")
    );
}

/// The chunked-results option reaches `send_query_chunked` and its partial results: the chunked
/// transcripts' seeds produce partial row sets, and the same server bytes without the option do not.
#[test]
fn conn_state_chunked_option_gives_partial_results() {
    let seeds = corpus::conn_state_seeds();
    let (_, seed) = seeds
        .iter()
        .find(|(n, _)| n == "chunked_rows")
        .expect("the chunked_rows seed");
    let input = ConnInput::parse(seed);
    assert!(input.chunked);
    let summary = fuzzing::conn_state(seed);
    assert!(summary.contains("partial \"\" cols"), "{summary}");
    let mut whole = seed.clone();
    whole[1] &= !fuzzing::CHUNKED_RESULTS;
    let summary = fuzzing::conn_state(&whole);
    assert!(!summary.contains("partial"), "{summary}");
    assert!(summary.contains("rows \"SELECT 5\""), "{summary}");
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

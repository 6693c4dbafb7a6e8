//! Replays the committed seed corpus of the `backend_decode` fuzz target through the same decode loop
//! the fuzzer runs (`pgdblink::protocol::backend::exercise`), so every ordinary `cargo test` on the
//! stable toolchain checks it.

use std::fs;
use std::path::Path;

use pgdblink::protocol::backend::exercise;

/// The corpus holds ~60 seeds; fewer than this means it went missing or the path is wrong.
const MIN_FILES: usize = 30;

#[test]
fn fuzz_corpus_backend_decode_replays_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/backend_decode");
    let mut files = 0;
    let mut messages = 0;
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        let bytes = fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| exercise(&bytes));
        let (_, n) =
            result.unwrap_or_else(|_| panic!("decode loop panicked on {}", path.display()));
        messages += n;
        files += 1;
    }
    assert!(
        files >= MIN_FILES,
        "only {files} corpus files in {}",
        dir.display()
    );
    // The realistic streams in the corpus decode to many messages, not just errors.
    assert!(
        messages >= 100,
        "only {messages} messages decoded from {files} files"
    );
}

//! Every transcript under `protocol-tests/transcripts/` replayed against the sans-IO connection whole,
//! one byte at a time, and at 16 random splittings.

use std::path::Path;

use protocol_tests::transcript::replay_all_chunkings;

#[test]
fn transcripts_replay_under_every_chunking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("transcripts");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("transcripts directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 30, "only {} transcripts found", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let script = std::fs::read_to_string(path).expect("readable transcript");
        if let Err(panic) = std::panic::catch_unwind(|| replay_all_chunkings(&name, &script)) {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(text);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} transcripts failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
}

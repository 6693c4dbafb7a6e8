//! Encodes frontend messages (Query, Parse, Bind, Describe, Close, Execute, Sync, CopyData, CopyFail,
//! PasswordMessage, SASLInitialResponse, Flush) built from the input, then reads the frames back: an
//! encoding error leaves the buffer untouched; every frame is well formed and carries what was
//! encoded (see `pgdblink::fuzzing::frontend_roundtrip`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgdblink::fuzzing::frontend_roundtrip(data);
});

//! Runs server-first and server-final SCRAM messages (separated by the first newline of the input)
//! through `ScramClient` with a fixed password and nonce: no panic, a well-shaped client-final, errors
//! sticky (see `pgdblink::fuzzing::scram`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgdblink::fuzzing::scram(data);
});

//! Runs server-first and server-final SCRAM messages (separated by the first newline of the input)
//! through `ScramClient` with a fixed password and nonce, once per channel binding (`n,,`, `y,,` and
//! SCRAM-SHA-256-PLUS with fixed tls-server-end-point data): no panic, well-shaped client-first and
//! client-final messages, errors sticky (see `pgdblink::fuzzing::scram`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgdblink::fuzzing::scram(data);
});

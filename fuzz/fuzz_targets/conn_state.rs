//! Drives the sans-IO `Connection` with arbitrary server bytes in arbitrary chunks, from every state
//! the options byte can reach (startup with or without a password, protocol 3.0/3.2, SSLRequest and
//! its answers, the TLS handshake established or failed and direct TLS (bits of the second byte),
//! SCRAM with and without channel binding, each authentication method, idle, busy, COPY),
//! interleaved with queries (whole or with chunked results, by a bit of the second byte) or, by
//! another bit, parameterized queries, prepared statements, pipelines and COPY in and out (each
//! segment's first byte choosing the client's move), result draining and partial output
//! consumption. Checks (see `pgdblink::fuzzing::conn_state`): no panic; a closed
//! connection stays closed with the same fatal error; the receive buffer stays within the decoder's
//! caps; `is_busy` agrees with `poll_result`; the client's output is always a well-formed frontend
//! stream; and the same bytes fed whole or in the fuzzed chunks give the same results and states.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgdblink::fuzzing::conn_state(data);
});

//! Decodes arbitrary bytes as a backend message stream and checks the codec's invariants on every
//! message (see `pgdblink::protocol::backend::exercise`): no panic, every accessor and iterator
//! walked, and a message decodes the same with or without the bytes that follow it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgdblink::protocol::backend::exercise(data);
});

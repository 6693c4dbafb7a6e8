//! Parses arbitrary UTF-8 as a connection string (key=value or URI). When it parses, `Display` must
//! parse back to the same configuration (secrets masked) and neither `Display` nor `Debug` may depend
//! on the password (see `pgdblink::fuzzing::conninfo`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pgdblink::fuzzing::conninfo(text);
    }
});

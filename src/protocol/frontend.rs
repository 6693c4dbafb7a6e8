//! Frontend (client-to-server) messages, appended to a caller's buffer.
//!
//! INTERFACE PINNED BY THE LEAD: these signatures are used by `conn` and `driver`. Implement the
//! bodies; add more functions and tests freely. Every function appends one complete message to `buf`
//! and leaves `buf` unchanged when it returns an error.

use super::EncodeError;

/// Protocol version 3.0, as sent in the StartupMessage.
pub const PROTOCOL_3_0: u32 = 196_608;
/// Protocol version 3.2.
pub const PROTOCOL_3_2: u32 = 196_610;
/// The SSLRequest code (1234 << 16 | 5679).
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// The GSSENCRequest code (1234 << 16 | 5680). pgdblink never sends it.
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// The CancelRequest code (1234 << 16 | 5678).
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// StartupMessage: `version`, then `(name, value)` pairs, then a terminating NUL. Names and values must
/// not contain NUL.
pub fn startup_message<'a>(
    version: u32,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let _ = (version, params, buf);
    todo!()
}

//! The sans-IO wire codec: frontend messages encoded, backend messages decoded zero-copy.
//!
//! No sockets, no clock, no randomness. [`frontend`] appends encoded messages to a `Vec<u8>`;
//! [`backend::decode`] looks at the start of a receive buffer and returns either one complete message
//! borrowing from that buffer, or how many bytes are still missing. A partial message is never an
//! error; every malformation is a distinct [`DecodeError`].

pub mod backend;
pub mod frontend;

pub use backend::{BackendMessage, Decoded, decode};

use std::fmt;

/// Hard limits applied while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest length word accepted for the message types that carry data of arbitrary size
    /// (`T` RowDescription, `D` DataRow, `d` CopyData, `V` FunctionCallResponse, `E` ErrorResponse,
    /// `N` NoticeResponse, `A` NotificationResponse). libpq accepts any length here; the default is 1 GiB,
    /// PostgreSQL's own limit for one value.
    pub max_data_message: u32,
    /// The largest length word accepted for every other message type. libpq's limit is 30000 bytes.
    pub max_small_message: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_data_message: 0x4000_0000,
            max_small_message: 30_000,
        }
    }
}

/// Why a byte sequence is not a valid backend message. Small and `Copy`, in the style of httparse.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The length word is below 4 (it counts itself).
    LengthTooSmall {
        /// The message type byte.
        tag: u8,
        /// The length word as received.
        len: u32,
    },
    /// The length word exceeds the configured [`Limits`].
    LengthTooLarge {
        /// The message type byte.
        tag: u8,
        /// The length word as received.
        len: u32,
        /// The limit it exceeded.
        max: u32,
    },
    /// A message type byte that no backend message has.
    UnknownTag(u8),
    /// A field, count or string runs past the end of the message body.
    Truncated {
        /// The message type byte.
        tag: u8,
        /// What was being read (`"field count"`, `"column name"`, ...).
        what: &'static str,
    },
    /// A string is missing its NUL terminator inside the message body.
    MissingNul {
        /// The message type byte.
        tag: u8,
        /// Which string.
        what: &'static str,
    },
    /// Bytes are left over after the message's last field.
    TrailingBytes {
        /// The message type byte.
        tag: u8,
        /// How many bytes were left.
        extra: u32,
    },
    /// A value is out of its allowed range (a negative count, a field length below -1, an unknown
    /// transaction status, a key length outside 4..=256, ...).
    InvalidValue {
        /// The message type byte.
        tag: u8,
        /// Which value.
        what: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::LengthTooSmall { tag, len }
            | DecodeError::LengthTooLarge { tag, len, .. } => {
                write!(
                    f,
                    "lost synchronization with server: got message type \"{}\", length {}",
                    printable(tag),
                    len as i32
                )
            }
            DecodeError::UnknownTag(tag) => write!(
                f,
                "unexpected response from server; first received character was \"{}\"",
                printable(tag)
            ),
            DecodeError::Truncated { tag, what } => write!(
                f,
                "insufficient data in \"{}\" message: {what} runs past the end",
                printable(tag)
            ),
            DecodeError::MissingNul { tag, what } => write!(
                f,
                "invalid \"{}\" message: {what} is not NUL-terminated",
                printable(tag)
            ),
            DecodeError::TrailingBytes { tag, extra } => write!(
                f,
                "message contents do not agree with length in message type \"{}\" ({extra} extra bytes)",
                printable(tag)
            ),
            DecodeError::InvalidValue { tag, what } => {
                write!(f, "invalid \"{}\" message: bad {what}", printable(tag))
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a frontend message could not be encoded.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// A string that goes on the wire NUL-terminated contains a NUL byte.
    InteriorNul {
        /// Which string (`"query"`, `"parameter name"`, ...).
        what: &'static str,
    },
    /// The message would exceed the protocol's 2^31-1 byte length, or a count exceeds its field width.
    TooLong {
        /// Which part.
        what: &'static str,
    },
    /// A value outside its allowed range (a cancel key outside 4..=256 bytes).
    InvalidValue {
        /// Which value.
        what: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::InteriorNul { what } => write!(f, "{what} contains a NUL byte"),
            EncodeError::TooLong { what } => write!(f, "{what} is too long for the protocol"),
            EncodeError::InvalidValue { what } => write!(f, "invalid {what}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A type byte as libpq prints it: the character when printable, else `\xNN`.
pub(crate) fn printable(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        (tag as char).to_string()
    } else {
        format!("\\x{tag:02x}")
    }
}

/// `a == b` without a call to `memcmp` or a loop for the short slices compared on hot paths (a
/// connection's name, a RowDescription's fields): at most two fixed-size compares, overlapping in
/// the middle, for up to 32 bytes.
#[inline(always)]
pub(crate) fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1 => a[0] == b[0],
        // Bytes 0 and 1, then n - 1, are every byte.
        2..=3 => a[..2] == b[..2] && a[n - 1] == b[n - 1],
        4..=8 => ends_eq::<4>(a, b),
        9..=16 => ends_eq::<8>(a, b),
        17..=32 => ends_eq::<16>(a, b),
        _ => a == b,
    }
}

/// The first `N` and the last `N` bytes of `a` and `b` (of equal length, at least `N`) are equal.
#[inline(always)]
fn ends_eq<const N: usize>(a: &[u8], b: &[u8]) -> bool {
    a.first_chunk::<N>() == b.first_chunk::<N>() && a.last_chunk::<N>() == b.last_chunk::<N>()
}

//! Backend (server-to-client) messages, decoded zero-copy from a receive buffer.
//!
//! INTERFACE PINNED BY THE LEAD: the type and function signatures in this file are used by `conn`.
//! Implement the bodies; add private helpers, more impls and tests freely, but do not change the
//! public shapes below without telling the lead.

use std::ops::Range;

use super::{DecodeError, Limits};

/// The result of looking at the start of a receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// One complete message, and how many bytes of the buffer it occupied (type byte + length word +
    /// body). The caller consumes exactly that many bytes.
    Message(BackendMessage<'a>, usize),
    /// The buffer holds only a strict prefix of a message: at least this many more bytes are needed
    /// (for a prefix shorter than 5 bytes, the count to complete the header).
    NeedMore(usize),
}

/// Decodes the first message in `buf`, validating it completely (every count, length, terminator, and
/// the absence of trailing bytes), so that the accessors below cannot fail afterwards.
///
/// Returns [`Decoded::NeedMore`] for any strict prefix of a valid message; the length word is checked
/// against `limits` as soon as the 5-byte header is present, before waiting for the body.
///
/// ```
/// use pgdblink::protocol::backend::TransactionStatus;
/// use pgdblink::protocol::{BackendMessage, Decoded, Limits, decode};
///
/// let limits = Limits::default();
/// let stream = b"C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I";
/// let Ok(Decoded::Message(BackendMessage::CommandComplete { tag }, used)) = decode(stream, &limits)
/// else { panic!() };
/// assert_eq!((tag, used), (&b"SELECT 1"[..], 14));
/// let rest = &stream[used..];
/// assert_eq!(
///     decode(rest, &limits),
///     Ok(Decoded::Message(BackendMessage::ReadyForQuery(TransactionStatus::Idle), 6))
/// );
/// // A partial message is not an error: it says how many bytes are missing.
/// assert_eq!(decode(&rest[..3], &limits), Ok(Decoded::NeedMore(2)));
/// assert_eq!(decode(&rest[..5], &limits), Ok(Decoded::NeedMore(1)));
/// ```
#[inline]
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Decoded<'a>, DecodeError> {
    // "The first byte of a message identifies the message type, and the next four bytes specify the
    // length of the rest of the message (this length count includes itself, but not the message-type
    // byte)."
    let Some(&[tag, l0, l1, l2, l3]) = buf.first_chunk::<5>() else {
        return Ok(Decoded::NeedMore(5 - buf.len()));
    };
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    // libpq (pqParseInput3): "if (msgLength < 4) ... lost synchronization with server".
    if len < 4 {
        return Err(DecodeError::LengthTooSmall { tag, len });
    }
    // libpq checks `VALID_LONG_MESSAGE_TYPE` (T D d V E N A) may be long; every other type is limited
    // to 30000 bytes. Checked now, from the header alone, so a bogus length never makes the caller
    // buffer a gigabyte first.
    let max = if is_data_tag(tag) {
        limits.max_data_message
    } else {
        limits.max_small_message
    };
    if len > max {
        return Err(DecodeError::LengthTooLarge { tag, len, max });
    }
    // `len + 1` cannot overflow a u64; on a 16/32-bit target an impossible size is "too large".
    let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(1)) else {
        return Err(DecodeError::LengthTooLarge { tag, len, max });
    };
    if tag == b'D' {
        // The hot path: one row of a result set.
        return match buf.get(5..total) {
            Some(body) => Ok(Decoded::Message(
                BackendMessage::DataRow(parse_data_row(body)?),
                total,
            )),
            None => Ok(Decoded::NeedMore(total - buf.len())),
        };
    }
    if !is_known_tag(tag) {
        return Err(DecodeError::UnknownTag(tag));
    }
    match buf.get(5..total) {
        Some(body) => Ok(Decoded::Message(parse_body(tag, body)?, total)),
        None => Ok(Decoded::NeedMore(total - buf.len())),
    }
}

/// The message types libpq lets exceed the small-message limit (`VALID_LONG_MESSAGE_TYPE`).
#[inline]
fn is_data_tag(tag: u8) -> bool {
    matches!(tag, b'T' | b'D' | b'd' | b'V' | b'E' | b'N' | b'A')
}

/// Every backend message type of protocol 3.0/3.2 this codec decodes.
fn is_known_tag(tag: u8) -> bool {
    matches!(
        tag,
        b'R' | b'K'
            | b'S'
            | b'Z'
            | b'T'
            | b'D'
            | b'C'
            | b'I'
            | b'E'
            | b'N'
            | b'A'
            | b'v'
            | b'G'
            | b'H'
            | b'W'
            | b'd'
            | b'c'
            | b'1'
            | b'2'
            | b'3'
            | b'n'
            | b't'
            | b's'
            | b'V'
    )
}

/// A bounds-checked cursor over one message body. Every read either succeeds or returns the
/// `DecodeError` naming what was being read; nothing can panic.
struct Reader<'a> {
    tag: u8,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(tag: u8, body: &'a [u8]) -> Reader<'a> {
        Reader { tag, rest: body }
    }

    fn truncated(&self, what: &'static str) -> DecodeError {
        DecodeError::Truncated {
            tag: self.tag,
            what,
        }
    }

    fn invalid(&self, what: &'static str) -> DecodeError {
        DecodeError::InvalidValue {
            tag: self.tag,
            what,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.rest.split_at_checked(n) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(self.truncated(what)),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            None => Err(self.truncated(what)),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// An Int16 count, which the protocol never allows to be negative.
    fn count16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let n = self.i16(what)?;
        u16::try_from(n).map_err(|_| self.invalid(what))
    }

    /// A NUL-terminated string, returned without its terminator. An empty remainder is `Truncated`
    /// (the string is missing altogether); bytes without a NUL are `MissingNul`.
    fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.is_empty() {
            return Err(self.truncated(what));
        }
        match self.rest.iter().position(|&b| b == 0) {
            Some(i) => {
                let s = self.rest.get(..i).unwrap_or_default();
                self.rest = self.rest.get(i + 1..).unwrap_or_default();
                Ok(s)
            }
            None => Err(DecodeError::MissingNul {
                tag: self.tag,
                what,
            }),
        }
    }

    /// Everything left.
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// The message must end here: "message contents do not agree with length".
    fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                tag: self.tag,
                extra: u32::try_from(self.rest.len()).unwrap_or(u32::MAX),
            })
        }
    }
}

/// The field offset [`data_row_offsets`] records for a NULL value (no real offset is this large).
pub const NULL_FIELD: u32 = u32::MAX;

/// The bytes of the values in a valid DataRow of `message_len` bytes (tag included) and `ncols`
/// fields: the message less its header (tag, length, field count) and each field's length word.
/// [`DataRow::value_bytes`] says the same of a decoded row.
#[inline]
pub fn data_row_value_bytes(message_len: usize, ncols: usize) -> usize {
    message_len.saturating_sub(7 + 4 * ncols)
}

/// Where [`data_row_offsets`] appends the offsets of a row's fields: a `Vec<u32>`, or a caller's own
/// store (pgdblink keeps a small row set's inline).
pub trait Offsets {
    /// How many offsets are stored.
    fn len(&self) -> usize;
    /// Whether none are.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Makes room for `additional` more.
    fn reserve(&mut self, additional: usize);
    /// Appends one.
    fn push(&mut self, offset: u32);
    /// Keeps the first `len` (a row found invalid half-way is taken back).
    fn truncate(&mut self, len: usize);
}

impl Offsets for Vec<u32> {
    #[inline(always)]
    fn len(&self) -> usize {
        Vec::len(self)
    }
    #[inline(always)]
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional)
    }
    #[inline(always)]
    fn push(&mut self, offset: u32) {
        Vec::push(self, offset)
    }
    #[inline(always)]
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len)
    }
}

/// The fast path for the hottest message: if `buf` starts with a complete, valid DataRow of exactly
/// `ncols` fields, appends each field's value offset to `out` (relative to the start of `buf`, plus
/// `base`; [`NULL_FIELD`] for NULL) and returns the bytes the message occupies. A value's length is
/// the big-endian `i32` in the four bytes before its offset, so one `u32` per field is all a row set
/// keeps. Validation and collecting the offsets happen in one pass.
///
/// Returns `None`, with `out` unchanged, for anything else (another message type, a partial message,
/// another field count, offsets from `u32::MAX` on, any malformation): the caller then uses
/// [`decode`], which gives the precise answer. So this function accepts exactly the DataRows `decode`
/// accepts.
#[inline(always)]
pub fn data_row_offsets(
    buf: &[u8],
    limits: &Limits,
    ncols: usize,
    base: usize,
    out: &mut impl Offsets,
) -> Option<usize> {
    let (&[b'D', l0, l1, l2, l3], _) = buf.split_first_chunk::<5>()? else {
        return None;
    };
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    if !(6..=limits.max_data_message).contains(&len) {
        return None;
    }
    let total = usize::try_from(len).ok()?.checked_add(1)?;
    let body = buf.get(5..total)?;
    let (count, mut rest) = body.split_first_chunk::<2>()?;
    if u16::from_be_bytes(*count) as usize != ncols
        || base.checked_add(total)? >= NULL_FIELD as usize
    {
        return None;
    }
    let start = out.len();
    out.reserve(ncols);
    for _ in 0..ncols {
        let Some((field_len, tail)) = rest.split_first_chunk::<4>() else {
            out.truncate(start);
            return None;
        };
        let field_len = i32::from_be_bytes(*field_len);
        // `tail` ends where the message ends.
        let offset = base + (total - tail.len());
        if field_len == -1 {
            out.push(NULL_FIELD);
            rest = tail;
        } else if let Some(t) = usize::try_from(field_len).ok().and_then(|l| tail.get(l..)) {
            out.push(offset as u32);
            rest = t;
        } else {
            out.truncate(start);
            return None;
        }
    }
    if !rest.is_empty() {
        out.truncate(start);
        return None;
    }
    Some(total)
}

/// Validates a `D` body in one pass: "Int16: the number of column values that follow (possibly
/// zero)", then per column "Int32: the length of the column value, in bytes ... As a special case,
/// -1 indicates a NULL column value", then that many bytes.
#[inline]
fn parse_data_row(body: &[u8]) -> Result<DataRow<'_>, DecodeError> {
    const TAG: u8 = b'D';
    let Some((count, fields)) = body.split_first_chunk::<2>() else {
        return Err(DecodeError::Truncated {
            tag: TAG,
            what: "field count",
        });
    };
    let count = i16::from_be_bytes(*count);
    let Ok(count) = u16::try_from(count) else {
        return Err(DecodeError::InvalidValue {
            tag: TAG,
            what: "field count",
        });
    };
    let mut rest = fields;
    for _ in 0..count {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(DecodeError::Truncated {
                tag: TAG,
                what: "field length",
            });
        };
        let len = i32::from_be_bytes(*len);
        if len < 0 {
            // -1 is NULL; "no value bytes follow in the NULL case". Anything lower is garbage.
            if len != -1 {
                return Err(DecodeError::InvalidValue {
                    tag: TAG,
                    what: "field length",
                });
            }
            rest = tail;
            continue;
        }
        // `len` is non-negative, so the cast is lossless.
        match tail.get(len as usize..) {
            Some(t) => rest = t,
            None => {
                return Err(DecodeError::Truncated {
                    tag: TAG,
                    what: "field value",
                });
            }
        }
    }
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            tag: TAG,
            extra: u32::try_from(rest.len()).unwrap_or(u32::MAX),
        });
    }
    Ok(DataRow {
        bytes: fields,
        count,
    })
}

/// Parses and validates the body of every message type except `D`.
fn parse_body(tag: u8, body: &[u8]) -> Result<BackendMessage<'_>, DecodeError> {
    let mut r = Reader::new(tag, body);
    let msg = match tag {
        b'R' => BackendMessage::Authentication(parse_authentication(&mut r)?),
        b'K' => {
            let pid = r.u32("process id")?;
            let key = r.rest();
            // Protocol 3.2: "The secret key ... between 4 and 256 bytes"; before 3.2 it was always
            // 4 bytes. libpq >= 18 rejects keys outside 4..=256.
            if !(4..=256).contains(&key.len()) {
                return Err(r.invalid("secret key length"));
            }
            BackendMessage::BackendKeyData { pid, key }
        }
        b'S' => {
            let name = r.cstr("parameter name")?;
            let value = r.cstr("parameter value")?;
            BackendMessage::ParameterStatus { name, value }
        }
        b'Z' => {
            // "'I' if idle (not in a transaction block); 'T' if in a transaction block; or 'E' if
            // in a failed transaction block".
            let status = match r.u8("transaction status")? {
                b'I' => TransactionStatus::Idle,
                b'T' => TransactionStatus::InTransaction,
                b'E' => TransactionStatus::Failed,
                _ => return Err(r.invalid("transaction status")),
            };
            BackendMessage::ReadyForQuery(status)
        }
        b'T' => {
            let count = r.count16("field count")?;
            let bytes = r.rest;
            // Per field: "String: The field name", then Int32 table OID, Int16 column number,
            // Int32 type OID, Int16 type size, Int32 type modifier, Int16 format code.
            for _ in 0..count {
                r.cstr("column name")?;
                r.take(FIELD_FIXED_LEN, "field description")?;
            }
            BackendMessage::RowDescription(RowDescription { bytes, count })
        }
        b'C' => BackendMessage::CommandComplete {
            tag: r.cstr("command tag")?,
        },
        b'I' => BackendMessage::EmptyQueryResponse,
        b'E' => BackendMessage::ErrorResponse(parse_error_fields(&mut r)?),
        b'N' => BackendMessage::NoticeResponse(parse_error_fields(&mut r)?),
        b'A' => {
            let pid = r.u32("process id")?;
            let channel = r.cstr("channel name")?;
            let payload = r.cstr("payload")?;
            BackendMessage::NotificationResponse {
                pid,
                channel,
                payload,
            }
        }
        b'v' => {
            // "Int32: Newest minor protocol version supported by the server ... Int32: Number of
            // protocol options not recognized by the server. Then, for each ...: String".
            let newest_minor = r.u32("newest minor version")?;
            let count = r.i32("option count")?;
            let count = u32::try_from(count).map_err(|_| r.invalid("option count"))?;
            let bytes = r.rest;
            for _ in 0..count {
                r.cstr("option name")?;
            }
            let used = bytes.len().saturating_sub(r.rest.len());
            BackendMessage::NegotiateProtocolVersion {
                newest_minor,
                unrecognized: StringList {
                    bytes: bytes.get(..used).unwrap_or_default(),
                    count,
                },
            }
        }
        b'G' => BackendMessage::CopyInResponse(parse_copy_response(&mut r)?),
        b'H' => BackendMessage::CopyOutResponse(parse_copy_response(&mut r)?),
        b'W' => BackendMessage::CopyBothResponse(parse_copy_response(&mut r)?),
        b'd' => BackendMessage::CopyData(r.rest()),
        b'c' => BackendMessage::CopyDone,
        b'1' => BackendMessage::ParseComplete,
        b'2' => BackendMessage::BindComplete,
        b'3' => BackendMessage::CloseComplete,
        b'n' => BackendMessage::NoData,
        b's' => BackendMessage::PortalSuspended,
        b't' => {
            // "Int16: The number of parameters used by the statement (can be zero)", then an Int32
            // type OID per parameter.
            let count = r.count16("parameter count")?;
            let oids = r.take(usize::from(count) * 4, "parameter type")?;
            BackendMessage::ParameterDescription(ParameterDescription { oids })
        }
        b'V' => {
            // "Int32: The length of the function result value, in bytes ... -1 indicates a NULL
            // function result."
            let len = r.i32("result length")?;
            if len == -1 {
                BackendMessage::FunctionCallResponse(None)
            } else {
                let len = usize::try_from(len).map_err(|_| r.invalid("result length"))?;
                BackendMessage::FunctionCallResponse(Some(r.take(len, "result value")?))
            }
        }
        other => return Err(DecodeError::UnknownTag(other)),
    };
    r.finish()?;
    Ok(msg)
}

/// Bytes of a `T` field description after its name: Int32, Int16, Int32, Int16, Int32, Int16.
const FIELD_FIXED_LEN: usize = 18;

/// The `R` body: "Int32: Specifies that ..." a request code, then the code's payload.
fn parse_authentication<'a>(r: &mut Reader<'a>) -> Result<Authentication<'a>, DecodeError> {
    let code = r.u32("authentication code")?;
    Ok(match code {
        // Codes without a payload: anything after the code is trailing (checked by `finish`).
        0 => Authentication::Ok,
        2 => Authentication::KerberosV5,
        3 => Authentication::CleartextPassword,
        7 => Authentication::Gss,
        9 => Authentication::Sspi,
        // "Byte4: The salt to use when encrypting the password."
        5 => Authentication::Md5Password {
            salt: r.array("salt")?,
        },
        8 => Authentication::GssContinue(r.rest()),
        10 => {
            // "String: Name of a SASL authentication mechanism", repeated; "The message body is a
            // list of SASL authentication mechanisms, in the server's order of preference. A zero
            // byte is required as terminator after the last authentication mechanism name."
            let bytes = r.rest;
            let mut count: u32 = 0;
            loop {
                let name = r.cstr("SASL mechanism")?;
                if name.is_empty() {
                    break;
                }
                count = count.saturating_add(1);
            }
            // Everything read except the final empty string's NUL.
            let used = bytes.len().saturating_sub(r.rest.len() + 1);
            Authentication::Sasl(StringList {
                bytes: bytes.get(..used).unwrap_or_default(),
                count,
            })
        }
        11 => Authentication::SaslContinue(r.rest()),
        12 => Authentication::SaslFinal(r.rest()),
        code => Authentication::Other {
            code,
            payload: r.rest(),
        },
    })
}

/// `E`/`N`: "The message body consists of one or more identified fields, followed by a zero byte as a
/// terminator. Fields can appear in any order." Each field is "Byte1: A code identifying the field
/// type; if zero, this is the message terminator and no string follows", then "String: The field
/// value".
fn parse_error_fields<'a>(r: &mut Reader<'a>) -> Result<ErrorFields<'a>, DecodeError> {
    let bytes = r.rest;
    loop {
        match r.rest.split_first() {
            None => {
                return Err(DecodeError::MissingNul {
                    tag: r.tag,
                    what: "field list terminator",
                });
            }
            Some((0, tail)) => {
                let used = bytes.len().saturating_sub(tail.len() + 1);
                r.rest = tail;
                return Ok(ErrorFields {
                    bytes: bytes.get(..used).unwrap_or_default(),
                });
            }
            Some((_, tail)) => {
                r.rest = tail;
                r.cstr("field value")?;
            }
        }
    }
}

/// `G`/`H`/`W`: "Int8: 0 indicates the overall COPY format is textual ... 1 indicates ... binary",
/// "Int16: The number of columns in the data to be copied", then an Int16 format code per column.
fn parse_copy_response<'a>(r: &mut Reader<'a>) -> Result<CopyResponse<'a>, DecodeError> {
    let format = r.u8("copy format")?;
    let count = r.count16("column count")?;
    let column_formats = r.take(usize::from(count) * 2, "column format")?;
    Ok(CopyResponse {
        format,
        column_formats,
    })
}

/// A backend message. Strings are borrowed bytes without their NUL terminator: the codec makes no
/// assumption about the client encoding.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    /// `R`: one of the authentication requests.
    Authentication(Authentication<'a>),
    /// `K`: process id and secret key for cancel requests (4 bytes in protocol 3.0, 4..=256 in 3.2).
    BackendKeyData {
        /// The backend's process id.
        pid: u32,
        /// The secret key.
        key: &'a [u8],
    },
    /// `S`: a run-time parameter's current value.
    ParameterStatus {
        /// Parameter name.
        name: &'a [u8],
        /// Its value.
        value: &'a [u8],
    },
    /// `Z`: the backend is ready for a new query.
    ReadyForQuery(TransactionStatus),
    /// `T`: the columns of the rows that follow.
    RowDescription(RowDescription<'a>),
    /// `D`: one row.
    DataRow(DataRow<'a>),
    /// `C`: a statement completed; its command tag (`SELECT 3`, `INSERT 0 1`).
    CommandComplete {
        /// The command tag.
        tag: &'a [u8],
    },
    /// `I`: the query string was empty.
    EmptyQueryResponse,
    /// `E`: an error.
    ErrorResponse(ErrorFields<'a>),
    /// `N`: a notice.
    NoticeResponse(ErrorFields<'a>),
    /// `A`: a notification from LISTEN/NOTIFY.
    NotificationResponse {
        /// The notifying backend's process id.
        pid: u32,
        /// The channel name.
        channel: &'a [u8],
        /// The payload (empty when none was given).
        payload: &'a [u8],
    },
    /// `v`: the server does not support the requested minor version or some `_pq_.` options.
    NegotiateProtocolVersion {
        /// The newest minor protocol version the server supports for the requested major version.
        newest_minor: u32,
        /// The option names the server did not recognize.
        unrecognized: StringList<'a>,
    },
    /// `G`: the server is ready to receive COPY data.
    CopyInResponse(CopyResponse<'a>),
    /// `H`: COPY data follows.
    CopyOutResponse(CopyResponse<'a>),
    /// `W`: both directions (replication).
    CopyBothResponse(CopyResponse<'a>),
    /// `d`: a chunk of COPY data.
    CopyData(&'a [u8]),
    /// `c`: the end of COPY data.
    CopyDone,
    /// `1`: Parse completed.
    ParseComplete,
    /// `2`: Bind completed.
    BindComplete,
    /// `3`: Close completed.
    CloseComplete,
    /// `n`: the described statement or portal returns no rows.
    NoData,
    /// `t`: the parameter types of a prepared statement.
    ParameterDescription(ParameterDescription<'a>),
    /// `s`: an Execute's row limit was reached.
    PortalSuspended,
    /// `V`: the result of a (legacy) function call; `None` for SQL NULL.
    FunctionCallResponse(Option<&'a [u8]>),
}

/// The `R` family. Codes without a payload PostgreSQL defines are decoded as [`Authentication::Other`]
/// with their raw payload, so the state machine can give libpq's "not supported" texts.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// 0: authentication succeeded.
    Ok,
    /// 2: Kerberos V5.
    KerberosV5,
    /// 3: send the password in clear text.
    CleartextPassword,
    /// 5: send the MD5-hashed password with this salt.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// 7: GSSAPI.
    Gss,
    /// 8: GSSAPI or SSPI continuation data.
    GssContinue(&'a [u8]),
    /// 9: SSPI.
    Sspi,
    /// 10: SASL, with the mechanisms the server offers.
    Sasl(StringList<'a>),
    /// 11: SASL challenge data.
    SaslContinue(&'a [u8]),
    /// 12: SASL outcome data.
    SaslFinal(&'a [u8]),
    /// Any other code (1, 4, 6, 99, ...), with its payload.
    Other {
        /// The request code.
        code: u32,
        /// The bytes after the code.
        payload: &'a [u8],
    },
}

/// The transaction status in `ReadyForQuery`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block.
    Failed,
}

/// A sequence of NUL-terminated strings (validated at decode time), ending with the body for
/// `NegotiateProtocolVersion` or with an empty string for `AuthenticationSASL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StringList<'a> {
    /// The raw bytes: each string followed by its NUL (for SASL, without the final empty string).
    bytes: &'a [u8],
    count: u32,
}

impl<'a> StringList<'a> {
    /// How many strings.
    pub fn len(&self) -> usize {
        self.count as usize
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The strings, without their terminators.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let bytes = self.bytes;
        bytes.split(|&b| b == 0).take(self.count as usize)
    }
}

/// The body of a `T` message. Validated at decode time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowDescription<'a> {
    /// The body after the Int16 field count.
    bytes: &'a [u8],
    count: u16,
}

/// One column of a [`RowDescription`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// Column name.
    pub name: &'a [u8],
    /// OID of the table, or 0.
    pub table_oid: u32,
    /// Attribute number in that table, or 0.
    pub column_id: i16,
    /// OID of the data type.
    pub type_oid: u32,
    /// `pg_type.typlen`.
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

impl<'a> RowDescription<'a> {
    /// The raw column descriptions (the body after the Int16 column count): equal bytes describe equal
    /// columns, which lets a caller reuse what it built from an earlier identical description.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.count as usize
    }
    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The columns in order.
    pub fn fields(&self) -> impl Iterator<Item = FieldDescription<'a>> + 'a {
        FieldDescriptions {
            bytes: self.bytes,
            remaining: self.count,
        }
    }
}

/// Iterator behind [`RowDescription::fields`]. The body was validated by `decode`; should it ever be
/// inconsistent the iterator simply ends.
struct FieldDescriptions<'a> {
    bytes: &'a [u8],
    remaining: u16,
}

impl<'a> Iterator for FieldDescriptions<'a> {
    type Item = FieldDescription<'a>;

    fn next(&mut self) -> Option<FieldDescription<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let nul = self.bytes.iter().position(|&b| b == 0)?;
        let (name, rest) = self.bytes.split_at_checked(nul)?;
        let (fixed, rest) = rest.get(1..)?.split_first_chunk::<FIELD_FIXED_LEN>()?;
        self.bytes = rest;
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r] = *fixed;
        Some(FieldDescription {
            name,
            table_oid: u32::from_be_bytes([a, b, c, d]),
            column_id: i16::from_be_bytes([e, f]),
            type_oid: u32::from_be_bytes([g, h, i, j]),
            type_size: i16::from_be_bytes([k, l]),
            type_modifier: i32::from_be_bytes([m, n, o, p]),
            format: i16::from_be_bytes([q, r]),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.remaining)))
    }
}

/// The body of a `D` message: a field count and the fields. Validated at decode time, so iteration
/// cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRow<'a> {
    /// The body after the Int16 field count: (Int32 length, bytes)*.
    bytes: &'a [u8],
    count: u16,
}

impl<'a> DataRow<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.count as usize
    }
    /// Whether the row has no fields.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The raw field area (after the count): what `ranges` offsets refer to.
    pub fn body(&self) -> &'a [u8] {
        self.bytes
    }
    /// The bytes of the values (NULLs count none): the field area less each field's length word.
    pub fn value_bytes(&self) -> usize {
        self.bytes.len().saturating_sub(4 * self.len())
    }
    /// The fields in order; `None` is SQL NULL.
    #[inline]
    pub fn fields(&self) -> DataRowFields<'a> {
        DataRowFields {
            bytes: self.bytes,
            remaining: self.count,
        }
    }
    /// The fields in order as byte ranges into [`body`](DataRow::body); `None` is SQL NULL. Lets a
    /// caller keep a row as offsets into a buffer it owns.
    #[inline]
    pub fn ranges(&self) -> DataRowRanges<'a> {
        DataRowRanges {
            bytes: self.bytes,
            pos: 0,
            remaining: self.count,
        }
    }
}

/// Iterator over the fields of a [`DataRow`].
#[derive(Clone, Debug)]
pub struct DataRowFields<'a> {
    bytes: &'a [u8],
    remaining: u16,
}

impl<'a> Iterator for DataRowFields<'a> {
    type Item = Option<&'a [u8]>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // `decode` validated every length, so these lookups succeed; they are still checked, and an
        // impossible inconsistency would end the iteration instead of panicking.
        let (len, rest) = self.bytes.split_first_chunk::<4>()?;
        let len = i32::from_be_bytes(*len);
        if len < 0 {
            self.bytes = rest;
            return Some(None);
        }
        let (value, rest) = rest.split_at_checked(len as usize)?;
        self.bytes = rest;
        Some(Some(value))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.remaining);
        (n, Some(n))
    }
}

impl ExactSizeIterator for DataRowFields<'_> {}

/// Iterator over the fields of a [`DataRow`] as ranges into [`DataRow::body`]; `None` is SQL NULL.
#[derive(Clone, Debug)]
pub struct DataRowRanges<'a> {
    bytes: &'a [u8],
    pos: usize,
    remaining: u16,
}

impl Iterator for DataRowRanges<'_> {
    type Item = Option<Range<usize>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let len = self.bytes.get(self.pos..)?.first_chunk::<4>()?;
        let len = i32::from_be_bytes(*len);
        let start = self.pos.checked_add(4)?;
        if len < 0 {
            self.pos = start;
            return Some(None);
        }
        let end = start.checked_add(len as usize)?;
        if end > self.bytes.len() {
            return None;
        }
        self.pos = end;
        Some(Some(start..end))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.remaining);
        (n, Some(n))
    }
}

impl ExactSizeIterator for DataRowRanges<'_> {}

/// The fields of an `E` or `N` message: (code byte, NUL-terminated value)* ending in a zero byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    bytes: &'a [u8],
}

impl<'a> ErrorFields<'a> {
    /// The `(code, value)` pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut bytes = self.bytes;
        std::iter::from_fn(move || {
            let (&code, rest) = bytes.split_first()?;
            let nul = rest.iter().position(|&b| b == 0)?;
            let value = rest.get(..nul)?;
            bytes = rest.get(nul + 1..)?;
            Some((code, value))
        })
    }

    /// The value of the first field with this code (`b'C'` SQLSTATE, `b'M'` message, `b'S'`
    /// localized severity, `b'V'` severity, `b'D'` detail, `b'H'` hint, `b'P'` position, ...).
    pub fn get(&self, code: u8) -> Option<&'a [u8]> {
        self.iter().find(|&(c, _)| c == code).map(|(_, v)| v)
    }

    /// The raw field area: `(code, value, NUL)*` without the final terminating zero byte.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// The body of `G`, `H` or `W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyResponse<'a> {
    /// 0 text, 1 binary.
    pub format: u8,
    /// Per-column format codes as raw big-endian Int16s.
    column_formats: &'a [u8],
}

impl<'a> CopyResponse<'a> {
    /// Number of columns.
    pub fn len(&self) -> usize {
        self.column_formats.len() / 2
    }
    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.column_formats.is_empty()
    }
    /// Per-column format codes.
    pub fn column_formats(&self) -> impl Iterator<Item = i16> + 'a {
        self.column_formats
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
    }
}

/// The body of `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterDescription<'a> {
    oids: &'a [u8],
}

impl<'a> ParameterDescription<'a> {
    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.oids.len() / 4
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.oids.is_empty()
    }
    /// Parameter type OIDs.
    pub fn oids(&self) -> impl Iterator<Item = u32> + 'a {
        self.oids
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

impl BackendMessage<'_> {
    /// The message type byte this message was decoded from.
    pub fn tag(&self) -> u8 {
        match self {
            BackendMessage::Authentication(_) => b'R',
            BackendMessage::BackendKeyData { .. } => b'K',
            BackendMessage::ParameterStatus { .. } => b'S',
            BackendMessage::ReadyForQuery(_) => b'Z',
            BackendMessage::RowDescription(_) => b'T',
            BackendMessage::DataRow(_) => b'D',
            BackendMessage::CommandComplete { .. } => b'C',
            BackendMessage::EmptyQueryResponse => b'I',
            BackendMessage::ErrorResponse(_) => b'E',
            BackendMessage::NoticeResponse(_) => b'N',
            BackendMessage::NotificationResponse { .. } => b'A',
            BackendMessage::NegotiateProtocolVersion { .. } => b'v',
            BackendMessage::CopyInResponse(_) => b'G',
            BackendMessage::CopyOutResponse(_) => b'H',
            BackendMessage::CopyBothResponse(_) => b'W',
            BackendMessage::CopyData(_) => b'd',
            BackendMessage::CopyDone => b'c',
            BackendMessage::ParseComplete => b'1',
            BackendMessage::BindComplete => b'2',
            BackendMessage::CloseComplete => b'3',
            BackendMessage::NoData => b'n',
            BackendMessage::ParameterDescription(_) => b't',
            BackendMessage::PortalSuspended => b's',
            BackendMessage::FunctionCallResponse(_) => b'V',
        }
    }
}

impl TransactionStatus {
    /// The status byte as sent on the wire (`I`, `T` or `E`).
    pub fn as_byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// Decodes `bytes` as a backend stream and checks the codec's invariants on every message; the shared
/// body of the `backend_decode` fuzz target and the seed-corpus replay test.
///
/// Decodes with the default [`Limits`] in a loop, advancing by the consumed count and stopping at
/// `NeedMore` or an error. For each message it walks every accessor and iterator, and asserts:
/// decoding the message alone (without the bytes after it) gives the same result; each strict prefix
/// up to the header and the one-byte-short prefix give the exact `NeedMore` count; `DataRow::ranges`
/// agrees with `DataRow::fields`. Returns a checksum of everything visited and how many messages
/// were decoded. Panics if an invariant fails.
#[doc(hidden)]
pub fn exercise(bytes: &[u8]) -> (u64, usize) {
    let limits = Limits::default();
    let mut pos = 0usize;
    let mut sum = 0u64;
    let mut messages = 0usize;
    while let Some(rest) = bytes.get(pos..) {
        check_data_row_fast_path(rest, &limits);
        let (msg, used) = match decode(rest, &limits) {
            Ok(Decoded::Message(msg, used)) => (msg, used),
            Ok(Decoded::NeedMore(n)) => {
                assert!(n > 0, "NeedMore(0)");
                if rest.len() < 5 {
                    assert_eq!(n, 5 - rest.len());
                }
                break;
            }
            Err(e) => {
                // Only `Display` is left to exercise; it must not panic.
                sum = sum.wrapping_add(e.to_string().len() as u64);
                break;
            }
        };
        assert!(used >= 5 && used <= rest.len(), "bad consumed count {used}");
        let exact = rest.get(..used).unwrap_or_default();
        // The message decoded from a buffer holding nothing more, or with other bytes appended,
        // must be identical.
        assert_eq!(decode(exact, &limits), Ok(Decoded::Message(msg, used)));
        let mut longer = exact.to_vec();
        longer.extend_from_slice(&[0xff, 0, b'D']);
        assert_eq!(decode(&longer, &limits), Ok(Decoded::Message(msg, used)));
        // Strict prefixes: header prefixes, and the one just short of complete.
        for p in (0..5.min(used)).chain([used - 1]) {
            assert_eq!(
                decode(&exact[..p], &limits),
                Ok(Decoded::NeedMore(if p < 5 { 5 - p } else { used - p })),
                "prefix of {p} bytes"
            );
        }
        assert_eq!(msg.tag(), exact[0]);
        sum = sum.wrapping_add(visit(&msg));
        messages += 1;
        pos += used;
    }
    (sum, messages)
}

/// The property of [`data_row_offsets`]: it accepts exactly the DataRows [`decode`] accepts (with their
/// field count), with the same fields; for everything else it returns `None` and leaves `out` alone.
fn check_data_row_fast_path(buf: &[u8], limits: &Limits) {
    let declared = buf
        .get(5..7)
        .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]) as usize);
    for ncols in [declared, declared + 1] {
        let mut out = vec![7];
        let fast = data_row_offsets(buf, limits, ncols, 100, &mut out);
        match decode(buf, limits) {
            Ok(Decoded::Message(BackendMessage::DataRow(row), used)) if row.len() == ncols => {
                assert_eq!(fast, Some(used), "fast path refused a valid DataRow");
                let body_start = row.body().as_ptr() as usize - buf.as_ptr() as usize;
                let expected: Vec<u32> = std::iter::once(7)
                    .chain(row.ranges().map(|r| match r {
                        Some(r) => (100 + body_start + r.start) as u32,
                        None => NULL_FIELD,
                    }))
                    .collect();
                assert_eq!(out, expected, "fast path fields differ");
                assert_eq!(
                    data_row_value_bytes(used, ncols),
                    row.value_bytes(),
                    "value bytes from the message length"
                );
                // The length word before each value is the value's length.
                for r in row.ranges().flatten() {
                    let at = body_start + r.start;
                    let word: [u8; 4] = buf[at - 4..at].try_into().expect("4 bytes");
                    assert_eq!(i32::from_be_bytes(word) as usize, r.len());
                }
            }
            _ => {
                assert_eq!(fast, None, "fast path accepted what decode does not");
                assert_eq!(out, [7], "fast path touched the output");
            }
        }
    }
}

/// Touches every accessor of `msg`, returning a checksum so nothing is optimized away.
fn visit(msg: &BackendMessage<'_>) -> u64 {
    fn b(s: &[u8]) -> u64 {
        s.len() as u64 + s.first().copied().unwrap_or(0) as u64
    }
    let mut sum = u64::from(msg.tag());
    let mut add = |x: u64| sum = sum.wrapping_mul(31).wrapping_add(x);
    match *msg {
        BackendMessage::Authentication(a) => match a {
            Authentication::Md5Password { salt } => add(u64::from(u32::from_be_bytes(salt))),
            Authentication::Sasl(list) => {
                let mut n = 0;
                for m in list.iter() {
                    add(b(m));
                    n += 1;
                }
                assert_eq!(n, list.len());
                assert_eq!(list.is_empty(), n == 0);
            }
            Authentication::GssContinue(d)
            | Authentication::SaslContinue(d)
            | Authentication::SaslFinal(d) => add(b(d)),
            Authentication::Other { code, payload } => {
                add(u64::from(code));
                add(b(payload));
            }
            _ => add(1),
        },
        BackendMessage::BackendKeyData { pid, key } => {
            assert!((4..=256).contains(&key.len()));
            add(u64::from(pid));
            add(b(key));
        }
        BackendMessage::ParameterStatus { name, value } => {
            add(b(name));
            add(b(value));
        }
        BackendMessage::ReadyForQuery(s) => add(u64::from(s.as_byte())),
        BackendMessage::RowDescription(rd) => {
            let mut n = 0;
            for f in rd.fields() {
                add(b(f.name));
                add(u64::from(f.table_oid) ^ f.column_id as u64 ^ u64::from(f.type_oid));
                add(f.type_size as u64 ^ f.type_modifier as u64 ^ f.format as u64);
                n += 1;
            }
            assert_eq!(n, rd.len());
            assert_eq!(rd.is_empty(), n == 0);
        }
        BackendMessage::DataRow(row) => {
            let body = row.body();
            let mut n = 0;
            for (field, range) in row.fields().zip(row.ranges()) {
                assert_eq!(field, range.clone().map(|r| &body[r]));
                add(field.map_or(7, b));
                n += 1;
            }
            assert_eq!(n, row.len());
            assert_eq!(row.fields().count(), row.len());
            assert_eq!(row.ranges().count(), row.len());
            assert_eq!(row.is_empty(), n == 0);
        }
        BackendMessage::CommandComplete { tag } => add(b(tag)),
        BackendMessage::ErrorResponse(fields) | BackendMessage::NoticeResponse(fields) => {
            let mut len = 0;
            for (code, value) in fields.iter() {
                assert_ne!(code, 0);
                add(u64::from(code));
                add(b(value));
                len += 2 + value.len();
            }
            assert_eq!(len, fields.as_bytes().len());
            add(fields.get(b'M').map_or(0, b));
        }
        BackendMessage::NotificationResponse {
            pid,
            channel,
            payload,
        } => {
            add(u64::from(pid));
            add(b(channel));
            add(b(payload));
        }
        BackendMessage::NegotiateProtocolVersion {
            newest_minor,
            unrecognized,
        } => {
            add(u64::from(newest_minor));
            let mut n = 0;
            for o in unrecognized.iter() {
                add(b(o));
                n += 1;
            }
            assert_eq!(n, unrecognized.len());
        }
        BackendMessage::CopyInResponse(c)
        | BackendMessage::CopyOutResponse(c)
        | BackendMessage::CopyBothResponse(c) => {
            add(u64::from(c.format));
            assert_eq!(c.column_formats().count(), c.len());
            for f in c.column_formats() {
                add(f as u64);
            }
            add(u64::from(c.is_empty()));
        }
        BackendMessage::CopyData(d) => add(b(d)),
        BackendMessage::ParameterDescription(p) => {
            assert_eq!(p.oids().count(), p.len());
            for o in p.oids() {
                add(u64::from(o));
            }
            add(u64::from(p.is_empty()));
        }
        BackendMessage::FunctionCallResponse(v) => add(v.map_or(7, b)),
        BackendMessage::EmptyQueryResponse
        | BackendMessage::CopyDone
        | BackendMessage::ParseComplete
        | BackendMessage::BindComplete
        | BackendMessage::CloseComplete
        | BackendMessage::NoData
        | BackendMessage::PortalSuspended => add(2),
    }
    sum
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;

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
    // "Int32: Length of message contents in bytes, including self. Int32(196608): The protocol version
    // number ... The protocol version number is followed by one or more pairs of parameter name and
    // value strings. A zero byte is required as a terminator after the last name/value pair."
    write_message(buf, None, |buf| {
        buf.extend_from_slice(&version.to_be_bytes());
        for (name, value) in params {
            put_cstr(buf, name.as_bytes(), "parameter name")?;
            put_cstr(buf, value.as_bytes(), "parameter value")?;
        }
        buf.push(0);
        Ok(())
    })
}

/// SSLRequest: `Int32 8, Int32 80877103`. The server answers with a single byte, `S` or `N`.
pub fn ssl_request(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&8u32.to_be_bytes());
    buf.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
}

/// CancelRequest: `Int32 12 + key length, Int32 80877102, Int32 pid, Byte[n] key`. Sent as the first
/// and only packet of a new connection. The key must be 4..=256 bytes.
pub fn cancel_request(pid: u32, key: &[u8], buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    // Protocol 3.2: "The maximum key length is 256 bytes"; before 3.2 the key was always 4 bytes.
    if !(4..=256).contains(&key.len()) {
        return Err(EncodeError::InvalidValue {
            what: "cancel key length",
        });
    }
    write_message(buf, None, |buf| {
        buf.extend_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
        buf.extend_from_slice(&pid.to_be_bytes());
        buf.extend_from_slice(key);
        Ok(())
    })
}

/// PasswordMessage: `p`, the password (cleartext or `md5...`) and a NUL.
pub fn password_message(password: &[u8], buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_message(buf, Some(b'p'), |buf| put_cstr(buf, password, "password"))
}

/// SASLInitialResponse: `p`, the mechanism name, `Int32` length of the initial response (-1 when
/// there is none), and its bytes.
pub fn sasl_initial_response(
    mechanism: &str,
    data: Option<&[u8]>,
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    write_message(buf, Some(b'p'), |buf| {
        put_cstr(buf, mechanism.as_bytes(), "SASL mechanism")?;
        match data {
            Some(data) => {
                buf.extend_from_slice(&len_i32(data.len(), "SASL initial response")?.to_be_bytes());
                buf.extend_from_slice(data);
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        Ok(())
    })
}

/// SASLResponse: `p` and the raw mechanism data (no inner length).
pub fn sasl_response(data: &[u8], buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_message(buf, Some(b'p'), |buf| {
        buf.extend_from_slice(data);
        Ok(())
    })
}

/// Query: `Q` and the SQL text (one or more statements) with a NUL.
#[inline]
pub fn query(sql: &str, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let sql = sql.as_bytes();
    if has_nul(sql) {
        return Err(EncodeError::InteriorNul { what: "query" });
    }
    let [l0, l1, l2, l3] = message_len(sql.len(), 5)?;
    let n = sql.len();
    if let (Some(first), Some(last)) = (sql.first_chunk::<8>(), sql.last_chunk::<8>())
        && n <= 16
    {
        // A short text (`SELECT 1`): the whole message built in a fixed-size block, the text's
        // last 8 bytes written over its first where shorter than 16, the NUL after them left
        // from the zeroed block (at 5 + n, past the first 8 bytes), then one fixed-size copy
        // cut to the message's length.
        let mut msg = [0u8; 22];
        msg[..5].copy_from_slice(&[b'Q', l0, l1, l2, l3]);
        msg[5..13].copy_from_slice(first);
        msg[n - 3..n + 5].copy_from_slice(last);
        let end = buf.len() + n + 6;
        buf.extend_from_slice(&msg);
        buf.truncate(end);
        return Ok(());
    }
    buf.reserve(n + 6);
    buf.extend_from_slice(&[b'Q', l0, l1, l2, l3]);
    buf.extend_from_slice(sql);
    buf.push(0);
    Ok(())
}

/// Where a [`query`] message holds the query text: from this offset, the text's bytes as given.
pub(crate) const QUERY_TEXT_AT: usize = 5;

/// Where a [`parse`] (or [`query_params`]) message of statement `name` holds the query text:
/// from this offset, the text's bytes as given.
#[inline]
pub(crate) fn parse_text_at(name: &str) -> usize {
    6 + name.len()
}

/// The length word of a message of `var` bytes of variable parts and `fixed` of fixed ones (the
/// length word included).
#[inline]
fn message_len(var: usize, fixed: usize) -> Result<[u8; 4], EncodeError> {
    let len = var.saturating_add(fixed);
    Ok(len_i32(len, "message")?.to_be_bytes())
}

/// Query, as written before [`query`] had its own path (kept for the tests that compare them).
#[cfg(test)]
fn query_general(sql: &str, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_message(buf, Some(b'Q'), |buf| {
        put_query(buf, sql.as_bytes(), "query")
    })
}

/// Terminate: `X`.
pub fn terminate(buf: &mut Vec<u8>) {
    empty_message(b'X', buf);
}

/// CopyData: `d` and the bytes.
pub fn copy_data(data: &[u8], buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_message(buf, Some(b'd'), |buf| {
        buf.extend_from_slice(data);
        Ok(())
    })
}

/// CopyDone: `c`.
pub fn copy_done(buf: &mut Vec<u8>) {
    empty_message(b'c', buf);
}

/// CopyFail: `f` and the error message with a NUL.
pub fn copy_fail(message: &str, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    write_message(buf, Some(b'f'), |buf| {
        put_cstr(buf, message.as_bytes(), "copy failure message")
    })
}

/// Parse: `P`, the statement name (empty for the unnamed statement), the query, `Int16` count and the
/// parameter type OIDs (0 leaves a type unspecified).
pub fn parse(
    name: &str,
    query: &str,
    param_types: &[u32],
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let count = count_i16(param_types.len(), "parameter types")?;
    if name.is_empty() && param_types.is_empty() {
        // The unnamed statement without types (every query's): one copy of the text.
        let len = unnamed_parse_len(query)?;
        buf.reserve(unnamed_parse_size(query));
        put_unnamed_parse(query, len, buf);
        return Ok(());
    }
    write_message(buf, Some(b'P'), |buf| {
        put_cstr(buf, name.as_bytes(), "statement name")?;
        put_query(buf, query.as_bytes(), "query")?;
        buf.extend_from_slice(&count.to_be_bytes());
        for oid in param_types {
            buf.extend_from_slice(&oid.to_be_bytes());
        }
        Ok(())
    })
}

/// Bind: `B`, the portal and statement names, the parameter format codes, the parameter values
/// (`None` is NULL, sent as length -1), and the result-column format codes.
pub fn bind(
    portal: &str,
    statement: &str,
    param_formats: &[i16],
    params: &[Option<&[u8]>],
    result_formats: &[i16],
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let n_formats = count_i16(param_formats.len(), "parameter formats")?;
    let n_params = count_i16(params.len(), "parameters")?;
    let n_results = count_i16(result_formats.len(), "result formats")?;
    if portal.is_empty() && param_formats.is_empty() && result_formats.is_empty() {
        return bind_text(statement, params, n_params, buf);
    }
    write_message(buf, Some(b'B'), |buf| {
        put_cstr(buf, portal.as_bytes(), "portal name")?;
        put_cstr(buf, statement.as_bytes(), "statement name")?;
        buf.extend_from_slice(&n_formats.to_be_bytes());
        for f in param_formats {
            buf.extend_from_slice(&f.to_be_bytes());
        }
        buf.extend_from_slice(&n_params.to_be_bytes());
        for p in params {
            match p {
                // "As a special case, -1 indicates a NULL parameter value. No value bytes follow."
                None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    buf.extend_from_slice(&len_i32(v.len(), "parameter value")?.to_be_bytes());
                    buf.extend_from_slice(v);
                }
            }
        }
        buf.extend_from_slice(&n_results.to_be_bytes());
        for f in result_formats {
            buf.extend_from_slice(&f.to_be_bytes());
        }
        Ok(())
    })
}

/// Bind of the unnamed portal to `statement` with the parameters given as text (`None` is
/// NULL) and every result column in text: what [`bind`] sends with no format codes, without
/// making the caller turn its parameters into byte slices first.
pub fn bind_text_params(
    statement: &str,
    params: &[Option<&str>],
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let n_params = count_i16(params.len(), "parameters")?;
    bind_text(statement, params, n_params, buf)
}

/// Bind of the unnamed portal with every parameter and result in text (every query's): the
/// length counted first, then each part written once.
#[inline]
fn bind_text<T: AsRef<[u8]>>(
    statement: &str,
    params: &[Option<T>],
    n_params: i16,
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let var = bind_text_var(statement, params)?;
    let len = message_len(var, 12)?;
    buf.reserve(var + 13);
    put_bind_text(statement, params, n_params, len, buf);
    // No result format codes: every column in text.
    buf.extend_from_slice(&[0, 0]);
    Ok(())
}

/// Checks a text Bind's statement name and parameter lengths; returns the bytes of its variable
/// parts (the name and every parameter with its length word).
#[inline]
fn bind_text_var<T: AsRef<[u8]>>(
    statement: &str,
    params: &[Option<T>],
) -> Result<usize, EncodeError> {
    // The unnamed statement (every query's) without the search.
    if !statement.is_empty() && statement.as_bytes().contains(&0) {
        return Err(EncodeError::InteriorNul {
            what: "statement name",
        });
    }
    let mut var = statement.len();
    for p in params {
        let value = p.as_ref().map_or(0, |v| v.as_ref().len());
        len_i32(value, "parameter value")?;
        var = var.saturating_add(4 + value);
    }
    Ok(var)
}

/// A text Bind of the unnamed portal up to its result-format count, checked by
/// [`bind_text_var`] and with room reserved.
#[inline(always)]
fn put_bind_text<T: AsRef<[u8]>>(
    statement: &str,
    params: &[Option<T>],
    n_params: i16,
    [l0, l1, l2, l3]: [u8; 4],
    buf: &mut Vec<u8>,
) {
    let [n0, n1] = n_params.to_be_bytes();
    if statement.is_empty() {
        buf.extend_from_slice(&[b'B', l0, l1, l2, l3, 0, 0, 0, 0, n0, n1]);
    } else {
        buf.extend_from_slice(&[b'B', l0, l1, l2, l3, 0]);
        buf.extend_from_slice(statement.as_bytes());
        buf.extend_from_slice(&[0, 0, 0, n0, n1]);
    }
    put_bind_params(params, buf);
}

/// A text Bind's parameters, checked by [`bind_text_var`] and with room reserved.
#[inline(always)]
fn put_bind_params<T: AsRef<[u8]>>(params: &[Option<T>], buf: &mut Vec<u8>) {
    for p in params {
        match p {
            // "As a special case, -1 indicates a NULL parameter value. No value bytes follow."
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
            // A short value with its length word in one fixed-size copy.
            Some(v) => match v.as_ref() {
                [] => buf.extend_from_slice(&[0; 4]),
                &[a] => buf.extend_from_slice(&[0, 0, 0, 1, a]),
                &[a, b] => buf.extend_from_slice(&[0, 0, 0, 2, a, b]),
                &[a, b, c] => buf.extend_from_slice(&[0, 0, 0, 3, a, b, c]),
                v => {
                    // Checked by `bind_text_var`: fits an Int32.
                    buf.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    put_bytes(v, buf);
                }
            },
        }
    }
}

/// `buf.extend_from_slice(bytes)`, without a call for up to 16 bytes: two fixed-size copies,
/// the second overlapping the first (written over it) when shorter.
#[inline(always)]
fn put_bytes(bytes: &[u8], buf: &mut Vec<u8>) {
    let end = buf.len() + bytes.len();
    match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        (Some(first), Some(last)) if bytes.len() <= 16 => {
            buf.extend_from_slice(first);
            buf.truncate(end - 8);
            buf.extend_from_slice(last);
        }
        _ => match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
            (Some(first), Some(last)) if bytes.len() < 8 => {
                buf.extend_from_slice(first);
                buf.truncate(end - 4);
                buf.extend_from_slice(last);
            }
            _ => buf.extend_from_slice(bytes),
        },
    }
}

/// The length word of a Parse of the unnamed statement without parameter types, after checking
/// the query for a NUL.
#[inline]
fn unnamed_parse_len(query: &str) -> Result<[u8; 4], EncodeError> {
    if has_nul(query.as_bytes()) {
        return Err(EncodeError::InteriorNul { what: "query" });
    }
    message_len(query.len(), 8)
}

/// The bytes of that Parse.
#[inline]
fn unnamed_parse_size(query: &str) -> usize {
    query.len() + 9
}

/// That Parse, checked by [`unnamed_parse_len`] and with room reserved.
#[inline]
fn put_unnamed_parse(query: &str, [l0, l1, l2, l3]: [u8; 4], buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[b'P', l0, l1, l2, l3, 0]);
    buf.extend_from_slice(query.as_bytes());
    // No parameter types.
    buf.extend_from_slice(&[0, 0, 0]);
}

/// What `send_query_params` and `send_query_prepared` send: Parse of `sql` into `statement` (when
/// `sql` is given), Bind of the unnamed portal with `params` as text, Describe and Execute of the
/// unnamed portal. The same bytes and the same first error as [`parse`], [`bind_text_params`],
/// [`describe`] and [`execute`] one after the other, with one reservation for all four and the
/// constant tail (Bind's result-format count, Describe, Execute) copied at once. On error `buf`
/// may hold part of the messages: the caller truncates it.
#[inline]
pub(crate) fn query_params(
    sql: Option<&str>,
    statement: &str,
    params: &[Option<&str>],
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut unnamed_parse = None;
    match sql {
        Some(sql) if statement.is_empty() => unnamed_parse = Some((sql, unnamed_parse_len(sql)?)),
        Some(sql) => parse(statement, sql, &[], buf)?,
        None => {}
    }
    let n_params = count_i16(params.len(), "parameters")?;
    let var = bind_text_var(statement, params)?;
    let bind_len = message_len(var, 12)?;
    let parse_size = unnamed_parse.map_or(0, |(sql, _)| unnamed_parse_size(sql));
    buf.reserve(parse_size + var + 11 + DESCRIBE_EXECUTE.len());
    match unnamed_parse {
        Some((sql, [p0, p1, p2, p3])) => {
            // `put_unnamed_parse` and `put_bind_text` of the unnamed statement, with the end of
            // the Parse (the text's NUL, no parameter types) and the Bind's start in one copy.
            let [l0, l1, l2, l3] = bind_len;
            let [n0, n1] = n_params.to_be_bytes();
            let tail = [0, 0, 0, b'B', l0, l1, l2, l3, 0, 0, 0, 0, n0, n1];
            let text = sql.as_bytes();
            let n = text.len();
            if let (Some(first), Some(last)) = (text.first_chunk::<8>(), text.last_chunk::<8>())
                && n <= 16
            {
                // A short text (`SELECT $1`): the Parse and the Bind's start built in a
                // fixed-size block (as in `query`), copied at once and cut to their length
                // (the room reserved above covers the block).
                let mut msg = [0u8; 36];
                msg[..6].copy_from_slice(&[b'P', p0, p1, p2, p3, 0]);
                msg[6..14].copy_from_slice(first);
                msg[n - 2..n + 6].copy_from_slice(last);
                msg[n + 6..n + 20].copy_from_slice(&tail);
                let end = buf.len() + n + 20;
                buf.extend_from_slice(&msg);
                buf.truncate(end);
            } else {
                buf.extend_from_slice(&[b'P', p0, p1, p2, p3, 0]);
                put_bytes(text, buf);
                buf.extend_from_slice(&tail);
            }
            put_bind_params(params, buf);
        }
        None => put_bind_text(statement, params, n_params, bind_len, buf),
    }
    buf.extend_from_slice(&DESCRIBE_EXECUTE);
    Ok(())
}

/// The end of [`query_params`]: Bind's result-format count (none: all text), Describe of the
/// unnamed portal, Execute of it without a row limit.
const DESCRIBE_EXECUTE: [u8; 19] = [
    0, 0, b'D', 0, 0, 0, 6, b'P', 0, b'E', 0, 0, 0, 9, 0, 0, 0, 0, 0,
];

/// Describe: `D`, `S` (prepared statement) or `P` (portal), and the name.
pub fn describe(kind: u8, name: &str, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_kind(kind)?;
    if name.is_empty() {
        // The unnamed portal or statement (every query's): the whole message at once.
        buf.extend_from_slice(&[b'D', 0, 0, 0, 6, kind, 0]);
        return Ok(());
    }
    write_message(buf, Some(b'D'), |buf| {
        buf.push(kind);
        put_cstr(buf, name.as_bytes(), "describe target name")
    })
}

/// Close: `C`, `S` (prepared statement) or `P` (portal), and the name.
pub fn close(kind: u8, name: &str, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_kind(kind)?;
    write_message(buf, Some(b'C'), |buf| {
        buf.push(kind);
        put_cstr(buf, name.as_bytes(), "close target name")
    })
}

/// Execute: `E`, the portal name and the row limit ("zero denotes no limit"). `max_rows` must fit an
/// Int32.
pub fn execute(portal: &str, max_rows: u32, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let max_rows =
        i32::try_from(max_rows).map_err(|_| EncodeError::TooLong { what: "row limit" })?;
    if portal.is_empty() {
        // The unnamed portal (every query's): the whole message at once.
        let [r0, r1, r2, r3] = max_rows.to_be_bytes();
        buf.extend_from_slice(&[b'E', 0, 0, 0, 9, 0, r0, r1, r2, r3]);
        return Ok(());
    }
    write_message(buf, Some(b'E'), |buf| {
        put_cstr(buf, portal.as_bytes(), "portal name")?;
        buf.extend_from_slice(&max_rows.to_be_bytes());
        Ok(())
    })
}

/// Sync: `S`.
pub fn sync(buf: &mut Vec<u8>) {
    empty_message(b'S', buf);
}

/// Flush: `H`.
pub fn flush(buf: &mut Vec<u8>) {
    empty_message(b'H', buf);
}

/// Appends one message: the optional type byte, an Int32 length (patched once the body is written:
/// "Length of message contents in bytes, including self"), and the body `write` produces. On error,
/// `buf` is truncated back to where it was.
fn write_message(
    buf: &mut Vec<u8>,
    tag: Option<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    if let Some(tag) = tag {
        buf.push(tag);
    }
    let len_at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    let result = write(buf).and_then(|()| len_i32(buf.len() - len_at, "message"));
    match result {
        Ok(len) => {
            buf[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// A message that is only a type byte and the length 4.
fn empty_message(tag: u8, buf: &mut Vec<u8>) {
    buf.push(tag);
    buf.extend_from_slice(&4u32.to_be_bytes());
}

/// A protocol `String`: the bytes and a NUL, which therefore must not occur inside.
fn put_cstr(buf: &mut Vec<u8>, s: &[u8], what: &'static str) -> Result<(), EncodeError> {
    if s.contains(&0) {
        return Err(EncodeError::InteriorNul { what });
    }
    buf.extend_from_slice(s);
    buf.push(0);
    Ok(())
}

/// [`put_cstr`] for a query text: usually short, where [`has_nul`] is cheaper than `contains`.
#[inline]
fn put_query(buf: &mut Vec<u8>, s: &[u8], what: &'static str) -> Result<(), EncodeError> {
    if has_nul(s) {
        return Err(EncodeError::InteriorNul { what });
    }
    buf.extend_from_slice(s);
    buf.push(0);
    Ok(())
}

/// Whether `s` holds a NUL byte: eight bytes at a time for the short strings most queries and
/// names are (the general search costs more to set up than it saves on them).
#[inline]
fn has_nul(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS != 0;
    let n = s.len();
    if (8..=16).contains(&n) {
        // Two words, overlapping when shorter than 16 bytes: no loop (`SELECT 1` is 8 bytes).
        let first = u64::from_ne_bytes(s[..8].try_into().unwrap_or_default());
        let last = u64::from_ne_bytes(s[n - 8..].try_into().unwrap_or_default());
        return zero_byte(first) | zero_byte(last);
    }
    if n > 64 {
        return s.contains(&0);
    }
    let (words, rest) = s.as_chunks::<8>();
    let in_words = words.iter().any(|w| zero_byte(u64::from_ne_bytes(*w)));
    // At most 7 bytes left: a plain loop (`contains` would set up the general search).
    in_words || rest.iter().fold(false, |nul, &b| nul | (b == 0))
}

/// An Int32 length.
fn len_i32(len: usize, what: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::TooLong { what })
}

/// An Int16 count.
fn count_i16(n: usize, what: &'static str) -> Result<i16, EncodeError> {
    i16::try_from(n).map_err(|_| EncodeError::TooLong { what })
}

/// Describe and Close target `S` (prepared statement) or `P` (portal).
fn check_kind(kind: u8) -> Result<(), EncodeError> {
    match kind {
        b'S' | b'P' => Ok(()),
        _ => Err(EncodeError::InvalidValue {
            what: "describe/close kind",
        }),
    }
}

#[cfg(test)]
#[path = "frontend_tests.rs"]
mod tests;

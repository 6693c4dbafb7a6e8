//! Typed values from the text format: [`FromText`] and its implementations, each a port of
//! PostgreSQL 15's input function for its type (`pg_strtoint32`, `oidin`, `boolin`, `float8in`
//! over glibc's `strtod`, `byteain`). `protocol-tests/tests/live_types.rs` compares them with the
//! server.

use crate::error::{Error, ErrorKind};
use crate::sqlstate;

use super::Column;

/// A Rust value read from the text format of a PostgreSQL value: what [`Rows::get_as`] and
/// [`Row::get_as`] convert to.
///
/// Every implementation accepts exactly the texts PostgreSQL 15's input function for the matching
/// type accepts (`int4in`, `boolin`, `float8in`, `byteain`, ...), gives the value the server would
/// store, and otherwise fails with the server's own SQLSTATE and wording, so that
/// `rows.get_as::<i32>(0, 0)` on a text column holding `abc` fails exactly as `SELECT 'abc'::int4`
/// does on the server:
///
/// - `&str`, `String`: any text (`&str` borrows the received bytes, no copy).
/// - `bool` (`boolean`): `t`/`f` as the server sends them, and whatever `boolin` takes: `true`,
///   `yes`, `on`, `1`, `false`, `no`, `off`, `0`, their prefixes (not `o`), any case, white space
///   around.
/// - `i16`, `i32`, `i64` (`smallint`, `integer`, `bigint`): decimal digits with an optional sign,
///   white space around (no `_`, no `0x`: PostgreSQL 15).
/// - `u32` (`oid`): as `oidin`, also with a minus sign (`-1` is 4294967295).
/// - `f32`, `f64` (`real`, `double precision`): what glibc's `strtof`/`strtod` read, correctly
///   rounded: decimal, hexadecimal (`0x1.8p1`), `NaN`, `Infinity`, `inf`, in any case, with a sign;
///   a denormal result is kept, one that overflows or underflows to zero is out of range.
/// - `Vec<u8>` (`bytea`): the hex format `\x00ff`, and the escape format of
///   `bytea_output = escape` (`a\\b\001`).
///
/// A value that does not parse is an error with code `22P02` (`invalid input syntax for type
/// integer: "abc"`), `22003` when out of range (`value "99999999999" is out of range for type
/// integer`), `22023` for bad hex digits in a `bytea` (`invalid hexadecimal digit: "z"`). These
/// errors are made by the client: [`ErrorKind::Other`], severity `ERROR`, the server's code and
/// message. Numbers are parsed without allocating. The column's type is not checked: an `i32`
/// read from a `text` column holding ` 12` is 12, as `' 12'::int4` is. SQL NULL never reaches
/// `from_text`: `get_as` returns `Ok(None)` for it.
///
/// The lifetime lets a type borrow the received bytes (`&'a str`). Implement it for your own types
/// to read them with `get_as` too; `column` says which column the text came from (its name and
/// type OID), for implementations that depend on the type.
///
/// ```
/// use pgdblink::{Column, Error, FromText};
///
/// struct Point(i32, i32);
///
/// impl FromText<'_> for Point {
///     fn from_text(text: &str, column: &Column) -> Result<Point, Error> {
///         let (x, y) = text.trim_matches(&['(', ')'][..]).split_once(',').unwrap_or((text, ""));
///         Ok(Point(i32::from_text(x, column)?, i32::from_text(y, column)?))
///     }
/// }
///
/// let column = Column::new("p", 600);
/// let p = Point::from_text("(3,4)", &column).unwrap();
/// assert_eq!((p.0, p.1), (3, 4));
/// let e = Point::from_text("(3,x)", &column).err().unwrap();
/// assert_eq!(e.code(), Some("22P02"));
/// assert_eq!(e.message(), "invalid input syntax for type integer: \"x\"");
/// ```
///
/// [`Rows::get_as`]: super::Rows::get_as
/// [`Row::get_as`]: super::Row::get_as
pub trait FromText<'a>: Sized {
    /// Converts `text`, the value of a field of `column`, or fails with the error the server gives
    /// for that text and type.
    fn from_text(text: &'a str, column: &Column) -> Result<Self, Error>;
}

impl<'a> FromText<'a> for &'a str {
    fn from_text(text: &'a str, _column: &Column) -> Result<&'a str, Error> {
        Ok(text)
    }
}

impl FromText<'_> for String {
    fn from_text(text: &str, _column: &Column) -> Result<String, Error> {
        Ok(text.to_owned())
    }
}

impl FromText<'_> for bool {
    /// As `boolin`: white space around is ignored; `t`, `true`, `y`, `yes`, `on`, `1` and the
    /// prefixes of those words are true, `f`, `false`, `n`, `no`, `off`, `0` and theirs false
    /// (`o` alone is neither), in any case.
    fn from_text(text: &str, _column: &Column) -> Result<bool, Error> {
        parse_bool(text).ok_or_else(|| invalid_syntax("boolean", text))
    }
}

impl FromText<'_> for i16 {
    /// As `int2in` (`pg_strtoint16`).
    fn from_text(text: &str, _column: &Column) -> Result<i16, Error> {
        parse_int(text, i64::from(i16::MIN), "smallint").map(|v| v as i16)
    }
}

impl FromText<'_> for i32 {
    /// As `int4in` (`pg_strtoint32`).
    fn from_text(text: &str, _column: &Column) -> Result<i32, Error> {
        parse_int(text, i64::from(i32::MIN), "integer").map(|v| v as i32)
    }
}

impl FromText<'_> for i64 {
    /// As `int8in` (`pg_strtoint64`).
    fn from_text(text: &str, _column: &Column) -> Result<i64, Error> {
        parse_int(text, i64::MIN, "bigint")
    }
}

impl FromText<'_> for u32 {
    /// As `oidin`: `strtoul`, then a check that the value fits an OID either way a `long` extends
    /// it (`-1` is 4294967295, `-2147483649` is out of range).
    fn from_text(text: &str, _column: &Column) -> Result<u32, Error> {
        parse_oid(text)
    }
}

impl FromText<'_> for f32 {
    /// As `float4in` (glibc's `strtof`, correctly rounded to `f32`).
    fn from_text(text: &str, _column: &Column) -> Result<f32, Error> {
        parse_float(text, &F32).map(|v| v as f32)
    }
}

impl FromText<'_> for f64 {
    /// As `float8in` (glibc's `strtod`).
    fn from_text(text: &str, _column: &Column) -> Result<f64, Error> {
        parse_float(text, &F64)
    }
}

impl FromText<'_> for Vec<u8> {
    /// As `byteain`: the hex format when the text starts with `\x`, else the escape format.
    fn from_text(text: &str, _column: &Column) -> Result<Vec<u8>, Error> {
        parse_bytea(text)
    }
}

/// The errors a type's input function raises, made on the client.
fn client_error(code: &str, message: String) -> Error {
    Error::new(ErrorKind::Other, message)
        .with_severity("ERROR")
        .with_code(code)
}

/// `22P02 invalid input syntax for type integer: "abc"`.
fn invalid_syntax(type_name: &str, text: &str) -> Error {
    client_error(
        sqlstate::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {type_name}: \"{text}\""),
    )
}

/// `22003 value "99999999999" is out of range for type integer`.
fn value_out_of_range(type_name: &str, text: &str) -> Error {
    client_error(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("value \"{text}\" is out of range for type {type_name}"),
    )
}

/// libpq's text for a row index past the end (`PQgetvalue`'s check): `row number 7 is out of
/// range 0..2`. No SQLSTATE.
pub(super) fn row_out_of_range(row: usize, rows: usize) -> Error {
    Error::new(
        ErrorKind::Usage,
        format!("row number {row} is out of range 0..{}", rows as i128 - 1),
    )
}

/// libpq's text for a column index past the end: `column number 5 is out of range 0..1`.
pub(super) fn column_out_of_range(col: usize, cols: usize) -> Error {
    Error::new(
        ErrorKind::Usage,
        format!(
            "column number {col} is out of range 0..{}",
            cols as i128 - 1
        ),
    )
}

/// C's `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The index of the first byte at or after `i` that is not white space.
fn skip_space(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(|&b| is_space(b)) {
        i += 1;
    }
    i
}

/// Leading white space and an optional sign: whether the sign is `-`, and the index after them.
fn space_and_sign(s: &[u8]) -> (bool, usize) {
    let i = skip_space(s, 0);
    match s.get(i) {
        Some(b'-') => (true, i + 1),
        Some(b'+') => (false, i + 1),
        _ => (false, i),
    }
}

/// `boolin` / `parse_bool_with_len`.
fn parse_bool(text: &str) -> Option<bool> {
    let s = text.as_bytes();
    let start = skip_space(s, 0);
    let mut end = s.len();
    while end > start && is_space(s[end - 1]) {
        end -= 1;
    }
    let v = &s[start..end];
    // `pg_strncasecmp(value, word, len) == 0`: `v` is a case-insensitive prefix of `word`.
    let prefix_of =
        |word: &str| v.len() <= word.len() && v.eq_ignore_ascii_case(&word.as_bytes()[..v.len()]);
    match v.first()? {
        b't' | b'T' if prefix_of("true") => Some(true),
        b'f' | b'F' if prefix_of("false") => Some(false),
        b'y' | b'Y' if prefix_of("yes") => Some(true),
        b'n' | b'N' if prefix_of("no") => Some(false),
        // "o" alone is not unique enough.
        b'o' | b'O' if v.len() >= 2 && prefix_of("on") => Some(true),
        b'o' | b'O' if v.len() >= 2 && prefix_of("off") => Some(false),
        b'1' if v.len() == 1 => Some(true),
        b'0' if v.len() == 1 => Some(false),
        _ => None,
    }
}

/// `pg_strtoint16/32/64` of PostgreSQL 15 for the type whose smallest value is `min`: white space,
/// an optional sign, at least one decimal digit, white space. The value is accumulated negatively,
/// so an overflow is reported as soon as the digits exceed the range, even if junk follows.
fn parse_int(text: &str, min: i64, type_name: &str) -> Result<i64, Error> {
    let s = text.as_bytes();
    let (neg, mut i) = space_and_sign(s);
    if !s.get(i).is_some_and(u8::is_ascii_digit) {
        return Err(invalid_syntax(type_name, text));
    }
    let mut acc: i64 = 0;
    while let Some(&b) = s.get(i).filter(|b| b.is_ascii_digit()) {
        acc = match acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub(i64::from(b - b'0')))
        {
            Some(a) if a >= min => a,
            _ => return Err(value_out_of_range(type_name, text)),
        };
        i += 1;
    }
    if skip_space(s, i) != s.len() {
        return Err(invalid_syntax(type_name, text));
    }
    match neg {
        true => Ok(acc),
        // The smallest value has no positive counterpart.
        false if acc == min => Err(value_out_of_range(type_name, text)),
        false => Ok(-acc),
    }
}

/// `oidin`: `strtoul(text, 10)` (white space, a sign, digits; a negative value wraps), an error
/// for a value beyond `unsigned long`, then trailing white space only, then the check that the
/// `unsigned long` is the OID extended either as unsigned or as signed.
fn parse_oid(text: &str) -> Result<u32, Error> {
    let s = text.as_bytes();
    let (neg, mut i) = space_and_sign(s);
    if !s.get(i).is_some_and(u8::is_ascii_digit) {
        // strtoul converted nothing (also the empty string).
        return Err(invalid_syntax("oid", text));
    }
    let mut magnitude: Option<u64> = Some(0);
    while let Some(&b) = s.get(i).filter(|b| b.is_ascii_digit()) {
        magnitude = magnitude
            .and_then(|m| m.checked_mul(10))
            .and_then(|m| m.checked_add(u64::from(b - b'0')));
        i += 1;
    }
    // ERANGE is reported before the trailing characters are looked at.
    let Some(magnitude) = magnitude else {
        return Err(value_out_of_range("oid", text));
    };
    if skip_space(s, i) != s.len() {
        return Err(invalid_syntax("oid", text));
    }
    let cvt = if neg {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    let oid = cvt as u32;
    if cvt != u64::from(oid) && cvt != i64::from(oid as i32) as u64 {
        return Err(value_out_of_range("oid", text));
    }
    Ok(oid)
}

/// A binary floating-point format, for rounding hexadecimal input.
struct FloatFormat {
    /// `real` or `double precision`.
    type_name: &'static str,
    /// Significand bits, with the implicit one.
    precision: u32,
    /// The exponents of the smallest and largest normal numbers.
    min_exp: i64,
    max_exp: i64,
    /// Parses a decimal number (correctly rounded to this format), widened to `f64` exactly.
    parse_decimal: fn(&str) -> Option<f64>,
    /// The largest finite value.
    max_value: f64,
    /// Whether `strtof`'s out-of-range message quotes the whole input (`float4in`) rather than the
    /// number alone (`float8in`).
    quotes_whole_input: bool,
}

const F32: FloatFormat = FloatFormat {
    type_name: "real",
    precision: 24,
    min_exp: -126,
    max_exp: 127,
    max_value: f32::MAX as f64,
    parse_decimal: |s| s.parse::<f32>().ok().map(f64::from),
    quotes_whole_input: true,
};

const F64: FloatFormat = FloatFormat {
    type_name: "double precision",
    precision: 53,
    min_exp: -1022,
    max_exp: 1023,
    max_value: f64::MAX,
    parse_decimal: |s| s.parse::<f64>().ok(),
    quotes_whole_input: false,
};

/// `float4in` / `float8in`: white space, what glibc's `strtod` reads, white space. Out of range
/// (`22003`) when the number overflows, or underflows to zero (a denormal result is kept).
fn parse_float(text: &str, format: &FloatFormat) -> Result<f64, Error> {
    let s = text.as_bytes();
    let start = skip_space(s, 0);
    let invalid = || invalid_syntax(format.type_name, text);
    let (value, end, out_of_range) = strtod(&s[start..], format).ok_or_else(invalid)?;
    if out_of_range {
        let quoted = if format.quotes_whole_input {
            text
        } else {
            &text[start..start + end]
        };
        return Err(client_error(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{quoted}\" is out of range for type {}", format.type_name),
        ));
    }
    if skip_space(s, start + end) != s.len() {
        return Err(invalid());
    }
    Ok(value)
}

/// What glibc's `strtod` reads at the start of `s` (white space already skipped): the value
/// (rounded to `format`), the bytes read, and whether it is out of range: `ERANGE` with a zero or
/// infinite result (overflow, or a nonzero number that rounds to zero; a denormal result is kept);
/// `None` when it reads nothing.
fn strtod(s: &[u8], format: &FloatFormat) -> Option<(f64, usize, bool)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let sign_len = usize::from(matches!(at(0), b'+' | b'-'));
    let negative = at(0) == b'-';
    let body = &s[sign_len..];
    let starts_ci = |word: &str| {
        body.len() >= word.len() && body[..word.len()].eq_ignore_ascii_case(word.as_bytes())
    };
    let signed = |v: f64| if negative { -v } else { v };
    if starts_ci("inf") {
        let len = if starts_ci("infinity") { 8 } else { 3 };
        return Some((signed(f64::INFINITY), sign_len + len, false));
    }
    if starts_ci("nan") {
        // An optional `(n-char-sequence)`, read only when closed.
        let mut len = 3;
        if body.get(3) == Some(&b'(') {
            let chars = body[4..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            if body.get(4 + chars) == Some(&b')') {
                len = 5 + chars;
            }
        }
        return Some((f64::NAN, sign_len + len, false));
    }
    if (body.starts_with(b"0x") || body.starts_with(b"0X"))
        && let Some((value, len, out_of_range)) = hex_float(&body[2..], format)
    {
        return Some((signed(value), sign_len + 2 + len, out_of_range));
    }
    // Decimal: digits with at most one point, at least one digit, then an exponent if it has
    // digits.
    let digits = |from: usize| {
        body[from.min(body.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let int_digits = digits(0);
    let mut len = int_digits;
    let mut frac_digits = 0;
    if body.get(len) == Some(&b'.') {
        frac_digits = digits(len + 1);
        len += 1 + frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    let nonzero = body[..len].iter().any(|b| matches!(b, b'1'..=b'9'));
    if matches!(body.get(len), Some(b'e' | b'E')) {
        let exp_sign = usize::from(matches!(body.get(len + 1), Some(b'+' | b'-')));
        let exp_digits = digits(len + 1 + exp_sign);
        if exp_digits > 0 {
            len += 1 + exp_sign + exp_digits;
        }
    }
    // The bytes are ASCII digits, signs, a point and an `e`: valid UTF-8, and Rust's grammar.
    let number = std::str::from_utf8(&s[..sign_len + len]).ok()?;
    let value = (format.parse_decimal)(number)?;
    let out_of_range = value.is_infinite() || (nonzero && value == 0.0);
    Some((value, sign_len + len, out_of_range))
}

/// 2^`e` for `e` in the range of normal `f64` exponents.
fn pow2(e: i64) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// A hexadecimal floating-point number after its `0x` (glibc's `strtod`): hex digits with at most
/// one point, at least one digit, then `p` and a decimal binary exponent if it has digits. `None`
/// when there is no digit (strtod then reads the `0` alone).
fn hex_float(s: &[u8], format: &FloatFormat) -> Option<(f64, usize, bool)> {
    let mut i = 0;
    let mut mantissa: u64 = 0;
    // Hex digits in `mantissa` (after leading zeros), and nonzero bits beyond them.
    let mut kept = 0;
    let mut sticky = false;
    let mut exp2: i64 = 0;
    let mut any_digit = false;
    let mut seen_point = false;
    loop {
        match s.get(i) {
            Some(b'.') if !seen_point => seen_point = true,
            Some(&b) if b.is_ascii_hexdigit() => {
                any_digit = true;
                let digit = u64::from(hex_value(b));
                if kept < 16 && (kept > 0 || digit != 0) {
                    mantissa = mantissa << 4 | digit;
                    kept += 1;
                    if seen_point {
                        exp2 -= 4;
                    }
                } else if kept == 16 {
                    sticky |= digit != 0;
                    if !seen_point {
                        exp2 += 4;
                    }
                } else if seen_point {
                    // A leading zero after the point.
                    exp2 -= 4;
                }
            }
            _ => break,
        }
        i += 1;
    }
    if !any_digit {
        return None;
    }
    if matches!(s.get(i), Some(b'p' | b'P')) {
        let sign = s.get(i + 1).copied();
        let skip = usize::from(matches!(sign, Some(b'+' | b'-')));
        let digits = s[(i + 1 + skip).min(s.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            let mut exp: i64 = 0;
            for &b in &s[i + 1 + skip..i + 1 + skip + digits] {
                // Far beyond any format's range: saturate.
                exp = (exp * 10 + i64::from(b - b'0')).min(1 << 40);
            }
            exp2 += if sign == Some(b'-') { -exp } else { exp };
            i += 1 + skip + digits;
        }
    }
    if mantissa == 0 {
        return Some((0.0, i, false));
    }
    match round_binary(mantissa, sticky, exp2, format) {
        Some(value) => Some((value, i, false)),
        None => Some((0.0, i, true)),
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// `mantissa` × 2^`exp2` (with `sticky`: plus something smaller than its last bit) rounded to
/// nearest, ties to even, in `format`; `None` when that overflows or underflows to zero (the cases
/// where glibc sets `ERANGE` and PostgreSQL reports the number out of range).
fn round_binary(mantissa: u64, sticky: bool, exp2: i64, format: &FloatFormat) -> Option<f64> {
    let shift = mantissa.leading_zeros();
    let mantissa = mantissa << shift;
    // The exponent of the leading bit.
    let top = exp2 - i64::from(shift) + 63;
    let precision = i64::from(format.precision);
    // Bits kept: fewer for a denormal.
    let keep = precision - (format.min_exp - top).max(0);
    if top > format.max_exp || keep < 0 {
        return None;
    }
    let drop = 64 - keep as u32;
    let (mut kept, rest, half) = if drop == 64 {
        (0, mantissa, 1u64 << 63)
    } else {
        (
            mantissa >> drop,
            mantissa & ((1u64 << drop) - 1),
            1u64 << (drop - 1),
        )
    };
    if rest > half || (rest == half && (sticky || kept & 1 == 1)) {
        kept += 1;
    }
    if kept == 0 {
        return None;
    }
    // The value is `kept` × 2^`unit`: at most 53 bits times a power of two the format holds
    // (a carry out of the kept bits makes it a power of two), so the products are exact.
    let unit = top - keep + 1;
    let value = kept as f64 * pow2(unit / 2) * pow2(unit - unit / 2);
    (value.abs() <= format.max_value).then_some(value)
}

/// `byteain`: the hex format after `\x`, else the escape format.
fn parse_bytea(text: &str) -> Result<Vec<u8>, Error> {
    match text.strip_prefix("\\x") {
        Some(hex) => hex_decode(hex),
        None => escape_decode(text),
    }
}

/// `hex_decode`: pairs of hex digits; white space (space, tab, newline, carriage return) is
/// skipped only before a pair.
fn hex_decode(hex: &str) -> Result<Vec<u8>, Error> {
    let s = hex.as_bytes();
    let mut out = Vec::with_capacity(s.len() / 2);
    let mut i = 0;
    let digit = |i: usize| match s[i] {
        b if b.is_ascii_hexdigit() => Ok(hex_value(b)),
        _ => {
            // The whole character, as `pg_mblen` measures it; `i` follows ASCII bytes only.
            let shown = hex.get(i..).and_then(|r| r.chars().next()).unwrap_or('?');
            Err(client_error(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid hexadecimal digit: \"{shown}\""),
            ))
        }
    };
    while i < s.len() {
        if matches!(s[i], b' ' | b'\n' | b'\t' | b'\r') {
            i += 1;
            continue;
        }
        let high = digit(i)?;
        if i + 1 >= s.len() {
            return Err(client_error(
                sqlstate::INVALID_PARAMETER_VALUE,
                "invalid hexadecimal data: odd number of digits".into(),
            ));
        }
        let low = digit(i + 1)?;
        out.push(high << 4 | low);
        i += 2;
    }
    Ok(out)
}

/// The escape format: `\\` is a backslash, `\ooo` (first digit 0-3) an octal byte, every other
/// byte itself; any other backslash is `22P02 invalid input syntax for type bytea`.
fn escape_decode(text: &str) -> Result<Vec<u8>, Error> {
    let s = text.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let octal = |i: usize, max: u8| s.get(i).is_some_and(|&b| (b'0'..=max).contains(&b));
    while i < s.len() {
        if s[i] != b'\\' {
            out.push(s[i]);
            i += 1;
        } else if octal(i + 1, b'3') && octal(i + 2, b'7') && octal(i + 3, b'7') {
            out.push((s[i + 1] - b'0') << 6 | (s[i + 2] - b'0') << 3 | (s[i + 3] - b'0'));
            i += 4;
        } else if s.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            return Err(client_error(
                sqlstate::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type bytea".into(),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

//! Building a [`Rows`] from the DataRows of a row set as they are decoded.

use std::fmt;
use std::sync::Arc;

use super::{Chunk, Chunks, Column, Fields, Mirror, Rows, Tag, field_bytes};
use crate::error::{Error, ErrorKind};
use crate::protocol::Limits;
use crate::protocol::backend::{DataRow, NULL_FIELD, data_row_offsets, data_row_value_bytes};

/// Builds one [`Rows`] from the DataRows of a row set as they are decoded, and owns its invariants:
/// one field offset per column per row, relative to the receive buffer of the current input pass
/// until [`attach`](RowsBuilder::attach) gives the pending rows that buffer, the value-byte count,
/// the command tag, and the batches of chunked-rows mode.
pub(in crate::conn) struct RowsBuilder {
    rows: Rows,
}

impl RowsBuilder {
    /// An empty row set with these columns (inlined, as [`Rows::new`]'s usual case is).
    #[inline(always)]
    pub(in crate::conn) fn new(columns: Arc<[Column]>) -> RowsBuilder {
        RowsBuilder {
            rows: Rows::new(columns),
        }
    }

    /// The rows so far.
    pub(in crate::conn) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether rows refer to the receive buffer of the current input pass (not attached yet).
    pub(in crate::conn) fn has_pending(&self) -> bool {
        self.rows.d.pending > 0
    }

    /// Whether the offsets are on the heap (what [`push_run`](Self::push_run) takes rows with).
    #[inline]
    pub(in crate::conn) fn is_heap(&self) -> bool {
        matches!(self.rows.d.fields, Fields::Heap(_))
    }

    /// How many rows refer to the receive buffer of the current input pass.
    pub(in crate::conn) fn pending(&self) -> usize {
        self.rows.d.pending as usize
    }

    /// The hot path: if `buf` starts with a complete, valid DataRow of this row set's width, adds
    /// it (its offsets relative to the pass's buffer, where `buf` starts at `base`) and returns the
    /// bytes it occupies; otherwise `None` and nothing changes.
    #[inline(always)]
    pub(in crate::conn) fn push_fast(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        base: usize,
    ) -> Option<usize> {
        let ncols = self.rows.d.ncols();
        let len = data_row_offsets(buf, limits, ncols, base, &mut self.rows.d.fields)?;
        self.row_pushed(data_row_value_bytes(len, ncols));
        Some(len)
    }

    /// The hot loop: adds the DataRows of `pass` from `at` on (offsets relative to `pass`) while
    /// each is complete, valid, of this width, and keeps `*bytes` (increased by each row's size)
    /// within `limit`; returns where the rows taken end. Takes none while the offsets are inline
    /// (a small row set's first rows: [`push_fast`](Self::push_fast) takes those), nor the row
    /// that would go beyond `limit`: the caller takes it one by one.
    #[inline(always)]
    pub(in crate::conn) fn push_run(
        &mut self,
        pass: &[u8],
        at: usize,
        limits: &Limits,
        bytes: &mut usize,
        limit: usize,
        mirror: &mut Mirror,
    ) -> usize {
        match self.rows.d.fields {
            Fields::Heap(_) => self.push_run_heap(pass, at, limits, bytes, limit, mirror),
            Fields::Inline(..) => at,
        }
    }

    /// [`push_run`](Self::push_run) with the offsets on the heap: out of line, a loop of its own.
    #[inline(never)]
    fn push_run_heap(
        &mut self,
        pass: &[u8],
        at: usize,
        limits: &Limits,
        bytes: &mut usize,
        limit: usize,
        mirror: &mut Mirror,
    ) -> usize {
        let d = &mut *self.rows.d;
        let ncols = d.ncols();
        let Fields::Heap(fields) = &mut d.fields else {
            return at;
        };
        let start = at;
        // The bytes the row set may still take.
        let room = limit.saturating_sub(*bytes);
        let (at, taken, value_bytes) = match ncols {
            1 => run_fixed::<1>(fields, pass, at, limits, room, mirror),
            2 => run_fixed::<2>(fields, pass, at, limits, room, mirror),
            3 => run_fixed::<3>(fields, pass, at, limits, room, mirror),
            4 => run_fixed::<4>(fields, pass, at, limits, room, mirror),
            _ => run_any(fields, ncols, pass, at, limits, room, mirror),
        };
        *bytes += at - start;
        d.value_bytes += value_bytes as u64;
        d.nrows += taken;
        d.pending += taken;
        at
    }

    /// Adds a decoded DataRow whose field area starts at `body_offset` in the pass's buffer. Errors
    /// (a protocol violation) when its field count is not the row set's, or it lies beyond what an
    /// offset can address.
    pub(in crate::conn) fn push_decoded(
        &mut self,
        row: &DataRow<'_>,
        body_offset: usize,
    ) -> Result<(), String> {
        let ncols = self.rows.d.ncols();
        if row.len() != ncols {
            let n = row.len();
            return Err(format!(
                "unexpected field count in \"D\" message: {n} fields, {ncols} columns"
            ));
        }
        if body_offset + row.body().len() >= NULL_FIELD as usize {
            return Err("row too large".into());
        }
        self.rows
            .d
            .fields
            .extend(row.ranges().map(|range| match range {
                Some(r) => (body_offset + r.start) as u32,
                None => NULL_FIELD,
            }));
        self.row_pushed(row.value_bytes());
        Ok(())
    }

    fn row_pushed(&mut self, value_bytes: usize) {
        self.rows.d.value_bytes += value_bytes as u64;
        self.rows.d.nrows += 1;
        self.rows.d.pending += 1;
    }

    /// Checks that every value of the row added last is UTF-8; `pass` is the receive buffer of the
    /// current input pass, which its offsets refer to. The error is the one PostgreSQL raises for
    /// such bytes: 22021, `invalid byte sequence for encoding "UTF8": 0xe9 0x20`.
    pub(in crate::conn) fn check_last_row_utf8(&self, pass: &[u8]) -> Result<(), Error> {
        let ncols = self.rows.d.ncols();
        let fields = self.rows.d.fields.as_slice();
        for &field in &fields[fields.len() - ncols..] {
            if let Some(value) = field_bytes(pass, field)
                && let Err(e) = std::str::from_utf8(value)
            {
                return Err(invalid_utf8(&value[e.valid_up_to()..]));
            }
        }
        Ok(())
    }

    /// Copies the values of a small row set received whole in the current input pass (`pass`)
    /// into the row set itself ([`Chunk::Inline`]), so that it needs nothing of the pass's
    /// buffer: nothing to freeze and share for it, nothing to release when it is dropped. Does
    /// nothing when they do not fit (or the rows span passes, or have many columns).
    #[inline(always)]
    pub(in crate::conn) fn inline_values(&mut self, pass: &[u8]) {
        let d = &mut *self.rows.d;
        let Fields::Inline(n, offsets) = &mut d.fields else {
            return;
        };
        let Some(used) = offsets.get_mut(..*n as usize) else {
            return;
        };
        // The bytes from the first value's length word to the end of the last value, as
        // received (NULLs, and the headers of the rows between, included: never read).
        let (first, last) = match used {
            // The usual small result: one value, without the two searches.
            &mut [only] if only != NULL_FIELD => (only, only),
            _ => {
                let (Some(&first), Some(&last)) = (
                    used.iter().find(|&&o| o != NULL_FIELD),
                    used.iter().rfind(|&&o| o != NULL_FIELD),
                ) else {
                    return;
                };
                (first, last)
            }
        };
        // Written in place: rows that all came in this pass have no chunk yet.
        let (Chunks::One(Chunk::Inline(len @ 0, bytes)), true) =
            (&mut d.chunks, d.pending == d.nrows)
        else {
            return;
        };
        let start = (first as usize).wrapping_sub(4);
        let Some(&word) = pass
            .get((last as usize).wrapping_sub(4)..)
            .and_then(<[u8]>::first_chunk::<4>)
        else {
            return;
        };
        let end = last as usize + u32::from_be_bytes(word) as usize;
        let span = end.wrapping_sub(start);
        // A copy of a fixed size is a few moves, not a call: the CommandComplete after the rows
        // leaves room for it after a short span.
        const WINDOW: usize = 16;
        match pass.get(start..).and_then(<[u8]>::first_chunk::<WINDOW>) {
            Some(window) if span <= WINDOW => bytes[..WINDOW].copy_from_slice(window),
            // Out of line: merged with the copy above, it made that one a call too.
            _ => {
                if !copy_span(pass.get(start..end), bytes.get_mut(..span)) {
                    return;
                }
            }
        }
        match used {
            // The lone value starts after its length word, at the start of the copy.
            [only] => *only = 4,
            _ => {
                for offset in used {
                    if *offset != NULL_FIELD {
                        *offset -= start as u32;
                    }
                }
            }
        }
        *len = span as u8;
        d.pending = 0;
    }

    /// Gives the rows received in the current input pass their receive buffer, now frozen.
    pub(in crate::conn) fn attach(&mut self, chunk: &Chunk) {
        self.rows.attach(chunk);
    }

    /// Chunked-rows mode: the rows so far as a partial result; the builder goes on with none.
    pub(in crate::conn) fn take_batch(&mut self) -> Rows {
        let columns = self.rows.d.cols.clone().unwrap_or_else(|| Arc::from([]));
        let mut batch = std::mem::replace(&mut self.rows, Rows::new(columns));
        batch.d.tag = Tag::Partial;
        batch
    }

    /// The finished row set, with its command tag: the first `len` bytes of `bytes`, which are
    /// ASCII (the bytes after them, as received, spare a copy of a variable size).
    #[inline(always)]
    pub(in crate::conn) fn finish_ascii(self, bytes: &[u8], len: usize) -> Rows {
        let mut rows = self.rows;
        rows.d.tag.set_ascii(bytes, len);
        rows
    }

    /// The finished row set, with its command tag.
    pub(in crate::conn) fn finish(self, tag: &[u8]) -> Rows {
        let mut rows = self.rows;
        // Tags are short ASCII (`SELECT 3`): copied as they are, without `from_utf8`'s set-up.
        rows.d.tag = match Tag::ascii(tag) {
            Some(tag) => tag,
            None => Tag::new(&String::from_utf8_lossy(tag)),
        };
        rows
    }
}

/// Copies `from` into `to` when both are there (of the same length): whether it did.
#[inline(never)]
fn copy_span(from: Option<&[u8]>, to: Option<&mut [u8]>) -> bool {
    match (from, to) {
        (Some(from), Some(to)) => {
            to.copy_from_slice(from);
            true
        }
        _ => false,
    }
}

/// The loop of [`RowsBuilder::push_run`] for any width: adds the rows from `at` on while each is
/// complete, valid, of `ncols` fields and within `room` bytes; returns where they end, how many
/// and their value bytes.
#[inline(always)]
fn run_any(
    fields: &mut Vec<u32>,
    ncols: usize,
    pass: &[u8],
    mut at: usize,
    limits: &Limits,
    mut room: usize,
    mirror: &mut Mirror,
) -> (usize, u32, usize) {
    let (mut taken, mut value_bytes) = (0u32, 0usize);
    while let Some(&[b'D', l0, l1, l2, l3]) = pass.get(at..).and_then(<[u8]>::first_chunk) {
        let next = (u32::from_be_bytes([l0, l1, l2, l3]) as usize).saturating_add(1);
        if next > room {
            break;
        }
        let Some(len) = pass
            .get(at..)
            .and_then(|buf| data_row_offsets(buf, limits, ncols, at, fields))
        else {
            break;
        };
        let row_values = data_row_value_bytes(len, ncols);
        mirror.row(
            at,
            len,
            row_values,
            fields.get(fields.len() - ncols..).unwrap_or_default(),
        );
        at += len;
        room -= len;
        taken += 1;
        value_bytes += row_values;
    }
    (at, taken, value_bytes)
}

/// [`run_any`] for rows of `N` fields: each row's offsets are gathered in an array and added
/// at once (one capacity check a row, not one a field), the fields' loop unrolled, and the rows
/// the mirror takes by its usual case made ASCII in its copy here, without a call a row.
#[inline(always)]
fn run_fixed<const N: usize>(
    fields: &mut Vec<u32>,
    pass: &[u8],
    mut at: usize,
    limits: &Limits,
    room: usize,
    mirror: &mut Mirror,
) -> (usize, u32, usize) {
    // The rows taken end within `room` and below `NULL_FIELD`: no row goes beyond this end.
    let end = pass
        .len()
        .min(at.saturating_add(room))
        .min(NULL_FIELD as usize - 1);
    let pass = pass.get(..end).unwrap_or_default();
    let (mut taken, mut value_bytes) = (0u32, 0usize);
    if !mirror.is_on() {
        // No copy to keep: the rows alone.
        while let Some((len, offsets)) = pass
            .get(at..)
            .and_then(|buf| fixed_row::<N>(buf, limits, at))
        {
            fields.extend_from_slice(&offsets);
            at += len;
            taken += 1;
            value_bytes += row_value_bytes::<N>(len);
        }
        return (at, taken, value_bytes);
    }
    loop {
        let on = mirror.is_on();
        let (from, mut copy) = (taken, mirror.copy_at(at));
        // A row the mirror does not take by its usual case (or while its copy is behind).
        let mut other = None;
        while let Some((len, offsets)) = pass
            .get(at..)
            .and_then(|buf| fixed_row::<N>(buf, limits, at))
        {
            fields.extend_from_slice(&offsets);
            let row_values = row_value_bytes::<N>(len);
            let mirrored = match copy.as_deref_mut() {
                None => !on,
                Some(copy) => {
                    Mirror::usual(row_values, &offsets)
                        && copy
                            .get_mut(at.wrapping_add(1)..)
                            .and_then(<[u8]>::first_chunk_mut::<4>)
                            .map(|word| *word = [b' '; 4])
                            .is_some()
                }
            };
            if !mirrored {
                other = Some((len, row_values, offsets));
                break;
            }
            at += len;
            taken += 1;
            value_bytes += row_values;
        }
        if copy.is_some() {
            mirror.took(at, (taken - from) as usize);
        }
        let Some((len, row_values, offsets)) = other else {
            break;
        };
        mirror.row(at, len, row_values, &offsets);
        at += len;
        taken += 1;
        value_bytes += row_values;
    }
    (at, taken, value_bytes)
}

/// [`data_row_value_bytes`] of a row [`fixed_row`] took, which is never shorter than its header
/// and length words.
#[inline(always)]
fn row_value_bytes<const N: usize>(len: usize) -> usize {
    len.wrapping_sub(7 + 4 * N)
}

/// [`data_row_offsets`] for `N` fields, with the offsets returned rather than appended: the bytes
/// the row occupies and its field offsets (relative to the pass, where `buf` starts at `base`;
/// [`NULL_FIELD`] for NULL). `base + buf.len()` must be below [`NULL_FIELD`] (the caller bounds
/// `buf` so), which `data_row_offsets` checks itself.
#[inline(always)]
fn fixed_row<const N: usize>(
    buf: &[u8],
    limits: &Limits,
    base: usize,
) -> Option<(usize, [u32; N])> {
    let (&[b'D', l0, l1, l2, l3], _) = buf.split_first_chunk::<5>()? else {
        return None;
    };
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    // Below 6 the body below has no field count.
    if len > limits.max_data_message {
        return None;
    }
    let total = len as usize + 1;
    let body = buf.get(5..total)?;
    let (count, mut rest) = body.split_first_chunk::<2>()?;
    if u16::from_be_bytes(*count) as usize != N {
        return None;
    }
    let mut offsets = [NULL_FIELD; N];
    for slot in &mut offsets {
        let (field_len, tail) = rest.split_first_chunk::<4>()?;
        let field_len = i32::from_be_bytes(*field_len);
        if field_len == -1 {
            rest = tail;
        } else {
            // `tail` ends where the message ends.
            *slot = (base + (total - tail.len())) as u32;
            rest = tail.get(usize::try_from(field_len).ok()?..)?;
        }
    }
    rest.is_empty().then_some((total, offsets))
}

impl fmt::Debug for RowsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RowsBuilder({} rows)", self.len())
    }
}

/// PostgreSQL's error for bytes that are not UTF-8 (`report_invalid_encoding`): the bytes of the
/// offending character as the encoding's length rule counts it, at most 8.
pub(super) fn invalid_utf8(bad: &[u8]) -> Error {
    let first = bad.first().copied().unwrap_or(0);
    let char_len = match first {
        b if b & 0xe0 == 0xc0 => 2,
        b if b & 0xf0 == 0xe0 => 3,
        b if b & 0xf8 == 0xf0 => 4,
        _ => 1,
    };
    let shown: Vec<String> = bad
        .iter()
        .take(char_len.min(8))
        .map(|b| format!("0x{b:02x}"))
        .collect();
    Error::new(
        ErrorKind::Server,
        format!(
            "invalid byte sequence for encoding \"UTF8\": {}",
            shown.join(" ")
        ),
    )
    .with_severity("ERROR")
    .with_code(crate::sqlstate::CHARACTER_NOT_IN_REPERTOIRE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::tests::data_row;

    /// `fixed_row::<N>` agrees with `data_row_offsets` for `N` fields (and takes nothing beyond
    /// `room`).
    fn agrees<const N: usize>(buf: &[u8], base: usize) {
        let limits = Limits::default();
        let mut out = Vec::new();
        let general = data_row_offsets(buf, &limits, N, base, &mut out);
        // As `run_fixed` bounds it.
        let end = buf
            .len()
            .min((NULL_FIELD as usize - 1).saturating_sub(base));
        let fixed = fixed_row::<N>(&buf[..end], &limits, base);
        assert_eq!(fixed.map(|(len, _)| len), general, "{buf:?}");
        if let Some((len, offsets)) = fixed {
            assert_eq!(&offsets[..], &out[..], "{buf:?}");
            assert_eq!(row_value_bytes::<N>(len), data_row_value_bytes(len, N));
            assert_eq!(fixed_row::<N>(&buf[..len - 1], &limits, base), None);
        }
    }

    #[test]
    fn fixed_width_rows_agree_with_the_general_fast_path() {
        let rows = [
            data_row(&[Some(b"12")]),
            data_row(&[None]),
            data_row(&[Some(b"1"), Some(b"row 1")]),
            data_row(&[None, Some(b"")]),
            data_row(&[Some(b"a"), None, Some(b"ccc")]),
            data_row(&[Some(b"a"), None, Some(b"ccc"), Some(&[0xe9; 200])]),
            data_row(&[Some(b"a"), Some(b"b"), Some(b"c"), Some(b"d"), Some(b"e")]),
        ];
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for row in &rows {
            cases.push(row.clone());
            // Followed by more bytes; cut short; one byte too many in the body.
            cases.push([&row[..], b"C\0\0\0\x04"].concat());
            cases.push(row[..row.len() - 1].to_vec());
            let mut longer = row.clone();
            longer.push(0);
            let len = u32::from_be_bytes(longer[1..5].try_into().unwrap()) + 1;
            longer[1..5].copy_from_slice(&len.to_be_bytes());
            cases.push(longer);
        }
        // A negative length other than -1; another message; a length word below 6.
        cases.push(b"D\0\0\0\x0a\0\x01\xff\xff\xff\xfe".to_vec());
        cases.push(b"C\0\0\0\x0dSELECT 1\0".to_vec());
        cases.push(b"D\0\0\0\x05\0".to_vec());
        for case in &cases {
            for base in [0, 100, NULL_FIELD as usize - 20, NULL_FIELD as usize] {
                agrees::<1>(case, base);
                agrees::<2>(case, base);
                agrees::<3>(case, base);
                agrees::<4>(case, base);
            }
        }
    }
}

//! The receive buffers row sets keep: as received, or checked for UTF-8 once as a whole.
//!
//! A value handed out as `&str` must have been checked for UTF-8, and the crate forbids `unsafe`
//! (no `from_utf8_unchecked`): without more, every access runs `std::str::from_utf8` on the value
//! (about 95 of the 158 instructions `Rows::get` cost). Instead, when an input pass ends with rows
//! referring to its buffer, the consumed bytes are copied once into a buffer the rows own, in which
//! every byte that is not part of a value becomes ASCII: message headers, field counts, NULL
//! lengths and other messages become spaces, and each value's length word (which [`field_bytes`]
//! reads back) is rewritten in four 7-bit groups ([`pack_len`]). The buffer is then checked as a
//! whole (`String::from_utf8`: one pass, mostly its ASCII fast path). Each value, bounded by ASCII
//! bytes on both sides, is then a `&str` slice of that string: slicing checks only the two char
//! boundaries. A pass the walk cannot account for (a value of 256 MiB or more, bytes that are not
//! whole messages) or that is not UTF-8 (a `SQL_ASCII` database can send such bytes) keeps its
//! buffer as received, and each access checks its value as before.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::protocol::backend::NULL_FIELD;

/// A receive buffer rows refer to (by the offsets of their values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::conn) enum Chunk {
    /// As received: value lengths are the server's big-endian words; values are checked on access.
    Raw(Bytes),
    /// Checked once: every byte outside the values is ASCII, lengths are packed ([`pack_len`]).
    Text(Arc<String>),
    /// A small row set's values, each after its length word as received, copied into the row set
    /// itself (the first `u8` bytes of the array): no shared buffer to freeze, count and release
    /// for a result of a few bytes. Read as [`Chunk::Raw`].
    Inline(u8, [u8; INLINE_BYTES]),
}

/// The most bytes (values with their length words) a [`Chunk::Inline`] holds: what fits beside
/// its length and the enum's tag in the room of a [`Chunk::Raw`] and that tag.
pub(in crate::conn) const INLINE_BYTES: usize = 38;

const _: () = assert!(std::mem::size_of::<Chunk>() <= std::mem::size_of::<Bytes>() + 8);

impl Chunk {
    /// Takes the first `consumed` bytes of `recv` (one input pass; framed messages from `framed_from`
    /// on, raw startup bytes before; `row_bytes` of them DataRows) as the chunk its rows refer to:
    /// a checked copy when the pass is mostly rows and the walk and the UTF-8 check succeed (`recv`
    /// then keeps its allocation for the next reads), else the bytes themselves, shared and not
    /// copied.
    pub(in crate::conn) fn take(
        recv: &mut BytesMut,
        framed_from: usize,
        consumed: usize,
        row_bytes: usize,
    ) -> Chunk {
        if let Some(chunk) = recv
            .get(..consumed)
            .and_then(|pass| Chunk::checked_text(pass, framed_from, row_bytes))
        {
            bytes::Buf::advance(recv, consumed);
            return chunk;
        }
        Chunk::Raw(recv.split_to(consumed).freeze())
    }

    /// The checked copy of `pass` [`take`](Chunk::take) makes when the pass is worth it and
    /// the copy walks and is UTF-8; `None` otherwise.
    pub(in crate::conn) fn checked_text(
        pass: &[u8],
        framed_from: usize,
        row_bytes: usize,
    ) -> Option<Chunk> {
        if pass.len() >= TEXT_MIN && pass.len() < TEXT_MAX && row_bytes >= pass.len() / 4 * 3 {
            return checked(pass, framed_from).map(|text| Chunk::Text(Arc::new(text)));
        }
        None
    }

    /// The chunk's bytes, with how to read them.
    #[inline(always)]
    pub(super) fn view(&self) -> View<'_> {
        match self {
            Chunk::Raw(bytes) => View::Raw(bytes),
            Chunk::Text(text) => View::Text(text),
            Chunk::Inline(len, bytes) => View::Raw(bytes.get(..*len as usize).unwrap_or_default()),
        }
    }
}

/// The copy of an input pass a [`Chunk::Text`] is made from when its rows are taken by the hot
/// loop ([`RowsBuilder::push_run`](super::RowsBuilder::push_run)): each row is made ASCII outside
/// its values (as [`checked`] does) as it is taken, instead of walking the pass's messages again
/// once it is done. Made only when every row referring to the pass is taken so
/// ([`Mirror::text`] checks), else the pass goes the way of [`Chunk::take`].
#[derive(Debug, Default)]
pub(in crate::conn) struct Mirror {
    buf: Vec<u8>,
    state: MirrorState,
    /// The bytes of the copy from its start that are made ASCII (or are values): the rest is as
    /// received.
    covered: usize,
    /// The rows made so.
    rows: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum MirrorState {
    /// No copy of this pass yet.
    #[default]
    Off,
    /// `buf` is this pass's copy and every row taken since holds in it.
    On,
    /// Given up for this pass.
    Broken,
}

impl Mirror {
    /// Copies `pass` for the rows about to be taken from `at` on, unless a copy was started (or
    /// given up) in this pass already, or the message at `at` is not complete (a large one being
    /// received is not copied again and again): only when the pass is large enough to be checked
    /// whole, not too large to copy twice, and no row refers to it yet (`clean`).
    #[inline]
    pub(in crate::conn) fn start(&mut self, pass: &[u8], at: usize, clean: bool) {
        if self.state != MirrorState::Off {
            return;
        }
        let Some(&[_, l0, l1, l2, l3]) = pass.get(at..).and_then(<[u8]>::first_chunk) else {
            return;
        };
        let end = at.saturating_add(1 + u32::from_be_bytes([l0, l1, l2, l3]) as usize);
        if end > pass.len() {
            return;
        }
        if !clean || pass.len() < TEXT_MIN || pass.len() > MIRROR_MAX {
            self.state = MirrorState::Broken;
            return;
        }
        self.buf.clear();
        self.buf.extend_from_slice(pass);
        self.state = MirrorState::On;
        self.covered = 0;
        self.rows = 0;
    }

    /// Makes the DataRow of `len` bytes at `at` ASCII outside its values in the copy (the bytes
    /// since the last row become spaces): what [`mask_messages`] does to it.
    /// `value_bytes` are the row's value bytes and `offsets` its field offsets.
    #[inline(always)]
    pub(in crate::conn) fn row(
        &mut self,
        at: usize,
        len: usize,
        value_bytes: usize,
        offsets: &[u32],
    ) {
        if !matches!(self.state, MirrorState::On) {
            return;
        }
        // The usual row: no NULL, under 128 columns and 128 value bytes, so that the field count
        // and every length word are ASCII already (as packed): only the message's length word is
        // not, and becomes spaces (the type byte is `D`).
        if self.covered == at
            && Mirror::usual(value_bytes, offsets)
            && let Some(word) = self
                .buf
                .get_mut(at.wrapping_add(1)..)
                .and_then(<[u8]>::first_chunk_mut::<4>)
        {
            *word = [b' '; 4];
            self.covered = at + len;
            self.rows += 1;
            return;
        }
        if self.mask_row(at, len).is_none() {
            self.state = MirrorState::Broken;
        }
    }

    /// Whether a row of `value_bytes` value bytes and these field offsets is the usual one of
    /// [`row`](Self::row): no NULL, under 128 columns and 128 value bytes.
    #[inline(always)]
    pub(in crate::conn) fn usual(value_bytes: usize, offsets: &[u32]) -> bool {
        value_bytes < 0x80
            && offsets.len() < 0x80
            // A short loop (`contains` sets up a vectorized search for the two or three offsets).
            && offsets.iter().all(|&o| o != NULL_FIELD)
    }

    /// Whether there is a copy of this pass that every row taken since holds in.
    #[inline(always)]
    pub(in crate::conn) fn is_on(&self) -> bool {
        self.state == MirrorState::On
    }

    /// The copy, when it is on and made ASCII up to `at`: a run of [`usual`](Self::usual) rows
    /// from `at` on may be made ASCII there directly (each one's length word becoming spaces, as
    /// [`row`](Self::row) does), then be told with [`took`](Self::took).
    #[inline(always)]
    pub(in crate::conn) fn copy_at(&mut self, at: usize) -> Option<&mut [u8]> {
        (self.state == MirrorState::On && self.covered == at).then_some(&mut self.buf[..])
    }

    /// `rows` usual rows were made ASCII in [`copy_at`](Self::copy_at)'s copy, up to `at`.
    #[inline(always)]
    pub(in crate::conn) fn took(&mut self, at: usize, rows: usize) {
        self.covered = at;
        self.rows += rows;
    }

    #[inline(never)]
    fn mask_row(&mut self, at: usize, len: usize) -> Option<()> {
        if self.covered != at {
            self.buf.get_mut(self.covered..at)?.fill(b' ');
        }
        let end = at.checked_add(len)?;
        let (header, body) = self.buf.get_mut(at..end)?.split_first_chunk_mut::<5>()?;
        *header = [b' '; 5];
        mask_data_row(body)?;
        self.covered = end;
        self.rows += 1;
        Some(())
    }

    /// The checked chunk of the pass's first `consumed` bytes when the copy holds every one of
    /// the `rows` rows referring to the pass (`row_bytes` of DataRows) and the pass is worth
    /// checking whole ([`Chunk::checked_text`]'s rule); `None` otherwise. `Some(Err(()))` when the
    /// copy is not UTF-8 (the pass is then kept as received). Ends the pass's copy either way.
    pub(in crate::conn) fn text(
        &mut self,
        consumed: usize,
        rows: usize,
        row_bytes: usize,
    ) -> Option<Result<Chunk, ()>> {
        let on = std::mem::take(&mut self.state) == MirrorState::On;
        if !(on
            && rows == self.rows
            && consumed >= TEXT_MIN
            && row_bytes >= consumed / 4 * 3
            && self.covered <= consumed
            && consumed <= self.buf.len())
        {
            return None;
        }
        self.buf.get_mut(self.covered..consumed)?.fill(b' ');
        self.buf.truncate(consumed);
        if self.buf.capacity() > consumed + consumed / 4 {
            // Much of the pass unconsumed (a large message begun): not kept with the rows.
            self.buf.shrink_to_fit();
        }
        match String::from_utf8(std::mem::take(&mut self.buf)) {
            Ok(text) => Some(Ok(Chunk::Text(Arc::new(text)))),
            Err(e) => {
                self.buf = e.into_bytes();
                Some(Err(()))
            }
        }
    }

    /// Ends the pass's copy, if any, without using it (a large one is not kept for the next).
    #[inline]
    pub(in crate::conn) fn reset(&mut self) {
        self.state = MirrorState::Off;
        if self.buf.capacity() > MIRROR_KEPT {
            self.buf = Vec::new();
        }
    }
}

/// The largest pass a [`Mirror`] copies (larger ones go the way of [`Chunk::take`], copied once
/// they are done), and the largest copy it keeps for the next pass when one was not used.
const MIRROR_MAX: usize = 4 << 20;
const MIRROR_KEPT: usize = 256 << 10;

/// The smallest pass worth checking whole: below it the copy, its two allocations and the walk cost
/// more than checking the few values on access (a round trip's reply: about 900 instructions more
/// per query with every pass checked). A pass must also be at least three quarters DataRows: a
/// pipeline's many one-row results (1, 2, T, D, C for a few bytes of value) would pay the copy, the
/// walk and the check of every byte for values that are each read once (about 350 instructions a
/// query more than checking each value on access).
pub(in crate::conn) const TEXT_MIN: usize = 4096;

/// The length a checked chunk stays below (a [`Mirror`]'s far below): [`text_field`] then finds no
/// value at [`NULL_FIELD`] without a test of its own.
const TEXT_MAX: usize = NULL_FIELD as usize;

/// A copy of `pass` with every byte outside the values made ASCII and the value lengths packed,
/// checked as UTF-8; `None` if the messages from `framed_from` on do not walk, or it is not UTF-8.
fn checked(pass: &[u8], framed_from: usize) -> Option<String> {
    let mut copy = pass.to_vec();
    let (raw, framed) = copy.split_at_mut_checked(framed_from)?;
    raw.fill(b' ');
    mask_messages(framed)?;
    String::from_utf8(copy).ok()
}

/// Walks whole messages (type byte, length word, body): a DataRow keeps its values and gets packed
/// lengths, every other byte becomes a space.
fn mask_messages(buf: &mut [u8]) -> Option<()> {
    let mut at = 0;
    while at < buf.len() {
        let header = buf.get_mut(at..)?.first_chunk_mut::<5>()?;
        let [tag, l0, l1, l2, l3] = *header;
        *header = [b' '; 5];
        let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
        let end = at.checked_add(1)?.checked_add(len)?;
        let body = buf.get_mut(at + 5..end)?;
        if tag == b'D' {
            mask_data_row(body)?;
        } else {
            body.fill(b' ');
        }
        at = end;
    }
    Some(())
}

/// A DataRow body: the field count and NULL lengths become spaces, each value's length is packed.
#[inline]
fn mask_data_row(body: &mut [u8]) -> Option<()> {
    let count = body.first_chunk_mut::<2>()?;
    let n = u16::from_be_bytes(*count);
    *count = [b' '; 2];
    let mut at = 2usize;
    for _ in 0..n {
        let word = body.get_mut(at..)?.first_chunk_mut::<4>()?;
        let len = u32::from_be_bytes(*word);
        at += 4;
        if len < 0x80 {
            // Already ASCII, and packed alike.
            at += len as usize;
        } else if len == u32::MAX {
            // NULL (-1).
            *word = [b' '; 4];
        } else if len < PACKED_LIMIT {
            *word = pack_len(len);
            at += len as usize;
        } else {
            return None;
        }
    }
    (at == body.len()).then_some(())
}

/// Lengths from here on cannot be packed (28 bits).
const PACKED_LIMIT: u32 = 1 << 28;

/// A value length below [`PACKED_LIMIT`] as four bytes of 7 bits each, most significant first: all
/// ASCII, so the chunk stays UTF-8.
fn pack_len(len: u32) -> [u8; 4] {
    ((len & 0x7f) | ((len << 1) & 0x7f00) | ((len << 2) & 0x7f_0000) | ((len << 3) & 0x7f00_0000))
        .to_be_bytes()
}

/// [`pack_len`] undone.
#[inline(always)]
fn unpack_len(word: [u8; 4]) -> usize {
    let w = u32::from_be_bytes(word);
    if w < 0x80 {
        // Most values: one byte, packed as it is.
        return w as usize;
    }
    ((w & 0x7f) | ((w >> 1) & 0x3f80) | ((w >> 2) & 0x1f_c000) | ((w >> 3) & 0x0fe0_0000)) as usize
}

/// A chunk's bytes as rows read them.
#[derive(Clone, Copy, Debug)]
pub(super) enum View<'a> {
    Raw(&'a [u8]),
    Text(&'a str),
}

impl<'a> View<'a> {
    /// No bytes (a row set without a chunk).
    pub(super) const EMPTY: View<'static> = View::Raw(&[]);

    /// The bytes of the field whose value starts at `start`; `None` for NULL or bad bounds.
    #[inline(always)]
    pub(super) fn bytes(self, start: u32) -> Option<&'a [u8]> {
        match self {
            View::Raw(chunk) => field_bytes(chunk, start),
            View::Text(text) => text_field(text, start).map(str::as_bytes),
        }
    }

    /// The text of the field whose value starts at `start`: `None` for NULL or bad bounds, `Err`
    /// with the bytes when they are not UTF-8 (only in a raw chunk).
    #[inline(always)]
    pub(super) fn text(self, start: u32) -> Option<Result<&'a str, &'a [u8]>> {
        match self {
            View::Text(text) => text_field(text, start).map(Ok),
            View::Raw(chunk) => {
                let value = field_bytes(chunk, start)?;
                Some(short_utf8(value).ok_or(value))
            }
        }
    }
}

/// `bytes` as text if they are UTF-8. A short value (most are) is checked by `utf8_chunks`, whose
/// first chunk is the whole value when it is valid: cheaper than setting up `from_utf8`'s
/// word-at-a-time search for a few bytes.
#[inline(always)]
fn short_utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.len() > 16 {
        return std::str::from_utf8(bytes).ok();
    }
    match bytes.utf8_chunks().next() {
        Some(chunk) if chunk.invalid().is_empty() => Some(chunk.valid()),
        Some(_) => None,
        None => Some(""),
    }
}

/// The field of a checked chunk whose value starts at `start`, its packed length in the four bytes
/// before it. Values are bounded by ASCII bytes, so the slice is always on char boundaries.
#[inline(always)]
pub(super) fn text_field(text: &str, start: u32) -> Option<&str> {
    // `NULL_FIELD` is beyond the text (see `TEXT_MAX`): no value there.
    let start = start as usize;
    let len = unpack_len(*text.as_bytes().get(..start)?.last_chunk::<4>()?);
    // One check of both bounds and both char boundaries.
    text.get(start..start.checked_add(len)?)
}

/// The bytes of the field whose value starts at `start` in a raw chunk, its length read from the
/// four bytes before it; `None` for NULL or bad bounds.
#[inline]
pub(super) fn field_bytes(chunk: &[u8], start: u32) -> Option<&[u8]> {
    if start == NULL_FIELD {
        return None;
    }
    let (head, value) = chunk.split_at_checked(start as usize)?;
    // A negative length (only NULL has one, marked above) becomes too large for `get`.
    let len = i32::from_be_bytes(*head.last_chunk::<4>()?) as u32 as usize;
    value.get(..len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_checked_as_from_utf8_does() {
        let samples: [&[u8]; 12] = [
            b"",
            b"1",
            b"abc",
            "é".as_bytes(),
            "日本".as_bytes(),
            b"\xe9",
            b"a\xe9 ",
            b"\xe6\x97",
            b"ok\xff",
            b"\xc3\xa9\xc3",
            "seventeen bytes!!".as_bytes(),
            b"sixteen bytes!\xc3\x28",
        ];
        for bytes in samples {
            assert_eq!(
                short_utf8(bytes),
                std::str::from_utf8(bytes).ok(),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn packed_lengths_are_ascii_and_read_back() {
        for len in [
            0,
            1,
            127,
            128,
            200,
            16_383,
            16_384,
            1 << 21,
            PACKED_LIMIT - 1,
        ] {
            let word = pack_len(len);
            assert!(word.is_ascii(), "{len}");
            assert_eq!(unpack_len(word), len as usize);
        }
    }

    /// A pass: a raw byte, a RowDescription-like message with bytes that are not UTF-8, a DataRow
    /// (a 5,000-byte value, NULL, `é`), a CommandComplete.
    fn pass() -> (Vec<u8>, [u32; 3]) {
        let mut buf = vec![b'N', b'T', 0, 0, 0, 7, 0xff, 0xfe, 0x80];
        let long = "x".repeat(5000);
        let values: [Option<&[u8]>; 3] = [Some(long.as_bytes()), None, Some("é".as_bytes())];
        let body_len: usize = 2 + values
            .iter()
            .map(|v| 4 + v.map_or(0, <[u8]>::len))
            .sum::<usize>();
        buf.push(b'D');
        buf.extend_from_slice(&(4 + body_len as u32).to_be_bytes());
        buf.extend_from_slice(&3u16.to_be_bytes());
        let mut starts = [NULL_FIELD; 3];
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    starts[i] = buf.len() as u32;
                    buf.extend_from_slice(v);
                }
                None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        buf.extend_from_slice(b"C\0\0\0\x0dSELECT 1\0");
        (buf, starts)
    }

    #[test]
    fn a_pass_of_utf8_values_becomes_one_checked_text() {
        let (buf, starts) = pass();
        let mut recv = BytesMut::from(&buf[..]);
        recv.extend_from_slice(b"Z\0\0"); // the start of a message not consumed yet
        let chunk = Chunk::take(&mut recv, 1, buf.len(), buf.len());
        assert!(matches!(chunk, Chunk::Text(_)), "{chunk:?}");
        assert_eq!(&recv[..], b"Z\0\0");
        let view = chunk.view();
        assert_eq!(view.text(starts[0]), Some(Ok(&*"x".repeat(5000))));
        assert_eq!(view.text(starts[1]), None);
        assert_eq!(view.text(starts[2]), Some(Ok("é")));
        assert_eq!(view.bytes(starts[2]), Some("é".as_bytes()));
    }

    #[test]
    fn a_pass_of_few_rows_is_not_checked_whole() {
        let (buf, starts) = pass();
        let mut recv = BytesMut::from(&buf[..]);
        // Under three quarters of the pass in DataRows: each value is checked when read.
        let chunk = Chunk::take(&mut recv, 1, buf.len(), buf.len() / 2);
        assert_eq!(chunk, Chunk::Raw(Bytes::from(buf.clone())));
        assert!(recv.is_empty());
        assert_eq!(chunk.view().text(starts[2]), Some(Ok("é")));
    }

    #[test]
    fn a_value_that_is_not_utf8_keeps_the_pass_as_received() {
        let (mut buf, starts) = pass();
        buf[starts[2] as usize] = 0xe9;
        let mut recv = BytesMut::from(&buf[..]);
        let chunk = Chunk::take(&mut recv, 1, buf.len(), buf.len());
        assert_eq!(chunk, Chunk::Raw(Bytes::from(buf.clone())));
        assert!(recv.is_empty());
        let view = chunk.view();
        assert_eq!(view.text(starts[0]), Some(Ok(&*"x".repeat(5000))));
        assert_eq!(view.text(starts[2]), Some(Err(&[0xe9, 0xa9][..])));
    }

    /// A pass of `n` DataRows of one value each (`value`), then the start of another message.
    fn rows_pass(n: usize, value: &[u8]) -> (Vec<u8>, Vec<usize>, usize) {
        let mut buf = Vec::new();
        let mut rows = Vec::new();
        for _ in 0..n {
            rows.push(buf.len());
            buf.push(b'D');
            buf.extend_from_slice(&(10 + value.len() as u32).to_be_bytes());
            buf.extend_from_slice(&1u16.to_be_bytes());
            buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
            buf.extend_from_slice(value);
        }
        let consumed = buf.len();
        buf.extend_from_slice(b"D\0\0\x01\0\0\x01");
        (buf, rows, consumed)
    }

    #[test]
    fn a_mirror_makes_the_rows_taken_text_and_only_those() {
        for value in ["row é 1".as_bytes(), "long é ".repeat(30).as_bytes()] {
            let (buf, rows, consumed) = rows_pass(400, value);
            let row_len = rows[1];
            let mut mirror = Mirror::default();
            // Not clean: given up for the pass, even once clean.
            mirror.start(&buf, 0, false);
            mirror.start(&buf, 0, true);
            assert_eq!(mirror.text(consumed, 0, consumed), None);
            // An incomplete message does not start it.
            mirror.reset();
            mirror.start(&buf, consumed, true);
            assert_eq!(mirror.text(consumed, 0, consumed), None);
            mirror.start(&buf, 0, true);
            for &at in &rows {
                mirror.row(at, row_len, value.len(), &[(at + 11) as u32]);
            }
            // One row short: not used.
            assert_eq!(mirror.text(consumed, rows.len() + 1, consumed), None);
            mirror.reset();
            mirror.start(&buf, 0, true);
            for &at in &rows {
                mirror.row(at, row_len, value.len(), &[(at + 11) as u32]);
            }
            let Some(Ok(chunk)) = mirror.text(consumed, rows.len(), consumed) else {
                panic!("a checked chunk");
            };
            let view = chunk.view();
            assert!(matches!(view, View::Text(_)));
            for &at in &rows {
                assert_eq!(view.bytes((at + 11) as u32), Some(value));
            }
        }
    }

    #[test]
    fn a_mirror_of_bytes_that_are_not_utf8_is_refused() {
        let (buf, rows, consumed) = rows_pass(400, b"bad \xe9 byte");
        let mut mirror = Mirror::default();
        mirror.start(&buf, 0, true);
        for &at in &rows {
            mirror.row(at, rows[1], 10, &[(at + 11) as u32]);
        }
        assert_eq!(mirror.text(consumed, rows.len(), consumed), Some(Err(())));
    }

    #[test]
    fn bytes_that_are_not_whole_messages_keep_the_pass_as_received() {
        let (buf, _) = pass();
        // Framed from 0: the raw `N` read as a message type, its length word absurd.
        for (framed_from, consumed) in [(0, buf.len()), (1, buf.len() - 1), (buf.len() + 1, 3)] {
            let mut recv = BytesMut::from(&buf[..]);
            let chunk = Chunk::take(&mut recv, framed_from, consumed, consumed);
            assert_eq!(chunk, Chunk::Raw(Bytes::copy_from_slice(&buf[..consumed])));
        }
    }
}

//! Query results: rows kept as offsets into shared receive buffers.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::backend::NULL_FIELD;

/// One result of a statement.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryResult {
    /// A statement that returns rows (possibly zero rows).
    Rows(Rows),
    /// A statement without rows: its command tag, e.g. `CREATE TABLE`, `INSERT 0 2`.
    Command(String),
    /// The statement was empty (`""`, `";"`, only a comment).
    EmptyQuery,
}

impl QueryResult {
    /// The command tag: the rows' tag (`SELECT 3`), the command's tag, or `""` for an empty query.
    pub fn command_tag(&self) -> &str {
        match self {
            QueryResult::Rows(rows) => rows.command_tag(),
            QueryResult::Command(tag) => tag,
            QueryResult::EmptyQuery => "",
        }
    }

    /// The rows, if this result has any.
    pub fn rows(&self) -> Option<&Rows> {
        match self {
            QueryResult::Rows(rows) => Some(rows),
            _ => None,
        }
    }
}

/// A column of a row set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    name: String,
    type_oid: u32,
}

impl Column {
    /// A column with this name and type.
    pub fn new(name: impl Into<String>, type_oid: u32) -> Column {
        Column {
            name: name.into(),
            type_oid,
        }
    }

    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OID of the column's data type (`23` for `int4`, `25` for `text`, ...).
    pub fn type_oid(&self) -> u32 {
        self.type_oid
    }
}

/// The rows of one statement, in text format.
///
/// The values are not copied out of the bytes received from the server: a `Rows` holds the received
/// buffers (reference-counted [`Bytes`]) and, for every field, its offset and length in them.
#[derive(Clone, PartialEq, Eq)]
pub struct Rows {
    pub(crate) columns: Arc<[Column]>,
    /// The receive buffers the rows live in, each with the index of the first row it holds (rows are
    /// appended in order, so a row lives in the last chunk whose first row is not after it).
    pub(crate) chunks: Chunks,
    /// Number of rows.
    pub(crate) nrows: u32,
    /// Rows at the end whose chunk is still the receive buffer of the current input pass.
    pub(crate) pending: u32,
    /// For each field (row-major), where its value starts in its row's chunk ([`NULL_FIELD`] for
    /// NULL). The value's length is the big-endian `i32` in the four bytes before it, as the server
    /// sent it: four bytes a field instead of eight.
    pub(crate) fields: Vec<u32>,
    /// The bytes of all values (NULLs count none).
    pub(crate) value_bytes: u64,
    pub(crate) tag: Tag,
    /// A chunk of a row set delivered in chunked-rows mode, more rows follow.
    pub(crate) partial: bool,
}

impl Rows {
    pub(crate) fn new(columns: Arc<[Column]>) -> Rows {
        Rows {
            columns,
            chunks: Chunks::default(),
            nrows: 0,
            pending: 0,
            fields: Vec::new(),
            value_bytes: 0,
            tag: Tag::default(),
            partial: false,
        }
    }

    /// Appends a row whose fields were pushed to `fields`; its bytes are in the pending chunk.
    pub(crate) fn push_pending_row(&mut self) {
        self.nrows += 1;
        self.pending += 1;
    }

    /// Gives the rows received in the current input pass their chunk.
    pub(crate) fn attach(&mut self, chunk: &Bytes) {
        if self.pending > 0 {
            self.chunks.push(chunk.clone(), self.nrows - self.pending);
            self.pending = 0;
        }
    }

    /// The approximate bytes this row set holds: its values and their offsets.
    pub(crate) fn data_bytes(&self) -> usize {
        usize::try_from(self.value_bytes).unwrap_or(usize::MAX)
            + self.fields.len() * std::mem::size_of::<u32>()
    }

    /// Whether more rows of the same row set follow in the next result (chunked-rows mode); the last
    /// chunk is not partial and carries the command tag.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// The columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.nrows as usize
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.nrows == 0
    }

    /// The raw bytes of a value; `None` for SQL NULL or an index out of range.
    pub fn get_bytes(&self, row: usize, col: usize) -> Option<&[u8]> {
        let ncols = self.columns.len();
        if col >= ncols || row >= self.len() {
            return None;
        }
        let chunk = self.chunk_of(row)?;
        let field = *self.fields.get(row.checked_mul(ncols)?.checked_add(col)?)?;
        field_bytes(chunk, field)
    }

    /// The receive buffer row `row` lives in. Rows are spread over the chunks roughly evenly, so the
    /// chunk at the row's proportional position is the first guess, corrected by a step or two;
    /// a binary search only where rows are very unevenly sized. Sequential and random access both
    /// cost O(1) in the usual case (no search per value).
    fn chunk_of(&self, row: usize) -> Option<&Bytes> {
        let chunks = &self.chunks;
        if chunks.rest.is_empty() {
            return chunks.first.as_ref().map(|(only, _)| only);
        }
        let n = chunks.len();
        // `row < nrows`, so the guess is below `n`.
        let mut i = (row as u64 * n as u64 / u64::from(self.nrows.max(1))) as usize;
        let starts = |i: usize| chunks.get(i).map_or(usize::MAX, |c| c.1 as usize);
        for _ in 0..4 {
            if starts(i) > row {
                if i == 0 {
                    break;
                }
                i -= 1;
            } else if i + 1 < n && starts(i + 1) <= row {
                i += 1;
            } else {
                return chunks.get(i).map(|(c, _)| c);
            }
        }
        chunks.get(chunks.search(row)?).map(|(c, _)| c)
    }

    /// The text value at `row`, `col`; `None` for SQL NULL (or an index out of range, or a value that is
    /// not valid UTF-8, which cannot happen with the `UTF8` client encoding pgdblink asks for).
    pub fn get(&self, row: usize, col: usize) -> Option<&str> {
        std::str::from_utf8(self.get_bytes(row, col)?).ok()
    }

    /// Whether the value is SQL NULL.
    pub fn is_null(&self, row: usize, col: usize) -> bool {
        let ncols = self.columns.len();
        col < ncols
            && row
                .checked_mul(ncols)
                .and_then(|i| i.checked_add(col))
                .and_then(|i| self.fields.get(i))
                == Some(&NULL_FIELD)
    }

    /// The command tag: `SELECT 3`, `FETCH 4`.
    pub fn command_tag(&self) -> &str {
        self.tag.as_str()
    }

    /// Iterates over the rows in order, walking the receive buffers alongside (no lookup per row).
    pub fn iter(&self) -> RowIter<'_> {
        RowIter {
            rows: self,
            index: 0,
            chunk: 0,
        }
    }
}

/// The receive buffers a row set spans, each with the index of its first row; the first is kept
/// inline, since most row sets fit in one (no allocation for them).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Chunks {
    first: Option<(Bytes, u32)>,
    rest: Vec<(Bytes, u32)>,
}

impl Chunks {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn get(&self, i: usize) -> Option<&(Bytes, u32)> {
        match i {
            0 => self.first.as_ref(),
            _ => self.rest.get(i - 1),
        }
    }

    pub(crate) fn push(&mut self, chunk: Bytes, first_row: u32) {
        match self.first {
            None => self.first = Some((chunk, first_row)),
            Some(_) => self.rest.push((chunk, first_row)),
        }
    }

    /// The index of the last chunk whose first row is not after `row` (binary search).
    fn search(&self, row: usize) -> Option<usize> {
        let (_, start) = self.first.as_ref()?;
        if *start as usize > row {
            return None;
        }
        Some(
            self.rest
                .partition_point(|&(_, first)| first as usize <= row),
        )
    }
}

/// A command tag, inline when short (`SELECT 1`, `INSERT 0 5`: no allocation), else on the heap.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Tag {
    Inline(u8, [u8; TAG_INLINE]),
    Heap(Box<str>),
}

const TAG_INLINE: usize = 22;

impl Default for Tag {
    fn default() -> Tag {
        Tag::Inline(0, [0; TAG_INLINE])
    }
}

impl Tag {
    pub(crate) fn new(text: &str) -> Tag {
        match text.len() {
            n if n <= TAG_INLINE => {
                let mut bytes = [0; TAG_INLINE];
                bytes[..n].copy_from_slice(text.as_bytes());
                Tag::Inline(n as u8, bytes)
            }
            _ => Tag::Heap(text.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` whole, so always valid.
            Tag::Inline(n, bytes) => std::str::from_utf8(&bytes[..*n as usize]).unwrap_or(""),
            Tag::Heap(text) => text,
        }
    }
}

/// The bytes of the field whose value starts at `start` in its row's chunk, its length read from the
/// four bytes before it; `None` for NULL or bad bounds.
#[inline]
fn field_bytes(chunk: &[u8], start: u32) -> Option<&[u8]> {
    if start == NULL_FIELD {
        return None;
    }
    let start = start as usize;
    let &word = chunk
        .get(start.checked_sub(4)?..start)?
        .first_chunk::<4>()?;
    let len = usize::try_from(i32::from_be_bytes(word)).ok()?;
    chunk.get(start..start.checked_add(len)?)
}

/// The rows of a [`Rows`] in order: [`Rows::iter`].
#[derive(Clone, Debug)]
pub struct RowIter<'a> {
    rows: &'a Rows,
    index: usize,
    /// The chunk holding row `index` (or a chunk before it).
    chunk: usize,
}

impl<'a> Iterator for RowIter<'a> {
    type Item = Row<'a>;

    fn next(&mut self) -> Option<Row<'a>> {
        let rows = self.rows;
        if self.index >= rows.len() {
            return None;
        }
        let chunks = &rows.chunks;
        while chunks
            .get(self.chunk + 1)
            .is_some_and(|c| c.1 as usize <= self.index)
        {
            self.chunk += 1;
        }
        let ncols = rows.columns.len();
        let at = self.index * ncols;
        let row = Row {
            chunk: chunks.get(self.chunk).map_or(&[][..], |(c, _)| &c[..]),
            fields: rows.fields.get(at..at + ncols).unwrap_or(&[]),
            ncols,
        };
        self.index += 1;
        Some(row)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.rows.len() - self.index.min(self.rows.len());
        (left, Some(left))
    }
}

impl ExactSizeIterator for RowIter<'_> {}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for row in self.iter() {
            list.entry(&row);
        }
        list.finish()?;
        write!(f, " {:?}", self.tag.as_str())
    }
}

/// One row of a [`Rows`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    /// The receive buffer the row lives in.
    chunk: &'a [u8],
    /// Where the row's values start in `chunk` ([`NULL_FIELD`] for NULL).
    fields: &'a [u32],
    ncols: usize,
}

impl<'a> Row<'a> {
    /// The text value of column `col`; `None` for SQL NULL (or a column out of range).
    pub fn get(&self, col: usize) -> Option<&'a str> {
        std::str::from_utf8(self.get_bytes(col)?).ok()
    }

    /// The raw bytes of column `col`; `None` for SQL NULL (or a column out of range).
    pub fn get_bytes(&self, col: usize) -> Option<&'a [u8]> {
        field_bytes(self.chunk, *self.fields.get(col)?)
    }

    /// Whether column `col` is SQL NULL.
    pub fn is_null(&self, col: usize) -> bool {
        self.fields.get(col) == Some(&NULL_FIELD)
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.ncols
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.ncols == 0
    }
}

impl fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len()).map(|c| self.get(c)))
            .finish()
    }
}

/// A notification received through LISTEN/NOTIFY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The channel.
    pub channel: String,
    /// The process id of the notifying backend.
    pub pid: u32,
    /// The payload (`""` when none was given).
    pub payload: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row set of `sizes.len()` chunks, chunk `i` holding `sizes[i]` rows of one text column whose
    /// value is the row's number; every third value is NULL.
    fn chunked_rows(sizes: &[usize]) -> Rows {
        let mut rows = Rows::new(Arc::from(vec![Column::new("n", 25)]));
        for &size in sizes {
            let mut chunk = Vec::new();
            for _ in 0..size {
                let n = rows.nrows;
                // Some bytes before each field, as a DataRow's header would be, then its length.
                chunk.extend_from_slice(b"hdr");
                if n % 3 == 2 {
                    chunk.extend_from_slice(&(-1i32).to_be_bytes());
                    rows.fields.push(NULL_FIELD);
                } else {
                    let text = n.to_string();
                    chunk.extend_from_slice(&(text.len() as i32).to_be_bytes());
                    rows.fields.push(chunk.len() as u32);
                    rows.value_bytes += text.len() as u64;
                    chunk.extend_from_slice(text.as_bytes());
                }
                rows.push_pending_row();
            }
            rows.attach(&Bytes::from(chunk));
        }
        rows
    }

    fn expected(row: usize) -> Option<String> {
        (row % 3 != 2).then(|| row.to_string())
    }

    #[test]
    fn random_access_finds_the_right_chunk_for_even_and_uneven_chunks() {
        let cases: [&[usize]; 6] = [
            &[10],
            &[5, 5, 5, 5],
            &[1, 1, 1, 200, 1, 1],
            &[300, 1, 1, 1, 1, 1, 1, 1, 1],
            &[1, 0, 7, 0, 0, 90, 2],
            &[64; 40],
        ];
        for sizes in cases {
            let rows = chunked_rows(sizes);
            assert_eq!(rows.len(), sizes.iter().sum::<usize>());
            for row in 0..rows.len() {
                assert_eq!(
                    rows.get(row, 0).map(str::to_owned),
                    expected(row),
                    "{sizes:?} row {row}"
                );
                assert_eq!(rows.is_null(row, 0), expected(row).is_none());
            }
            // Backwards and scattered access too.
            for row in (0..rows.len()).rev().step_by(7) {
                assert_eq!(rows.get(row, 0).map(str::to_owned), expected(row));
            }
            assert_eq!(rows.get(rows.len(), 0), None);
            assert_eq!(rows.get(0, 1), None);
        }
    }

    #[test]
    fn command_tags_inline_and_on_the_heap() {
        let texts = [
            String::new(),
            "SELECT 1".to_owned(),
            "x".repeat(TAG_INLINE),
            "é".repeat(TAG_INLINE / 2),
            "x".repeat(TAG_INLINE + 1),
            "INSERT 0 18446744073709551615".to_owned(),
        ];
        for text in texts {
            let mut rows = Rows::new(Arc::from(Vec::new()));
            rows.tag = Tag::new(&text);
            assert_eq!(rows.command_tag(), text);
            assert_eq!(rows.clone(), rows);
            assert!(format!("{rows:?}").contains(&format!("{text:?}")));
        }
    }

    #[test]
    fn iteration_walks_the_chunks_in_order() {
        for sizes in [&[3usize, 0, 4, 1][..], &[1; 17][..], &[250, 2][..], &[][..]] {
            let rows = chunked_rows(sizes);
            let mut iter = rows.iter();
            assert_eq!(iter.len(), rows.len());
            let mut seen = 0;
            for (index, row) in iter.by_ref().enumerate() {
                assert_eq!(row.len(), 1);
                assert_eq!(row.get(0).map(str::to_owned), expected(index));
                assert_eq!(row.get_bytes(0), rows.get_bytes(index, 0));
                assert_eq!(row.is_null(0), expected(index).is_none());
                assert_eq!(row.get(1), None);
                seen += 1;
            }
            assert_eq!(seen, rows.len());
            assert!(iter.next().is_none());
            assert_eq!(iter.len(), 0);
        }
    }
}

//! Reading a [`Rows`]: its rows in order ([`RowIter`]) and one row's values ([`Row`]).

use std::fmt;

use super::builder::invalid_utf8;
use super::{Column, Rows, View};
use crate::error::Error;
use crate::protocol::backend::NULL_FIELD;

/// The rows of a [`Rows`] in order: [`Rows::iter`].
#[derive(Clone, Debug)]
pub struct RowIter<'a> {
    pub(super) rows: &'a Rows,
    pub(super) index: usize,
    /// The chunk holding row `index` (or a chunk before it), its bytes, and the first row after it
    /// (at most the row count: the one check a row makes).
    pub(super) chunk: usize,
    pub(super) view: View<'a>,
    pub(super) chunk_end: usize,
    /// The field offsets of the rows from `index` on, its row count and its columns, read once at
    /// the start.
    pub(super) fields: &'a [u32],
    pub(super) len: usize,
    pub(super) ncols: usize,
}

impl<'a> RowIter<'a> {
    /// Moves to the chunk holding row `index` from chunk `from` on.
    #[inline(never)]
    pub(super) fn enter_chunk(&mut self, from: usize) {
        (self.chunk, self.view, self.chunk_end) = chunk_of(self.rows, from, self.index, self.len);
    }
}

/// The chunk holding row `index` from chunk `from` on in `rows` (of `len` rows), its bytes and the
/// first row after it (at most `len`).
#[cold]
#[inline(never)]
fn chunk_of(rows: &Rows, from: usize, index: usize, len: usize) -> (usize, View<'_>, usize) {
    let chunks = &rows.d.chunks;
    let mut chunk = from;
    while chunks
        .get(chunk + 1)
        .is_some_and(|(_, first_row)| first_row as usize <= index)
    {
        chunk += 1;
    }
    let view = chunks.get(chunk).map_or(View::EMPTY, |(c, _)| c.view());
    let end = chunks
        .get(chunk + 1)
        .map_or(usize::MAX, |(_, first_row)| first_row as usize);
    (chunk, view, end.min(len))
}

impl<'a> Iterator for RowIter<'a> {
    type Item = Row<'a>;

    #[inline]
    fn next(&mut self) -> Option<Row<'a>> {
        if self.index >= self.chunk_end {
            if self.index >= self.len {
                return None;
            }
            self.enter_chunk(self.chunk);
        }
        let fields = match self.fields.split_at_checked(self.ncols) {
            Some((row, rest)) => {
                self.fields = rest;
                row
            }
            None => &[],
        };
        self.index += 1;
        Some(Row {
            chunk: self.view,
            fields,
            rows: self.rows,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.index.min(self.len);
        (left, Some(left))
    }
}

impl ExactSizeIterator for RowIter<'_> {}

/// One row of a [`Rows`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    /// The receive buffer the row lives in.
    pub(super) chunk: View<'a>,
    /// Where the row's values start in `chunk` ([`NULL_FIELD`] for NULL): one per column.
    pub(super) fields: &'a [u32],
    pub(super) rows: &'a Rows,
}

impl<'a> Row<'a> {
    /// The text value of column `col`; `None` for SQL NULL (or a column out of range).
    #[inline(always)]
    pub fn get(&self, col: usize) -> Option<&'a str> {
        self.chunk.text(*self.fields.get(col)?)?.ok()
    }

    /// The raw bytes of column `col`; `None` for SQL NULL (or a column out of range).
    #[inline]
    pub fn get_bytes(&self, col: usize) -> Option<&'a [u8]> {
        self.chunk.bytes(*self.fields.get(col)?)
    }

    /// Whether column `col` is SQL NULL.
    pub fn is_null(&self, col: usize) -> bool {
        self.fields.get(col) == Some(&NULL_FIELD)
    }

    /// The text value of the first column named exactly `name`; `None` for SQL NULL or when no
    /// column has that name ([`Rows::column_index`] tells the two apart).
    pub fn get_by_name(&self, name: &str) -> Option<&'a str> {
        self.get(self.rows.column_index(name)?)
    }

    /// The columns.
    pub fn columns(&self) -> &'a [Column] {
        self.rows.columns()
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of column `col` converted to `T`, as [`Rows::get_as`] does: `Ok(None)` for SQL
    /// NULL, the server's error for a text `T`'s type does not accept, libpq's text for a column
    /// out of range.
    pub fn get_as<T: crate::conn::FromText<'a>>(&self, col: usize) -> Result<Option<T>, Error> {
        let columns = self.rows.columns();
        match columns.get(col) {
            Some(column) if col < self.fields.len() => {
                let field = self.fields.get(col).copied();
                from_field(field.and_then(|f| self.chunk.text(f)), column)
            }
            _ => Err(crate::conn::types::column_out_of_range(
                col,
                self.fields.len(),
            )),
        }
    }
}

/// A field's text (`None` for NULL; `Err` with its bytes when not UTF-8) converted to `T`. The
/// bytes are UTF-8 (the connection checks); should they not be, the error is the server's for such
/// bytes.
pub(super) fn from_field<'a, T: crate::conn::FromText<'a>>(
    value: Option<Result<&'a str, &'a [u8]>>,
    column: &Column,
) -> Result<Option<T>, Error> {
    match value {
        None => Ok(None),
        Some(Ok(text)) => T::from_text(text, column).map(Some),
        Some(Err(bytes)) => {
            let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), str::len);
            Err(invalid_utf8(&bytes[valid..]))
        }
    }
}

impl fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len()).map(|c| self.get(c)))
            .finish()
    }
}

//! Query results: rows kept as offsets into shared receive buffers.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

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
    pub(crate) chunks: Vec<(Bytes, u32)>,
    /// Number of rows.
    pub(crate) nrows: u32,
    /// Rows at the end whose chunk is still the receive buffer of the current input pass.
    pub(crate) pending: u32,
    /// For each field (row-major), `(start, len)` in its row's chunk; `len == -1` is NULL.
    pub(crate) fields: Vec<(u32, i32)>,
    pub(crate) tag: String,
    /// A chunk of a row set delivered in chunked-rows mode, more rows follow.
    pub(crate) partial: bool,
}

impl Rows {
    pub(crate) fn new(columns: Arc<[Column]>) -> Rows {
        Rows {
            columns,
            chunks: Vec::new(),
            nrows: 0,
            pending: 0,
            fields: Vec::new(),
            tag: String::new(),
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
            self.chunks.push((chunk.clone(), self.nrows - self.pending));
            self.pending = 0;
        }
    }

    /// The approximate bytes this row set holds: its values and their offsets.
    pub(crate) fn data_bytes(&self) -> usize {
        let values: usize = self
            .fields
            .iter()
            .map(|&(_, len)| len.max(0) as usize)
            .sum();
        values + self.fields.len() * std::mem::size_of::<(u32, i32)>()
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
        if col >= ncols {
            return None;
        }
        if row >= self.len() {
            return None;
        }
        let chunk = match self.chunks.as_slice() {
            [(only, _)] => only,
            chunks => {
                let after = chunks.partition_point(|&(_, first)| first as usize <= row);
                &chunks.get(after.checked_sub(1)?)?.0
            }
        };
        let (start, len) = *self.fields.get(row.checked_mul(ncols)?.checked_add(col)?)?;
        if len < 0 {
            return None;
        }
        let start = start as usize;
        chunk.get(start..start + len as usize)
    }

    /// The text value at `row`, `col`; `None` for SQL NULL (or an index out of range, or a value that is
    /// not valid UTF-8, which cannot happen with the `UTF8` client encoding pgdblink asks for).
    pub fn get(&self, row: usize, col: usize) -> Option<&str> {
        std::str::from_utf8(self.get_bytes(row, col)?).ok()
    }

    /// Whether the value is SQL NULL.
    pub fn is_null(&self, row: usize, col: usize) -> bool {
        let ncols = self.columns.len();
        match row
            .checked_mul(ncols)
            .and_then(|i| i.checked_add(col))
            .and_then(|i| self.fields.get(i))
        {
            Some(&(_, len)) => col < ncols && len < 0,
            None => false,
        }
    }

    /// The command tag: `SELECT 3`, `FETCH 4`.
    pub fn command_tag(&self) -> &str {
        &self.tag
    }

    /// Iterates over the rows.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        (0..self.len()).map(move |index| Row { rows: self, index })
    }
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for row in self.iter() {
            list.entry(&row);
        }
        list.finish()?;
        write!(f, " {:?}", self.tag)
    }
}

/// One row of a [`Rows`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    rows: &'a Rows,
    index: usize,
}

impl<'a> Row<'a> {
    /// The text value of column `col`; `None` for SQL NULL.
    pub fn get(&self, col: usize) -> Option<&'a str> {
        self.rows.get(self.index, col)
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.rows.columns.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.rows.columns.is_empty()
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

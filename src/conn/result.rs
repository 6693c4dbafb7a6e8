//! Query results: rows kept as offsets into shared receive buffers.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
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
    /// Pipeline mode: a sync point was reached (libpq's `PGRES_PIPELINE_SYNC`); no end marker
    /// follows it.
    PipelineSync,
    /// Pipeline mode: the query was skipped because an earlier one in the same pipeline failed
    /// (libpq's `PGRES_PIPELINE_ABORTED`); its end marker follows.
    PipelineAborted,
}

impl QueryResult {
    /// The command tag: the rows' tag (`SELECT 3`), the command's tag, or `""` for an empty query.
    pub fn command_tag(&self) -> &str {
        match self {
            QueryResult::Rows(rows) => rows.command_tag(),
            QueryResult::Command(tag) => tag,
            QueryResult::EmptyQuery | QueryResult::PipelineSync | QueryResult::PipelineAborted => {
                ""
            }
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
/// The values are not copied one by one out of the bytes received from the server: a `Rows` holds
/// the received buffers (reference-counted, one per read, checked for UTF-8 once as a whole) and,
/// for every field, its offset in them.
///
/// Two `Rows` are equal when their columns, values, command tags and [`is_partial`](Rows::is_partial)
/// are: how the server's bytes happened to be split into reads does not matter.
#[derive(Clone)]
pub struct Rows {
    /// Boxed: a result is moved through several queues and return values on its way to the caller,
    /// and a pointer moves for free where the whole struct would be copied each time.
    d: DataBox,
}

/// A row set's data on the heap: its box goes back to [`pool`] when the row set is dropped.
#[derive(Clone)]
struct DataBox(Option<Box<RowsData>>);

impl std::ops::Deref for DataBox {
    type Target = RowsData;

    #[inline(always)]
    fn deref(&self) -> &RowsData {
        match &self.0 {
            Some(d) => d,
            // Only `drop` takes the box.
            None => unreachable!("a row set's data taken before its drop"),
        }
    }
}

impl std::ops::DerefMut for DataBox {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut RowsData {
        match &mut self.0 {
            Some(d) => d,
            None => unreachable!("a row set's data taken before its drop"),
        }
    }
}

impl Drop for DataBox {
    #[inline]
    fn drop(&mut self) {
        if let Some(data) = self.0.take() {
            pool::give(data);
        }
    }
}

/// What a [`Rows`] holds.
#[derive(Clone)]
struct RowsData {
    /// The columns: `None` only in a box kept by [`pool`] (its row set's columns released).
    cols: Option<Arc<[Column]>>,
    /// The receive buffers the rows live in, each with the index of the first row it holds (rows are
    /// appended in order, so a row lives in the last chunk whose first row is not after it).
    chunks: Chunks,
    /// Number of rows.
    nrows: u32,
    /// Rows at the end whose chunk is still the receive buffer of the current input pass.
    pending: u32,
    /// For each field (row-major), where its value starts in its row's chunk ([`NULL_FIELD`] for
    /// NULL). The value's length is the big-endian `i32` in the four bytes before it, as the server
    /// sent it: four bytes a field instead of eight.
    fields: Fields,
    /// The bytes of all values (NULLs count none).
    value_bytes: u64,
    /// The command tag, or [`Tag::Partial`] for a chunk of a row set delivered in chunked-rows
    /// mode (more rows follow).
    tag: Tag,
}

// Small enough for the allocator's fast bins (at most 120 bytes with glibc): a pipeline keeps a
// thousand results alive at once, beyond the per-thread cache.
const _: () = assert!(std::mem::size_of::<RowsData>() <= 120);

/// Rows a new row set has room for before its first growth, up to [`FIRST_FIELDS_MAX`] fields.
const FIRST_ROWS: usize = 4;
const FIRST_FIELDS_MAX: usize = 256;

/// Rows per block of [`RowsData::blocks`]: 16.
const BLOCK_SHIFT: u32 = 4;
const BLOCK_ROWS: usize = 1 << BLOCK_SHIFT;
/// The flag of [`RowsData::blocks`] for a block with a chunk boundary inside it.
const SPANS: u32 = 1 << 31;

impl MoreChunks {
    /// Extends `blocks` to every block of the `nrows` rows whose first row has a chunk (4 bytes
    /// per 16 rows).
    fn index_blocks(&mut self, nrows: u32) {
        let n = self.all.len();
        while self.blocks.len() * BLOCK_ROWS < nrows as usize {
            let first_row = self.blocks.len() * BLOCK_ROWS;
            let mut i = self.blocks.last().map_or(0, |&i| (i & !SPANS) as usize);
            while i + 1 < n
                && self
                    .all
                    .get(i + 1)
                    .is_some_and(|c| c.1 as usize <= first_row)
            {
                i += 1;
            }
            self.blocks.push(i as u32);
            let text = match self.all.get(i) {
                Some((Chunk::Text(text), _)) => text.clone(),
                _ => self.no_text.clone(),
            };
            self.texts.push(text);
        }
        // The newest chunk starting inside a block: that block spans two chunks (`attach` marks it
        // in `blocks` too), so it has no text of its own.
        if let Some(&(_, first_row)) = self.all.last()
            && !(first_row as usize).is_multiple_of(BLOCK_ROWS)
            && let Some(text) = self.texts.get_mut((first_row >> BLOCK_SHIFT) as usize)
        {
            *text = self.no_text.clone();
        }
    }
}

impl RowsData {
    /// The columns.
    #[inline(always)]
    fn columns(&self) -> &[Column] {
        self.cols.as_deref().unwrap_or_default()
    }

    /// The number of columns.
    #[inline(always)]
    fn ncols(&self) -> usize {
        self.columns().len()
    }
}

impl PartialEq for Rows {
    fn eq(&self, other: &Rows) -> bool {
        self.d.columns() == other.d.columns()
            && self.d.nrows == other.d.nrows
            && self.d.tag == other.d.tag
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| (0..a.len()).all(|col| a.get_bytes(col) == b.get_bytes(col)))
    }
}

impl Eq for Rows {}

impl Rows {
    /// An empty row set with these columns. Inlined where it is built: the usual row set (a few
    /// columns, a box kept by [`pool`]) needs only its columns set, its kept box's offsets being
    /// empty and inline already.
    #[inline(always)]
    fn new(columns: Arc<[Column]>) -> Rows {
        if columns.len() <= fields::INLINE_FIELDS
            && let Some(mut data) = pool::take()
        {
            data.cols = Some(columns);
            return Rows {
                d: DataBox(Some(data)),
            };
        }
        Rows::new_wide(columns)
    }

    /// [`new`](Rows::new) for a row set of many columns, or without a kept box.
    #[inline(never)]
    fn new_wide(columns: Arc<[Column]>) -> Rows {
        // Room for the first rows at once: most results are small, and growing a vector from
        // nothing costs more than allocating it.
        let fields = Fields::for_columns(columns.len(), FIRST_ROWS, FIRST_FIELDS_MAX);
        // Allocated first and then written: the data is built in place instead of on the stack
        // and copied.
        if let Some(mut data) = pool::take() {
            // Emptied when kept: only the columns and offsets to set.
            data.cols = Some(columns);
            data.fields = fields;
            return Rows {
                d: DataBox(Some(data)),
            };
        }
        Rows {
            d: DataBox(Some(Box::write(
                Box::new_uninit(),
                RowsData {
                    cols: Some(columns),
                    chunks: Chunks::NONE,
                    nrows: 0,
                    pending: 0,
                    fields,
                    value_bytes: 0,
                    tag: Tag::default(),
                },
            ))),
        }
    }

    /// Gives the rows received in the current input pass their chunk.
    fn attach(&mut self, chunk: &Chunk) {
        if self.d.pending > 0 {
            let d = &mut *self.d;
            let first_row = d.nrows - d.pending;
            d.chunks.push(chunk.clone(), first_row);
            d.pending = 0;
            let ncols = d.ncols();
            if let Chunks::Many(more) = &mut d.chunks {
                more.ncols = u32::try_from(ncols).unwrap_or(0);
                more.index_blocks(d.nrows);
                if !(first_row as usize).is_multiple_of(BLOCK_ROWS)
                    && let Some(block) = more.blocks.get_mut((first_row >> BLOCK_SHIFT) as usize)
                {
                    *block |= SPANS;
                }
            }
        }
    }

    /// The approximate bytes this row set holds: its values and their offsets.
    #[inline]
    fn data_bytes(&self) -> usize {
        let (blocks, texts) = self
            .d
            .chunks
            .more()
            .map_or((0, 0), |m| (m.blocks.len(), m.texts.len()));
        usize::try_from(self.d.value_bytes).unwrap_or(usize::MAX)
            + (self.d.fields.as_slice().len() + blocks) * std::mem::size_of::<u32>()
            + texts * std::mem::size_of::<Arc<String>>()
    }

    /// Whether more rows of the same row set follow in the next result (chunked-rows mode); the last
    /// chunk is not partial and carries the command tag.
    pub fn is_partial(&self) -> bool {
        matches!(self.d.tag, Tag::Partial)
    }

    /// The columns.
    pub fn columns(&self) -> &[Column] {
        self.d.columns()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.d.nrows as usize
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.d.nrows == 0
    }

    /// The raw bytes of a value; `None` for SQL NULL or an index out of range.
    #[inline(always)]
    pub fn get_bytes(&self, row: usize, col: usize) -> Option<&[u8]> {
        let d = &*self.d;
        let ncols = d.ncols();
        if col >= ncols || row >= d.nrows as usize {
            return None;
        }
        // `fields` holds `nrows * ncols` offsets, so the index cannot overflow.
        let field = *d.fields.get(row * ncols + col)?;
        self.chunk_of(row).bytes(field)
    }

    /// The receive buffer row `row` (below `nrows`) lives in: usually the text
    /// [`text_of`](Rows::text_of) finds, else [`chunk_in_blocks`](Rows::chunk_in_blocks).
    #[inline(always)]
    fn chunk_of(&self, row: usize) -> View<'_> {
        match self.text_of(row) {
            Some(text) => View::Text(text),
            None => self.chunk_in_blocks(row),
        }
    }

    /// The chunk of `row` (below `nrows`) when [`text_of`](Rows::text_of) finds none: the only
    /// chunk, or the one the row's block names. A block that spans chunks (a chunk boundary inside
    /// its [`BLOCK_ROWS`] rows) searches the few chunks it spans.
    #[inline(never)]
    fn chunk_in_blocks(&self, row: usize) -> View<'_> {
        let chunks = &self.d.chunks;
        match chunks.more() {
            None => chunks.first().view(),
            Some(more) => more.chunk_of(row).map_or(View::EMPTY, Chunk::view),
        }
    }

    /// The text value at `row`, `col`; `None` for SQL NULL (or an index out of range). Values are
    /// UTF-8: the connection refuses any other client encoding, and checks the bytes itself where the
    /// server does not (a `SQL_ASCII` database).
    ///
    /// Costs little more than reading the same value through [`iter`](Rows::iter): the bounds
    /// checks, then one load finds the row's buffer (no search, no division), and no UTF-8 check
    /// (the received bytes were checked once as a whole).
    #[inline(always)]
    pub fn get(&self, row: usize, col: usize) -> Option<&str> {
        let d = &*self.d;
        // The usual case: the row's block has a text, which holds the value. Every other case
        // (a block without one has an empty text, in which no value is found) goes out of line,
        // the one exit of the usual path.
        if let Chunks::Many(more) = &d.chunks
            && let ncols = more.ncols
            && col < ncols as usize
            && let Fields::Heap(fields) = &d.fields
            // Rows and columns are counted in `u32`: their product does not overflow.
            && let Ok(row32) = u32::try_from(row)
            && let Some(&field) = fields.get(row32 as usize * ncols as usize + col)
            && let Some(text) = more.texts.get(row >> BLOCK_SHIFT)
            && let Some(value) = text_field(text, field)
        {
            return Some(value);
        }
        self.get_other(row, col)
    }

    /// [`get`](Rows::get) but for its usual case.
    #[inline(never)]
    fn get_other(&self, row: usize, col: usize) -> Option<&str> {
        let d = &*self.d;
        let ncols = d.ncols();
        if col >= ncols {
            return None;
        }
        // `fields` holds `nrows * ncols` offsets: a row past the end has none.
        let field = *d.fields.get_at(row.checked_mul(ncols)? + col)?;
        if let Chunks::Many(more) = &d.chunks
            && let Some(text) = more.texts.get(row >> BLOCK_SHIFT)
            && let Some(value) = text_field(text, field)
        {
            return Some(value);
        }
        if field == NULL_FIELD {
            return None;
        }
        self.get_elsewhere(row, field)
    }

    /// [`get`](Rows::get) for a value its block's text does not hold: a block spanning chunks,
    /// or a raw chunk. Out of line, so that the usual path stays short.
    #[inline(never)]
    fn get_elsewhere(&self, row: usize, field: u32) -> Option<&str> {
        match &self.d.chunks {
            // One chunk (a small row set's own copy, or one receive buffer): read there at once.
            Chunks::One(chunk) => chunk.view().text(field)?.ok(),
            Chunks::Many(_) => match self.text_of(row).or_else(|| self.text_in_blocks(row)) {
                Some(text) => text_field(text, field),
                None => self.get_raw(row, field),
            },
        }
    }

    /// The text of the chunk row `row` (below `nrows`) lives in, if that chunk was checked as text
    /// whole: the row's block's text (one bounds check and one load). A text chunk is always in
    /// `Many` (see `Chunks::push`).
    #[inline(always)]
    fn text_of(&self, row: usize) -> Option<&str> {
        match &self.d.chunks {
            Chunks::Many(more) => {
                Some(more.texts.get(row >> BLOCK_SHIFT)?.as_str()).filter(|text| !text.is_empty())
            }
            Chunks::One(_) => None,
        }
    }

    /// The text of the chunk row `row` lives in when [`text_of`](Rows::text_of) does not give it
    /// (a block spanning chunks); `None` for a raw chunk. Out of line: not the usual path.
    #[inline(never)]
    fn text_in_blocks(&self, row: usize) -> Option<&str> {
        let chunks = &self.d.chunks;
        let chunk = match chunks.more() {
            None => chunks.first(),
            Some(more) => more.chunk_of(row)?,
        };
        match chunk {
            Chunk::Text(text) => Some(text),
            Chunk::Raw(_) | Chunk::Inline(..) => None,
        }
    }

    /// [`get`](Rows::get) for a row in a raw chunk: the value is checked for UTF-8 here.
    #[inline(never)]
    fn get_raw(&self, row: usize, field: u32) -> Option<&str> {
        self.chunk_in_blocks(row).text(field)?.ok()
    }

    /// Whether the value is SQL NULL.
    pub fn is_null(&self, row: usize, col: usize) -> bool {
        let ncols = self.d.ncols();
        col < ncols
            && row
                .checked_mul(ncols)
                .and_then(|i| i.checked_add(col))
                .and_then(|i| self.d.fields.get(i))
                == Some(&NULL_FIELD)
    }

    /// The command tag: `SELECT 3`, `FETCH 4`.
    pub fn command_tag(&self) -> &str {
        self.d.tag.as_str()
    }

    /// Iterates over the rows in order, walking the receive buffers alongside (no lookup per row).
    pub fn iter(&self) -> RowIter<'_> {
        let mut iter = RowIter {
            rows: self,
            index: 0,
            chunk: 0,
            view: View::EMPTY,
            chunk_end: 0,
            fields: self.d.fields.as_slice(),
            len: self.len(),
            ncols: self.d.ncols(),
        };
        iter.enter_chunk(0);
        iter
    }

    /// Row `row`, or `None` past the end.
    pub fn row(&self, row: usize) -> Option<Row<'_>> {
        if row >= self.len() {
            return None;
        }
        let ncols = self.d.ncols();
        let at = row.checked_mul(ncols)?;
        Some(Row {
            chunk: self.chunk_of(row),
            fields: self.d.fields.as_slice().get(at..at.checked_add(ncols)?)?,
            rows: self,
        })
    }

    /// The index of the first column named exactly `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.d.columns().iter().position(|c| c.name == name)
    }

    /// The value at `row`, `col` converted to `T` ([`FromText`](super::FromText)): `Ok(None)` for
    /// SQL NULL, an error with the server's SQLSTATE and text for a value `T`'s PostgreSQL type
    /// does not accept (`22P02 invalid input syntax for type integer: "abc"`), and libpq's text
    /// (no SQLSTATE) for an index out of range: `row number 7 is out of range 0..2`, `column
    /// number 5 is out of range 0..1`. `&str` borrows the received bytes; numbers are read without
    /// allocating.
    ///
    /// ```
    /// use pgdblink::conn::{Connection, PollResult, StartupConfig};
    ///
    /// let mut conn = Connection::new(StartupConfig::builder("alice", "db1", "nonce").build());
    /// conn.consume_output(conn.pending_output().len());
    /// conn.handle_input(b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I");
    /// conn.send_query("SELECT 1").unwrap();
    /// // The server: one int4 column `?column?`, one row holding `1`.
    /// conn.handle_input(b"T\0\0\0\x21\0\x01?column?\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0");
    /// conn.handle_input(b"D\0\0\0\x0b\0\x01\0\0\0\x011C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I");
    /// let PollResult::Ready(Ok(result)) = conn.poll_result() else { panic!() };
    /// let rows = result.rows().unwrap();
    ///
    /// assert_eq!(rows.get_as::<i32>(0, 0).unwrap(), Some(1));
    /// assert_eq!(rows.get_as::<&str>(0, 0).unwrap(), Some("1"));
    /// assert_eq!(rows.get_as::<bool>(0, 0).unwrap(), Some(true)); // as '1'::boolean
    /// let e = rows.get_as::<i32>(0, 5).unwrap_err();
    /// assert_eq!(e.message(), "column number 5 is out of range 0..0");
    /// assert_eq!(e.code(), None);
    /// let e = rows.get_as::<i32>(7, 0).unwrap_err();
    /// assert_eq!(e.message(), "row number 7 is out of range 0..0");
    /// ```
    pub fn get_as<'a, T: super::FromText<'a>>(
        &'a self,
        row: usize,
        col: usize,
    ) -> Result<Option<T>, Error> {
        if row >= self.len() {
            return Err(super::types::row_out_of_range(row, self.len()));
        }
        let columns = self.columns();
        let Some(column) = columns.get(col) else {
            return Err(super::types::column_out_of_range(col, columns.len()));
        };
        let field = self.d.fields.get(row * columns.len() + col).copied();
        from_field(field.and_then(|f| self.chunk_of(row).text(f)), column)
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = Row<'a>;
    type IntoIter = RowIter<'a>;

    fn into_iter(self) -> RowIter<'a> {
        self.iter()
    }
}

/// The receive buffers a row set spans, each with the index of its first row: most row sets fit in
/// one, kept inline (no allocation, and a small [`RowsData`]); more behind one pointer.
#[derive(Clone)]
enum Chunks {
    /// The one chunk of row 0 on ([`Chunks::NONE`] until rows are attached).
    One(Chunk),
    /// More than one chunk: every chunk and the block tables.
    Many(Box<MoreChunks>),
}

/// The chunks of a row set in more than one.
#[derive(Clone)]
struct MoreChunks {
    /// Every chunk (the first again too), with its first row.
    all: Vec<(Chunk, u32)>,
    /// For every block of [`BLOCK_ROWS`] rows, the index of the chunk holding the block's first
    /// row, with [`SPANS`] set when a later chunk starts inside the block, so that finding a row's
    /// chunk is a shift, a load and a test.
    blocks: Vec<u32>,
    /// For every block, the text of its chunk when the block lies whole in one chunk checked as
    /// text ([`Chunk::Text`]), else `None`: what [`Rows::get`] reads a row's buffer from (8 bytes
    /// per [`BLOCK_ROWS`] rows); `no_text` (empty) for a block without.
    texts: Vec<Arc<String>>,
    /// The text of the blocks without one: empty (a checked chunk never is).
    no_text: Arc<String>,
    /// The row set's column count, here where [`Rows::get`] finds it without a test.
    ncols: u32,
}

impl MoreChunks {
    /// The chunk of `row`: the last, from the one the row's block names on, whose first row is not
    /// after `row` (the next one starts after it unless the block spans chunks; a chunk holds at
    /// least one row, so a block spans at most [`BLOCK_ROWS`]).
    #[inline(always)]
    fn chunk_of(&self, row: usize) -> Option<&Chunk> {
        // A row without a block (none is read before its chunk is attached) reads the first chunk.
        let entry = self.blocks.get(row >> BLOCK_SHIFT).copied().unwrap_or(0);
        let (first, later) = self.all.get((entry & !SPANS) as usize..)?.split_first()?;
        let mut chunk = &first.0;
        for (next, first_row) in later {
            if *first_row as usize > row {
                break;
            }
            chunk = next;
        }
        Some(chunk)
    }
}

impl Chunks {
    const NONE: Chunks = Chunks::One(Chunk::Inline(0, [0; chunk::INLINE_BYTES]));

    /// The chunk of row 0.
    #[inline(always)]
    fn first(&self) -> &Chunk {
        match self {
            Chunks::One(first) => first,
            Chunks::Many(more) => more.all.first().map_or(&Chunks::EMPTY, |(c, _)| c),
        }
    }

    const EMPTY: Chunk = Chunk::Inline(0, [0; chunk::INLINE_BYTES]);

    /// The chunks and block tables of a row set in more than one chunk.
    #[inline(always)]
    fn more(&self) -> Option<&MoreChunks> {
        match self {
            Chunks::One(_) => None,
            Chunks::Many(more) => Some(more),
        }
    }

    /// Chunk `i` and its first row.
    fn get(&self, i: usize) -> Option<(&Chunk, u32)> {
        match self {
            Chunks::One(first) if i == 0 => Some((first, 0)),
            Chunks::One(_) => None,
            Chunks::Many(more) => more.all.get(i).map(|(c, first_row)| (c, *first_row)),
        }
    }

    /// Adds the chunk whose first row is `first_row`: the first chunk starts at row 0, every later
    /// one after it (a chunk holds at least one row).
    fn push(&mut self, chunk: Chunk, first_row: u32) {
        match (first_row, &mut *self) {
            // A text chunk gets the block table even alone: `Rows::get` looks only there.
            (0, _) if matches!(chunk, Chunk::Text(_)) => {
                *self = Chunks::Many(Box::new(MoreChunks {
                    all: vec![(chunk, 0)],
                    blocks: Vec::new(),
                    texts: Vec::new(),
                    no_text: Arc::default(),
                    ncols: 0,
                }));
            }
            (0, _) => *self = Chunks::One(chunk),
            (_, Chunks::One(first)) => {
                let first = std::mem::replace(first, Chunks::EMPTY);
                *self = Chunks::Many(Box::new(MoreChunks {
                    all: vec![(first, 0), (chunk, first_row)],
                    blocks: Vec::new(),
                    texts: Vec::new(),
                    no_text: Arc::default(),
                    ncols: 0,
                }));
            }
            (_, Chunks::Many(more)) => more.all.push((chunk, first_row)),
        }
    }
}

/// A command tag, inline when short (`SELECT 1`, `INSERT 0 5`: no allocation), else on the heap.
#[derive(Clone)]
enum Tag {
    /// The first `u8` bytes of the array (the bytes after them are never read).
    Inline(u8, [u8; TAG_INLINE]),
    /// Behind a thin pointer, which keeps the tag at 16 bytes.
    Heap(Box<Box<str>>),
    /// No tag: a partial row set of chunked-rows mode (kept here rather than in a flag of its own,
    /// which would make [`RowsData`] too large for the allocator's fast bins).
    Partial,
}

const TAG_INLINE: usize = 14;

impl Default for Tag {
    fn default() -> Tag {
        Tag::Inline(0, [0; TAG_INLINE])
    }
}

impl Tag {
    fn new(text: &str) -> Tag {
        match text.len() {
            n if n <= TAG_INLINE => {
                let mut bytes = [0; TAG_INLINE];
                bytes[..n].copy_from_slice(text.as_bytes());
                Tag::Inline(n as u8, bytes)
            }
            _ => Tag::Heap(Box::new(text.into())),
        }
    }

    /// An inline tag of ASCII `bytes`; `None` when they are longer or not all ASCII.
    #[inline]
    fn ascii(bytes: &[u8]) -> Option<Tag> {
        let n = bytes.len();
        if n > TAG_INLINE || !bytes.iter().all(u8::is_ascii) {
            return None;
        }
        let mut inline = [0; TAG_INLINE];
        inline[..n].copy_from_slice(bytes);
        Some(Tag::Inline(n as u8, inline))
    }

    /// Makes this tag, still the empty default, the one of the ASCII bytes `bytes` begins
    /// with, `len` of them: written in place when it fits, as a copy of the first [`TAG_INLINE`]
    /// bytes when `bytes` has them (a copy of a fixed size is a few moves, not a call).
    #[inline(always)]
    fn set_ascii(&mut self, bytes: &[u8], len: usize) {
        let Some(tag) = bytes.get(..len) else {
            return;
        };
        match self {
            Tag::Inline(n @ 0, inline) if len <= TAG_INLINE => {
                match bytes.first_chunk::<TAG_INLINE>() {
                    Some(window) => *inline = *window,
                    // Out of line: merged with the copy above, it made that one a call too.
                    None => copy_tag(inline, tag),
                }
                *n = len as u8;
            }
            _ => *self = Tag::from_ascii(tag),
        }
    }

    /// The tag of ASCII `bytes`.
    #[inline]
    fn from_ascii(bytes: &[u8]) -> Tag {
        let n = bytes.len();
        if n > TAG_INLINE {
            return Tag::Heap(Box::new(String::from_utf8_lossy(bytes).into()));
        }
        let mut inline = [0; TAG_INLINE];
        inline[..n].copy_from_slice(bytes);
        Tag::Inline(n as u8, inline)
    }

    /// The tag's bytes: `None` for [`Tag::Partial`].
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Tag::Inline(n, bytes) => bytes.get(..*n as usize),
            Tag::Heap(text) => Some(text.as_bytes()),
            Tag::Partial => None,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` or ASCII whole, so always valid.
            Tag::Inline(n, bytes) => std::str::from_utf8(&bytes[..*n as usize]).unwrap_or(""),
            Tag::Heap(text) => text,
            Tag::Partial => "",
        }
    }
}

/// Copies `tag` (at most [`TAG_INLINE`] bytes) to the start of `inline`.
#[cold]
#[inline(never)]
fn copy_tag(inline: &mut [u8; TAG_INLINE], tag: &[u8]) {
    if let Some(to) = inline.get_mut(..tag.len()) {
        to.copy_from_slice(tag);
    }
}

impl PartialEq for Tag {
    fn eq(&self, other: &Tag) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Tag {}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for row in self.iter() {
            list.entry(&row);
        }
        list.finish()?;
        write!(f, " {:?}", self.d.tag.as_str())
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

mod builder;
mod chunk;
mod fields;
mod outbox;
mod pool;
mod row;
#[cfg(test)]
mod tests;

pub(super) use builder::RowsBuilder;
use row::from_field;
pub use row::{Row, RowIter};

pub(super) use chunk::{Chunk, Mirror, TEXT_MIN};
use chunk::{View, field_bytes, text_field};
use fields::Fields;
pub(super) use outbox::{Outbox, Output};

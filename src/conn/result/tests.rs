//! Tests of row sets: chunk lookup, iteration, tags, access by name, equality, the UTF-8 error.

use super::builder::invalid_utf8;
use super::*;
use crate::protocol::backend::Offsets;

/// A row set of `sizes.len()` chunks, chunk `i` holding `sizes[i]` rows of one text column whose
/// value is the row's number; every third value is NULL.
fn chunked_rows(sizes: &[usize]) -> Rows {
    chunked_rows_as(sizes, |_| false)
}

/// [`chunked_rows`], chunk `i` checked as text ([`Chunk::Text`]) when `text(i)`, else raw.
fn chunked_rows_as(sizes: &[usize], text: impl Fn(usize) -> bool) -> Rows {
    let mut rows = Rows::new(Arc::from(vec![Column::new("n", 25)]));
    for (i, &size) in sizes.iter().enumerate() {
        let mut chunk = Vec::new();
        for _ in 0..size {
            let n = rows.d.nrows;
            // Some bytes before each field, as a DataRow's header would be, then its length.
            chunk.extend_from_slice(b"hdr");
            if n % 3 == 2 {
                // A checked chunk has spaces for a NULL's length (-1), as `Chunk::take` writes.
                chunk.extend_from_slice(match text(i) {
                    true => b"    ",
                    false => b"\xff\xff\xff\xff",
                });
                rows.d.fields.push(NULL_FIELD);
            } else {
                let text = n.to_string();
                chunk.extend_from_slice(&(text.len() as i32).to_be_bytes());
                rows.d.fields.push(chunk.len() as u32);
                rows.d.value_bytes += text.len() as u64;
                chunk.extend_from_slice(text.as_bytes());
            }
            rows.d.nrows += 1;
            rows.d.pending += 1;
        }
        // Lengths below 0x80 are packed as they are sent: the chunk is ASCII.
        let chunk = match text(i) {
            true => Chunk::Text(Arc::new(String::from_utf8(chunk).expect("ASCII"))),
            false => Chunk::Raw(bytes::Bytes::from(chunk)),
        };
        rows.attach(&chunk);
    }
    rows
}

/// Every row of `rows` read back through each accessor, in order, backwards and scattered.
fn assert_reads_back(rows: &Rows, what: &str) {
    let at = |row: usize| format!("{what} row {row}");
    for row in (0..rows.len()).chain((0..rows.len()).rev().step_by(7)) {
        let want = expected(row);
        assert_eq!(rows.get(row, 0).map(str::to_owned), want, "{}", at(row));
        assert_eq!(
            rows.get_bytes(row, 0),
            want.as_deref().map(str::as_bytes),
            "{}",
            at(row)
        );
        assert_eq!(rows.is_null(row, 0), want.is_none(), "{}", at(row));
        let by_row = rows.row(row).map(|r| r.get(0).map(str::to_owned));
        assert_eq!(by_row, Some(want.clone()), "{}", at(row));
        let typed = rows.get_as::<&str>(row, 0).expect("in range");
        assert_eq!(typed.map(str::to_owned), want, "{}", at(row));
    }
    let read: Vec<_> = rows.iter().map(|r| r.get(0).map(str::to_owned)).collect();
    assert_eq!(
        read,
        (0..rows.len()).map(expected).collect::<Vec<_>>(),
        "{what}"
    );
    assert_eq!(rows.get(rows.len(), 0), None, "{what}");
    assert_eq!(rows.get(usize::MAX, 0), None, "{what}");
    assert_eq!(rows.get(0, 1), None, "{what}");
    assert!(rows.row(rows.len()).is_none(), "{what}");
}

fn expected(row: usize) -> Option<String> {
    (row % 3 != 2).then(|| row.to_string())
}

#[test]
fn random_access_finds_the_right_chunk_for_even_and_uneven_chunks() {
    // Blocks of 16 rows: inside one chunk, spanning two, spanning dozens (one row a chunk), a chunk
    // boundary exactly at a block boundary (64-row cases: also 16-row ones).
    let cases: [&[usize]; 9] = [
        &[10],
        &[5, 5, 5, 5],
        &[1, 1, 1, 200, 1, 1],
        &[300, 1, 1, 1, 1, 1, 1, 1, 1],
        &[1, 0, 7, 0, 0, 90, 2],
        &[64; 40],
        &[1; 300],
        &[63, 1, 64, 65, 2, 128, 1],
        &[700, 700, 3],
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
fn random_access_reads_text_and_raw_chunks_at_block_boundaries() {
    // Chunk boundaries exactly at a block boundary, one row before and after it, the last row of
    // a block alone in its chunk, a block spanning three chunks, a last block left partial.
    let cases: [&[usize]; 8] = [
        &[200],
        &[64, 64, 64],
        &[63, 1, 64, 65, 2, 128, 1],
        &[65, 63, 1, 127],
        &[128, 10, 10, 10, 100],
        &[1; 130],
        &[700, 700, 3],
        &[],
    ];
    // Which chunks are checked as text: all, none, the even ones, the odd ones.
    let kinds = ["text", "raw", "even chunks text", "odd chunks text"];
    for sizes in cases {
        for (k, kind) in kinds.iter().enumerate() {
            let rows = chunked_rows_as(sizes, |i| match k {
                0 => true,
                1 => false,
                _ => i % 2 == k % 2,
            });
            assert_eq!(rows.len(), sizes.iter().sum::<usize>());
            assert_reads_back(&rows, &format!("{kind} {sizes:?}"));
        }
    }
}

#[test]
fn a_block_has_its_text_only_when_it_lies_whole_in_one_text_chunk() {
    let rows = chunked_rows_as(&[64, 64, 10, 54, 100, 28], |i| i != 4);
    // Blocks of 16 rows: [0, 64) chunk 0; [64, 128) chunk 1; [128, 144) chunks 2 and 3;
    // [144, 192) chunk 3; [192, 288) chunk 4 (raw); [288, 304) chunks 4 and 5; [304, 320) chunk 5.
    let more = rows.d.chunks.more().expect("several chunks");
    let has_text: Vec<bool> = more.texts.iter().map(|t| !t.is_empty()).collect();
    let expected: Vec<bool> = [(8, true), (1, false), (3, true), (7, false), (1, true)]
        .iter()
        .flat_map(|&(n, text)| std::iter::repeat_n(text, n))
        .collect();
    assert_eq!(has_text, expected);
    assert_reads_back(&rows, "mixed");
    // A row set in one raw chunk needs no block table: the chunk is read directly. One text
    // chunk has the table, which `get` reads texts from.
    for text in [true, false] {
        let one = chunked_rows_as(&[300], |_| text);
        assert_eq!(one.d.chunks.more().is_some(), text);
        assert_reads_back(&one, &format!("one chunk, text {text}"));
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
        rows.d.tag = Tag::new(&text);
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

#[test]
fn rows_by_index_and_columns_by_name() {
    let mut rows = chunked_rows(&[2, 3]);
    rows.d.cols = Some(Arc::from(vec![Column::new("n", 25)]));
    assert_eq!(rows.column_index("n"), Some(0));
    assert_eq!(rows.column_index("N"), None);
    let row = rows.row(3).expect("row 3");
    assert_eq!(row.get(0), Some("3"));
    assert_eq!(row.get_by_name("n"), Some("3"));
    assert_eq!(row.get_by_name("missing"), None);
    assert_eq!(row.columns()[0].name(), "n");
    assert!(rows.row(5).is_none());
    let mut seen = Vec::new();
    for row in &rows {
        seen.push(row.get(0).map(str::to_owned));
    }
    assert_eq!(seen, (0..5).map(expected).collect::<Vec<_>>());
}

#[test]
fn equality_compares_values_not_chunks() {
    let one_chunk = chunked_rows(&[9]);
    for sizes in [&[1usize; 9][..], &[4, 0, 5][..], &[8, 1][..]] {
        let other = chunked_rows(sizes);
        assert_eq!(other, one_chunk, "{sizes:?}");
    }
    assert_ne!(chunked_rows(&[8]), one_chunk);
    let mut partial = chunked_rows(&[9]);
    partial.d.tag = Tag::Partial;
    assert_ne!(partial, one_chunk);
    let mut tagged = chunked_rows(&[9]);
    tagged.d.tag = Tag::new("SELECT 9");
    assert_ne!(tagged, one_chunk);
}

#[test]
fn the_utf8_error_shows_the_bad_character_as_postgresql_does() {
    let cases: [(&[u8], &str); 4] = [
        (b"\xe9 au lait", "0xe9 0x20 0x61"),
        (b"\xe9", "0xe9"),
        (b"\xff\xfe", "0xff"),
        (b"\xf0\x9f\x98", "0xf0 0x9f 0x98"),
    ];
    for (bad, shown) in cases {
        let e = invalid_utf8(bad);
        assert_eq!(e.code(), Some("22021"));
        assert_eq!(
            e.message(),
            format!("invalid byte sequence for encoding \"UTF8\": {shown}")
        );
    }
}

//! Large results against a real PostgreSQL: streamed row sets in bounded memory, and very large single
//! values. One test binary of their own, so that the peak resident memory measured is theirs alone
//! (the tests in this file run one after another behind a lock).

use std::sync::Mutex;

use pgdblink::cluster::{Cluster, Role};
use pgdblink::{Dblink, QueryResult};
use protocol_tests::helpers::peak_rss_kib;

static SERIAL: Mutex<()> = Mutex::new(());

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

/// Streams `sql` through chunked-rows mode, calling `visit` for every row, and returns the final tag.
fn stream(db: &mut Dblink, sql: &str, mut visit: impl FnMut(&pgdblink::Rows, usize)) -> String {
    db.send_query_chunked("s", sql, 1000).unwrap();
    let mut tag = String::new();
    while let Some(result) = db.get_result("s").unwrap() {
        let QueryResult::Rows(rows) = result else {
            panic!("unexpected {result:?}")
        };
        for i in 0..rows.len() {
            visit(&rows, i);
        }
        if !rows.is_partial() {
            tag = rows.command_tag().to_owned();
        }
    }
    tag
}

#[test]
fn ten_million_rows_stream_in_bounded_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut db = Dblink::new();
    db.connect("s", &cluster().conninfo(Role::Trust)).unwrap();
    let before = peak_rss_kib();
    let mut count = 0u64;
    let mut sum = 0u64;
    let tag = stream(
        &mut db,
        "SELECT g, 'row-' || g FROM generate_series(1, 10000000) g",
        |rows, i| {
            let g: u64 = rows.get(i, 0).unwrap().parse().unwrap();
            assert_eq!(rows.get(i, 1).unwrap().strip_prefix("row-"), rows.get(i, 0));
            count += 1;
            sum += g;
        },
    );
    assert_eq!(tag, "SELECT 10000000");
    assert_eq!(count, 10_000_000);
    assert_eq!(
        sum,
        10_000_000 * 10_000_001 / 2,
        "every row exactly once, in any order"
    );
    let grown = peak_rss_kib().saturating_sub(before);
    eprintln!(
        "10M rows streamed: peak RSS {} KiB before, grew by {grown} KiB",
        before
    );
    // The whole result is about 190 MB of row data; streamed, the peak grows by a few MiB at most.
    assert!(grown < 64 * 1024, "peak RSS grew by {grown} KiB");
}

#[test]
fn hundred_megabyte_row_set_checked() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut db = Dblink::new();
    db.connect("s", &cluster().conninfo(Role::Trust)).unwrap();
    // 100,000 rows of 1,000 bytes each: row g is the letter chr(65 + g % 26) repeated.
    let mut seen = 0usize;
    let mut bytes = 0usize;
    let tag = stream(
        &mut db,
        "SELECT g, repeat(chr(65 + g % 26), 1000) FROM generate_series(1, 100000) g ORDER BY g",
        |rows, i| {
            seen += 1;
            let g: usize = rows.get(i, 0).unwrap().parse().unwrap();
            assert_eq!(g, seen, "rows in order");
            let v = rows.get_bytes(i, 1).unwrap();
            assert_eq!(v.len(), 1000);
            let letter = b'A' + (g % 26) as u8;
            assert!(v.iter().all(|&b| b == letter), "row {g} content");
            bytes += v.len();
        },
    );
    assert_eq!(tag, "SELECT 100000");
    assert_eq!(bytes, 100_000_000);
}

#[test]
fn fifty_megabyte_single_value() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut db = Dblink::new();
    db.connect("s", &cluster().conninfo(Role::Trust)).unwrap();
    let r = db
        .query("s", "SELECT repeat('abcdefghij', 5000000), 'after'")
        .unwrap();
    let rows = r.rows().unwrap();
    let v = rows.get(0, 0).unwrap();
    assert_eq!(v.len(), 50_000_000);
    assert!(v.as_bytes().chunks(10).all(|c| c == b"abcdefghij"));
    assert_eq!(rows.get(0, 1), Some("after"));
    // The connection is reusable at once.
    let r = db.query("s", "SELECT 1").unwrap();
    assert_eq!(r.rows().unwrap().get(0, 0), Some("1"));
}

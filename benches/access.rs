//! Random access against iteration: a 300,000-row result of two text columns replayed through the
//! sans-IO `Connection` in 64 KiB reads (as the driver reads), then every value read once with
//! `Rows::get(row, col)` and once through `Rows::iter()`. No sockets, no server: only the client's
//! cost of reading a value. Prints the time of each pass; for instruction counts run it under
//! callgrind and collect each pass alone:
//!
//! ```text
//! cargo bench --bench access --no-run
//! valgrind --tool=callgrind --toggle-collect='access::visit_get' target/release/deps/access-*
//! valgrind --tool=callgrind --toggle-collect='access::visit_iter' target/release/deps/access-*
//! ```

use std::hint::black_box;
use std::time::Instant;

use pgdblink::Rows;
use pgdblink::conn::{Connection, PollResult, QueryResult, StartupConfig};

const ROWS: usize = 300_000;
const READ: usize = 64 * 1024;

#[path = "shared/captured.rs"]
mod captured;

fn captured_result() -> Vec<u8> {
    captured::captured_result(ROWS, "row ")
}

fn received_rows() -> Rows {
    let mut conn = Connection::new(StartupConfig::builder("bench", "bench", "benchnonce").build());
    conn.consume_output(conn.pending_output().len());
    conn.handle_input(b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I");
    conn.send_query("SELECT g, 'row ' || g FROM generate_series(1, 300000) g")
        .unwrap();
    conn.consume_output(conn.pending_output().len());
    for read in captured_result().chunks(READ) {
        conn.handle_input(read);
    }
    match conn.poll_result() {
        PollResult::Ready(Ok(QueryResult::Rows(rows))) => rows,
        other => panic!("unexpected {other:?}"),
    }
}

/// Every value through `Rows::get(row, col)`, as a `PQgetvalue` loop reads them.
#[inline(never)]
fn visit_get(rows: &Rows) -> usize {
    let mut bytes = 0;
    let ncols = rows.columns().len();
    for row in 0..rows.len() {
        for col in 0..ncols {
            bytes += rows.get(row, col).map_or(0, str::len);
        }
    }
    bytes
}

/// Every value through `Rows::iter()` and `Row::get(col)`.
#[inline(never)]
fn visit_iter(rows: &Rows) -> usize {
    let mut bytes = 0;
    for row in rows.iter() {
        for col in 0..row.len() {
            bytes += row.get(col).map_or(0, str::len);
        }
    }
    bytes
}

fn main() {
    let rows = received_rows();
    assert_eq!(rows.len(), ROWS);
    let passes = if std::env::var_os("ACCESS_PASSES").is_some() {
        20
    } else {
        1
    };
    for (name, visit) in [
        ("get(row, col)", visit_get as fn(&Rows) -> usize),
        ("iter()", visit_iter),
    ] {
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..passes {
            bytes += black_box(visit(black_box(&rows)));
        }
        let ns = t.elapsed().as_secs_f64() * 1e9 / (passes * ROWS * 2) as f64;
        println!("{name:<14} {ns:6.2} ns a value ({bytes} bytes)");
    }
}

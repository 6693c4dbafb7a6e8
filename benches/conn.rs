//! The sans-IO connection replaying a captured result: a query's RowDescription, 100,000 DataRows of
//! two text columns, CommandComplete and ReadyForQuery, fed in 64 KiB reads (as the driver does), with
//! every value of the result visited. No sockets: this is the client's own cost per row.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pgdblink::conn::{Connection, PollResult, QueryResult, StartupConfig};

const ROWS: usize = 100_000;
const READ: usize = 64 * 1024;

#[path = "shared/captured.rs"]
mod captured;

fn captured_result() -> Vec<u8> {
    captured::captured_result(ROWS, "row-")
}

fn ready_connection() -> Connection {
    let mut conn = Connection::new(StartupConfig::builder("bench", "bench", "benchnonce").build());
    conn.consume_output(conn.pending_output().len());
    conn.handle_input(b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I");
    conn
}

fn replay(conn: &mut Connection, bytes: &[u8]) -> usize {
    conn.send_query("SELECT g, 'row-' || g FROM generate_series(1, 100000) g")
        .unwrap();
    conn.consume_output(conn.pending_output().len());
    for read in bytes.chunks(READ) {
        conn.handle_input(read);
    }
    let mut rows = 0;
    loop {
        match conn.poll_result() {
            PollResult::Ready(Ok(QueryResult::Rows(result))) => {
                for row in result.iter() {
                    black_box((row.get(0), row.get(1)));
                }
                rows += result.len();
            }
            PollResult::Done => return rows,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn bench(c: &mut Criterion) {
    let bytes = captured_result();
    let mut conn = ready_connection();
    assert_eq!(replay(&mut conn, &bytes), ROWS);
    let mut group = c.benchmark_group("conn_replay_result");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("pgdblink", |b| {
        b.iter(|| replay(&mut conn, black_box(&bytes)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

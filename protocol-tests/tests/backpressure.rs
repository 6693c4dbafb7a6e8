//! Chunked-rows backpressure through the mio driver: reading pauses while too many rows wait to be
//! taken and resumes once the caller took them, whatever the timing of the server's bytes. A scripted
//! fake server shapes the timing a real server cannot be made to produce on demand (one chunk's worth
//! of rows, a pause, the rest), and streams 256 MiB faster than the cluster would. Every wait is bounded:
//! a connection that stops reading fails the test with a deadline instead of hanging it.
//!
//! Each scenario asserts its outcome (every row and byte delivered, the tag, the chunk size), a
//! time bound on the whole (`within`) and its memory: after every result taken, the bytes the
//! connection holds stay within its results budget plus one message ([`held_within_results`]),
//! besides the general bound (`assert_conn_bounded`: all its budgets plus one message).

use std::time::Duration;

use pgdblink::conn::{Connection, MAX_QUEUED_ROW_BYTES};
use pgdblink::driver::Client;
use pgdblink::{Dblink, QueryResult};
use protocol_tests::fake_server::{
    FakeServer, Step, data_rows, select_end, text_column, trust_startup,
};
use protocol_tests::helpers::{ONE_MESSAGE, assert_conn_bounded, within};

/// The width of each row's one value.
const WIDTH: usize = 1000;
/// The chunk size asked of `send_query_chunked`.
const CHUNK: usize = 10;
/// How long one `get_result` may wait before the test calls the connection stuck.
const STALL: Duration = Duration::from_secs(10);

/// What a drained query delivered.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    /// The largest chunk.
    largest: usize,
    rows: usize,
    bytes: u64,
    tag: String,
    /// The most bytes the connection held after a result was taken.
    held: usize,
}

impl Totals {
    fn add(&mut self, result: QueryResult) {
        match result {
            QueryResult::Rows(rows) => {
                self.largest = self.largest.max(rows.len());
                self.rows += rows.len();
                self.bytes += rows
                    .iter()
                    .map(|r| r.get(0).map_or(0, str::len) as u64)
                    .sum::<u64>();
                if !rows.is_partial() {
                    self.tag = rows.command_tag().to_owned();
                }
            }
            other => self.tag = other.command_tag().to_owned(),
        }
    }
}

/// A server that starts, reads one query and sends a row description and `warmup` rows (which the
/// client takes, and which grow its receive window), pauses `pause`, sends `first` rows in one write,
/// pauses again, then sends `rest` rows and the end.
fn burst_then_rest(warmup: usize, first: usize, pause: Duration, rest: usize) -> FakeServer {
    let mut head = text_column();
    head.extend(data_rows(warmup, WIDTH));
    let mut tail = data_rows(rest, WIDTH);
    tail.extend(select_end(warmup + first + rest));
    FakeServer::single(vec![
        Step::ReadStartup,
        Step::Send(trust_startup()),
        Step::ReadMessage,
        Step::SendBuffer(8 << 20),
        Step::Send(head),
        Step::Sleep(pause),
        Step::Send(data_rows(first, WIDTH)),
        Step::Sleep(pause),
        Step::Send(tail),
        Step::ReadMessage,
    ])
}

/// A server that starts, reads one query and streams `batches` times `batch` rows, then the end.
fn fast_stream(batch: usize, batches: usize) -> FakeServer {
    let mut tail = Vec::new();
    tail.extend(select_end(batch * batches));
    FakeServer::single(vec![
        Step::ReadStartup,
        Step::Send(trust_startup()),
        Step::ReadMessage,
        Step::Send(text_column()),
        Step::SendRepeated(data_rows(batch, WIDTH), batches),
        Step::Send(tail),
        Step::ReadMessage,
    ])
}

/// The bytes `conn` holds, asserted within its results budget plus one message (back-pressure
/// keeps the queue there) and within all its budgets plus one message; returns them.
fn held_within_results(conn: &Connection, what: &str) -> usize {
    let held = assert_conn_bounded(conn, what);
    let bound = conn.budgets().results + ONE_MESSAGE;
    assert!(held <= bound, "{what} holds {held} bytes, bound {bound}");
    held
}

/// Drains a chunked query through `Client`, every wait bounded by [`STALL`], the bytes held
/// checked after each.
fn drain_client(client: &mut Client) -> Totals {
    let mut totals = Totals::default();
    loop {
        let r = client.get_result_timeout(STALL).expect("result");
        totals.held = totals
            .held
            .max(held_within_results(client.conn(), "client"));
        match r {
            None => panic!(
                "no result within {STALL:?} after {} rows: the client stopped reading",
                totals.rows
            ),
            Some(None) => return totals,
            Some(Some(r)) => totals.add(r),
        }
    }
}

/// Drains a chunked query through `Dblink` (a `Dblink` wait has no deadline of its own: the caller
/// bounds it with `within`), the bytes held checked after each result.
fn drain_dblink(db: &mut Dblink, name: &str) -> Totals {
    let mut totals = Totals::default();
    loop {
        let r = db.get_result(name).expect("result");
        let held = held_within_results(db.conn(name).expect("connection"), name);
        totals.held = totals.held.max(held);
        match r {
            Some(r) => totals.add(r),
            None => return totals,
        }
    }
}

/// The script read a startup packet, the query (`Q` with the SQL) and a Terminate.
fn assert_script(server: FakeServer, sql: &str) {
    let received = server.join().remove(0).expect("script ran");
    assert_eq!(received.len(), 3, "startup, query, terminate");
    assert_eq!(received[1][0], b'Q');
    assert!(
        received[1].windows(sql.len()).any(|w| w == sql.as_bytes()),
        "the query text"
    );
    assert_eq!(received[2], [b'X', 0, 0, 0, 4], "Terminate");
}

/// 16 MB of rows, a whole number of chunks: the client's receive window grows to hold a burst.
const WARMUP: usize = (16 << 20) / WIDTH / CHUNK * CHUNK;

/// Just enough rows for the queued chunks to reach [`MAX_QUEUED_ROW_BYTES`] with the burst's last
/// chunk (a row costs its value and a 4-byte offset): the burst's last read, short, engages
/// backpressure.
fn burst_rows() -> usize {
    MAX_QUEUED_ROW_BYTES.div_ceil(CHUNK * (WIDTH + 4)) * CHUNK
}

#[test]
fn client_resumes_after_backpressure_on_a_short_read() {
    let first = burst_rows();
    let server = burst_then_rest(WARMUP, first, Duration::from_millis(100), 500);
    let (client, totals) = within(Duration::from_secs(30), || {
        let mut client = Client::connect(&server.conninfo("")).expect("connect");
        client
            .send_query_chunked("SELECT burst", CHUNK)
            .expect("send");
        let totals = drain_client(&mut client);
        (client, totals)
    });
    eprintln!("held at most {} bytes", totals.held);
    assert_eq!(totals.rows, WARMUP + first + 500);
    assert_eq!(totals.bytes, ((WARMUP + first + 500) * WIDTH) as u64);
    assert_eq!(totals.tag, format!("SELECT {}", WARMUP + first + 500));
    assert_eq!(totals.largest, CHUNK);
    drop(client);
    assert_script(server, "SELECT burst");
}

#[test]
fn dblink_resumes_after_backpressure_on_a_short_read() {
    let first = burst_rows();
    let server = burst_then_rest(WARMUP, first, Duration::from_millis(100), 500);
    let conninfo = server.conninfo("");
    let totals = within(Duration::from_secs(30), || {
        let mut db = Dblink::new();
        db.connect("c", &conninfo).expect("connect");
        db.send_query_chunked("c", "SELECT burst", CHUNK)
            .expect("send");
        let totals = drain_dblink(&mut db, "c");
        db.disconnect("c").expect("disconnect");
        totals
    });
    assert_eq!(totals.rows, WARMUP + first + 500);
    assert_eq!(totals.bytes, ((WARMUP + first + 500) * WIDTH) as u64);
    assert_eq!(totals.tag, format!("SELECT {}", WARMUP + first + 500));
    assert_script(server, "SELECT burst");
}

/// 256 MiB of row values, in batches of 1024 rows.
const STREAM_BATCH: usize = 1024;
const STREAM_BATCHES: usize = 256 * 1024 * 1024 / (STREAM_BATCH * WIDTH);

#[test]
fn client_streams_256_mib_fast() {
    let server = fast_stream(STREAM_BATCH, STREAM_BATCHES);
    let mut client = Client::connect(&server.conninfo("")).expect("connect");
    let totals = within(Duration::from_secs(60), || {
        client
            .send_query_chunked("SELECT stream", 100)
            .expect("send");
        drain_client(&mut client)
    });
    eprintln!("held at most {} bytes", totals.held);
    let rows = STREAM_BATCH * STREAM_BATCHES;
    assert_eq!(totals.rows, rows);
    assert_eq!(totals.bytes, (rows * WIDTH) as u64);
    assert_eq!(totals.tag, format!("SELECT {rows}"));
    assert_eq!(totals.largest, 100);
    drop(client);
    assert_script(server, "SELECT stream");
}

#[test]
fn dblink_streams_256_mib_fast() {
    let server = fast_stream(STREAM_BATCH, STREAM_BATCHES);
    let conninfo = server.conninfo("");
    let totals = within(Duration::from_secs(60), || {
        let mut db = Dblink::new();
        db.connect("c", &conninfo).expect("connect");
        db.send_query_chunked("c", "SELECT stream", 100)
            .expect("send");
        let totals = drain_dblink(&mut db, "c");
        db.disconnect("c").expect("disconnect");
        totals
    });
    let rows = STREAM_BATCH * STREAM_BATCHES;
    assert_eq!(totals.rows, rows);
    assert_eq!(totals.bytes, (rows * WIDTH) as u64);
    assert_eq!(totals.tag, format!("SELECT {rows}"));
    assert_script(server, "SELECT stream");
}

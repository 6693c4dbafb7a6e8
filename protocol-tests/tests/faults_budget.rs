//! Budgets and fairness against hostile servers (issue 18): floods of every kind a server can send,
//! slow senders and a peer that stops reading, through the public `Dblink` (and `Client`) API with
//! the scripted fake server. Each scenario asserts its outcome, a memory bound (the bytes the
//! connection holds, `Connection::held_bytes`, sampled after every call; or the peak RSS of a
//! child process where the flood happens inside a blocking connect) and a time bound (deadlines
//! held within [`SLACK`]: the one place timing is asserted, generously). Floods are scaled to run
//! in well under a few seconds; the ratio of flood to budget is what matters.

use std::time::{Duration, Instant};

use pgdblink::conn::{Budgets, RESULT_TOO_LARGE_TEXT};
use pgdblink::driver::Client;
use pgdblink::{Dblink, Error, QueryResult};
use protocol_tests::fake_server::{
    FakeServer, Step, data_rows, select_1_result, select_end, text_column, trust_startup,
};
use protocol_tests::helpers::{child_reported, peak_rss_kib, run_test_in_child};
use protocol_tests::wire;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The budget every queue gets in these tests.
const BUDGET: usize = 64 * KIB;
/// What a connection may hold beyond one queue's budget and one message: the parameters of the
/// startup, the per-entry costs, a few columns.
const EXTRA: usize = 8 * KIB;
/// How late a deadline may be.
const SLACK: Duration = Duration::from_millis(200);

fn budgets() -> Budgets {
    Budgets::uniform(BUDGET)
}

fn dblink() -> Dblink {
    let mut db = Dblink::new();
    db.set_budgets(budgets());
    db
}

/// The bytes connection `name` holds, asserted within `bound`; returns them.
fn held(db: &Dblink, name: &str, bound: usize) -> usize {
    let n = db.conn(name).map_or(0, |c| c.held_bytes());
    assert!(n <= bound, "{name} holds {n} bytes, bound {bound}");
    n
}

/// `bytes` as one message of type `tag`.
fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::message(&mut out, tag, body);
    out
}

fn notice(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::error_fields(
        &mut out,
        b'N',
        &[(b'S', "NOTICE"), (b'C', "00000"), (b'M', text)],
    );
    out
}

fn error_response(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::error_fields(
        &mut out,
        b'E',
        &[(b'S', "ERROR"), (b'C', "XX000"), (b'M', text)],
    );
    out
}

fn command_complete(tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::command_complete(&mut out, tag);
    out
}

fn ready() -> Vec<u8> {
    let mut out = Vec::new();
    wire::ready_for_query(&mut out, b'I');
    out
}

fn notification(payload: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::notification(&mut out, 9, "chan", payload);
    out
}

/// A session that starts, reads one query, sends `head`, then `unit` `times` times, then `tail`,
/// and waits for the client to close.
fn flood(head: Vec<u8>, unit: Vec<u8>, times: usize, tail: Vec<u8>) -> FakeServer {
    FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::Expect(b'Q'),
        Step::Send(head),
        Step::SendRepeated(unit, times),
        Step::Send(tail),
        Step::Close,
    ])
}

/// A session that starts and then sends `unit` `times` times with nothing asked (idle).
fn idle_flood(unit: Vec<u8>, times: usize) -> FakeServer {
    FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::SendRepeated(unit, times),
        Step::Close,
    ])
}

/// A session answering `n` queries with `SELECT 1`, each after `delay`.
fn quick(n: usize, delay: Duration) -> FakeServer {
    let mut script = vec![Step::ExpectStartup, Step::Send(trust_startup())];
    for _ in 0..n {
        script.extend([
            Step::Expect(b'Q'),
            Step::Sleep(delay),
            Step::Send(select_1_result()),
        ]);
    }
    script.push(Step::Close);
    FakeServer::single(script)
}

/// Takes every result of `name` up to the end marker, checking the held bytes after each call;
/// returns the results (rows counted, not kept) and the largest held.
fn drain_bounded(
    db: &mut Dblink,
    name: &str,
    bound: usize,
) -> (Vec<Result<Summary, Error>>, usize) {
    let mut out = Vec::new();
    let mut peak = held(db, name, bound);
    loop {
        let r = db.get_result(name);
        peak = peak.max(held(db, name, bound));
        match r {
            Ok(None) => break,
            Ok(Some(r)) => out.push(Ok(Summary::of(&r))),
            Err(e) => out.push(Err(e)),
        }
    }
    (out, peak)
}

/// What a result was, without its rows.
#[derive(Debug, PartialEq)]
struct Summary {
    rows: usize,
    bytes: usize,
    partial: bool,
    tag: String,
}

impl Summary {
    fn of(r: &QueryResult) -> Summary {
        match r.rows() {
            Some(rows) => Summary {
                rows: rows.len(),
                bytes: rows
                    .iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|c| row.get_bytes(c).map_or(0, <[u8]>::len))
                            .sum::<usize>()
                    })
                    .sum(),
                partial: rows.is_partial(),
                tag: rows.command_tag().to_owned(),
            },
            None => Summary {
                rows: 0,
                bytes: 0,
                partial: false,
                tag: r.command_tag().to_owned(),
            },
        }
    }
}

/// Totals of a drained row set: rows, value bytes, the last tag.
fn totals(results: &[Result<Summary, Error>]) -> (usize, usize, String) {
    let mut rows = 0;
    let mut bytes = 0;
    let mut tag = String::new();
    for r in results {
        let s = r.as_ref().expect("no error");
        rows += s.rows;
        bytes += s.bytes;
        tag.clone_from(&s.tag);
    }
    (rows, bytes, tag)
}

// ----- chunked and single-row mode -------------------------------------------------------------

/// The 1 GiB stream with 1 MiB of back-pressure, scaled: 64 MB of 1000-byte rows through
/// a 64 KiB budget in single-row mode, taken one by one.
#[test]
fn budget_chunked_stream_of_64_mb_holds_one_budget() {
    let n = 64_000;
    let server = flood(
        text_column(),
        data_rows(1000, 1000),
        n / 1000,
        select_end(n),
    );
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query_chunked("a", "SELECT v", 1).expect("sent");
    let (results, peak) = drain_bounded(&mut db, "a", BUDGET + 1011 + EXTRA);
    assert_eq!(totals(&results), (n, n * 1000, format!("SELECT {n}")));
    assert!(peak > 0);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// Rows with zero columns are 7 bytes on the wire and hold no values: they count all the same.
#[test]
fn budget_zero_column_rows_count_whole() {
    let n = 300_000;
    let mut head = Vec::new();
    wire::row_description(&mut head, &[]);
    let server = flood(
        head,
        msg(b'D', &[0, 0]).repeat(1000),
        n / 1000,
        select_end(n),
    );
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query_chunked("a", "SELECT", 100).expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", BUDGET + EXTRA);
    assert_eq!(totals(&results), (n, 0, format!("SELECT {n}")));
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// Rows of one empty value (11 bytes each) in single-row mode.
#[test]
fn budget_empty_value_rows_count_whole() {
    let n = 200_000;
    let server = flood(text_column(), data_rows(1000, 0), n / 1000, select_end(n));
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query_chunked("a", "SELECT ''", 1).expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", BUDGET + EXTRA);
    assert_eq!(results.len(), n + 1, "one row a result, then the tag");
    assert_eq!(totals(&results), (n, 0, format!("SELECT {n}")));
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// A chunk size larger than the budget allows: chunks are handed over early, at the budget.
#[test]
fn budget_large_chunk_size_hands_over_at_the_budget() {
    let n = 20_000;
    let server = flood(text_column(), data_rows(1000, 500), n / 1000, select_end(n));
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query_chunked("a", "SELECT v", 1_000_000)
        .expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", BUDGET + 511 + EXTRA);
    let largest = results
        .iter()
        .map(|r| r.as_ref().unwrap().bytes)
        .max()
        .unwrap();
    assert!(largest <= BUDGET, "a chunk of {largest} value bytes");
    assert!(results.len() > n * 511 / BUDGET, "{} chunks", results.len());
    assert_eq!(totals(&results), (n, n * 500, format!("SELECT {n}")));
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// Read-ahead made observable: the caller polls `is_busy` a while without taking results (the
/// connection reads ahead up to its budget, then stops), then takes them one by one; the bound
/// holds in both phases.
#[test]
fn budget_read_ahead_while_polling_is_busy_then_taking() {
    let n = 20_000;
    let server = flood(
        text_column(),
        data_rows(1000, 1000),
        n / 1000,
        select_end(n),
    );
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query_chunked("a", "SELECT v", 1).expect("sent");
    let bound = BUDGET + 1011 + EXTRA;
    let mut peak = 0;
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        let _ = db.is_busy("a").expect("is_busy");
        peak = peak.max(held(&db, "a", bound));
    }
    assert!(!db.is_busy("a").unwrap(), "results are ready");
    assert!(peak >= BUDGET, "read ahead up to the budget ({peak})");
    let (results, _) = drain_bounded(&mut db, "a", bound);
    assert_eq!(totals(&results), (n, n * 1000, format!("SELECT {n}")));
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// The same with whole results: a multi-statement answer of many small row sets.
#[test]
fn budget_read_ahead_of_whole_results_while_polling() {
    let n = 50_000;
    let server = flood(
        Vec::new(),
        select_1_result()[..select_1_result().len() - 6].to_vec(),
        n,
        ready(),
    );
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT 1; SELECT 1").expect("sent");
    let bound = BUDGET + EXTRA;
    for _ in 0..200 {
        let _ = db.is_busy("a").expect("is_busy");
        held(&db, "a", bound);
    }
    let (results, _) = drain_bounded(&mut db, "a", bound);
    assert_eq!(results.len(), n);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().tag == "SELECT 1")
    );
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// A flood of CommandComplete messages in one simple query.
#[test]
fn budget_command_complete_flood() {
    let n = 200_000;
    let server = flood(
        Vec::new(),
        command_complete("INSERT 0 1").repeat(1000),
        n / 1000,
        ready(),
    );
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "INSERT").expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", BUDGET + EXTRA);
    assert_eq!(results.len(), n);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// The same in chunked mode, between row sets.
#[test]
fn budget_command_complete_flood_in_chunked_mode() {
    let n = 100_000;
    let mut head = text_column();
    head.extend(data_rows(3, 10));
    head.extend(command_complete("SELECT 3"));
    let server = flood(
        head,
        command_complete("UPDATE 0").repeat(1000),
        n / 1000,
        ready(),
    );
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query_chunked("a", "SELECT v; UPDATE", 2)
        .expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", BUDGET + EXTRA);
    assert_eq!(results.len(), 2 + n);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// Notices between the rows of a chunked stream: both queues stay bounded.
#[test]
fn budget_notices_between_chunked_rows() {
    let n = 20_000;
    let mut unit = data_rows(1, 200);
    unit.extend(notice(&"n".repeat(200)));
    let server = flood(text_column(), unit.repeat(100), n / 100, select_end(n));
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query_chunked("a", "SELECT v", 1).expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", 2 * BUDGET + EXTRA);
    assert_eq!(totals(&results), (n, n * 200, format!("SELECT {n}")));
    let c = db.conn("a").unwrap();
    assert!(c.notices_dropped() > 0);
    let kept = db.take_notices("a").unwrap();
    assert_eq!(
        kept.len() as u64 + db.conn("a").unwrap().notices_dropped(),
        n as u64
    );
    db.disconnect("a").expect("disconnect");
    server.finish();
}

// ----- whole results ---------------------------------------------------------------------------

/// `max_result_bytes`: a longer whole row set fails its statement with 54000; its rows are read and
/// dropped, and the connection stays usable.
#[test]
fn budget_max_result_bytes_fails_the_statement_and_keeps_the_connection() {
    let n = 5_000;
    let server = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::Expect(b'Q'),
        Step::Send(text_column()),
        Step::SendRepeated(data_rows(100, 1000), n / 100),
        Step::Send(select_end(n)),
        Step::Expect(b'Q'),
        Step::Send(select_1_result()),
        Step::Close,
    ]);
    let mut db = Dblink::new();
    let mut b = budgets();
    b.max_result_bytes = MIB;
    db.set_budgets(b);
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT v").expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", MIB + BUDGET + EXTRA);
    assert_eq!(results.len(), 1);
    let e = results[0].as_ref().expect_err("too large");
    assert_eq!(e.code(), Some("54000"));
    assert_eq!(
        e.message(),
        format!("{RESULT_TOO_LARGE_TEXT} (1048576 bytes)")
    );
    assert!(!e.is_closed());
    let r = db.query("a", "SELECT 1").expect("usable");
    assert_eq!(r.rows().unwrap().get(0, 0), Some("1"));
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// Without `max_result_bytes`, libpq's behaviour: the whole row set is delivered, as large as the
/// server makes it (and no more is held beside it).
#[test]
fn budget_whole_result_without_limit_is_delivered_whole() {
    let n = 4_000;
    let server = flood(text_column(), data_rows(100, 1000), n / 100, select_end(n));
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT v").expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", n * 1011 + BUDGET + EXTRA);
    assert_eq!(results.len(), 1);
    assert_eq!(totals(&results), (n, n * 1000, format!("SELECT {n}")));
    db.disconnect("a").expect("disconnect");
    server.finish();
}

// ----- notices, notifications, errors -------------------------------------------------------

/// Notices of 1 MiB each: bytes are counted, not notices; one larger than the budget is kept alone.
#[test]
fn budget_one_mib_notices_keep_at_most_one() {
    let n = 40;
    let server = flood(Vec::new(), notice(&"x".repeat(MIB)), n, select_1_result());
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT 1").expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", MIB + BUDGET + EXTRA);
    assert_eq!(results.len(), 1);
    let kept = db.take_notices("a").unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(db.conn("a").unwrap().notices_dropped(), n as u64 - 1);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// Many small notices: the oldest are dropped, the newest kept, the count says how many went.
#[test]
fn budget_small_notices_drop_the_oldest() {
    let n = 100_000;
    let server = flood(
        Vec::new(),
        notice("hello").repeat(1000),
        n / 1000,
        select_1_result(),
    );
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT 1").expect("sent");
    drain_bounded(&mut db, "a", BUDGET + EXTRA);
    let kept = db.take_notices("a").unwrap();
    assert!(kept.len() * 64 <= BUDGET && !kept.is_empty());
    assert_eq!(
        kept.len() as u64 + db.conn("a").unwrap().notices_dropped(),
        n as u64
    );
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// Notifications on an idle connection nobody takes: bounded, oldest dropped and counted.
#[test]
fn budget_notifications_on_an_idle_connection() {
    let n = 200_000;
    let server = idle_flood(notification("payload").repeat(1000), n / 1000);
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    let until = Instant::now() + Duration::from_secs(5);
    while db.conn("a").unwrap().notifications_dropped() < n as u64 / 2 {
        assert!(Instant::now() < until, "the flood was not read");
        assert!(!db.is_busy("a").unwrap());
        held(&db, "a", BUDGET + EXTRA);
    }
    let kept = db.get_notify("a").unwrap();
    assert!(!kept.is_empty() && kept.len() * 64 <= BUDGET);
    assert!(
        kept.iter()
            .all(|n| n.channel == "chan" && n.payload == "payload")
    );
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// ErrorResponses with nothing in flight are notices (libpq): `error_message` stays empty and the
/// notice queue bounded.
#[test]
fn budget_errors_while_idle_are_notices() {
    let n = 100_000;
    let server = idle_flood(error_response("spurious").repeat(1000), n / 1000);
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    let until = Instant::now() + Duration::from_secs(5);
    while db.conn("a").unwrap().notices_dropped() < n as u64 / 2 {
        assert!(Instant::now() < until, "the flood was not read");
        let _ = db.is_busy("a").unwrap();
        held(&db, "a", BUDGET + EXTRA);
    }
    assert_eq!(db.error_message("a").unwrap().unwrap_or_default(), "");
    let kept = db.take_notices("a").unwrap();
    assert!(!kept.is_empty());
    assert_eq!(kept[0].severity(), Some("ERROR"));
    assert_eq!(kept[0].message(), "spurious");
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// ErrorResponses in a query: each is a result, and `error_message` keeps only the newest within
/// its budget; the next query clears it.
#[test]
fn budget_errors_in_a_query_bound_the_error_message() {
    let n = 20_000;
    let server = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::Expect(b'Q'),
        Step::SendRepeated(error_response("again").repeat(100), n / 100),
        Step::Send(ready()),
        Step::Expect(b'Q'),
        Step::Send(select_1_result()),
        Step::Expect(b'X'),
    ]);
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT").expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", 2 * BUDGET + EXTRA);
    assert_eq!(results.len(), n);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.message() == "again"))
    );
    let text = db.error_message("a").unwrap().unwrap_or_default();
    assert!(text.len() <= BUDGET, "{}", text.len());
    assert!(
        text.ends_with("ERROR:  again"),
        "{:?}",
        &text[text.len() - 40..]
    );
    assert!(db.conn("a").unwrap().error_bytes_dropped() > 0);
    db.query("a", "SELECT 1").expect("usable");
    assert_eq!(db.error_message("a").unwrap().unwrap_or_default(), "");
    db.disconnect("a").expect("disconnect");
    server.finish();
}

// ----- column descriptions ---------------------------------------------------------------------

fn wide_description(prefix: &str) -> Vec<u8> {
    let names: Vec<String> = (0..1600).map(|i| format!("{prefix}{i:04}")).collect();
    let columns: Vec<(&str, u32)> = names.iter().map(|n| (n.as_str(), 25)).collect();
    let mut out = Vec::new();
    wire::row_description(&mut out, &columns);
    out
}

/// A RowDescription of 1,600 columns repeated (each with an empty row set): one result at a time.
#[test]
fn budget_wide_row_description_repeated() {
    let n = 500;
    let mut unit = wide_description("c");
    unit.extend(command_complete("SELECT 0"));
    let server = flood(Vec::new(), unit, n, ready());
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT *").expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", BUDGET + 1600 * 64 + EXTRA);
    assert_eq!(results.len(), n);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// The same with descriptions that differ each time (no column cache to share).
#[test]
fn budget_wide_row_descriptions_that_differ() {
    let n = 200;
    let mut unit = wide_description("a");
    unit.extend(command_complete("SELECT 0"));
    unit.extend(wide_description("b"));
    unit.extend(command_complete("SELECT 0"));
    let server = flood(Vec::new(), unit, n / 2, ready());
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT *").expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", BUDGET + 1600 * 64 + EXTRA);
    assert_eq!(results.len(), n);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

// ----- outgoing data -------------------------------------------------------------------------------

/// A CopyInResponse flood answered with CopyFails the server never reads: the connection stops
/// processing its requests; `wait` keeps its deadline; the memory stays bounded.
#[test]
fn budget_copy_in_response_flood_without_reading() {
    let server = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::Expect(b'Q'),
        Step::SendRepeated(msg(b'G', &[0, 0, 0]).repeat(1000), 10_000),
    ]);
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "COPY t FROM STDIN").expect("sent");
    for _ in 0..5 {
        let d = Duration::from_millis(200);
        let t = Instant::now();
        assert!(db.wait(Some(d)).unwrap().is_empty());
        assert!(t.elapsed() <= d + SLACK, "wait took {:?}", t.elapsed());
        held(&db, "a", BUDGET + EXTRA);
    }
    assert!(db.is_busy("a").unwrap());
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// A peer that stops reading while the client writes a large query: `send_query` waits for the
/// socket to take the query (libpq's blocking `PQsendQuery` does too) while every connection is
/// still served, and returns when the peer goes away; the error is clear, nothing of the server's
/// is held, and another connection works on.
#[test]
fn budget_peer_stops_reading_a_large_query() {
    let a = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        // Reads nothing of the query: waits until it starts arriving, then goes away.
        Step::AwaitClient,
        Step::Sleep(Duration::from_millis(500)),
    ]);
    let b = quick(1, Duration::ZERO);
    let mut db = dblink();
    db.connect("a", &a.conninfo("")).expect("a connects");
    db.connect("b", &b.conninfo("")).expect("b connects");
    let sql = format!("SELECT '{}'", "x".repeat(8 * MIB));
    let t = Instant::now();
    let sent = db.send_query("a", &sql);
    // Generous: the peer leaves after 500 ms; copying 8 MiB is slow in a debug build.
    assert!(t.elapsed() <= Duration::from_secs(3), "{:?}", t.elapsed());
    let e = match sent {
        Err(e) => e,
        Ok(()) => db.get_result("a").expect_err("the peer went away"),
    };
    assert!(e.is_closed(), "{e}");
    held(&db, "a", EXTRA);
    let r = db.query("b", "SELECT 1").expect("b answers");
    assert_eq!(r.rows().unwrap().get(0, 0), Some("1"));
    db.disconnect("a").expect("disconnect");
    db.disconnect("b").expect("disconnect");
    a.finish();
    b.finish();
}

/// Runs the test `name` of this binary alone in a child process; returns its peak RSS in KiB,
/// or `None` in the child itself (which runs the scenario and prints it).
fn in_child(name: &str) -> Option<u64> {
    if std::env::var_os("PGDBLINK_BUDGET_CHILD").is_some() {
        return None;
    }
    let stdout = run_test_in_child(name, &[("PGDBLINK_BUDGET_CHILD", "1")]);
    let peak = child_reported(&stdout, "PEAK_RSS_KIB=");
    Some(peak)
}

/// A server repeating its MD5 request without reading the answers: the client stops answering at
/// its output budget (peak RSS of a child process bounded), and the connect times out on time.
#[test]
fn budget_md5_request_repeated_without_reading() {
    if let Some(peak) = in_child("budget_md5_request_repeated_without_reading") {
        assert!(peak < 96 * 1024, "peak RSS {peak} KiB");
        return;
    }
    let mut md5 = Vec::new();
    wire::authentication(&mut md5, 5, b"salt");
    let server = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::SendRepeated(md5.repeat(1000), 20_000),
    ]);
    let mut db = dblink();
    let t = Instant::now();
    let e = db
        .connect("a", &server.conninfo("password=pencil"))
        .expect_err("never authenticated");
    assert!(e.to_string().contains("timeout expired"), "{e}");
    assert!(
        t.elapsed() <= Duration::from_secs(2) + SLACK,
        "{:?}",
        t.elapsed()
    );
    let _ = server.join();
    println!("PEAK_RSS_KIB={}", peak_rss_kib());
}

// ----- ParameterStatus -------------------------------------------------------------------------

/// 200,000 distinct ParameterStatus names at startup: the connection is ready quickly, keeps a
/// bounded map (the names PostgreSQL reports stay) and counts what it ignored.
#[test]
fn budget_200000_distinct_parameters_at_startup() {
    let n = 200_000;
    let mut hello = Vec::new();
    wire::authentication(&mut hello, 0, &[]);
    for i in 0..n {
        wire::parameter_status(&mut hello, &format!("guc_{i}"), "value");
    }
    hello.extend(trust_startup()[9..].to_vec());
    let server = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(hello),
        Step::Expect(b'X'),
    ]);
    let mut db = dblink();
    let t = Instant::now();
    db.connect("a", &server.conninfo("")).expect("connects");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "startup took {:?}",
        t.elapsed()
    );
    let c = db.conn("a").unwrap();
    assert_eq!(c.parameter("server_version"), Some("17.0"));
    assert_eq!(c.parameter("guc_0"), Some("value"));
    assert_eq!(c.parameter(&format!("guc_{}", n - 1)), None);
    assert!(c.parameters_dropped() >= (n - 1024) as u64);
    held(&db, "a", BUDGET + EXTRA);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// One name repeated with new values: stored once, updated in place.
#[test]
fn budget_parameter_repeated_is_updated_in_place() {
    let n = 100_000;
    let mut unit = Vec::new();
    wire::parameter_status(&mut unit, "TimeZone", "UTC");
    let server = idle_flood(unit.repeat(1000), n / 1000);
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let _ = db.is_busy("a").unwrap();
        held(&db, "a", EXTRA);
    }
    let c = db.conn("a").unwrap();
    assert_eq!(c.parameter("TimeZone"), Some("UTC"));
    assert_eq!(c.parameters_dropped(), 0);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

/// CopyData outside COPY is dropped (libpq), however much of it comes.
#[test]
fn budget_copy_data_outside_copy_is_dropped() {
    let server = flood(
        Vec::new(),
        msg(b'd', &[b'z'; 1000]).repeat(100),
        200,
        select_1_result(),
    );
    let mut db = dblink();
    db.connect("a", &server.conninfo("")).expect("connects");
    db.send_query("a", "SELECT 1").expect("sent");
    let (results, _) = drain_bounded(&mut db, "a", BUDGET + EXTRA);
    assert_eq!(results.len(), 1);
    db.disconnect("a").expect("disconnect");
    server.finish();
}

// ----- fairness and deadlines ------------------------------------------------------------------

/// One server floods notices as fast as it can during its query: every `wait` keeps its deadline,
/// and another connection's finished query is reported.
#[test]
fn fairness_wait_deadline_held_while_a_server_floods_notices() {
    let a = flood(
        Vec::new(),
        notice("flood").repeat(1000),
        1_000_000,
        Vec::new(),
    );
    let b = quick(1, Duration::from_millis(300));
    let mut db = dblink();
    db.connect("a", &a.conninfo("")).expect("a connects");
    db.connect("b", &b.conninfo("")).expect("b connects");
    db.send_query("a", "SELECT flood()").expect("sent");
    db.send_query("b", "SELECT 1").expect("sent");
    let started = Instant::now();
    let mut got_b = None;
    while got_b.is_none() {
        let d = Duration::from_millis(100);
        let t = Instant::now();
        let ready = db.wait(Some(d)).unwrap();
        assert!(t.elapsed() <= d + SLACK, "wait took {:?}", t.elapsed());
        held(&db, "a", BUDGET + EXTRA);
        if ready.contains(&"b".to_owned()) {
            got_b = Some(started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "b never reported"
        );
    }
    assert!(got_b.unwrap() <= Duration::from_millis(300) + SLACK);
    assert!(
        db.conn("a").unwrap().notices_dropped() > 0,
        "a was read meanwhile"
    );
    db.disconnect("a").expect("disconnect");
    db.disconnect("b").expect("disconnect");
    a.finish();
    b.finish();
}

/// One idle connection flooded with notifications does not delay the report of another's result.
#[test]
fn fairness_notification_flood_does_not_delay_another_result() {
    let a = idle_flood(notification("p").repeat(1000), 1_000_000);
    let b = quick(3, Duration::from_millis(50));
    let mut db = dblink();
    db.connect("a", &a.conninfo("")).expect("a connects");
    db.connect("b", &b.conninfo("")).expect("b connects");
    for _ in 0..3 {
        db.send_query("b", "SELECT 1").expect("sent");
        let t = Instant::now();
        let ready = db.wait(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(ready, ["b"]);
        assert!(
            t.elapsed() <= Duration::from_millis(50) + SLACK,
            "{:?}",
            t.elapsed()
        );
        while db.get_result("b").unwrap().is_some() {}
        held(&db, "a", BUDGET + EXTRA);
    }
    db.disconnect("a").expect("disconnect");
    db.disconnect("b").expect("disconnect");
    a.finish();
    b.finish();
}

/// A flooding chunked stream whose results are taken slowly: the other connection's waits keep
/// their deadlines.
#[test]
fn fairness_chunked_flood_and_a_quiet_connection() {
    let n = 50_000;
    let a = flood(text_column(), data_rows(1000, 100), n / 1000, select_end(n));
    let b = quick(1, Duration::from_millis(200));
    let mut db = dblink();
    db.connect("a", &a.conninfo("")).expect("a connects");
    db.connect("b", &b.conninfo("")).expect("b connects");
    db.send_query_chunked("a", "SELECT v", 10).expect("sent");
    db.send_query("b", "SELECT 1").expect("sent");
    let started = Instant::now();
    let mut b_done = false;
    let mut a_done = false;
    let mut rows = 0;
    while !(a_done && b_done) {
        let d = Duration::from_millis(50);
        let t = Instant::now();
        let ready = db.wait(Some(d)).unwrap();
        assert!(t.elapsed() <= d + SLACK, "wait took {:?}", t.elapsed());
        if ready.contains(&"b".to_owned()) && !b_done {
            assert!(started.elapsed() <= Duration::from_millis(200) + SLACK);
            while db.get_result("b").unwrap().is_some() {}
            b_done = true;
        }
        if ready.contains(&"a".to_owned()) {
            match db.get_result("a").unwrap() {
                Some(r) => rows += r.rows().map_or(0, |r| r.len()),
                None => a_done = true,
            }
        }
        held(&db, "a", BUDGET + 200 + EXTRA);
        assert!(started.elapsed() < Duration::from_secs(20), "stuck");
    }
    assert_eq!(rows, n);
    db.disconnect("a").expect("disconnect");
    db.disconnect("b").expect("disconnect");
    a.finish();
    b.finish();
}

/// A slow sender (one byte every 100 ms inside a DataRow) while another connection keeps
/// progressing.
#[test]
fn fairness_slow_sender_inside_a_data_row() {
    let mut row = Vec::new();
    wire::data_row(&mut row, &[Some(b"slowly")]);
    let a = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::Expect(b'Q'),
        Step::Send(text_column()),
        Step::Trickle(row, Duration::from_millis(100)),
        Step::Send(select_end(1)),
        Step::Close,
    ]);
    let b = quick(5, Duration::ZERO);
    let mut db = dblink();
    db.connect("a", &a.conninfo("")).expect("a connects");
    db.connect("b", &b.conninfo("")).expect("b connects");
    db.send_query("a", "SELECT slowly").expect("sent");
    for _ in 0..5 {
        let t = Instant::now();
        let r = db.query("b", "SELECT 1").expect("b answers");
        assert_eq!(r.rows().unwrap().get(0, 0), Some("1"));
        assert!(t.elapsed() <= SLACK, "{:?}", t.elapsed());
        assert!(db.is_busy("a").unwrap(), "a is still trickling");
        held(&db, "a", EXTRA);
    }
    let r = db.get_result("a").unwrap().expect("a's row");
    assert_eq!(r.rows().unwrap().get(0, 0), Some("slowly"));
    assert!(db.get_result("a").unwrap().is_none());
    db.disconnect("a").expect("disconnect");
    db.disconnect("b").expect("disconnect");
    a.finish();
    b.finish();
}

/// `Client::get_result_timeout` keeps its deadline while the server floods notices.
#[test]
fn fairness_client_get_result_timeout_held_during_a_flood() {
    let server = flood(
        Vec::new(),
        notice("flood").repeat(1000),
        1_000_000,
        Vec::new(),
    );
    let mut client = Client::connect(&server.conninfo("")).expect("connects");
    client.send_query("SELECT flood()").expect("sent");
    for _ in 0..5 {
        let d = Duration::from_millis(100);
        let t = Instant::now();
        let r = client.get_result_timeout(d);
        assert!(t.elapsed() <= d + SLACK, "took {:?}", t.elapsed());
        assert!(r.is_err() || matches!(r, Ok(None)), "no result: {r:?}");
        assert!(client.conn().held_bytes() <= Budgets::default().notices + EXTRA);
    }
    drop(client);
    server.finish();
}

/// `Client::wait_for_notifications` keeps its deadline while the server floods notices.
#[test]
fn fairness_client_wait_for_notifications_held_during_a_flood() {
    let server = idle_flood(notice("flood").repeat(1000), 1_000_000);
    let mut client = Client::connect(&server.conninfo("")).expect("connects");
    for _ in 0..5 {
        let d = Duration::from_millis(100);
        let t = Instant::now();
        let got = client.wait_for_notifications(d).expect("waits");
        assert!(got.is_empty());
        assert!(t.elapsed() <= d + SLACK, "took {:?}", t.elapsed());
        assert!(client.conn().held_bytes() <= Budgets::default().notices + EXTRA);
    }
    assert!(client.conn().notices_dropped() > 0);
    drop(client);
    server.finish();
}

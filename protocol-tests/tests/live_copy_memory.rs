//! COPY streams in constant memory: 100 MB+ into a table and 1 GB+ through a server-side sink, in
//! through a pipe and back out through a pipe, with the process's peak resident set (`VmHWM` in
//! /proc/self/status) recorded before and after. The tests run one at a time (`ALONE`) in their own
//! test binary, so no other test's allocations move the peak.

use std::io::{self, Read, Write};

use pgdblink::Dblink;
use pgdblink::cluster::{Cluster, Role};
use protocol_tests::helpers::peak_rss_kib;

const ROWS: u64 = 1_000_000;
/// Each row: the number, a tab, 100 bytes of text, a newline.
const FILLER: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz!!";

#[test]
fn a_100_mb_copy_through_pipes_runs_in_bounded_memory() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::shared().expect("throwaway cluster");
    let mut db = Dblink::new();
    db.connect("c", &cluster.conninfo(Role::Trust)).unwrap();
    db.exec("c", "DROP TABLE IF EXISTS copy_big").unwrap();
    db.exec("c", "CREATE UNLOGGED TABLE copy_big (a bigint, b text)")
        .unwrap();
    let before = peak_rss_kib();

    // In: a thread writes the rows into a pipe as copy_in reads its other end.
    let (mut reader, mut writer) = io::pipe().expect("pipe");
    let producer = std::thread::spawn(move || -> io::Result<u64> {
        let mut line = String::new();
        let mut bytes = 0u64;
        for i in 1..=ROWS {
            line.clear();
            line.push_str(&i.to_string());
            line.push('\t');
            line.push_str(FILLER);
            line.push('\n');
            writer.write_all(line.as_bytes())?;
            bytes += line.len() as u64;
        }
        Ok(bytes)
    });
    let n = db
        .copy_in("c", "COPY copy_big FROM STDIN", &mut reader)
        .unwrap();
    let sent = producer.join().unwrap().unwrap();
    assert_eq!(n, ROWS);
    assert!(sent > 100_000_000, "{sent} bytes");

    // Out: copy_out writes into a pipe whose other end a thread counts.
    let (mut reader, mut writer) = io::pipe().expect("pipe");
    let consumer = std::thread::spawn(move || -> io::Result<u64> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match reader.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let n = db
        .copy_out("c", "COPY copy_big TO STDOUT", &mut writer)
        .unwrap();
    drop(writer);
    let received = consumer.join().unwrap().unwrap();
    assert_eq!(n, ROWS);
    assert_eq!(received, sent);

    let after = peak_rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!(
        "peak RSS before {before} KiB, after {after} KiB: +{grown_mib} MiB for {sent} bytes each way"
    );
    assert!(
        grown_mib < 32,
        "COPY of {sent} bytes grew the peak RSS by {grown_mib} MiB"
    );
}

/// Serializes the tests of this binary: the peak resident set is the whole process's.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Each wide row: the number, a tab, 1,000 bytes of text, a newline.
const WIDE: usize = 1000;

/// A reader producing `rows` wide rows of text COPY data on the fly, in whatever pieces are asked.
struct WideRows {
    next: u64,
    rows: u64,
    pending: Vec<u8>,
    at: usize,
    bytes: u64,
}

impl Read for WideRows {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            if self.next > self.rows {
                return Ok(0);
            }
            self.pending.clear();
            self.at = 0;
            // A batch of rows at a time (about 64 KiB).
            while self.pending.len() < 64 * 1024 && self.next <= self.rows {
                self.pending
                    .extend_from_slice(self.next.to_string().as_bytes());
                self.pending.push(b'\t');
                self.pending.resize(self.pending.len() + WIDE, b'x');
                self.pending.push(b'\n');
                self.next += 1;
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// COPY of `rows` wide rows (about 1 KB each) in through a pipe and out through a pipe, without
/// storing them: in, a BEFORE INSERT trigger drops every row on the server (no disk); out, the
/// server generates the rows. Returns the bytes moved each way and the peak RSS growth in KiB.
fn wide_copy_through_pipes(rows: u64) -> (u64, u64, u64) {
    let cluster = Cluster::shared().expect("throwaway cluster");
    let mut db = Dblink::new();
    db.connect("c", &cluster.conninfo(Role::Trust)).unwrap();
    db.exec(
        "c",
        "CREATE TEMP TABLE copy_sink (a bigint, b text); \
         CREATE FUNCTION pg_temp.drop_row() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN RETURN NULL; END $$; \
         CREATE TRIGGER drop_row BEFORE INSERT ON copy_sink \
           FOR EACH ROW EXECUTE FUNCTION pg_temp.drop_row()",
    )
    .unwrap();
    let before = peak_rss_kib();

    // In: a thread copies the generated rows into a pipe as copy_in reads its other end.
    let (mut reader, mut writer) = io::pipe().expect("pipe");
    let producer = std::thread::spawn(move || -> io::Result<u64> {
        let mut source = WideRows {
            next: 1,
            rows,
            pending: Vec::new(),
            at: 0,
            bytes: 0,
        };
        io::copy(&mut source, &mut writer)
    });
    let n = db
        .copy_in("c", "COPY copy_sink FROM STDIN", &mut reader)
        .unwrap();
    let sent = producer.join().unwrap().unwrap();
    // Every row was read by the server; the trigger kept none.
    assert_eq!(n, 0);
    let r = db.query("c", "SELECT count(*) FROM copy_sink").unwrap();
    assert_eq!(r.rows().and_then(|r| r.get(0, 0)), Some("0"));

    // Out: copy_out writes into a pipe whose other end a thread counts.
    let (mut reader, mut writer) = io::pipe().expect("pipe");
    let consumer = std::thread::spawn(move || io::copy(&mut reader, &mut io::sink()));
    let sql =
        format!("COPY (SELECT g, repeat('x', {WIDE}) FROM generate_series(1, {rows}) g) TO STDOUT");
    let n = db.copy_out("c", &sql, &mut writer).unwrap();
    drop(writer);
    let received = consumer.join().unwrap().unwrap();
    assert_eq!(n, rows);
    assert_eq!(received, sent);

    let after = peak_rss_kib();
    eprintln!(
        "peak RSS before {before} KiB, after {after} KiB: +{} KiB for {sent} bytes each way",
        after.saturating_sub(before)
    );
    (sent, received, after.saturating_sub(before))
}

/// 1 GB each way (issue 16's "COPY of 1 GB through a pipe"): about 12 s in a debug build.
#[test]
fn a_1_gb_copy_through_pipes_runs_in_bounded_memory() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let (sent, _, grown_kib) = wide_copy_through_pipes(1_000_000);
    assert!(sent > 1_000_000_000, "{sent} bytes");
    assert!(
        grown_kib < 64 * 1024,
        "COPY of {sent} bytes grew the peak RSS by {grown_kib} KiB"
    );
}

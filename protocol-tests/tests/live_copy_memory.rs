//! COPY streams in constant memory: 100 MB+ in through a pipe and back out through a pipe, with the
//! process's peak resident set (`VmHWM` in /proc/self/status) recorded before and after. Alone in its
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

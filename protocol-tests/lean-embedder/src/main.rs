//! A program embedding pgdblink's library alone: fan one query out over named connections.
//!
//! `lean-embedder CONNINFO [N]` opens N connections (default 4) to CONNINFO, sends each a query, waits
//! for them as they become ready and prints every connection's first value.

use std::process::ExitCode;
use std::time::Duration;

use pgdblink::{Dblink, Error};

fn fan_out(conninfo: &str, n: usize) -> Result<(), Error> {
    let mut db = Dblink::new();
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    for name in &names {
        db.connect(name, conninfo)?;
        db.send_query(name, "SELECT pg_backend_pid()")?;
    }
    let mut left = names.len();
    while left > 0 {
        for name in db.wait(Some(Duration::from_secs(10)))? {
            while let Some(result) = db.get_result(&name)? {
                let value = result.rows().and_then(|r| r.get(0, 0)).unwrap_or("∅");
                println!("{name}: backend {value}");
            }
            left -= 1;
        }
    }
    for name in &names {
        db.disconnect(name)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(conninfo) = args.next() else {
        eprintln!("usage: lean-embedder CONNINFO [N]");
        return ExitCode::from(2);
    };
    let n = args.next().and_then(|n| n.parse().ok()).unwrap_or(4);
    match fan_out(&conninfo, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lean-embedder: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Load and soak: 500 named connections in one `Dblink` against a real PostgreSQL, 200,000 queries in
//! total with every result verified, notifications flowing, random cancels, and a few backends
//! terminated mid-query. Nothing may be lost or misattributed, no connection but the terminated ones
//! may be affected, and resident memory must stay flat after warm-up.
//!
//! The scale can be lowered for a quick run with `PGDBLINK_SOAK_QUERIES` (the default is 200,000).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pgdblink::cluster::{Cluster, ClusterOptions, Role};
use pgdblink::{Dblink, Error, QueryResult, sqlstate};

const CONNECTIONS: usize = 500;
const LISTENERS: usize = 5;
const TERMINATED: usize = 3;

/// xorshift64*: a small deterministic generator for the random choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// `SELECT conn, seq, pid`: must come back exactly.
    Plain,
    /// Also sends a notification `conn:seq` to the listeners.
    Notify,
    /// A short sleep that a cancel may interrupt: either the row or 57014.
    Cancellable,
}

struct InFlight {
    seq: u64,
    kind: Kind,
}

#[test]
fn soak_500_connections() {
    let total: u64 = std::env::var("PGDBLINK_SOAK_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let cluster = Cluster::start_with(ClusterOptions {
        max_connections: Some(CONNECTIONS as u32 + 20),
        ..ClusterOptions::default()
    })
    .expect("cluster");
    let conninfo = cluster.conninfo(Role::Trust);
    let mut db = Dblink::new();
    let names: Vec<String> = (0..CONNECTIONS).map(|i| format!("s{i}")).collect();
    let mut pids = Vec::new();
    for name in &names {
        db.connect(name, &conninfo).unwrap();
        pids.push(db.conn(name).unwrap().backend_key().unwrap().0);
    }
    db.connect("admin", &cluster.conninfo(Role::Super)).unwrap();
    for name in &names[..LISTENERS] {
        db.exec(name, "LISTEN soak").unwrap();
    }

    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut seq = 0u64;
    let mut in_flight: HashMap<usize, InFlight> = HashMap::new();
    let mut completed = 0u64;
    let mut cancelled = 0u64;
    let mut notifies_sent = 0u64;
    // Notifications of queries whose backend was terminated: whether they committed (and notified)
    // before the signal is up to the server's timing.
    let mut notifies_uncertain = 0u64;
    let mut notifies_seen: Vec<u64> = vec![0; LISTENERS];
    let mut terminated: Vec<usize> = Vec::new();
    let mut rss_after_warmup = None;
    let start = Instant::now();

    let send = |db: &mut Dblink, i: usize, rng: &mut Rng, seq: &mut u64| -> InFlight {
        *seq += 1;
        let kind = match rng.below(100) {
            0..=4 => Kind::Notify,
            5..=6 => Kind::Cancellable,
            _ => Kind::Plain,
        };
        let sql = match kind {
            Kind::Plain => format!("SELECT {i}, {}, pg_backend_pid()", *seq),
            Kind::Notify => format!(
                "SELECT {i}, {}, pg_backend_pid(), pg_notify('soak', '{i}:{}')",
                *seq, *seq
            ),
            Kind::Cancellable => {
                format!("SELECT {i}, {}, pg_backend_pid(), pg_sleep(0.02)", *seq)
            }
        };
        db.send_query(&names[i], &sql).unwrap();
        InFlight { seq: *seq, kind }
    };

    for i in 0..CONNECTIONS {
        let f = send(&mut db, i, &mut rng, &mut seq);
        in_flight.insert(i, f);
    }

    while completed + cancelled < total || !in_flight.is_empty() {
        // Now and then: cancel a cancellable query, or terminate a backend mid-query.
        if rng.below(4) == 0
            && let Some((&i, _)) = in_flight.iter().find(|(_, f)| f.kind == Kind::Cancellable)
        {
            db.cancel_query(&names[i]).unwrap();
        }
        if terminated.len() < TERMINATED && completed > total / 4 * (terminated.len() as u64 + 1) {
            let victim = LISTENERS + terminated.len() * 7;
            if let Some(f) = in_flight.get(&victim) {
                let seq_before = f.seq;
                if f.kind == Kind::Notify {
                    notifies_uncertain += 1;
                }
                db.query(
                    "admin",
                    &format!("SELECT pg_terminate_backend({})", pids[victim]),
                )
                .unwrap();
                // The victim reports the termination and the lost connection, then the end marker.
                let mut errors: Vec<Error> = Vec::new();
                loop {
                    match db.get_result(&names[victim]) {
                        Ok(Some(r)) => {
                            // The query may have finished before the signal: then it is its own row.
                            let rows = r.rows().unwrap();
                            assert_eq!(rows.get(0, 1), Some(seq_before.to_string().as_str()));
                        }
                        Ok(None) => break,
                        Err(e) => errors.push(e),
                    }
                }
                assert!(
                    errors.iter().all(|e| e.is_closed()
                        && [sqlstate::ADMIN_SHUTDOWN, sqlstate::CONNECTION_FAILURE]
                            .contains(&e.code().unwrap_or(""))),
                    "{errors:?}"
                );
                in_flight.remove(&victim);
                db.disconnect(&names[victim]).unwrap();
                terminated.push(victim);
                continue;
            }
        }

        for name in db.wait(Some(Duration::from_secs(30))).unwrap() {
            let i: usize = name[1..].parse().unwrap();
            let f = in_flight
                .remove(&i)
                .expect("a reply only for a query in flight");
            match db.get_result(&name) {
                Ok(Some(QueryResult::Rows(rows))) => {
                    assert_eq!(rows.len(), 1);
                    assert_eq!(
                        rows.get(0, 0),
                        Some(i.to_string().as_str()),
                        "misattributed"
                    );
                    assert_eq!(
                        rows.get(0, 1),
                        Some(f.seq.to_string().as_str()),
                        "lost or stale"
                    );
                    assert_eq!(rows.get(0, 2), Some(pids[i].to_string().as_str()));
                    completed += 1;
                    if f.kind == Kind::Notify {
                        notifies_sent += 1;
                    }
                }
                Err(e)
                    if e.code() == Some(sqlstate::QUERY_CANCELED)
                        && f.kind == Kind::Cancellable =>
                {
                    cancelled += 1;
                }
                other => panic!("{name} seq {}: unexpected {other:?}", f.seq),
            }
            assert!(db.get_result(&name).unwrap().is_none(), "end marker");
            if completed + cancelled + (in_flight.len() as u64) < total {
                let f = send(&mut db, i, &mut rng, &mut seq);
                in_flight.insert(i, f);
            }
            if rss_after_warmup.is_none() && completed >= total / 10 {
                rss_after_warmup = Some(rss_kib());
            }
        }
        for (l, seen) in notifies_seen.iter_mut().enumerate() {
            if terminated.contains(&l) {
                continue;
            }
            for n in db.get_notify(&names[l]).unwrap() {
                assert_eq!(n.channel, "soak");
                assert!(n.payload.contains(':'));
                *seen += 1;
            }
        }
    }

    // Collect the last notifications: every listener sees every one that was sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    let unsettled = |seen: &[u64]| seen.iter().any(|&s| s < notifies_sent || s != seen[0]);
    while unsettled(&notifies_seen) && Instant::now() < deadline {
        for (l, seen) in notifies_seen.iter_mut().enumerate() {
            *seen += db.get_notify(&names[l]).unwrap().len() as u64;
        }
        if unsettled(&notifies_seen) {
            db.wait_notify(Some(deadline.saturating_duration_since(Instant::now())))
                .unwrap();
        }
    }
    assert!(
        notifies_seen.iter().all(|&s| s == notifies_seen[0])
            && (notifies_sent..=notifies_sent + notifies_uncertain).contains(&notifies_seen[0]),
        "sent {notifies_sent} (and {notifies_uncertain} by terminated backends), seen {notifies_seen:?}"
    );

    // Every surviving connection still answers.
    for (i, name) in names.iter().enumerate() {
        if terminated.contains(&i) {
            continue;
        }
        let r = db.query(name, "SELECT 1").unwrap();
        assert_eq!(r.rows().unwrap().get(0, 0), Some("1"), "{name}");
    }
    assert_eq!(terminated.len(), TERMINATED);
    let rss_end = rss_kib();
    let warm = rss_after_warmup.unwrap_or(rss_end);
    eprintln!(
        "soak: {} queries ({completed} rows verified, {cancelled} cancelled) over {} connections in {:.1}s; \
         {notifies_sent} notifications ({notifies_uncertain} more uncertain) x {LISTENERS} listeners; {} backends terminated; \
         RSS after warm-up {warm} KiB, at end {rss_end} KiB",
        completed + cancelled,
        CONNECTIONS,
        start.elapsed().as_secs_f64(),
        terminated.len()
    );
    assert_eq!(completed + cancelled, total);
    assert!(
        rss_end < warm + 16 * 1024,
        "RSS grew from {warm} KiB to {rss_end} KiB after warm-up"
    );
}

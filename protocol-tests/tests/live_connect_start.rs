//! Connecting many at once (`Dblink::connect_start`) against the real throwaway cluster, with
//! closed ports and silent listeners among them; `connect_finish`; the status functions.
//!
//! The tests of this file take one lock: the descriptor count of the process is only meaningful
//! when no other test opens sockets meanwhile, and 500 connections at once should not meet
//! another test's in the cluster's `max_connections`.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

use pgdblink::cluster::{Cluster, Role};
use pgdblink::{Config, Dblink, QueryResult, TransactionStatus, sqlstate};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits until `count` attempts started with `connect_start` have been reported by `wait`;
/// returns how often each name was.
fn wait_all(db: &mut Dblink, count: usize) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    while seen.len() < count {
        let names = db.wait(Some(Duration::from_secs(60))).unwrap();
        assert!(!names.is_empty(), "wait timed out with {} seen", seen.len());
        for name in names {
            *seen.entry(name).or_default() += 1;
        }
    }
    seen
}

#[test]
fn five_hundred_connect_starts_all_accounted_for() {
    let _serial = serial();
    let good = cluster().conninfo(Role::Trust);
    let closed = closed_port();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let mut db = Dblink::new();
    let mut kind = HashMap::new();
    for i in 0..500 {
        let name = format!("c{i}");
        let (k, conninfo) = match i % 20 {
            0 => (
                "closed",
                format!("host=127.0.0.1 port={closed} dbname=x user=x sslmode=disable"),
            ),
            1 => (
                "silent",
                format!(
                    "host=127.0.0.1 port={silent_port} dbname=x user=x sslmode=disable \
                     connect_timeout=2"
                ),
            ),
            _ => ("good", good.clone()),
        };
        db.connect_start(&name, &conninfo).unwrap();
        kind.insert(name, k);
    }
    assert_eq!(db.connections().len(), 500);
    let seen = wait_all(&mut db, 500);
    assert!(seen.values().all(|&n| n == 1), "each name reported once");
    // Nothing left to report: at once, empty.
    assert!(db.wait(Some(Duration::ZERO)).unwrap().is_empty());
    for (name, k) in &kind {
        let outcome = db.connect_finish(name);
        match *k {
            "good" => outcome.unwrap(),
            "closed" => {
                let e = outcome.unwrap_err();
                assert_eq!(
                    e.code(),
                    Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
                );
                assert_eq!(e.message(), "could not establish connection");
                assert_eq!(
                    e.detail().unwrap(),
                    format!(
                        "connection to server at \"127.0.0.1\", port {closed} failed: Connection \
                         refused\n\tIs the server running on that host and accepting TCP/IP \
                         connections?"
                    )
                );
            }
            _ => assert_eq!(
                outcome.unwrap_err().detail().unwrap(),
                format!(
                    "connection to server at \"127.0.0.1\", port {silent_port} failed: timeout expired"
                )
            ),
        }
    }
    // Failures freed their names; the good ones answer.
    assert_eq!(db.connections().len(), 450);
    for name in db.connections() {
        db.send_query(&name, "SELECT 1").unwrap();
    }
    // wait() reports a connection until its results are taken: take them as they come.
    let mut answered = 0;
    while answered < 450 {
        for name in db.wait(Some(Duration::from_secs(60))).unwrap() {
            let r = db.get_result(&name).unwrap().unwrap();
            assert_eq!(r.rows().unwrap().get(0, 0), Some("1"));
            assert!(db.get_result(&name).unwrap().is_none());
            answered += 1;
        }
    }
}

#[test]
fn ten_thousand_connects_leak_no_descriptor() {
    let _serial = serial();
    let conninfo = cluster().conninfo_unix(Role::Trust);
    let mut db = Dblink::new();
    // Warm up (the thread's buffers, the SCRAM cache, the cluster's socket directory).
    db.connect("warm", &conninfo).unwrap();
    db.disconnect("warm").unwrap();
    let before = open_fds();
    for batch in 0..40 {
        for i in 0..250 {
            db.connect_start(&format!("b{batch}_{i}"), &conninfo)
                .unwrap();
        }
        wait_all(&mut db, 250);
        for name in db.connections() {
            db.connect_finish(&name).unwrap();
            db.disconnect(&name).unwrap();
        }
    }
    assert!(db.connections().is_empty());
    assert_eq!(open_fds(), before, "descriptors leaked");
}

#[test]
fn connect_finish_semantics() {
    let _serial = serial();
    let good = cluster().conninfo(Role::Trust);
    let bad = format!(
        "host=127.0.0.1 port={} dbname=x user=x sslmode=disable",
        closed_port()
    );
    let mut db = Dblink::new();
    db.connect_start("a", &good).unwrap();
    // The name is reserved while connecting.
    let e = db.connect_start("a", &good).unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::DUPLICATE_OBJECT));
    assert_eq!(
        db.connect("a", &good).unwrap_err().code(),
        Some(sqlstate::DUPLICATE_OBJECT)
    );
    // A string that does not parse fails at once, as connect's would.
    let e = db.connect_start("p", "host").unwrap_err();
    assert_eq!(e.message(), "could not establish connection");
    assert!(!db.connections().contains(&"p".to_owned()));
    // Any other verb waits for the attempt first.
    let r = db.query("a", "SELECT 2").unwrap();
    assert_eq!(r.rows().unwrap().get(0, 0), Some("2"));
    db.connect_finish("a").unwrap(); // already connected: Ok at once
    // A failure is returned by the verb that collects it, and frees the name.
    db.connect_start("b", &bad).unwrap();
    let e = db.send_query("b", "SELECT 1").unwrap_err();
    assert_eq!(e.message(), "could not establish connection");
    assert!(e.detail().unwrap().contains("Connection refused"));
    assert_eq!(
        db.connect_finish("b").unwrap_err().code(),
        Some(sqlstate::CONNECTION_DOES_NOT_EXIST)
    );
    // Reported by wait, then collected by connect_finish.
    db.connect_start("c", &bad).unwrap();
    assert_eq!(db.wait(None).unwrap(), ["c"]);
    assert!(db.connections().contains(&"c".to_owned()));
    assert_eq!(
        db.connect_finish("c").unwrap_err().code(),
        Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
    );
    assert!(!db.connections().contains(&"c".to_owned()));
    // Disconnecting a name still connecting abandons the attempt.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    db.connect_start(
        "d",
        &format!(
            "host=127.0.0.1 port={} dbname=x user=x sslmode=disable",
            silent.local_addr().unwrap().port()
        ),
    )
    .unwrap();
    db.disconnect("d").unwrap();
    assert_eq!(db.connections(), ["a"]);
    assert!(db.wait(Some(Duration::ZERO)).unwrap().is_empty());
    // A parsed Config, whose password Display masks, connects as its text would.
    let scram: Config = cluster().conninfo(Role::Scram).parse().unwrap();
    assert!(!scram.to_string().contains("pencil"));
    db.connect_with("s", &scram).unwrap();
    assert_eq!(db.exec("s", "SELECT 1").unwrap_err().code(), Some("2F003"));
    db.connect_start_with("t", &scram).unwrap();
    db.connect_finish("t").unwrap();
}

#[test]
fn status_while_connecting_and_after() {
    let _serial = serial();
    let c = cluster();
    let mut db = Dblink::new();
    db.connect_start("s", &c.conninfo(Role::Trust)).unwrap();
    // Still connecting: described without waiting.
    assert_eq!(
        db.transaction_status("s").unwrap(),
        TransactionStatus::Unknown
    );
    assert_eq!(db.backend_pid("s").unwrap(), 0);
    assert_eq!(db.parameter_status("s", "server_version").unwrap(), None);
    assert!(!db.ssl_in_use("s").unwrap());
    assert_eq!(db.error_message("s").unwrap(), None);
    assert_eq!(db.host("s").unwrap(), "127.0.0.1");
    assert_eq!(db.port("s").unwrap(), c.port());
    db.connect_finish("s").unwrap();
    assert_eq!(db.host("s").unwrap(), "127.0.0.1");
    assert_eq!(db.port("s").unwrap(), c.port());
    let pid = db.backend_pid("s").unwrap();
    assert_ne!(pid, 0);
    let r = db.query("s", "SELECT pg_backend_pid()::text").unwrap();
    assert_eq!(r.rows().unwrap().get(0, 0), Some(pid.to_string().as_str()));
    let version = db.parameter_status("s", "server_version").unwrap();
    let shown = db.query("s", "SHOW server_version").unwrap();
    assert_eq!(version.as_deref(), shown.rows().unwrap().get(0, 0));
    assert_eq!(db.parameter_status("s", "no_such_thing").unwrap(), None);
    assert_eq!(db.transaction_status("s").unwrap(), TransactionStatus::Idle);
    db.send_query("s", "SELECT 1").unwrap();
    assert_eq!(
        db.transaction_status("s").unwrap(),
        TransactionStatus::Active
    );
    while db.get_result("s").unwrap().is_some() {}
    db.exec("s", "BEGIN").unwrap();
    assert_eq!(
        db.transaction_status("s").unwrap(),
        TransactionStatus::InTransaction
    );
    db.exec("s", "SELECT 1/0").unwrap_err();
    assert_eq!(
        db.transaction_status("s").unwrap(),
        TransactionStatus::InError
    );
    db.exec("s", "ROLLBACK").unwrap();
    // A unix socket: the directory is the host.
    db.connect("u", &c.conninfo_unix(Role::Trust)).unwrap();
    assert_eq!(db.host("u").unwrap(), c.socket_dir().display().to_string());
    assert_eq!(
        db.host("nope").unwrap_err().code(),
        Some(sqlstate::CONNECTION_DOES_NOT_EXIST)
    );
}

#[test]
fn get_result_timeout_and_wait_notify() {
    let _serial = serial();
    let trust = cluster().conninfo(Role::Trust);
    let mut db = Dblink::new();
    db.connect("q", &trust).unwrap();
    db.connect("l", &trust).unwrap();
    db.send_query("q", "SELECT pg_sleep(30)").unwrap();
    assert!(
        db.get_result_timeout("q", Some(Duration::from_millis(50)))
            .unwrap()
            .is_none(),
        "timed out"
    );
    db.cancel_query("q").unwrap();
    let e = db.get_result_timeout("q", None).unwrap_err();
    assert_eq!(e.code(), Some("57014"));
    assert!(matches!(db.get_result_timeout("q", None), Ok(Some(None))));
    // Nothing pending: the wait runs out, empty.
    db.exec("l", "LISTEN jobs").unwrap();
    assert!(
        db.wait_notify(Some(Duration::from_millis(20)))
            .unwrap()
            .is_empty()
    );
    // A NOTIFY from another connection wakes the listener.
    db.exec("q", "NOTIFY jobs, 'j1'").unwrap();
    assert_eq!(
        db.wait_notify(Some(Duration::from_secs(30))).unwrap(),
        ["l"]
    );
    let notes = db.get_notify("l").unwrap();
    assert_eq!(notes[0].payload, "j1");
    assert!(matches!(
        db.query("l", "SELECT 1").unwrap(),
        QueryResult::Rows(_)
    ));
}

#[test]
fn load_balance_hosts_random_spreads_connects() {
    let _serial = serial();
    let c = cluster();
    // Two host names for the one cluster: which one a connection went to is its host().
    let conninfo = format!(
        "host=127.0.0.1,localhost hostaddr=127.0.0.1,127.0.0.1 port={} dbname={} \
         user=trust_user sslmode=disable load_balance_hosts=random",
        c.port(),
        c.database()
    );
    let mut db = Dblink::new();
    for i in 0..40 {
        db.connect_start(&format!("r{i}"), &conninfo).unwrap();
    }
    wait_all(&mut db, 40);
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for i in 0..40 {
        let name = format!("r{i}");
        db.connect_finish(&name).unwrap();
        *by_host.entry(db.host(&name).unwrap()).or_default() += 1;
    }
    // All 40 on one host by chance: 1 in 2^39.
    assert_eq!(by_host.len(), 2, "{by_host:?}");
    // Without it, always the first.
    let ordered = conninfo.replace("random", "disable");
    for i in 0..5 {
        db.connect(&format!("o{i}"), &ordered).unwrap();
        assert_eq!(db.host(&format!("o{i}")).unwrap(), "127.0.0.1");
    }
    let e = db
        .connect("bad", &conninfo.replace("random", "sometimes"))
        .unwrap_err();
    assert_eq!(
        e.detail(),
        Some("invalid load_balance_hosts value: \"sometimes\"")
    );
}

#[test]
fn client_status_and_config() {
    let _serial = serial();
    let c = cluster();
    let config: Config = c.conninfo(Role::Trust).parse().unwrap();
    let mut client = pgdblink::driver::Client::connect_with(&config).unwrap();
    assert_eq!(client.host(), "127.0.0.1");
    assert_eq!(client.port(), c.port());
    assert!(client.parameter_status("server_encoding").is_some());
    assert_eq!(client.transaction_status(), TransactionStatus::Idle);
    client.query("BEGIN").unwrap();
    assert_eq!(
        client.transaction_status(),
        TransactionStatus::InTransaction
    );
    client.send_query("SELECT 1").unwrap();
    assert_eq!(client.transaction_status(), TransactionStatus::Active);
    while client.get_result().unwrap().is_some() {}
    assert!(!client.ssl_in_use());
}

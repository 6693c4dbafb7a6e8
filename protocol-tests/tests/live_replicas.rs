//! Multi-host connection strings against a real primary and its streaming standby (the throwaway
//! cluster kit's `Cluster::start_standby`): every `target_session_attrs` value in both host orders,
//! libpq's texts when no server fits, the primary down, a promotion, and `load_balance_hosts`.
//!
//! Which server a connection reached is read from the server itself: its port
//! (`current_setting('port')`) and `pg_is_in_recovery()`.

use std::sync::OnceLock;

use pgdblink::cluster::{Cluster, ClusterOptions, Role};
use pgdblink::driver::Client;
use pgdblink::{Dblink, Error};

/// The standby and the primary as the tests name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Primary,
    Standby,
}

/// A primary and its streaming standby, shared by the tests that only read.
fn pair() -> &'static (Cluster, Cluster) {
    static PAIR: OnceLock<(Cluster, Cluster)> = OnceLock::new();
    PAIR.get_or_init(new_pair)
}

fn new_pair() -> (Cluster, Cluster) {
    let primary = Cluster::start_with(ClusterOptions {
        max_connections: Some(60),
        ..ClusterOptions::default()
    })
    .expect("primary");
    let standby = primary.start_standby().expect("standby");
    (primary, standby)
}

/// A connection string over `ports` (all on 127.0.0.1) with more `key=value` settings.
fn conninfo(ports: &[u16], settings: &str) -> String {
    let hosts = vec!["127.0.0.1"; ports.len()].join(",");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!(
        "host={hosts} port={} dbname=pgdblink user={} {settings}",
        ports.join(","),
        Role::Trust.user()
    )
}

/// Connects and returns the server's port and whether it is in recovery.
fn reached(conninfo: &str) -> Result<(u16, bool), Error> {
    let mut client = Client::connect(conninfo)?;
    let results = client.query("SELECT current_setting('port'), pg_is_in_recovery()")?;
    let rows = results.last().and_then(|r| r.rows()).expect("rows");
    let port = rows.get(0, 0).expect("port").parse().expect("a port");
    Ok((port, rows.get(0, 1) == Some("t")))
}

/// The server of the pair listening on `port`, checked against its recovery state.
fn which(port: u16, in_recovery: bool) -> Server {
    let (primary, standby) = pair();
    if port == primary.port() {
        assert!(!in_recovery, "the primary is in recovery");
        Server::Primary
    } else if port == standby.port() {
        assert!(in_recovery, "the standby is not in recovery");
        Server::Standby
    } else {
        panic!("reached port {port}, neither the primary nor the standby")
    }
}

/// libpq's line for a server turned away by `target_session_attrs`.
fn rejected(port: u16, text: &str) -> String {
    format!("connection to server at \"127.0.0.1\", port {port} failed: {text}")
}

fn connect_err(conninfo: &str) -> String {
    match Client::connect(conninfo) {
        Ok(_) => panic!("{conninfo}: connected, expected a failure"),
        Err(e) => e.message().to_owned(),
    }
}

#[test]
fn every_target_session_attrs_in_both_orders() {
    let (primary, standby) = pair();
    let (p, s) = (primary.port(), standby.port());
    let cases = [
        ("any", [Server::Primary, Server::Standby]),
        ("read-write", [Server::Primary, Server::Primary]),
        ("read-only", [Server::Standby, Server::Standby]),
        ("primary", [Server::Primary, Server::Primary]),
        ("standby", [Server::Standby, Server::Standby]),
        ("prefer-standby", [Server::Standby, Server::Standby]),
    ];
    for (attrs, wanted) in cases {
        for (order, want) in [[p, s], [s, p]].into_iter().zip(wanted) {
            let info = conninfo(&order, &format!("target_session_attrs={attrs}"));
            let (port, recovery) = reached(&info).unwrap_or_else(|e| panic!("{info}: {e}"));
            assert_eq!(which(port, recovery), want, "{info}");
        }
    }
}

#[test]
fn no_fitting_server_gives_libpq_texts() {
    let (primary, standby) = pair();
    let (p, s) = (primary.port(), standby.port());
    let cases = [
        (p, "read-only", "session is not read-only"),
        (p, "standby", "server is not in hot standby mode"),
        (s, "read-write", "session is read-only"),
        (s, "primary", "server is in hot standby mode"),
    ];
    for (port, attrs, text) in cases {
        // One host, then the same server twice: one line per host, in order.
        let info = conninfo(&[port], &format!("target_session_attrs={attrs}"));
        assert_eq!(connect_err(&info), rejected(port, text), "{info}");
        let info = conninfo(&[port, port], &format!("target_session_attrs={attrs}"));
        let line = rejected(port, text);
        assert_eq!(connect_err(&info), format!("{line}\n{line}"), "{info}");
    }
    // The session really is what was asked for.
    let mut c = Client::connect(&conninfo(&[p, s], "target_session_attrs=read-only")).unwrap();
    let r = c.query("SHOW transaction_read_only").unwrap();
    assert_eq!(r[0].rows().unwrap().get(0, 0), Some("on"));
}

#[test]
fn prefer_standby_falls_back_to_the_first_server() {
    // Two primaries: the first pass finds no standby, the second takes the first host.
    let (primary, standby) = pair();
    let other = Cluster::shared().expect("second primary");
    for order in [
        [primary.port(), other.port()],
        [other.port(), primary.port()],
    ] {
        let info = conninfo(&order, "target_session_attrs=prefer-standby");
        let (port, recovery) = reached(&info).unwrap_or_else(|e| panic!("{info}: {e}"));
        assert_eq!((port, recovery), (order[0], false), "{info}");
    }
    // A standby alone, and a standby listed twice.
    for ports in [&[standby.port()][..], &[standby.port(), standby.port()]] {
        let info = conninfo(ports, "target_session_attrs=prefer-standby");
        assert_eq!(reached(&info).unwrap(), (standby.port(), true), "{info}");
    }
}

#[test]
fn dblink_connects_by_target_session_attrs() {
    let (primary, standby) = pair();
    let (p, s) = (primary.port(), standby.port());
    let mut db = Dblink::new();
    db.connect("rw", &conninfo(&[s, p], "target_session_attrs=read-write"))
        .unwrap();
    db.connect("ro", &conninfo(&[p, s], "target_session_attrs=standby"))
        .unwrap();
    assert_eq!(
        db.exec("rw", "CREATE TEMP TABLE t (x int)").unwrap(),
        "CREATE TABLE"
    );
    let err = db.exec("ro", "CREATE TEMP TABLE t (x int)").unwrap_err();
    assert!(
        err.message()
            .contains("cannot execute CREATE TABLE in a read-only transaction"),
        "{err}"
    );
    let err = db
        .connect("none", &conninfo(&[s], "target_session_attrs=primary"))
        .unwrap_err();
    assert_eq!(err.message(), "could not establish connection");
    assert_eq!(
        err.detail(),
        Some(rejected(s, "server is in hot standby mode").as_str())
    );
}

#[test]
fn primary_down_then_promotion_then_old_primary_back() {
    let (mut primary, standby) = new_pair();
    let (p, s) = (primary.port(), standby.port());
    primary.stop_server().expect("stop the primary");

    // Primary down: the standby answers what it can.
    for attrs in ["any", "read-only", "standby", "prefer-standby"] {
        let info = conninfo(&[p, s], &format!("target_session_attrs={attrs}"));
        assert_eq!(reached(&info).unwrap(), (s, true), "{info}");
    }
    for (attrs, text) in [
        ("read-write", "session is read-only"),
        ("primary", "server is in hot standby mode"),
    ] {
        let info = conninfo(&[p, s], &format!("target_session_attrs={attrs}"));
        let err = connect_err(&info);
        let lines: Vec<&str> = err.lines().collect();
        let refused =
            format!("connection to server at \"127.0.0.1\", port {p} failed: Connection refused");
        assert!(lines[0].starts_with(&refused), "{err}");
        assert_eq!(
            lines.last().copied(),
            Some(rejected(s, text).as_str()),
            "{err}"
        );
    }

    // Failover: the standby is promoted and takes writes.
    standby.promote().expect("promote");
    for attrs in ["any", "read-write", "primary", "prefer-standby"] {
        let info = conninfo(&[p, s], &format!("target_session_attrs={attrs}"));
        assert_eq!(reached(&info).unwrap(), (s, false), "{info}");
    }
    for (attrs, text) in [
        ("read-only", "session is not read-only"),
        ("standby", "server is not in hot standby mode"),
    ] {
        let info = conninfo(&[s, p], &format!("target_session_attrs={attrs}"));
        let err = connect_err(&info);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines[0], rejected(s, text), "{err}");
        assert!(
            lines[1].contains(&format!("port {p} failed: Connection refused")),
            "{err}"
        );
    }

    // The old primary comes back as a primary too: two primaries, the first listed wins.
    primary.start_server().expect("restart the old primary");
    for order in [[p, s], [s, p]] {
        for attrs in ["read-write", "primary", "prefer-standby"] {
            let info = conninfo(&order, &format!("target_session_attrs={attrs}"));
            assert_eq!(reached(&info).unwrap(), (order[0], false), "{info}");
        }
        let info = conninfo(&order, "target_session_attrs=standby");
        let want = format!(
            "{}\n{}",
            rejected(order[0], "server is not in hot standby mode"),
            rejected(order[1], "server is not in hot standby mode")
        );
        assert_eq!(connect_err(&info), want);
    }
}

#[test]
fn load_balance_hosts_random_spreads_connects() {
    let (primary, standby) = pair();
    let (p, s) = (primary.port(), standby.port());
    let mut counts = [0u32; 2];
    for _ in 0..40 {
        let info = conninfo(&[p, s], "load_balance_hosts=random");
        let (port, recovery) = reached(&info).unwrap();
        counts[usize::from(which(port, recovery) == Server::Standby)] += 1;
    }
    // 40 fair coin flips all alike: 2^-39.
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "primary/standby: {counts:?}"
    );

    // Shuffled or not, target_session_attrs picks the same server.
    for _ in 0..10 {
        let info = conninfo(
            &[p, s],
            "load_balance_hosts=random target_session_attrs=read-write",
        );
        assert_eq!(reached(&info).unwrap(), (p, false), "{info}");
        let info = conninfo(
            &[p, s],
            "load_balance_hosts=random target_session_attrs=standby",
        );
        assert_eq!(reached(&info).unwrap(), (s, true), "{info}");
    }

    // `disable` (the default) keeps the order.
    for _ in 0..10 {
        let info = conninfo(&[s, p], "load_balance_hosts=disable");
        assert_eq!(reached(&info).unwrap(), (s, true), "{info}");
    }
}

#[test]
fn invalid_values_give_libpq_texts() {
    let (primary, standby) = pair();
    let ports = [primary.port(), standby.port()];
    assert_eq!(
        connect_err(&conninfo(&ports, "target_session_attrs=sometimes")),
        "invalid target_session_attrs value: \"sometimes\""
    );
    assert_eq!(
        connect_err(&conninfo(&ports, "load_balance_hosts=sometimes")),
        "invalid load_balance_hosts value: \"sometimes\""
    );
}

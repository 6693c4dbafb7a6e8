//! TCP keepalive options from the connection string, read back from the socket of a connection to
//! the throwaway cluster: libpq's defaults (`SO_KEEPALIVE` on, the system's timings), explicit values,
//! `keepalives=0`, and none of it over a unix-domain socket.

use std::time::Duration;

use pgdblink::cluster::{Cluster, Role};
use pgdblink::driver::Client;
use socket2::SockRef;

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

fn connect(extra: &str) -> Client {
    let conninfo = format!("{} {extra}", cluster().conninfo(Role::Trust));
    let mut client = Client::connect(&conninfo).unwrap_or_else(|e| panic!("{conninfo}: {e}"));
    let results = client.query("SELECT 1").expect("the connection works");
    assert_eq!(results[0].rows().and_then(|r| r.get(0, 0)), Some("1"));
    client
}

/// The system's default for a keepalive setting (`/proc/sys/net/ipv4/tcp_keepalive_*`).
fn system_default(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/tcp_keepalive_{name}"))
        .expect("keepalive sysctl")
        .trim()
        .parse()
        .expect("a number")
}

/// (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT) of the client's socket.
fn options(client: &Client) -> (bool, Duration, Duration, u32, Option<Duration>) {
    let socket = SockRef::from(client.tcp_stream().expect("a TCP connection"));
    (
        socket.keepalive().expect("SO_KEEPALIVE"),
        socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
        socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
        socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"),
        socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
    )
}

fn system_defaults() -> (Duration, Duration, u32) {
    (
        Duration::from_secs(system_default("time")),
        Duration::from_secs(system_default("intvl")),
        u32::try_from(system_default("probes")).expect("probes"),
    )
}

#[test]
fn keepalives_are_on_by_default_with_the_system_timings() {
    let (idle, interval, count) = system_defaults();
    assert_eq!(options(&connect("")), (true, idle, interval, count, None));
    assert_eq!(
        options(&connect("keepalives=1")),
        (true, idle, interval, count, None)
    );
}

#[test]
fn explicit_keepalive_settings_are_applied() {
    let client = connect(
        "keepalives_idle=17 keepalives_interval=3 keepalives_count=4 tcp_user_timeout=9000",
    );
    assert_eq!(
        options(&client),
        (
            true,
            Duration::from_secs(17),
            Duration::from_secs(3),
            4,
            Some(Duration::from_millis(9000))
        )
    );
    // Only the ones given are set.
    let (_, interval, count) = system_defaults();
    assert_eq!(
        options(&connect("keepalives_idle=29")),
        (true, Duration::from_secs(29), interval, count, None)
    );
}

#[test]
fn keepalives_0_turns_them_off_and_sets_nothing() {
    let (idle, interval, count) = system_defaults();
    assert_eq!(
        options(&connect("keepalives=0")),
        (false, idle, interval, count, None)
    );
    // As libpq: with keepalives off, the other settings (tcp_user_timeout too) are not applied.
    assert_eq!(
        options(&connect(
            "keepalives=0 keepalives_idle=17 tcp_user_timeout=9000"
        )),
        (false, idle, interval, count, None)
    );
}

#[test]
fn bad_keepalive_values_fail_the_tcp_attempt_with_libpq_texts() {
    let base = cluster().conninfo(Role::Trust);
    let e = Client::connect(&format!("{base} keepalives_idle=soon")).unwrap_err();
    assert!(
        e.message().ends_with(
            r#"failed: invalid integer value "soon" for connection option "keepalives_idle""#
        ),
        "{}",
        e.message()
    );
    // Linux refuses an idle time of 0 (negative values count as 0, as in libpq).
    for value in ["0", "-5"] {
        let e = Client::connect(&format!("{base} keepalives_idle={value}")).unwrap_err();
        assert!(
            e.message()
                .ends_with("failed: setsockopt(TCP_KEEPIDLE) failed: Invalid argument"),
            "{value}: {}",
            e.message()
        );
    }
}

#[test]
fn unix_sockets_have_no_tcp_options() {
    let conninfo = format!(
        "{} keepalives_idle=soon tcp_user_timeout=9000",
        cluster().conninfo_unix(Role::Trust)
    );
    let mut client = Client::connect(&conninfo).expect("no TCP option applies to a unix socket");
    assert!(client.tcp_stream().is_none());
    assert_eq!(client.query("SELECT 1").expect("query").len(), 1);
}

//! A `Client` waiting for its one TCP connection without a deadline sleeps in that connection's
//! `recv` (Linux; the socket goes to blocking mode while every other read and write passes
//! `MSG_DONTWAIT`); over the unix socket it waits for readiness. These tests show either wait ends
//! on every way an answer can come, from a real server, and that nothing else ever blocks on the
//! socket: after a wait in `recv`, a scripted server that answers nothing leaves `is_busy` and a
//! wait with a deadline returning.

use std::thread;
use std::time::Duration;

use pgdblink::cluster::{Cluster, Role};
use pgdblink::driver::Client;
use pgdblink::sqlstate;
use protocol_tests::fake_server::{FakeServer, Step, select_1_result, trust_startup};
use protocol_tests::helpers::{wait_until_sleeping_sql, within};

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

/// Both ways to reach the cluster: TCP and the unix socket.
fn conninfos(role: Role) -> [String; 2] {
    [cluster().conninfo(role), cluster().conninfo_unix(role)]
}

/// Runs `SELECT 1` to the end, so that the client has waited in `recv` at least once.
fn select_1(c: &mut Client) {
    c.send_query("SELECT 1").unwrap();
    let rows = c.get_result().unwrap().expect("a result");
    assert_eq!(rows.rows().unwrap().get(0, 0), Some("1"));
    assert!(c.get_result().unwrap().is_none());
}

/// A client on `conninfo` that has waited once, now running `SELECT pg_sleep(60)`; its backend pid.
fn sleeping_client(conninfo: &str) -> (Client, u32) {
    let mut c = Client::connect(conninfo).unwrap();
    select_1(&mut c);
    let pid = c.backend_pid().unwrap();
    c.send_query("SELECT pg_sleep(60)").unwrap();
    (c, pid)
}

/// From another thread, once backend `pid` sleeps: `then` (given a superuser connection).
fn when_sleeping(
    pid: u32,
    then: impl FnOnce(&mut Client) + Send + 'static,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut admin = Client::connect(&cluster().conninfo(Role::Super)).unwrap();
        admin.query(&wait_until_sleeping_sql(pid)).unwrap();
        then(&mut admin);
    })
}

/// A cancel request sent by another thread ends the wait with the server's 57014, and the
/// connection goes on; over TCP and the unix socket.
#[test]
fn a_cancel_from_another_thread_ends_the_wait() {
    for conninfo in conninfos(Role::Trust) {
        let (mut c, pid) = sleeping_client(&conninfo);
        let token = c.cancel_token().unwrap();
        let canceller = when_sleeping(pid, move |_| token.cancel(Duration::from_secs(10)).unwrap());
        let e = within(Duration::from_secs(30), || c.get_result()).expect_err("cancelled");
        canceller.join().unwrap();
        assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED), "{conninfo}");
        assert!(c.get_result().unwrap().is_none());
        select_1(&mut c);
    }
}

/// A backend terminated by another session while the client waits: its FATAL, then the lost
/// connection in libpq's words; over TCP and the unix socket.
#[test]
fn a_terminated_backend_ends_the_wait() {
    for conninfo in conninfos(Role::Trust) {
        let (mut c, pid) = sleeping_client(&conninfo);
        let terminate = format!("SELECT pg_terminate_backend({pid})");
        let admin = when_sleeping(pid, move |admin| drop(admin.query(&terminate).unwrap()));
        let e = within(Duration::from_secs(30), || c.get_result()).expect_err("terminated");
        admin.join().unwrap();
        assert_eq!(e.code(), Some(sqlstate::ADMIN_SHUTDOWN), "{conninfo}");
        let lost = c.get_result().expect_err("connection lost");
        assert_eq!(lost.code(), Some(sqlstate::CONNECTION_FAILURE));
        assert!(
            lost.message()
                .starts_with("server closed the connection unexpectedly")
        );
        assert!(c.get_result().unwrap().is_none());
    }
}

/// A result larger than one read arrives whole through the wait (the first `recv`, then reads
/// that do not wait), on both transports.
#[test]
fn a_large_result_arrives_whole() {
    for conninfo in conninfos(Role::Trust) {
        let mut c = Client::connect(&conninfo).unwrap();
        select_1(&mut c);
        c.send_query("SELECT repeat('x', 1000) FROM generate_series(1, 5000)")
            .unwrap();
        let r = c.get_result().unwrap().expect("rows");
        let rows = r.rows().unwrap();
        assert_eq!(rows.len(), 5000);
        assert!(
            rows.iter()
                .all(|row| row.get(0).map(str::len) == Some(1000))
        );
        assert!(c.get_result().unwrap().is_none());
    }
}

/// After the client has waited in `recv` (its socket now in blocking mode), nothing else blocks:
/// with a server that reads the next queries but answers nothing, `is_busy` and a wait with a
/// deadline return at once (a read that slept would hang the test, caught by `within`).
#[test]
fn nothing_else_blocks_after_a_wait_in_recv() {
    let server = FakeServer::single(vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::Expect(b'Q'),
        // Pacing: the answer comes late enough that the client waits for it in `recv`.
        Step::Sleep(Duration::from_millis(200)),
        Step::Send(select_1_result()),
        Step::Expect(b'P'),
        Step::Expect(b'B'),
        Step::Expect(b'D'),
        Step::Expect(b'E'),
        Step::Expect(b'H'),
        // No answer, until the client goes away.
        Step::Hang(Duration::from_secs(60)),
    ]);
    within(Duration::from_secs(20), || {
        let mut c = Client::connect(&server.conninfo("")).unwrap();
        select_1(&mut c);
        c.enter_pipeline_mode().unwrap();
        c.send_query_params("SELECT $1", &[Some("1")]).unwrap();
        c.send_flush_request().unwrap();
        for _ in 0..3 {
            assert!(c.is_busy());
            let r = c.get_result_timeout(Duration::from_millis(20)).unwrap();
            assert!(r.is_none(), "no answer before the deadline");
        }
    });
    server.finish();
}

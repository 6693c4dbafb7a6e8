//! One connection end to end against a real PostgreSQL: the throwaway cluster this test binary starts
//! (and removes when it exits).

use std::time::{Duration, Instant};

use pgdblink::cluster::{Cluster, Role};
use pgdblink::conninfo::{Config, MapEnvironment};
use pgdblink::driver::Client;
use pgdblink::{ErrorKind, QueryResult, sqlstate};

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

fn client(role: Role) -> Client {
    Client::connect(&cluster().conninfo(role)).expect("connect")
}

fn one_value(client: &mut Client, sql: &str) -> Option<String> {
    let results = client.query(sql).expect("query");
    let rows = results.last().and_then(|r| r.rows()).expect("rows");
    rows.get(0, 0).map(str::to_owned)
}

/// Waits (up to 10 s) until backend `pid` is inside `pg_sleep`, as `pg_stat_activity` shows it to a
/// second connection.
fn wait_until_sleeping(pid: u32) {
    client(Role::Super)
        .query(&protocol_tests::helpers::wait_until_sleeping_sql(pid))
        .expect("backend seen in pg_sleep");
}

#[test]
fn auth_every_method_over_tcp_and_unix() {
    for role in [Role::Trust, Role::Password, Role::Md5, Role::Scram] {
        for conninfo in [cluster().conninfo(role), cluster().conninfo_unix(role)] {
            let mut c = Client::connect(&conninfo).unwrap_or_else(|e| panic!("{conninfo}: {e}"));
            assert_eq!(
                one_value(&mut c, "SELECT current_user").as_deref(),
                Some(role.user())
            );
            assert_eq!(c.conn().parameter("client_encoding"), Some("UTF8"));
            assert!(c.backend_pid().is_some());
        }
    }
}

#[test]
fn auth_wrong_password_fails_with_server_text() {
    for role in [Role::Password, Role::Md5, Role::Scram] {
        let conninfo = cluster()
            .conninfo(role)
            .replace("password=pencil", "password=wrong");
        let e = Client::connect(&conninfo).expect_err("wrong password must fail");
        let want = format!(
            "connection to server at \"127.0.0.1\", port {} failed: FATAL:  password authentication failed for user \"{}\"",
            cluster().port(),
            role.user()
        );
        assert_eq!(e.message(), want);
        assert_eq!(e.code(), Some(sqlstate::INVALID_PASSWORD));
        assert_eq!(e.kind(), ErrorKind::Connect);
        assert!(
            !format!("{e:?}{e}").contains("wrong"),
            "password leaked: {e:?}"
        );
    }
}

#[test]
fn auth_missing_password_is_libpq_text() {
    let conninfo = cluster()
        .conninfo(Role::Scram)
        .replace("password=pencil", "");
    let config = Config::parse(&conninfo).unwrap();
    // Hermetic: no PGPASSWORD, no ~/.pgpass.
    let env = MapEnvironment::new().with_user("nobody");
    let e = Client::connect_config(&config, &env).expect_err("no password");
    assert!(
        e.message()
            .ends_with("failed: fe_sendauth: no password supplied"),
        "{e}"
    );
}

#[test]
fn pg_hba_reject_reported() {
    let e = Client::connect(&cluster().conninfo(Role::Rejected)).expect_err("rejected");
    assert!(
        e.message().contains(
            "FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"rejected_user\""
        ),
        "{e}"
    );
}

#[test]
fn connection_refused_text_matches_libpq() {
    let e = Client::connect("host=127.0.0.1 port=1 dbname=x user=x").expect_err("refused");
    assert_eq!(
        e.message(),
        "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"
    );
    assert_eq!(
        e.code(),
        Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
    );
    assert!(e.is_closed());
}

#[test]
fn missing_unix_socket_text_matches_libpq() {
    let e = Client::connect("host=/nonexistent port=5999 dbname=x user=x").expect_err("no socket");
    assert_eq!(
        e.message(),
        "connection to server on socket \"/nonexistent/.s.PGSQL.5999\" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?"
    );
}

#[test]
fn unknown_database_reported() {
    let conninfo = cluster()
        .conninfo(Role::Trust)
        .replace("dbname=pgdblink", "dbname=nosuchdb");
    let e = Client::connect(&conninfo).expect_err("no such db");
    assert!(
        e.message()
            .ends_with("FATAL:  database \"nosuchdb\" does not exist"),
        "{e}"
    );
    assert_eq!(e.code(), Some(sqlstate::INVALID_CATALOG_NAME));
}

#[test]
fn multi_host_falls_back_to_the_next() {
    let conninfo = format!(
        "host=127.0.0.1,127.0.0.1 port=1,{} dbname=pgdblink user=trust_user",
        cluster().port()
    );
    let mut c = Client::connect(&conninfo).expect("second host");
    assert_eq!(one_value(&mut c, "SELECT 7").as_deref(), Some("7"));
    // The URI form too.
    let uri = format!(
        "postgresql://trust_user@127.0.0.1:1,127.0.0.1:{}/pgdblink",
        cluster().port()
    );
    Client::connect(&uri).expect("URI multi-host");
}

#[test]
fn multi_host_errors_are_concatenated() {
    let e = Client::connect("host=127.0.0.1,127.0.0.1 port=1,2 dbname=x user=x")
        .expect_err("both fail");
    let lines: Vec<&str> = e
        .message()
        .lines()
        .filter(|l| l.starts_with("connection to"))
        .collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(lines[1].contains("port 2 failed"));
}

#[test]
fn multi_statement_results_in_order() {
    let mut c = client(Role::Trust);
    c.send_query("SELECT 1 AS a; SELECT 1/0; SELECT 3").unwrap();
    let first = c.get_result().unwrap().unwrap();
    assert_eq!(first.rows().unwrap().get(0, 0), Some("1"));
    let err = c.get_result().expect_err("division by zero");
    assert_eq!(err.code(), Some(sqlstate::DIVISION_BY_ZERO));
    assert!(!err.is_closed());
    assert_eq!(err.message(), "division by zero");
    assert_eq!(c.error_message(), "ERROR:  division by zero\n");
    assert!(c.get_result().unwrap().is_none());
    assert!(c.get_result().unwrap().is_none(), "end marker repeats");
    // Usable again; the error buffer is cleared by the new query.
    assert_eq!(one_value(&mut c, "SELECT 'ok'").as_deref(), Some("ok"));
    assert_eq!(c.error_message(), "");
}

#[test]
fn commands_empty_queries_and_nulls() {
    let mut c = client(Role::Trust);
    let results = c
        .query("CREATE TEMP TABLE t(a int, b text); INSERT INTO t VALUES (1,'x'),(2,NULL); SELECT a, b FROM t ORDER BY a")
        .unwrap();
    assert_eq!(results[0], QueryResult::Command("CREATE TABLE".into()));
    assert_eq!(results[1], QueryResult::Command("INSERT 0 2".into()));
    let rows = results[2].rows().unwrap();
    assert_eq!(rows.command_tag(), "SELECT 2");
    assert_eq!(rows.columns()[0].name(), "a");
    assert_eq!(rows.columns()[0].type_oid(), 23);
    assert_eq!(rows.get(1, 1), None);
    assert!(rows.is_null(1, 1));
    assert_eq!(rows.get(0, 1), Some("x"));
    assert_eq!(c.query(";").unwrap(), vec![QueryResult::EmptyQuery]);
    assert_eq!(c.query("").unwrap(), vec![QueryResult::EmptyQuery]);
}

#[test]
fn server_error_fields_and_formatting() {
    let mut c = client(Role::Trust);
    let e = c
        .query("DO $d$ BEGIN RAISE EXCEPTION 'boom %', 1 USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = 'P0099'; END $d$")
        .expect_err("raised");
    assert_eq!(e.code(), Some("P0099"));
    // Debug names every field the server sent, its source location included.
    let debug = format!("{e:?}");
    for part in [
        "kind: Server",
        "severity_nonlocalized: \"ERROR\"",
        "context: \"PL/pgSQL function inline_code_block line 1 at RAISE\"",
        "source_file: \"pl_exec.c\"",
        "source_function: \"exec_stmt_raise\"",
    ] {
        assert!(debug.contains(part), "{part} missing from {debug}");
    }
    assert_eq!(
        e.to_string(),
        "ERROR:  boom 1\nDETAIL:  the detail\nHINT:  the hint"
    );
    assert_eq!(
        c.error_message(),
        "ERROR:  boom 1\nDETAIL:  the detail\nHINT:  the hint\nCONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n"
    );
}

#[test]
fn notices_are_queued_not_printed() {
    let mut c = client(Role::Trust);
    c.query("DO $$ BEGIN RAISE NOTICE 'n1'; RAISE WARNING 'w1'; END $$; SELECT 2")
        .unwrap();
    let notices = c.take_notices();
    let texts: Vec<_> = notices
        .iter()
        .map(|n| (n.severity().unwrap_or(""), n.message()))
        .collect();
    assert_eq!(texts, vec![("NOTICE", "n1"), ("WARNING", "w1")]);
    assert!(c.take_notices().is_empty());
}

#[test]
fn listen_notify_between_connections() {
    let mut listener = client(Role::Trust);
    let mut notifier = client(Role::Trust);
    listener.query("LISTEN pgdblink_chan").unwrap();
    notifier
        .query("NOTIFY pgdblink_chan, 'hello'; NOTIFY pgdblink_chan")
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 2 && Instant::now() < deadline {
        got.extend(
            listener
                .wait_for_notifications(Duration::from_secs(1))
                .unwrap(),
        );
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].channel, "pgdblink_chan");
    assert_eq!(got[0].payload, "hello");
    assert_eq!(got[1].payload, "");
    assert_eq!(Some(got[0].pid), notifier.backend_pid());
    // A self-notification arrives before the query's end.
    listener.query("NOTIFY pgdblink_chan, 'self'").unwrap();
    let own = listener.take_notifications();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].payload, "self");
}

#[test]
fn cancel_interrupts_sleep_with_57014() {
    let mut c = client(Role::Trust);
    c.send_query("SELECT pg_sleep(10)").unwrap();
    wait_until_sleeping(c.backend_pid().unwrap());
    assert!(c.is_busy());
    let start = Instant::now();
    c.cancel().expect("cancel delivered");
    let e = c.get_result().expect_err("cancelled");
    assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED));
    assert!(!e.is_closed());
    assert_eq!(e.message(), "canceling statement due to user request");
    assert!(c.get_result().unwrap().is_none());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(one_value(&mut c, "SELECT 1").as_deref(), Some("1"));
}

#[test]
fn cancel_on_idle_connection_is_harmless() {
    let mut c = client(Role::Trust);
    c.cancel().expect("delivered");
    assert_eq!(one_value(&mut c, "SELECT 5").as_deref(), Some("5"));
}

#[test]
fn cancel_over_unix_socket() {
    let mut c = Client::connect(&cluster().conninfo_unix(Role::Trust)).unwrap();
    c.send_query("SELECT pg_sleep(10)").unwrap();
    wait_until_sleeping(c.backend_pid().unwrap());
    c.cancel().expect("cancel delivered");
    assert_eq!(
        c.get_result().expect_err("cancelled").code(),
        Some(sqlstate::QUERY_CANCELED)
    );
    assert!(c.get_result().unwrap().is_none());
}

#[test]
fn backend_terminated_mid_query() {
    let mut victim = client(Role::Trust);
    let mut admin = client(Role::Super);
    let pid = victim.backend_pid().unwrap();
    victim.send_query("SELECT pg_sleep(10)").unwrap();
    wait_until_sleeping(pid);
    admin
        .query(&format!("SELECT pg_terminate_backend({pid})"))
        .unwrap();
    let e = victim.get_result().expect_err("terminated");
    assert_eq!(e.code(), Some(sqlstate::ADMIN_SHUTDOWN));
    assert_eq!(e.severity_nonlocalized(), Some("FATAL"));
    assert!(e.is_closed());
    let lost = victim.get_result().expect_err("connection lost");
    assert_eq!(lost.code(), Some(sqlstate::CONNECTION_FAILURE));
    assert!(lost.is_closed());
    assert!(
        lost.message()
            .starts_with("server closed the connection unexpectedly")
    );
    assert!(victim.get_result().unwrap().is_none());
    let again = victim.send_query("SELECT 1").expect_err("closed");
    assert_eq!(again.message(), "no connection to the server");
    assert!(again.is_closed());
    // Other connections are unaffected.
    assert_eq!(one_value(&mut admin, "SELECT 1").as_deref(), Some("1"));
}

/// Asking for protocol 3.2 works against any server: PostgreSQL 18 and later accept it (and send a
/// longer cancel key), older ones negotiate down to 3.0 with NegotiateProtocolVersion. Either way
/// queries and cancels work. (The negotiation itself, both ways, is covered without a real server by
/// the `negotiate_*` and `protocol_3_2_*` transcripts and by `faults.rs`.)
#[test]
fn protocol_3_2_request_gets_what_the_server_supports() {
    let conninfo = format!(
        "{} max_protocol_version=3.2",
        cluster().conninfo(Role::Scram)
    );
    let mut c = Client::connect(&conninfo).expect("negotiated");
    let version: u32 = one_value(&mut c, "SHOW server_version_num")
        .expect("server_version_num")
        .parse()
        .expect("a number");
    let (minor, key_lengths) = if version >= 180_000 {
        (2, 4..=256)
    } else {
        (0, 4..=4)
    };
    assert_eq!(c.conn().protocol_minor(), minor, "server {version}");
    let key = c.conn().backend_key().expect("backend key").1.len();
    assert!(key_lengths.contains(&key), "{key}-byte key from {version}");
    assert_eq!(one_value(&mut c, "SELECT 42").as_deref(), Some("42"));
    c.send_query("SELECT pg_sleep(10)").unwrap();
    wait_until_sleeping(c.backend_pid().unwrap());
    c.cancel().unwrap();
    assert_eq!(
        c.get_result().expect_err("cancelled").code(),
        Some(sqlstate::QUERY_CANCELED)
    );
}

#[test]
fn sslmode_require_refused_by_server_without_tls() {
    let conninfo = format!("{} sslmode=require", cluster().conninfo(Role::Trust));
    let e = Client::connect(&conninfo).expect_err("no TLS");
    assert!(
        e.message()
            .ends_with("failed: server does not support SSL, but SSL was required"),
        "{e}"
    );
    // prefer connects in plain text.
    let conninfo = format!("{} sslmode=prefer", cluster().conninfo(Role::Trust));
    Client::connect(&conninfo).expect("prefer");
}

#[test]
fn target_session_attrs() {
    let base = cluster().conninfo(Role::Trust);
    Client::connect(&format!("{base} target_session_attrs=read-write"))
        .expect("primary is writable");
    let e = Client::connect(&format!("{base} target_session_attrs=read-only"))
        .expect_err("not read-only");
    assert!(
        e.message().ends_with("failed: session is not read-only"),
        "{e}"
    );
}

#[test]
fn copy_both_directions_leave_connection_usable() {
    let mut c = client(Role::Trust);
    let e = c
        .query("COPY (SELECT g FROM generate_series(1,1000) g) TO STDOUT")
        .expect_err("copy out");
    assert_eq!(
        e.message(),
        "COPY TO STDOUT is not supported here: use copy_out"
    );
    assert_eq!(
        one_value(&mut c, "SELECT 'after out'").as_deref(),
        Some("after out")
    );
    c.query("CREATE TEMP TABLE ci(a int)").unwrap();
    let e = c.query("COPY ci FROM STDIN").expect_err("copy in");
    assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED));
    assert_eq!(
        e.message(),
        "COPY from stdin failed: COPY FROM STDIN is not supported here: use copy_in"
    );
    assert_eq!(
        one_value(&mut c, "SELECT count(*) FROM ci").as_deref(),
        Some("0")
    );
}

#[test]
fn large_result_values_intact() {
    let mut c = client(Role::Trust);
    let results = c
        .query("SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 100000) g")
        .unwrap();
    let rows = results[0].rows().unwrap();
    assert_eq!(rows.len(), 100_000);
    assert_eq!(rows.command_tag(), "SELECT 100000");
    for (i, row) in rows.iter().enumerate().step_by(997) {
        let g = i + 1;
        assert_eq!(row.get(0), Some(g.to_string().as_str()));
        assert_eq!(row.get(1).unwrap().len(), 96);
    }
    // One value of 5 MB.
    let v = one_value(&mut c, "SELECT repeat('x', 5000000)").unwrap();
    assert_eq!(v.len(), 5_000_000);
}

#[test]
fn utf8_values_and_application_name() {
    let conninfo = format!(
        "{} application_name='pgdblink test'",
        cluster().conninfo(Role::Trust)
    );
    let mut c = Client::connect(&conninfo).unwrap();
    assert_eq!(
        one_value(&mut c, "SELECT current_setting('application_name')").as_deref(),
        Some("pgdblink test")
    );
    assert_eq!(
        one_value(&mut c, "SELECT 'héllo wörld ✓'").as_deref(),
        Some("héllo wörld ✓")
    );
}

#[test]
fn options_keyword_sets_gucs() {
    let conninfo = format!(
        "{} options='-c search_path=pg_catalog -c work_mem=8MB'",
        cluster().conninfo(Role::Trust)
    );
    let mut c = Client::connect(&conninfo).unwrap();
    assert_eq!(one_value(&mut c, "SHOW work_mem").as_deref(), Some("8MB"));
    assert_eq!(
        one_value(&mut c, "SHOW search_path").as_deref(),
        Some("pg_catalog")
    );
}

#[test]
fn connect_timeout_against_silent_server() {
    // A listener that accepts (via the backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let start = Instant::now();
    let e = Client::connect(&format!(
        "host=127.0.0.1 port={port} user=x dbname=x connect_timeout=2"
    ))
    .expect_err("timeout");
    assert!(e.message().ends_with("failed: timeout expired"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn scram_key_cache_never_admits_a_wrong_or_old_password() {
    // Its own cluster: the test changes scram_user's password.
    let own = Cluster::start().expect("cluster");
    let conninfo = own.conninfo(Role::Scram);
    for _ in 0..3 {
        Client::connect(&conninfo).expect("cached reconnect");
    }
    let wrong = conninfo.replace("password=pencil", "password=second");
    assert_eq!(
        Client::connect(&wrong).expect_err("wrong password").code(),
        Some(sqlstate::INVALID_PASSWORD)
    );
    // A new password means a new salt: the old keys must not be used.
    Client::connect(&own.conninfo(Role::Super))
        .unwrap()
        .query("ALTER ROLE scram_user PASSWORD 'second'")
        .unwrap();
    Client::connect(&wrong).expect("new password");
    assert_eq!(
        Client::connect(&conninfo).expect_err("old password").code(),
        Some(sqlstate::INVALID_PASSWORD)
    );
}

/// Right after a send the driver reads once before waiting (the answer is often there already). The
/// answers must be the same whether that early read finds the answer (fast queries), finds nothing
/// (slow ones, after which early reads pause for a few queries) or finds only part of it (a result
/// larger than one read), over TCP and unix sockets, with `Client` and with `Dblink`.
#[test]
fn early_read_after_send_gives_the_same_answers_fast_slow_and_large() {
    for conninfo in [
        cluster().conninfo(Role::Trust),
        cluster().conninfo_unix(Role::Trust),
    ] {
        let mut c = Client::connect(&conninfo).expect("connect");
        let mut db = pgdblink::Dblink::new();
        db.connect("a", &conninfo).expect("connect");
        for i in 0..60u32 {
            let sql = match i % 6 {
                // Slower than a send: the early read finds nothing.
                0 => format!("SELECT {i}, pg_sleep(0.01)::text"),
                // Several reads' worth of rows.
                3 => format!("SELECT {i}, repeat('x', g) FROM generate_series(1, 700) AS g"),
                _ => format!("SELECT {i}, 'fast'"),
            };
            let via_client = c.query(&sql).expect("client query");
            let rows = via_client[0].rows().expect("rows");
            db.send_query("a", &sql).expect("send");
            let via_db = db.get_result("a").expect("result").expect("one result");
            assert!(db.get_result("a").expect("end").is_none());
            let db_rows = via_db.rows().expect("rows");
            assert_eq!(rows.len(), db_rows.len(), "{sql}");
            for (r, (x, y)) in rows.iter().zip(db_rows.iter()).enumerate() {
                assert_eq!(x.get(0), Some(i.to_string().as_str()), "{sql} row {r}");
                assert_eq!(x.get(1), y.get(1), "{sql} row {r}");
            }
            if i % 6 == 3 {
                assert_eq!(rows.len(), 700);
                assert_eq!(rows.get(699, 1).map(str::len), Some(700));
            }
        }
    }
}

/// The early-read hint's back-off, on a real connection: a send sets the hint; after an early read
/// that found nothing the next 15 sends set none, after a second miss in a row the next 31, then 63;
/// an early read that found the answer starts over at 15. Answers are unaffected throughout.
#[test]
fn early_read_hint_backs_off_after_misses_and_resets_on_a_hit() {
    use mio::event::Source;
    use pgdblink::conn::{Connection, PollResult, StartupConfig, State};
    use pgdblink::driver::{Peer, PgSocket};

    let mut poll = mio::Poll::new().expect("poll");
    let mut events = mio::Events::with_capacity(8);
    let token = mio::Token(0);
    let peer = Peer::Tcp(([127, 0, 0, 1], cluster().port()).into());
    let startup = StartupConfig::builder(Role::Trust.user(), "postgres", "livenonce").build();
    let mut socket = PgSocket::connect(peer, Connection::new(startup)).expect("connect");
    let both = mio::Interest::READABLE | mio::Interest::WRITABLE;
    socket
        .register(poll.registry(), token, both)
        .expect("register");
    let mut scratch = vec![0u8; 64 * 1024];
    let mut wait = |socket: &mut PgSocket| {
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .expect("poll");
        socket.on_event(&mut scratch, false);
        socket
            .update_registration(poll.registry(), token)
            .expect("reregister");
    };
    while socket.conn().state() == State::Startup {
        wait(&mut socket);
    }
    assert!(socket.conn().fatal_error().is_none());
    // One query; returns whether its send set the hint. The hint is taken either way, and the query
    // answered (and checked) through readiness events.
    let mut query = |socket: &mut PgSocket, n: u32| -> bool {
        socket
            .command(|c| c.send_query(&format!("SELECT {n}")))
            .expect("send");
        let hinted = socket.take_read_hint();
        loop {
            match socket.conn_mut().poll_result() {
                PollResult::Ready(r) => {
                    let r = r.expect("result");
                    assert_eq!(
                        r.rows().and_then(|rows| rows.get(0, 0)),
                        Some(n.to_string().as_str())
                    );
                }
                PollResult::Done => return hinted,
                PollResult::Pending => wait(socket),
            }
        }
    };
    let mut n = 0;
    let mut run = |socket: &mut PgSocket| {
        n += 1;
        query(socket, n)
    };
    // Hints pass until a miss is reported.
    assert!(run(&mut socket) && run(&mut socket));
    for gap in [15, 31, 63] {
        socket.hint_result(0);
        for _ in 0..gap {
            assert!(!run(&mut socket), "a send during the back-off set the hint");
        }
        assert!(
            run(&mut socket),
            "the hint did not come back after {gap} sends"
        );
    }
    // A hit starts over: the next miss lets 15 sends pass again.
    socket.hint_result(1);
    assert!(run(&mut socket));
    socket.hint_result(0);
    for _ in 0..15 {
        assert!(!run(&mut socket));
    }
    assert!(run(&mut socket));
    socket.close();
}

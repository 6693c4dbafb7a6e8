//! pgdblink through a real PgBouncer in transaction-pooling mode, in front of the throwaway cluster
//! (the kit's `PgBouncer`): md5 and SCRAM logins, queries, cancel, pipelines of unnamed statements,
//! the startup parameters pgdblink sends, and what named prepared statements do on a PgBouncer
//! without protocol-level prepared statement support (before 1.21).

use std::sync::OnceLock;

use pgdblink::cluster::{Cluster, PgBouncer, PgBouncerOptions, Role};
use pgdblink::conninfo::{Config, MapEnvironment};
use pgdblink::driver::Client;
use pgdblink::{Dblink, QueryResult, sqlstate};
use protocol_tests::helpers::wait_for_activity_sql;

fn cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

/// A PgBouncer shared by the tests that do not depend on which server connection they get.
fn bouncer() -> &'static PgBouncer {
    static BOUNCER: OnceLock<PgBouncer> = OnceLock::new();
    BOUNCER.get_or_init(|| PgBouncer::start(cluster()).expect("PgBouncer"))
}

fn value(result: &QueryResult) -> Option<&str> {
    result.rows().and_then(|r| r.get(0, 0))
}

fn one(client: &mut Client, sql: &str) -> String {
    let results = client.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    value(results.last().expect("a result"))
        .expect("a value")
        .to_owned()
}

/// Runs `sql` as the superuser on the real server (not through PgBouncer).
fn on_server(sql: &str) {
    Client::connect(&cluster().conninfo_unix(Role::Super))
        .unwrap()
        .query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[test]
fn md5_and_scram_logins_and_queries() {
    for role in [Role::Md5, Role::Scram] {
        let info = bouncer().conninfo(role);
        let mut c = Client::connect(&info).unwrap_or_else(|e| panic!("{info}: {e}"));
        assert_eq!(one(&mut c, "SELECT current_user"), role.user());
        assert_eq!(
            one(&mut c, "SELECT sum(g) FROM generate_series(1, 1000) g"),
            "500500"
        );
        // Transactions keep their server connection from BEGIN to COMMIT.
        c.query("BEGIN").unwrap();
        let pid = one(&mut c, "SELECT pg_backend_pid()");
        assert_eq!(one(&mut c, "SELECT pg_backend_pid()"), pid);
        c.query("COMMIT").unwrap();
        // Several statements in one simple query, and a server error with its SQLSTATE.
        let results = c.query("SELECT 1; SELECT 2").unwrap();
        assert_eq!(results.len(), 2);
        let e = c.query("SELECT 1/0").unwrap_err();
        assert_eq!(e.code(), Some(sqlstate::DIVISION_BY_ZERO));
        assert_eq!(one(&mut c, "SELECT 'still usable'"), "still usable");
        // PgBouncer reports the server's parameters at login.
        assert!(c.conn().parameter("server_version").is_some());
        assert_eq!(c.conn().parameter("client_encoding"), Some("UTF8"));
    }
    let wrong = bouncer()
        .conninfo(Role::Md5)
        .replace("password=pencil", "password=crayon");
    let e = Client::connect(&wrong).unwrap_err();
    // PgBouncer's own text (the server would name the user).
    assert_eq!(
        e.message(),
        format!(
            "connection to server at \"127.0.0.1\", port {} failed: FATAL:  password \
             authentication failed",
            bouncer().port()
        )
    );
}

#[test]
fn dblink_through_pgbouncer() {
    let mut db = Dblink::new();
    db.connect("b", &bouncer().conninfo(Role::Scram)).unwrap();
    db.connect("m", &bouncer().conninfo(Role::Md5)).unwrap();
    for name in ["b", "m"] {
        db.send_query(name, "SELECT pg_sleep(0.01), 7").unwrap();
    }
    let mut done = Vec::new();
    while done.len() < 2 {
        for name in db.wait(None).unwrap() {
            if !db.is_busy(&name).unwrap() {
                let r = db.get_result(&name).unwrap().expect("a result");
                assert_eq!(r.rows().unwrap().get(0, 1), Some("7"));
                assert!(db.get_result(&name).unwrap().is_none());
                done.push(name);
            }
        }
    }
    assert_eq!(db.exec("b", "SET LOCAL work_mem = '8MB'").unwrap(), "SET");
}

#[test]
fn startup_parameters_pgdblink_sends_are_accepted() {
    let port = bouncer().port();
    // The defaults: user, database, client_encoding.
    let mut c = Client::connect(&bouncer().conninfo(Role::Scram)).unwrap();
    assert_eq!(one(&mut c, "SHOW client_encoding"), "UTF8");
    // application_name, and the environment's datestyle and timezone: tracked, set on the server.
    let info = format!(
        "{} application_name=through-bouncer",
        bouncer().conninfo(Role::Scram)
    );
    let env = MapEnvironment::new()
        .with_var("PGDATESTYLE", "ISO, DMY")
        .with_var("PGTZ", "Pacific/Auckland");
    let config: Config = info.parse().unwrap();
    let mut c = Client::connect_config(&config, &env).unwrap();
    assert_eq!(one(&mut c, "SHOW application_name"), "through-bouncer");
    assert_eq!(one(&mut c, "SHOW datestyle"), "ISO, DMY");
    assert_eq!(one(&mut c, "SHOW timezone"), "Pacific/Auckland");

    // PGGEQO becomes a `geqo` startup parameter, which PgBouncer does not track: refused with its
    // text, unless listed in ignore_startup_parameters.
    let env = MapEnvironment::new().with_var("PGGEQO", "off");
    let config: Config = bouncer().conninfo(Role::Trust).parse().unwrap();
    let e = Client::connect_config(&config, &env).unwrap_err();
    assert_eq!(
        e.message(),
        format!(
            "connection to server at \"127.0.0.1\", port {port} failed: FATAL:  unsupported \
             startup parameter: geqo"
        )
    );
    // `options` (only sent when the connection string or PGOPTIONS sets it): PgBouncer before 1.20
    // refuses it whatever it holds; later versions accept `-c` settings of tracked parameters.
    let info = format!(
        "{} options='-c datestyle=ISO'",
        bouncer().conninfo(Role::Trust)
    );
    match Client::connect(&info) {
        Ok(mut c) => assert_eq!(one(&mut c, "SHOW datestyle"), "ISO, MDY"),
        Err(e) => assert_eq!(
            e.message(),
            format!(
                "connection to server at \"127.0.0.1\", port {port} failed: FATAL:  unsupported \
                 startup parameter: options"
            )
        ),
    }
    // Protocol 3.2 asked for (max_protocol_version=3.2, PostgreSQL 18's libpq option): PgBouncer
    // 1.18 does not know the version and closes with a FATAL (no NegotiateProtocolVersion), which
    // pgdblink reports as libpq 18 does, without a retry; newer versions negotiate 3.0.
    let info = format!(
        "{} max_protocol_version=3.2",
        bouncer().conninfo(Role::Trust)
    );
    match Client::connect(&info) {
        Ok(mut c) => assert_eq!(one(&mut c, "SELECT 'negotiated down'"), "negotiated down"),
        Err(e) => {
            let prefix =
                format!("connection to server at \"127.0.0.1\", port {port} failed: FATAL:  ");
            assert!(e.message().starts_with(&prefix), "{e}");
            assert!(e.message().contains("bad packet header"), "{e}");
        }
    }

    let tolerant = PgBouncer::start_with(
        cluster(),
        PgBouncerOptions {
            ignore_startup_parameters: "geqo".to_owned(),
            ..PgBouncerOptions::default()
        },
    )
    .unwrap();
    let config: Config = tolerant.conninfo(Role::Trust).parse().unwrap();
    let mut c = Client::connect_config(&config, &env).unwrap();
    // Ignored: the server keeps its default.
    assert_eq!(one(&mut c, "SHOW geqo"), "on");
}

#[test]
fn cancel_through_pgbouncer() {
    let mut c = Client::connect(&bouncer().conninfo(Role::Scram)).unwrap();
    // Idle (no server connection linked): PgBouncer drops the request; nothing happens.
    c.cancel().unwrap();
    assert_eq!(one(&mut c, "SELECT 1"), "1");

    c.send_query("SELECT pg_sleep(60) /* pgb-cancel-marker */")
        .unwrap();
    // The client's backend pid is PgBouncer's: wait on the real server by the query's text.
    on_server(&wait_for_activity_sql(
        "query LIKE '%pgb-cancel-marker%' AND wait_event = 'PgSleep'",
        1,
    ));
    c.cancel().unwrap();
    let e = c.get_result().unwrap_err();
    assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED));
    assert_eq!(e.message(), "canceling statement due to user request");
    assert_eq!(c.get_result().unwrap(), None);
    assert_eq!(one(&mut c, "SELECT 'after cancel'"), "after cancel");
}

/// Unnamed statements in a pipeline with several syncs, two clients interleaved on a pool of one
/// server connection: each sync ends a transaction (the server connection goes back to the pool),
/// and every result comes back in order to the client that asked.
#[test]
fn pipelines_of_unnamed_statements() {
    let one_server = PgBouncer::start_with(
        cluster(),
        PgBouncerOptions {
            default_pool_size: 1,
            ..PgBouncerOptions::default()
        },
    )
    .unwrap();
    let mut clients: Vec<Client> = (0..2)
        .map(|_| Client::connect(&one_server.conninfo(Role::Md5)).unwrap())
        .collect();
    for c in &mut clients {
        c.enter_pipeline_mode().unwrap();
    }
    let (syncs, per_sync) = (5, 20);
    for s in 0..syncs {
        for (k, c) in clients.iter_mut().enumerate() {
            for i in 0..per_sync {
                let v = format!("{k}-{s}-{i}");
                c.send_query_params("SELECT $1::text", &[Some(&v)]).unwrap();
            }
            c.pipeline_sync().unwrap();
        }
    }
    for (k, c) in clients.iter_mut().enumerate() {
        for s in 0..syncs {
            for i in 0..per_sync {
                let r = c.get_result().unwrap().expect("a result");
                assert_eq!(value(&r), Some(format!("{k}-{s}-{i}").as_str()));
                assert_eq!(c.get_result().unwrap(), None);
            }
            assert_eq!(c.get_result().unwrap(), Some(QueryResult::PipelineSync));
        }
        c.exit_pipeline_mode().unwrap();
        assert_eq!(
            one(c, "SELECT 'out of the pipeline'"),
            "out of the pipeline"
        );
    }
    // query_params outside a pipeline: Parse/Bind/Execute/Sync in one server assignment.
    let r = clients[0]
        .query_params("SELECT $1::int * 2", &[Some("21")])
        .unwrap();
    assert_eq!(value(&r[0]), Some("42"));
}

/// PgBouncer 1.18 predates protocol-level prepared statements (1.21): a named statement lives on
/// the server connection it was prepared on, which in transaction pooling is only lent to the
/// client until the end of the transaction. The errors are the server's, with their SQLSTATEs.
#[test]
fn named_prepared_statements_follow_the_server_connection() {
    // Its own PgBouncer: the test depends on which server connection each client gets (PgBouncer
    // reuses the most recently released one first).
    let bouncer = PgBouncer::start(cluster()).unwrap();
    let connect = || Client::connect(&bouncer.conninfo(Role::Trust)).unwrap();
    let (mut a, mut b) = (connect(), connect());

    // Prepared and used while the same server connection is the free one: works, by luck.
    a.send_prepare("s", "SELECT $1::int * 2").unwrap();
    assert_eq!(
        a.get_result().unwrap(),
        Some(QueryResult::Command(String::new()))
    );
    assert_eq!(a.get_result().unwrap(), None);
    let r = a.query_prepared_values("s", "21");
    assert_eq!(r.as_deref(), Ok("42"));

    // B holds that server connection in a transaction; A gets another one, which has no "s".
    b.query("BEGIN").unwrap();
    let e = a.query_prepared_values("s", "1").unwrap_err();
    assert_eq!(e.code(), Some("26000"));
    assert_eq!(e.message(), "prepared statement \"s\" does not exist");
    b.query("COMMIT").unwrap();

    // B now prepares "s" where A's statement lives: the name is taken by another client.
    b.send_prepare("s", "SELECT 'b'").unwrap();
    let e = b.get_result().unwrap_err();
    assert_eq!(e.code(), Some("42P05"));
    assert_eq!(e.message(), "prepared statement \"s\" already exists");
    assert_eq!(b.get_result().unwrap(), None);

    // What does work: Parse, Bind and Execute inside one transaction (one pipeline up to its sync).
    b.enter_pipeline_mode().unwrap();
    b.send_prepare("own", "SELECT $1::int + 1").unwrap();
    b.send_query_prepared("own", &[Some("1")]).unwrap();
    b.pipeline_sync().unwrap();
    assert_eq!(
        b.get_result().unwrap(),
        Some(QueryResult::Command(String::new()))
    );
    assert_eq!(b.get_result().unwrap(), None);
    let r = b.get_result().unwrap().expect("a result");
    assert_eq!(value(&r), Some("2"));
    assert_eq!(b.get_result().unwrap(), None);
    assert_eq!(b.get_result().unwrap(), Some(QueryResult::PipelineSync));
    b.exit_pipeline_mode().unwrap();
}

/// One prepared execution with one text parameter; its single value.
trait PreparedValue {
    fn query_prepared_values(
        &mut self,
        statement: &str,
        param: &str,
    ) -> Result<String, pgdblink::Error>;
}

impl PreparedValue for Client {
    fn query_prepared_values(
        &mut self,
        statement: &str,
        param: &str,
    ) -> Result<String, pgdblink::Error> {
        self.send_query_prepared(statement, &[Some(param)])?;
        let first = self.get_result();
        // Drain to the end marker whatever happened.
        while let Ok(Some(_)) = self.get_result() {}
        let r = first?.expect("a result");
        Ok(value(&r).expect("a value").to_owned())
    }
}

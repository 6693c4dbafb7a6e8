//! TLS against a real PostgreSQL, the way libpq does it: the throwaway cluster with certificates made
//! at test time (a CA, server certificates to switch between, a second CA, client certificates, a CRL;
//! `hostssl`/`hostnossl`/`cert` lines in pg_hba), and a cluster without TLS.

use std::time::Duration;

use pgdblink::cluster::{Cluster, ClusterOptions, Role, ServerCert};
use pgdblink::conninfo::{Config, MapEnvironment};
use pgdblink::driver::Client;
use pgdblink::{Dblink, Error, sqlstate};

fn tls_cluster() -> &'static Cluster {
    Cluster::shared_tls().expect("throwaway cluster with TLS")
}

fn plain_cluster() -> &'static Cluster {
    Cluster::shared().expect("throwaway cluster")
}

/// Connects with `conninfo` alone: no `PG*` variable, no home directory (so no `~/.postgresql`).
fn connect(conninfo: &str) -> Result<Client, Error> {
    let config = Config::parse(conninfo).expect("conninfo");
    Client::connect_config(&config, &MapEnvironment::default())
}

fn one_value(client: &mut Client, sql: &str) -> Option<String> {
    let results = client.query(sql).expect("query");
    let rows = results.last().and_then(|r| r.rows()).expect("rows");
    rows.get(0, 0).map(str::to_owned)
}

/// What the server says about the session's encryption (`pg_stat_ssl`).
fn server_sees_ssl(client: &mut Client) -> bool {
    one_value(
        client,
        "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .as_deref()
        == Some("true")
}

/// libpq's prefix for the TLS cluster's connection strings (`host=localhost hostaddr=127.0.0.1`).
fn prefix(cluster: &Cluster) -> String {
    format!(
        "connection to server at \"localhost\" (127.0.0.1), port {} failed: ",
        cluster.port()
    )
}

/// PostgreSQL's `005_negotiate_encryption` table against a server with TLS: `trust_user` may use
/// either, `ssl_only` has only `hostssl` lines, `nossl_only` only `hostnossl` lines. `allow` and
/// `prefer` reconnect with the other method when the server refuses the first.
#[test]
fn sslmode_matrix_against_a_server_with_tls() {
    let cluster = tls_cluster();
    // (role, sslmode, Some(encrypted) or None for a failure)
    let cases = [
        (Role::Trust, "disable", Some(false)),
        (Role::Trust, "allow", Some(false)),
        (Role::Trust, "prefer", Some(true)),
        (Role::Trust, "require", Some(true)),
        (Role::Trust, "verify-ca", Some(true)),
        (Role::Trust, "verify-full", Some(true)),
        (Role::SslOnly, "disable", None),
        (Role::SslOnly, "allow", Some(true)),
        (Role::SslOnly, "prefer", Some(true)),
        (Role::SslOnly, "require", Some(true)),
        (Role::NoSslOnly, "disable", Some(false)),
        (Role::NoSslOnly, "allow", Some(false)),
        (Role::NoSslOnly, "prefer", Some(false)),
        (Role::NoSslOnly, "require", None),
    ];
    for (role, mode, want) in cases {
        let conninfo = cluster.conninfo_tls(role, mode);
        match (connect(&conninfo), want) {
            (Ok(mut c), Some(encrypted)) => {
                assert_eq!(c.ssl_in_use(), encrypted, "{role:?} {mode}");
                assert_eq!(server_sees_ssl(&mut c), encrypted, "{role:?} {mode}");
                assert_eq!(
                    one_value(&mut c, "SELECT current_user").as_deref(),
                    Some(role.user())
                );
            }
            (Err(e), None) => {
                let encryption = if role == Role::SslOnly {
                    "no encryption"
                } else {
                    "SSL encryption"
                };
                // The cluster ends pg_hba with `reject` lines for the TLS roles.
                assert_eq!(
                    e.message(),
                    format!(
                        "{}FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"{}\", database \"pgdblink\", {encryption}",
                        prefix(cluster),
                        role.user()
                    ),
                    "{role:?} {mode}"
                );
                assert_eq!(
                    e.code(),
                    Some(sqlstate::INVALID_AUTHORIZATION_SPECIFICATION)
                );
            }
            (Ok(_), None) => panic!("{role:?} {mode}: connected, expected a failure"),
            (Err(e), Some(_)) => panic!("{role:?} {mode}: {e}"),
        }
    }
}

/// When both of `prefer`'s attempts fail, both failures are reported, one libpq line each.
#[test]
fn prefer_reports_both_attempts() {
    let cluster = tls_cluster();
    let e = connect(&cluster.conninfo_tls(Role::Rejected, "prefer")).unwrap_err();
    let p = prefix(cluster);
    assert_eq!(
        e.message(),
        format!(
            "{p}FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"rejected_user\", database \"pgdblink\", SSL encryption\n\
             {p}FATAL:  pg_hba.conf rejects connection for host \"127.0.0.1\", user \"rejected_user\", database \"pgdblink\", no encryption"
        )
    );
}

/// A server without TLS answers `N`: `allow`/`prefer` go on in plain text, `require` and stronger
/// fail with libpq's text.
#[test]
fn sslmode_matrix_against_a_server_without_tls() {
    let cluster = plain_cluster();
    let base = cluster.conninfo(Role::Trust);
    for mode in ["disable", "allow", "prefer"] {
        let mut c = connect(&format!("{base} sslmode={mode}")).unwrap();
        assert!(!c.ssl_in_use(), "{mode}");
        assert_eq!(c.ssl_attribute("library"), None);
        assert!(!server_sees_ssl(&mut c));
    }
    for mode in ["require", "verify-ca", "verify-full"] {
        let extra = if mode == "require" {
            String::new()
        } else {
            // A root file must exist for verify-*; any readable certificate will do here.
            let ca = tls_cluster().tls().unwrap().ca_cert.display().to_string();
            format!(" sslrootcert={ca} host=localhost hostaddr=127.0.0.1")
        };
        let e = connect(&format!("{base} sslmode={mode}{extra}")).unwrap_err();
        assert!(
            e.message()
                .ends_with("failed: server does not support SSL, but SSL was required"),
            "{mode}: {e}"
        );
        assert_eq!(
            e.code(),
            Some(sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
        );
    }
}

/// sslmode does not apply to unix sockets (libpq): `require` connects in plain text there.
#[test]
fn unix_sockets_never_use_tls() {
    let cluster = tls_cluster();
    let mut c = connect(&format!(
        "{} sslmode=require",
        cluster.conninfo_unix(Role::Trust)
    ))
    .unwrap();
    assert!(!c.ssl_in_use());
    assert!(!server_sees_ssl(&mut c));
}

#[test]
fn ssl_attributes_of_an_encrypted_session() {
    let cluster = tls_cluster();
    let mut c = connect(&cluster.conninfo_tls(Role::Trust, "verify-full")).unwrap();
    assert!(c.ssl_in_use());
    assert_eq!(c.ssl_attribute("library").as_deref(), Some("rustls"));
    let protocol = c.ssl_attribute("protocol").unwrap();
    assert_eq!(
        one_value(
            &mut c,
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ),
        Some(protocol.clone())
    );
    assert!(protocol == "TLSv1.3" || protocol == "TLSv1.2");
    let cipher = c.ssl_attribute("cipher").unwrap();
    let bits = c.ssl_attribute("key_bits").unwrap();
    assert_eq!(
        one_value(
            &mut c,
            "SELECT cipher || ' ' || bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ),
        Some(format!("{cipher} {bits}")),
        "the server names the cipher as we do"
    );
    assert_eq!(c.ssl_attribute("compression").as_deref(), Some("off"));
    assert_eq!(c.ssl_attribute("no such attribute"), None);

    // The protocol-version bounds reach the handshake.
    let mut c12 = connect(&format!(
        "{} ssl_max_protocol_version=TLSv1.2",
        cluster.conninfo_tls(Role::Trust, "verify-full")
    ))
    .unwrap();
    assert_eq!(c12.ssl_attribute("protocol").as_deref(), Some("TLSv1.2"));
    assert!(server_sees_ssl(&mut c12));

    let mut db = Dblink::new();
    db.connect("t", &cluster.conninfo_tls(Role::Trust, "require"))
        .unwrap();
    db.connect("p", &cluster.conninfo_tls(Role::Trust, "disable"))
        .unwrap();
    assert!(db.ssl_in_use("t").unwrap());
    assert!(!db.ssl_in_use("p").unwrap());
    assert_eq!(
        db.ssl_attribute("t", "library").unwrap().as_deref(),
        Some("rustls")
    );
    assert_eq!(db.ssl_attribute("p", "library").unwrap(), None);
    assert_eq!(
        db.ssl_in_use("nope").unwrap_err().code(),
        Some(sqlstate::CONNECTION_DOES_NOT_EXIST)
    );
}

/// verify-ca checks the chain, verify-full the host name too (the `host`, never `hostaddr`);
/// `require` verifies like verify-ca once a root file exists, and not at all without one.
#[test]
fn verification_with_right_and_wrong_roots_and_names() {
    let cluster = tls_cluster();
    let files = cluster.tls().unwrap();
    let port = cluster.port();
    let other_ca = files.other_ca_cert.display().to_string();
    let ca = files.ca_cert.display().to_string();
    let with = |extra: &str| {
        format!(
            "host=localhost hostaddr=127.0.0.1 port={port} dbname=pgdblink user=trust_user {extra}"
        )
    };
    for mode in ["verify-ca", "verify-full"] {
        assert!(
            connect(&with(&format!("sslmode={mode} sslrootcert={ca}")))
                .unwrap()
                .ssl_in_use()
        );
    }
    // The IP SAN serves host=127.0.0.1.
    assert!(
        connect(&format!(
            "host=127.0.0.1 port={port} dbname=pgdblink user=trust_user sslmode=verify-full sslrootcert={ca}"
        ))
        .unwrap()
        .ssl_in_use()
    );
    // A wrong root: OpenSSL's words, for require (a root file exists) and verify-*.
    for mode in ["require", "verify-ca", "verify-full"] {
        let e = connect(&with(&format!("sslmode={mode} sslrootcert={other_ca}"))).unwrap_err();
        assert_eq!(
            e.message(),
            format!("{}SSL error: certificate verify failed", prefix(cluster)),
            "{mode}"
        );
    }
    // prefer: the failed handshake is retried in plain text.
    let mut c = connect(&with(&format!("sslmode=prefer sslrootcert={other_ca}"))).unwrap();
    assert!(!c.ssl_in_use() && !server_sees_ssl(&mut c));
    // allow: plain text first, and it is accepted.
    assert!(
        !connect(&with(&format!("sslmode=allow sslrootcert={other_ca}")))
            .unwrap()
            .ssl_in_use()
    );
    // require without a root file: encrypted, not verified.
    assert!(
        connect(&with("sslmode=require sslrootcert=/nonexistent/root.crt"))
            .unwrap()
            .ssl_in_use()
    );
    // verify-* without one: libpq 16's two lines.
    let e = connect(&with("sslmode=verify-ca sslrootcert=/nonexistent/root.crt")).unwrap_err();
    assert_eq!(
        e.message(),
        format!(
            "{}root certificate file \"/nonexistent/root.crt\" does not exist\n\
             Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.",
            prefix(cluster)
        )
    );
    // The host name: `host`, not `hostaddr`.
    let e = connect(&format!(
        "host=db.example hostaddr=127.0.0.1 port={port} dbname=pgdblink user=trust_user sslmode=verify-full sslrootcert={ca}"
    ))
    .unwrap_err();
    assert!(
        e.message().ends_with(
            "failed: server certificate for \"localhost\" (and 1 other name) does not match host name \"db.example\""
        ),
        "{e}"
    );
    // verify-ca does not look at names.
    assert!(
        connect(&format!(
            "host=db.example hostaddr=127.0.0.1 port={port} dbname=pgdblink user=trust_user sslmode=verify-ca sslrootcert={ca}"
        ))
        .unwrap()
        .ssl_in_use()
    );
    // Only a hostaddr: nothing to verify the name against.
    let e = connect(&format!(
        "hostaddr=127.0.0.1 port={port} dbname=pgdblink user=trust_user sslmode=verify-full sslrootcert={ca}"
    ))
    .unwrap_err();
    assert!(
        e.message()
            .ends_with("failed: host name must be specified for a verified SSL connection"),
        "{e}"
    );
}

/// The host-name rules against certificates with and without an IP SAN, a CN only, a wildcard; the
/// CRL revoking the server certificate; a CRL of another CA; a certificate of another CA.
#[test]
fn server_certificates_names_and_revocation() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        tls: true,
        ..ClusterOptions::default()
    })
    .expect("private TLS cluster");
    let files = cluster.tls().unwrap().clone();
    let port = cluster.port();
    let ca = files.ca_cert.display().to_string();
    let crl = files.crl.display().to_string();
    let other_crl = files.other_ca_crl.display().to_string();
    let full = |host: &str, extra: &str| {
        connect(&format!(
            "{host} port={port} dbname=pgdblink user=trust_user sslmode=verify-full sslrootcert={ca} {extra}"
        ))
    };
    let ends = |r: Result<Client, Error>, text: &str| {
        let e = r.expect_err("a failure");
        assert!(e.message().ends_with(text), "{e}\nexpected: {text}");
    };

    // Full: the CRL revokes something else; a CRL of another CA leaves the CA's status unknown.
    assert!(
        full(
            "host=localhost hostaddr=127.0.0.1",
            &format!("sslcrl={crl}")
        )
        .is_ok()
    );
    ends(
        full(
            "host=localhost hostaddr=127.0.0.1",
            &format!("sslcrl={other_crl}"),
        ),
        "failed: SSL error: certificate verify failed",
    );
    // A missing CRL file is ignored.
    assert!(
        full(
            "host=localhost hostaddr=127.0.0.1",
            "sslcrl=/nonexistent.crl"
        )
        .is_ok()
    );

    cluster.set_server_cert(ServerCert::NameOnly).unwrap();
    assert!(full("host=localhost hostaddr=127.0.0.1", "").is_ok());
    // No iPAddress SAN: the dNSName and then the CN are examined (libpq's rule).
    ends(
        full("host=127.0.0.1", ""),
        "failed: server certificate for \"localhost\" (and 1 other name) does not match host name \"127.0.0.1\"",
    );

    cluster.set_server_cert(ServerCert::CnOnly).unwrap();
    assert!(full("host=localhost hostaddr=127.0.0.1", "").is_ok());
    ends(
        full("host=other.example hostaddr=127.0.0.1", ""),
        "failed: server certificate for \"localhost\" does not match host name \"other.example\"",
    );

    cluster.set_server_cert(ServerCert::Wildcard).unwrap();
    assert!(full("host=db.pgdblink.test hostaddr=127.0.0.1", "").is_ok());
    ends(
        full("host=localhost hostaddr=127.0.0.1", ""),
        "failed: server certificate for \"*.pgdblink.test\" does not match host name \"localhost\"",
    );
    ends(
        full("host=a.db.pgdblink.test hostaddr=127.0.0.1", ""),
        "failed: server certificate for \"*.pgdblink.test\" does not match host name \"a.db.pgdblink.test\"",
    );

    cluster.set_server_cert(ServerCert::Revoked).unwrap();
    assert!(
        full("host=localhost hostaddr=127.0.0.1", "").is_ok(),
        "no CRL, no revocation check"
    );
    ends(
        full(
            "host=localhost hostaddr=127.0.0.1",
            &format!("sslcrl={crl}"),
        ),
        "failed: SSL error: certificate verify failed",
    );
    // sslcrldir: every CRL file in the directory.
    let crl_dir = files.dir.join("crl-dir");
    std::fs::create_dir_all(&crl_dir).unwrap();
    std::fs::copy(&files.crl, crl_dir.join("ca.r0")).unwrap();
    ends(
        full(
            "host=localhost hostaddr=127.0.0.1",
            &format!("sslcrldir={}", crl_dir.display()),
        ),
        "failed: SSL error: certificate verify failed",
    );

    cluster.set_server_cert(ServerCert::OtherCa).unwrap();
    ends(
        full("host=localhost hostaddr=127.0.0.1", ""),
        "failed: SSL error: certificate verify failed",
    );
    let other_ca = files.other_ca_cert.display().to_string();
    assert!(
        connect(&format!(
            "host=localhost hostaddr=127.0.0.1 port={port} dbname=pgdblink user=trust_user sslmode=verify-full sslrootcert={other_ca}"
        ))
        .is_ok()
    );
}

/// `cert` authentication with a client certificate: named, from the default
/// `~/.postgresql/postgresql.crt`, refused without one, with a revoked one or with a key others can
/// read (libpq's text).
#[cfg(unix)]
#[test]
fn client_certificates() {
    let cluster = tls_cluster();
    let files = cluster.tls().unwrap();
    let mut c = connect(&cluster.conninfo_tls(Role::Cert, "verify-full")).unwrap();
    assert_eq!(
        one_value(&mut c, "SELECT current_user").as_deref(),
        Some("cert_user")
    );
    assert_eq!(
        one_value(
            &mut c,
            "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        .as_deref(),
        Some("/CN=cert_user")
    );

    // Without a certificate the server refuses.
    let no_cert = cluster
        .conninfo_tls(Role::Cert, "verify-full")
        .split(' ')
        .filter(|kv| !kv.starts_with("sslcert=") && !kv.starts_with("sslkey="))
        .collect::<Vec<_>>()
        .join(" ");
    let e = connect(&no_cert).unwrap_err();
    assert!(
        e.message()
            .contains("connection requires a valid client certificate"),
        "{e}"
    );

    // The default files under the home directory; a key readable by others is refused.
    let home = files.dir.join("home");
    let dot = home.join(".postgresql");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::copy(&files.client_cert, dot.join("postgresql.crt")).unwrap();
    std::fs::copy(&files.ca_cert, dot.join("root.crt")).unwrap();
    let key = dot.join("postgresql.key");
    files.write_client_key(&key, 0o644).unwrap();
    let env = MapEnvironment::default().with_home(&home);
    let config = Config::parse(&format!(
        "host=localhost hostaddr=127.0.0.1 port={} dbname=pgdblink user=cert_user sslmode=verify-full",
        cluster.port()
    ))
    .unwrap();
    let e = Client::connect_config(&config, &env).unwrap_err();
    assert_eq!(
        e.message(),
        format!(
            "{}private key file \"{}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root",
            prefix(cluster),
            key.display()
        )
    );
    files.write_client_key(&key, 0o600).unwrap();
    let mut c = Client::connect_config(&config, &env).unwrap();
    assert_eq!(
        one_value(&mut c, "SELECT current_user").as_deref(),
        Some("cert_user")
    );

    // A revoked client certificate, one of another CA: the server refuses the handshake.
    for (cert, key) in [
        (&files.revoked_client_cert, &files.revoked_client_key),
        (&files.other_ca_client_cert, &files.other_ca_client_key),
    ] {
        let e = connect(&format!(
            "{no_cert} sslcert={} sslkey={}",
            cert.display(),
            key.display()
        ))
        .unwrap_err();
        // TLS 1.3: the server's alert comes after the client's Finished, during startup.
        assert!(e.message().contains("failed: SSL error: "), "{e}");
    }
}

/// SCRAM-SHA-256-PLUS over TLS; libpq's refusals when channel binding is required but impossible.
#[test]
fn channel_binding() {
    let cluster = tls_cluster();
    for mode in ["require", "prefer", "disable"] {
        let mut c = connect(&format!(
            "{} channel_binding={mode}",
            cluster.conninfo_tls(Role::Scram, "verify-full")
        ))
        .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(c.ssl_in_use());
        assert_eq!(
            one_value(&mut c, "SELECT current_user").as_deref(),
            Some("scram_user")
        );
    }
    let e = connect(&format!(
        "{} channel_binding=require",
        cluster.conninfo_tls(Role::Md5, "verify-full")
    ))
    .unwrap_err();
    assert!(
        e.message().ends_with(
            "failed: channel binding required but not supported by server's authentication request"
        ),
        "{e}"
    );
    let e = connect(&format!(
        "{} channel_binding=require",
        cluster.conninfo_tls(Role::Scram, "disable")
    ))
    .unwrap_err();
    assert!(
        e.message()
            .ends_with("failed: channel binding required, but SSL not in use"),
        "{e}"
    );
    // MD5 without binding, over TLS, when binding is only preferred.
    assert!(
        connect(&format!(
            "{} channel_binding=prefer",
            cluster.conninfo_tls(Role::Md5, "verify-full")
        ))
        .is_ok()
    );
}

/// SCRAM-SHA-256-PLUS with a server certificate signed with ECDSA-SHA384: `tls-server-end-point`
/// then hashes the certificate with SHA-384 on both sides (RFC 5929), and the server refuses the
/// proof if the client hashed it any other way. `channel_binding=require` succeeds only with PLUS.
#[test]
fn channel_binding_with_a_sha384_certificate() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        tls: true,
        ..ClusterOptions::default()
    })
    .expect("private TLS cluster");
    cluster.set_server_cert(ServerCert::Sha384).unwrap();
    let files = cluster.tls().unwrap().clone();
    let with_root = |root: &std::path::Path, binding: &str| {
        connect(&format!(
            "host=localhost hostaddr=127.0.0.1 port={} dbname=pgdblink user={} password={} \
             sslmode=verify-full sslrootcert={} channel_binding={binding}",
            cluster.port(),
            Role::Scram.user(),
            Role::Scram.password().expect("a password"),
            root.display(),
        ))
    };

    // The server presents the SHA-384 CA's certificate, not the CA's.
    let e = with_root(&files.ca_cert, "require").unwrap_err();
    assert!(
        e.message()
            .ends_with("failed: SSL error: certificate verify failed"),
        "{e}"
    );

    for binding in ["require", "prefer"] {
        let mut c = with_root(&files.sha384_ca_cert, binding)
            .unwrap_or_else(|e| panic!("channel_binding={binding}: {e}\n{}", cluster.log()));
        assert!(c.ssl_in_use());
        assert!(server_sees_ssl(&mut c));
        assert_eq!(
            one_value(&mut c, "SELECT current_user").as_deref(),
            Some("scram_user")
        );
    }
}

/// Waits (up to 10 s) until backend `pid` is inside `pg_sleep`, as `pg_stat_activity` shows it.
fn wait_until_sleeping(cluster: &Cluster, pid: u32) {
    connect(&cluster.conninfo_unix(Role::Super))
        .unwrap()
        .query(&protocol_tests::helpers::wait_until_sleeping_sql(pid))
        .expect("backend seen in pg_sleep");
}

/// A cancel request travels over TLS when the connection does, blocking and on the reactor.
#[test]
fn cancel_over_tls() {
    let cluster = tls_cluster();
    let mut c = connect(&cluster.conninfo_tls(Role::SslOnly, "verify-full")).unwrap();
    let token = c.cancel_token().unwrap();
    assert!(token.uses_tls());
    for blocking in [true, false] {
        c.send_query("SELECT pg_sleep(30)").unwrap();
        wait_until_sleeping(cluster, c.backend_pid().unwrap());
        if blocking {
            token.cancel(Duration::from_secs(10)).unwrap();
        } else {
            c.cancel().unwrap();
        }
        let e = c.get_result().expect_err("cancelled");
        assert_eq!(e.code(), Some(sqlstate::QUERY_CANCELED));
        assert!(c.get_result().unwrap().is_none());
    }
    // A plain-text connection cancels in plain text.
    let plain = connect(&cluster.conninfo_tls(Role::Trust, "disable")).unwrap();
    assert!(!plain.cancel_token().unwrap().uses_tls());
}

/// A TLS connection whose backend is terminated mid-query: the server's FATAL, then 08006.
#[test]
fn a_terminated_tls_connection_reports_08006() {
    let cluster = tls_cluster();
    let mut victim = connect(&cluster.conninfo_tls(Role::Trust, "verify-full")).unwrap();
    assert!(victim.ssl_in_use());
    let pid = victim.backend_pid().unwrap();
    victim.send_query("SELECT pg_sleep(30)").unwrap();
    wait_until_sleeping(cluster, pid);
    let mut admin = connect(&cluster.conninfo_unix(Role::Super)).unwrap();
    admin
        .query(&format!("SELECT pg_terminate_backend({pid})"))
        .unwrap();
    let e = victim.get_result().expect_err("terminated");
    assert_eq!(e.code(), Some(sqlstate::ADMIN_SHUTDOWN));
    let lost = victim.get_result().expect_err("connection lost");
    assert_eq!(lost.code(), Some(sqlstate::CONNECTION_FAILURE));
    assert!(lost.is_closed());
    assert!(victim.get_result().unwrap().is_none());
}

/// `PGSSLMODE`, `PGSSLROOTCERT` and friends from the environment.
#[test]
fn tls_settings_from_the_environment() {
    let cluster = tls_cluster();
    let ca = cluster.tls().unwrap().ca_cert.display().to_string();
    let config = Config::parse(&format!(
        "host=localhost hostaddr=127.0.0.1 port={} dbname=pgdblink user=trust_user",
        cluster.port()
    ))
    .unwrap();
    let env = |mode: &str| {
        MapEnvironment::default()
            .with_var("PGSSLMODE", mode)
            .with_var("PGSSLROOTCERT", ca.as_str())
    };
    assert!(
        Client::connect_config(&config, &env("verify-full"))
            .unwrap()
            .ssl_in_use()
    );
    assert!(
        !Client::connect_config(&config, &env("disable"))
            .unwrap()
            .ssl_in_use()
    );
    let max12 = env("require").with_var("PGSSLMAXPROTOCOLVERSION", "TLSv1.2");
    assert_eq!(
        Client::connect_config(&config, &max12)
            .unwrap()
            .ssl_attribute("protocol")
            .as_deref(),
        Some("TLSv1.2")
    );
    let wrong = env("verify-ca").with_var(
        "PGSSLROOTCERT",
        cluster.tls().unwrap().other_ca_cert.display().to_string(),
    );
    assert!(
        Client::connect_config(&config, &wrong)
            .unwrap_err()
            .message()
            .ends_with("SSL error: certificate verify failed")
    );
}

/// Large results over TLS: many records per read, plain and chunked (backpressure pauses and resumes
/// reading while rustls holds no undelivered plaintext).
#[test]
fn large_results_over_tls() {
    let cluster = tls_cluster();
    let mut c = connect(&cluster.conninfo_tls(Role::Trust, "verify-full")).unwrap();
    let sql = "SELECT i, repeat('x', 1000) FROM generate_series(1, 20000) i";
    let results = c.query(sql).unwrap();
    let rows = results.last().and_then(|r| r.rows()).expect("rows");
    assert_eq!(rows.len(), 20000);
    assert_eq!(rows.get(19999, 0), Some("20000"));
    assert_eq!(rows.get(0, 1).map(str::len), Some(1000));

    c.send_query_chunked(sql, 100).unwrap();
    let mut total = 0;
    let mut last = String::new();
    while let Some(result) = c.get_result().unwrap() {
        if let Some(rows) = result.rows() {
            total += rows.len();
            if let Some(v) = rows.len().checked_sub(1).and_then(|i| rows.get(i, 0)) {
                last = v.to_owned();
            }
        }
    }
    assert_eq!((total, last.as_str()), (20000, "20000"));
}

/// `sslcertmode`: `disable` never sends the certificate, `require` insists the server asked for one
/// and got it (libpq 16's texts). The cluster names a CA file, so it asks every TLS client.
#[test]
fn sslcertmode() {
    let cluster = tls_cluster();
    let cert = cluster.conninfo_tls(Role::Cert, "verify-full");
    let mut c = connect(&format!("{cert} sslcertmode=require")).unwrap();
    assert_eq!(
        one_value(&mut c, "SELECT current_user").as_deref(),
        Some("cert_user")
    );
    let e = connect(&format!("{cert} sslcertmode=disable")).unwrap_err();
    assert!(
        e.message()
            .contains("connection requires a valid client certificate"),
        "{e}"
    );
    let e = connect(&format!(
        "{} sslcertmode=require",
        cluster.conninfo_tls(Role::Trust, "verify-full")
    ))
    .unwrap_err();
    assert!(
        e.message()
            .ends_with("failed: server accepted connection without a valid SSL certificate"),
        "{e}"
    );
    let e = connect(&format!(
        "{} sslcertmode=require",
        cluster.conninfo_tls(Role::Trust, "disable")
    ))
    .unwrap_err();
    assert!(
        e.message()
            .ends_with("failed: server did not request an SSL certificate"),
        "{e}"
    );
}

/// `sslnegotiation=direct` against a server older than 17: the handshake fails, and there is no
/// fallback to an SSLRequest (libpq 17).
#[test]
fn direct_negotiation_against_an_older_server_fails() {
    let cluster = tls_cluster();
    if cluster.server_version() >= 170000 {
        let mut c = connect(&format!(
            "{} sslnegotiation=direct",
            cluster.conninfo_tls(Role::Trust, "verify-full")
        ))
        .unwrap();
        assert!(server_sees_ssl(&mut c));
        return;
    }
    let e = connect(&format!(
        "{} sslnegotiation=direct",
        cluster.conninfo_tls(Role::Trust, "require")
    ))
    .unwrap_err();
    assert_eq!(
        e.message().matches("connection to server").count(),
        1,
        "{e}"
    );
    assert!(e.message().contains("failed: SSL"), "{e}");
}

/// `sslrootcert=system`: the platform's roots (which do not hold the test CA), verify-full implied.
#[test]
fn system_roots() {
    let cluster = tls_cluster();
    let e = connect(&format!(
        "host=localhost hostaddr=127.0.0.1 port={} dbname=pgdblink user=trust_user sslrootcert=system",
        cluster.port()
    ))
    .unwrap_err();
    assert!(
        e.message()
            .ends_with("failed: SSL error: certificate verify failed")
            || e.message()
                .contains("failed: could not load system root certificate paths: "),
        "{e}"
    );
}

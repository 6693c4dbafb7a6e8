use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::ErrorKind;

fn parse(s: &str) -> Config {
    Config::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn parse_err(s: &str) -> String {
    let e = Config::parse(s).expect_err(s);
    assert_eq!(e.kind(), ErrorKind::Config);
    e.message().to_owned()
}

fn env() -> MapEnvironment {
    MapEnvironment::default().with_user("osuser")
}

fn resolve(s: &str, env: &MapEnvironment) -> ConnectParams {
    parse(s)
        .resolve(env)
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn resolve_err(s: &str, env: &MapEnvironment) -> String {
    let e = parse(s).resolve(env).expect_err(s);
    assert_eq!(e.kind(), ErrorKind::Config);
    e.message().to_owned()
}

/// A fresh temporary directory.
fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pgdblink-conninfo-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_file(path: &Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---- keyword/value grammar ----

#[test]
fn kv_empty_string_is_valid() {
    assert_eq!(parse("").iter().count(), 0);
    assert_eq!(parse("   \t\n ").iter().count(), 0);
}

#[test]
fn kv_basic_pairs() {
    let c = parse("host=localhost port=5432 dbname=mydb user=alice");
    assert_eq!(c.get("host"), Some("localhost"));
    assert_eq!(c.get("port"), Some("5432"));
    assert_eq!(c.get("dbname"), Some("mydb"));
    assert_eq!(c.get("user"), Some("alice"));
    assert_eq!(c.get("password"), None);
}

#[test]
fn kv_spaces_around_equals() {
    let c = parse("dbname = x   user =y host= z");
    assert_eq!(c.get("dbname"), Some("x"));
    assert_eq!(c.get("user"), Some("y"));
    assert_eq!(c.get("host"), Some("z"));
}

#[test]
fn kv_quoted_value_with_escapes() {
    let c = parse(r"application_name='it\'s a \\ test'");
    assert_eq!(c.get("application_name"), Some(r"it's a \ test"));
    let c = parse(r"options='-c search_path=a\,b' user='x\y'");
    assert_eq!(c.get("options"), Some("-c search_path=a,b"));
    assert_eq!(c.get("user"), Some("xy"));
}

#[test]
fn kv_empty_quoted_value() {
    let c = parse("host='' dbname=x");
    assert_eq!(c.get("host"), Some(""));
    assert_eq!(c.get("dbname"), Some("x"));
}

#[test]
fn kv_empty_value_at_end() {
    assert_eq!(parse("dbname=").get("dbname"), Some(""));
}

#[test]
fn kv_empty_unquoted_value_swallows_next_token() {
    let c = parse("application_name= dbname=x");
    assert_eq!(c.get("application_name"), Some("dbname=x"));
    assert_eq!(c.get("dbname"), None);
}

#[test]
fn kv_unquoted_backslash_escapes() {
    let c = parse(r"application_name=a\ b\\c\'d");
    assert_eq!(c.get("application_name"), Some(r"a b\c'd"));
    // A trailing backslash is dropped.
    assert_eq!(parse(r"dbname=x\").get("dbname"), Some("x"));
}

#[test]
fn kv_quote_right_after_value() {
    let c = parse("dbname='a'user=b");
    assert_eq!(c.get("dbname"), Some("a"));
    assert_eq!(c.get("user"), Some("b"));
    // A quote inside an unquoted value is literal.
    assert_eq!(parse("dbname=a'b").get("dbname"), Some("a'b"));
}

#[test]
fn kv_missing_equals_errors() {
    assert_eq!(
        parse_err("dbname"),
        r#"missing "=" after "dbname" in connection info string"#
    );
    assert_eq!(
        parse_err("host=x dbname"),
        r#"missing "=" after "dbname" in connection info string"#
    );
    assert_eq!(
        parse_err("dbname x=y"),
        r#"missing "=" after "dbname" in connection info string"#
    );
}

#[test]
fn kv_unknown_keyword_errors() {
    assert_eq!(parse_err("foo=bar"), r#"invalid connection option "foo""#);
    assert_eq!(parse_err("=foo"), r#"invalid connection option """#);
    assert_eq!(
        parse_err("DBNAME=x"),
        r#"invalid connection option "DBNAME""#
    );
}

#[test]
fn kv_unterminated_quote_errors() {
    let text = "unterminated quoted string in connection info string";
    assert_eq!(parse_err("dbname='abc"), text);
    assert_eq!(parse_err(r"dbname='abc\'"), text);
    assert_eq!(parse_err(r"dbname='abc\"), text);
    assert_eq!(parse_err("dbname='"), text);
}

#[test]
fn kv_duplicate_keyword_last_wins() {
    let c = parse("dbname=a user=u dbname=b");
    assert_eq!(c.get("dbname"), Some("b"));
    let keys: Vec<_> = c.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["dbname", "user"]);
}

#[test]
fn kv_requiressl_translates_to_sslmode() {
    assert_eq!(parse("requiressl=1").get("sslmode"), Some("require"));
    assert_eq!(parse("requiressl=0").get("sslmode"), Some("prefer"));
    assert_eq!(parse("requiressl=1").get("requiressl"), None);
}

#[test]
fn kv_all_libpq_keywords_accepted() {
    for (keyword, _) in KEYWORDS {
        let c = parse(&format!("{keyword}=v"));
        assert_eq!(c.get(keyword), Some("v"), "{keyword}");
    }
}

#[test]
fn kv_unicode_and_tabs() {
    let c = parse("application_name=héllo\tdbname='ü x'");
    assert_eq!(c.get("application_name"), Some("héllo"));
    assert_eq!(c.get("dbname"), Some("ü x"));
}

#[test]
fn kv_nul_ends_the_string() {
    assert_eq!(parse("dbname=a\0b user=x").get("dbname"), Some("a"));
    assert_eq!(parse("dbname=a\0b user=x").get("user"), None);
}

// ---- URIs ----

#[test]
fn uri_full_with_credentials_and_params() {
    let c = parse("postgresql://scram_user:pen%63il@127.0.0.1:54329/db?application_name=a%20b");
    assert_eq!(c.get("user"), Some("scram_user"));
    assert_eq!(c.get("password"), Some("pencil"));
    assert_eq!(c.get("host"), Some("127.0.0.1"));
    assert_eq!(c.get("port"), Some("54329"));
    assert_eq!(c.get("dbname"), Some("db"));
    assert_eq!(c.get("application_name"), Some("a b"));
}

#[test]
fn uri_postgres_prefix_and_bare() {
    assert_eq!(parse("postgres://h/d").get("host"), Some("h"));
    let c = parse("postgresql://");
    assert_eq!(c.iter().count(), 0);
    let c = parse("postgresql:///");
    assert_eq!(c.iter().count(), 0);
    // Case-sensitive prefix: anything else is keyword/value.
    assert_eq!(
        parse_err("POSTGRESQL://h"),
        r#"missing "=" after "POSTGRESQL://h" in connection info string"#
    );
}

#[test]
fn uri_user_without_password() {
    let c = parse("postgresql://alice@h");
    assert_eq!(c.get("user"), Some("alice"));
    assert_eq!(c.get("password"), None);
    let c = parse("postgresql://:secret@h");
    assert_eq!(c.get("user"), None);
    assert_eq!(c.get("password"), Some("secret"));
}

#[test]
fn uri_at_after_slash_is_not_credentials() {
    let c = parse("postgresql://h/db@x");
    assert_eq!(c.get("user"), None);
    assert_eq!(c.get("host"), Some("h"));
    assert_eq!(c.get("dbname"), Some("db@x"));
}

#[test]
fn uri_percent_encoded_socket_dir() {
    let c = parse("postgresql://%2Fsrv%2Fpgsock/db");
    assert_eq!(c.get("host"), Some("/srv/pgsock"));
    assert_eq!(c.get("dbname"), Some("db"));
    let p = c.resolve(&env()).unwrap();
    assert_eq!(
        p.targets[0].host,
        Host::Unix {
            dir: PathBuf::from("/srv/pgsock")
        }
    );
    assert_eq!(
        p.targets[0].socket_path(),
        Some(PathBuf::from("/srv/pgsock/.s.PGSQL.5432"))
    );
}

#[test]
fn uri_multi_host() {
    let c = parse("postgresql://127.0.0.1:1,127.0.0.1:54329/contrib_regression");
    assert_eq!(c.get("host"), Some("127.0.0.1,127.0.0.1"));
    assert_eq!(c.get("port"), Some("1,54329"));
    let p = c.resolve(&env()).unwrap();
    assert_eq!(p.targets.len(), 2);
    assert_eq!(p.targets[0].port, 1);
    assert_eq!(p.targets[1].port, 54329);
    assert_eq!(p.dbname, "contrib_regression");
}

#[test]
fn uri_multi_host_partial_ports() {
    let c = parse("postgresql://a,b:6000,c/x");
    assert_eq!(c.get("host"), Some("a,b,c"));
    assert_eq!(c.get("port"), Some(",6000,"));
    let p = c.resolve(&env()).unwrap();
    let ports: Vec<_> = p.targets.iter().map(|t| t.port).collect();
    assert_eq!(ports, [5432, 6000, 5432]);
}

#[test]
fn uri_ipv6() {
    let c = parse("postgresql://[::1]:5433,[fe80::1]/db");
    assert_eq!(c.get("host"), Some("::1,fe80::1"));
    assert_eq!(c.get("port"), Some("5433,"));
    let c = parse("postgresql://[::1]?sslmode=disable");
    assert_eq!(c.get("host"), Some("::1"));
    assert_eq!(c.get("sslmode"), Some("disable"));
}

#[test]
fn uri_ipv6_errors() {
    assert_eq!(
        parse_err("postgresql://[::1"),
        r#"end of string reached when looking for matching "]" in IPv6 host address in URI: "postgresql://[::1""#
    );
    assert_eq!(
        parse_err("postgresql://[]/db"),
        r#"IPv6 host address may not be empty in URI: "postgresql://[]/db""#
    );
    assert_eq!(
        parse_err("postgresql://[::1]x"),
        r#"unexpected character "x" at position 19 in URI (expected ":" or "/"): "postgresql://[::1]x""#
    );
}

#[test]
fn uri_port_taken_up_to_delimiters() {
    let c = parse("postgresql://localhost:54329:1/db");
    assert_eq!(c.get("port"), Some("54329:1"));
    assert_eq!(
        c.resolve(&env()).unwrap_err().message(),
        r#"invalid integer value "54329:1" for connection option "port""#
    );
}

#[test]
fn uri_empty_dbname_not_stored() {
    let c = parse("postgresql://h/");
    assert_eq!(c.get("dbname"), None);
    let e = env().with_var("PGDATABASE", "fromenv");
    assert_eq!(c.resolve(&e).unwrap().dbname, "fromenv");
    assert_eq!(parse("postgresql://h/?user=u").get("dbname"), None);
}

#[test]
fn uri_percent_decoding_everywhere() {
    let c = parse("postgresql://us%65r:p%40ss@h%6Fst/d%62?opt%69ons=-c%20x%3Dy");
    assert_eq!(c.get("user"), Some("user"));
    assert_eq!(c.get("password"), Some("p@ss"));
    assert_eq!(c.get("host"), Some("host"));
    assert_eq!(c.get("dbname"), Some("db"));
    assert_eq!(c.get("options"), Some("-c x=y"));
}

#[test]
fn uri_invalid_percent_encoding_errors() {
    assert_eq!(
        parse_err("postgresql://h/db?application_name=%zz"),
        r#"invalid percent-encoded token: "%zz""#
    );
    assert_eq!(
        parse_err("postgresql://h/db%2"),
        r#"invalid percent-encoded token: "db%2""#
    );
    assert_eq!(
        parse_err("postgresql://h/db%"),
        r#"invalid percent-encoded token: "db%""#
    );
    assert_eq!(
        parse_err("postgresql://h/a%00b"),
        r#"forbidden value %00 in percent-encoded value: "a%00b""#
    );
}

#[test]
fn uri_invalid_utf8_after_decoding_errors() {
    let message = parse_err("postgresql://h/%ff%fe");
    assert!(message.contains("%ff%fe"), "{message}");
    // A valid multi-byte sequence decodes fine.
    assert_eq!(parse("postgresql://h/%C3%BC").get("dbname"), Some("ü"));
}

#[test]
fn uri_spaces() {
    // libpq 18 trims spaces around a component and refuses embedded ones.
    assert_eq!(parse("postgresql://h/ db ").get("dbname"), Some("db"));
    assert_eq!(
        parse_err("postgresql://h/d b"),
        r#"unexpected spaces found in "d b", use percent-encoded spaces (%20) instead"#
    );
}

#[test]
fn uri_query_param_errors() {
    assert_eq!(
        parse_err("postgresql://h/db?foo=bar"),
        r#"invalid URI query parameter: "foo""#
    );
    assert_eq!(
        parse_err("postgresql://h/db?sslmode"),
        r#"missing key/value separator "=" in URI query parameter: "sslmode""#
    );
    assert_eq!(
        parse_err("postgresql://h/db?user=1&&b=2"),
        r#"missing key/value separator "=" in URI query parameter: """#
    );
    assert_eq!(
        parse_err("postgresql://h/db?user=1&foo&b=2"),
        r#"missing key/value separator "=" in URI query parameter: "foo""#
    );
    assert_eq!(
        parse_err("postgresql://h/db?sslmode=a=b"),
        r#"extra key/value separator "=" in URI query parameter: "sslmode""#
    );
}

#[test]
fn uri_query_params_multiple_and_trailing() {
    let c = parse("postgresql://h/db?user=u&password=p&connect_timeout=10&");
    assert_eq!(c.get("user"), Some("u"));
    assert_eq!(c.get("password"), Some("p"));
    assert_eq!(c.get("connect_timeout"), Some("10"));
    // Query parameters after the path override the netloc's values.
    assert_eq!(parse("postgresql://a@h/db?user=b").get("user"), Some("b"));
    // Without a path.
    assert_eq!(parse("postgresql://h?dbname=x").get("dbname"), Some("x"));
}

#[test]
fn uri_ssl_true_means_require() {
    assert_eq!(
        parse("postgresql://h?ssl=true").get("sslmode"),
        Some("require")
    );
    assert_eq!(
        parse_err("postgresql://h?ssl=false"),
        r#"invalid URI query parameter: "ssl""#
    );
    assert_eq!(
        parse("postgresql://h?requiressl=1").get("sslmode"),
        Some("require")
    );
}

#[test]
fn uri_host_list_with_empty_entries() {
    let c = parse("postgresql://,h2/db");
    assert_eq!(c.get("host"), Some(",h2"));
    let p = c.resolve(&env()).unwrap();
    assert_eq!(
        p.targets[0].host,
        Host::Unix {
            dir: PathBuf::from("/var/run/postgresql")
        }
    );
    assert_eq!(
        p.targets[1].host,
        Host::Tcp {
            name: "h2".into(),
            addr: None
        }
    );
}

#[test]
fn uri_port_only() {
    let c = parse("postgresql://:5433/db");
    assert_eq!(c.get("host"), None);
    assert_eq!(c.get("port"), Some("5433"));
}

// ---- set, get, iter, FromStr, Display, Debug ----

#[test]
fn set_unknown_keyword_errors() {
    let mut c = Config::default();
    assert_eq!(
        c.set("x", "1").unwrap_err().message(),
        r#"invalid connection option "x""#
    );
    c.set("dbname", "a").unwrap();
    c.set("dbname", "b").unwrap();
    c.set("requiressl", "1").unwrap();
    assert_eq!(c.get("dbname"), Some("b"));
    assert_eq!(c.get("sslmode"), Some("require"));
    assert!(c.set("dbname", "a\0b").is_err());
}

#[test]
fn fromstr_matches_parse() {
    let c: Config = "dbname=x".parse().unwrap();
    assert_eq!(c, parse("dbname=x"));
    let e = "nope".parse::<Config>().unwrap_err();
    assert_eq!(
        e.message(),
        r#"missing "=" after "nope" in connection info string"#
    );
}

#[test]
fn display_never_shows_password() {
    let c = parse("user=u password=hunter2 dbname=d");
    let shown = c.to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(shown, "user=u password=******** dbname=d");
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("********"));
    let uri = parse("postgresql://u:hunter2@h/d");
    assert!(!uri.to_string().contains("hunter2"));
    assert!(!format!("{uri:?}").contains("hunter2"));
}

#[test]
fn display_quotes_and_round_trips() {
    let c = parse(r"application_name='it\'s a \\ test' host='' dbname=plain options='-c x=1'");
    let shown = c.to_string();
    assert_eq!(
        shown,
        r"application_name='it\'s a \\ test' host='' dbname=plain options='-c x=1'"
    );
    assert_eq!(parse(&shown), c);
}

// ---- resolve: defaults and environment ----

#[test]
fn resolve_defaults() {
    let p = resolve("", &env());
    assert_eq!(p.user, "osuser");
    assert_eq!(p.dbname, "osuser");
    assert_eq!(p.password, None);
    assert_eq!(p.targets.len(), 1);
    assert_eq!(
        p.targets[0].host,
        Host::Unix {
            dir: PathBuf::from("/var/run/postgresql")
        }
    );
    assert_eq!(p.targets[0].port, 5432);
    assert_eq!(p.client_encoding, "UTF8");
    assert_eq!(p.connect_timeout, None);
    assert_eq!(p.sslmode, SslMode::Prefer);
    assert_eq!(p.gssencmode, GssEncMode::Prefer);
    assert_eq!(p.channel_binding, ChannelBindingMode::Prefer);
    assert_eq!(p.target_session_attrs, TargetSessionAttrs::Any);
    assert_eq!(p.min_protocol_version, ProtocolVersion::V3_0);
    assert_eq!(p.max_protocol_version, ProtocolVersion::V3_0);
    assert!(p.keepalives);
    assert!(p.extra_startup.is_empty());
    assert!(p.warnings.is_empty());
}

#[test]
fn resolve_without_os_user_errors() {
    let e = parse("").resolve(&MapEnvironment::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    // A user from the string needs no OS user.
    let p = parse("user=u").resolve(&MapEnvironment::default()).unwrap();
    assert_eq!(p.dbname, "u");
}

#[test]
fn resolve_env_precedence() {
    let e = env()
        .with_var("PGHOST", "envhost")
        .with_var("PGPORT", "6000")
        .with_var("PGUSER", "envuser")
        .with_var("PGDATABASE", "envdb")
        .with_var("PGPASSWORD", "envpw")
        .with_var("PGAPPNAME", "envapp")
        .with_var("PGOPTIONS", "-c geqo=off")
        .with_var("PGCONNECT_TIMEOUT", "7")
        .with_var("PGCLIENTENCODING", "LATIN1")
        .with_var("PGSSLMODE", "disable")
        .with_var("PGGSSENCMODE", "disable")
        .with_var("PGCHANNELBINDING", "require")
        .with_var("PGTARGETSESSIONATTRS", "read-write");
    let p = resolve("", &e);
    assert_eq!(
        p.targets[0].host,
        Host::Tcp {
            name: "envhost".into(),
            addr: None
        }
    );
    assert_eq!(p.targets[0].port, 6000);
    assert_eq!(p.user, "envuser");
    assert_eq!(p.dbname, "envdb");
    assert_eq!(p.password.as_deref(), Some("envpw"));
    assert_eq!(p.application_name.as_deref(), Some("envapp"));
    assert_eq!(p.options.as_deref(), Some("-c geqo=off"));
    assert_eq!(p.connect_timeout, Some(Duration::from_secs(7)));
    assert_eq!(p.client_encoding, "LATIN1");
    assert_eq!(p.sslmode, SslMode::Disable);
    assert_eq!(p.gssencmode, GssEncMode::Disable);
    assert_eq!(p.channel_binding, ChannelBindingMode::Require);
    assert_eq!(p.target_session_attrs, TargetSessionAttrs::ReadWrite);

    // The string beats the environment.
    let p = resolve(
        "host=strhost port=7000 user=struser dbname=strdb password=strpw application_name=strapp sslmode=require",
        &e,
    );
    assert_eq!(
        p.targets[0].host,
        Host::Tcp {
            name: "strhost".into(),
            addr: None
        }
    );
    assert_eq!(p.targets[0].port, 7000);
    assert_eq!(p.user, "struser");
    assert_eq!(p.dbname, "strdb");
    assert_eq!(p.password.as_deref(), Some("strpw"));
    assert_eq!(p.application_name.as_deref(), Some("strapp"));
    assert_eq!(p.sslmode, SslMode::Require);
}

#[test]
fn resolve_empty_values_fall_back_to_defaults() {
    let e = env().with_var("PGDATABASE", "envdb");
    let p = resolve("host='' port='' user='' password=''", &e);
    assert_eq!(p.user, "osuser");
    assert_eq!(p.dbname, "envdb");
    assert_eq!(p.password, None);
    assert_eq!(p.targets[0].port, 5432);
    assert!(matches!(p.targets[0].host, Host::Unix { .. }));
    // An explicit empty dbname hides PGDATABASE but then defaults to the user.
    assert_eq!(resolve("dbname=''", &e).dbname, "osuser");
}

#[test]
fn resolve_requiressl_env() {
    assert_eq!(
        resolve("", &env().with_var("PGREQUIRESSL", "1")).sslmode,
        SslMode::Require
    );
    assert_eq!(
        resolve("", &env().with_var("PGREQUIRESSL", "0")).sslmode,
        SslMode::Prefer
    );
    let e = env()
        .with_var("PGREQUIRESSL", "1")
        .with_var("PGSSLMODE", "allow");
    assert_eq!(resolve("", &e).sslmode, SslMode::Allow);
}

#[test]
fn resolve_service_errors() {
    assert_eq!(
        resolve_err("service=foo", &env()),
        "service files are not supported"
    );
    assert_eq!(
        resolve_err("", &env().with_var("PGSERVICE", "foo")),
        "service files are not supported"
    );
}

#[test]
fn resolve_application_name_fallback() {
    let p = resolve("fallback_application_name=fb", &env());
    assert_eq!(p.application_name.as_deref(), Some("fb"));
    let p = resolve("fallback_application_name=fb application_name=app", &env());
    assert_eq!(p.application_name.as_deref(), Some("app"));
    let p = resolve(
        "fallback_application_name=fb",
        &env().with_var("PGAPPNAME", "e"),
    );
    assert_eq!(p.application_name.as_deref(), Some("e"));
}

#[test]
fn resolve_client_encoding_auto() {
    assert_eq!(
        resolve("client_encoding=auto", &env()).client_encoding,
        "UTF8"
    );
    assert_eq!(
        resolve("client_encoding=SJIS", &env()).client_encoding,
        "SJIS"
    );
}

#[test]
fn resolve_extra_startup_from_env() {
    let e = env()
        .with_var("PGDATESTYLE", "ISO, DMY")
        .with_var("PGTZ", "UTC")
        .with_var("PGGEQO", "DEFAULT");
    let p = resolve("user=u dbname=d options=-cx=1 application_name=a", &e);
    assert_eq!(
        p.extra_startup,
        [
            ("datestyle".to_owned(), "ISO, DMY".to_owned()),
            ("timezone".to_owned(), "UTC".to_owned())
        ]
    );
    assert_eq!(
        p.startup_params(),
        [
            ("user", "u"),
            ("database", "d"),
            ("options", "-cx=1"),
            ("application_name", "a"),
            ("client_encoding", "UTF8"),
            ("datestyle", "ISO, DMY"),
            ("timezone", "UTC"),
        ]
    );
}

#[test]
fn startup_params_skip_empty() {
    let p = resolve("user=u options='' application_name=''", &env());
    assert_eq!(
        p.startup_params(),
        [
            ("user", "u"),
            ("database", "u"),
            ("client_encoding", "UTF8")
        ]
    );
}

// ---- resolve: hosts and ports ----

#[test]
fn resolve_hosts_and_ports_matched() {
    let p = resolve("host=a,/tmp,@abs,,b port=1,2,3,4,5", &env());
    let hosts: Vec<_> = p.targets.iter().map(|t| t.host.clone()).collect();
    assert_eq!(
        hosts,
        [
            Host::Tcp {
                name: "a".into(),
                addr: None
            },
            Host::Unix { dir: "/tmp".into() },
            Host::Unix { dir: "@abs".into() },
            Host::Unix {
                dir: "/var/run/postgresql".into()
            },
            Host::Tcp {
                name: "b".into(),
                addr: None
            },
        ]
    );
    let ports: Vec<_> = p.targets.iter().map(|t| t.port).collect();
    assert_eq!(ports, [1, 2, 3, 4, 5]);
}

#[test]
fn resolve_single_port_applies_to_all_hosts() {
    let p = resolve("host=a,b,c port=6543", &env());
    assert!(p.targets.iter().all(|t| t.port == 6543));
}

#[test]
fn resolve_port_count_mismatch_errors() {
    assert_eq!(
        resolve_err("host=a,b port=1,2,3", &env()),
        "could not match 3 port numbers to 2 hosts"
    );
    assert_eq!(
        resolve_err("port=1,2", &env()),
        "could not match 2 port numbers to 1 hosts"
    );
}

#[test]
fn resolve_hostaddr() {
    let p = resolve("hostaddr=127.0.0.1", &env());
    assert_eq!(
        p.targets[0].host,
        Host::Tcp {
            name: "127.0.0.1".into(),
            addr: Some("127.0.0.1".parse().unwrap())
        }
    );
    let p = resolve(
        "host=db.example hostaddr=10.0.0.5,::1 host=db.example,other",
        &env(),
    );
    assert_eq!(p.targets.len(), 2);
    assert_eq!(
        p.targets[1].host,
        Host::Tcp {
            name: "other".into(),
            addr: Some("::1".parse().unwrap())
        }
    );
    // hostaddr wins over a socket directory host.
    let p = resolve("host=/tmp hostaddr=127.0.0.1", &env());
    assert!(matches!(p.targets[0].host, Host::Tcp { addr: Some(_), .. }));
}

#[test]
fn resolve_hostaddr_count_mismatch_errors() {
    assert_eq!(
        resolve_err("host=a,b,c hostaddr=1.2.3.4,5.6.7.8", &env()),
        "could not match 3 host names to 2 hostaddr values"
    );
}

#[test]
fn resolve_hostaddr_invalid_errors() {
    assert_eq!(
        resolve_err("hostaddr=localhost", &env()),
        r#"could not parse network address "localhost": Name or service not known"#
    );
}

#[test]
fn resolve_port_validation_errors() {
    assert_eq!(
        resolve_err("port=99999", &env()),
        r#"invalid port number: "99999""#
    );
    assert_eq!(resolve_err("port=0", &env()), r#"invalid port number: "0""#);
    assert_eq!(
        resolve_err("port=-1", &env()),
        r#"invalid port number: "-1""#
    );
    assert_eq!(
        resolve_err("port=abc", &env()),
        r#"invalid integer value "abc" for connection option "port""#
    );
    assert_eq!(
        resolve_err("port=12x", &env()),
        r#"invalid integer value "12x" for connection option "port""#
    );
    assert_eq!(
        resolve_err("port=99999999999", &env()),
        r#"invalid integer value "99999999999" for connection option "port""#
    );
    // strtol-style whitespace and sign are accepted.
    assert_eq!(resolve("port=' +5433 '", &env()).targets[0].port, 5433);
}

// ---- resolve: validation ----

#[test]
fn resolve_enum_validation_errors() {
    let e = env();
    assert_eq!(
        resolve_err("sslmode=bogus", &e),
        r#"invalid sslmode value: "bogus""#
    );
    assert_eq!(
        resolve_err("gssencmode=bogus", &e),
        r#"invalid gssencmode value: "bogus""#
    );
    assert_eq!(
        resolve_err("channel_binding=bogus", &e),
        r#"invalid channel_binding value: "bogus""#
    );
    assert_eq!(
        resolve_err("target_session_attrs=bogus", &e),
        r#"invalid target_session_attrs value: "bogus""#
    );
    assert_eq!(
        resolve_err("min_protocol_version=x", &e),
        r#"invalid min_protocol_version value: "x""#
    );
    assert_eq!(
        resolve_err("max_protocol_version=3.1", &e),
        r#"invalid max_protocol_version value: "3.1""#
    );
    assert_eq!(
        resolve_err("", &e.clone().with_var("PGSSLMODE", "")),
        r#"invalid sslmode value: """#
    );
}

#[test]
fn resolve_enum_values() {
    let e = env();
    for (s, m) in [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        assert_eq!(resolve(&format!("sslmode={s}"), &e).sslmode, m);
    }
    for (s, m) in [
        ("any", TargetSessionAttrs::Any),
        ("read-write", TargetSessionAttrs::ReadWrite),
        ("read-only", TargetSessionAttrs::ReadOnly),
        ("primary", TargetSessionAttrs::Primary),
        ("standby", TargetSessionAttrs::Standby),
        ("prefer-standby", TargetSessionAttrs::PreferStandby),
    ] {
        assert_eq!(
            resolve(&format!("target_session_attrs={s}"), &e).target_session_attrs,
            m
        );
    }
    assert_eq!(
        resolve("gssencmode=require", &e).gssencmode,
        GssEncMode::Require
    );
    assert_eq!(
        resolve("channel_binding=disable", &e).channel_binding,
        ChannelBindingMode::Disable
    );
}

#[test]
fn resolve_protocol_versions() {
    let e = env();
    let p = resolve("max_protocol_version=latest", &e);
    assert_eq!(p.max_protocol_version, ProtocolVersion::V3_2);
    assert_eq!(p.min_protocol_version, ProtocolVersion::V3_0);
    let p = resolve("min_protocol_version=3.2", &e);
    assert_eq!(p.max_protocol_version, ProtocolVersion::V3_2);
    assert_eq!(
        resolve_err("min_protocol_version=3.2 max_protocol_version=3.0", &e),
        "min_protocol_version is greater than max_protocol_version"
    );
    assert_eq!(ProtocolVersion::V3_0.code(), 196608);
    assert_eq!(ProtocolVersion::V3_2.code(), 196610);
}

#[test]
fn resolve_connect_timeout() {
    let e = env();
    assert_eq!(
        resolve("connect_timeout=1", &e).connect_timeout,
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        resolve("connect_timeout=10", &e).connect_timeout,
        Some(Duration::from_secs(10))
    );
    assert_eq!(resolve("connect_timeout=0", &e).connect_timeout, None);
    assert_eq!(resolve("connect_timeout=-5", &e).connect_timeout, None);
    assert_eq!(
        resolve_err("connect_timeout=abc", &e),
        r#"invalid integer value "abc" for connection option "connect_timeout""#
    );
}

#[test]
fn resolve_keepalives() {
    let e = env();
    assert!(resolve("host=h", &e).keepalives);
    assert!(!resolve("host=h keepalives=0", &e).keepalives);
    assert!(resolve("host=h keepalives=1", &e).keepalives);
    assert_eq!(
        resolve_err("host=h keepalives=x", &e),
        r#"invalid integer value "x" for connection option "keepalives""#
    );
}

// ---- Target ----

#[test]
fn target_describe() {
    let p = resolve("host=/tmp,127.0.0.1,db.example port=5432", &env());
    assert_eq!(
        p.targets[0].describe(),
        r#"connection to server on socket "/tmp/.s.PGSQL.5432" failed: "#
    );
    assert_eq!(
        p.targets[1].describe(),
        r#"connection to server at "127.0.0.1", port 5432 failed: "#
    );
    assert_eq!(p.targets[1].socket_path(), None);
    assert_eq!(
        p.targets[2].describe_resolved("10.0.0.5".parse().unwrap()),
        r#"connection to server at "db.example" (10.0.0.5), port 5432 failed: "#
    );
    assert_eq!(
        p.targets[1].describe_resolved("127.0.0.1".parse().unwrap()),
        r#"connection to server at "127.0.0.1", port 5432 failed: "#
    );
    let p = resolve("host=db.example hostaddr=1.2.3.4 port=6000", &env());
    assert_eq!(
        p.targets[0].describe(),
        r#"connection to server at "1.2.3.4", port 6000 failed: "#
    );
}

#[test]
fn connect_params_debug_never_shows_passwords() {
    let dir = temp_dir("debug");
    let passfile = dir.join("pgpass");
    write_file(&passfile, "*:*:*:*:filesecret\n", 0o600);
    let s = format!("host=h passfile={}", passfile.display());
    let p = resolve(&s, &env());
    assert_eq!(p.targets[0].pgpass_password.as_deref(), Some("filesecret"));
    let debug = format!("{p:?}");
    assert!(!debug.contains("filesecret"), "{debug}");
    let p = resolve("host=h password=strsecret", &env());
    let debug = format!("{p:?}");
    assert!(!debug.contains("strsecret"), "{debug}");
    let _ = std::fs::remove_dir_all(dir);
}

// ---- .pgpass ----

#[test]
fn pgpass_matching_rules() {
    let dir = temp_dir("match");
    let passfile = dir.join("pgpass");
    write_file(
        &passfile,
        "# comment line\r\n\
         \n\
         other:5432:db:u:wrong\n\
         localhost:5432:db:u:localpw\r\n\
         h\\:x:*:db:u:escapedhost\n\
         h1:6000:*:u:port6000\n\
         h1:*:db:u:pa\\:ss\\\\word:extra\n\
         *:*:*:*:catchall\n",
        0o600,
    );
    let pf = passfile.display().to_string();
    let e = env();
    let pw = |s: &str| {
        let p = resolve(&format!("{s} passfile={pf}"), &e);
        p.password_for(&p.targets[0]).map(str::to_owned)
    };
    // Default host (socket dir) matches as localhost; CR stripped.
    assert_eq!(pw("dbname=db user=u").as_deref(), Some("localpw"));
    assert_eq!(
        pw("host=localhost dbname=db user=u").as_deref(),
        Some("localpw")
    );
    assert_eq!(
        pw("host=/tmp dbname=db user=u").as_deref(),
        Some("catchall")
    );
    assert_eq!(
        pw("host=h:x dbname=db user=u").as_deref(),
        Some("escapedhost")
    );
    assert_eq!(
        pw("host=h1 port=6000 dbname=any user=u").as_deref(),
        Some("port6000")
    );
    assert_eq!(
        pw("host=h1 dbname=db user=u").as_deref(),
        Some("pa:ss\\word")
    );
    // First match wins.
    assert_eq!(
        pw("host=h1 port=6000 dbname=db user=u").as_deref(),
        Some("port6000")
    );
    // A given password beats the file.
    assert_eq!(
        pw("host=h1 dbname=db user=u password=given").as_deref(),
        Some("given")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pgpass_per_host() {
    let dir = temp_dir("perhost");
    let passfile = dir.join("pgpass");
    write_file(
        &passfile,
        "a:*:*:*:pwa\nb:*:*:*:pwb\n10.0.0.9:*:*:*:pwaddr\n",
        0o600,
    );
    let e = env().with_var("PGPASSFILE", passfile.display().to_string());
    let p = resolve("host=a,b,c", &e);
    assert_eq!(p.password_for(&p.targets[0]), Some("pwa"));
    assert_eq!(p.password_for(&p.targets[1]), Some("pwb"));
    assert_eq!(p.password_for(&p.targets[2]), None);
    assert_eq!(p.passfile.as_deref(), Some(passfile.as_path()));
    // hostaddr only: keyed by the address.
    let p = resolve("hostaddr=10.0.0.9", &e);
    assert_eq!(p.password_for(&p.targets[0]), Some("pwaddr"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pgpass_default_location_in_home() {
    let dir = temp_dir("home");
    write_file(&dir.join(".pgpass"), "*:*:*:osuser:homepw\n", 0o600);
    let e = env().with_home(&dir);
    let p = resolve("host=h", &e);
    assert_eq!(p.password_for(&p.targets[0]), Some("homepw"));
    // PGPASSWORD wins over the file.
    let p = resolve("host=h", &e.clone().with_var("PGPASSWORD", "envpw"));
    assert_eq!(p.password_for(&p.targets[0]), Some("envpw"));
    assert_eq!(p.targets[0].pgpass_password, None);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pgpass_group_or_world_access_is_ignored_with_warning() {
    let dir = temp_dir("perm");
    let passfile = dir.join("pgpass");
    write_file(&passfile, "*:*:*:*:leaked\n", 0o644);
    let s = format!("host=h passfile={}", passfile.display());
    let p = resolve(&s, &env());
    assert_eq!(p.password_for(&p.targets[0]), None);
    assert_eq!(
        p.warnings,
        [format!(
            "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
            passfile.display()
        )]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pgpass_not_a_plain_file_is_ignored_with_warning() {
    let dir = temp_dir("dir");
    let s = format!("host=h passfile={}", dir.display());
    let p = resolve(&s, &env());
    assert_eq!(p.targets[0].pgpass_password, None);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].contains("is not a plain file"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pgpass_missing_file_is_silent() {
    let dir = temp_dir("missing");
    let s = format!("host=h passfile={}", dir.join("nope").display());
    let p = resolve(&s, &env());
    assert_eq!(p.targets[0].pgpass_password, None);
    assert!(p.warnings.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pgpass_field_matching_unit() {
    assert_eq!(pgpass::match_field("*:rest", "x"), Some("rest"));
    assert_eq!(pgpass::match_field("abc:rest", "abc"), Some("rest"));
    assert_eq!(pgpass::match_field("abc:rest", "ab"), None);
    assert_eq!(pgpass::match_field("ab:rest", "abc"), None);
    assert_eq!(pgpass::match_field("a\\:b:rest", "a:b"), Some("rest"));
    assert_eq!(pgpass::match_field("a\\\\:rest", "a\\"), Some("rest"));
    assert_eq!(pgpass::match_field("abc\\", "abc"), None);
    assert_eq!(pgpass::match_field("abc", "abc"), None);
}

// ---- SystemEnvironment ----

#[test]
fn system_environment_smoke() {
    let env = SystemEnvironment;
    // Whatever the machine, these must not panic; a user name is normally found.
    let _ = env.home_dir();
    let _ = env.os_user();
    assert_eq!(env.var("PGDBLINK_SURELY_UNSET_VARIABLE"), None);
}

// ---- robustness ----

#[test]
fn parse_never_panics_on_odd_inputs() {
    let inputs = [
        "postgresql://[",
        "postgresql://[]",
        "postgresql://@",
        "postgresql://:@",
        "postgresql://a:b@",
        "postgresql://a@b@c",
        "postgresql://?",
        "postgresql://?=",
        "postgresql://?&",
        "postgresql:///?",
        "postgresql://[::1]ü",
        "postgresql://ü:ü@ü:ü/ü?ü=ü",
        "postgresql://%",
        "postgresql://%e",
        "postgresql://,,,:,:",
        "'",
        "=",
        "==",
        "a=\\",
        "\\",
        "dbname='\\",
        "\u{0b}\u{0c}",
    ];
    for input in inputs {
        if let Ok(c) = Config::parse(input) {
            let _ = c.to_string();
            let _ = c.resolve(&env());
        }
    }
    let message = parse_err("postgresql://[::1]ü");
    assert!(
        message.starts_with("unexpected character \"ü\" at position 19"),
        "{message}"
    );
}

#[test]
fn parse_pseudo_random_inputs_never_panic() {
    let alphabet: Vec<char> = "postgresql:/@[]%,?&= '\\\"abc0129fFü\t\n".chars().collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 24) as usize;
        let mut s = String::from(if state & 1 == 0 { "postgresql://" } else { "" });
        let mut x = state;
        for _ in 0..len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.push(alphabet[(x >> 33) as usize % alphabet.len()]);
        }
        if let Ok(c) = Config::parse(&s) {
            let shown = c.to_string();
            if !c.iter().any(|(k, _)| k == "password") {
                assert_eq!(Config::parse(&shown).as_ref(), Ok(&c), "{s:?} -> {shown:?}");
            }
            let _ = c.resolve(&env());
        }
    }
}

#[test]
fn uri_errors_never_show_the_password() {
    let message = parse_err("postgresql://u:sec%zzret@h/db");
    assert_eq!(message, r#"invalid percent-encoded token: "********""#);
    let message = parse_err("postgresql://u:secret@[::1");
    assert!(!message.contains("secret"), "{message}");
    assert!(
        message.ends_with(r#"URI: "postgresql://u:********@[::1""#),
        "{message}"
    );
    let message = parse_err("postgresql://u:secret@[::1]x/db");
    assert_eq!(
        message,
        r#"unexpected character "x" at position 28 in URI (expected ":" or "/"): "postgresql://u:********@[::1]x/db""#
    );
    let message = parse_err("postgresql://u@[]");
    assert_eq!(
        message,
        r#"IPv6 host address may not be empty in URI: "postgresql://u@[]""#
    );
}

#[test]
fn query_param_secrets_never_shown() {
    let message = parse_err("postgresql://h?password=top%zzsecret");
    assert_eq!(message, r#"invalid percent-encoded token: "********""#);
    let c = parse("postgresql://h?sslpassword=keypass&password=pw");
    assert!(!c.to_string().contains("keypass"));
    assert!(!format!("{c:?}").contains("keypass"));
    assert_eq!(c.get("sslpassword"), Some("keypass"));
}

// TLS keywords.

#[test]
fn resolve_tls_defaults_follow_libpq() {
    let env = env().with_home("/home/osuser");
    let p = resolve("host=db", &env);
    assert_eq!(p.sslmode, SslMode::Prefer);
    assert_eq!(p.sslnegotiation, SslNegotiation::Postgres);
    assert_eq!(p.channel_binding, ChannelBindingMode::Prefer);
    assert_eq!(
        p.sslrootcert.as_deref(),
        Some("/home/osuser/.postgresql/root.crt")
    );
    assert_eq!(
        p.sslcert.as_deref(),
        Some("/home/osuser/.postgresql/postgresql.crt")
    );
    assert_eq!(
        p.sslkey.as_deref(),
        Some("/home/osuser/.postgresql/postgresql.key")
    );
    assert_eq!(
        p.sslcrl.as_deref(),
        Some("/home/osuser/.postgresql/root.crl")
    );
    assert_eq!(p.sslcrldir, None);
    assert_eq!(p.sslpassword, None);
    assert_eq!(p.sslcertmode, SslCertMode::Allow);
    assert!(p.sslsni);
    assert_eq!(p.ssl_min_protocol_version, Some(TlsVersion::Tls1_2));
    assert_eq!(p.ssl_max_protocol_version, None);
}

#[test]
fn resolve_tls_without_home_leaves_default_files_unset() {
    let p = resolve("host=db", &env());
    assert_eq!(p.sslrootcert, None);
    assert_eq!(p.sslcert, None);
    assert_eq!(p.sslkey, None);
    assert_eq!(p.sslcrl, None);
    let p = resolve("host=db sslrootcert=/ca.pem", &env());
    assert_eq!(p.sslrootcert.as_deref(), Some("/ca.pem"));
}

#[test]
fn resolve_tls_keywords_given() {
    let p = resolve(
        "host=db sslmode=verify-ca sslnegotiation=direct sslrootcert=/r.pem sslcert=/c.pem \
         sslkey=/k.pem sslpassword=hush sslcrl=/l.pem sslcrldir=/crls sslsni=0 \
         ssl_min_protocol_version=tlsv1.3 ssl_max_protocol_version=TLSv1.3 channel_binding=require",
        &env().with_home("/h"),
    );
    assert_eq!(p.sslmode, SslMode::VerifyCa);
    assert_eq!(p.sslnegotiation, SslNegotiation::Direct);
    assert_eq!(p.sslrootcert.as_deref(), Some("/r.pem"));
    assert_eq!(p.sslcert.as_deref(), Some("/c.pem"));
    assert_eq!(p.sslkey.as_deref(), Some("/k.pem"));
    assert_eq!(p.sslpassword.as_deref(), Some("hush"));
    assert_eq!(p.sslcrl.as_deref(), Some("/l.pem"));
    assert_eq!(p.sslcrldir.as_deref(), Some("/crls"));
    assert!(!p.sslsni);
    assert_eq!(p.ssl_min_protocol_version, Some(TlsVersion::Tls1_3));
    assert_eq!(p.ssl_max_protocol_version, Some(TlsVersion::Tls1_3));
    assert_eq!(p.channel_binding, ChannelBindingMode::Require);
    // The key's passphrase is never shown.
    assert!(!format!("{p:?}").contains("hush"));
    assert!(format!("{p:?}").contains("sslpassword: Some(\"********\")"));
}

#[test]
fn resolve_tls_keywords_from_environment() {
    let env = env()
        .with_var("PGSSLMODE", "require")
        .with_var("PGSSLROOTCERT", "/env/root.crt")
        .with_var("PGSSLCERT", "/env/c.crt")
        .with_var("PGSSLKEY", "/env/c.key")
        .with_var("PGSSLCRL", "/env/r.crl")
        .with_var("PGSSLCRLDIR", "/env/crl")
        .with_var("PGSSLSNI", "0")
        .with_var("PGSSLMINPROTOCOLVERSION", "TLSv1")
        .with_var("PGSSLMAXPROTOCOLVERSION", "TLSv1.2")
        .with_var("PGSSLNEGOTIATION", "direct")
        .with_var("PGCHANNELBINDING", "disable")
        .with_var("PGSSLCERTMODE", "require");
    let p = resolve("host=db", &env);
    assert_eq!(p.sslcertmode, SslCertMode::Require);
    assert_eq!(p.sslmode, SslMode::Require);
    assert_eq!(p.sslnegotiation, SslNegotiation::Direct);
    assert_eq!(p.sslrootcert.as_deref(), Some("/env/root.crt"));
    assert_eq!(p.sslcert.as_deref(), Some("/env/c.crt"));
    assert_eq!(p.sslkey.as_deref(), Some("/env/c.key"));
    assert_eq!(p.sslcrl.as_deref(), Some("/env/r.crl"));
    assert_eq!(p.sslcrldir.as_deref(), Some("/env/crl"));
    assert!(!p.sslsni);
    assert_eq!(p.ssl_min_protocol_version, Some(TlsVersion::Tls1_0));
    assert_eq!(p.ssl_max_protocol_version, Some(TlsVersion::Tls1_2));
    assert_eq!(p.channel_binding, ChannelBindingMode::Disable);
    // The string wins over the environment.
    let p = resolve("host=db sslmode=verify-full sslsni=1", &env);
    assert_eq!(p.sslmode, SslMode::VerifyFull);
    assert!(p.sslsni);
}

#[test]
fn resolve_tls_bad_values_give_libpq_texts() {
    let env = env();
    assert_eq!(
        resolve_err("sslmode=on", &env),
        "invalid sslmode value: \"on\""
    );
    assert_eq!(
        resolve_err("sslnegotiation=tls", &env),
        "invalid sslnegotiation value: \"tls\""
    );
    assert_eq!(
        resolve_err("channel_binding=yes", &env),
        "invalid channel_binding value: \"yes\""
    );
    assert_eq!(
        resolve_err("sslcertmode=always", &env),
        "invalid sslcertmode value: \"always\""
    );
    assert_eq!(
        resolve_err("ssl_min_protocol_version=TLSv1.4", &env),
        "invalid \"ssl_min_protocol_version\" value: \"TLSv1.4\""
    );
    assert_eq!(
        resolve_err("ssl_max_protocol_version=SSLv3", &env),
        "invalid \"ssl_max_protocol_version\" value: \"SSLv3\""
    );
    assert_eq!(
        resolve_err(
            "ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2",
            &env
        ),
        "invalid SSL protocol version range"
    );
    assert_eq!(
        resolve_err("", &env.clone().with_var("PGSSLNEGOTIATION", "nope")),
        "invalid sslnegotiation value: \"nope\""
    );
}

#[test]
fn resolve_tls_empty_protocol_versions_mean_no_bound() {
    let p = resolve(
        "ssl_min_protocol_version='' ssl_max_protocol_version=''",
        &env(),
    );
    assert_eq!(p.ssl_min_protocol_version, None);
    assert_eq!(p.ssl_max_protocol_version, None);
}

#[test]
fn resolve_direct_negotiation_needs_strong_sslmode() {
    let env = env();
    for mode in ["disable", "allow", "prefer"] {
        assert_eq!(
            resolve_err(&format!("sslmode={mode} sslnegotiation=direct"), &env),
            format!(
                "weak sslmode \"{mode}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")"
            )
        );
    }
    // The default sslmode is prefer: direct alone is refused.
    assert!(resolve_err("sslnegotiation=direct", &env).contains("weak sslmode \"prefer\""));
    for mode in ["require", "verify-ca", "verify-full"] {
        let p = resolve(&format!("sslmode={mode} sslnegotiation=direct"), &env);
        assert_eq!(p.sslnegotiation, SslNegotiation::Direct);
    }
}

#[test]
fn resolve_sslrootcert_system_raises_default_and_refuses_weak_modes() {
    let env = env();
    let p = resolve("sslrootcert=system", &env);
    assert_eq!(p.sslmode, SslMode::VerifyFull);
    assert_eq!(p.sslrootcert.as_deref(), Some("system"));
    for mode in ["disable", "allow", "prefer", "require", "verify-ca"] {
        assert_eq!(
            resolve_err(&format!("sslrootcert=system sslmode={mode}"), &env),
            format!(
                "weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \"verify-full\")"
            )
        );
    }
    // PGSSLMODE counts as given.
    let from_env = env.clone().with_var("PGSSLMODE", "require");
    assert!(resolve_err("sslrootcert=system", &from_env).contains("weak sslmode \"require\""));
}

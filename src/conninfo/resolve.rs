//! Environment, defaults, `.pgpass` and validation (libpq's `conninfo_add_defaults` and
//! `pqConnectOptions2`, plus the per-host checks `PQconnectPoll` makes).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::pgpass::{self, DEFAULT_SOCKET_DIR, PgPass};
use super::{Config, Environment, config_error, env_var_of, is_c_space};
use crate::Error;

/// `sslmode`: whether and how to negotiate TLS.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// `disable`: never ask for TLS.
    Disable,
    /// `allow`: plaintext first, TLS if the server insists.
    Allow,
    /// `prefer` (the default): ask for TLS, accept plaintext.
    #[default]
    Prefer,
    /// `require`: TLS or fail.
    Require,
    /// `verify-ca`: TLS with a verified certificate chain.
    VerifyCa,
    /// `verify-full`: TLS with a verified chain and host name.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// `sslnegotiation` (PostgreSQL 17): how TLS is started.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SslNegotiation {
    /// `postgres` (the default): an SSLRequest first, the TLS handshake after the server's `S`.
    #[default]
    Postgres,
    /// `direct`: the TLS handshake at once, with ALPN `postgresql` (PostgreSQL 17 servers only).
    /// Allowed only with `sslmode` `require`, `verify-ca` or `verify-full`.
    Direct,
}

impl SslNegotiation {
    fn parse(value: &str) -> Option<SslNegotiation> {
        Some(match value {
            "postgres" => SslNegotiation::Postgres,
            "direct" => SslNegotiation::Direct,
            _ => return None,
        })
    }
}

/// `sslcertmode` (PostgreSQL 16): whether the client certificate is sent.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SslCertMode {
    /// `disable`: never send a client certificate.
    Disable,
    /// `allow` (the default): send one when the server asks and one is configured.
    #[default]
    Allow,
    /// `require`: fail unless a certificate was sent (libpq: `server did not request an SSL
    /// certificate`, `server accepted connection without a valid SSL certificate`).
    Require,
}

impl SslCertMode {
    fn parse(value: &str) -> Option<SslCertMode> {
        Some(match value {
            "disable" => SslCertMode::Disable,
            "allow" => SslCertMode::Allow,
            "require" => SslCertMode::Require,
            _ => return None,
        })
    }
}

/// A TLS protocol version (`ssl_min_protocol_version` / `ssl_max_protocol_version`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLSv1` (TLS 1.0).
    Tls1_0,
    /// `TLSv1.1`.
    Tls1_1,
    /// `TLSv1.2`.
    Tls1_2,
    /// `TLSv1.3`.
    Tls1_3,
}

impl TlsVersion {
    /// libpq's spelling: `TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls1_0 => "TLSv1",
            TlsVersion::Tls1_1 => "TLSv1.1",
            TlsVersion::Tls1_2 => "TLSv1.2",
            TlsVersion::Tls1_3 => "TLSv1.3",
        }
    }

    /// libpq's `sslVerifyProtocolVersion`: the names, case-insensitively.
    fn parse(value: &str) -> Option<TlsVersion> {
        [
            TlsVersion::Tls1_0,
            TlsVersion::Tls1_1,
            TlsVersion::Tls1_2,
            TlsVersion::Tls1_3,
        ]
        .into_iter()
        .find(|v| v.name().eq_ignore_ascii_case(value))
    }
}

/// `gssencmode`: whether to negotiate GSSAPI encryption.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GssEncMode {
    /// `disable`.
    Disable,
    /// `prefer` (the default).
    #[default]
    Prefer,
    /// `require`.
    Require,
}

impl GssEncMode {
    fn parse(value: &str) -> Option<GssEncMode> {
        Some(match value {
            "disable" => GssEncMode::Disable,
            "prefer" => GssEncMode::Prefer,
            "require" => GssEncMode::Require,
            _ => return None,
        })
    }
}

/// `channel_binding`: whether SCRAM channel binding is used.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ChannelBindingMode {
    /// `disable`.
    Disable,
    /// `prefer` (the default).
    #[default]
    Prefer,
    /// `require`.
    Require,
}

impl ChannelBindingMode {
    fn parse(value: &str) -> Option<ChannelBindingMode> {
        Some(match value {
            "disable" => ChannelBindingMode::Disable,
            "prefer" => ChannelBindingMode::Prefer,
            "require" => ChannelBindingMode::Require,
            _ => return None,
        })
    }
}

/// `target_session_attrs`: which kind of server a connection attempt accepts.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TargetSessionAttrs {
    /// `any` (the default).
    #[default]
    Any,
    /// `read-write`.
    ReadWrite,
    /// `read-only`.
    ReadOnly,
    /// `primary`.
    Primary,
    /// `standby`.
    Standby,
    /// `prefer-standby`.
    PreferStandby,
}

impl TargetSessionAttrs {
    fn parse(value: &str) -> Option<TargetSessionAttrs> {
        Some(match value {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            _ => return None,
        })
    }
}

/// `load_balance_hosts` (PostgreSQL 16): the order in which hosts and addresses are tried.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LoadBalanceHosts {
    /// `disable` (the default): hosts in the order given, addresses in the order DNS returns them.
    #[default]
    Disable,
    /// `random`: the hosts are shuffled once, and each host's addresses after its lookup. The
    /// shuffling is the driver's (this layer has no randomness).
    Random,
}

impl LoadBalanceHosts {
    fn parse(value: &str) -> Option<LoadBalanceHosts> {
        Some(match value {
            "disable" => LoadBalanceHosts::Disable,
            "random" => LoadBalanceHosts::Random,
            _ => return None,
        })
    }
}

/// A frontend/backend protocol version (`min_protocol_version` / `max_protocol_version`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ProtocolVersion {
    /// 3.0 (the default maximum, as in libpq 18).
    #[default]
    V3_0,
    /// 3.2 (PostgreSQL 18; `latest`).
    V3_2,
}

impl ProtocolVersion {
    fn parse(value: &str) -> Option<ProtocolVersion> {
        Some(match value {
            "3.0" => ProtocolVersion::V3_0,
            "3.2" | "latest" => ProtocolVersion::V3_2,
            _ => return None,
        })
    }

    /// The number sent in the StartupMessage: `major << 16 | minor` (196608 for 3.0, 196610 for 3.2).
    pub fn code(self) -> i32 {
        match self {
            ProtocolVersion::V3_0 => 3 << 16,
            ProtocolVersion::V3_2 => (3 << 16) | 2,
        }
    }
}

/// Where a target's server listens.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// TCP. `name` is the host name as given (used in messages and for `.pgpass`; the `hostaddr`
    /// text when no host name was given); `addr` is the `hostaddr` value, in which case no name
    /// lookup is made.
    Tcp {
        /// The host name (or the hostaddr text if only a hostaddr was given).
        name: String,
        /// The numeric address from `hostaddr=`.
        addr: Option<IpAddr>,
    },
    /// A unix-domain socket in directory `dir` (a host starting with `/` or `@`).
    Unix {
        /// The socket directory.
        dir: PathBuf,
    },
}

/// One server to try: a host with its port, in the order libpq tries them.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The host.
    pub host: Host,
    /// The port (5432 unless given).
    pub port: u16,
    /// The password `.pgpass` holds for this host, when the connection string and environment gave
    /// none. Never shown by `Debug`.
    pub pgpass_password: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "pgpass_password",
                &self.pgpass_password.as_ref().map(|_| "********"),
            )
            .finish()
    }
}

impl Target {
    /// libpq's prefix for this target's error texts (`emitHostIdentityInfo`):
    /// `connection to server at "127.0.0.1", port 5432 failed: ` or
    /// `connection to server on socket "/tmp/.s.PGSQL.5432" failed: `.
    ///
    /// As in libpq, a target with a `hostaddr` is shown by that address. For a host name that was
    /// resolved by DNS, use [`describe_resolved`](Target::describe_resolved) to add the address.
    pub fn describe(&self) -> String {
        match &self.host {
            Host::Unix { .. } => format!(
                "connection to server on socket \"{}\" failed: ",
                self.socket_path()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            Host::Tcp {
                addr: Some(addr), ..
            } => format!(
                "connection to server at \"{addr}\", port {} failed: ",
                self.port
            ),
            Host::Tcp { name, addr: None } => format!(
                "connection to server at \"{name}\", port {} failed: ",
                self.port
            ),
        }
    }

    /// The prefix once the host name has been resolved to `resolved`: libpq adds the address in
    /// parentheses when it differs from the name and no `hostaddr` was given,
    /// `connection to server at "db.example" (10.0.0.5), port 5432 failed: `.
    pub fn describe_resolved(&self, resolved: IpAddr) -> String {
        match &self.host {
            Host::Tcp { name, addr: None } if *name != resolved.to_string() => format!(
                "connection to server at \"{name}\" ({resolved}), port {} failed: ",
                self.port
            ),
            _ => self.describe(),
        }
    }

    /// The socket path `dir/.s.PGSQL.<port>` for a unix-socket target; `None` for TCP.
    pub fn socket_path(&self) -> Option<PathBuf> {
        match &self.host {
            Host::Unix { dir } => Some(PathBuf::from(format!(
                "{}/.s.PGSQL.{}",
                dir.to_string_lossy(),
                self.port
            ))),
            Host::Tcp { .. } => None,
        }
    }
}

/// Everything the driver connects with: the result of [`Config::resolve`].
#[derive(Clone)]
pub struct ConnectParams {
    /// One per host (hosts and ports matched libpq-style), tried in order.
    pub targets: Vec<Target>,
    /// The user name (`user`, `PGUSER`, else the OS user).
    pub user: String,
    /// The database (`dbname`, `PGDATABASE`, else the user name).
    pub dbname: String,
    /// The password from `password=` or `PGPASSWORD` (an empty one counts as none).
    pub password: Option<String>,
    /// `application_name` (or `PGAPPNAME`), else `fallback_application_name`.
    pub application_name: Option<String>,
    /// `options` (or `PGOPTIONS`): command-line options for the server.
    pub options: Option<String>,
    /// The client encoding to request: `UTF8` unless `client_encoding`/`PGCLIENTENCODING` says
    /// otherwise (`auto` means `UTF8`).
    pub client_encoding: String,
    /// The connection timeout per host: values below 2 s other than 0 become 2 s; `None` for 0,
    /// negative or unset.
    pub connect_timeout: Option<Duration>,
    /// `sslmode` (`PGSSLMODE`, `PGREQUIRESSL`); default `prefer`, or `verify-full` when
    /// `sslrootcert=system` and no sslmode was given.
    pub sslmode: SslMode,
    /// `sslnegotiation` (`PGSSLNEGOTIATION`); default `postgres`.
    pub sslnegotiation: SslNegotiation,
    /// `sslrootcert` (`PGSSLROOTCERT`): a PEM file of trusted roots, or `system` for the
    /// platform's store; default `~/.postgresql/root.crt`. `None` when not given and the home
    /// directory is unknown (libpq's `could not get home directory to locate root certificate
    /// file` for verify-ca/verify-full).
    pub sslrootcert: Option<String>,
    /// `sslcert` (`PGSSLCERT`): the client certificate file; default `~/.postgresql/postgresql.crt`
    /// (a missing file means no client certificate). `None` when not given and no home directory.
    pub sslcert: Option<String>,
    /// `sslkey` (`PGSSLKEY`): the client key file; default `~/.postgresql/postgresql.key`.
    pub sslkey: Option<String>,
    /// `sslcertmode` (`PGSSLCERTMODE`): default `allow`.
    pub sslcertmode: SslCertMode,
    /// `sslpassword`: the passphrase of an encrypted client key (empty counts as none). Never shown
    /// by `Debug`.
    pub sslpassword: Option<String>,
    /// `sslcrl` (`PGSSLCRL`): a certificate revocation list file; default `~/.postgresql/root.crl`
    /// (a missing file is ignored).
    pub sslcrl: Option<String>,
    /// `sslcrldir` (`PGSSLCRLDIR`): a directory of CRL files; no default.
    pub sslcrldir: Option<String>,
    /// `sslsni` (`PGSSLSNI`): send the host name as SNI (not for IP literals); on unless the value
    /// does not start with `1`, as libpq tests it.
    pub sslsni: bool,
    /// `ssl_min_protocol_version` (`PGSSLMINPROTOCOLVERSION`): default `TLSv1.2`; `None` for an
    /// empty value (no lower bound).
    pub ssl_min_protocol_version: Option<TlsVersion>,
    /// `ssl_max_protocol_version` (`PGSSLMAXPROTOCOLVERSION`): no default (no upper bound).
    pub ssl_max_protocol_version: Option<TlsVersion>,
    /// `gssencmode` (recorded; refusing `require` is up to the driver).
    pub gssencmode: GssEncMode,
    /// `channel_binding`.
    pub channel_binding: ChannelBindingMode,
    /// `target_session_attrs`.
    pub target_session_attrs: TargetSessionAttrs,
    /// `load_balance_hosts` (`PGLOADBALANCEHOSTS`): `random` has the driver shuffle the hosts
    /// and each host's addresses.
    pub load_balance_hosts: LoadBalanceHosts,
    /// `max_protocol_version`: 3.0 unless given (or 3.2 if `min_protocol_version` asks for more).
    pub max_protocol_version: ProtocolVersion,
    /// `min_protocol_version`: 3.0 unless given.
    pub min_protocol_version: ProtocolVersion,
    /// `keepalives` (default on).
    pub keepalives: bool,
    /// Startup parameters from the environment: `PGDATESTYLE` -> `datestyle`, `PGTZ` ->
    /// `timezone`, `PGGEQO` -> `geqo` (not when set to `default`).
    pub extra_startup: Vec<(String, String)>,
    /// Warnings libpq would print to stderr, such as the `.pgpass` permission warning. pgdblink
    /// never prints them.
    pub warnings: Vec<String>,
    /// The password file consulted, if any (for libpq's `password retrieved from file "..."` hint
    /// when a `.pgpass` password is rejected).
    pub passfile: Option<PathBuf>,
}

impl fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectParams")
            .field("targets", &self.targets)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("client_encoding", &self.client_encoding)
            .field("connect_timeout", &self.connect_timeout)
            .field("sslmode", &self.sslmode)
            .field("sslnegotiation", &self.sslnegotiation)
            .field("sslrootcert", &self.sslrootcert)
            .field("sslcert", &self.sslcert)
            .field("sslkey", &self.sslkey)
            .field("sslcertmode", &self.sslcertmode)
            .field(
                "sslpassword",
                &self.sslpassword.as_ref().map(|_| "********"),
            )
            .field("sslcrl", &self.sslcrl)
            .field("sslcrldir", &self.sslcrldir)
            .field("sslsni", &self.sslsni)
            .field("ssl_min_protocol_version", &self.ssl_min_protocol_version)
            .field("ssl_max_protocol_version", &self.ssl_max_protocol_version)
            .field("gssencmode", &self.gssencmode)
            .field("channel_binding", &self.channel_binding)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("load_balance_hosts", &self.load_balance_hosts)
            .field("max_protocol_version", &self.max_protocol_version)
            .field("min_protocol_version", &self.min_protocol_version)
            .field("keepalives", &self.keepalives)
            .field("extra_startup", &self.extra_startup)
            .field("warnings", &self.warnings)
            .field("passfile", &self.passfile)
            .finish()
    }
}

impl ConnectParams {
    /// The StartupMessage parameters in libpq's order: `user`, `database`, `options`,
    /// `application_name`, `client_encoding`, then the environment extras; each only if non-empty.
    pub fn startup_params(&self) -> Vec<(&str, &str)> {
        let mut params: Vec<(&str, &str)> = Vec::new();
        let fixed: [(&str, Option<&str>); 5] = [
            ("user", Some(self.user.as_str())),
            ("database", Some(self.dbname.as_str())),
            ("options", self.options.as_deref()),
            ("application_name", self.application_name.as_deref()),
            ("client_encoding", Some(self.client_encoding.as_str())),
        ];
        for (name, value) in fixed {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                params.push((name, value));
            }
        }
        for (name, value) in &self.extra_startup {
            if !name.is_empty() && !value.is_empty() {
                params.push((name.as_str(), value.as_str()));
            }
        }
        params
    }

    /// The password for `target`: the one the connection string or `PGPASSWORD` gave, else the
    /// per-host `.pgpass` one.
    pub fn password_for<'a>(&'a self, target: &'a Target) -> Option<&'a str> {
        self.password
            .as_deref()
            .or(target.pgpass_password.as_deref())
    }
}

/// libpq's `pqParseIntParam`: strtol with leading and trailing whitespace, an int.
fn parse_int(value: &str, keyword: &str) -> Result<i32, Error> {
    let trimmed = value
        .trim_start_matches(is_c_space)
        .trim_end_matches(is_c_space);
    let digits = trimmed
        .strip_prefix('+')
        .or_else(|| trimmed.strip_prefix('-'))
        .unwrap_or(trimmed);
    let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    match trimmed.parse::<i32>() {
        Ok(n) if valid => Ok(n),
        _ => Err(config_error(format!(
            "invalid integer value \"{value}\" for connection option \"{keyword}\""
        ))),
    }
}

fn invalid_value(keyword: &str, value: &str) -> Error {
    config_error(format!("invalid {keyword} value: \"{value}\""))
}

fn parse_enum<T>(
    value: Option<String>,
    keyword: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, Error> {
    match value {
        None => Ok(None),
        Some(v) => parse(&v)
            .map(Some)
            .ok_or_else(|| invalid_value(keyword, &v)),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl Config {
    /// The value of `keyword`: from the string, else from its environment variable.
    fn lookup(&self, env: &dyn Environment, keyword: &str) -> Option<String> {
        if let Some(value) = self.get(keyword) {
            return Some(value.to_owned());
        }
        let from_env = env_var_of(keyword).and_then(|name| env.var(name));
        if from_env.is_some() {
            return from_env;
        }
        // The deprecated PGREQUIRESSL: values starting with "1" mean sslmode=require; PGSSLMODE
        // takes precedence.
        if keyword == "sslmode" && env.var("PGREQUIRESSL").is_some_and(|v| v.starts_with('1')) {
            return Some("require".to_owned());
        }
        None
    }

    /// Fills unset keywords from the environment (`PG*` variables), then libpq's defaults; picks the
    /// password from `.pgpass` per host; validates every value with libpq's texts.
    ///
    /// Defaults: user = the OS user, dbname = the user, port 5432, host = the unix socket directory
    /// `/var/run/postgresql` (libpq's Debian default) when neither host nor hostaddr is given.
    /// Service files are not supported: asking for a service (`service=` or `PGSERVICE`) is an
    /// error. `sslmode=require` and the like are recorded, not refused: that is the driver's call.
    ///
    /// ```
    /// use pgdblink::Config;
    /// use pgdblink::conninfo::{Host, MapEnvironment};
    ///
    /// let env = MapEnvironment::default().with_var("PGPORT", "6543").with_user("alice");
    /// let params = Config::parse("host=db1,db2 dbname=sales").unwrap().resolve(&env).unwrap();
    /// assert_eq!(params.user, "alice");
    /// assert_eq!(params.targets.len(), 2);
    /// assert_eq!(params.targets[1].port, 6543);
    /// assert_eq!(params.targets[1].host, Host::Tcp { name: "db2".into(), addr: None });
    /// ```
    pub fn resolve(&self, env: &dyn Environment) -> Result<ConnectParams, Error> {
        let get = |keyword: &str| self.lookup(env, keyword);

        if non_empty(get("service")).is_some() {
            return Err(config_error("service files are not supported"));
        }

        // Hosts and hostaddrs: the hostaddr list, if given, fixes the number of slots.
        let host = non_empty(get("host"));
        let hostaddr = non_empty(get("hostaddr"));
        let split = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        let (hosts, hostaddrs) = match (&host, &hostaddr) {
            (_, Some(ha)) => {
                let hostaddrs = split(ha);
                let hosts = match &host {
                    Some(h) => {
                        let hosts = split(h);
                        if hosts.len() != hostaddrs.len() {
                            return Err(config_error(format!(
                                "could not match {} host names to {} hostaddr values",
                                hosts.len(),
                                hostaddrs.len()
                            )));
                        }
                        hosts
                    }
                    None => vec![String::new(); hostaddrs.len()],
                };
                (hosts, hostaddrs)
            }
            (Some(h), None) => {
                let hosts = split(h);
                let n = hosts.len();
                (hosts, vec![String::new(); n])
            }
            (None, None) => (vec![String::new()], vec![String::new()]),
        };
        let n = hosts.len();

        // Ports: one for all, or exactly one per host.
        let ports = match non_empty(get("port")) {
            None => vec![String::new(); n],
            Some(p) => {
                let ports = split(&p);
                if ports.len() == 1 {
                    vec![p; n]
                } else if ports.len() != n {
                    return Err(config_error(format!(
                        "could not match {} port numbers to {} hosts",
                        ports.len(),
                        n
                    )));
                } else {
                    ports
                }
            }
        };

        let user = match non_empty(get("user")) {
            Some(user) => user,
            None => env
                .os_user()
                .ok_or_else(|| config_error("could not look up local user name"))?,
        };
        let dbname = non_empty(get("dbname")).unwrap_or_else(|| user.clone());
        let password = non_empty(get("password"));

        // .pgpass, read at most once, only when no password was given.
        let mut warnings = Vec::new();
        let mut passfile = None;
        let mut pgpass: Option<PgPass> = None;
        if password.is_none() {
            let path = non_empty(get("passfile"))
                .map(PathBuf::from)
                .or_else(|| env.home_dir().map(|home| home.join(".pgpass")));
            if let Some(path) = path {
                match pgpass::read(&path) {
                    Ok(file) => pgpass = file,
                    Err(warning) => warnings.push(warning),
                }
                passfile = Some(path);
            }
        }

        let channel_binding = parse_enum(
            get("channel_binding"),
            "channel_binding",
            ChannelBindingMode::parse,
        )?
        .unwrap_or_default();
        let tls = self.resolve_tls(env)?;
        let gssencmode =
            parse_enum(get("gssencmode"), "gssencmode", GssEncMode::parse)?.unwrap_or_default();
        let target_session_attrs = parse_enum(
            get("target_session_attrs"),
            "target_session_attrs",
            TargetSessionAttrs::parse,
        )?
        .unwrap_or_default();
        let load_balance_hosts = parse_enum(
            get("load_balance_hosts"),
            "load_balance_hosts",
            LoadBalanceHosts::parse,
        )?
        .unwrap_or_default();
        let min_protocol_version = parse_enum(
            get("min_protocol_version"),
            "min_protocol_version",
            ProtocolVersion::parse,
        )?
        .unwrap_or_default();
        let max_protocol_version = match parse_enum(
            get("max_protocol_version"),
            "max_protocol_version",
            ProtocolVersion::parse,
        )? {
            Some(v) => v,
            // libpq 18: 3.0 by default, unless the minimum asks for more.
            None if min_protocol_version > ProtocolVersion::V3_0 => ProtocolVersion::V3_2,
            None => ProtocolVersion::V3_0,
        };
        if min_protocol_version > max_protocol_version {
            return Err(config_error(
                "min_protocol_version is greater than max_protocol_version",
            ));
        }

        // Per-host: port, then hostaddr, as PQconnectPoll checks them.
        let mut targets = Vec::with_capacity(n);
        for ((name, addr_text), port_text) in hosts.iter().zip(&hostaddrs).zip(&ports) {
            let port = if port_text.is_empty() {
                5432
            } else {
                let number = parse_int(port_text, "port")?;
                u16::try_from(number)
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| config_error(format!("invalid port number: \"{port_text}\"")))?
            };
            let host = if !addr_text.is_empty() {
                let addr: IpAddr = addr_text.parse().map_err(|_| {
                    config_error(format!(
                        "could not parse network address \"{addr_text}\": Name or service not known"
                    ))
                })?;
                let name = if name.is_empty() { addr_text } else { name };
                Host::Tcp {
                    name: name.clone(),
                    addr: Some(addr),
                }
            } else if name.is_empty() {
                Host::Unix {
                    dir: PathBuf::from(DEFAULT_SOCKET_DIR),
                }
            } else if name.starts_with('/') || name.starts_with('@') {
                Host::Unix {
                    dir: PathBuf::from(name),
                }
            } else {
                Host::Tcp {
                    name: name.clone(),
                    addr: None,
                }
            };
            // .pgpass is keyed by the host name, else the hostaddr, else the default socket dir.
            let key = if !name.is_empty() {
                name.as_str()
            } else {
                addr_text.as_str()
            };
            let pgpass_password = pgpass
                .as_ref()
                .and_then(|file| file.lookup(key, port_text, &dbname, &user));
            targets.push(Target {
                host,
                port,
                pgpass_password,
            });
        }

        let connect_timeout = match get("connect_timeout") {
            None => None,
            Some(v) => {
                let seconds = parse_int(&v, "connect_timeout")?;
                (seconds > 0).then(|| Duration::from_secs(u64::from(seconds.max(2).unsigned_abs())))
            }
        };
        let keepalives = match self.get("keepalives") {
            Some(v) if targets.iter().any(|t| matches!(t.host, Host::Tcp { .. })) => {
                parse_int(v, "keepalives")? != 0
            }
            _ => true,
        };

        let application_name = non_empty(get("application_name"))
            .or_else(|| non_empty(get("fallback_application_name")));
        let options = non_empty(get("options"));
        let client_encoding = match non_empty(get("client_encoding")) {
            None => "UTF8".to_owned(),
            Some(e) if e == "auto" => "UTF8".to_owned(),
            Some(e) => e,
        };

        let mut extra_startup = Vec::new();
        for (var, name) in [
            ("PGDATESTYLE", "datestyle"),
            ("PGTZ", "timezone"),
            ("PGGEQO", "geqo"),
        ] {
            if let Some(value) = env.var(var)
                && !value.is_empty()
                && !value.eq_ignore_ascii_case("default")
            {
                extra_startup.push((name.to_owned(), value));
            }
        }

        Ok(ConnectParams {
            targets,
            user,
            dbname,
            password,
            application_name,
            options,
            client_encoding,
            connect_timeout,
            sslmode: tls.sslmode,
            sslnegotiation: tls.sslnegotiation,
            sslrootcert: tls.sslrootcert,
            sslcert: tls.sslcert,
            sslkey: tls.sslkey,
            sslcertmode: tls.sslcertmode,
            sslpassword: tls.sslpassword,
            sslcrl: tls.sslcrl,
            sslcrldir: tls.sslcrldir,
            sslsni: tls.sslsni,
            ssl_min_protocol_version: tls.ssl_min_protocol_version,
            ssl_max_protocol_version: tls.ssl_max_protocol_version,
            gssencmode,
            channel_binding,
            target_session_attrs,
            load_balance_hosts,
            max_protocol_version,
            min_protocol_version,
            keepalives,
            extra_startup,
            warnings,
            passfile,
        })
    }
}

/// The TLS keywords, resolved (see the fields of [`ConnectParams`]).
struct TlsParams {
    sslmode: SslMode,
    sslnegotiation: SslNegotiation,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
    sslcertmode: SslCertMode,
    sslpassword: Option<String>,
    sslcrl: Option<String>,
    sslcrldir: Option<String>,
    sslsni: bool,
    ssl_min_protocol_version: Option<TlsVersion>,
    ssl_max_protocol_version: Option<TlsVersion>,
}

impl Config {
    /// The TLS keywords with libpq's defaults and checks, in `pqConnectOptions2`'s order: sslmode,
    /// sslnegotiation (direct needs a strong sslmode), `sslrootcert=system` (raises the default
    /// sslmode to verify-full, refuses a weaker explicit one), the protocol-version range.
    fn resolve_tls(&self, env: &dyn Environment) -> Result<TlsParams, Error> {
        let get = |keyword: &str| self.lookup(env, keyword);
        let home_file = |name: &str| {
            env.home_dir().map(|home| {
                home.join(".postgresql")
                    .join(name)
                    .to_string_lossy()
                    .into_owned()
            })
        };
        let path = |keyword: &str, default: Option<&str>| match non_empty(get(keyword)) {
            Some(v) => Some(v),
            None => default.and_then(home_file),
        };
        let sslrootcert = path("sslrootcert", Some("root.crt"));
        let system_roots = non_empty(get("sslrootcert")).as_deref() == Some("system");
        let sslmode = match parse_enum(get("sslmode"), "sslmode", SslMode::parse)? {
            Some(mode) => mode,
            // libpq's conninfo_add_defaults: the system store means verifying the host name.
            None if system_roots => SslMode::VerifyFull,
            None => SslMode::default(),
        };
        let mode_name = |mode: SslMode| match mode {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        };
        let sslnegotiation = parse_enum(
            get("sslnegotiation"),
            "sslnegotiation",
            SslNegotiation::parse,
        )?
        .unwrap_or_default();
        if sslnegotiation == SslNegotiation::Direct
            && !matches!(
                sslmode,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
            )
        {
            return Err(config_error(format!(
                "weak sslmode \"{}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")",
                mode_name(sslmode)
            )));
        }
        if system_roots && sslmode != SslMode::VerifyFull {
            return Err(config_error(format!(
                "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
                mode_name(sslmode)
            )));
        }
        let version = |keyword: &str| -> Result<Option<Option<TlsVersion>>, Error> {
            match get(keyword) {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(Some(None)),
                Some(v) => match TlsVersion::parse(&v) {
                    Some(version) => Ok(Some(Some(version))),
                    None => Err(config_error(format!(
                        "invalid \"{keyword}\" value: \"{v}\""
                    ))),
                },
            }
        };
        let ssl_min_protocol_version =
            version("ssl_min_protocol_version")?.unwrap_or(Some(TlsVersion::Tls1_2));
        let ssl_max_protocol_version = version("ssl_max_protocol_version")?.flatten();
        if let (Some(min), Some(max)) = (ssl_min_protocol_version, ssl_max_protocol_version)
            && min > max
        {
            return Err(config_error("invalid SSL protocol version range"));
        }
        Ok(TlsParams {
            sslmode,
            sslnegotiation,
            sslrootcert,
            sslcert: path("sslcert", Some("postgresql.crt")),
            sslkey: path("sslkey", Some("postgresql.key")),
            sslcertmode: parse_enum(get("sslcertmode"), "sslcertmode", SslCertMode::parse)?
                .unwrap_or_default(),
            sslpassword: non_empty(get("sslpassword")),
            sslcrl: path("sslcrl", Some("root.crl")),
            sslcrldir: path("sslcrldir", None),
            sslsni: get("sslsni").is_none_or(|v| v.starts_with('1')),
            ssl_min_protocol_version,
            ssl_max_protocol_version,
        })
    }
}

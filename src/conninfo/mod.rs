//! Connection strings with libpq's rules.
//!
//! [`Config::parse`] is `PQconninfoParse`: it accepts libpq's `key=value` strings and
//! `postgresql://` / `postgres://` URIs and records what the string itself says, after unquoting and
//! percent-decoding, with libpq's error texts. [`Config::resolve`] then does what libpq's
//! `conninfo_add_defaults` and `pqConnectOptions2` do: it fills unset keywords from the `PG*`
//! environment variables (through the injectable [`Environment`]) and from libpq's defaults, looks up
//! passwords in `.pgpass`, matches host and port lists, and validates every value. The result,
//! [`ConnectParams`], is what the driver connects with. Nothing here touches the network.

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind};

mod env;
mod parse;
mod pgpass;
mod resolve;
mod uri;

#[cfg(test)]
mod tests;

pub use env::{Environment, MapEnvironment, SystemEnvironment};
pub use resolve::{
    ChannelBindingMode, ConnectParams, GssEncMode, Host, LoadBalanceHosts, ProtocolVersion,
    SslCertMode, SslMode, SslNegotiation, Target, TargetSessionAttrs, TlsVersion,
};

/// libpq's keywords (PostgreSQL 15 to 18) with the environment variable each one defaults from.
///
/// Every keyword is accepted by [`Config::parse`], even those pgdblink ignores, so that valid libpq
/// strings are never rejected.
pub(crate) const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("service", Some("PGSERVICE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("dbname", Some("PGDATABASE")),
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("client_encoding", Some("PGCLIENTENCODING")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("sslmode", Some("PGSSLMODE")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("sslcompression", Some("PGSSLCOMPRESSION")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslcertmode", Some("PGSSLCERTMODE")),
    ("sslpassword", None),
    ("sslkeylogfile", None),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("sslsni", Some("PGSSLSNI")),
    ("requirepeer", Some("PGREQUIREPEER")),
    ("require_auth", Some("PGREQUIREAUTH")),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("krbsrvname", Some("PGKRBSRVNAME")),
    ("gsslib", Some("PGGSSLIB")),
    ("gssdelegation", Some("PGGSSDELEGATION")),
    ("replication", None),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    ("min_protocol_version", Some("PGMINPROTOCOLVERSION")),
    ("max_protocol_version", Some("PGMAXPROTOCOLVERSION")),
    ("scram_client_key", None),
    ("scram_server_key", None),
    ("oauth_issuer", None),
    ("oauth_client_id", None),
    ("oauth_client_secret", None),
    ("oauth_scope", None),
];

/// The canonical (static) spelling of a known keyword.
fn find_keyword(keyword: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .find(|(k, _)| *k == keyword)
        .map(|(k, _)| *k)
}

/// The environment variable a keyword defaults from, if any.
pub(crate) fn env_var_of(keyword: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .find(|(k, _)| *k == keyword)
        .and_then(|(_, e)| *e)
}

/// A configuration error with libpq's text.
pub(crate) fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// C's `isspace` in the C locale.
pub(crate) fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r')
}

/// A parsed connection string: what the string says, keyword by keyword (`PQconninfoParse`).
///
/// No environment variable and no default is consulted; use [`Config::resolve`] for that. A keyword
/// given twice keeps its last value (at the position of its first occurrence, which is the order
/// [`Display`](fmt::Display) and [`iter`](Config::iter) use).
///
/// `Debug` and `Display` never show the password: its value is replaced by `********`.
///
/// ```
/// use pgdblink::Config;
///
/// let config = Config::parse("host=localhost port=5432 application_name='it\\'s me'").unwrap();
/// assert_eq!(config.get("host"), Some("localhost"));
/// assert_eq!(config.get("application_name"), Some("it's me"));
/// assert_eq!(config.get("dbname"), None);
///
/// let uri = Config::parse("postgresql://alice:secret@db.example.com:6543/sales?sslmode=disable").unwrap();
/// assert_eq!(uri.get("user"), Some("alice"));
/// assert_eq!(uri.get("port"), Some("6543"));
/// assert!(!uri.to_string().contains("secret"));
///
/// let err = Config::parse("dbname").unwrap_err();
/// assert_eq!(err.message(), "missing \"=\" after \"dbname\" in connection info string");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Config {
    values: Vec<(&'static str, String)>,
}

impl Config {
    /// Parses a `key=value` connection string or a `postgresql://` / `postgres://` URI, with libpq's
    /// grammar and error texts. An empty string is valid (every keyword unset).
    ///
    /// ```
    /// let c = pgdblink::Config::parse("postgresql://%2Fsrv%2Fpgsock/db").unwrap();
    /// assert_eq!(c.get("host"), Some("/srv/pgsock"));
    /// assert_eq!(c.get("dbname"), Some("db"));
    /// ```
    pub fn parse(conninfo: &str) -> Result<Config, Error> {
        // libpq sees a C string: a NUL ends it.
        let conninfo = conninfo.split('\0').next().unwrap_or("");
        let mut config = Config::default();
        if let Some(prefix_len) = uri::prefix_length(conninfo) {
            uri::parse_uri(conninfo, prefix_len, &mut config)?;
        } else {
            parse::parse_keyword_value(conninfo, &mut config)?;
        }
        Ok(config)
    }

    /// The value of `keyword` as the string gave it; `Some("")` for an explicitly empty value,
    /// `None` if the string did not mention it.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == keyword)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `keyword` to `value`, as if the connection string had said so (last one wins).
    ///
    /// `requiressl` is translated to `sslmode` as libpq does. An unknown keyword gives
    /// `invalid connection option "x"`; a value containing a NUL character cannot be represented in a
    /// C string and is refused.
    pub fn set(&mut self, keyword: &str, value: &str) -> Result<(), Error> {
        if value.contains('\0') {
            return Err(config_error(format!(
                "invalid value for connection option \"{keyword}\": contains a NUL character"
            )));
        }
        self.store(keyword, value)
    }

    /// Every keyword the string set, with its value, in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// libpq's `conninfo_storeval`: the `requiressl` translation, the keyword check, then last wins.
    pub(crate) fn store(&mut self, keyword: &str, value: &str) -> Result<(), Error> {
        match self.try_store(keyword, value) {
            Some(()) => Ok(()),
            None => Err(config_error(format!(
                "invalid connection option \"{keyword}\""
            ))),
        }
    }

    /// Like [`store`](Config::store), but `None` for an unknown keyword (the URI query parameter
    /// path reports it with its own text).
    pub(crate) fn try_store(&mut self, keyword: &str, value: &str) -> Option<()> {
        let (keyword, value) = if keyword == "requiressl" {
            let mode = if value.starts_with('1') {
                "require"
            } else {
                "prefer"
            };
            ("sslmode", mode)
        } else {
            (keyword, value)
        };
        let keyword = find_keyword(keyword)?;
        if let Some(slot) = self.values.iter_mut().find(|(k, _)| *k == keyword) {
            slot.1 = value.to_owned();
        } else {
            self.values.push((keyword, value.to_owned()));
        }
        Some(())
    }
}

impl FromStr for Config {
    type Err = Error;

    fn from_str(s: &str) -> Result<Config, Error> {
        Config::parse(s)
    }
}

/// Keywords whose values are secrets: never shown by `Display`, `Debug` or error texts.
pub(crate) fn is_secret(keyword: &str) -> bool {
    matches!(
        keyword,
        "password"
            | "sslpassword"
            | "oauth_client_secret"
            | "scram_client_key"
            | "scram_server_key"
    )
}

/// The value as `Display` and `Debug` show it: the password (and other secrets) always masked.
fn shown_value<'a>(keyword: &str, value: &'a str) -> &'a str {
    if is_secret(keyword) {
        "********"
    } else {
        value
    }
}

/// Writes a value so that [`Config::parse`] reads it back unchanged.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let needs_quotes = value.is_empty()
        || value
            .chars()
            .any(|c| is_c_space(c) || c == '\'' || c == '\\');
    if !needs_quotes {
        return f.write_str(value);
    }
    f.write_str("'")?;
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            f.write_str("\\")?;
        }
        fmt::Write::write_char(f, c)?;
    }
    f.write_str("'")
}

impl fmt::Display for Config {
    /// A `key=value` connection string (values quoted as needed), with the password replaced by
    /// `********`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (keyword, value)) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(keyword)?;
            f.write_str("=")?;
            write_quoted(f, shown_value(keyword, value))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Config ")?;
        f.debug_map()
            .entries(self.values.iter().map(|(k, v)| (k, shown_value(k, v))))
            .finish()
    }
}

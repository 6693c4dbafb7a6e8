//! [`StartupConfig`]: what a session is started with, and its builder.

use std::fmt;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::auth::{ChannelBinding, ScramKeyCache, ScramLimits};
use crate::conn::Budgets;
use crate::conninfo::{
    ChannelBindingMode, ConnectParams, ProtocolVersion, SslMode, SslNegotiation, Target,
};
use crate::error::{Error, ErrorKind};
use crate::protocol::Limits;

/// Everything a [`Connection`](crate::conn::Connection) needs to start a session. Built with [`StartupConfig::builder`] or,
/// from a resolved connection string, [`StartupConfig::from_params`].
///
/// There is no default for the SCRAM client nonce: it must be random in real use (the driver draws
/// it from the operating system). The password is wiped from memory when the config is dropped and
/// never shown by `Debug`.
#[non_exhaustive]
#[derive(Clone)]
pub struct StartupConfig {
    pub(super) user: String,
    pub(super) password: Option<Zeroizing<String>>,
    pub(super) params: Vec<(String, String)>,
    pub(super) sslmode: SslMode,
    pub(super) sslnegotiation: SslNegotiation,
    pub(super) over_tcp: bool,
    pub(super) tls_available: bool,
    pub(super) try_tls: bool,
    pub(super) max_protocol: ProtocolVersion,
    pub(super) min_protocol: ProtocolVersion,
    pub(super) channel_binding: ChannelBindingMode,
    pub(super) scram_nonce: String,
    pub(super) scram_limits: ScramLimits,
    pub(super) limits: Limits,
    pub(super) budgets: Budgets,
    pub(super) scram_cache: Option<Arc<Mutex<ScramKeyCache>>>,
}

/// Builds a [`StartupConfig`]: [`StartupConfig::builder`], setters, [`build`](Self::build).
#[must_use]
#[derive(Clone, Debug)]
pub struct StartupConfigBuilder {
    config: StartupConfig,
}

impl StartupConfig {
    /// A builder for a session of `user` on `database`, with `scram_nonce` as the SCRAM client nonce
    /// (printable ASCII without `,`; [`ScramClient::nonce_from_bytes`](crate::auth::ScramClient::nonce_from_bytes) makes one from 18 random
    /// bytes). Defaults: startup parameters `user`, `database` and `client_encoding=UTF8`; no
    /// password; `sslmode=prefer`, `sslnegotiation=postgres`, over TCP, TLS not available (so no
    /// SSLRequest) and TLS tried when available; protocol 3.0 (at least 3.0);
    /// `channel_binding=prefer`; default SCRAM and decoder limits; no SCRAM key cache.
    pub fn builder(
        user: &str,
        database: &str,
        scram_nonce: impl Into<String>,
    ) -> StartupConfigBuilder {
        StartupConfigBuilder {
            config: StartupConfig {
                user: user.to_owned(),
                password: None,
                params: vec![
                    ("user".to_owned(), user.to_owned()),
                    ("database".to_owned(), database.to_owned()),
                    ("client_encoding".to_owned(), "UTF8".to_owned()),
                ],
                sslmode: SslMode::Prefer,
                sslnegotiation: SslNegotiation::Postgres,
                over_tcp: true,
                tls_available: false,
                try_tls: true,
                max_protocol: ProtocolVersion::V3_0,
                min_protocol: ProtocolVersion::V3_0,
                channel_binding: ChannelBindingMode::Prefer,
                scram_nonce: scram_nonce.into(),
                scram_limits: ScramLimits::default(),
                limits: Limits::default(),
                budgets: Budgets::default(),
                scram_cache: None,
            },
        }
    }

    /// The startup for `target` of a resolved connection string: its user, database, startup
    /// parameters (`options`, `application_name`, `client_encoding`, ...), the password for that
    /// target (the connection string's or `PGPASSWORD`, else `.pgpass`'s), `sslmode`,
    /// `sslnegotiation`, protocol versions and `channel_binding`. Whether the transport can run TLS
    /// and whether this attempt tries it are the driver's to set afterwards
    /// ([`StartupConfigBuilder::tls_available`], [`StartupConfigBuilder::try_tls`], through
    /// [`StartupConfig::to_builder`]). `over_tcp` says whether the transport is TCP (sslmode does
    /// not apply to Unix sockets). The caller draws `scram_nonce` at random and may attach a SCRAM
    /// key cache ([`with_scram_cache`](Self::with_scram_cache)).
    ///
    /// Errors (kind [`ErrorKind::Config`]) for a startup parameter or nonce the protocol cannot
    /// carry: a NUL byte in a parameter, a nonce that is not printable ASCII or holds a `,`.
    pub fn from_params(
        params: &ConnectParams,
        target: &Target,
        over_tcp: bool,
        scram_nonce: String,
    ) -> Result<StartupConfig, Error> {
        let config_error = |text: String| Error::new(ErrorKind::Config, text);
        if scram_nonce.is_empty()
            || !scram_nonce
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b',')
        {
            return Err(config_error(
                "invalid SCRAM nonce: printable ASCII without \",\" expected".into(),
            ));
        }
        let startup_params = params.startup_params();
        if let Some((name, _)) = startup_params
            .iter()
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(config_error(format!(
                "invalid startup parameter \"{}\": NUL byte",
                name.replace('\0', "\\0")
            )));
        }
        let mut builder = StartupConfig::builder(&params.user, &params.dbname, scram_nonce)
            .params(startup_params)
            .sslmode(params.sslmode)
            .sslnegotiation(params.sslnegotiation)
            .over_tcp(over_tcp)
            .max_protocol_version(params.max_protocol_version)
            .min_protocol_version(params.min_protocol_version)
            .channel_binding(params.channel_binding);
        if let Some(password) = params.password_for(target) {
            builder = builder.password(password);
        }
        Ok(builder.build())
    }

    /// A builder holding this config, to change some of its settings (say
    /// [`tls_available`](StartupConfigBuilder::tls_available) and
    /// [`try_tls`](StartupConfigBuilder::try_tls) after [`from_params`](Self::from_params)).
    pub fn to_builder(self) -> StartupConfigBuilder {
        StartupConfigBuilder { config: self }
    }

    /// The same config with [`tls_available`](StartupConfigBuilder::tls_available) set.
    pub fn with_tls_available(mut self, tls_available: bool) -> StartupConfig {
        self.tls_available = tls_available;
        self
    }

    /// The same config with [`try_tls`](StartupConfigBuilder::try_tls) set.
    pub fn with_try_tls(mut self, try_tls: bool) -> StartupConfig {
        self.try_tls = try_tls;
        self
    }

    /// The same config with a cache of SCRAM keys shared between connections: a reconnect to the same
    /// server with the same password skips PBKDF2. The keys are as secret as the password.
    pub fn with_scram_cache(mut self, cache: Arc<Mutex<ScramKeyCache>>) -> StartupConfig {
        self.scram_cache = Some(cache);
        self
    }

    /// The password's storage (wiped on drop), for the tests.
    #[cfg(test)]
    pub(in crate::conn) fn password_storage(&self) -> Option<&Zeroizing<String>> {
        self.password.as_ref()
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether a password is set.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The startup parameters, in the order they are sent.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// `sslmode`.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// `sslnegotiation`.
    pub fn sslnegotiation(&self) -> SslNegotiation {
        self.sslnegotiation
    }

    /// Whether the transport is TCP.
    pub fn over_tcp(&self) -> bool {
        self.over_tcp
    }

    /// Whether the transport can run a TLS handshake.
    pub fn tls_available(&self) -> bool {
        self.tls_available
    }

    /// Whether this attempt negotiates TLS at all (the driver's sslmode fallbacks set it).
    pub fn try_tls(&self) -> bool {
        self.try_tls
    }

    /// The protocol version requested.
    pub fn max_protocol_version(&self) -> ProtocolVersion {
        self.max_protocol
    }

    /// The lowest protocol version accepted after negotiation.
    pub fn min_protocol_version(&self) -> ProtocolVersion {
        self.min_protocol
    }

    /// `channel_binding`.
    pub fn channel_binding(&self) -> ChannelBindingMode {
        self.channel_binding
    }

    /// The decoder limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The budgets: how many bytes the server can make the connection store, queue by queue.
    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    /// The same config with these [`Budgets`].
    pub fn with_budgets(mut self, budgets: Budgets) -> StartupConfig {
        self.budgets = budgets;
        self
    }

    /// Whether this attempt negotiates TLS: only over TCP (sslmode does not apply to Unix sockets,
    /// as in libpq), only when [`try_tls`](StartupConfigBuilder::try_tls) is set, never for
    /// `sslmode=disable`; for `allow` and `prefer` only where the transport can run TLS
    /// ([`tls_available`](StartupConfigBuilder::tls_available)); always for `require`, `verify-ca`
    /// and `verify-full` (which fail at the server's `S` when TLS is not available).
    fn negotiates_tls(&self) -> bool {
        self.over_tcp
            && self.try_tls
            && match self.sslmode {
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => true,
                SslMode::Prefer | SslMode::Allow => self.tls_available,
                SslMode::Disable => false,
            }
    }

    /// Whether the session starts with an SSLRequest: it negotiates TLS (see
    /// [`StartupConfigBuilder::try_tls`]) with `sslnegotiation=postgres`.
    pub fn sends_ssl_request(&self) -> bool {
        self.negotiates_tls() && self.sslnegotiation == SslNegotiation::Postgres
    }

    /// Whether the session starts with the TLS handshake itself, without an SSLRequest: it
    /// negotiates TLS with `sslnegotiation=direct` (the driver offers ALPN `postgresql`).
    pub fn starts_with_tls(&self) -> bool {
        self.negotiates_tls() && self.sslnegotiation == SslNegotiation::Direct
    }

    pub(super) fn ssl_required(&self) -> bool {
        matches!(
            self.sslmode,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    pub(super) fn auth_channel_binding(&self) -> ChannelBinding {
        match self.channel_binding {
            ChannelBindingMode::Disable => ChannelBinding::Disable,
            ChannelBindingMode::Require => ChannelBinding::Require,
            _ => ChannelBinding::Prefer,
        }
    }
}

impl fmt::Debug for StartupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartupConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("params", &self.params)
            .field("sslmode", &self.sslmode)
            .field("sslnegotiation", &self.sslnegotiation)
            .field("over_tcp", &self.over_tcp)
            .field("tls_available", &self.tls_available)
            .field("try_tls", &self.try_tls)
            .field("max_protocol", &self.max_protocol)
            .field("min_protocol", &self.min_protocol)
            .field("channel_binding", &self.channel_binding)
            .finish_non_exhaustive()
    }
}

impl StartupConfigBuilder {
    /// The password (kept until authentication ends, wiped when dropped).
    pub fn password(mut self, password: &str) -> StartupConfigBuilder {
        self.config.password = Some(Zeroizing::new(password.to_owned()));
        self
    }

    /// Replaces the startup parameters with `params`, in order. Include `user` and `database`.
    pub fn params<K: Into<String>, V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> StartupConfigBuilder {
        self.config.params = params
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// `sslmode` (default `prefer`).
    pub fn sslmode(mut self, sslmode: SslMode) -> StartupConfigBuilder {
        self.config.sslmode = sslmode;
        self
    }

    /// Whether the transport is TCP (default `true`); sslmode does not apply to Unix sockets.
    pub fn over_tcp(mut self, over_tcp: bool) -> StartupConfigBuilder {
        self.config.over_tcp = over_tcp;
        self
    }

    /// `sslnegotiation` (default `postgres`): `direct` starts with the TLS handshake instead of an
    /// SSLRequest ([`Connection::tls_wanted`](crate::conn::Connection::tls_wanted) at once).
    pub fn sslnegotiation(mut self, negotiation: SslNegotiation) -> StartupConfigBuilder {
        self.config.sslnegotiation = negotiation;
        self
    }

    /// Whether the transport can run a TLS handshake (default `false`). With it, `sslmode=prefer`
    /// and `allow` also negotiate TLS, and an `S` answer makes the session wait for the handshake
    /// ([`Connection::tls_wanted`](crate::conn::Connection::tls_wanted)); without it an `S` fails
    /// with "SSL is not supported by this client".
    pub fn tls_available(mut self, tls_available: bool) -> StartupConfigBuilder {
        self.config.tls_available = tls_available;
        self
    }

    /// Whether this attempt negotiates TLS at all (default `true`). libpq's fallbacks open a second
    /// connection with the other value: `sslmode=allow` tries `false` first, `prefer` `true` first
    /// (after a failed handshake or a server error over TLS, `false`).
    pub fn try_tls(mut self, try_tls: bool) -> StartupConfigBuilder {
        self.config.try_tls = try_tls;
        self
    }

    /// The protocol version to request (default 3.0).
    pub fn max_protocol_version(mut self, version: ProtocolVersion) -> StartupConfigBuilder {
        self.config.max_protocol = version;
        self
    }

    /// The lowest protocol version to accept after negotiation (default 3.0).
    pub fn min_protocol_version(mut self, version: ProtocolVersion) -> StartupConfigBuilder {
        self.config.min_protocol = version;
        self
    }

    /// `channel_binding` (default `prefer`).
    pub fn channel_binding(mut self, mode: ChannelBindingMode) -> StartupConfigBuilder {
        self.config.channel_binding = mode;
        self
    }

    /// Limits on what a server may ask of SCRAM.
    pub fn scram_limits(mut self, limits: ScramLimits) -> StartupConfigBuilder {
        self.config.scram_limits = limits;
        self
    }

    /// Decoder limits.
    pub fn limits(mut self, limits: Limits) -> StartupConfigBuilder {
        self.config.limits = limits;
        self
    }

    /// The [`Budgets`]: how many bytes the server can make the connection store, queue by queue, and
    /// what happens at each limit (default [`Budgets::default`]).
    pub fn budgets(mut self, budgets: Budgets) -> StartupConfigBuilder {
        self.config.budgets = budgets;
        self
    }

    /// A SCRAM key cache shared between connections (see [`StartupConfig::with_scram_cache`]).
    pub fn scram_cache(mut self, cache: Arc<Mutex<ScramKeyCache>>) -> StartupConfigBuilder {
        self.config.scram_cache = Some(cache);
        self
    }

    /// The config.
    pub fn build(self) -> StartupConfig {
        self.config
    }
}

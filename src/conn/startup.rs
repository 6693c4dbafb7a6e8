//! Starting a session: the SSLRequest and its answer, the StartupMessage, protocol negotiation,
//! authentication (cleartext, MD5, SCRAM-SHA-256), and BackendKeyData/ParameterStatus until the
//! first ReadyForQuery.
//!
//! Everything only this phase reads (the [`StartupConfig`] with its password, the SCRAM exchange)
//! lives in one boxed [`Startup`] that the connection drops at ReadyForQuery or failure; the password
//! is wiped when it is dropped.

use std::fmt;
use std::sync::{Arc, Mutex};

use zeroize::{Zeroize, Zeroizing};

use super::{Connection, Phase, error_from_fields};
use crate::auth::{self, ChannelBinding, ScramClient, ScramKeyCache, ScramLimits};
use crate::conninfo::{ChannelBindingMode, ConnectParams, ProtocolVersion, SslMode, Target};
use crate::error::{Error, ErrorKind};
use crate::protocol::backend::{Authentication, BackendMessage};
use crate::protocol::{self, Limits, frontend};

/// Everything a [`Connection`] needs to start a session. Built with [`StartupConfig::builder`] or,
/// from a resolved connection string, [`StartupConfig::from_params`].
///
/// There is no default for the SCRAM client nonce: it must be random in real use (the driver draws
/// it from the operating system). The password is wiped from memory when the config is dropped and
/// never shown by `Debug`.
#[non_exhaustive]
#[derive(Clone)]
pub struct StartupConfig {
    user: String,
    password: Option<Zeroizing<String>>,
    params: Vec<(String, String)>,
    sslmode: SslMode,
    over_tcp: bool,
    tls_available: bool,
    max_protocol: ProtocolVersion,
    min_protocol: ProtocolVersion,
    channel_binding: ChannelBindingMode,
    scram_nonce: String,
    scram_limits: ScramLimits,
    limits: Limits,
    scram_cache: Option<Arc<Mutex<ScramKeyCache>>>,
}

/// Builds a [`StartupConfig`]: [`StartupConfig::builder`], setters, [`build`](Self::build).
#[derive(Clone, Debug)]
pub struct StartupConfigBuilder {
    config: StartupConfig,
}

impl StartupConfig {
    /// A builder for a session of `user` on `database`, with `scram_nonce` as the SCRAM client nonce
    /// (printable ASCII without `,`; [`ScramClient::nonce_from_bytes`] makes one from 18 random
    /// bytes). Defaults: startup parameters `user`, `database` and `client_encoding=UTF8`; no
    /// password; `sslmode=prefer` over TCP without TLS (so no SSLRequest); protocol 3.0 (at least
    /// 3.0); `channel_binding=prefer`; default SCRAM and decoder limits; no SCRAM key cache.
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
                over_tcp: true,
                tls_available: false,
                max_protocol: ProtocolVersion::V3_0,
                min_protocol: ProtocolVersion::V3_0,
                channel_binding: ChannelBindingMode::Prefer,
                scram_nonce: scram_nonce.into(),
                scram_limits: ScramLimits::default(),
                limits: Limits::default(),
                scram_cache: None,
            },
        }
    }

    /// The startup for `target` of a resolved connection string: its user, database, startup
    /// parameters (`options`, `application_name`, `client_encoding`, ...), the password for that
    /// target (the connection string's or `PGPASSWORD`, else `.pgpass`'s), `sslmode`, protocol
    /// versions and `channel_binding`. `over_tcp` says whether the transport is TCP (sslmode does
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
            .over_tcp(over_tcp)
            .max_protocol_version(params.max_protocol_version)
            .min_protocol_version(params.min_protocol_version)
            .channel_binding(params.channel_binding);
        if let Some(password) = params.password_for(target) {
            builder = builder.password(password);
        }
        Ok(builder.build())
    }

    /// The same config with a cache of SCRAM keys shared between connections: a reconnect to the same
    /// server with the same password skips PBKDF2. The keys are as secret as the password.
    pub fn with_scram_cache(mut self, cache: Arc<Mutex<ScramKeyCache>>) -> StartupConfig {
        self.scram_cache = Some(cache);
        self
    }

    /// The password's storage (wiped on drop), for the tests.
    #[cfg(test)]
    pub(super) fn password_storage(&self) -> Option<&Zeroizing<String>> {
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

    /// Whether the transport is TCP.
    pub fn over_tcp(&self) -> bool {
        self.over_tcp
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

    /// Whether the session starts with an SSLRequest: only over TCP (sslmode does not apply to Unix
    /// sockets), for `require`, `verify-ca` and `verify-full` (which fail at either answer, since
    /// pgdblink cannot run the TLS handshake yet), and for `prefer` only where the transport says TLS
    /// is available ([`StartupConfigBuilder::tls_available`]).
    pub fn sends_ssl_request(&self) -> bool {
        self.over_tcp
            && match self.sslmode {
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => true,
                SslMode::Prefer => self.tls_available,
                SslMode::Disable | SslMode::Allow => false,
            }
    }

    fn ssl_required(&self) -> bool {
        matches!(
            self.sslmode,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    fn auth_channel_binding(&self) -> ChannelBinding {
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
            .field("over_tcp", &self.over_tcp)
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

    /// Whether the transport can take a TLS handshake (default `false`). With it, `sslmode=prefer`
    /// also sends an SSLRequest and accepts a plaintext `N`. The handshake itself is not implemented
    /// yet: an `S` answer fails with "not supported".
    pub fn tls_available(mut self, tls_available: bool) -> StartupConfigBuilder {
        self.config.tls_available = tls_available;
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

/// Where the startup stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for the one-byte answer to SSLRequest.
    SslResponse,
    /// StartupMessage sent; expecting `R`, `E` or `v`.
    AwaitingAuth,
    /// In a SASL exchange.
    Sasl,
    /// Authenticated; collecting ParameterStatus/BackendKeyData until ReadyForQuery.
    AwaitingReady,
}

/// The state only startup needs, boxed in [`Phase::Startup`] and dropped (the password wiped) when
/// the session is ready or fails.
pub(super) struct Startup {
    config: StartupConfig,
    step: Step,
    scram: Option<ScramClient>,
    sasl_done: bool,
    /// The StartupMessage queued after an `N` answer to SSLRequest has not been sent yet: any byte
    /// from the server now was not asked for (CVE-2021-23222).
    unsent_after_ssl: bool,
}

impl fmt::Debug for Startup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Startup")
            .field("user", &self.config.user)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl Startup {
    pub(super) fn new(config: StartupConfig) -> Startup {
        Startup {
            config,
            step: Step::AwaitingAuth,
            scram: None,
            sasl_done: false,
            unsent_after_ssl: false,
        }
    }

    /// Whether the password or a SCRAM exchange is still held.
    #[cfg(test)]
    pub(super) fn has_secrets(&self) -> bool {
        self.config.password.is_some() || self.scram.is_some()
    }

    /// All of the output was sent.
    pub(super) fn output_sent(&mut self) {
        self.unsent_after_ssl = false;
    }
}

/// The minor version of a protocol version.
fn minor(version: ProtocolVersion) -> u32 {
    (version.code() & 0xffff) as u32
}

impl Connection {
    /// The startup state, while starting.
    fn startup(&mut self) -> Option<&mut Startup> {
        match &mut self.phase {
            Phase::Startup(startup) => Some(startup),
            _ => None,
        }
    }

    /// Queues what the client says first: an SSLRequest or the StartupMessage.
    pub(super) fn begin_startup(&mut self) {
        let Phase::Startup(startup) = &mut self.phase else {
            return;
        };
        if startup.config.sends_ssl_request() {
            frontend::ssl_request(&mut self.send);
            startup.step = Step::SslResponse;
        } else {
            self.queue_startup();
        }
    }

    fn queue_startup(&mut self) {
        let Phase::Startup(startup) = &mut self.phase else {
            return;
        };
        let config = &startup.config;
        let params = config.params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let version = config.max_protocol.code() as u32;
        match frontend::startup_message(version, params, &mut self.send) {
            Ok(()) => startup.step = Step::AwaitingAuth,
            Err(e) => self.fail(Error::new(
                ErrorKind::Config,
                format!("invalid startup parameter: {e}"),
            )),
        }
    }

    /// Input the startup takes before messages can be decoded: the one-byte answer to SSLRequest,
    /// and the refusal of bytes before the StartupMessage was sent. Returns the bytes it consumed, or
    /// `None` when the input is a message.
    pub(super) fn raw_startup_input(&mut self, first: u8) -> Option<usize> {
        let startup = self.startup()?;
        if startup.step == Step::SslResponse {
            self.handle_ssl_response(first);
            return Some(1);
        }
        if startup.unsent_after_ssl {
            self.fail(
                Error::new(
                    ErrorKind::Protocol,
                    "received unencrypted data after SSL response",
                )
                .with_code(crate::sqlstate::PROTOCOL_VIOLATION),
            );
            return Some(0);
        }
        None
    }

    /// Whether the connection waits for the answer to SSLRequest (a Terminate there would be a
    /// malformed packet).
    pub(super) fn awaits_ssl_response(&self) -> bool {
        matches!(&self.phase, Phase::Startup(s) if s.step == Step::SslResponse)
    }

    fn handle_ssl_response(&mut self, byte: u8) {
        let required = self.startup().is_some_and(|s| s.config.ssl_required());
        let unable = crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION;
        match byte {
            b'N' if !required => {
                self.queue_startup();
                if let Some(startup) = self.startup() {
                    startup.unsent_after_ssl = true;
                }
            }
            b'N' | b'E' => self.fail(
                Error::new(
                    ErrorKind::Connect,
                    "server does not support SSL, but SSL was required",
                )
                .with_code(unable),
            ),
            b'S' => self.fail(
                Error::new(
                    ErrorKind::Unsupported,
                    "SSL is not supported by this client (pgdblink has no TLS)",
                )
                .with_code(unable),
            ),
            other => self.fail(
                Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "received invalid response to SSL negotiation: {}",
                        protocol::printable(other)
                    ),
                )
                .with_code(crate::sqlstate::PROTOCOL_VIOLATION),
            ),
        }
    }

    /// A message during startup (after the generic ones: notices, notifications, parameters).
    pub(super) fn handle_startup_message(&mut self, msg: BackendMessage<'_>) {
        let Some(startup) = self.startup() else {
            return;
        };
        match startup.step {
            Step::AwaitingAuth | Step::Sasl => self.handle_auth_message(msg),
            Step::AwaitingReady => self.handle_ready_message(msg),
            Step::SslResponse => {}
        }
    }

    fn handle_auth_message(&mut self, msg: BackendMessage<'_>) {
        let outcome = match msg {
            BackendMessage::Authentication(auth) => self.handle_authentication(auth),
            BackendMessage::ErrorResponse(fields) => Err(error_from_fields(fields)),
            BackendMessage::NegotiateProtocolVersion { newest_minor, .. } => {
                self.negotiate(newest_minor)
            }
            other => Err(violation(format!(
                "expected authentication request from server, but received {}",
                protocol::printable(other.tag())
            ))),
        };
        if let Err(e) = outcome {
            self.fail(e);
        }
    }

    /// NegotiateProtocolVersion: the server offers an older minor version.
    fn negotiate(&mut self, newest_minor: u32) -> Result<(), Error> {
        let Some(startup) = self.startup() else {
            return Ok(());
        };
        if startup.step == Step::Sasl {
            return Err(violation(
                "received NegotiateProtocolVersion during authentication".into(),
            ));
        }
        let (requested, min) = (
            minor(startup.config.max_protocol),
            minor(startup.config.min_protocol),
        );
        // PostgreSQL sends the whole version number (3 << 16 | minor); keep the minor.
        let newest_minor = if newest_minor > 0xffff {
            if newest_minor >> 16 != 3 {
                return Err(violation(format!(
                    "received invalid protocol negotiation message: major version {}",
                    newest_minor >> 16
                )));
            }
            newest_minor & 0xffff
        } else {
            newest_minor
        };
        if newest_minor >= requested {
            return Err(violation(format!(
                "received invalid protocol negotiation message: server requested downgrade to a higher-numbered version ({newest_minor})"
            )));
        }
        if newest_minor < min {
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "server only supports protocol version 3.{newest_minor}, but min_protocol_version was set to 3.{min}"
                ),
            )
            .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION));
        }
        self.protocol_minor = newest_minor;
        Ok(())
    }

    fn handle_authentication(&mut self, auth: Authentication<'_>) -> Result<(), Error> {
        let Phase::Startup(startup) = &mut self.phase else {
            return Ok(());
        };
        let needs_binding = startup.config.channel_binding == ChannelBindingMode::Require;
        // Once a SASL exchange has begun, only its continuation, its outcome and AuthenticationOk may
        // follow: a server that switches to another method now (say, cleartext) is trying to downgrade
        // the exchange, and must not get the password.
        if startup.step == Step::Sasl
            && !matches!(
                auth,
                Authentication::SaslContinue(_) | Authentication::SaslFinal(_) | Authentication::Ok
            )
        {
            return Err(violation(
                "unexpected authentication request during SASL exchange".into(),
            ));
        }
        let send = &mut self.send;
        let to_auth_error = |e: protocol::EncodeError| Error::new(ErrorKind::Auth, e.to_string());
        match auth {
            Authentication::Ok => {
                if startup.step == Step::Sasl && !startup.sasl_done {
                    return Err(Error::new(
                        ErrorKind::Auth,
                        "server sent AuthenticationOk before SASL authentication was completed",
                    ));
                }
                if needs_binding {
                    return Err(Error::new(
                        ErrorKind::Auth,
                        "channel binding required, but server authenticated client without channel binding",
                    ));
                }
                startup.step = Step::AwaitingReady;
                // Authentication is over: the password and the SCRAM state are not needed again.
                startup.config.password = None;
                startup.scram = None;
                Ok(())
            }
            Authentication::CleartextPassword | Authentication::Md5Password { .. }
                if needs_binding =>
            {
                Err(Error::new(
                    ErrorKind::Auth,
                    "channel binding required but not supported by server's authentication request",
                ))
            }
            Authentication::CleartextPassword => {
                let password = password(&startup.config)?;
                frontend::password_message(password.as_bytes(), send).map_err(to_auth_error)
            }
            Authentication::Md5Password { salt } => {
                let password = password(&startup.config)?;
                let hashed = Zeroizing::new(auth::md5_password(
                    startup.config.user.as_bytes(),
                    password.as_bytes(),
                    salt,
                ));
                frontend::password_message(hashed.as_bytes(), send).map_err(to_auth_error)
            }
            Authentication::Sasl(mechanisms) => {
                if startup.step != Step::AwaitingAuth {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "unexpected AuthenticationSASL during SASL exchange",
                    ));
                }
                let config = &startup.config;
                let mechanism = auth::choose_sasl_mechanism(
                    mechanisms.iter(),
                    config.auth_channel_binding(),
                    false,
                )?;
                let password = password(config)?;
                let scram = ScramClient::new(
                    password.as_bytes(),
                    &config.scram_nonce,
                    config.scram_limits,
                );
                let first = scram.client_first_message();
                frontend::sasl_initial_response(mechanism, Some(&first), send)
                    .map_err(to_auth_error)?;
                startup.scram = Some(scram);
                startup.step = Step::Sasl;
                Ok(())
            }
            Authentication::SaslContinue(data) => {
                let scram = sasl_client(
                    startup.step,
                    &mut startup.scram,
                    "AuthenticationSASLContinue received from server, but SASL authentication was not started",
                )?;
                let reply = match &startup.config.scram_cache {
                    Some(cache) => {
                        // A poisoned lock only means another thread panicked mid-update; the cache
                        // holds whole entries, so it is still usable.
                        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                        scram.handle_server_first_cached(data, &mut cache)?
                    }
                    None => scram.handle_server_first(data)?,
                };
                frontend::sasl_response(&reply, send).map_err(to_auth_error)
            }
            Authentication::SaslFinal(data) => {
                let scram = sasl_client(
                    startup.step,
                    &mut startup.scram,
                    "AuthenticationSASLFinal received from server, but SASL authentication was not completed",
                )?;
                scram.handle_server_final(data)?;
                startup.sasl_done = true;
                Ok(())
            }
            other => Err(unsupported_method(&other)),
        }
    }

    fn handle_ready_message(&mut self, msg: BackendMessage<'_>) {
        match msg {
            BackendMessage::BackendKeyData { pid, key } => {
                if self.protocol_minor < 2 && key.len() != 4 {
                    return self.protocol_violation(format!(
                        "received invalid BackendKeyData message: key of {} bytes in protocol 3.0",
                        key.len()
                    ));
                }
                self.backend_key = Some((pid, key.to_vec()));
            }
            BackendMessage::ReadyForQuery(status) => {
                self.tx_status = status;
                // Dropping the startup state wipes the password.
                self.phase = Phase::Ready;
                self.error_buffer.clear();
            }
            BackendMessage::ErrorResponse(fields) => {
                let e = error_from_fields(fields);
                self.fail(e);
            }
            other => self.protocol_violation(format!(
                "unexpected message from server during startup: \"{}\"",
                protocol::printable(other.tag())
            )),
        }
    }
}

fn violation(text: String) -> Error {
    Error::new(ErrorKind::Protocol, text).with_code(crate::sqlstate::PROTOCOL_VIOLATION)
}

fn password(config: &StartupConfig) -> Result<&str, Error> {
    match config.password.as_deref() {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(
            Error::new(ErrorKind::Auth, "fe_sendauth: no password supplied")
                .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
        ),
    }
}

/// The SCRAM exchange in progress, or a protocol error with `text` when none is.
fn sasl_client<'a>(
    step: Step,
    scram: &'a mut Option<ScramClient>,
    text: &str,
) -> Result<&'a mut ScramClient, Error> {
    match (step, scram.as_mut()) {
        (Step::Sasl, Some(scram)) => Ok(scram),
        _ => Err(Error::new(ErrorKind::Protocol, text)),
    }
}

/// libpq's texts for the methods pgdblink does not implement.
fn unsupported_method(auth: &Authentication<'_>) -> Error {
    let text = match auth {
        Authentication::KerberosV5 => "Kerberos 5 authentication not supported".into(),
        Authentication::Gss | Authentication::GssContinue(_) => {
            "GSSAPI authentication not supported".into()
        }
        Authentication::Sspi => "SSPI authentication not supported".into(),
        Authentication::Other { code: 1, .. } => "Kerberos 4 authentication not supported".into(),
        Authentication::Other { code: 4, .. } => "Crypt authentication not supported".into(),
        Authentication::Other { code, .. } => format!("authentication method {code} not supported"),
        _ => "authentication method not supported".into(),
    };
    Error::new(ErrorKind::Unsupported, text)
        .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
}

/// Wipes a buffer that held secrets (the send buffer during authentication) and empties it.
pub(super) fn wipe(buf: &mut Vec<u8>) {
    buf.zeroize();
}

//! Starting a session: the SSLRequest and its answer (or a direct TLS start), the wait for the
//! driver's TLS handshake, the StartupMessage, protocol negotiation, authentication (cleartext, MD5,
//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS), and BackendKeyData/ParameterStatus until the first
//! ReadyForQuery.
//!
//! Everything only this phase reads (the [`StartupConfig`] with its password, the SCRAM exchange)
//! lives in one boxed [`Startup`] that the connection drops at ReadyForQuery or failure; the password
//! is wiped when it is dropped.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

mod config;

pub use config::{StartupConfig, StartupConfigBuilder};

use super::{Connection, Phase, TlsNegotiation, error_from_fields};
use crate::auth::{self, ScramClient};
use crate::conninfo::{ChannelBindingMode, SslNegotiation};
use crate::error::{Error, ErrorKind};
use crate::protocol::backend::{Authentication, BackendMessage, StringList};
use crate::protocol::{self, frontend};

/// Where the startup stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for the one-byte answer to SSLRequest.
    SslResponse,
    /// Waiting for the driver to run the TLS handshake (after `S`, or at once when direct).
    TlsHandshake,
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
    /// A NegotiateProtocolVersion was received (a second one is refused).
    negotiated: bool,
    /// The StartupMessage queued after an `N` answer to SSLRequest has not been sent yet: any byte
    /// from the server now was not asked for (CVE-2021-23222).
    unsent_after_ssl: bool,
    /// TLS is established: SCRAM may bind to it.
    tls: bool,
    /// The `tls-server-end-point` channel-binding data of the TLS connection, if it has any.
    end_point: Option<Vec<u8>>,
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
            negotiated: false,
            unsent_after_ssl: false,
            tls: false,
            end_point: None,
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

impl Connection {
    /// The startup state, while starting.
    fn startup(&mut self) -> Option<&mut Startup> {
        match &mut self.phase {
            Phase::Startup(startup) => Some(startup),
            _ => None,
        }
    }

    /// Queues what the client says first: an SSLRequest or the StartupMessage; or, with
    /// `sslnegotiation=direct`, nothing: the TLS handshake comes first.
    pub(super) fn begin_startup(&mut self) {
        let Phase::Startup(startup) = &mut self.phase else {
            return;
        };
        // libpq prints these on stderr; here they are the connection's first notices.
        let warnings = std::mem::take(&mut startup.config.warnings);
        for warning in warnings {
            self.push_notice(Error::new(ErrorKind::Config, warning).with_severity("WARNING"));
        }
        let Phase::Startup(startup) = &mut self.phase else {
            return;
        };
        if startup.config.starts_with_tls() {
            if startup.config.tls_available {
                startup.step = Step::TlsHandshake;
                self.tls = TlsNegotiation::Handshaking;
            } else {
                self.fail(tls_unsupported());
            }
        } else if startup.config.sends_ssl_request() {
            frontend::ssl_request(&mut self.send);
            startup.step = Step::SslResponse;
        } else {
            self.queue_startup();
        }
    }

    /// Whether the session waits for the driver to run the TLS handshake.
    pub(super) fn awaits_tls_handshake(&self) -> bool {
        matches!(&self.phase, Phase::Startup(s) if s.step == Step::TlsHandshake)
    }

    /// The TLS handshake finished: the StartupMessage is queued (for the TLS transport to encrypt).
    pub(super) fn tls_established(&mut self, end_point: Option<Vec<u8>>) {
        if !self.awaits_tls_handshake() {
            return;
        }
        self.tls = TlsNegotiation::Established;
        if let Some(startup) = self.startup() {
            startup.tls = true;
            startup.end_point = end_point;
        }
        self.queue_startup();
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
    /// the refusal of bytes before the StartupMessage was sent, and libpq's checks of what may
    /// arrive while authenticating. `input` is the unconsumed input (never empty). Returns the bytes
    /// it consumed (0 when it failed the connection or needs more input), or `None` when the input
    /// is a message to decode.
    pub(super) fn raw_startup_input(&mut self, input: &[u8]) -> Option<usize> {
        let first = *input.first()?;
        let startup = self.startup()?;
        if startup.step == Step::SslResponse {
            self.handle_ssl_response(first);
            return Some(1);
        }
        if startup.step == Step::TlsHandshake {
            // The server sends nothing more before the client's TLS hello: bytes buffered after the
            // `S` were injected (CVE-2021-23222) and must not reach the TLS library.
            let text = if startup.config.sslnegotiation == SslNegotiation::Direct {
                "received unencrypted data before SSL handshake"
            } else {
                "received unencrypted data after SSL response"
            };
            self.tls = TlsNegotiation::Refused;
            self.fail(
                Error::new(ErrorKind::Protocol, text)
                    .with_code(crate::sqlstate::PROTOCOL_VIOLATION),
            );
            return Some(0);
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
        if matches!(startup.step, Step::AwaitingAuth | Step::Sasl) {
            return self.check_auth_frame(input);
        }
        None
    }

    /// libpq's checks of a message before authentication is over, made on its type and length
    /// before it is decoded (fe-connect.c, `CONNECTION_AWAITING_RESPONSE`): only an authentication
    /// request, an error, NegotiateProtocolVersion, or a notice may come (anything else means the
    /// peer is not PostgreSQL: an HTTP server answers `H`); an authentication request or a
    /// negotiation is at most 2000 bytes; an error of an implausible length is an error of the
    /// protocol before 3.0, a NUL-terminated text.
    fn check_auth_frame(&mut self, input: &[u8]) -> Option<usize> {
        let tag = input[0];
        if !matches!(tag, b'R' | b'E' | b'v' | b'N') {
            self.fail(violation(format!(
                "expected authentication request from server, but received {}",
                protocol::printable(tag)
            )));
            return Some(0);
        }
        let Some(&[a, b, c, d]) = input.get(1..5) else {
            return Some(0);
        };
        let len = i32::from_be_bytes([a, b, c, d]);
        let text = match tag {
            b'R' if !(8..=2000).contains(&len) => "received invalid authentication request",
            b'v' if !(8..=2000).contains(&len) => "received invalid protocol negotiation message",
            b'E' if !(8..=30000).contains(&len) => return self.pre_v3_error(input),
            _ => return None,
        };
        self.fail(violation(text.into()));
        Some(0)
    }

    /// An error in the protocol before 3.0 (PostgreSQL before 14 still used it for failures before
    /// the startup packet was read): `E` and a NUL-terminated text, at most 30000 bytes.
    fn pre_v3_error(&mut self, input: &[u8]) -> Option<usize> {
        let Some(nul) = input[1..].iter().position(|&b| b == 0) else {
            if input.len() - 1 > 30000 {
                self.fail(violation("received invalid error message".into()));
            }
            return Some(0);
        };
        let text = String::from_utf8_lossy(&input[1..1 + nul]);
        let text = text.strip_suffix('\n').unwrap_or(&text).to_owned();
        self.fail(
            Error::new(ErrorKind::Connect, text)
                .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
        );
        Some(0)
    }

    /// Whether the connection waits for the answer to SSLRequest or for the TLS handshake (a
    /// Terminate there would be a malformed packet, or plaintext where TLS is expected).
    pub(super) fn awaits_ssl_response(&self) -> bool {
        matches!(&self.phase, Phase::Startup(s) if matches!(s.step, Step::SslResponse | Step::TlsHandshake))
    }

    fn handle_ssl_response(&mut self, byte: u8) {
        let Some(startup) = self.startup() else {
            return;
        };
        let (required, tls_available) =
            (startup.config.ssl_required(), startup.config.tls_available);
        let unable = crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION;
        // Whatever the answer, only `S` leads to TLS on this socket.
        self.tls = TlsNegotiation::Refused;
        match byte {
            b'S' if tls_available => {
                if let Some(startup) = self.startup() {
                    startup.step = Step::TlsHandshake;
                }
                self.tls = TlsNegotiation::Handshaking;
            }
            b'S' => self.fail(tls_unsupported()),
            b'N' if !required => {
                self.queue_startup();
                if let Some(startup) = self.startup() {
                    startup.unsent_after_ssl = true;
                }
            }
            b'N' => self.fail(
                Error::new(
                    ErrorKind::Connect,
                    "server does not support SSL, but SSL was required",
                )
                .with_code(unable),
            ),
            // libpq 17 (CVE-2024-10977): the server is not authenticated yet, so its error message is
            // not read, and there is no fallback.
            b'E' => self.fail(
                Error::new(
                    ErrorKind::Connect,
                    "server sent an error response during SSL exchange",
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
            Step::SslResponse | Step::TlsHandshake => {}
        }
    }

    fn handle_auth_message(&mut self, msg: BackendMessage<'_>) {
        let outcome = match msg {
            BackendMessage::Authentication(auth) => self.handle_authentication(auth),
            BackendMessage::ErrorResponse(fields) => Err(error_from_fields(fields)),
            BackendMessage::NegotiateProtocolVersion {
                newest_minor,
                unrecognized,
            } => self.negotiate(newest_minor, unrecognized),
            other => Err(violation(format!(
                "expected authentication request from server, but received {}",
                protocol::printable(other.tag())
            ))),
        };
        if let Err(e) = outcome {
            self.fail(e);
        }
    }

    /// NegotiateProtocolVersion, checked as libpq 18 does (`pqGetNegotiateProtocolVersion3`): the
    /// server may offer an older version the client accepts (3.0 or 3.2, at least
    /// `min_protocol_version`), once, and may not name an option: pgdblink requests none.
    fn negotiate(&mut self, version: u32, options: StringList<'_>) -> Result<(), Error> {
        let Some(startup) = self.startup() else {
            return Ok(());
        };
        if startup.step == Step::Sasl {
            return Err(violation(
                "received NegotiateProtocolVersion during authentication".into(),
            ));
        }
        if startup.negotiated {
            return Err(violation(
                "received duplicate protocol negotiation message".into(),
            ));
        }
        startup.negotiated = true;
        let (requested, min) = (
            startup.config.max_protocol.code() as u32,
            startup.config.min_protocol.code() as u32,
        );
        let invalid = |why: &str| {
            violation(format!(
                "received invalid protocol negotiation message: {why}"
            ))
        };
        if version > requested {
            return Err(invalid(
                "server requested downgrade to a higher-numbered version",
            ));
        }
        if version < 3 << 16 {
            return Err(invalid(
                "server requested downgrade to pre-3.0 protocol version",
            ));
        }
        if version == 3 << 16 | 1 {
            return Err(invalid(
                "server requested downgrade to non-existent 3.1 protocol version",
            ));
        }
        if version == requested && options.is_empty() {
            return Err(invalid("server negotiated but asks for no changes"));
        }
        if version < min {
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "server only supports protocol version 3.{}, but \"min_protocol_version\" was set to 3.{}",
                    version & 0xffff,
                    min & 0xffff
                ),
            )
            .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION));
        }
        if let Some(option) = options.iter().next() {
            let option = String::from_utf8_lossy(option);
            return Err(invalid(&if option.starts_with("_pq_.") {
                format!(
                    "server reported an unsupported parameter that was not requested (\"{option}\")"
                )
            } else {
                format!(
                    "server reported unsupported parameter name without a \"_pq_.\" prefix (\"{option}\")"
                )
            }));
        }
        self.protocol_minor = version & 0xffff;
        Ok(())
    }

    fn handle_authentication(&mut self, auth: Authentication<'_>) -> Result<(), Error> {
        match &mut self.phase {
            Phase::Startup(startup) => startup.authenticate(auth, &mut self.send),
            _ => Ok(()),
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
                // The send buffer keeps what it sent up to a bound (see `last_query`): room for
                // that at once, as libpq allocates its output buffer, rather than growing it
                // query by query through the first few hundred.
                self.send.reserve(super::last_query::SEND_ROOM);
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

impl Startup {
    /// An `Authentication*` request: answers it into `send`.
    fn authenticate(&mut self, auth: Authentication<'_>, send: &mut Vec<u8>) -> Result<(), Error> {
        let needs_binding = self.config.channel_binding == ChannelBindingMode::Require;
        // Once a SASL exchange has begun, only its continuation, its outcome and AuthenticationOk may
        // follow: a server that switches to another method now (say, cleartext) is trying to downgrade
        // the exchange, and must not get the password.
        if self.step == Step::Sasl
            && !matches!(
                auth,
                Authentication::SaslContinue(_) | Authentication::SaslFinal(_) | Authentication::Ok
            )
        {
            return Err(violation(
                "unexpected authentication request during SASL exchange".into(),
            ));
        }
        match auth {
            Authentication::Ok => self.authenticated(needs_binding),
            // libpq's check_expected_areq: with channel_binding=require only SASL may proceed, and
            // nothing secret is sent to any other method.
            Authentication::CleartextPassword
            | Authentication::Md5Password { .. }
            | Authentication::KerberosV5
            | Authentication::Gss
            | Authentication::GssContinue(_)
            | Authentication::Sspi
            | Authentication::Other { .. }
                if needs_binding =>
            {
                Err(Error::new(
                    ErrorKind::Auth,
                    "channel binding required but not supported by server's authentication request",
                ))
            }
            Authentication::CleartextPassword => {
                let password = password(&self.config)?;
                frontend::password_message(password.as_bytes(), send).map_err(encode_error)
            }
            Authentication::Md5Password { salt } => {
                let password = password(&self.config)?;
                let hashed = Zeroizing::new(auth::md5_password(
                    self.config.user.as_bytes(),
                    password.as_bytes(),
                    salt,
                ));
                frontend::password_message(hashed.as_bytes(), send).map_err(encode_error)
            }
            Authentication::Sasl(mechanisms) => self.sasl_begin(mechanisms.iter(), send),
            Authentication::SaslContinue(data) => self.sasl_continue(data, send),
            Authentication::SaslFinal(data) => {
                let scram = self.sasl_client(
                    "AuthenticationSASLFinal received from server, but SASL authentication was not completed",
                )?;
                scram.handle_server_final(data)?;
                self.sasl_done = true;
                Ok(())
            }
            other => Err(unsupported_method(&other)),
        }
    }

    /// AuthenticationOk: authentication is over, and the secrets are dropped (wiped).
    fn authenticated(&mut self, needs_binding: bool) -> Result<(), Error> {
        if self.step == Step::Sasl && !self.sasl_done {
            return Err(Error::new(
                ErrorKind::Auth,
                "server sent AuthenticationOk before SASL authentication was completed",
            ));
        }
        if needs_binding
            && !self
                .scram
                .as_ref()
                .is_some_and(ScramClient::is_channel_bound)
        {
            return Err(Error::new(
                ErrorKind::Auth,
                "channel binding required, but server authenticated client without channel binding",
            ));
        }
        self.step = Step::AwaitingReady;
        self.config.password = None;
        self.scram = None;
        Ok(())
    }

    /// AuthenticationSASL: picks the mechanism and sends client-first.
    fn sasl_begin<'a>(
        &mut self,
        mechanisms: impl Iterator<Item = &'a [u8]>,
        send: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.step != Step::AwaitingAuth {
            return Err(Error::new(
                ErrorKind::Protocol,
                "unexpected AuthenticationSASL during SASL exchange",
            ));
        }
        let config = &self.config;
        let binding = auth::select_sasl_mechanism(
            mechanisms,
            config.auth_channel_binding(),
            self.tls,
            self.end_point.as_deref(),
        )?;
        let mechanism = binding.mechanism();
        let password = password(config)?;
        let scram = ScramClient::new(
            password.as_bytes(),
            &config.scram_nonce,
            config.scram_limits,
        )
        .with_binding(binding);
        let first = scram.client_first_message();
        frontend::sasl_initial_response(mechanism, Some(&first), send).map_err(encode_error)?;
        self.scram = Some(scram);
        self.step = Step::Sasl;
        Ok(())
    }

    /// AuthenticationSASLContinue: server-first in, client-final out.
    fn sasl_continue(&mut self, data: &[u8], send: &mut Vec<u8>) -> Result<(), Error> {
        let cache = self.config.scram_cache.clone();
        let scram = self.sasl_client(
            "AuthenticationSASLContinue received from server, but SASL authentication was not started",
        )?;
        let reply = match &cache {
            Some(cache) => {
                // A poisoned lock only means another thread panicked mid-update; the cache holds
                // whole entries, so it is still usable.
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                scram.handle_server_first_cached(data, &mut cache)?
            }
            None => scram.handle_server_first(data)?,
        };
        frontend::sasl_response(&reply, send).map_err(encode_error)
    }

    /// The SCRAM exchange in progress, or a protocol error with `text` when none is.
    fn sasl_client(&mut self, text: &str) -> Result<&mut ScramClient, Error> {
        match (self.step, self.scram.as_mut()) {
            (Step::Sasl, Some(scram)) => Ok(scram),
            _ => Err(Error::new(ErrorKind::Protocol, text)),
        }
    }
}

/// An `S` answer (or `sslnegotiation=direct`) where the transport cannot run TLS.
fn tls_unsupported() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "SSL is not supported by this client (the transport cannot run TLS)",
    )
    .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
}

fn encode_error(e: protocol::EncodeError) -> Error {
    Error::new(ErrorKind::Auth, e.to_string())
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

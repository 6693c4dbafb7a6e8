//! TLS on rustls the way libpq does it: which certificates a connection trusts and presents
//! (`sslmode`, `sslrootcert`, `sslcrl`, `sslcert`/`sslkey`, protocol versions, SNI, ALPN), libpq's own
//! host-name rules for `verify-full`, the tls-server-end-point channel-binding data, and rustls's
//! errors in libpq's words. The bytes themselves go through [`Transport`](super::Transport).
//!
//! The ring provider is chosen explicitly ([`provider`]): no process-wide default is consulted, so no
//! "no provider installed" panic can happen whatever other crates enable.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::Digest;

use crate::conninfo::{
    ConnectParams, Host, SslCertMode, SslMode, SslNegotiation, Target, TlsVersion,
};
use crate::error::{Error, ErrorKind};

/// The ALPN protocol name PostgreSQL 17 registers (`PG_ALPN_PROTOCOL_VECTOR`); libpq offers it in every
/// handshake and checks it for direct connections.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// libpq 16's second line after a missing root certificate file.
const ROOT_HINT: &str = "Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.";

/// The crypto provider every TLS configuration is built with: ring, chosen explicitly.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS keywords of one connection, resolved with the environment and libpq's defaults.
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// `sslmode`.
    pub sslmode: SslMode,
    /// `sslnegotiation=direct`: the ClientHello goes out at once, ALPN `postgresql` is required.
    pub direct: bool,
    /// `sslrootcert`: a PEM file or `system`; `None` = `~/.postgresql/root.crt`.
    pub sslrootcert: Option<String>,
    /// `sslcert`; `None` = `~/.postgresql/postgresql.crt`.
    pub sslcert: Option<String>,
    /// `sslkey`; `None` = `~/.postgresql/postgresql.key`.
    pub sslkey: Option<String>,
    /// `sslpassword` (never shown by `Debug`).
    pub sslpassword: Option<String>,
    /// `sslcertmode`: `disable` never sends the certificate, `require` insists it was sent.
    pub sslcertmode: SslCertMode,
    /// `sslcrl`; `None` = `~/.postgresql/root.crl`.
    pub sslcrl: Option<String>,
    /// `sslcrldir`.
    pub sslcrldir: Option<String>,
    /// `sslsni` (default true).
    pub sslsni: bool,
    /// `ssl_min_protocol_version` (default `TLSv1.2`).
    pub min_version: Option<String>,
    /// `ssl_max_protocol_version`.
    pub max_version: Option<String>,
    /// The home directory, for the `~/.postgresql` defaults.
    pub home: Option<PathBuf>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("sslmode", &self.sslmode)
            .field("direct", &self.direct)
            .field("sslrootcert", &self.sslrootcert)
            .field("sslcert", &self.sslcert)
            .field("sslkey", &self.sslkey)
            .field(
                "sslpassword",
                &self.sslpassword.as_ref().map(|_| "********"),
            )
            .field("sslcertmode", &self.sslcertmode)
            .field("sslcrl", &self.sslcrl)
            .field("sslcrldir", &self.sslcrldir)
            .field("sslsni", &self.sslsni)
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .finish()
    }
}

impl TlsSettings {
    /// The TLS keywords of resolved connection parameters (their defaults already applied).
    pub fn from_params(params: &ConnectParams) -> TlsSettings {
        let version = |v: Option<TlsVersion>| v.map(|v| v.name().to_owned());
        TlsSettings {
            sslmode: params.sslmode,
            direct: params.sslnegotiation == SslNegotiation::Direct,
            sslrootcert: params.sslrootcert.clone(),
            sslcert: params.sslcert.clone(),
            sslkey: params.sslkey.clone(),
            sslpassword: params.sslpassword.clone(),
            sslcertmode: params.sslcertmode,
            sslcrl: params.sslcrl.clone(),
            sslcrldir: params.sslcrldir.clone(),
            sslsni: params.sslsni,
            // No lower bound: rustls's lowest, TLS 1.2.
            min_version: Some(version(params.ssl_min_protocol_version).unwrap_or_default()),
            max_version: version(params.ssl_max_protocol_version),
            // The defaults under the home directory are resolved already.
            home: None,
        }
    }

    fn default_file(&self, name: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(".postgresql").join(name))
    }
}

/// What one TLS attempt needs: the rustls configuration, the server name (SNI and certificate
/// checks), and whether the handshake starts at once (direct) and checks ALPN.
#[derive(Clone)]
pub struct TlsPlan {
    /// The client configuration (verifier, client certificate, versions, ALPN).
    pub config: Arc<ClientConfig>,
    /// The name the handshake is for.
    pub server_name: ServerName<'static>,
    /// `sslnegotiation=direct`.
    pub direct: bool,
    /// Whether the server asked for a client certificate and whether one was sent.
    client_cert: Arc<ClientCertResolver>,
    /// `sslcertmode=require`.
    cert_required: bool,
}

impl std::fmt::Debug for TlsPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPlan")
            .field("server_name", &self.server_name)
            .field("direct", &self.direct)
            .finish_non_exhaustive()
    }
}

impl TlsPlan {
    /// libpq's `sslcertmode=require` check once the server has accepted the connection
    /// (`check_expected_areq`): the server must have asked for the certificate, and it must have been
    /// sent. `tls` says whether the connection used TLS (else nothing was asked).
    pub fn check_cert_sent(&self, tls: bool) -> Result<(), String> {
        if !self.cert_required {
            return Ok(());
        }
        if !tls || !self.client_cert.requested.load(Ordering::Relaxed) {
            Err("server did not request an SSL certificate".into())
        } else if !self.client_cert.sent.load(Ordering::Relaxed) {
            Err("server accepted connection without a valid SSL certificate".into())
        } else {
            Ok(())
        }
    }

    /// A new rustls client session for this plan.
    pub fn start(&self) -> Result<rustls::ClientConnection, Error> {
        rustls::ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| tls_error(format!("could not establish SSL connection: {e}")))
    }
}

fn tls_error(text: impl Into<String>) -> Error {
    Error::new(ErrorKind::Connect, text)
        .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
}

/// The host name libpq checks and sends: the `host` value, never `hostaddr`. `None` when only a
/// `hostaddr` was given (or for a unix socket).
fn host_value(target: &Target) -> Option<&str> {
    match &target.host {
        Host::Tcp { name, addr } => {
            let only_addr = addr.is_some_and(|a| name.parse::<IpAddr>().ok() == Some(a));
            (!only_addr && !name.is_empty()).then_some(name.as_str())
        }
        Host::Unix { .. } => None,
    }
}

/// libpq's test for a host that gets no SNI: only digits and dots, or containing `:`.
pub fn is_ip_literal(host: &str) -> bool {
    host.contains(':') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Builds the TLS plan for one target, loading every file libpq would (root certificates, CRLs, the
/// client certificate and key), with libpq's texts for each failure. `peer_ip` is the address the
/// socket goes to (the server name when only `hostaddr` was given).
pub fn plan(settings: &TlsSettings, target: &Target, peer_ip: IpAddr) -> Result<TlsPlan, Error> {
    let provider = provider();
    let versions = protocol_versions(settings)?;
    let host = host_value(target);
    let verifier = verifier(settings, host, &provider)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| tls_error(format!("could not create SSL context: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let key = match settings.sslcertmode {
        SslCertMode::Disable => None,
        _ => match client_certificate(settings)? {
            Some((chain, key, key_path)) => Some(Arc::new(
                rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
                    let text = match e {
                        rustls::Error::InconsistentKeys(_) => format!(
                            "certificate does not match private key file \"{}\": {e}",
                            key_path.display()
                        ),
                        _ => format!(
                            "could not load private key file \"{}\": {e}",
                            key_path.display()
                        ),
                    };
                    tls_error(text)
                })?,
            )),
            None => None,
        },
    };
    let client_cert = Arc::new(ClientCertResolver {
        key,
        requested: AtomicBool::new(false),
        sent: AtomicBool::new(false),
    });
    let mut config = builder.with_client_cert_resolver(client_cert.clone());
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    let server_name = match host {
        Some(h) if !is_ip_literal(h) => ServerName::try_from(h.to_owned()).ok(),
        Some(h) => h.parse::<IpAddr>().ok().map(ServerName::from),
        None => None,
    }
    .unwrap_or_else(|| ServerName::from(peer_ip));
    config.enable_sni = settings.sslsni && host.is_some_and(|h| !is_ip_literal(h));
    Ok(TlsPlan {
        config: Arc::new(config),
        server_name,
        direct: settings.direct,
        client_cert,
        cert_required: settings.sslcertmode == SslCertMode::Require,
    })
}

/// The client certificate (if any), handed over when the server asks for one (rustls calls
/// `resolve` only on a CertificateRequest): records both facts for `sslcertmode=require`.
#[derive(Debug)]
struct ClientCertResolver {
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    requested: AtomicBool,
    sent: AtomicBool,
}

impl rustls::client::ResolvesClientCert for ClientCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.requested.store(true, Ordering::Relaxed);
        let key = self.key.as_ref()?;
        key.key.choose_scheme(sigschemes)?;
        self.sent.store(true, Ordering::Relaxed);
        Some(key.clone())
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// `ssl_min_protocol_version`/`ssl_max_protocol_version` as rustls versions. rustls has TLS 1.2 and
/// 1.3 only: a minimum below 1.2 means 1.2 in practice; a maximum below 1.2 cannot be honoured.
fn protocol_versions(
    settings: &TlsSettings,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, Error> {
    fn rank(keyword: &str, value: Option<&str>) -> Result<Option<u8>, Error> {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        match v.to_ascii_lowercase().as_str() {
            "tlsv1" => Ok(Some(0)),
            "tlsv1.1" => Ok(Some(1)),
            "tlsv1.2" => Ok(Some(2)),
            "tlsv1.3" => Ok(Some(3)),
            _ => Err(tls_error(format!("invalid \"{keyword}\" value: \"{v}\""))),
        }
    }
    let min = rank("ssl_min_protocol_version", settings.min_version.as_deref())?.unwrap_or(2);
    let max = rank("ssl_max_protocol_version", settings.max_version.as_deref())?;
    if max.is_some_and(|m| m < min) {
        return Err(tls_error("invalid SSL protocol version range"));
    }
    if let Some(m) = max.filter(|m| *m < 2) {
        return Err(tls_error(format!(
            "ssl_max_protocol_version \"{}\" is not supported: rustls implements TLSv1.2 and TLSv1.3 only",
            ["TLSv1", "TLSv1.1"][m as usize]
        )));
    }
    let mut out = Vec::new();
    if min <= 2 {
        out.push(&rustls::version::TLS12);
    }
    if max.is_none_or(|m| m >= 3) {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

/// Where the trusted roots come from.
enum Roots {
    /// None: encryption without verification (`require` and weaker with no root file).
    None,
    /// A PEM file (CRLs apply).
    File(PathBuf),
    /// `sslrootcert=system`.
    System,
}

fn root_source(settings: &TlsSettings) -> Result<Roots, Error> {
    let verify = matches!(settings.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
    match settings.sslrootcert.as_deref() {
        Some("system") => Ok(Roots::System),
        Some(path) => {
            let path = PathBuf::from(path);
            if path.exists() {
                Ok(Roots::File(path))
            } else if verify {
                Err(tls_error(format!(
                    "root certificate file \"{}\" does not exist\n{ROOT_HINT}",
                    path.display()
                )))
            } else {
                Ok(Roots::None)
            }
        }
        None => match settings.default_file("root.crt") {
            Some(path) if path.exists() => Ok(Roots::File(path)),
            Some(path) if verify => Err(tls_error(format!(
                "root certificate file \"{}\" does not exist\n{ROOT_HINT}",
                path.display()
            ))),
            None if verify => Err(tls_error(format!(
                "could not get home directory to locate root certificate file\n{ROOT_HINT}"
            ))),
            _ => Ok(Roots::None),
        },
    }
}

fn verifier(
    settings: &TlsSettings,
    host: Option<&str>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, Error> {
    let full = settings.sslmode == SslMode::VerifyFull;
    let check_host = if full {
        Some(
            host.ok_or_else(|| {
                tls_error("host name must be specified for a verified SSL connection")
            })?
            .to_owned(),
        )
    } else {
        None
    };
    let mut roots = RootCertStore::empty();
    let mut crls = Vec::new();
    let mut trusted_intermediates = Vec::new();
    match root_source(settings)? {
        Roots::None => {
            return Ok(Arc::new(PgVerifier {
                chain: None,
                no_anchor: false,
                trusted_intermediates: Vec::new(),
                host: None,
                provider: provider.clone(),
            }));
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "no certificates found".into());
                return Err(tls_error(format!(
                    "could not load system root certificate paths: {why}"
                )));
            }
            roots.add_parsable_certificates(found.certs);
        }
        Roots::File(path) => {
            let certs = read_certificates(&path, "root certificate")?;
            let read_err = read_error(&path, "root certificate");
            // OpenSSL (so libpq) needs the chain to end at a self-signed trusted certificate; the
            // file's other certificates help build the chain but anchor nothing. webpki would take
            // every one as an anchor: only self-signed ones are made anchors here.
            for cert in certs {
                if is_self_issued(cert.as_ref()) {
                    roots.add(cert).map_err(|e| read_err(&e))?;
                } else {
                    trusted_intermediates.push(cert);
                }
            }
            crls = load_crls(settings)?;
        }
    }
    let chain = if roots.is_empty() {
        // Nothing can anchor a chain: every server fails verification (at the handshake, as in
        // libpq).
        None
    } else {
        let mut builder =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if !crls.is_empty() {
            builder = builder.with_crls(crls);
        }
        Some(builder.build().map_err(|e| {
            tls_error(format!(
                "could not load SSL certificate revocation list: {e}"
            ))
        })?)
    };
    Ok(Arc::new(PgVerifier {
        no_anchor: chain.is_none(),
        chain,
        trusted_intermediates,
        host: check_host,
        provider: provider.clone(),
    }))
}

/// The error for a `what` file that cannot be read: `could not read {what} file "{path}": {e}`.
fn read_error<'a>(path: &'a Path, what: &'a str) -> impl Fn(&dyn std::fmt::Display) -> Error + 'a {
    move |e| {
        tls_error(format!(
            "could not read {what} file \"{}\": {e}",
            path.display()
        ))
    }
}

/// Every certificate in the PEM `what` file `path`; an error when it holds none.
fn read_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let read_err = read_error(path, what);
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_err(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(&e))?;
    if certs.is_empty() {
        return Err(read_err(&"no certificate found"));
    }
    Ok(certs)
}

/// `sslcrl` (default `~/.postgresql/root.crl`) and every CRL in `sslcrldir`; missing files are
/// ignored, as in libpq.
fn load_crls(settings: &TlsSettings) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let mut files: Vec<PathBuf> = Vec::new();
    match &settings.sslcrl {
        Some(p) => files.push(p.into()),
        None => files.extend(settings.default_file("root.crl")),
    }
    if let Some(dir) = &settings.sslcrldir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        let mut in_dir: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        in_dir.sort();
        files.extend(in_dir.into_iter().filter(|p| p.is_file()));
    }
    let mut crls = Vec::new();
    for file in files {
        if !file.exists() {
            continue;
        }
        let bad = |e: &dyn std::fmt::Display| {
            tls_error(format!(
                "could not load SSL certificate revocation list file \"{}\": {e}",
                file.display()
            ))
        };
        for crl in CertificateRevocationListDer::pem_file_iter(&file).map_err(|e| bad(&e))? {
            crls.push(crl.map_err(|e| bad(&e))?);
        }
    }
    Ok(crls)
}

/// The client certificate chain and key, when a certificate file exists (libpq skips a missing
/// one), with libpq's checks on the key file.
#[allow(clippy::type_complexity)]
fn client_certificate(
    settings: &TlsSettings,
) -> Result<
    Option<(
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        PathBuf,
    )>,
    Error,
> {
    let Some(cert_path) = settings
        .sslcert
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| settings.default_file("postgresql.crt"))
    else {
        return Ok(None);
    };
    match std::fs::metadata(&cert_path) {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(tls_error(format!(
                "could not open certificate file \"{}\": {}",
                cert_path.display(),
                super::os_error_text(&e)
            )));
        }
    }
    let chain = read_certificates(&cert_path, "certificate")?;
    let key_path = settings
        .sslkey
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| settings.default_file("postgresql.key"))
        .unwrap_or_default();
    let meta = match std::fs::metadata(&key_path) {
        Ok(m) => m,
        Err(_) => {
            return Err(tls_error(format!(
                "certificate present, but not private key file \"{}\"",
                key_path.display()
            )));
        }
    };
    if !meta.is_file() {
        return Err(tls_error(format!(
            "private key file \"{}\" is not a regular file",
            key_path.display()
        )));
    }
    check_key_permissions(&key_path, &meta).map_err(tls_error)?;
    let key = load_key(&key_path, settings.sslpassword.is_some())?;
    Ok(Some((chain, key, key_path)))
}

/// libpq's rule for a private key file: at most 0600, or 0640 when owned by root.
#[cfg(unix)]
pub fn check_key_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    key_mode_allowed(meta.mode(), meta.uid()).then_some(()).ok_or_else(|| {
        format!(
            "private key file \"{}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root",
            path.display()
        )
    })
}

/// No permission bits to check here.
#[cfg(not(unix))]
pub fn check_key_permissions(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Whether a key file with `mode` owned by `uid` passes libpq's check.
pub fn key_mode_allowed(mode: u32, uid: u32) -> bool {
    let forbidden = if uid == 0 { 0o037 } else { 0o077 };
    mode & forbidden == 0
}

fn load_key(path: &Path, have_password: bool) -> Result<PrivateKeyDer<'static>, Error> {
    let fail = |why: String| {
        tls_error(format!(
            "could not load private key file \"{}\": {why}",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| fail(super::os_error_text(&e)))?;
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("ENCRYPTED") {
        return Err(fail(if have_password {
            "encrypted private keys are not supported (sslpassword cannot be used with rustls)"
                .into()
        } else {
            "the key is encrypted and pgdblink cannot decrypt private keys".into()
        }));
    }
    if let Ok(key) = PrivateKeyDer::from_pem_slice(&bytes) {
        return Ok(key);
    }
    PrivateKeyDer::try_from(bytes)
        .map_err(|_| fail("no private key found (neither PEM nor DER)".into()))
}

/// The verifier of every sslmode: `chain` is webpki's (roots and CRLs) when the certificate chain is
/// checked; `host` is the `host` value when libpq's host-name rules apply (verify-full). The handshake
/// signatures are always checked, whatever the mode: channel binding relies on the peer holding the
/// key of the certificate it showed.
#[derive(Debug)]
struct PgVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// The root file held no self-signed certificate: no chain verifies.
    no_anchor: bool,
    /// The root file's certificates that are not self-signed: offered to chain building.
    trusted_intermediates: Vec<CertificateDer<'static>>,
    host: Option<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PgVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.no_anchor {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ));
        }
        if let Some(chain) = &self.chain {
            let with_trusted: Vec<CertificateDer<'_>>;
            let intermediates = if self.trusted_intermediates.is_empty() {
                intermediates
            } else {
                with_trusted = intermediates
                    .iter()
                    .cloned()
                    .chain(self.trusted_intermediates.iter().cloned())
                    .collect();
                &with_trusted
            };
            match chain.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(_) => {}
                // webpki checks the name last: chain and revocation have passed. libpq's own rules
                // follow (verify-full) or none (verify-ca).
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(host) = &self.host {
            check_host_name(end_entity.as_ref(), host).map_err(rustls::Error::General)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// rustls's error in libpq's words (after the `connection to server at ...` prefix).
pub fn error_text(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::General(text) => text.clone(),
        rustls::Error::InvalidCertificate(_) => "SSL error: certificate verify failed".into(),
        rustls::Error::AlertReceived(alert) => {
            let name = match alert {
                A::HandshakeFailure => "sslv3 alert handshake failure".to_owned(),
                A::BadCertificate => "sslv3 alert bad certificate".to_owned(),
                A::CertificateRevoked => "sslv3 alert certificate revoked".to_owned(),
                A::CertificateExpired => "sslv3 alert certificate expired".to_owned(),
                A::UnknownCA => "tlsv1 alert unknown ca".to_owned(),
                A::AccessDenied => "tlsv1 alert access denied".to_owned(),
                A::ProtocolVersion => "tlsv1 alert protocol version".to_owned(),
                A::DecryptError => "tlsv1 alert decrypt error".to_owned(),
                A::CertificateRequired => "tlsv13 alert certificate required".to_owned(),
                A::NoApplicationProtocol => "tlsv1 alert no application protocol".to_owned(),
                A::InternalError => "tlsv1 alert internal error".to_owned(),
                other => format!("tls alert {other:?}").to_ascii_lowercase(),
            };
            format!("SSL error: {name}")
        }
        rustls::Error::PeerIncompatible(_) => format!("SSL error: unsupported protocol ({e})"),
        other => format!("SSL error: {other}"),
    }
}

/// The text of a socket failure during the handshake (libpq's `SSL SYSCALL error`).
pub fn syscall_error_text(e: Option<&std::io::Error>) -> String {
    match e {
        None => "SSL SYSCALL error: EOF detected".into(),
        Some(e) => format!("SSL SYSCALL error: {}", super::os_error_text(e)),
    }
}

/// After the handshake: libpq's ALPN check for direct connections.
pub fn check_alpn(direct: bool, selected: Option<&[u8]>) -> Result<(), String> {
    match (direct, selected) {
        (false, _) => Ok(()),
        (true, None) => Err(
            "direct SSL connection was established without ALPN protocol negotiation extension"
                .into(),
        ),
        (true, Some(p)) if p == ALPN_POSTGRESQL => Ok(()),
        (true, Some(_)) => {
            Err("SSL connection was established with unexpected ALPN protocol".into())
        }
    }
}

/// An attribute of an established session, as libpq's `PQsslAttribute` names them.
pub fn session_attribute(conn: &rustls::ClientConnection, attribute: &str) -> Option<String> {
    if conn.is_handshaking() {
        return None;
    }
    let suite = conn.negotiated_cipher_suite();
    match attribute {
        "library" => Some("rustls".into()),
        "protocol" => conn.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        }),
        "cipher" => suite.and_then(|s| s.suite().as_str()).map(|name| {
            name.strip_prefix("TLS13_")
                .map(|rest| format!("TLS_{rest}"))
                .unwrap_or_else(|| name.to_owned())
        }),
        "key_bits" => suite.and_then(|s| s.suite().as_str()).map(|name| {
            if name.contains("AES_128") {
                "128"
            } else {
                "256"
            }
            .to_owned()
        }),
        "compression" => Some("off".into()),
        _ => None,
    }
}

// ---- X.509: just what libpq's checks read (signature algorithm, subject CN, subjectAltName) ----

/// One DER element: its tag and contents; `rest` follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed DER value.
fn elements(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, body, rest) = der(input)?;
        input = rest;
        Some((tag, body))
    })
}

const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];

/// A subjectAltName entry libpq looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum San {
    /// dNSName.
    Dns(Vec<u8>),
    /// iPAddress (raw bytes: 4 or 16 in a valid certificate).
    Ip(Vec<u8>),
}

/// What libpq's checks read from a certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CertNames {
    /// The dNSName and iPAddress subjectAltName entries, in the certificate's order.
    pub sans: Vec<San>,
    /// The subject's common name, if any.
    pub cn: Option<Vec<u8>>,
}

/// The tbsCertificate and the signatureAlgorithm of a certificate.
fn certificate_parts(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, body, _) = der(cert)? else {
        return None;
    };
    let mut parts = elements(body);
    let (0x30, tbs) = parts.next()? else {
        return None;
    };
    let (0x30, alg) = parts.next()? else {
        return None;
    };
    Some((tbs, alg))
}

/// Whether a certificate names itself as its issuer (a root, in OpenSSL's sense of a chain's end).
pub fn is_self_issued(cert: &[u8]) -> bool {
    let Some((tbs, _)) = certificate_parts(cert) else {
        return false;
    };
    let mut fields = elements(tbs).peekable();
    if fields.peek().is_some_and(|(tag, _)| *tag == 0xa0) {
        fields.next(); // version
    }
    let (_serial, _signature) = (fields.next(), fields.next());
    let issuer = fields.next();
    let _validity = fields.next();
    let subject = fields.next();
    issuer.is_some() && issuer == subject
}

/// The subject names of a certificate; `None` when it does not parse.
pub fn cert_names(cert: &[u8]) -> Option<CertNames> {
    let (tbs, _) = certificate_parts(cert)?;
    let mut fields = elements(tbs).peekable();
    if fields.peek().is_some_and(|(tag, _)| *tag == 0xa0) {
        fields.next(); // version
    }
    let _serial = fields.next()?;
    let _signature = fields.next()?;
    let _issuer = fields.next()?;
    let _validity = fields.next()?;
    let (0x30, subject) = fields.next()? else {
        return None;
    };
    let _spki = fields.next()?;
    let mut names = CertNames::default();
    for rdn in elements(subject) {
        for (_, attr) in elements(rdn.1) {
            let mut parts = elements(attr);
            if let (Some((0x06, oid)), Some((_, value))) = (parts.next(), parts.next())
                && oid == OID_CN
            {
                names.cn = Some(value.to_vec());
            }
        }
    }
    for (tag, body) in fields {
        if tag != 0xa3 {
            continue;
        }
        let (0x30, extensions, _) = der(body)? else {
            return None;
        };
        for (_, ext) in elements(extensions) {
            let mut parts = elements(ext);
            let Some((0x06, oid)) = parts.next() else {
                continue;
            };
            if oid != OID_SAN {
                continue;
            }
            let value = parts.find(|(t, _)| *t == 0x04)?.1;
            let (0x30, general_names, _) = der(value)? else {
                return None;
            };
            for (tag, name) in elements(general_names) {
                match tag {
                    0x82 => names.sans.push(San::Dns(name.to_vec())),
                    0x87 => names.sans.push(San::Ip(name.to_vec())),
                    _ => {}
                }
            }
        }
    }
    Some(names)
}

/// libpq's wildcard rule: a leading `*.` covering exactly one label, compared case-insensitively.
fn name_matches(pattern: &str, host: &str) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    let Some(suffix) = pattern.strip_prefix('*') else {
        return false;
    };
    if !suffix.starts_with('.') || suffix.contains('*') || host.len() <= suffix.len() {
        return false;
    }
    let (label, rest) = host.split_at(host.len() - suffix.len());
    rest.eq_ignore_ascii_case(suffix) && !label.contains('.')
}

/// libpq's host-name check for `verify-full` (fe-secure-common.c, fe-secure-openssl.c
/// `pgtls_verify_peer_name_matches_certificate_guts`): every dNSName and iPAddress SAN is examined
/// in order (a dNSName as a name, with one leading `*.` wildcard; an iPAddress byte for byte against
/// an IP host); the CN only when no SAN has the host's type. `Err` is libpq's text, naming the first
/// name examined.
pub fn check_host_name(cert: &[u8], host: &str) -> Result<(), String> {
    let names =
        cert_names(cert).ok_or("could not get server's host name from server certificate")?;
    let host_ip: Option<IpAddr> = host.parse().ok();
    let mut examined: Vec<String> = Vec::new();
    let name_ok = |bytes: &[u8], examined: &mut Vec<String>| -> Result<bool, String> {
        if bytes.contains(&0) {
            return Err("SSL certificate's name contains embedded null".into());
        }
        let name = String::from_utf8_lossy(bytes).into_owned();
        let ok = name_matches(&name, host);
        examined.push(name);
        Ok(ok)
    };
    let mut check_cn = true;
    for san in &names.sans {
        let matched = match san {
            San::Dns(dns) => {
                if host_ip.is_none() {
                    check_cn = false;
                }
                name_ok(dns, &mut examined)?
            }
            San::Ip(raw) => {
                if host_ip.is_some() {
                    check_cn = false;
                }
                let addr = match raw.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(raw.as_slice()).expect("4 bytes")),
                    16 => IpAddr::from(<[u8; 16]>::try_from(raw.as_slice()).expect("16 bytes")),
                    n => {
                        return Err(format!(
                            "certificate contains IP address with invalid length {n}"
                        ));
                    }
                };
                examined.push(addr.to_string());
                host_ip == Some(addr)
            }
        };
        if matched {
            return Ok(());
        }
    }
    if check_cn
        && let Some(cn) = &names.cn
        && name_ok(cn, &mut examined)?
    {
        return Ok(());
    }
    match examined.len() {
        0 => Err("could not get server's host name from server certificate".into()),
        1 => Err(format!(
            "server certificate for \"{}\" does not match host name \"{host}\"",
            examined[0]
        )),
        n => Err(format!(
            "server certificate for \"{}\" (and {} other name{}) does not match host name \"{host}\"",
            examined[0],
            n - 1,
            if n == 2 { "" } else { "s" }
        )),
    }
}

/// The tls-server-end-point channel-binding data (RFC 5929 §4.1): the hash of the certificate DER,
/// with the hash of its signature algorithm (MD5 and SHA-1 upgraded to SHA-256; RSA-PSS's from its
/// parameters). `None` where there is none (Ed25519/Ed448, an unknown algorithm), as in libpq.
pub fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    let hash = end_point_hash(cert)?;
    Some(match hash {
        EndPointHash::Sha256 => sha2::Sha256::digest(cert).to_vec(),
        EndPointHash::Sha384 => sha2::Sha384::digest(cert).to_vec(),
        EndPointHash::Sha512 => sha2::Sha512::digest(cert).to_vec(),
    })
}

/// The hash [`server_end_point`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndPointHash {
    /// SHA-256 (also for MD5 and SHA-1 signatures).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// The end-point hash of a certificate by its signature algorithm.
pub fn end_point_hash(cert: &[u8]) -> Option<EndPointHash> {
    let (_, alg) = certificate_parts(cert)?;
    let mut parts = elements(alg);
    let (0x06, oid) = parts.next()? else {
        return None;
    };
    if oid == OID_RSA_PSS {
        // RSASSA-PSS-params: [0] hashAlgorithm (default SHA-1 -> SHA-256).
        let params = parts.next().filter(|(t, _)| *t == 0x30).map(|(_, p)| p);
        let hash_oid = params
            .and_then(|p| elements(p).find(|(t, _)| *t == 0xa0))
            .and_then(|(_, h)| der(h))
            .and_then(|(_, alg, _)| elements(alg).next())
            .map(|(_, oid)| oid.to_vec());
        return Some(match hash_oid.as_deref() {
            Some([.., 0x02, 0x02]) if hash_oid.as_ref()?.starts_with(SHA2_ARC) => {
                EndPointHash::Sha384
            }
            Some([.., 0x02, 0x03]) if hash_oid.as_ref()?.starts_with(SHA2_ARC) => {
                EndPointHash::Sha512
            }
            _ => EndPointHash::Sha256,
        });
    }
    signature_hash(oid)
}

/// 2.16.840.1.101.3.4 (NIST algorithms), the arc of the SHA-2 hash OIDs.
const SHA2_ARC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04];

fn signature_hash(oid: &[u8]) -> Option<EndPointHash> {
    const PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
    const DSA_SHA2: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
    if let Some(rest) = oid.strip_prefix(PKCS1) {
        // md2/md5/sha1 (2, 4, 5), sha256/384/512 (11, 12, 13), sha224 (14).
        return match rest {
            [2] | [4] | [5] | [11] | [14] => Some(EndPointHash::Sha256),
            [12] => Some(EndPointHash::Sha384),
            [13] => Some(EndPointHash::Sha512),
            _ => None,
        };
    }
    if oid == ECDSA_SHA1 || oid == DSA_SHA1 {
        return Some(EndPointHash::Sha256);
    }
    if let Some(rest) = oid.strip_prefix(ECDSA_SHA2) {
        return match rest {
            [1] | [2] => Some(EndPointHash::Sha256),
            [3] => Some(EndPointHash::Sha384),
            [4] => Some(EndPointHash::Sha512),
            _ => None,
        };
    }
    if let Some(rest) = oid.strip_prefix(DSA_SHA2) {
        return match rest {
            [1] | [2] => Some(EndPointHash::Sha256),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, SocketAddr, TcpListener};

    use rcgen::{
        CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
        PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
    };
    use rustls::pki_types::PrivatePkcs8KeyDer;

    use super::*;
    use crate::driver::{CancelToken, Peer};

    /// A certificate with these SANs (rcgen makes IP strings iPAddress entries) and CN.
    fn cert_with(sans: &[&str], cn: Option<&str>) -> Vec<u8> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn cert_names_reads_sans_in_order_and_the_cn() {
        let names = cert_names(&cert_with(&["db.example", "10.1.2.3", "::1"], Some("x"))).unwrap();
        assert_eq!(
            names.sans,
            [
                San::Dns(b"db.example".to_vec()),
                San::Ip(vec![10, 1, 2, 3]),
                San::Ip(std::net::Ipv6Addr::LOCALHOST.octets().to_vec())
            ]
        );
        assert_eq!(names.cn.as_deref(), Some(&b"x"[..]));
        assert_eq!(cert_names(b"\x30\x03\x02\x01"), None, "truncated DER");
        assert_eq!(cert_names(&[]), None);
    }

    /// The DER walker reads what a server sends before anything is verified (under `require`, and for
    /// the channel-binding hash): every truncation and every single-byte change of a real certificate
    /// gives an answer, never a panic or a hang.
    #[test]
    fn certificate_reading_survives_truncation_and_corruption() {
        let cert = cert_with(&["db.example", "10.1.2.3"], Some("x"));
        let probe = |bytes: &[u8]| {
            let _ = cert_names(bytes);
            let _ = is_self_issued(bytes);
            let _ = server_end_point(bytes);
            let _ = check_host_name(bytes, "db.example");
            let _ = check_host_name(bytes, "10.1.2.3");
        };
        for len in 0..=cert.len() {
            probe(&cert[..len]);
        }
        for i in 0..cert.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = cert.clone();
                bad[i] ^= flip;
                probe(&bad);
            }
        }
        assert!(cert_names(&cert).is_some());
    }

    /// libpq's host-name rules (fe-secure-common.c; 001_ssltests; the reference's local check).
    #[test]
    fn host_names_follow_libpq() {
        let ok = Ok(());
        /// SANs, CN, host, expected outcome.
        type Case<'a> = (&'a [&'a str], Option<&'a str>, &'a str, Result<(), &'a str>);
        let cases: &[Case] = &[
            // dNSName SANs, case-insensitive.
            (&["localhost"], None, "localhost", ok),
            (&["LocalHost"], None, "localhost", ok),
            (
                &["db.example"],
                None,
                "other.example",
                Err(
                    "server certificate for \"db.example\" does not match host name \"other.example\"",
                ),
            ),
            // One leading wildcard covering exactly one label.
            (&["*.example.com"], None, "db.example.com", ok),
            (
                &["*.example.com"],
                None,
                "a.b.example.com",
                Err(
                    "server certificate for \"*.example.com\" does not match host name \"a.b.example.com\"",
                ),
            ),
            (
                &["*.example.com"],
                None,
                "example.com",
                Err(
                    "server certificate for \"*.example.com\" does not match host name \"example.com\"",
                ),
            ),
            (
                &["db*.example.com"],
                None,
                "db1.example.com",
                Err(
                    "server certificate for \"db*.example.com\" does not match host name \"db1.example.com\"",
                ),
            ),
            // An IP host matches iPAddress SANs byte for byte.
            (&["localhost", "127.0.0.1"], None, "127.0.0.1", ok),
            (&["localhost", "::1"], None, "::1", ok),
            (
                &["localhost", "127.0.0.1"],
                None,
                "127.0.0.2",
                Err(
                    "server certificate for \"localhost\" (and 1 other name) does not match host name \"127.0.0.2\"",
                ),
            ),
            (
                &["a", "b", "c"],
                None,
                "d",
                Err(
                    "server certificate for \"a\" (and 2 other names) does not match host name \"d\"",
                ),
            ),
            // The CN only without a SAN of the host's type.
            (&[], Some("cn.example"), "cn.example", ok),
            (
                &["san.example"],
                Some("cn.example"),
                "cn.example",
                Err(
                    "server certificate for \"san.example\" does not match host name \"cn.example\"",
                ),
            ),
            // An IP in the CN counts when no iPAddress SAN exists, even beside dNSNames.
            (&["db.example"], Some("127.0.0.1"), "127.0.0.1", ok),
            (
                &["10.0.0.1"],
                Some("127.0.0.1"),
                "127.0.0.1",
                Err("server certificate for \"10.0.0.1\" does not match host name \"127.0.0.1\""),
            ),
            (
                &[],
                None,
                "localhost",
                Err("could not get server's host name from server certificate"),
            ),
        ];
        for (sans, cn, host, want) in cases {
            let got = check_host_name(&cert_with(sans, *cn), host);
            assert_eq!(got, want.map_err(str::to_owned), "{sans:?} {cn:?} {host}");
        }
    }

    #[test]
    fn end_point_hash_follows_the_signature_algorithm() {
        for (alg, want) in [
            (&PKCS_ECDSA_P256_SHA256, Some(EndPointHash::Sha256)),
            (&PKCS_ECDSA_P384_SHA384, Some(EndPointHash::Sha384)),
            (&PKCS_ED25519, None),
        ] {
            let key = KeyPair::generate_for(alg).unwrap();
            let der = CertificateParams::new(vec!["h".to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .der()
                .to_vec();
            assert_eq!(end_point_hash(&der), want);
            let data = server_end_point(&der);
            match want {
                Some(EndPointHash::Sha256) => {
                    assert_eq!(data, Some(sha2::Sha256::digest(&der).to_vec()))
                }
                Some(EndPointHash::Sha384) => {
                    assert_eq!(data, Some(sha2::Sha384::digest(&der).to_vec()))
                }
                _ => assert_eq!(data, None, "no digest, no binding (as libpq)"),
            }
        }
        // RSA: md5/sha1/sha256 -> SHA-256, sha384, sha512; ECDSA-SHA1 -> SHA-256.
        let pkcs1 = |n: u8| [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, n];
        assert_eq!(signature_hash(&pkcs1(4)), Some(EndPointHash::Sha256));
        assert_eq!(signature_hash(&pkcs1(5)), Some(EndPointHash::Sha256));
        assert_eq!(signature_hash(&pkcs1(11)), Some(EndPointHash::Sha256));
        assert_eq!(signature_hash(&pkcs1(12)), Some(EndPointHash::Sha384));
        assert_eq!(signature_hash(&pkcs1(13)), Some(EndPointHash::Sha512));
        assert_eq!(
            signature_hash(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04]),
            Some(EndPointHash::Sha512)
        );
        assert_eq!(
            signature_hash(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]),
            Some(EndPointHash::Sha256)
        );
        assert_eq!(signature_hash(&[0x2b, 0x65, 0x70]), None, "Ed25519");
        assert_eq!(end_point_hash(b"garbage"), None);
    }

    #[test]
    fn key_permissions_follow_libpq() {
        for (mode, uid, allowed) in [
            (0o100600, 1000, true),
            (0o100400, 1000, true),
            (0o100640, 1000, false),
            (0o100644, 1000, false),
            (0o100604, 1000, false),
            (0o100640, 0, true),
            (0o100660, 0, false),
            (0o100644, 0, false),
        ] {
            assert_eq!(key_mode_allowed(mode, uid), allowed, "{mode:o} uid {uid}");
        }
    }

    #[test]
    fn rustls_errors_in_libpq_words() {
        assert_eq!(
            error_text(&rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            "SSL error: certificate verify failed"
        );
        assert_eq!(
            error_text(&rustls::Error::InvalidCertificate(
                CertificateError::Revoked
            )),
            "SSL error: certificate verify failed"
        );
        assert_eq!(
            error_text(&rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA
            )),
            "SSL error: tlsv1 alert unknown ca"
        );
        assert_eq!(
            error_text(&rustls::Error::General(
                "server certificate for \"a\" does not match host name \"b\"".into()
            )),
            "server certificate for \"a\" does not match host name \"b\""
        );
        assert_eq!(syscall_error_text(None), "SSL SYSCALL error: EOF detected");
        assert_eq!(check_alpn(false, None), Ok(()));
        assert_eq!(check_alpn(true, Some(b"postgresql")), Ok(()));
        assert_eq!(
            check_alpn(true, None).unwrap_err(),
            "direct SSL connection was established without ALPN protocol negotiation extension"
        );
        assert_eq!(
            check_alpn(true, Some(b"h2")).unwrap_err(),
            "SSL connection was established with unexpected ALPN protocol"
        );
    }

    #[test]
    fn protocol_versions_map_to_rustls() {
        let with = |min: Option<&str>, max: Option<&str>| {
            let settings = TlsSettings {
                min_version: min.map(str::to_owned),
                max_version: max.map(str::to_owned),
                ..TlsSettings::default()
            };
            protocol_versions(&settings).map(|v| v.iter().map(|v| v.version).collect::<Vec<_>>())
        };
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(with(None, None).unwrap(), [TLSv1_2, TLSv1_3]);
        assert_eq!(with(Some("TLSv1"), None).unwrap(), [TLSv1_2, TLSv1_3]);
        assert_eq!(with(Some("tlsv1.3"), None).unwrap(), [TLSv1_3]);
        assert_eq!(with(None, Some("TLSv1.2")).unwrap(), [TLSv1_2]);
        assert_eq!(
            with(Some("TLSv1.4"), None).unwrap_err().message(),
            "invalid \"ssl_min_protocol_version\" value: \"TLSv1.4\""
        );
        assert_eq!(
            with(Some("TLSv1.3"), Some("TLSv1.2"))
                .unwrap_err()
                .message(),
            "invalid SSL protocol version range"
        );
        assert!(
            with(Some("TLSv1"), Some("TLSv1.1"))
                .unwrap_err()
                .message()
                .contains("TLSv1.1")
        );
    }

    /// Test files under a fresh temporary directory.
    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!(
                "pgdblink-tls-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
        fn write(&self, name: &str, text: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn target(host: &str) -> Target {
        Target {
            host: Host::Tcp {
                name: host.into(),
                addr: None,
            },
            port: 5432,
            pgpass_password: None,
        }
    }

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn root_certificate_rules() {
        let dir = Dir::new("roots");
        let settings = |mode, root: Option<String>| TlsSettings {
            sslmode: mode,
            sslrootcert: root,
            home: Some(dir.0.clone()),
            sslsni: true,
            ..TlsSettings::default()
        };
        // require without a root file: encryption without verification.
        assert!(
            plan(
                &settings(SslMode::Require, None),
                &target("localhost"),
                LOCAL
            )
            .is_ok()
        );
        // verify-* need one: libpq 16's two lines.
        let e = plan(
            &settings(SslMode::VerifyCa, None),
            &target("localhost"),
            LOCAL,
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            format!(
                "root certificate file \"{}\" does not exist\nEither provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.",
                dir.0.join(".postgresql/root.crt").display()
            )
        );
        let e = plan(
            &settings(SslMode::VerifyFull, Some("/nonexistent/ca.crt".into())),
            &target("localhost"),
            LOCAL,
        )
        .unwrap_err();
        assert!(
            e.message()
                .starts_with("root certificate file \"/nonexistent/ca.crt\" does not exist\n")
        );
        let no_home = TlsSettings {
            sslmode: SslMode::VerifyFull,
            ..TlsSettings::default()
        };
        assert!(
            plan(&no_home, &target("localhost"), LOCAL)
                .unwrap_err()
                .message()
                .starts_with("could not get home directory to locate root certificate file\n")
        );
        let garbage = dir.write("garbage.crt", "not a certificate");
        assert!(
            plan(
                &settings(SslMode::VerifyCa, Some(garbage.clone())),
                &target("h"),
                LOCAL
            )
            .unwrap_err()
            .message()
            .starts_with(&format!(
                "could not read root certificate file \"{garbage}\": "
            ))
        );
        // verify-full checks `host`, never `hostaddr`.
        let ca = dir.write("ca.crt", &Pki::new().ca.pem());
        let hostaddr_only = Target {
            host: Host::Tcp {
                name: "127.0.0.1".into(),
                addr: Some(LOCAL),
            },
            port: 5432,
            pgpass_password: None,
        };
        assert_eq!(
            plan(
                &settings(SslMode::VerifyFull, Some(ca.clone())),
                &hostaddr_only,
                LOCAL
            )
            .unwrap_err()
            .message(),
            "host name must be specified for a verified SSL connection"
        );
        // SNI for names only.
        let p = plan(
            &settings(SslMode::VerifyFull, Some(ca.clone())),
            &target("localhost"),
            LOCAL,
        )
        .unwrap();
        assert!(p.config.enable_sni);
        assert_eq!(p.config.alpn_protocols, [b"postgresql".to_vec()]);
        let p = plan(
            &settings(SslMode::VerifyFull, Some(ca)),
            &target("127.0.0.1"),
            LOCAL,
        )
        .unwrap();
        assert!(!p.config.enable_sni);
    }

    #[cfg(unix)]
    #[test]
    fn client_key_files_follow_libpq() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Dir::new("keys");
        let pki = Pki::new();
        let cert = dir.write("client.crt", &pki.server_pem);
        let key = dir.write("client.key", &pki.server_key.serialize_pem());
        let settings = |cert: Option<&str>, key: Option<&str>| TlsSettings {
            sslmode: SslMode::Require,
            sslcert: cert.map(str::to_owned),
            sslkey: key.map(str::to_owned),
            home: Some(dir.0.clone()),
            sslsni: true,
            ..TlsSettings::default()
        };
        // A missing (default) certificate file: no client certificate.
        assert!(plan(&settings(None, None), &target("h"), LOCAL).is_ok());
        assert!(
            plan(
                &settings(Some("/nonexistent.crt"), None),
                &target("h"),
                LOCAL
            )
            .is_ok()
        );
        // A certificate without its key.
        assert_eq!(
            plan(
                &settings(Some(&cert), Some("/nonexistent.key")),
                &target("h"),
                LOCAL
            )
            .unwrap_err()
            .message(),
            "certificate present, but not private key file \"/nonexistent.key\""
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = plan(&settings(Some(&cert), Some(&key)), &target("h"), LOCAL).unwrap_err();
        assert!(
            e.message().starts_with(&format!(
                "private key file \"{key}\" has group or world access; file must have permissions u=rw (0600) or less"
            )),
            "{e}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(plan(&settings(Some(&cert), Some(&key)), &target("h"), LOCAL).is_ok());
        assert_eq!(
            plan(
                &settings(Some(&cert), Some(dir.0.to_str().unwrap())),
                &target("h"),
                LOCAL
            )
            .unwrap_err()
            .message(),
            format!(
                "private key file \"{}\" is not a regular file",
                dir.0.display()
            )
        );
        let encrypted = dir.write(
            "enc.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        std::fs::set_permissions(&encrypted, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            plan(
                &settings(Some(&cert), Some(&encrypted)),
                &target("h"),
                LOCAL
            )
            .unwrap_err()
            .message()
            .starts_with(&format!(
                "could not load private key file \"{encrypted}\": "
            ))
        );
        // A key that is not the certificate's.
        let other = dir.write("other.key", &KeyPair::generate().unwrap().serialize_pem());
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            plan(&settings(Some(&cert), Some(&other)), &target("h"), LOCAL)
                .unwrap_err()
                .message()
                .starts_with(&format!(
                    "certificate does not match private key file \"{other}\""
                ))
        );
    }

    /// OpenSSL's rule (001_ssltests): a root file holding only an intermediate CA verifies nothing;
    /// an intermediate in the root file helps a chain that ends at a self-signed root in it.
    #[test]
    fn chains_end_at_a_self_signed_root() {
        let ca_params = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            p
        };
        let root =
            CertifiedIssuer::self_signed(ca_params("root"), KeyPair::generate().unwrap()).unwrap();
        let inter = CertifiedIssuer::signed_by(
            ca_params("intermediate"),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &inter)
            .unwrap();
        assert!(is_self_issued(root.der()) && !is_self_issued(inter.der()));
        assert!(!is_self_issued(leaf.der()) && !is_self_issued(b"junk"));

        let dir = Dir::new("chains");
        let check = |file: &str, sent: &[&CertificateDer<'static>]| {
            let settings = TlsSettings {
                sslmode: SslMode::VerifyFull,
                sslrootcert: Some(dir.write("roots.crt", file)),
                ..TlsSettings::default()
            };
            let v = verifier(&settings, Some("localhost"), &provider()).unwrap();
            let sent: Vec<CertificateDer<'static>> = sent.iter().map(|c| (*c).clone()).collect();
            v.verify_server_cert(
                leaf.der(),
                &sent,
                &ServerName::try_from("localhost").unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
        };
        let unknown = Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(check(&inter.pem(), &[]), unknown);
        assert_eq!(check(&inter.pem(), &[inter.der()]), unknown);
        assert_eq!(check(&root.pem(), &[]), unknown);
        assert_eq!(
            check(&format!("{}{}", root.pem(), inter.pem()), &[]),
            Ok(())
        );
        assert_eq!(check(&root.pem(), &[inter.der()]), Ok(()));
    }

    /// A CA and a server certificate for localhost and 127.0.0.1 it signed.
    struct Pki {
        ca: CertifiedIssuer<'static, KeyPair>,
        server_der: Vec<u8>,
        server_pem: String,
        server_key: KeyPair,
    }

    impl Pki {
        fn new() -> Pki {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(DnType::CommonName, "test ca");
            let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
            let server_key = KeyPair::generate().unwrap();
            let server =
                CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                    .unwrap()
                    .signed_by(&server_key, &ca)
                    .unwrap();
            Pki {
                ca,
                server_der: server.der().to_vec(),
                server_pem: server.pem(),
                server_key,
            }
        }

        fn server_config(&self) -> Arc<rustls::ServerConfig> {
            let mut config = rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from(self.server_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.serialize_der())),
                )
                .unwrap();
            config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
            Arc::new(config)
        }
    }

    /// A one-shot server for a cancel request over TLS: reads the SSLRequest, answers `S`, runs the
    /// handshake and returns the plaintext it then received (until the client's close or a failure).
    fn tls_cancel_server(pki: &Pki) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let config = pki.server_config();
        let handle = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut request = [0u8; 8];
            sock.read_exact(&mut request).unwrap();
            assert_eq!(
                request,
                [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f],
                "SSLRequest first"
            );
            sock.write_all(b"S").unwrap();
            let session = rustls::ServerConnection::new(config).unwrap();
            let mut tls = rustls::StreamOwned::new(session, sock);
            let mut got = vec![0u8; 16];
            match tls.read_exact(&mut got) {
                Ok(()) => got,
                Err(_) => Vec::new(),
            }
            // Dropping the stream closes the socket: the cancel's "delivered".
        });
        (addr, handle)
    }

    fn cancel_plan(pki: &Pki, dir: &Dir, host: &str) -> TlsPlan {
        let ca = dir.write("ca.crt", &pki.ca.pem());
        let settings = TlsSettings {
            sslmode: SslMode::VerifyFull,
            sslrootcert: Some(ca),
            sslsni: true,
            ..TlsSettings::default()
        };
        plan(&settings, &target(host), LOCAL).unwrap()
    }

    fn cancel_packet() -> Vec<u8> {
        let mut packet = Vec::new();
        crate::protocol::frontend::cancel_request(4242, &[1, 2, 3, 4], &mut packet).unwrap();
        packet
    }

    #[test]
    fn a_cancel_travels_over_tls_blocking() {
        let pki = Pki::new();
        let dir = Dir::new("cancel-blocking");
        let (addr, server) = tls_cancel_server(&pki);
        let token = CancelToken::new(Peer::Tcp(addr), 4242, vec![1, 2, 3, 4])
            .with_tls(Some(cancel_plan(&pki, &dir, "localhost")));
        token.cancel(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(server.join().unwrap(), cancel_packet());
    }

    #[test]
    fn a_cancel_travels_over_tls_on_the_reactor() {
        let pki = Pki::new();
        let dir = Dir::new("cancel-reactor");
        let (addr, server) = tls_cancel_server(&pki);
        let token = CancelToken::new(Peer::Tcp(addr), 4242, vec![1, 2, 3, 4])
            .with_tls(Some(cancel_plan(&pki, &dir, "127.0.0.1")));
        let mut reactor = crate::driver::Reactor::new().unwrap();
        reactor
            .run_cancel(&token, std::time::Duration::from_secs(10))
            .unwrap();
        assert_eq!(server.join().unwrap(), cancel_packet());
    }

    #[test]
    fn a_cancel_to_the_wrong_host_never_sends_the_key() {
        let pki = Pki::new();
        let dir = Dir::new("cancel-wrong");
        let (addr, server) = tls_cancel_server(&pki);
        let token = CancelToken::new(Peer::Tcp(addr), 4242, vec![1, 2, 3, 4])
            .with_tls(Some(cancel_plan(&pki, &dir, "elsewhere")));
        let e = token
            .cancel(std::time::Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(
            e.message(),
            format!(
                "connection to server at \"127.0.0.1\", port {} failed: server certificate for \"localhost\" (and 1 other name) does not match host name \"elsewhere\"",
                addr.port()
            )
        );
        assert_eq!(server.join().unwrap(), Vec::<u8>::new(), "no key sent");
    }

    /// A socket that writes one byte per call: the client sees the ciphertext cut at every place.
    struct Trickle(std::net::TcpStream);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(&buf[..buf.len().min(1)])
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.0.flush()
        }
    }

    /// A client connected with `sslmode=verify-full` to `host` at `addr`, trusting the root file
    /// `ca`.
    fn connect_verify_full(
        host: &str,
        addr: SocketAddr,
        ca: &str,
    ) -> Result<crate::driver::Client, Error> {
        let config = crate::conninfo::Config::parse(&format!(
            "host={host} hostaddr=127.0.0.1 port={} user=u dbname=d sslmode=verify-full sslrootcert={ca}",
            addr.port()
        ))
        .unwrap();
        let env = crate::conninfo::MapEnvironment::default();
        crate::driver::Client::connect_config(&config, &env)
    }

    /// A one-connection server speaking TLS after an SSLRequest: trust authentication, then one
    /// empty result per query, until Terminate. Returns the startup packet it received.
    fn tls_session_server(pki: &Pki) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        tls_session_server_with(pki, false)
    }

    /// As [`tls_session_server`]; with `trickle`, every byte the server sends is its own write.
    fn tls_session_server_with(
        pki: &Pki,
        trickle: bool,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let config = pki.server_config();
        let handle = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut request = [0u8; 8];
            sock.read_exact(&mut request).unwrap();
            assert_eq!(request, [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
            sock.write_all(b"S").unwrap();
            sock.set_nodelay(trickle).unwrap();
            let mut tls = rustls::StreamOwned::new(
                rustls::ServerConnection::new(config).unwrap(),
                Trickle(sock),
            );
            let mut len = [0u8; 4];
            if tls.read_exact(&mut len).is_err() {
                return Vec::new();
            }
            let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
            tls.read_exact(&mut startup).unwrap();
            let mut hello = Vec::new();
            hello.extend_from_slice(b"R\0\0\0\x08\0\0\0\0");
            hello.extend_from_slice(b"K\0\0\0\x0c\0\0\x10\x92\x01\x02\x03\x04");
            hello.extend_from_slice(b"Z\0\0\0\x05I");
            tls.write_all(&hello).unwrap();
            loop {
                let mut head = [0u8; 5];
                if tls.read_exact(&mut head).is_err() {
                    break;
                }
                let mut body =
                    vec![0u8; u32::from_be_bytes(head[1..].try_into().unwrap()) as usize - 4];
                tls.read_exact(&mut body).unwrap();
                match head[0] {
                    b'Q' => tls.write_all(b"I\0\0\0\x04Z\0\0\0\x05I").unwrap(),
                    _ => break,
                }
            }
            startup
        });
        (addr, handle)
    }

    #[test]
    fn a_session_runs_over_tls() {
        let pki = Pki::new();
        let dir = Dir::new("session");
        let ca = dir.write("ca.crt", &pki.ca.pem());
        let (addr, server) = tls_session_server(&pki);
        let mut client = connect_verify_full("localhost", addr, &ca).unwrap();
        assert!(client.ssl_in_use());
        assert!(client.conn().tls_in_use());
        assert_eq!(client.ssl_attribute("library").as_deref(), Some("rustls"));
        assert_eq!(client.ssl_attribute("protocol").as_deref(), Some("TLSv1.3"));
        assert!(client.ssl_attribute("cipher").unwrap().starts_with("TLS_"));
        assert_eq!(client.ssl_attribute("compression").as_deref(), Some("off"));
        assert_eq!(client.ssl_attribute("nonsense"), None);
        assert!(client.cancel_token().unwrap().uses_tls());
        let results = client.query("").unwrap();
        assert_eq!(results.len(), 1);
        drop(client);
        let startup = server.join().unwrap();
        assert!(
            startup.windows(2).any(|w| w == b"u\0"),
            "the StartupMessage arrived inside TLS"
        );
    }

    /// A handshake that never finishes: `connect_timeout` ends the attempt, and `prefer` does not
    /// retry in plain text (a timeout moves on to the next host in libpq).
    #[test]
    fn a_stalled_handshake_times_out_without_a_plaintext_retry() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut request = [0u8; 8];
            sock.read_exact(&mut request).unwrap();
            sock.write_all(b"S").unwrap();
            // Swallow the ClientHello and say nothing, until the client gives up.
            let mut sink = [0u8; 4096];
            while matches!(sock.read(&mut sink), Ok(n) if n > 0) {}
            listener
        });
        let config = crate::conninfo::Config::parse(&format!(
            "host=127.0.0.1 port={} user=u dbname=d sslmode=prefer connect_timeout=2",
            addr.port()
        ))
        .unwrap();
        let e = crate::driver::Client::connect_config(
            &config,
            &crate::conninfo::MapEnvironment::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            format!(
                "connection to server at \"127.0.0.1\", port {} failed: timeout expired",
                addr.port()
            )
        );
        // Every attempt has ended: a retry would be queued on the listener by now.
        let listener = server.join().unwrap();
        listener.set_nonblocking(true).unwrap();
        assert!(listener.accept().is_err(), "no second connection");
    }

    /// The handshake and the session survive ciphertext arriving a byte at a time.
    #[test]
    fn a_session_survives_ciphertext_cut_everywhere() {
        let pki = Pki::new();
        let dir = Dir::new("trickle");
        let ca = dir.write("ca.crt", &pki.ca.pem());
        let (addr, server) = tls_session_server_with(&pki, true);
        let mut client = connect_verify_full("localhost", addr, &ca).unwrap();
        assert!(client.ssl_in_use());
        for _ in 0..3 {
            assert_eq!(client.query("").unwrap().len(), 1);
        }
        drop(client);
        assert!(!server.join().unwrap().is_empty());
    }

    #[test]
    fn verify_full_refuses_another_host_with_libpq_text() {
        let pki = Pki::new();
        let dir = Dir::new("mismatch");
        let ca = dir.write("ca.crt", &pki.ca.pem());
        let (addr, server) = tls_session_server(&pki);
        let e = connect_verify_full("db.example", addr, &ca).unwrap_err();
        assert_eq!(
            e.message(),
            format!(
                "connection to server at \"db.example\" (127.0.0.1), port {} failed: server certificate for \"localhost\" (and 1 other name) does not match host name \"db.example\"",
                addr.port()
            )
        );
        assert_eq!(e.code(), Some("08001"));
        assert_eq!(
            server.join().unwrap(),
            Vec::<u8>::new(),
            "no StartupMessage sent"
        );
    }
}

//! The throwaway cluster's certificates, made at start with `rcgen` (nothing is committed, nothing
//! expires in the repository).
//!
//! Three unrelated certificate authorities:
//!
//! - *the CA* (ECDSA P-256, signatures with SHA-256, like most real servers' chains — and cheap to
//!   verify, so TLS benchmarks measure the client rather than P-384 arithmetic). It signs the server
//!   certificates of [`ServerCert`] but two, the client certificates for `cert_user` and a CRL
//!   revoking [`ServerCert::Revoked`] and the revoked client certificate;
//! - *the other CA* (ECDSA P-256, SHA-256), which signs [`ServerCert::OtherCa`] and a client
//!   certificate the server refuses;
//! - *the SHA-384 CA* (ECDSA P-384), which signs only [`ServerCert::Sha384`] with ECDSA-SHA384: the
//!   SHA-384 path of `tls-server-end-point` channel binding.
//!
//! Leaf keys are ECDSA P-256.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber, date_time_ymd,
};

use super::{Role, RunAs, io_error};
use crate::{Error, ErrorKind};

/// The host name the server certificates are made for.
pub(super) const HOST_NAME: &str = "localhost";
/// The DNS name pattern of [`ServerCert::Wildcard`].
const WILDCARD: &str = "*.pgdblink.test";
/// Serial number of [`ServerCert::Revoked`], listed in the CA's CRL.
const REVOKED_SERVER_SERIAL: u64 = 0x5e_0d;
/// Serial number of the revoked client certificate, listed in the CA's CRL.
const REVOKED_CLIENT_SERIAL: u64 = 0xc1_0d;

/// A server certificate the TLS cluster can present (see [`Cluster::set_server_cert`]).
///
/// All but [`ServerCert::OtherCa`] and [`ServerCert::Sha384`] are signed by the CA
/// ([`TlsFiles::ca_cert`]), with ECDSA-SHA256.
///
/// [`Cluster::set_server_cert`]: super::Cluster::set_server_cert
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerCert {
    /// The default: CN `localhost`, subject alternative names `DNS:localhost` and `IP:127.0.0.1`.
    Full,
    /// CN `localhost`, one subject alternative name `DNS:localhost` (no IP address: `verify-full`
    /// with `host=127.0.0.1` fails).
    NameOnly,
    /// CN `localhost` and no subject alternative names at all (libpq then checks the CN).
    CnOnly,
    /// CN `localhost`, one subject alternative name `DNS:*.pgdblink.test` (a DNS SAN exists, so the
    /// CN is ignored: `host=localhost` fails, `host=db.pgdblink.test hostaddr=127.0.0.1` passes).
    Wildcard,
    /// As [`ServerCert::Full`] with another serial number, revoked by the CA's CRL
    /// ([`TlsFiles::crl`]).
    Revoked,
    /// As [`ServerCert::Full`] but signed by the other CA ([`TlsFiles::other_ca_cert`], ECDSA with
    /// SHA-256): fails verification against the CA, passes against the other CA.
    OtherCa,
    /// As [`ServerCert::Full`] but signed by the SHA-384 CA ([`TlsFiles::sha384_ca_cert`], ECDSA
    /// P-384 with SHA-384): its `tls-server-end-point` channel binding hashes with SHA-384.
    Sha384,
}

impl ServerCert {
    /// Every server certificate.
    pub const ALL: [ServerCert; 7] = [
        ServerCert::Full,
        ServerCert::NameOnly,
        ServerCert::CnOnly,
        ServerCert::Wildcard,
        ServerCert::Revoked,
        ServerCert::OtherCa,
        ServerCert::Sha384,
    ];

    /// The file-name stem of the certificate's own files, e.g. `"server-name-only"`.
    fn stem(self) -> &'static str {
        match self {
            ServerCert::Full => "server-full",
            ServerCert::NameOnly => "server-name-only",
            ServerCert::CnOnly => "server-cn-only",
            ServerCert::Wildcard => "server-wildcard",
            ServerCert::Revoked => "server-revoked",
            ServerCert::OtherCa => "server-other-ca",
            ServerCert::Sha384 => "server-sha384",
        }
    }

    /// The subject alternative names.
    fn sans(self) -> Vec<SanType> {
        let dns = |name: &str| SanType::DnsName(name.try_into().expect("an IA5 name"));
        let ip = SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        match self {
            ServerCert::Full | ServerCert::Revoked | ServerCert::OtherCa | ServerCert::Sha384 => {
                vec![dns(HOST_NAME), ip]
            }
            ServerCert::NameOnly => vec![dns(HOST_NAME)],
            ServerCert::CnOnly => Vec::new(),
            ServerCert::Wildcard => vec![dns(WILDCARD)],
        }
    }
}

/// The TLS files of a cluster started with [`ClusterOptions::tls`], all PEM, in [`TlsFiles::dir`].
///
/// The server uses [`server_cert`](TlsFiles::server_cert)/[`server_key`](TlsFiles::server_key)
/// (`ssl_cert_file`, `ssl_key_file`), trusts [`ca_cert`](TlsFiles::ca_cert) for client certificates
/// (`ssl_ca_file`) and checks them against [`crl`](TlsFiles::crl) (`ssl_crl_file`). Client keys are
/// mode 0600 and owned by this process's user.
///
/// [`ClusterOptions::tls`]: super::ClusterOptions::tls
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The directory holding every file below.
    pub dir: PathBuf,
    /// The CA's certificate (`ca.crt`): the `sslrootcert` that verifies the server.
    pub ca_cert: PathBuf,
    /// The other, unrelated CA's certificate (`other-ca.crt`): a wrong `sslrootcert`.
    pub other_ca_cert: PathBuf,
    /// The SHA-384 CA's certificate (`sha384-ca.crt`, ECDSA P-384): the `sslrootcert` that verifies
    /// [`ServerCert::Sha384`], and nothing else.
    pub sha384_ca_cert: PathBuf,
    /// The certificate the server presents now (`server.crt`, a copy of one of [`ServerCert`]; the
    /// default [`ServerCert::Full`]).
    pub server_cert: PathBuf,
    /// The server's key (`server.key`, 0600, owned by the server's user).
    pub server_key: PathBuf,
    /// A client certificate with CN `cert_user` signed by the CA (`client.crt`), for the `cert`
    /// authentication of [`Role::Cert`].
    pub client_cert: PathBuf,
    /// The key of [`client_cert`](TlsFiles::client_cert) (`client.key`, mode 0600).
    pub client_key: PathBuf,
    /// A client certificate with CN `cert_user` signed by the CA and revoked by its CRL
    /// (`client-revoked.crt`); the server refuses it.
    pub revoked_client_cert: PathBuf,
    /// The key of [`revoked_client_cert`](TlsFiles::revoked_client_cert) (mode 0600).
    pub revoked_client_key: PathBuf,
    /// A client certificate with CN `cert_user` signed by the other CA (`client-other-ca.crt`); the
    /// server, which trusts only the CA, refuses it.
    pub other_ca_client_cert: PathBuf,
    /// The key of [`other_ca_client_cert`](TlsFiles::other_ca_client_cert) (mode 0600).
    pub other_ca_client_key: PathBuf,
    /// The CA's CRL (`ca.crl`), revoking [`ServerCert::Revoked`] and
    /// [`revoked_client_cert`](TlsFiles::revoked_client_cert).
    pub crl: PathBuf,
    /// A CRL of the other CA revoking nothing (`other-ca.crl`): a CRL that belongs to a different
    /// CA than the server's.
    pub other_ca_crl: PathBuf,
    /// The PEM of `client_key`, for [`TlsFiles::write_client_key`].
    client_key_pem: String,
}

impl TlsFiles {
    /// The file of `which`'s certificate (its own copy: `server-<name>.crt`), e.g. to compare with
    /// what the server presents.
    pub fn server_cert_file(&self, which: ServerCert) -> PathBuf {
        self.dir.join(format!("{}.crt", which.stem()))
    }

    /// The file of `which`'s private key (`server-<name>.key`, 0600).
    pub fn server_key_file(&self, which: ServerCert) -> PathBuf {
        self.dir.join(format!("{}.key", which.stem()))
    }

    /// Writes the key of [`client_cert`](TlsFiles::client_cert) to `path` with permissions `mode`
    /// (exactly, whatever the umask), replacing any file there: for libpq's key-permission rule
    /// (`0644` is refused, `0600` accepted) and for a default `~/.postgresql/postgresql.key`.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write_client_key(&self, path: &Path, mode: u32) -> Result<(), Error> {
        let _ = fs::remove_file(path);
        write_file(path, self.client_key_pem.as_bytes(), mode)
    }

    /// The server certificate's serial number that the CRL revokes ([`ServerCert::Revoked`]).
    pub fn revoked_server_serial(&self) -> u64 {
        REVOKED_SERVER_SERIAL
    }

    /// The revoked client certificate's serial number.
    pub fn revoked_client_serial(&self) -> u64 {
        REVOKED_CLIENT_SERIAL
    }

    /// Makes every certificate, key and CRL in `dir` (created, 0700): what the server reads belongs
    /// to `run_as` when given; `ServerCert::Full` becomes `server.crt`/`server.key`.
    pub(super) fn generate(dir: &Path, run_as: Option<RunAs>) -> Result<TlsFiles, Error> {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_error(&format!("creating {}", dir.display()), e))?;
        chown(dir, run_as)?;

        let ca = Authority::new("pgdblink test CA", &rcgen::PKCS_ECDSA_P256_SHA256, 1)?;
        let other = Authority::new("pgdblink other CA", &rcgen::PKCS_ECDSA_P256_SHA256, 2)?;
        let sha384 = Authority::new("pgdblink SHA-384 CA", &rcgen::PKCS_ECDSA_P384_SHA384, 3)?;
        let cert_file = |name: &str, pem: &str| -> Result<PathBuf, Error> {
            let path = dir.join(name);
            write_file(&path, pem.as_bytes(), 0o644)?;
            Ok(path)
        };
        // Keys the server reads: 0600 and the server's; keys the client reads: 0600 and ours.
        let key_file = |name: &str, key: &KeyPair, server: bool| -> Result<PathBuf, Error> {
            let path = dir.join(name);
            write_file(&path, key.serialize_pem().as_bytes(), 0o600)?;
            if server {
                chown(&path, run_as)?;
            }
            Ok(path)
        };

        let ca_cert = cert_file("ca.crt", &ca.cert_pem)?;
        let other_ca_cert = cert_file("other-ca.crt", &other.cert_pem)?;
        let sha384_ca_cert = cert_file("sha384-ca.crt", &sha384.cert_pem)?;

        for (which, serial) in ServerCert::ALL.into_iter().zip(0x101..) {
            let issuer = match which {
                ServerCert::OtherCa => &other,
                ServerCert::Sha384 => &sha384,
                _ => &ca,
            };
            let serial = if which == ServerCert::Revoked {
                REVOKED_SERVER_SERIAL
            } else {
                serial
            };
            let (cert, key) = issuer.leaf(
                HOST_NAME,
                which.sans(),
                serial,
                ExtendedKeyUsagePurpose::ServerAuth,
            )?;
            cert_file(&format!("{}.crt", which.stem()), &cert)?;
            key_file(&format!("{}.key", which.stem()), &key, true)?;
            if which == ServerCert::Full {
                cert_file("server.crt", &cert)?;
                key_file("server.key", &key, true)?;
            }
        }

        let client = Role::Cert.user();
        let auth = ExtendedKeyUsagePurpose::ClientAuth;
        let (cert, key) = ca.leaf(client, Vec::new(), 0x201, auth.clone())?;
        let client_cert = cert_file("client.crt", &cert)?;
        let client_key = key_file("client.key", &key, false)?;
        let client_key_pem = key.serialize_pem();
        let (cert, key) = ca.leaf(client, Vec::new(), REVOKED_CLIENT_SERIAL, auth.clone())?;
        let revoked_client_cert = cert_file("client-revoked.crt", &cert)?;
        let revoked_client_key = key_file("client-revoked.key", &key, false)?;
        let (cert, key) = other.leaf(client, Vec::new(), 0x202, auth)?;
        let other_ca_client_cert = cert_file("client-other-ca.crt", &cert)?;
        let other_ca_client_key = key_file("client-other-ca.key", &key, false)?;

        let crl = cert_file(
            "ca.crl",
            &ca.crl(&[REVOKED_SERVER_SERIAL, REVOKED_CLIENT_SERIAL])?,
        )?;
        let other_ca_crl = cert_file("other-ca.crl", &other.crl(&[])?)?;

        Ok(TlsFiles {
            dir: dir.to_owned(),
            ca_cert,
            other_ca_cert,
            sha384_ca_cert,
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert,
            client_key,
            revoked_client_cert,
            revoked_client_key,
            other_ca_client_cert,
            other_ca_client_key,
            crl,
            other_ca_crl,
            client_key_pem,
        })
    }

    /// Makes `which` the server's certificate: replaces `server.crt` and `server.key` (each by a
    /// rename, so the server never reads half a file). The server reads them at its next reload.
    pub(super) fn install_server_cert(
        &self,
        which: ServerCert,
        run_as: Option<RunAs>,
    ) -> Result<(), Error> {
        for (from, to) in [
            (self.server_cert_file(which), &self.server_cert),
            (self.server_key_file(which), &self.server_key),
        ] {
            let tmp = to.with_extension("tmp");
            let bytes =
                fs::read(&from).map_err(|e| io_error(&format!("reading {}", from.display()), e))?;
            let _ = fs::remove_file(&tmp);
            write_file(&tmp, &bytes, 0o600)?;
            chown(&tmp, run_as)?;
            if to == &self.server_cert {
                set_mode(&tmp, 0o644)?;
            }
            fs::rename(&tmp, to)
                .map_err(|e| io_error(&format!("renaming {}", tmp.display()), e))?;
        }
        Ok(())
    }
}

/// A certificate authority: its certificate and what signs with its key.
struct Authority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    fn new(
        name: &str,
        alg: &'static rcgen::SignatureAlgorithm,
        serial: u64,
    ) -> Result<Authority, Error> {
        let key = KeyPair::generate_for(alg).map_err(rcgen_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.self_signed(&key).map_err(rcgen_error)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A leaf certificate (PEM) and its new P-256 key.
    fn leaf(
        &self,
        cn: &str,
        sans: Vec<SanType>,
        serial: u64,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<(String, KeyPair), Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(rcgen_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.serial_number = Some(SerialNumber::from(serial));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(rcgen_error)?;
        Ok((cert.pem(), key))
    }

    /// A CRL (PEM) revoking `serials`, valid from 2020 to the year 4000.
    fn crl(&self, serials: &[u64]) -> Result<String, Error> {
        let when = date_time_ymd(2020, 1, 1);
        let params = CertificateRevocationListParams {
            this_update: when,
            next_update: date_time_ymd(4000, 1, 1),
            crl_number: SerialNumber::from(1),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|&s| RevokedCertParams {
                    serial_number: SerialNumber::from(s),
                    revocation_time: when,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .and_then(|crl| crl.pem())
            .map_err(rcgen_error)
    }
}

fn rcgen_error(e: rcgen::Error) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("making the test certificates (rcgen): {e}"),
    )
}

/// Creates `path` (it must not exist) with `bytes` and exactly `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| io_error(&format!("writing {}", path.display()), e))?;
    // The umask may have taken bits away.
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(&format!("chmod {}", path.display()), e))
}

fn chown(path: &Path, run_as: Option<RunAs>) -> Result<(), Error> {
    match run_as {
        Some(user) => std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| io_error(&format!("chown {}", path.display()), e)),
        None => Ok(()),
    }
}

//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it, client side.
//!
//! The exchange, with the messages carried by the protocol layer:
//!
//! ```text
//! S: AuthenticationSASL            mechanisms   -> choose_sasl_mechanism()
//! C: SASLInitialResponse           client-first <- ScramClient::client_first_message()
//! S: AuthenticationSASLContinue    server-first -> ScramClient::handle_server_first() -> client-final
//! C: SASLResponse                  client-final
//! S: AuthenticationSASLFinal       server-final -> ScramClient::handle_server_final()
//! S: AuthenticationOk
//! ```
//!
//! Nothing here touches a socket, a clock or a random-number generator: the client nonce is handed
//! in by the caller ([`ScramClient::nonce_from_bytes`] encodes 18 random bytes the way libpq does).
//!
//! Channel binding (`SCRAM-SHA-256-PLUS`, RFC 5929 `tls-server-end-point`): over TLS the caller
//! hands in the binding data (the hash of the server certificate, computed by the transport) and
//! [`select_sasl_mechanism`] picks the mechanism and the gs2 header the way libpq does: `p=...`
//! with PLUS, `y,,` when the client could bind but the server did not offer PLUS, `n,,` without
//! TLS or with `channel_binding=disable`.
//!
//! ```
//! use pgdblink::auth::{ScramClient, ScramLimits};
//!
//! // The PostgreSQL 15 exchange for user `scram_user`, password `pencil`.
//! let mut scram = ScramClient::new(b"pencil", "xV3yFJ/WUxMSClp1AbComiHv", ScramLimits::default());
//! assert_eq!(scram.client_first_message(), b"n,,n=,r=xV3yFJ/WUxMSClp1AbComiHv");
//! let client_final = scram
//!     .handle_server_first(
//!         b"r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,s=bE2m1hdqDMcQinW6Q5OfJw==,i=4096",
//!     )
//!     .unwrap();
//! assert!(client_final.ends_with(b",p=yBaOHC359dYM52Zc1ffpypveTi/BNwdJBp4uPpg72Fk="));
//! scram
//!     .handle_server_final(b"v=rmRuWbSMjZYURbcfW8suJdFJrVnkq78H0D1IkIwIKgs=")
//!     .unwrap();
//! assert!(scram.is_complete());
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

pub use super::saslprep::saslprep_password;
use crate::{Error, ErrorKind};

/// The SASL mechanism name of SCRAM with SHA-256 and no channel binding.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The SASL mechanism name of SCRAM with SHA-256 and channel binding (`tls-server-end-point`).
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Length of SHA-256 output, and so of every SCRAM key, proof and signature.
const KEY_LEN: usize = 32;

/// What the client's gs2 header says about channel binding (RFC 5802 section 7, `gs2-cbind-flag`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ScramBinding {
    /// `n,,`: the client does not bind (no TLS, or `channel_binding=disable`).
    #[default]
    Unsupported,
    /// `y,,`: the client could bind but the server did not offer `SCRAM-SHA-256-PLUS` (over TLS a
    /// server that does support it then knows PLUS was stripped on the way).
    NotOffered,
    /// `p=tls-server-end-point,,`: `SCRAM-SHA-256-PLUS` with this binding data, the hash of the
    /// server's certificate (RFC 5929 section 4.1).
    TlsServerEndPoint(Vec<u8>),
}

impl ScramBinding {
    /// The gs2 header this binding starts client-first with.
    pub fn gs2_header(&self) -> &'static str {
        match self {
            ScramBinding::Unsupported => "n,,",
            ScramBinding::NotOffered => "y,,",
            ScramBinding::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    /// The `c=` attribute's value in client-final: base64 of the gs2 header followed by the binding
    /// data (`biws` for `n,,`, `eSws` for `y,,`).
    pub fn cbind_input(&self) -> String {
        let mut input = self.gs2_header().as_bytes().to_vec();
        if let ScramBinding::TlsServerEndPoint(data) = self {
            input.extend_from_slice(data);
        }
        BASE64.encode(input)
    }

    /// The SASL mechanism that goes with this binding.
    pub fn mechanism(&self) -> &'static str {
        match self {
            ScramBinding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
            _ => SCRAM_SHA_256,
        }
    }
}

fn auth_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Auth, message)
}

/// Overwrites a secret buffer with zeros (with `zeroize`, whose writes the compiler cannot elide).
fn wipe(buf: &mut [u8]) {
    buf.zeroize();
}

/// Compares two byte strings without an early exit on the first difference. Slices of different
/// lengths are unequal (the lengths are not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// libpq's `channel_binding` connection option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChannelBinding {
    /// `disable`: never use channel binding.
    Disable,
    /// `prefer` (the default): use channel binding when TLS is in use and the server offers it.
    #[default]
    Prefer,
    /// `require`: fail unless the server authenticates with channel binding.
    Require,
}

/// Picks the SASL mechanism from the list of an `AuthenticationSASL` message, the way libpq's
/// `pg_SASL_init` does: `SCRAM-SHA-256-PLUS` when it is offered over TLS and `channel_binding` is
/// not `disable`, else `SCRAM-SHA-256`.
///
/// `offered` holds the mechanism names in the server's order (without their NUL terminators; an
/// empty name ends the list, as on the wire). `tls` says whether the connection is encrypted.
/// [`select_sasl_mechanism`] also decides the gs2 header and handles a certificate without binding
/// data.
///
/// Errors, with libpq's texts, in the order libpq checks them:
/// * `channel_binding=require` without TLS: `channel binding required, but SSL not in use`.
/// * `SCRAM-SHA-256-PLUS` offered over a plaintext connection (TLS stripped on the way?):
///   `server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection`.
/// * No known mechanism: `none of the server's SASL authentication mechanisms are supported`.
/// * `channel_binding=require` and no `SCRAM-SHA-256-PLUS`: `channel binding is required, but
///   server did not offer an authentication method that supports channel binding`.
///
/// ```
/// use pgdblink::auth::{choose_sasl_mechanism, ChannelBinding, SCRAM_SHA_256};
/// let offered: [&[u8]; 1] = [b"SCRAM-SHA-256"];
/// assert_eq!(choose_sasl_mechanism(offered, ChannelBinding::Prefer, false).unwrap(), SCRAM_SHA_256);
/// ```
pub fn choose_sasl_mechanism<'a>(
    offered: impl IntoIterator<Item = &'a [u8]>,
    channel_binding: ChannelBinding,
    tls: bool,
) -> Result<&'static str, Error> {
    if channel_binding == ChannelBinding::Require && !tls {
        return Err(auth_error("channel binding required, but SSL not in use"));
    }
    let mut selected = None;
    for mechanism in offered {
        if mechanism.is_empty() {
            break;
        }
        if mechanism == SCRAM_SHA_256_PLUS.as_bytes() {
            if !tls {
                return Err(auth_error(
                    "server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection",
                ));
            }
            if channel_binding != ChannelBinding::Disable {
                selected = Some(SCRAM_SHA_256_PLUS);
            }
        } else if mechanism == SCRAM_SHA_256.as_bytes() && selected.is_none() {
            selected = Some(SCRAM_SHA_256);
        }
    }
    let Some(selected) = selected else {
        return Err(auth_error(
            "none of the server's SASL authentication mechanisms are supported",
        ));
    };
    if channel_binding == ChannelBinding::Require && selected != SCRAM_SHA_256_PLUS {
        return Err(auth_error(
            "channel binding is required, but server did not offer an authentication method that \
             supports channel binding",
        ));
    }
    Ok(selected)
}

/// Picks the mechanism and the gs2 header for an `AuthenticationSASL` message: the checks and choice
/// of [`choose_sasl_mechanism`], then the binding, as libpq's `pg_fe_scram_init` sets it:
/// `p=tls-server-end-point` with PLUS, `y,,` over TLS when binding is not disabled, `n,,`
/// otherwise.
///
/// `end_point` is the `tls-server-end-point` binding data of the TLS connection, `None` without TLS
/// or when the server certificate's signature algorithm names no hash (Ed25519, Ed448). In that
/// last case pgdblink departs from libpq (which fails even under `prefer`): with `prefer` it
/// authenticates with `SCRAM-SHA-256` and `n,,` (which the server accepts, as the client does not
/// bind), and with `require` it fails with `channel binding is required, but client does not
/// support it`.
///
/// ```
/// use pgdblink::auth::{select_sasl_mechanism, ChannelBinding, ScramBinding};
/// let offered: [&[u8]; 2] = [b"SCRAM-SHA-256-PLUS", b"SCRAM-SHA-256"];
/// let binding = select_sasl_mechanism(offered, ChannelBinding::Prefer, true, Some(&[7; 32])).unwrap();
/// assert_eq!(binding, ScramBinding::TlsServerEndPoint(vec![7; 32]));
/// assert_eq!(binding.mechanism(), "SCRAM-SHA-256-PLUS");
/// ```
pub fn select_sasl_mechanism<'a>(
    offered: impl IntoIterator<Item = &'a [u8]>,
    channel_binding: ChannelBinding,
    tls: bool,
    end_point: Option<&[u8]>,
) -> Result<ScramBinding, Error> {
    let offered: Vec<&[u8]> = offered.into_iter().take_while(|m| !m.is_empty()).collect();
    let mechanism = choose_sasl_mechanism(offered.iter().copied(), channel_binding, tls)?;
    if mechanism == SCRAM_SHA_256_PLUS {
        return match end_point {
            Some(data) => Ok(ScramBinding::TlsServerEndPoint(data.to_vec())),
            None if channel_binding == ChannelBinding::Require => Err(auth_error(
                "channel binding is required, but client does not support it",
            )),
            None if offered.contains(&SCRAM_SHA_256.as_bytes()) => Ok(ScramBinding::Unsupported),
            None => Err(auth_error(
                "none of the server's SASL authentication mechanisms are supported",
            )),
        };
    }
    if tls && channel_binding != ChannelBinding::Disable {
        Ok(ScramBinding::NotOffered)
    } else {
        Ok(ScramBinding::Unsupported)
    }
}

/// Bounds on what a server may ask of the client during SCRAM.
#[derive(Clone, Copy, Debug)]
pub struct ScramLimits {
    /// The largest PBKDF2 iteration count obeyed. A server asking for more is refused with
    /// `SCRAM iteration count N exceeds the limit of M`, so that a hostile or misconfigured server
    /// cannot pin the client's CPU. PostgreSQL's default is 4096. Default: 1,000,000.
    pub max_iterations: u32,
}

impl ScramLimits {
    /// The default [`max_iterations`](ScramLimits::max_iterations).
    pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;
}

impl Default for ScramLimits {
    fn default() -> ScramLimits {
        ScramLimits {
            max_iterations: ScramLimits::DEFAULT_MAX_ITERATIONS,
        }
    }
}

/// The keys SCRAM derives from a password, a salt and an iteration count.
///
/// `ClientKey = HMAC(SaltedPassword, "Client Key")`, `StoredKey = SHA-256(ClientKey)`,
/// `ServerKey = HMAC(SaltedPassword, "Server Key")`, where `SaltedPassword` is PBKDF2-HMAC-SHA-256.
/// They are kept apart from [`ScramClient`] so that [`ScramKeyCache`] can skip PBKDF2 on reconnect.
/// `Debug` does not show them, and they are overwritten with zeros when dropped.
#[derive(Clone)]
pub struct ScramKeys {
    client_key: [u8; KEY_LEN],
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl ScramKeys {
    /// `ClientKey`: proves knowledge of the password (it is what PG18's `scram_client_key` holds).
    pub fn client_key(&self) -> &[u8; KEY_LEN] {
        &self.client_key
    }

    /// `StoredKey = SHA-256(ClientKey)`, what the server stores.
    pub fn stored_key(&self) -> &[u8; KEY_LEN] {
        &self.stored_key
    }

    /// `ServerKey`: checks the server's signature (PG18's `scram_server_key`).
    pub fn server_key(&self) -> &[u8; KEY_LEN] {
        &self.server_key
    }
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScramKeys { .. }")
    }
}

impl Drop for ScramKeys {
    fn drop(&mut self) {
        wipe(&mut self.client_key);
        wipe(&mut self.stored_key);
        wipe(&mut self.server_key);
    }
}

/// Derives [`ScramKeys`] from an already SASLprep-ed password (see
/// [`saslprep_password`]), the salt and the iteration count.
///
/// This is the expensive step: `iterations` rounds of HMAC-SHA-256. The caller bounds `iterations`
/// ([`ScramClient`] refuses 0 and counts above [`ScramLimits::max_iterations`]).
pub fn derive_keys(prepared_password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
    let mut salted =
        pbkdf2::pbkdf2_hmac_array::<Sha256, KEY_LEN>(prepared_password, salt, iterations);
    let client_key = hmac_sha256(&salted, &[b"Client Key"]);
    let server_key = hmac_sha256(&salted, &[b"Server Key"]);
    wipe(&mut salted);
    ScramKeys {
        client_key,
        stored_key: Sha256::digest(client_key).into(),
        server_key,
    }
}

/// A small least-recently-used cache of [`ScramKeys`], so that reconnecting with the same password to
/// a server with the same salt and iteration count skips PBKDF2.
///
/// Entries are keyed by the SHA-256 of the prepared password, the salt and the iteration count; the
/// password itself is never stored. The keys in it are as sensitive as the password (the client key
/// alone logs in), so keep the cache no longer than the passwords it serves. `Debug` shows only the
/// sizes.
pub struct ScramKeyCache {
    capacity: usize,
    /// Least recently used first.
    entries: Vec<CacheEntry>,
}

struct CacheEntry {
    /// As good as the password to an offline guesser: wiped on drop.
    password_hash: [u8; KEY_LEN],
    salt: Vec<u8>,
    iterations: u32,
    keys: ScramKeys,
}

impl Drop for CacheEntry {
    fn drop(&mut self) {
        wipe(&mut self.password_hash);
    }
}

impl ScramKeyCache {
    /// An empty cache holding at most `capacity` entries. A capacity of 0 disables caching.
    pub fn new(capacity: usize) -> ScramKeyCache {
        ScramKeyCache {
            capacity,
            entries: Vec::new(),
        }
    }

    /// The most entries the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many entries the cache holds now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every entry (their keys are wiped).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The keys for (`prepared_password`, `salt`, `iterations`): from the cache when present,
    /// otherwise derived with [`derive_keys`] and remembered, evicting the least recently used entry
    /// when full.
    pub fn get_or_derive(
        &mut self,
        prepared_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramKeys {
        let password_hash: Zeroizing<[u8; KEY_LEN]> =
            Zeroizing::new(Sha256::digest(prepared_password).into());
        let found = self.entries.iter().position(|e| {
            e.iterations == iterations && e.salt == salt && e.password_hash == *password_hash
        });
        if let Some(index) = found {
            let entry = self.entries.remove(index);
            let keys = entry.keys.clone();
            self.entries.push(entry);
            return keys;
        }
        let keys = derive_keys(prepared_password, salt, iterations);
        if self.capacity > 0 {
            if self.entries.len() >= self.capacity {
                self.entries.remove(0);
            }
            self.entries.push(CacheEntry {
                password_hash: *password_hash,
                salt: salt.to_vec(),
                iterations,
                keys: keys.clone(),
            });
        }
        keys
    }
}

impl fmt::Debug for ScramKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeyCache")
            .field("capacity", &self.capacity)
            .field("len", &self.entries.len())
            .finish()
    }
}

/// Where a [`ScramClient`] stands in the exchange.
enum State {
    /// client-first may be sent; waiting for server-first.
    Initial,
    /// client-final was produced; waiting for server-final, whose signature must equal this.
    ProofSent { expected_signature: [u8; KEY_LEN] },
    /// The server's signature was verified.
    Complete,
    /// A step failed; every later step returns the same error.
    Failed(Error),
}

/// The client side of one SCRAM-SHA-256 or SCRAM-SHA-256-PLUS exchange, as a sans-IO state machine.
///
/// Call [`client_first_message`](ScramClient::client_first_message) for the `SASLInitialResponse`,
/// [`handle_server_first`](ScramClient::handle_server_first) with the data of
/// `AuthenticationSASLContinue` (it returns the `SASLResponse` data), then
/// [`handle_server_final`](ScramClient::handle_server_final) with the data of
/// `AuthenticationSASLFinal`. Steps out of order return an error; after any error the client is
/// finished and returns that error again. Errors carry libpq's texts and [`ErrorKind::Auth`].
///
/// `Debug` shows neither the password nor any key.
pub struct ScramClient {
    /// The SASLprep-ed password; wiped once the keys are derived, and on drop.
    password: Zeroizing<Vec<u8>>,
    client_nonce: String,
    /// `client-first-message-bare`: `n=<user>,r=<client nonce>`.
    client_first_bare: String,
    /// The gs2 header and channel-binding data.
    binding: ScramBinding,
    limits: ScramLimits,
    state: State,
}

impl ScramClient {
    /// A new exchange for `password` (SASLprep is applied here, see
    /// [`saslprep_password`]) with the printable client `nonce`.
    ///
    /// The nonce must be printable ASCII without `,` (RFC 5802); libpq and
    /// [`nonce_from_bytes`](ScramClient::nonce_from_bytes) use 24 base64 characters. The user name
    /// in client-first is left empty, as libpq does: the server takes the startup packet's user.
    pub fn new(password: &[u8], nonce: &str, limits: ScramLimits) -> ScramClient {
        ScramClient::with_user(password, "", nonce, limits)
    }

    /// As [`new`](ScramClient::new) with a user name in client-first (escaped per RFC 5802). Only
    /// the RFC's test vectors need it; PostgreSQL ignores the name.
    pub(crate) fn with_user(
        password: &[u8],
        user: &str,
        nonce: &str,
        limits: ScramLimits,
    ) -> ScramClient {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            password: Zeroizing::new(saslprep_password(password).into_owned()),
            client_nonce: nonce.to_owned(),
            client_first_bare: format!("n={user},r={nonce}"),
            binding: ScramBinding::Unsupported,
            limits,
            state: State::Initial,
        }
    }

    /// The same exchange with `binding` in the gs2 header (and, for PLUS, its data in client-final's
    /// `c=`). The mechanism to name in `SASLInitialResponse` is [`ScramBinding::mechanism`].
    pub fn with_binding(mut self, binding: ScramBinding) -> ScramClient {
        self.binding = binding;
        self
    }

    /// The channel binding of this exchange.
    pub fn binding(&self) -> &ScramBinding {
        &self.binding
    }

    /// Whether the exchange completed with channel binding (`SCRAM-SHA-256-PLUS`, server signature
    /// verified): what `channel_binding=require` asks for at `AuthenticationOk`.
    pub fn is_channel_bound(&self) -> bool {
        self.is_complete() && matches!(self.binding, ScramBinding::TlsServerEndPoint(_))
    }

    /// The client nonce libpq would build from 18 random bytes: their base64, 24 characters.
    pub fn nonce_from_bytes(raw: &[u8; 18]) -> String {
        BASE64.encode(raw)
    }

    /// The client-first message, `<gs2 header>n=,r=<nonce>` (`n,,n=,r=<nonce>` without binding):
    /// the data of the `SASLInitialResponse`.
    pub fn client_first_message(&self) -> Vec<u8> {
        format!("{}{}", self.binding.gs2_header(), self.client_first_bare).into_bytes()
    }

    /// Handles the server-first message (the data of `AuthenticationSASLContinue`) and returns the
    /// client-final message `c=<cbind>,r=<nonce>,p=<proof>` to send in a `SASLResponse` (`c=biws`
    /// without binding; see [`ScramBinding::cbind_input`]).
    ///
    /// The message must be `r=<nonce>,s=<salt>,i=<count>` in that order. The nonce must start with
    /// the client's, the salt must be non-empty base64 and the count an integer from 1 to
    /// [`ScramLimits::max_iterations`]. This runs PBKDF2 with that count.
    pub fn handle_server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, Error> {
        self.server_first(data, None)
    }

    /// As [`handle_server_first`](ScramClient::handle_server_first), taking the keys from `cache`
    /// when this password, salt and iteration count were seen before, and storing them otherwise.
    pub fn handle_server_first_cached(
        &mut self,
        data: &[u8],
        cache: &mut ScramKeyCache,
    ) -> Result<Vec<u8>, Error> {
        self.server_first(data, Some(cache))
    }

    /// Handles the server-final message (the data of `AuthenticationSASLFinal`): `v=<signature>`
    /// is checked against the expected server signature in constant time; `e=<error>` is the
    /// server's refusal.
    pub fn handle_server_final(&mut self, data: &[u8]) -> Result<(), Error> {
        let expected = match &self.state {
            State::ProofSent { expected_signature } => *expected_signature,
            State::Initial => {
                return Err(self.fail(auth_error(
                    "AuthenticationSASLFinal received from server, but SASL authentication was \
                     not completed",
                )));
            }
            State::Complete => return Err(auth_error("invalid SCRAM exchange state")),
            State::Failed(error) => return Err(error.clone()),
        };
        match verify_server_final(data, &expected) {
            Ok(()) => {
                self.state = State::Complete;
                Ok(())
            }
            Err(error) => Err(self.fail(error)),
        }
    }

    /// Whether the exchange finished with the server's signature verified. Only then has the server
    /// proved that it knows the password; the caller should not accept `AuthenticationOk` after a
    /// SCRAM exchange that is not complete.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    fn fail(&mut self, error: Error) -> Error {
        self.state = State::Failed(error.clone());
        self.password.zeroize();
        error
    }

    fn server_first(
        &mut self,
        data: &[u8],
        cache: Option<&mut ScramKeyCache>,
    ) -> Result<Vec<u8>, Error> {
        match &self.state {
            State::Initial => {}
            State::Failed(error) => return Err(error.clone()),
            State::ProofSent { .. } | State::Complete => {
                return Err(auth_error("invalid SCRAM exchange state"));
            }
        }
        let first = match parse_server_first(data, self.client_nonce.as_bytes(), self.limits) {
            Ok(first) => first,
            Err(error) => return Err(self.fail(error)),
        };
        let keys = match cache {
            Some(cache) => cache.get_or_derive(&self.password, &first.salt, first.iterations),
            None => derive_keys(&self.password, &first.salt, first.iterations),
        };
        self.password.zeroize();

        // `first.nonce` is printable ASCII (checked while parsing).
        let mut client_final = format!("c={},r=", self.binding.cbind_input()).into_bytes();
        client_final.extend_from_slice(first.nonce);
        let auth_message: [&[u8]; 5] = [
            self.client_first_bare.as_bytes(),
            b",",
            data,
            b",",
            &client_final,
        ];
        let mut client_signature = hmac_sha256(&keys.stored_key, &auth_message);
        let mut proof = [0u8; KEY_LEN];
        for (p, (k, s)) in proof
            .iter_mut()
            .zip(keys.client_key.iter().zip(&client_signature))
        {
            *p = k ^ s;
        }
        let expected_signature = hmac_sha256(&keys.server_key, &auth_message);
        client_final.extend_from_slice(b",p=");
        client_final.extend_from_slice(BASE64.encode(proof).as_bytes());
        wipe(&mut proof);
        wipe(&mut client_signature);
        self.state = State::ProofSent { expected_signature };
        Ok(client_final)
    }
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Initial => "Initial",
            State::ProofSent { .. } => "ProofSent",
            State::Complete => "Complete",
            State::Failed(_) => "Failed",
        };
        f.debug_struct("ScramClient")
            .field("client_nonce", &self.client_nonce)
            .field("binding", &self.binding.gs2_header())
            .field("limits", &self.limits)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// The parts of a server-first message.
struct ServerFirst<'a> {
    /// The full nonce (client part and server part).
    nonce: &'a [u8],
    salt: Vec<u8>,
    iterations: u32,
}

/// Checks what libpq's `scram_exchange` checks of every server message: not empty, no NUL inside.
fn check_message(data: &[u8]) -> Result<(), Error> {
    if data.is_empty() {
        return Err(auth_error("malformed SCRAM message (empty message)"));
    }
    if data.contains(&0) {
        return Err(auth_error("malformed SCRAM message (length mismatch)"));
    }
    Ok(())
}

/// Reads `<attr>=<value>` at the start of `input` and advances past the value and one following
/// comma, like libpq's `read_attr_value`.
fn read_attr<'a>(input: &mut &'a [u8], attr: u8) -> Result<&'a [u8], Error> {
    let rest = *input;
    if rest.first() != Some(&attr) {
        return Err(auth_error(format!(
            "malformed SCRAM message (attribute \"{}\" expected)",
            char::from(attr)
        )));
    }
    if rest.get(1) != Some(&b'=') {
        return Err(auth_error(format!(
            "malformed SCRAM message (expected character \"=\" for attribute \"{}\")",
            char::from(attr)
        )));
    }
    let rest = &rest[2..];
    match rest.iter().position(|&b| b == b',') {
        Some(comma) => {
            *input = &rest[comma + 1..];
            Ok(&rest[..comma])
        }
        None => {
            *input = &[];
            Ok(rest)
        }
    }
}

fn parse_server_first<'a>(
    data: &'a [u8],
    client_nonce: &[u8],
    limits: ScramLimits,
) -> Result<ServerFirst<'a>, Error> {
    check_message(data)?;
    let mut input = data;

    let nonce = read_attr(&mut input, b'r')?;
    if nonce.len() < client_nonce.len()
        || !constant_time_eq(&nonce[..client_nonce.len()], client_nonce)
    {
        return Err(auth_error("invalid SCRAM response (nonce mismatch)"));
    }
    // RFC 5802: nonce = printable, i.e. %x21-2B / %x2D-7E (the comma is excluded by read_attr).
    // libpq does not check this; refusing it keeps non-ASCII server bytes out of client-final.
    if !nonce.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(auth_error("malformed SCRAM message (invalid nonce)"));
    }

    let encoded_salt = read_attr(&mut input, b's')?;
    let salt = match BASE64.decode(encoded_salt) {
        Ok(salt) if !salt.is_empty() => salt,
        _ => return Err(auth_error("malformed SCRAM message (invalid salt)")),
    };

    let count = read_attr(&mut input, b'i')?;
    let iterations = parse_iterations(count, limits)?;

    if !input.is_empty() {
        return Err(auth_error(
            "malformed SCRAM message (garbage at end of server-first-message)",
        ));
    }
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

fn parse_iterations(count: &[u8], limits: ScramLimits) -> Result<u32, Error> {
    if count.is_empty() || !count.iter().all(u8::is_ascii_digit) {
        return Err(auth_error(
            "malformed SCRAM message (invalid iteration count)",
        ));
    }
    // All ASCII digits, so valid UTF-8.
    let text = std::str::from_utf8(count).unwrap_or_default();
    let too_many = || {
        auth_error(format!(
            "SCRAM iteration count {} exceeds the limit of {}",
            text.trim_start_matches('0'),
            limits.max_iterations
        ))
    };
    match text.parse::<u64>() {
        Ok(0) => Err(auth_error(
            "malformed SCRAM message (invalid iteration count)",
        )),
        Ok(n) => match u32::try_from(n) {
            Ok(n) if n <= limits.max_iterations => Ok(n),
            _ => Err(too_many()),
        },
        // Only overflow is left: more digits than fit in 64 bits.
        Err(_) => Err(too_many()),
    }
}

fn verify_server_final(data: &[u8], expected: &[u8; KEY_LEN]) -> Result<(), Error> {
    check_message(data)?;
    let mut input = data;
    if input.first() == Some(&b'e') {
        let message = read_attr(&mut input, b'e')?;
        return Err(auth_error(format!(
            "error received from server in SCRAM exchange: {}",
            String::from_utf8_lossy(message)
        )));
    }
    let encoded = read_attr(&mut input, b'v')?;
    if !input.is_empty() {
        return Err(auth_error(
            "malformed SCRAM message (garbage at end of server-final-message)",
        ));
    }
    let signature = match BASE64.decode(encoded) {
        Ok(signature) if signature.len() == KEY_LEN => signature,
        _ => {
            return Err(auth_error(
                "malformed SCRAM message (invalid server signature)",
            ));
        }
    };
    if !constant_time_eq(&signature, expected) {
        return Err(auth_error("incorrect server signature"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

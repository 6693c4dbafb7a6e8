//! Authentication exchanges: cleartext, MD5 and SCRAM-SHA-256.
//!
//! This layer is pure computation over bytes: it reads no socket, no clock and no random source.
//! The connection state machine feeds it the payloads of the server's `Authentication*` messages
//! and sends what it returns; the driver hands in the SCRAM client nonce.
//!
//! * Cleartext (`AuthenticationCleartextPassword`): the password itself, nothing to compute here.
//! * MD5 (`AuthenticationMD5Password`): [`md5_password`].
//! * SASL (`AuthenticationSASL`): [`select_sasl_mechanism`], then a [`ScramClient`] for
//!   `SCRAM-SHA-256`, or over TLS `SCRAM-SHA-256-PLUS` with `tls-server-end-point` channel binding.
//!
//! Failures are [`Error`](crate::Error)s of kind [`ErrorKind::Auth`](crate::ErrorKind::Auth) with
//! libpq's message texts.

pub mod md5;
pub mod saslprep;
pub mod scram;

pub use md5::md5_password;
pub use saslprep::saslprep_password;
pub use scram::{
    ChannelBinding, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramBinding, ScramClient, ScramKeyCache,
    ScramKeys, ScramLimits, choose_sasl_mechanism, derive_keys, select_sasl_mechanism,
};

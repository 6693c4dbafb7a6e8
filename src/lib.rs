//! # pgdblink
//!
//! A pure-Rust PostgreSQL client that speaks the frontend/backend wire protocol itself (no libpq, no
//! C) and offers PostgreSQL's `dblink` asynchronous API on named connections, driven by non-blocking
//! `mio` sockets from the caller's own thread.
//!
//! ## Layers
//!
//! ```text
//! protocol (codec)  <-  auth         pure: bytes in/out; no sockets, no clock, no randomness
//!         ^              ^
//!         conn (sans-IO session)     handle_input / pending_output / poll_result / poll_event
//!         ^
//!         driver (mio)               the only layer touching sockets, time and OS randomness
//!         ^
//!         Dblink registry + binary   names, blocking waits, dblink's verbs
//! ```
//!
//! A dependency arrow never points up. The driver and everything above it sit behind the default
//! `driver` feature; without it the crate is the sans-IO core alone.
//!
//! ## What pgdblink does not do
//!
//! No TLS, GSSAPI or SSPI (they fail with libpq's "not supported" texts before any secret is sent), no
//! async runtime, no background threads, no type conversion beyond text values.
#![forbid(unsafe_code)]

pub mod auth;
pub mod conn;
pub mod conninfo;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod protocol;
pub mod sqlstate;

#[cfg(feature = "driver")]
pub mod bench;
#[cfg(feature = "driver")]
pub mod cluster;
#[cfg(feature = "driver")]
pub mod dblink;
#[cfg(feature = "driver")]
pub mod driver;

pub use conn::{Column, Notification, QueryResult, Rows};
pub use conninfo::Config;
#[cfg(feature = "driver")]
pub use dblink::Dblink;
pub use error::{Error, ErrorKind};

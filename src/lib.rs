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
//! A dependency arrow never points up.
//!
//! ## Features
//!
//! | feature   | default | what it adds                                                              |
//! |-----------|---------|---------------------------------------------------------------------------|
//! | (none)    |         | the sans-IO core: `protocol`, `auth`, `conn`, `conninfo`, `error`         |
//! | `driver`  | yes     | the mio driver (`Client`, `PgSocket`) and the `Dblink` registry            |
//! | `cli`     | yes     | the `pgdblink` binary: `driver`, `testkit`, clap and rustyline             |
//! | `testkit` | via cli | pgdblink's own test and benchmark kit; not a public, stable surface        |
//!
//! A program embedding the client takes the library alone, without the binary's dependencies:
//!
//! ```toml
//! pgdblink = { version = "0.1", default-features = false, features = ["driver"] }
//! ```
//!
//! ## What pgdblink does not do
//!
//! No GSSAPI or SSPI (they fail with libpq's "not supported" texts before any secret is sent; TLS is
//! rustls, see `docs/tls.md`), no async runtime, no background threads. Values travel in the text
//! format; `FromText` reads the common types from it with the server's own input rules.
#![forbid(unsafe_code)]

pub mod auth;
pub mod conn;
pub mod conninfo;
pub mod error;
pub mod protocol;
pub mod sqlstate;

#[cfg(feature = "driver")]
pub mod dblink;
#[cfg(feature = "driver")]
pub mod driver;

// The test kit (feature `testkit`): for pgdblink's binary, tests, fuzz targets and benchmarks.
#[cfg(all(feature = "testkit", feature = "driver"))]
#[doc(hidden)]
pub mod bench;
#[cfg(all(feature = "testkit", feature = "driver"))]
#[doc(hidden)]
pub mod cluster;
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod fuzzing;

pub use conn::{Column, CopyDirection, FromText, Notification, PipelineStatus, QueryResult, Rows};
pub use conninfo::Config;
#[cfg(feature = "driver")]
pub use dblink::Dblink;
#[cfg(feature = "driver")]
pub use driver::TransactionStatus;
pub use error::{Error, ErrorKind};

//! # pgdblink
//!
//! A pure-Rust PostgreSQL client that speaks the frontend/backend wire protocol itself (no libpq, no
//! C) and offers PostgreSQL's `dblink` asynchronous API on named connections, driven by non-blocking
//! `mio` sockets from the caller's own thread.
//!
//! ## Quick start
//!
//! One query fanned out to two connections from one thread, the results taken as they arrive:
//!
//! ```
//! use pgdblink::Dblink;
//!
//! # // This example runs in `cargo test`: a throwaway cluster (the project's test kit) stands in
//! # // for a server.
//! # let cluster = pgdblink::cluster::Cluster::shared()?;
//! # let conninfo = cluster.conninfo(pgdblink::cluster::Role::Trust);
//! # let conninfo = conninfo.as_str();
//! // let conninfo = "host=127.0.0.1 dbname=app user=app";
//! let mut db = Dblink::new();
//! for name in ["a", "b"] {
//!     db.connect(name, conninfo)?;
//!     db.send_query(name, "SELECT 40 + 2 AS answer")?;
//! }
//! let mut left = 2;
//! while left > 0 {
//!     // Blocks until a connection has its answer; every socket keeps being read meanwhile.
//!     for name in db.wait(None)? {
//!         while let Some(result) = db.get_result(&name)? {
//!             for row in result.rows().expect("rows").iter() {
//!                 assert_eq!(row.get_as::<i32>(0)?, Some(42));
//!             }
//!         }
//!         left -= 1;
//!     }
//! }
//! # Ok::<(), pgdblink::Error>(())
//! ```
//!
//! `Client` is the same for a single connection without names. The example runs as a doctest:
//! hidden lines start a throwaway PostgreSQL cluster (`initdb` must be installed, as for the rest of
//! the test suite), so the quick start is checked against a real server on every test run.
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

pub use conn::{
    Column, CopyDirection, FromText, Notification, PipelineStatus, QueryResult, Row, RowIter, Rows,
};
pub use conninfo::Config;
#[cfg(feature = "driver")]
pub use dblink::Dblink;
#[cfg(feature = "driver")]
pub use driver::{CancelToken, Client, TransactionStatus};
pub use error::{Error, ErrorKind};

//! SQLSTATE codes pgdblink sets or tests for, as named constants (PostgreSQL's
//! `src/backend/utils/errcodes.txt` names, upper-cased).
//!
//! A server error carries whatever code the server sent; these are the ones the client assigns itself
//! (dblink's local codes, libpq's connection failures) and the ones a program commonly checks.
//!
//! ```
//! use pgdblink::sqlstate;
//! let e = pgdblink::Error::new(pgdblink::ErrorKind::Usage, "duplicate connection name")
//!     .with_code(sqlstate::DUPLICATE_OBJECT);
//! assert_eq!(e.code(), Some(sqlstate::DUPLICATE_OBJECT));
//! ```

/// `00000` successful_completion: the code of an ordinary notice.
pub const SUCCESSFUL_COMPLETION: &str = "00000";
/// `01000` warning.
pub const WARNING: &str = "01000";
/// `08000` connection_exception.
pub const CONNECTION_EXCEPTION: &str = "08000";
/// `08001` sqlclient_unable_to_establish_sqlconnection: a connection could not be made.
pub const SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION: &str = "08001";
/// `08003` connection_does_not_exist: an unknown connection name, or a closed connection.
pub const CONNECTION_DOES_NOT_EXIST: &str = "08003";
/// `08006` connection_failure: the connection was lost.
pub const CONNECTION_FAILURE: &str = "08006";
/// `08P01` protocol_violation: the server broke the protocol.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// `0A000` feature_not_supported.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `22003` numeric_value_out_of_range.
pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
/// `22012` division_by_zero.
pub const DIVISION_BY_ZERO: &str = "22012";
/// `22021` character_not_in_repertoire: bytes that are not valid in the client encoding.
pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
/// `22023` invalid_parameter_value.
pub const INVALID_PARAMETER_VALUE: &str = "22023";
/// `22P02` invalid_text_representation.
pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
/// `23505` unique_violation.
pub const UNIQUE_VIOLATION: &str = "23505";
/// `25001` active_sql_transaction.
pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
/// `25P02` in_failed_sql_transaction: commands are ignored until the end of the transaction block.
pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
/// `25P03` idle_in_transaction_session_timeout (sent as FATAL: the session ends).
pub const IDLE_IN_TRANSACTION_SESSION_TIMEOUT: &str = "25P03";
/// `28000` invalid_authorization_specification.
pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
/// `28P01` invalid_password.
pub const INVALID_PASSWORD: &str = "28P01";
/// `2F003` prohibited_sql_statement_attempted: dblink_exec of a statement returning rows.
pub const PROHIBITED_SQL_STATEMENT_ATTEMPTED: &str = "2F003";
/// `34000` invalid_cursor_name.
pub const INVALID_CURSOR_NAME: &str = "34000";
/// `3D000` invalid_catalog_name: the database does not exist.
pub const INVALID_CATALOG_NAME: &str = "3D000";
/// `42601` syntax_error.
pub const SYNTAX_ERROR: &str = "42601";
/// `42710` duplicate_object: a connection name already in use.
pub const DUPLICATE_OBJECT: &str = "42710";
/// `53300` too_many_connections.
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// `57014` query_canceled.
pub const QUERY_CANCELED: &str = "57014";
/// `57P01` admin_shutdown: the backend was terminated.
pub const ADMIN_SHUTDOWN: &str = "57P01";
/// `57P02` crash_shutdown: another backend crashed and the server is restarting.
pub const CRASH_SHUTDOWN: &str = "57P02";
/// `57P03` cannot_connect_now: the server is starting up or shutting down.
pub const CANNOT_CONNECT_NOW: &str = "57P03";
/// `57P04` database_dropped.
pub const DATABASE_DROPPED: &str = "57P04";
/// `57P05` idle_session_timeout (PostgreSQL 14 and later; sent as FATAL: the session ends).
pub const IDLE_SESSION_TIMEOUT: &str = "57P05";
/// `XX000` internal_error.
pub const INTERNAL_ERROR: &str = "XX000";

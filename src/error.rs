//! The one error type of pgdblink.
//!
//! Every layer reports failures as [`Error`]: a server's `ErrorResponse` (with all of its fields), a
//! client-side condition that dblink gives a SQLSTATE (`08003`, `42710`, ...), a connection-string
//! mistake with libpq's text, a malformed message from the server, an I/O failure. An `Error` never
//! carries a password, so `Debug` and `Display` are always safe to print.

use std::fmt;
use std::sync::Arc;

mod position;

/// libpq's text for a server error or notice that carries no field at all
/// (`pqBuildErrorMessage3`).
pub const NO_ERROR_MESSAGE_TEXT: &str = "no error message available";

/// What kind of failure an [`Error`] describes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ErrorKind {
    /// The server answered with an `ErrorResponse` (or a `NoticeResponse`, for notices).
    Server,
    /// The connection could not be established (libpq's reason is in the message).
    Connect,
    /// Authentication could not be carried out by the client (unsupported method, missing password,
    /// malformed SCRAM message, bad server signature).
    Auth,
    /// A connection string or one of its values is invalid.
    Config,
    /// The server broke the protocol: a malformed or unexpected message. Fatal for the connection.
    Protocol,
    /// The connection was lost (closed by the server, reset, or dropped by the client).
    ConnectionLost,
    /// An operating-system I/O error.
    Io,
    /// The caller asked for something the current state does not allow (a busy connection, an unknown
    /// connection name, a duplicate name).
    Usage,
    /// A feature the server asked for that pgdblink does not implement (GSSAPI, SSPI, TLS).
    Unsupported,
    /// Anything else.
    #[default]
    Other,
}

/// The underlying cause kept by an [`Error`] (see [`std::error::Error::source`]).
type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The error type of every pgdblink operation.
///
/// Field names follow PostgreSQL's `ErrorResponse`: [`code`](Error::code) is the SQLSTATE,
/// [`message`](Error::message) the primary message, and so on. `Display` prints the error the way psql
/// does: `ERROR:  division by zero`, followed by `DETAIL:` and `HINT:` lines when present. `Debug`
/// shows every field, named, plus the kind and the underlying cause.
///
/// An error caused by an I/O failure or by a malformed server message keeps that cause, reachable
/// through [`std::error::Error::source`]:
///
/// ```
/// use std::error::Error as _;
/// let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// let e = pgdblink::Error::io(pgdblink::ErrorKind::ConnectionLost, "connection reset", io);
/// let cause = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).unwrap();
/// assert_eq!(cause.kind(), std::io::ErrorKind::ConnectionReset);
/// assert!(e.is_closed());
/// ```
///
/// Two errors are equal when all their fields are and their causes print the same text.
#[derive(Clone)]
pub struct Error(Box<Inner>);

#[derive(Clone, Default)]
struct Inner {
    kind: ErrorKind,
    severity: Option<String>,
    /// The non-localized severity (`V` field, PostgreSQL 9.6 and later).
    severity_nonlocalized: Option<String>,
    code: Option<String>,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    position: Option<String>,
    context: Option<String>,
    /// The text of the query the position refers to (libpq's `errQuery`), kept only when the
    /// error has a position.
    query: Option<String>,
    /// Every other field of a server error, by its one-byte field code.
    other: Vec<(u8, String)>,
    source: Option<Source>,
}

impl PartialEq for Inner {
    fn eq(&self, other: &Inner) -> bool {
        self.kind == other.kind
            && self.severity == other.severity
            && self.severity_nonlocalized == other.severity_nonlocalized
            && self.code == other.code
            && self.message == other.message
            && self.detail == other.detail
            && self.hint == other.hint
            && self.position == other.position
            && self.context == other.context
            && self.query == other.query
            && self.other == other.other
            && self.source.as_ref().map(|s| s.to_string())
                == other.source.as_ref().map(|s| s.to_string())
    }
}

impl Eq for Inner {}

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.0 == other.0
    }
}

impl Eq for Error {}

/// The names `Debug` gives the server's fields that have no accessor of their own, by field code
/// (PostgreSQL's `PG_DIAG_*` names, lower-cased).
const FIELD_NAMES: [(u8, &str); 10] = [
    (b'p', "internal_position"),
    (b'q', "internal_query"),
    (b's', "schema_name"),
    (b't', "table_name"),
    (b'c', "column_name"),
    (b'd', "datatype_name"),
    (b'n', "constraint_name"),
    (b'F', "source_file"),
    (b'L', "source_line"),
    (b'R', "source_function"),
];

impl Error {
    /// A new error of `kind` with the primary `message` and no other field.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            ..Inner::default()
        }))
    }

    /// A new error of `kind` with the primary `message`, caused by the I/O failure `source` (kept,
    /// and returned by [`std::error::Error::source`]).
    pub fn io(kind: ErrorKind, message: impl Into<String>, source: std::io::Error) -> Error {
        Error::new(kind, message).with_source(source)
    }

    /// Builds an error from the fields of a server `ErrorResponse`/`NoticeResponse`, given as
    /// `(field code, value)` pairs in wire order (`S`, `V`, `C`, `M`, `D`, `H`, `P`, `W`, ...).
    ///
    /// The localized severity `S` is preferred over the non-localized `V` for display, as libpq does.
    /// A message with no field at all still makes an error: its message is libpq's
    /// [`NO_ERROR_MESSAGE_TEXT`] (`no error message available`).
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (u8, &'a str)>) -> Error {
        let mut inner = Inner {
            kind: ErrorKind::Server,
            ..Inner::default()
        };
        let mut any = false;
        for (code, value) in fields {
            any = true;
            let value = value.to_owned();
            match code {
                b'S' => inner.severity = Some(value),
                b'V' => inner.severity_nonlocalized = Some(value),
                b'C' => inner.code = Some(value),
                b'M' => inner.message = value,
                b'D' => inner.detail = Some(value),
                b'H' => inner.hint = Some(value),
                b'P' => inner.position = Some(value),
                b'W' => inner.context = Some(value),
                _ => inner.other.push((code, value)),
            }
        }
        if inner.severity.is_none() {
            inner.severity = inner.severity_nonlocalized.clone();
        }
        if !any {
            inner.message = NO_ERROR_MESSAGE_TEXT.to_owned();
        }
        Error(Box::new(inner))
    }

    /// Keeps `query`, the text of the statement this error is about, for the cursor display of
    /// [`libpq_text`](Self::libpq_text) (`LINE n:` and a caret under the position). Kept only when
    /// the error has a [`position`](Self::position), as libpq keeps its `errQuery`; `None` leaves
    /// the error as it is.
    pub fn with_query(mut self, query: Option<&str>) -> Error {
        if let Some(query) = query
            && self.0.position.is_some()
        {
            self.0.query = Some(query.to_owned());
        }
        self
    }

    /// Sets the SQLSTATE.
    pub fn with_code(mut self, code: impl Into<String>) -> Error {
        self.0.code = Some(code.into());
        self
    }

    /// Sets the severity (`ERROR`, `FATAL`, `NOTICE`, ...).
    pub fn with_severity(mut self, severity: impl Into<String>) -> Error {
        self.0.severity = Some(severity.into());
        self
    }

    /// Sets the detail line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.0.detail = Some(detail.into());
        self
    }

    /// Sets the hint line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.0.hint = Some(hint.into());
        self
    }

    /// Sets the context (`W` field).
    pub fn with_context(mut self, context: impl Into<String>) -> Error {
        self.0.context = Some(context.into());
        self
    }

    /// Keeps `source` as the underlying cause of this error (an [`std::io::Error`], a
    /// [`DecodeError`](crate::protocol::DecodeError), ...), returned by
    /// [`std::error::Error::source`]. The message is left as it is: the cause is for programs that
    /// look deeper (`downcast_ref`), the message for people.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.0.source = Some(Arc::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Whether the connection this error came from is gone: no further query can succeed on it, and
    /// a program should reconnect. True for
    ///
    /// - [`ErrorKind::ConnectionLost`]: the server closed the connection, the socket failed, or the
    ///   connection was closed by the client;
    /// - any SQLSTATE of class `08` (connection exception): `08006` connection failure, `08003`
    ///   connection does not exist (also dblink's unknown connection name), `08001` unable to
    ///   establish a connection (a failed connect: there never was one), `08P01` protocol violation
    ///   (pgdblink closes a connection whose server broke the protocol), ...;
    /// - any SQLSTATE of class `57P` (operator intervention that ends sessions): `57P01`
    ///   admin_shutdown (`pg_terminate_backend`), `57P02` crash_shutdown, `57P03` cannot_connect_now,
    ///   `57P04` database_dropped, `57P05` idle_session_timeout;
    /// - a server error of severity `FATAL` or `PANIC` (the non-localized severity when the server
    ///   sent one): the backend ends the session after sending it (`25P03`
    ///   idle_in_transaction_session_timeout, authentication failures, ...).
    ///
    /// False for everything else, notably an ordinary `ERROR` from a query (the connection stays
    /// usable), `57014` query_canceled, a busy connection ([`ErrorKind::Usage`]) and the notice that
    /// reports an unexpected message while idle.
    pub fn is_closed(&self) -> bool {
        if self.kind() == ErrorKind::ConnectionLost {
            return true;
        }
        if let Some(code) = self.code()
            && (code.starts_with("08") || code.starts_with("57P"))
        {
            return true;
        }
        matches!(
            self.severity_nonlocalized().or(self.severity()),
            Some("FATAL" | "PANIC")
        )
    }

    /// The SQLSTATE: the server's, or the one dblink assigns locally (`08001`, `08003`, `08006`,
    /// `42710`, `2F003`, ...). `None` for client-side conditions libpq gives no code either, such as
    /// `another command is already in progress`. See [`crate::sqlstate`] for named constants.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The primary message, without a severity prefix.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The severity: `ERROR`, `FATAL`, `PANIC`, `WARNING`, `NOTICE`, `DEBUG`, `INFO`, `LOG`
    /// (localized when the server's `lc_messages` is; see
    /// [`severity_nonlocalized`](Self::severity_nonlocalized)).
    pub fn severity(&self) -> Option<&str> {
        self.0.severity.as_deref()
    }

    /// The severity as the server sent it never translated (the `V` field, PostgreSQL 9.6 and
    /// later): the one to compare with `"FATAL"` and the like.
    pub fn severity_nonlocalized(&self) -> Option<&str> {
        self.0.severity_nonlocalized.as_deref()
    }

    /// The optional secondary message.
    pub fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }

    /// The optional suggestion what to do about the problem.
    pub fn hint(&self) -> Option<&str> {
        self.0.hint.as_deref()
    }

    /// The cursor position in the query string (1-based characters), as the server sent it.
    pub fn position(&self) -> Option<&str> {
        self.0.position.as_deref()
    }

    /// The context (`W` field): a call-stack traceback, one entry a line.
    pub fn context(&self) -> Option<&str> {
        self.0.context.as_deref()
    }

    /// The text of the query that [`position`](Self::position) points into, when the connection
    /// knew it (the query the error is the result of; see [`with_query`](Self::with_query)).
    pub fn query(&self) -> Option<&str> {
        self.0.query.as_deref()
    }

    /// Any server field by its one-byte code: those with accessors of their own (`S`, `V`, `C`, `M`,
    /// `D`, `H`, `P`, `W`) and the others (`s` schema, `t` table, `c` column, `d` data type,
    /// `n` constraint, `F` file, `L` line, `R` routine, `q` internal query, `p` internal position).
    pub fn field(&self, code: u8) -> Option<&str> {
        match code {
            b'S' => self.severity(),
            b'V' => self.severity_nonlocalized(),
            b'C' => self.code(),
            b'M' => Some(self.message()),
            b'D' => self.detail(),
            b'H' => self.hint(),
            b'P' => self.position(),
            b'W' => self.context(),
            _ => self
                .0
                .other
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, v)| v.as_str()),
        }
    }

    /// libpq's formatted text of this error (`pqBuildErrorMessage3` at default verbosity), ending in a
    /// newline: `ERROR:  message\nLINE 1: ...\n    ^\nDETAIL:  ...\nHINT:  ...\nQUERY:  ...\n
    /// CONTEXT:  ...\n`. A client-side error without a severity is its message and a newline.
    ///
    /// A position is shown as libpq shows it: with the [`query`](Self::query) known, as the line of
    /// the query holding it and a caret under it (libpq's `reportErrorPosition`: `LINE n: `, long
    /// lines cut to about 60 columns with `...`, tabs as spaces, wide characters two columns);
    /// without, as ` at character N` after the message. An internal position (`p`) points into the
    /// internal query (`q`) the same way.
    ///
    /// ```
    /// let e = pgdblink::Error::from_fields([(b'S', "ERROR"), (b'M', "syntax error at or near \"FRM\""), (b'P', "10")])
    ///     .with_query(Some("SELECT 1 FRM t"));
    /// assert_eq!(e.libpq_text(), "ERROR:  syntax error at or near \"FRM\"\nLINE 1: SELECT 1 FRM t\n                 ^\n");
    /// ```
    pub fn libpq_text(&self) -> String {
        let mut out = String::new();
        if let Some(severity) = self.severity() {
            out.push_str(severity);
            out.push_str(":  ");
        }
        out.push_str(self.message());
        let mut cursor = None;
        if let Some(position) = self.position() {
            match self.query() {
                Some(query) => cursor = Some((query, position)),
                None => {
                    out.push_str(" at character ");
                    out.push_str(position);
                }
            }
        } else if let Some(position) = self.field(b'p') {
            match self.field(b'q') {
                Some(query) => cursor = Some((query, position)),
                None => {
                    out.push_str(" at character ");
                    out.push_str(position);
                }
            }
        }
        out.push('\n');
        if let Some((query, position)) = cursor {
            let position = position::atoi(position);
            if position > 0 {
                position::report(&mut out, query, position);
            }
        }
        for (label, value) in [
            ("DETAIL", self.detail()),
            ("HINT", self.hint()),
            ("QUERY", self.field(b'q')),
            ("CONTEXT", self.context()),
        ] {
            if let Some(value) = value {
                out.push_str(label);
                out.push_str(":  ");
                out.push_str(value);
                out.push('\n');
            }
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(severity) = self.severity() {
            write!(f, "{severity}:  ")?;
        }
        f.write_str(self.message())?;
        if let Some(detail) = self.detail() {
            write!(f, "\nDETAIL:  {detail}")?;
        }
        if let Some(hint) = self.hint() {
            write!(f, "\nHINT:  {hint}")?;
        }
        Ok(())
    }
}

/// A server field code `Debug` has no name for, shown as its character.
struct FieldCode(u8);

impl fmt::Debug for FieldCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", char::from(self.0))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0;
        let mut s = f.debug_struct("Error");
        s.field("kind", &inner.kind);
        let optional = [
            ("severity", &inner.severity),
            ("severity_nonlocalized", &inner.severity_nonlocalized),
            ("code", &inner.code),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                s.field(name, value);
            }
        }
        s.field("message", &inner.message);
        let optional = [
            ("detail", &inner.detail),
            ("hint", &inner.hint),
            ("position", &inner.position),
            ("context", &inner.context),
            ("query", &inner.query),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                s.field(name, value);
            }
        }
        for (code, name) in FIELD_NAMES {
            if let Some(value) = self.field(code) {
                s.field(name, &value);
            }
        }
        let unnamed: Vec<(FieldCode, &str)> = inner
            .other
            .iter()
            .filter(|(c, _)| !FIELD_NAMES.iter().any(|(n, _)| n == c))
            .map(|(c, v)| (FieldCode(*c), v.as_str()))
            .collect();
        if !unnamed.is_empty() {
            s.field("other_fields", &unnamed);
        }
        if let Some(source) = &inner.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    /// An [`ErrorKind::Io`] error with the I/O error's text, keeping it as the source.
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, e.to_string()).with_source(e)
    }
}

impl From<crate::protocol::DecodeError> for Error {
    /// A malformed server message: an [`ErrorKind::Protocol`] error with libpq's text for it and
    /// SQLSTATE `08P01` (protocol_violation), keeping the decode error as the source.
    fn from(e: crate::protocol::DecodeError) -> Error {
        Error::new(ErrorKind::Protocol, e.to_string())
            .with_code(crate::sqlstate::PROTOCOL_VIOLATION)
            .with_source(e)
    }
}

#[cfg(test)]
mod tests;

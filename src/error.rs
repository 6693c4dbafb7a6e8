//! The one error type of pgdblink.
//!
//! Every layer reports failures as [`Error`]: a server's `ErrorResponse` (with all of its fields), a
//! client-side condition that dblink gives a SQLSTATE (`08003`, `42710`, ...), a connection-string
//! mistake with libpq's text, a malformed message from the server, an I/O failure. An `Error` never
//! carries a password, so `Debug` and `Display` are always safe to print.

use std::fmt;

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

/// The error type of every pgdblink operation.
///
/// Field names follow PostgreSQL's `ErrorResponse`: [`code`](Error::code) is the SQLSTATE,
/// [`message`](Error::message) the primary message, and so on. `Display` prints the error the way psql
/// does: `ERROR:  division by zero`, followed by `DETAIL:` and `HINT:` lines when present.
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Inner>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    severity: Option<String>,
    code: Option<String>,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    position: Option<String>,
    context: Option<String>,
    /// Every other field of a server error, by its one-byte field code.
    other: Vec<(u8, String)>,
}

impl Error {
    /// A new error of `kind` with the primary `message` and no other field.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            ..Inner::default()
        }))
    }

    /// Builds an error from the fields of a server `ErrorResponse`/`NoticeResponse`, given as
    /// `(field code, value)` pairs in wire order (`S`, `V`, `C`, `M`, `D`, `H`, `P`, `W`, ...).
    ///
    /// The localized severity `S` is preferred over the non-localized `V` for display, as libpq does.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (u8, &'a str)>) -> Error {
        let mut inner = Inner {
            kind: ErrorKind::Server,
            ..Inner::default()
        };
        let mut nonlocalized = None;
        for (code, value) in fields {
            let value = value.to_owned();
            match code {
                b'S' => inner.severity = Some(value),
                b'V' => nonlocalized = Some(value),
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
            inner.severity = nonlocalized;
        }
        Error(Box::new(inner))
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

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The SQLSTATE: the server's, or the one dblink assigns locally (`08001`, `08003`, `08006`,
    /// `42710`, `2F003`, ...). `None` for client-side conditions libpq gives no code either, such as
    /// `another command is already in progress`.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The primary message, without a severity prefix.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The severity: `ERROR`, `FATAL`, `PANIC`, `WARNING`, `NOTICE`, `DEBUG`, `INFO`, `LOG`.
    pub fn severity(&self) -> Option<&str> {
        self.0.severity.as_deref()
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

    /// Any other server field by its one-byte code (`s` schema, `t` table, `c` column, `d` data type,
    /// `n` constraint, `F` file, `L` line, `R` routine, `q` internal query, `p` internal position).
    pub fn field(&self, code: u8) -> Option<&str> {
        match code {
            b'S' => self.severity(),
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
    /// newline: `ERROR:  message\nDETAIL:  ...\nHINT:  ...\nCONTEXT:  ...\n`. A client-side error
    /// without a severity is its message and a newline.
    pub fn libpq_text(&self) -> String {
        let mut out = String::new();
        if let Some(severity) = self.severity() {
            out.push_str(severity);
            out.push_str(":  ");
        }
        out.push_str(self.message());
        if let Some(position) = self.position() {
            out.push_str(" at character ");
            out.push_str(position);
        }
        out.push('\n');
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

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.0.kind);
        if let Some(code) = &self.0.code {
            s.field("code", code);
        }
        if let Some(severity) = &self.0.severity {
            s.field("severity", severity);
        }
        s.field("message", &self.0.message);
        if let Some(detail) = &self.0.detail {
            s.field("detail", detail);
        }
        if let Some(hint) = &self.0.hint {
            s.field("hint", hint);
        }
        s.finish()
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_matches_psql() {
        let e = Error::from_fields([
            (b'S', "ERROR"),
            (b'V', "ERROR"),
            (b'C', "P0099"),
            (b'M', "boom 1"),
            (b'D', "the detail"),
            (b'H', "the hint"),
            (b'W', "PL/pgSQL function inline_code_block line 1 at RAISE"),
        ]);
        assert_eq!(
            e.to_string(),
            "ERROR:  boom 1\nDETAIL:  the detail\nHINT:  the hint"
        );
        assert_eq!(
            e.libpq_text(),
            "ERROR:  boom 1\nDETAIL:  the detail\nHINT:  the hint\n\
             CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n"
        );
        assert_eq!(e.code(), Some("P0099"));
        assert_eq!(e.kind(), ErrorKind::Server);
    }

    #[test]
    fn error_client_side_has_no_prefix() {
        let e = Error::new(ErrorKind::Usage, "another command is already in progress");
        assert_eq!(e.to_string(), "another command is already in progress");
        assert_eq!(e.libpq_text(), "another command is already in progress\n");
        assert_eq!(e.code(), None);
    }

    #[test]
    fn error_is_send_sync() {
        fn check<T: Send + Sync + std::error::Error + 'static>() {}
        check::<Error>();
    }
}

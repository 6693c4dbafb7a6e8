//! The password file (libpq's `passwordFromFile`).
//!
//! Lines are `hostname:port:database:username:password`; `*` matches anything in a field, `\:` and
//! `\\` are escapes, lines starting with `#` are comments, the first match wins.

use std::path::Path;

/// libpq's default unix-socket directory on Debian, matched as `localhost`.
pub(crate) const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The contents of a password file that passed libpq's checks.
#[derive(Debug)]
pub(crate) struct PgPass {
    lines: Vec<String>,
}

/// Reads the password file at `path`.
///
/// `Ok(None)` if it does not exist or cannot be read (ignored silently, as libpq does);
/// `Err(warning)` with libpq's warning text if it is not a plain file or is group/world accessible.
pub(crate) fn read(path: &Path) -> Result<Option<PgPass>, String> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(format!(
            "password file \"{}\" is not a plain file",
            path.display()
        ));
    }
    // libpq checks the mode only where there are unix permissions (not on Windows).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                path.display()
            ));
        }
    }
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines = text
        .split('\n')
        .map(|line| line.trim_end_matches(['\r', '\n']).to_owned())
        .collect();
    Ok(Some(PgPass { lines }))
}

impl PgPass {
    /// The password for the first matching line. `host` is the host name (or hostaddr) as given;
    /// an empty one or the default socket directory is matched as `localhost`; an empty port as
    /// `5432`.
    pub(crate) fn lookup(
        &self,
        host: &str,
        port: &str,
        dbname: &str,
        user: &str,
    ) -> Option<String> {
        if dbname.is_empty() || user.is_empty() {
            return None;
        }
        let host = if host.is_empty() || host == DEFAULT_SOCKET_DIR {
            "localhost"
        } else {
            host
        };
        let port = if port.is_empty() { "5432" } else { port };
        self.lines.iter().find_map(|line| {
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let rest = match_field(line, host)?;
            let rest = match_field(rest, port)?;
            let rest = match_field(rest, dbname)?;
            let rest = match_field(rest, user)?;
            Some(unescape_password(rest))
        })
    }
}

/// libpq's `pwdfMatchesString`: if the field at the start of `line` matches `token` (or is `*`),
/// the rest of the line after its `:`.
pub(crate) fn match_field<'a>(line: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut chars = line.char_indices();
    let mut token = token.chars();
    while let Some((i, c)) = chars.next() {
        let (i, c, escaped) = if c == '\\' {
            match chars.next() {
                Some((j, d)) => (j, d, true),
                None => return None,
            }
        } else {
            (i, c, false)
        };
        let expected = token.next();
        if c == ':' && !escaped && expected.is_none() {
            return line.get(i + 1..);
        }
        if expected != Some(c) {
            return None;
        }
    }
    None
}

/// The password field: up to the next `:`, with backslash escapes removed.
fn unescape_password(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' {
            break;
        }
        if c == '\\'
            && let Some(next) = chars.next()
        {
            out.push(next);
            continue;
        }
        out.push(c);
    }
    out
}

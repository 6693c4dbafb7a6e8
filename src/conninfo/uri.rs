//! The URI grammar (libpq's `conninfo_uri_parse_options`, `conninfo_uri_parse_params` and
//! `conninfo_uri_decode`).
//!
//! ```text
//! postgresql://[user[:password]@][netloc][:port][,netloc[:port]...][/dbname][?param1=value1&...]
//! ```

use super::{Config, config_error};
use crate::Error;

/// The length of the `postgresql://` or `postgres://` designator `conninfo` starts with, if any.
pub(crate) fn prefix_length(conninfo: &str) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .iter()
        .find(|p| conninfo.starts_with(*p))
        .map(|p| p.len())
}

/// The byte at `i`, or 0 past the end (the C string's terminator).
fn byte_at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// `s[from..to]`, or "" if that is not a valid range (never happens: the ends are ASCII delimiters).
fn slice(s: &str, from: usize, to: usize) -> &str {
    s.get(from..to).unwrap_or("")
}

/// Percent-decodes then stores; the keyword is known, so only decoding can fail.
fn store_decoded(config: &mut Config, keyword: &str, raw: &str) -> Result<(), Error> {
    let value = decode(raw)?;
    config.store(keyword, &value)
}

/// `uri` with the password of its credentials, if any, replaced by `********`.
fn redact(uri: &str, prefix_len: usize) -> String {
    let rest = uri.get(prefix_len..).unwrap_or("");
    let credentials_end = rest.find(['@', '/']);
    if let Some(at) = credentials_end.filter(|&i| rest.as_bytes().get(i) == Some(&b'@')) {
        let credentials = rest.get(..at).unwrap_or("");
        if let Some(colon) = credentials.find(':')
            && colon + 1 < at
        {
            return format!(
                "{}{}:********{}",
                uri.get(..prefix_len).unwrap_or(""),
                rest.get(..colon).unwrap_or(""),
                rest.get(at..).unwrap_or("")
            );
        }
    }
    uri.to_owned()
}

/// Parses a URI (`prefix_len` bytes of designator already recognised) into `config`.
pub(crate) fn parse_uri(uri: &str, prefix_len: usize, config: &mut Config) -> Result<(), Error> {
    let b = uri.as_bytes();
    let start = prefix_len;
    let at = |i: usize| byte_at(b, i);
    // What error texts show of the URI: the password is masked.
    let shown = redact(uri, prefix_len);

    // Credentials only if an '@' comes before the first '/'.
    let mut p = start;
    while at(p) != 0 && at(p) != b'@' && at(p) != b'/' {
        p += 1;
    }
    if at(p) == b'@' {
        let mut q = start;
        while at(q) != 0 && at(q) != b':' && at(q) != b'@' {
            q += 1;
        }
        let user = slice(uri, start, q);
        if !user.is_empty() {
            store_decoded(config, "user", user)?;
        }
        if at(q) == b':' {
            let password_start = q + 1;
            let mut r = password_start;
            while at(r) != 0 && at(r) != b'@' {
                r += 1;
            }
            let password = slice(uri, password_start, r);
            if !password.is_empty() {
                // The error texts echo the raw component; never echo a password.
                let value = decode(password)
                    .map_err(|e| config_error(e.message().replace(password, "********")))?;
                config.store("password", &value)?;
            }
            q = r;
        }
        p = q + 1;
    } else {
        p = start;
    }

    // netloc[:port] pairs, comma-separated.
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut terminator;
    loop {
        let host;
        if at(p) == b'[' {
            p += 1;
            let host_start = p;
            while at(p) != 0 && at(p) != b']' {
                p += 1;
            }
            if at(p) == 0 {
                return Err(config_error(format!(
                    "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{shown}\""
                )));
            }
            if p == host_start {
                return Err(config_error(format!(
                    "IPv6 host address may not be empty in URI: \"{shown}\""
                )));
            }
            host = slice(uri, host_start, p);
            p += 1;
            let c = at(p);
            if c != 0 && !matches!(c, b':' | b'/' | b'?' | b',') {
                let ch = uri.get(p..).and_then(|s| s.chars().next()).unwrap_or('?');
                return Err(config_error(format!(
                    "unexpected character \"{ch}\" at position {} in URI (expected \":\" or \"/\"): \"{shown}\"",
                    p + 1
                )));
            }
        } else {
            let host_start = p;
            while !matches!(at(p), 0 | b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            host = slice(uri, host_start, p);
        }
        terminator = at(p);
        hosts.push_str(host);

        if terminator == b':' {
            p += 1;
            let port_start = p;
            while !matches!(at(p), 0 | b'/' | b'?' | b',') {
                p += 1;
            }
            terminator = at(p);
            ports.push_str(slice(uri, port_start, p));
        }

        if terminator != b',' {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }

    if !hosts.is_empty() {
        store_decoded(config, "host", &hosts)?;
    }
    if !ports.is_empty() {
        store_decoded(config, "port", &ports)?;
    }

    if terminator != 0 && terminator != b'?' {
        // terminator is '/': the database name runs up to '?'.
        p += 1;
        let dbname_start = p;
        while at(p) != 0 && at(p) != b'?' {
            p += 1;
        }
        terminator = at(p);
        let dbname = slice(uri, dbname_start, p);
        // An empty dbname is not stored, so PGDATABASE still applies.
        if !dbname.is_empty() {
            store_decoded(config, "dbname", dbname)?;
        }
    }

    if terminator != 0 {
        parse_params(uri.get(p + 1..).unwrap_or(""), config)?;
    }
    Ok(())
}

/// The `k=v&k=v` query part.
fn parse_params(params: &str, config: &mut Config) -> Result<(), Error> {
    let mut rest = params;
    while !rest.is_empty() {
        let (param, next) = match rest.split_once('&') {
            Some((param, next)) => (param, next),
            None => (rest, ""),
        };
        let Some((keyword, value)) = param.split_once('=') else {
            return Err(config_error(format!(
                "missing key/value separator \"=\" in URI query parameter: \"{param}\""
            )));
        };
        if value.contains('=') {
            return Err(config_error(format!(
                "extra key/value separator \"=\" in URI query parameter: \"{keyword}\""
            )));
        }
        let keyword = decode(keyword)?;
        let raw_value = value;
        let value = decode(value).map_err(|e| {
            if super::is_secret(&keyword) && !raw_value.is_empty() {
                config_error(e.message().replace(raw_value, "********"))
            } else {
                e
            }
        })?;
        // JDBC compatibility.
        let (keyword, value) = if keyword == "ssl" && value == "true" {
            ("sslmode", "require")
        } else {
            (keyword.as_str(), value.as_str())
        };
        if config.try_store(keyword, value).is_none() {
            return Err(config_error(format!(
                "invalid URI query parameter: \"{keyword}\""
            )));
        }
        rest = next;
    }
    Ok(())
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one URI component the way libpq 18 does: leading and trailing spaces are
/// trimmed, an embedded space is an error, `%00` is forbidden. The result must be UTF-8.
pub(crate) fn decode(s: &str) -> Result<String, Error> {
    let b = s.as_bytes();
    let at = |i: usize| byte_at(b, i);
    let mut i = 0;
    while at(i) == b' ' {
        i += 1;
    }
    let mut out = Vec::with_capacity(b.len());
    loop {
        let c = at(i);
        if c != b'%' {
            if c == b' ' || c == 0 {
                break;
            }
            out.push(c);
            i += 1;
        } else {
            let hi = hex_digit(at(i + 1));
            let lo = hi.and_then(|_| hex_digit(at(i + 2)));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(config_error(format!(
                    "invalid percent-encoded token: \"{s}\""
                )));
            };
            let decoded = (hi << 4) | lo;
            if decoded == 0 {
                return Err(config_error(format!(
                    "forbidden value %00 in percent-encoded value: \"{s}\""
                )));
            }
            out.push(decoded);
            i += 3;
        }
    }
    while at(i) == b' ' {
        i += 1;
    }
    if i < b.len() {
        return Err(config_error(format!(
            "unexpected spaces found in \"{s}\", use percent-encoded spaces (%20) instead"
        )));
    }
    String::from_utf8(out).map_err(|_| {
        config_error(format!(
            "invalid UTF-8 sequence in percent-encoded value: \"{s}\""
        ))
    })
}

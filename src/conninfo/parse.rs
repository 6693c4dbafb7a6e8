//! The keyword/value grammar (libpq's `conninfo_parse`).

use std::iter::Peekable;
use std::str::Chars;

use super::{Config, config_error, is_c_space};
use crate::Error;

fn skip_spaces(it: &mut Peekable<Chars<'_>>) {
    while it.next_if(|c| is_c_space(*c)).is_some() {}
}

/// Parses `key=value ...` into `config`, with libpq's quirks:
///
/// * whitespace is allowed around `=`, and an empty unquoted value followed by whitespace takes the
///   next token as its value (`application_name= dbname=x` sets application_name to `dbname=x`);
/// * unquoted values end at whitespace, a backslash escapes the next character;
/// * quoted values are `'...'` with backslash escapes;
/// * a keyword without `=` and an unterminated quote are errors, unknown keywords too.
pub(crate) fn parse_keyword_value(conninfo: &str, config: &mut Config) -> Result<(), Error> {
    let mut it = conninfo.chars().peekable();
    loop {
        skip_spaces(&mut it);
        if it.peek().is_none() {
            return Ok(());
        }

        let mut keyword = String::new();
        let mut found_equals = false;
        while let Some(c) = it.next() {
            if c == '=' {
                found_equals = true;
                break;
            }
            if is_c_space(c) {
                skip_spaces(&mut it);
                found_equals = it.next_if_eq(&'=').is_some();
                break;
            }
            keyword.push(c);
        }
        if !found_equals {
            return Err(config_error(format!(
                "missing \"=\" after \"{keyword}\" in connection info string"
            )));
        }

        skip_spaces(&mut it);

        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    None => {
                        return Err(config_error(
                            "unterminated quoted string in connection info string",
                        ));
                    }
                    Some('\\') => {
                        if let Some(c) = it.next() {
                            value.push(c);
                        }
                    }
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next() {
                if is_c_space(c) {
                    break;
                }
                if c == '\\' {
                    if let Some(escaped) = it.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }

        config.store(&keyword, &value)?;
    }
}

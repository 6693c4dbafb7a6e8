//! `pgdblink shell`: dblink's verbs at an interactive prompt.

use std::io::{self, BufRead, IsTerminal, Write};

use pgdblink::{Dblink, Error};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use super::table::{Align, Table, render_error, render_result, row_count};

pub const HELP: &str = "\
Commands (NAME is a connection name; TARGET a name or a connection string, quoted if it has spaces):
  connect NAME CONNINFO   dblink_connect: open a connection under NAME
  send NAME SQL           dblink_send_query: dispatch SQL without waiting
  busy NAME               dblink_is_busy: 1 if `result` would wait, else 0
  result NAME             dblink_get_result: wait for the next result (`(end of results)` after the last)
  cancel NAME             dblink_cancel_query: cancel the running query
  errmsg NAME             dblink_error_message: OK, or the last error
  notify NAME             dblink_get_notify: notifications received so far
  conns                   dblink_get_connections: the open names
  disconnect NAME         dblink_disconnect: close NAME
  query TARGET SQL        dblink: run SQL, show its last result
  exec TARGET SQL         dblink_exec: run SQL, show its command tag
  help                    this text
  quit                    leave (also exit, \\q, Ctrl-D)
Lines starting with -- or # are comments.";

/// Runs the shell until end of input or `quit`.
pub fn shell(null: &str, echo: bool) -> Result<(), Error> {
    let mut db = Dblink::try_new()?;
    let interactive = io::stdin().is_terminal();
    if interactive {
        let mut editor = DefaultEditor::new()
            .map_err(|e| Error::new(pgdblink::ErrorKind::Io, format!("line editor: {e}")))?;
        outln!("pgdblink shell: dblink's verbs on named connections; `help` lists them.");
        loop {
            match editor.readline("pgdblink> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    if !execute(&mut db, &line, null) {
                        break;
                    }
                }
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    return Err(Error::new(
                        pgdblink::ErrorKind::Io,
                        format!("reading input: {e}"),
                    ));
                }
            }
        }
    } else {
        for line in io::stdin().lock().lines() {
            let line = line?;
            if echo {
                outln!("pgdblink> {line}");
            }
            let go_on = execute(&mut db, &line, null);
            let _ = io::stdout().flush();
            if !go_on {
                break;
            }
        }
    }
    Ok(())
}

/// Splits off the first word.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// Splits off the first token: a word, or a text in single or double quotes (a doubled quote stands
/// for itself).
fn token(s: &str) -> Result<(String, &str), String> {
    let s = s.trim_start();
    let Some(q) = s.chars().next().filter(|c| *c == '\'' || *c == '"') else {
        let (w, rest) = word(s);
        return Ok((w.to_owned(), rest));
    };
    let mut out = String::new();
    let mut chars = s[1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == q {
            if chars.peek().map(|&(_, n)| n) == Some(q) {
                chars.next();
                out.push(q);
                continue;
            }
            return Ok((out, s[1 + i + 1..].trim_start()));
        }
        out.push(c);
    }
    Err(format!("unterminated quoted text: {s}"))
}

/// Executes one line; false to end the session.
fn execute(db: &mut Dblink, line: &str, null: &str) -> bool {
    let line = line.trim();
    if line.is_empty() || line.starts_with("--") || line.starts_with('#') {
        return true;
    }
    let (verb, rest) = word(line);
    match verb.to_ascii_lowercase().as_str() {
        "quit" | "exit" | "\\q" => return false,
        "help" | "\\?" | "?" => outln!("{HELP}"),
        verb => {
            if let Err(message) = verb_with_args(db, verb, rest, null) {
                out!("{message}");
                if !message.ends_with('\n') {
                    outln!();
                }
            }
        }
    }
    true
}

fn usage(verb: &str, args: &str) -> String {
    format!("usage: {verb} {args}")
}

/// Runs a verb; `Err` carries the text to show.
fn verb_with_args(db: &mut Dblink, verb: &str, rest: &str, null: &str) -> Result<(), String> {
    let shown = |e: Error| render_error(&e);
    let (name, tail) = token(rest)?;
    let need_name = |args: &str| -> Result<(), String> {
        if name.is_empty() && !rest.trim_start().starts_with(['\'', '"']) {
            Err(usage(verb, args))
        } else {
            Ok(())
        }
    };
    let need_tail = |args: &str| -> Result<(), String> {
        need_name(args)?;
        if tail.is_empty() {
            Err(usage(verb, args))
        } else {
            Ok(())
        }
    };
    match verb {
        "connect" => {
            need_tail("NAME CONNINFO")?;
            db.connect(&name, tail).map_err(shown)?;
            outln!("OK");
            // psql's line for an encrypted connection.
            if db.ssl_in_use(&name).unwrap_or(false) {
                let attr = |a: &str| {
                    db.ssl_attribute(&name, a)
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                };
                outln!(
                    "SSL connection (protocol: {}, cipher: {}, compression: {})",
                    attr("protocol"),
                    attr("cipher"),
                    attr("compression")
                );
            }
        }
        "send" => {
            need_tail("NAME SQL")?;
            db.send_query(&name, tail).map_err(shown)?;
            outln!("1");
        }
        "busy" => {
            need_name("NAME")?;
            let busy = db.is_busy(&name).map_err(shown)?;
            outln!("{}", u8::from(busy));
        }
        "result" => {
            need_name("NAME")?;
            let next = db.get_result(&name);
            print_notices(db, &name);
            match next.map_err(shown)? {
                Some(result) => out!("{}", render_result(&result, null)),
                None => outln!("(end of results)"),
            }
        }
        "cancel" => {
            need_name("NAME")?;
            db.cancel_query(&name).map_err(shown)?;
            outln!("OK");
        }
        "errmsg" => {
            need_name("NAME")?;
            match db.error_message(&name).map_err(shown)? {
                Some(text) => outln!("{text}"),
                None => outln!("OK"),
            }
        }
        "notify" => {
            need_name("NAME")?;
            let notes = db.get_notify(&name).map_err(shown)?;
            let table = Table {
                headers: vec!["notify_name".into(), "be_pid".into(), "extra".into()],
                align: vec![Align::Left, Align::Right, Align::Left],
                rows: notes
                    .iter()
                    .map(|n| vec![n.channel.clone(), n.pid.to_string(), n.payload.clone()])
                    .collect(),
            };
            out!("{}", table.render());
            outln!("{}\n", row_count(notes.len()));
        }
        "conns" => {
            let mut names = db.connections();
            names.sort();
            if names.is_empty() {
                outln!("(none)");
            }
            for name in names {
                outln!("{name}");
            }
        }
        "disconnect" => {
            need_name("NAME")?;
            db.disconnect(&name).map_err(shown)?;
            outln!("OK");
        }
        "query" => {
            need_tail("TARGET SQL")?;
            let result = db.query(&name, tail);
            print_notices(db, &name);
            out!("{}", render_result(&result.map_err(shown)?, null));
        }
        "exec" => {
            need_tail("TARGET SQL")?;
            let tag = db.exec(&name, tail);
            print_notices(db, &name);
            outln!("{}", tag.map_err(shown)?);
        }
        _ => {
            return Err(format!(
                "unknown command \"{verb}\"; `help` lists the commands"
            ));
        }
    }
    Ok(())
}

fn print_notices(db: &mut Dblink, name: &str) {
    if let Ok(notices) = db.take_notices(name) {
        for notice in notices {
            out!("{}", render_error(&notice));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_reads_words_and_quotes() {
        assert_eq!(token("a SELECT 1").unwrap(), ("a".to_owned(), "SELECT 1"));
        assert_eq!(
            token("'host=x user=''y''' SELECT 1").unwrap(),
            ("host=x user='y'".to_owned(), "SELECT 1")
        );
        assert_eq!(token("\"a b\"").unwrap(), ("a b".to_owned(), ""));
        assert!(token("'open").is_err());
    }
}

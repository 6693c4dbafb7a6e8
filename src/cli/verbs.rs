//! The shell's verbs: dblink's, and libpq's parameters and pipelines, on named connections.

use std::io::Write as _;
use std::time::{Duration, Instant};

use pgdblink::{Dblink, Error, ErrorKind, QueryResult};

use super::interrupt::{self, Interrupt, POLL};
use super::shell::HELP;
use super::table::{Align, Table, render_error, render_result, row_count};

/// After a command: go on or leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// The name a temporary connection (a connection string as TARGET) lives under while it is used:
/// no name a user can type (it has a NUL).
const TEMPORARY: &str = "\0temporary";

/// The shell's state.
pub struct Session {
    db: Dblink,
    null: String,
    interrupt: Interrupt,
    /// Parameters of the next send, query, exec or execute (`bind`).
    params: Option<Vec<Option<String>>>,
}

/// Shown on stderr; a failed command.
struct Failure(String);

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(render_error(&e))
    }
}

impl From<String> for Failure {
    fn from(text: String) -> Failure {
        Failure(text)
    }
}

type Outcome = Result<(), Failure>;

/// Splits off the first word.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// Splits off the first token: a word, or a text in single or double quotes (a doubled quote stands
/// for itself). The second value says whether it was quoted.
fn token(s: &str) -> Result<(String, bool, &str), String> {
    let s = s.trim_start();
    let Some(q) = s.chars().next().filter(|c| *c == '\'' || *c == '"') else {
        let (w, rest) = word(s);
        return Ok((w.to_owned(), false, rest));
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
            return Ok((out, true, s[1 + i + 1..].trim_start()));
        }
        out.push(c);
    }
    Err(format!("unterminated quoted text: {s}"))
}

fn usage(verb: &str, args: &str) -> Failure {
    Failure(format!("usage: {verb} {args}\n"))
}

impl Session {
    pub fn new(db: Dblink, null: String, interrupt: Interrupt) -> Session {
        Session {
            db,
            null,
            interrupt,
            params: None,
        }
    }

    /// Executes one command; whether to go on, and whether it succeeded (its failure, if any, is
    /// printed on stderr).
    pub fn execute(&mut self, command: &str) -> (Flow, bool) {
        let command = command.trim();
        let (verb, rest) = word(command);
        let verb = verb.to_ascii_lowercase();
        let outcome = match verb.as_str() {
            "quit" | "exit" | "\\q" => return (Flow::Quit, true),
            "help" | "\\?" | "?" => {
                outln!("{HELP}");
                Ok(())
            }
            _ => self.verb(&verb, rest),
        };
        let _ = std::io::stdout().flush();
        match outcome {
            Ok(()) => (Flow::Continue, true),
            Err(Failure(text)) => {
                eprint!("{text}");
                if !text.ends_with('\n') {
                    eprintln!();
                }
                (Flow::Continue, false)
            }
        }
    }

    fn verb(&mut self, verb: &str, rest: &str) -> Outcome {
        if verb == "bind" {
            return self.bind(rest);
        }
        let (name, quoted, tail) = token(rest)?;
        let has_name = !name.is_empty() || quoted;
        let need = |ok: bool, args: &str| if ok { Ok(()) } else { Err(usage(verb, args)) };
        match verb {
            "connect" => {
                need(has_name && !tail.is_empty(), "NAME CONNINFO")?;
                self.connect(&name, tail)
            }
            "send" => {
                need(has_name && !tail.is_empty(), "NAME SQL;")?;
                match self.params.take() {
                    Some(p) => self.db.send_query_params(&name, tail, &as_refs(&p))?,
                    None => self.db.send_query(&name, tail)?,
                }
                outln!("1");
                Ok(())
            }
            "busy" => {
                need(has_name, "NAME")?;
                outln!("{}", u8::from(self.db.is_busy(&name)?));
                Ok(())
            }
            "result" => {
                need(has_name, "NAME")?;
                interrupt::wait_ready(&mut self.db, &name, &self.interrupt)?;
                let next = self.db.get_result(&name);
                self.print_notices(&name);
                match next? {
                    Some(result) => out!("{}", render_result(&result, &self.null)),
                    None => outln!("(end of results)"),
                }
                Ok(())
            }
            "cancel" => {
                need(has_name, "NAME")?;
                self.db.cancel_query(&name)?;
                outln!("OK");
                Ok(())
            }
            "errmsg" => {
                need(has_name, "NAME")?;
                match self.db.error_message(&name)? {
                    Some(text) => outln!("{text}"),
                    None => outln!("OK"),
                }
                Ok(())
            }
            "notify" => {
                need(has_name, "NAME")?;
                self.notify(&name)
            }
            "conns" => {
                let mut names = self.db.connections();
                names.retain(|n| n != TEMPORARY);
                names.sort();
                if names.is_empty() {
                    outln!("(none)");
                }
                for name in names {
                    outln!("{name}");
                }
                Ok(())
            }
            "disconnect" => {
                need(has_name, "NAME")?;
                self.db.disconnect(&name)?;
                outln!("OK");
                Ok(())
            }
            "query" | "exec" => {
                need(has_name && !tail.is_empty(), "TARGET SQL;")?;
                self.query(verb == "exec", &name, tail)
            }
            _ => self.verb_more(verb, &name, has_name, tail),
        }
    }

    /// Cursors, waits, parameters, pipelines and settings.
    fn verb_more(&mut self, verb: &str, name: &str, has_name: bool, tail: &str) -> Outcome {
        let need = |ok: bool, args: &str| if ok { Ok(()) } else { Err(usage(verb, args)) };
        match verb {
            "open" => {
                let (cursor, sql) = word(tail);
                need(
                    has_name && !cursor.is_empty() && !sql.is_empty(),
                    "NAME CURSOR SQL;",
                )?;
                let sql = sql.trim_end().trim_end_matches(';');
                self.db.open(name, cursor, sql)?;
                self.print_notices(name);
                outln!("OK");
            }
            "fetch" => {
                let (cursor, count) = word(tail);
                need(has_name && !cursor.is_empty(), "NAME CURSOR [COUNT]")?;
                let count = match count {
                    "" => 10,
                    n => n.parse().map_err(|_| usage(verb, "NAME CURSOR [COUNT]"))?,
                };
                let rows = self.db.fetch(name, cursor, count);
                self.print_notices(name);
                out!("{}", render_result(&QueryResult::Rows(rows?), &self.null));
            }
            "close" => {
                let (cursor, _) = word(tail);
                need(has_name && !cursor.is_empty(), "NAME CURSOR")?;
                self.db.close(name, cursor)?;
                outln!("OK");
            }
            "wait" => self.wait(name)?,
            "prepare" => {
                let (statement, sql) = word(tail);
                need(
                    has_name && !statement.is_empty() && !sql.is_empty(),
                    "NAME STMT SQL;",
                )?;
                self.db.send_prepare(name, statement, sql)?;
                outln!("1");
            }
            "execute" => {
                let (statement, _) = word(tail);
                need(has_name && !statement.is_empty(), "NAME STMT")?;
                let params = self.params.take().unwrap_or_default();
                self.db
                    .send_query_prepared(name, statement, &as_refs(&params))?;
                outln!("1");
            }
            "pipeline" => {
                let (what, _) = word(tail);
                need(has_name, "NAME on|off|sync|flush|status")?;
                match what {
                    "on" => self.db.enter_pipeline_mode(name)?,
                    "off" => self.db.exit_pipeline_mode(name)?,
                    "sync" => self.db.pipeline_sync(name)?,
                    "flush" => self.db.send_flush_request(name)?,
                    "status" => {}
                    _ => return Err(usage(verb, "NAME on|off|sync|flush|status")),
                }
                outln!(
                    "{}",
                    format!("{:?}", self.db.pipeline_status(name)?).to_lowercase()
                );
            }
            "\\pset" => {
                need(name == "null", "null TEXT")?;
                let (text, _, _) = token(tail)?;
                self.null = text;
                outln!("Null display is \"{}\".", self.null);
            }
            _ => {
                return Err(Failure(format!(
                    "unknown command \"{verb}\"; `help` lists the commands\n"
                )));
            }
        }
        Ok(())
    }

    /// `bind [VALUE ...]`: the parameters of the next send, query, exec or execute.
    fn bind(&mut self, mut rest: &str) -> Outcome {
        let mut params = Vec::new();
        while !rest.trim().is_empty() {
            let (value, quoted, more) = token(rest)?;
            params.push((quoted || value != "NULL").then_some(value));
            rest = more;
        }
        let n = params.len();
        outln!("{n} parameter{}", if n == 1 { "" } else { "s" });
        self.params = Some(params);
        Ok(())
    }

    fn connect(&mut self, name: &str, conninfo: &str) -> Outcome {
        let outcome = self.db.connect(name, conninfo);
        self.print_notices(name);
        outcome?;
        outln!("OK");
        // psql's line for an encrypted connection.
        if self.db.ssl_in_use(name).unwrap_or(false) {
            let attr = |a: &str| {
                self.db
                    .ssl_attribute(name, a)
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
        Ok(())
    }

    fn notify(&mut self, name: &str) -> Outcome {
        let notes = self.db.get_notify(name)?;
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
        Ok(())
    }

    /// `query`/`exec`: on a named connection, or on a temporary one for a connection string; the
    /// wait for results sees Ctrl-C.
    fn query(&mut self, exec: bool, target: &str, sql: &str) -> Outcome {
        let temporary = !self.db.connections().iter().any(|n| n == target);
        let name = if temporary {
            self.db.connect(TEMPORARY, target)?;
            TEMPORARY
        } else {
            target
        };
        let outcome = self.run_to_end(name, sql);
        self.print_notices(name);
        if temporary {
            let _ = self.db.disconnect(TEMPORARY);
        }
        let result = outcome?;
        if !exec {
            out!("{}", render_result(&result, &self.null));
        } else if let QueryResult::Rows(_) = result {
            return Err(Failure::from(
                Error::new(ErrorKind::Usage, "statement returning results not allowed")
                    .with_severity("ERROR")
                    .with_code("2F003"),
            ));
        } else {
            outln!("{}", result.command_tag());
        }
        Ok(())
    }

    /// Sends `sql` (with the bound parameters, if any) and takes every result: the last one, or the
    /// first error.
    fn run_to_end(&mut self, name: &str, sql: &str) -> Result<QueryResult, Error> {
        match self.params.take() {
            Some(p) => self.db.send_query_params(name, sql, &as_refs(&p))?,
            None => self.db.send_query(name, sql)?,
        }
        let mut last = Ok(QueryResult::EmptyQuery);
        loop {
            interrupt::wait_ready(&mut self.db, name, &self.interrupt)?;
            match self.db.get_result(name) {
                Ok(Some(result)) => {
                    if last.is_ok() {
                        last = Ok(result);
                    }
                }
                Ok(None) => return last,
                Err(e) => {
                    if last.is_ok() {
                        last = Err(e);
                    }
                }
            }
        }
    }

    /// `wait [SECONDS]`: the names with a result ready, or `(none)` when nothing became ready.
    fn wait(&mut self, seconds: &str) -> Outcome {
        let timeout = match seconds {
            "" => None,
            s => match s.parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..1e6).contains(&v) => {
                    Some(Duration::from_secs_f64(v))
                }
                _ => return Err(usage("wait", "[SECONDS]")),
            },
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut cancelled = false;
        let ready = loop {
            if self.interrupt.pending() && !cancelled {
                cancelled = true;
                let names = self.db.connections();
                interrupt::cancel_all(&mut self.db, &names);
            }
            let step = deadline.map_or(POLL, |d| {
                d.saturating_duration_since(Instant::now()).min(POLL)
            });
            let ready = self.db.wait(Some(step))?;
            if !ready.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                break ready;
            }
            if !self
                .db
                .connections()
                .iter()
                .any(|n| self.db.is_busy(n).unwrap_or(false))
            {
                break Vec::new();
            }
        };
        if ready.is_empty() {
            outln!("(none)");
        }
        for name in ready {
            outln!("{name}");
        }
        Ok(())
    }

    /// Notices and warnings (and the connection's own warnings, e.g. about ~/.pgpass) on stderr.
    fn print_notices(&mut self, name: &str) {
        if let Ok(notices) = self.db.take_notices(name) {
            let _ = std::io::stdout().flush();
            for notice in notices {
                eprint!("{}", render_error(&notice));
            }
        }
    }
}

fn as_refs(params: &[Option<String>]) -> Vec<Option<&str>> {
    params.iter().map(|p| p.as_deref()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_reads_words_and_quotes() {
        assert_eq!(
            token("a SELECT 1").unwrap(),
            ("a".to_owned(), false, "SELECT 1")
        );
        assert_eq!(
            token("'host=x user=''y''' SELECT 1").unwrap(),
            ("host=x user='y'".to_owned(), true, "SELECT 1")
        );
        assert_eq!(token("\"a b\"").unwrap(), ("a b".to_owned(), true, ""));
        assert!(token("'open").is_err());
    }
}

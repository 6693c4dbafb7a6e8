//! `pgdblink shell`: dblink's verbs at an interactive prompt, or read from a script.

use std::io::{self, BufRead, IsTerminal, Write};

use pgdblink::{Dblink, Error, ErrorKind};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use super::interrupt::Interrupt;
use super::sqlscan;
use super::verbs::{Flow, Session};

pub const HELP: &str = "\
Commands (NAME is a connection name; TARGET a name or a connection string, quoted if it has spaces;
SQL goes on over several lines until one ends with `;`, as in psql):
  connect NAME CONNINFO      dblink_connect: open a connection under NAME
  send NAME SQL;             dblink_send_query: dispatch SQL without waiting
  busy NAME                  dblink_is_busy: 1 if `result` would wait, else 0
  result NAME                dblink_get_result: wait for the next result (`(end of results)` after the last)
  cancel NAME                dblink_cancel_query: cancel the running query
  errmsg NAME                dblink_error_message: OK, or the last error
  notify NAME                dblink_get_notify: notifications received so far
  conns                      dblink_get_connections: the open names
  disconnect NAME            dblink_disconnect: close NAME
  query TARGET SQL;          dblink: run SQL, show its last result
  exec TARGET SQL;           dblink_exec: run SQL, show its command tag
  open NAME CURSOR SQL;      dblink_open: declare a cursor (in a transaction begun for it if none)
  fetch NAME CURSOR [COUNT]  dblink_fetch: up to COUNT rows (default 10)
  close NAME CURSOR          dblink_close: close a cursor
  wait [SECONDS]             the connections whose results are ready (all in flight, at most SECONDS)
  bind [VALUE ...]           parameters $1, $2, ... of the next send, query, exec or execute
                             (NULL unquoted is SQL NULL; 'NULL' is the text)
  prepare NAME STMT SQL;     PQsendPrepare: prepare STMT (take its result with `result`)
  execute NAME STMT          PQsendQueryPrepared: run STMT with the bound parameters
  pipeline NAME on|off|sync|flush|status   libpq's pipeline mode
  \\pset null TEXT            show SQL NULL as TEXT ('' for nothing)
  help                       this text
  quit                       leave (also exit, \\q, Ctrl-D)
Lines starting with -- or # between commands are comments. Ctrl-C while a command waits cancels
the statements in flight; at the prompt it clears the line.";

/// What the shell was asked to do.
#[derive(Debug)]
pub struct Options {
    pub null: String,
    pub echo: bool,
    pub on_error_stop: bool,
}

/// Exit status: a script with a failed command.
const FAILED: u8 = 1;
/// Exit status: a script stopped by --on-error-stop (psql's status for ON_ERROR_STOP).
const STOPPED: u8 = 3;

/// Runs the shell until end of input or `quit`; returns the exit status.
pub fn shell(options: Options, interrupt: &Interrupt) -> Result<u8, Error> {
    let mut session = Session::new(Dblink::try_new()?, options.null.clone(), interrupt.clone());
    if io::stdin().is_terminal() {
        interactive(&mut session, interrupt)?;
        return Ok(0);
    }
    let mut failed = false;
    let mut command = String::new();
    let mut lines = io::stdin().lock().lines();
    loop {
        let line = match lines.next() {
            Some(line) => Some(line?),
            None => None,
        };
        if interrupt.pending() {
            return Ok(FAILED);
        }
        let Some(line) = line else {
            // psql runs an unfinished last statement at the end of a script.
            if !command.trim().is_empty() {
                let (flow, ok) = session.execute(&command);
                failed |= !ok;
                let _ = flow;
            }
            break;
        };
        if options.echo {
            outln!(
                "{}{line}",
                if command.is_empty() {
                    "pgdblink> "
                } else {
                    "pgdblink-> "
                }
            );
        }
        if !add_line(&mut command, &line) {
            continue;
        }
        let (flow, ok) = session.execute(&std::mem::take(&mut command));
        let _ = io::stdout().flush();
        failed |= !ok;
        if interrupt.pending() {
            return Ok(FAILED);
        }
        if !ok && options.on_error_stop {
            return Ok(STOPPED);
        }
        if flow == Flow::Quit {
            break;
        }
    }
    Ok(if failed { FAILED } else { 0 })
}

/// Adds a line to the command being read; true when the command is complete: a line of a verb
/// without SQL, or SQL ending with `;`. Blank and comment lines between commands are skipped.
fn add_line(command: &mut String, line: &str) -> bool {
    if command.is_empty() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("--") || t.starts_with('#') {
            return false;
        }
    } else {
        command.push('\n');
    }
    command.push_str(line);
    !takes_sql(command) || sqlscan::complete(command)
}

/// Whether the command's verb takes SQL (which may go on over several lines).
fn takes_sql(command: &str) -> bool {
    let verb = command.split_whitespace().next().unwrap_or("");
    ["send", "query", "exec", "open", "prepare"]
        .iter()
        .any(|v| v.eq_ignore_ascii_case(verb))
}

fn interactive(session: &mut Session, interrupt: &Interrupt) -> Result<(), Error> {
    let mut editor =
        DefaultEditor::new().map_err(|e| Error::new(ErrorKind::Io, format!("line editor: {e}")))?;
    outln!("pgdblink shell: dblink's verbs on named connections; `help` lists them.");
    let mut command = String::new();
    loop {
        let prompt = if command.is_empty() {
            "pgdblink> "
        } else {
            "pgdblink-> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !add_line(&mut command, &line) {
                    continue;
                }
                let _ = editor.add_history_entry(command.as_str());
                interrupt.clear();
                let (flow, _) = session.execute(&std::mem::take(&mut command));
                interrupt.clear();
                if flow == Flow::Quit {
                    break;
                }
            }
            // Ctrl-C at the prompt: the line, and any unfinished command, are dropped (as psql).
            Err(ReadlineError::Interrupted) => command.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                return Err(Error::new(ErrorKind::Io, format!("reading input: {e}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_end_at_the_line_or_at_a_semicolon() {
        let mut c = String::new();
        assert!(!add_line(&mut c, "  -- a comment"));
        assert!(add_line(&mut c, "busy a"));
        let mut c = String::new();
        assert!(!add_line(&mut c, "send a SELECT 1,"));
        assert!(!add_line(&mut c, "  'x;"));
        assert!(add_line(&mut c, "  y';"));
        assert_eq!(c, "send a SELECT 1,\n  'x;\n  y';");
    }
}

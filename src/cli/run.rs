//! `pgdblink run`: one SQL text on many named connections at once.
//!
//! Results, command tags and status lines go to stdout; errors, notices and warnings to stderr (each
//! first line prefixed with `[NAME] `). Rows stream: the SQL is sent in chunked-rows mode and a row
//! set is printed chunk by chunk, each chunk aligned on its own as psql's `FETCH_COUNT` does (the
//! header with the first chunk, the `(N rows)` footer after the last). A connection's output is held
//! back until it finishes, so that it prints as one block after its `[NAME] ok in T ms` line, unless
//! it grows past [`HOLD`]: then it is printed as it arrives, and the status line comes last.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use pgdblink::{Dblink, Error, QueryResult};

use super::interrupt::{self, Interrupt, POLL};
use super::table::{render_error, render_result, row_count, rows_table};

/// Rows per chunk of a row set.
pub const CHUNK_ROWS: usize = 1000;
/// Output held back per connection before it streams.
pub const HOLD: usize = 64 * 1024;

/// Text for stdout or for stderr.
enum Piece {
    Out(String),
    Err(String),
}

/// One connection's progress.
struct Conn {
    name: String,
    /// Its connection attempt is still running.
    connecting: bool,
    connected: bool,
    done: bool,
    failed: bool,
    started: Instant,
    elapsed: Option<Duration>,
    /// Output not printed yet, and its size.
    held: Vec<Piece>,
    held_bytes: usize,
    /// Printing as it arrives (its output outgrew [`HOLD`]).
    streaming: bool,
    /// Rows so far of the row set being received in chunks (`Some` between its chunks).
    rows_so_far: Option<usize>,
}

impl Conn {
    fn new(name: &str) -> Conn {
        Conn {
            name: name.to_owned(),
            connecting: false,
            connected: false,
            done: false,
            failed: false,
            started: Instant::now(),
            elapsed: None,
            held: Vec::new(),
            held_bytes: 0,
            streaming: false,
            rows_so_far: None,
        }
    }

    fn out(&mut self, text: String) {
        self.held_bytes += text.len();
        self.held.push(Piece::Out(text));
    }

    fn err(&mut self, text: &str) {
        let text = format!("[{}] {text}", self.name);
        self.held_bytes += text.len();
        self.held.push(Piece::Err(text));
    }

    fn status(&self) -> String {
        let name = &self.name;
        match (self.connected, self.elapsed) {
            (false, _) => format!("[{name}] could not connect\n"),
            (true, Some(t)) => format!(
                "[{name}] {} in {:.3} ms\n",
                if self.failed { "failed" } else { "ok" },
                t.as_secs_f64() * 1e3
            ),
            (true, None) => format!("[{name}] failed\n"),
        }
    }
}

/// Where the output stands: which streaming connection printed last, whether stdout's last line is
/// blank.
struct Printer {
    last_streamed: Option<String>,
    blank: bool,
}

impl Printer {
    fn new() -> Printer {
        Printer {
            last_streamed: None,
            blank: true,
        }
    }

    fn out(&mut self, text: &str) {
        if !text.is_empty() {
            out!("{text}");
            self.blank = text.ends_with("\n\n") || (self.blank && text == "\n");
        }
    }

    fn print(&mut self, pieces: Vec<Piece>) {
        for piece in pieces {
            match piece {
                Piece::Out(text) => self.out(&text),
                Piece::Err(text) => {
                    let _ = std::io::stdout().flush();
                    eprint!("{text}");
                }
            }
        }
    }

    /// Prints what `conn` holds if it finished (status line first) or streams (status line last);
    /// one blank line after each connection's output.
    fn flush(&mut self, conn: &mut Conn) {
        if !conn.streaming && !conn.done && conn.held_bytes <= HOLD {
            return;
        }
        if !conn.streaming && conn.done {
            self.out(&conn.status());
        } else {
            if self.last_streamed.as_deref() != Some(&conn.name) && !conn.held.is_empty() {
                self.out(&format!("[{}]\n", conn.name));
            }
            conn.streaming = true;
            self.last_streamed = Some(conn.name.clone());
        }
        self.print(std::mem::take(&mut conn.held));
        conn.held_bytes = 0;
        if conn.streaming && conn.done {
            self.out(&conn.status());
            self.last_streamed = None;
        }
        if conn.done && !self.blank {
            self.out("\n");
            self.blank = true;
        }
    }
}

/// Runs `sql` on every `(name, conninfo)` and prints each connection's output; true iff all succeeded
/// and no Ctrl-C interrupted it.
///
/// Every connection is started at once ([`Dblink::connect_start`]); each one's query is sent as soon
/// as its own connection is ready, and a failed connect is printed as soon as it is known, so a
/// silent host never holds back the others.
pub fn run(
    conns: &[(String, String)],
    sql: &str,
    null: &str,
    interrupt: &Interrupt,
) -> Result<bool, Error> {
    let mut db = Dblink::try_new()?;
    let mut all = start_all(&mut db, conns);
    let mut printer = Printer::new();
    for conn in all.iter_mut().filter(|c| c.done) {
        printer.flush(conn);
    }
    let mut cancelled = false;
    while all.iter().any(|c| !c.done) {
        if interrupt.pending() && !cancelled {
            cancelled = true;
            abandon_connecting(&mut db, &mut all, &mut printer);
            let names: Vec<String> = all
                .iter()
                .filter(|c| !c.done)
                .map(|c| c.name.clone())
                .collect();
            interrupt::cancel_all(&mut db, &names);
        }
        let ready = db.wait(Some(POLL))?;
        for conn in all.iter_mut().filter(|c| !c.done) {
            if conn.connecting {
                // A connecting name is reported exactly once, when its attempt has ended.
                if ready.contains(&conn.name) {
                    finish_connect(&mut db, conn, sql);
                    printer.flush(conn);
                }
                continue;
            }
            // An empty answer: a timeout, or nothing in flight any more (a lost connection).
            if (ready.is_empty() || ready.contains(&conn.name)) && !db.is_busy(&conn.name)? {
                collect(&mut db, conn, null)?;
                printer.flush(conn);
            }
        }
    }
    Ok(!cancelled && !interrupt.pending() && all.iter().all(|c| !c.failed))
}

/// Starts every connection without waiting; one whose string does not parse (or whose name is
/// taken) is done at once, with its error held for printing.
fn start_all(db: &mut Dblink, conns: &[(String, String)]) -> Vec<Conn> {
    let mut all = Vec::with_capacity(conns.len());
    for (name, conninfo) in conns {
        let mut conn = Conn::new(name);
        match db.connect_start(name, conninfo) {
            Ok(()) => conn.connecting = true,
            Err(e) => {
                conn.failed = true;
                conn.done = true;
                conn.err(&render_error(&e));
            }
        }
        all.push(conn);
    }
    all
}

/// The attempt under `conn` has ended: on success the query is sent at once, on failure the error
/// is held for printing.
fn finish_connect(db: &mut Dblink, conn: &mut Conn, sql: &str) {
    conn.connecting = false;
    let outcome = db.connect_finish(&conn.name);
    // A warning of the connection phase (e.g. about ~/.pgpass) is queued as a notice.
    take_notices(db, conn);
    if let Err(e) = outcome {
        conn.failed = true;
        conn.done = true;
        conn.err(&render_error(&e));
        return;
    }
    conn.connected = true;
    conn.started = Instant::now();
    if let Err(e) = db.send_query_chunked(&conn.name, sql, CHUNK_ROWS) {
        conn.failed = true;
        conn.done = true;
        conn.elapsed = Some(conn.started.elapsed());
        conn.err(&render_error(&e));
    }
}

/// Ctrl-C while connecting: the attempts still running are given up (libpq's `PQfinish` of a
/// connection in progress) and reported as such.
fn abandon_connecting(db: &mut Dblink, all: &mut [Conn], printer: &mut Printer) {
    for conn in all.iter_mut().filter(|c| c.connecting) {
        conn.connecting = false;
        conn.failed = true;
        conn.done = true;
        let _ = db.disconnect(&conn.name);
        conn.err("connection attempt abandoned (Ctrl-C)\n");
        printer.flush(conn);
    }
}

fn take_notices(db: &mut Dblink, conn: &mut Conn) {
    for notice in db.take_notices(&conn.name).unwrap_or_default() {
        conn.err(&render_error(&notice));
    }
}

/// Takes the results that are ready, until the end marker or until the connection would wait.
fn collect(db: &mut Dblink, conn: &mut Conn, null: &str) -> Result<(), Error> {
    loop {
        let next = db.get_result(&conn.name);
        take_notices(db, conn);
        match next {
            Ok(Some(result)) => push_result(conn, &result, null),
            Ok(None) => {
                conn.done = true;
                conn.elapsed = Some(conn.started.elapsed());
                return Ok(());
            }
            Err(e) => {
                conn.rows_so_far = None;
                conn.failed = true;
                conn.err(&render_error(&e));
            }
        }
        if conn.held_bytes > HOLD || db.is_busy(&conn.name)? {
            return Ok(());
        }
    }
}

/// A result, or one chunk of a row set: the header with the first chunk, the footer after the last.
fn push_result(conn: &mut Conn, result: &QueryResult, null: &str) {
    let QueryResult::Rows(rows) = result else {
        conn.out(render_result(result, null));
        return;
    };
    let first = conn.rows_so_far.is_none();
    let total = conn.rows_so_far.unwrap_or(0) + rows.len();
    let mut text = rows_table(rows, null).render_part(first);
    if rows.is_partial() {
        conn.rows_so_far = Some(total);
    } else {
        conn.rows_so_far = None;
        let _ = write!(text, "{}\n\n", row_count(total));
    }
    conn.out(text);
}

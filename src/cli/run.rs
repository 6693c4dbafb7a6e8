//! `pgdblink run`: one SQL text on many named connections at once.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pgdblink::{Dblink, Error, QueryResult};

use super::table::{render_error, render_result};

/// What happened on one connection.
struct Outcome {
    name: String,
    /// Results and errors, in order.
    output: String,
    /// Notices and warnings, in arrival order (shown after the results: the server interleaves them
    /// with results, but one read can hold both, so their exact place is not known).
    notices: String,
    failed: bool,
    started: Instant,
    elapsed: Option<Duration>,
    connected: bool,
}

/// Runs `sql` on every `(name, conninfo)` and prints each connection's output; true iff all succeeded.
pub fn run(conns: &[(String, String)], sql: &str, null: &str) -> Result<bool, Error> {
    let mut db = Dblink::try_new()?;
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (name, conninfo) in conns {
        let mut outcome = Outcome {
            name: name.clone(),
            output: String::new(),
            notices: String::new(),
            failed: false,
            started: Instant::now(),
            elapsed: None,
            connected: false,
        };
        match db.connect(name, conninfo) {
            Ok(()) => outcome.connected = true,
            Err(e) => {
                outcome.failed = true;
                outcome.output.push_str(&render_error(&e));
            }
        }
        outcomes.push(outcome);
    }
    let mut pending: HashSet<String> = HashSet::new();
    for outcome in outcomes.iter_mut().filter(|o| o.connected) {
        outcome.started = Instant::now();
        match db.send_query(&outcome.name, sql) {
            Ok(()) => {
                pending.insert(outcome.name.clone());
            }
            Err(e) => {
                outcome.failed = true;
                outcome.elapsed = Some(outcome.started.elapsed());
                outcome.output.push_str(&render_error(&e));
            }
        }
    }
    while !pending.is_empty() {
        let mut ready = db.wait(None)?;
        if ready.is_empty() {
            // Nothing is in flight any more (a lost connection): take what is left without waiting.
            ready = pending.iter().cloned().collect();
        }
        for name in ready {
            let Some(outcome) = outcomes.iter_mut().find(|o| o.name == name) else {
                continue;
            };
            if collect(&mut db, outcome, null)? {
                pending.remove(&name);
            }
        }
    }
    let mut all_ok = true;
    for outcome in &outcomes {
        all_ok &= !outcome.failed;
        out!("{}", render_outcome(outcome));
    }
    Ok(all_ok)
}

/// Takes the results that are ready; true once the end marker has been taken.
fn collect(db: &mut Dblink, outcome: &mut Outcome, null: &str) -> Result<bool, Error> {
    let name = outcome.name.clone();
    loop {
        let next = db.get_result(&name);
        let done = matches!(next, Ok(None));
        if done {
            outcome.elapsed = Some(outcome.started.elapsed());
        }
        for notice in db.take_notices(&name)? {
            outcome.notices.push_str(&render_error(&notice));
        }
        match next {
            Ok(Some(result)) => push_result(&mut outcome.output, &result, null),
            Ok(None) => return Ok(true),
            Err(e) => {
                outcome.failed = true;
                outcome.output.push_str(&render_error(&e));
            }
        }
        if db.is_busy(&name)? {
            return Ok(false);
        }
    }
}

fn push_result(out: &mut String, result: &QueryResult, null: &str) {
    out.push_str(&render_result(result, null));
}

fn render_outcome(o: &Outcome) -> String {
    let mut head = format!("[{}] ", o.name);
    match (o.connected, o.elapsed) {
        (false, _) => head.push_str("could not connect"),
        (true, Some(t)) => {
            let _ = write!(
                head,
                "{} in {:.3} ms",
                if o.failed { "failed" } else { "ok" },
                t.as_secs_f64() * 1e3
            );
        }
        (true, None) => head.push_str("failed"),
    }
    let mut out = head;
    out.push('\n');
    out.push_str(&o.output);
    out.push_str(&o.notices);
    // One blank line after each connection (a table already ends in one).
    while out.ends_with("\n\n") {
        out.pop();
    }
    out.push('\n');
    out
}

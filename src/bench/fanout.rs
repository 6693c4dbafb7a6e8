//! Connection fan-out: many connections opened at once from one thread, meant to run through a
//! [`DelayProxy`](super::DelayProxy) so that the figure reflects a network.

use std::time::{Duration, Instant};

use crate::error::Error;

use super::ScenarioResult;

/// Points `conninfo` (a key=value string naming `port=FROM`) at port `to` instead: how the benches
/// send a throwaway cluster's connection string through the proxy.
pub fn via_port(conninfo: &str, from: u16, to: u16) -> String {
    conninfo.replacen(&format!("port={from}"), &format!("port={to}"), 1)
}

/// How long one connection alone takes to open (and is then closed): the reference the fan-out's
/// wall time is compared with.
pub fn single_connect_seconds(conninfo: &str) -> Result<f64, Error> {
    let t0 = Instant::now();
    let client = crate::driver::Client::connect(conninfo)?;
    let seconds = t0.elapsed().as_secs_f64();
    drop(client);
    Ok(seconds)
}

/// The per-attempt bound of the fan-out: an attempt still running after this is an error.
pub const FANOUT_TIMEOUT: Duration = Duration::from_secs(60);

/// Connection fan-out: `n_conns` connections started at once in one [`Dblink`](crate::Dblink)
/// (`connect_start` for all, then `wait` reports each finished attempt and `connect_finish` takes
/// its outcome), timed until every one is open. One operation is one connection opened; the
/// connections are closed afterwards, untimed. The notes give one connection's time alone and the
/// ratio of the fan-out's wall time to it.
pub fn connect_fanout(conninfo: &str, n_conns: usize) -> Result<ScenarioResult, Error> {
    let single = single_connect_seconds(conninfo)?;
    let mut db = crate::Dblink::try_new()?;
    let names: Vec<String> = (0..n_conns).map(|i| format!("c{i}")).collect();
    let meter = super::Meter::start();
    for name in &names {
        db.connect_start(name, conninfo)?;
    }
    let mut left = names.len();
    while left > 0 {
        let finished = db.wait(Some(FANOUT_TIMEOUT))?;
        if finished.is_empty() {
            return Err(super::unexpected(
                "connect fan-out: no attempt ended in 60 s",
            ));
        }
        for name in finished {
            db.connect_finish(&name)?;
            left -= 1;
        }
    }
    let r = super::result(
        format!("connect fan-out ({n_conns} connections)"),
        n_conns as u64,
        &meter,
        None,
        String::new(),
    );
    drop(db);
    Ok(with_single_note(r, single))
}

/// Adds one connection's time alone, and the fan-out's wall time relative to it, to the notes.
pub fn with_single_note(mut r: ScenarioResult, single_seconds: f64) -> ScenarioResult {
    r.notes = format!(
        "all at once in {:.1} ms; one connection alone {:.1} ms ({:.2}x)",
        r.seconds * 1e3,
        single_seconds * 1e3,
        if single_seconds > 0.0 {
            r.seconds / single_seconds
        } else {
            0.0
        }
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_port_rewrites_only_the_port() {
        assert_eq!(
            via_port("host=127.0.0.1 port=5433 user=u", 5433, 40000),
            "host=127.0.0.1 port=40000 user=u"
        );
        assert_eq!(via_port("host=h user=u", 5433, 1), "host=h user=u");
    }
}

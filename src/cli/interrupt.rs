//! Ctrl-C in `run` and `shell`, as psql handles it: the first SIGINT while statements run asks for
//! their cancellation (the caller polls [`Interrupt::pending`] and sends the cancel requests); a
//! second one, before the caller has cleared the first, ends the process as SIGINT's default action
//! does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgdblink::{Dblink, Error, ErrorKind};
use signal_hook::consts::SIGINT;

/// How long one wait for results lasts before the Ctrl-C flag is looked at again.
pub const POLL: Duration = Duration::from_millis(100);

/// The SIGINT flag.
#[derive(Clone, Debug)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// Installs the handlers: the default action when the flag is already set (registered first, so
    /// it sees the flag as it was), then the one that sets it.
    pub fn install() -> Result<Interrupt, Error> {
        let flag = Arc::new(AtomicBool::new(false));
        let io = |e: std::io::Error| Error::io(ErrorKind::Io, "installing the SIGINT handler", e);
        signal_hook::flag::register_conditional_default(SIGINT, Arc::clone(&flag)).map_err(io)?;
        signal_hook::flag::register(SIGINT, Arc::clone(&flag)).map_err(io)?;
        Ok(Interrupt { flag })
    }

    /// Whether Ctrl-C was pressed since the last [`clear`](Self::clear).
    pub fn pending(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Forgets a Ctrl-C: the next one cancels again instead of ending the process.
    pub fn clear(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }
}

/// Sends a cancel request for every named connection with a statement in flight (`busy`), as psql's
/// Ctrl-C does, and says so on stderr; a request that could not be delivered is reported there too.
pub fn cancel_all(db: &mut Dblink, names: &[String]) {
    let mut sent = false;
    for name in names {
        if !db.is_busy(name).unwrap_or(false) {
            continue;
        }
        match db.cancel_query(name) {
            Ok(()) => sent = true,
            Err(e) => eprintln!("[{name}] could not send cancel request: {}", e.message()),
        }
    }
    if sent {
        eprintln!("Cancel request sent");
    }
}

/// Waits until `name` has a result to take (or its end marker), at most [`POLL`] at a time so that a
/// Ctrl-C is seen: the first one cancels every statement in flight.
pub fn wait_ready(db: &mut Dblink, name: &str, interrupt: &Interrupt) -> Result<(), Error> {
    let mut cancelled = false;
    while db.is_busy(name)? {
        if interrupt.pending() && !cancelled {
            cancelled = true;
            let names = db.connections();
            cancel_all(db, &names);
        }
        db.wait_ready(name, Some(POLL))?;
    }
    Ok(())
}

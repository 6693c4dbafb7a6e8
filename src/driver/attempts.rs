//! The reactor's connection attempts: started without waiting, stepped whenever the reactor
//! dispatches events or an attempt's deadline passes, collected once ended.

use std::time::{Duration, Instant};

use super::connect::{ConnectAttempt, Progress};
use super::{ConnId, Reactor};
use crate::conninfo::{Config, Environment};
use crate::error::{Error, ErrorKind};

/// Identifies a connection attempt inside a [`Reactor`] ([`Reactor::connect_start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(usize);

impl AttemptId {
    /// The index of the attempt in its reactor (small, reused once the outcome is taken).
    pub fn index(self) -> usize {
        self.0
    }
}

enum Slot {
    Running(Box<ConnectAttempt>),
    Ended(Result<ConnId, Error>),
}

/// The attempts of one reactor.
#[derive(Default)]
pub(crate) struct Attempts {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    running: usize,
    /// Attempts that ended since the last [`Reactor::take_ended_connects`].
    ended: Vec<AttemptId>,
}

impl Attempts {
    /// Whether any attempt is running: the one check [`Reactor::dispatch`] makes when there is
    /// none.
    #[inline]
    pub(crate) fn any_running(&self) -> bool {
        self.running > 0
    }

    /// `timeout`, shortened to the nearest deadline of a running attempt.
    pub(crate) fn cap_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        let nearest = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Some(Slot::Running(a)) => a.deadline(),
                _ => None,
            })
            .min();
        match nearest {
            None => timeout,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                Some(timeout.map_or(left, |t| t.min(left)))
            }
        }
    }

    fn running(&self, a: AttemptId) -> Option<&ConnectAttempt> {
        match self.slots.get(a.0) {
            Some(Some(Slot::Running(attempt))) => Some(attempt),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Attempts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempts")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

/// Connecting without blocking (libpq's `PQconnectStart` / `PQconnectPoll`).
impl Reactor {
    /// Starts connecting and returns at once; the attempt makes progress whenever the reactor
    /// dispatches events ([`dispatch`](Self::dispatch), [`wait_until`](Self::wait_until) and
    /// everything built on them), each bounded by its own `connect_timeout`. A configuration that
    /// does not resolve ends the attempt at once with its error. DNS lookups block, one host at a
    /// time, when the attempt reaches the host (libpq resolves up front too).
    pub fn connect_start(&mut self, config: &Config, env: &dyn Environment) -> AttemptId {
        let slot = match ConnectAttempt::new(config, env) {
            Ok(attempt) => Slot::Running(Box::new(attempt)),
            Err(e) => Slot::Ended(Err(e)),
        };
        let a = &mut self.attempts;
        let index = match a.free.pop() {
            Some(i) => i,
            None => {
                a.slots.push(None);
                a.slots.len() - 1
            }
        };
        let id = AttemptId(index);
        match slot {
            Slot::Running(attempt) => {
                a.slots[index] = Some(Slot::Running(attempt));
                a.running += 1;
                self.step_attempt(index, Instant::now());
            }
            ended => {
                a.slots[index] = Some(ended);
                a.ended.push(id);
            }
        }
        id
    }

    /// Whether attempt `a` has ended (its outcome not yet taken). False for an unknown id.
    pub fn connect_ended(&self, a: AttemptId) -> bool {
        matches!(self.attempts.slots.get(a.0), Some(Some(Slot::Ended(_))))
    }

    /// Takes the outcome of an ended attempt (the id is free after); `None` while it runs. An
    /// unknown id is an error.
    pub fn connect_take(&mut self, a: AttemptId) -> Option<Result<ConnId, Error>> {
        let slot = self.attempts.slots.get_mut(a.0)?;
        match slot.take() {
            Some(Slot::Ended(outcome)) => {
                self.attempts.free.push(a.0);
                self.attempts.ended.retain(|&e| e != a);
                Some(outcome)
            }
            Some(running) => {
                *slot = Some(running);
                None
            }
            None => Some(Err(Error::new(
                ErrorKind::Usage,
                "no such connection attempt",
            ))),
        }
    }

    /// Blocks until attempt `a` has ended and takes its outcome; other connections and attempts
    /// keep being served meanwhile.
    pub fn connect_finish(&mut self, a: AttemptId) -> Result<ConnId, Error> {
        self.wait_until(None, |r| r.attempts.running(a).is_none())?;
        self.connect_take(a)
            .unwrap_or_else(|| Err(Error::new(ErrorKind::Usage, "no such connection attempt")))
    }

    /// Abandons attempt `a`: closes its socket (or the connection it made) and frees the id.
    pub fn connect_abandon(&mut self, a: AttemptId) {
        let Some(slot) = self.attempts.slots.get_mut(a.0) else {
            return;
        };
        match slot.take() {
            Some(Slot::Running(attempt)) => {
                self.attempts.running -= 1;
                if let Some(id) = attempt.socket() {
                    self.close(id);
                }
            }
            Some(Slot::Ended(Ok(id))) => self.close(id),
            Some(Slot::Ended(Err(_))) => {}
            None => return,
        }
        self.attempts.ended.retain(|&e| e != a);
        self.attempts.free.push(a.0);
    }

    /// The attempts that ended since the last call, each once.
    pub fn take_ended_connects(&mut self) -> Vec<AttemptId> {
        std::mem::take(&mut self.attempts.ended)
    }

    /// How many attempts are running.
    pub fn connects_running(&self) -> usize {
        self.attempts.running
    }

    /// The socket attempt `a` is using now, if any (to read its TLS state while connecting).
    pub fn connect_socket(&self, a: AttemptId) -> Option<ConnId> {
        self.attempts.running(a)?.socket()
    }

    /// The host (as given: name, `hostaddr` or socket directory) and port attempt `a` is trying.
    pub fn connect_target(&self, a: AttemptId) -> Option<(String, u16)> {
        let target = self.attempts.running(a)?.target()?;
        Some((super::host_name(target), target.port))
    }

    /// Steps every running attempt (one whose socket made no progress returns at once): called by
    /// [`dispatch`](Self::dispatch) after its reads when any attempt runs. Scanning them all,
    /// rather than the sockets with events, also catches input read without an event (a read that
    /// stopped at its per-turn budget and went on at the next turn) and passed deadlines.
    pub(crate) fn advance_connects(&mut self) {
        let now = Instant::now();
        for index in 0..self.attempts.slots.len() {
            if matches!(self.attempts.slots[index], Some(Slot::Running(_))) {
                self.step_attempt(index, now);
            }
        }
    }

    /// Steps attempt `index` as far as it goes without waiting.
    fn step_attempt(&mut self, index: usize, now: Instant) {
        let Some(Some(Slot::Running(mut attempt))) =
            self.attempts.slots.get_mut(index).map(|s| match s.take() {
                Some(Slot::Running(a)) => Some(Slot::Running(a)),
                other => {
                    *s = other;
                    None
                }
            })
        else {
            return;
        };
        match attempt.step(self, now) {
            Progress::Waiting => {
                self.attempts.slots[index] = Some(Slot::Running(attempt));
            }
            Progress::Ended(outcome) => {
                if let Ok(id) = &outcome
                    && let Some(target) = attempt.target()
                {
                    self.set_origin(*id, super::host_name(target), target.port);
                }
                self.attempts.running -= 1;
                self.attempts.slots[index] = Some(Slot::Ended(outcome));
                self.attempts.ended.push(AttemptId(index));
            }
        }
    }
}

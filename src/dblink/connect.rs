//! Connecting many at once (libpq's `PQconnectStart`), connecting with a parsed [`Config`], and
//! the waits with a deadline: a result, a notification on any connection.

use std::time::{Duration, Instant};

use super::{Dblink, Pending, could_not_connect, not_available};
use crate::conn::{PollResult, QueryResult};
use crate::conninfo::{Config, SystemEnvironment};
use crate::driver::{AttemptId, ConnId};
use crate::error::{Error, ErrorKind};

impl Dblink {
    /// Beyond dblink (libpq's `PQconnectStart`): starts connecting under `name` and returns at
    /// once. Only a taken name (`duplicate connection name`, 42710) or a connection string that
    /// does not parse fail here. The name is reserved while the attempt runs and listed by
    /// [`connections`](Self::connections); every attempt makes progress whenever the registry
    /// waits ([`wait`](Self::wait), [`get_result`](Self::get_result),
    /// [`connect_finish`](Self::connect_finish), ...), each bounded by its own `connect_timeout`.
    /// [`wait`](Self::wait) reports the name once when the attempt has ended, either way.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// for i in 0..100 {
    ///     db.connect_start(&format!("s{i}"), &format!("host=10.0.1.{i} dbname=app connect_timeout=5"))?;
    /// }
    /// let mut left = 100;
    /// while left > 0 {
    ///     for name in db.wait(None)? {
    ///         match db.connect_finish(&name) {
    ///             Ok(()) => println!("{name}: connected"),
    ///             Err(e) => println!("{name}: {}", e.detail().unwrap_or("")),
    ///         }
    ///         left -= 1;
    ///     }
    /// }
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn connect_start(&mut self, name: &str, conninfo: &str) -> Result<(), Error> {
        self.check_free(name)?;
        let config = Config::parse(conninfo).map_err(|e| could_not_connect(&e))?;
        self.start_attempt(name, &config);
        Ok(())
    }

    /// Like [`connect_start`](Self::connect_start) with a parsed configuration (its `Display`
    /// masks the password, so it cannot go through text).
    pub fn connect_start_with(&mut self, name: &str, config: &Config) -> Result<(), Error> {
        self.check_free(name)?;
        self.start_attempt(name, config);
        Ok(())
    }

    /// Like [`connect`](Self::connect) with a parsed configuration: the `PG*` environment and
    /// `~/.pgpass` fill in what it leaves out.
    ///
    /// ```no_run
    /// let mut config: pgdblink::Config = "host=db.example dbname=app user=app".parse()?;
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect_with("app", &config)?;
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn connect_with(&mut self, name: &str, config: &Config) -> Result<(), Error> {
        self.connect_start_with(name, config)?;
        self.connect_finish(name)
    }

    /// Blocks until the attempt under `name` has ended and returns exactly what
    /// [`connect`](Self::connect) would have returned (`could not establish connection`, 08001,
    /// with libpq's reason as the detail); on failure the name is freed. `Ok(())` at once for a
    /// name already connected. Any other verb on a name still connecting first waits like this,
    /// and on failure returns this error.
    pub fn connect_finish(&mut self, name: &str) -> Result<(), Error> {
        if self.names.contains_key(name) {
            return Ok(());
        }
        let outcome = match self.connecting.get(name) {
            None => return Err(not_available(name)),
            Some(Pending::Failed(_)) => None,
            Some(Pending::Running(a)) => {
                let a = *a;
                let outcome = self.reactor.connect_finish(a);
                self.set_attempt_name(a, None);
                Some(outcome)
            }
        };
        let pending = self.connecting.remove(name);
        match (outcome, pending) {
            (Some(Ok(id)), _) => {
                self.register(name, id);
                Ok(())
            }
            (Some(Err(e)), _) => Err(could_not_connect(&e)),
            (None, Some(Pending::Failed(e))) => Err(e),
            (None, _) => Err(not_available(name)),
        }
    }

    /// [`connect_finish`](Self::connect_finish), then the connection's id.
    pub(super) fn finish_then_id(&mut self, name: &str) -> Result<ConnId, Error> {
        self.connect_finish(name)?;
        self.id(name)
    }

    /// `duplicate connection name` (42710) if `name` is open or connecting.
    pub(super) fn check_free(&self, name: &str) -> Result<(), Error> {
        if self.names.contains_key(name) || self.connecting.contains_key(name) {
            return Err(Error::new(ErrorKind::Usage, "duplicate connection name")
                .with_severity("ERROR")
                .with_code(crate::sqlstate::DUPLICATE_OBJECT));
        }
        Ok(())
    }

    fn start_attempt(&mut self, name: &str, config: &Config) {
        let a = self.reactor.connect_start(config, &SystemEnvironment);
        self.set_attempt_name(a, Some(name.to_owned()));
        self.connecting.insert(name.to_owned(), Pending::Running(a));
    }

    fn set_attempt_name(&mut self, a: AttemptId, name: Option<String>) {
        if self.by_attempt.len() <= a.index() {
            self.by_attempt.resize(a.index() + 1, None);
        }
        self.by_attempt[a.index()] = name;
    }

    /// Forgets a name still connecting (closing its socket); false if it is not one.
    pub(super) fn abandon(&mut self, name: &str) -> bool {
        match self.connecting.remove(name) {
            Some(Pending::Running(a)) => {
                self.reactor.connect_abandon(a);
                self.set_attempt_name(a, None);
                true
            }
            Some(Pending::Failed(_)) => true,
            None => false,
        }
    }

    /// Collects the attempts that ended since the last look; returns their names.
    #[inline]
    pub(super) fn settle_ended(&mut self) -> Vec<String> {
        let ended = self.reactor.take_ended_connects();
        if ended.is_empty() {
            return Vec::new();
        }
        self.settle(ended)
    }

    /// Registers the connections `ended` made and keeps the failures for
    /// [`connect_finish`](Self::connect_finish); returns the names.
    pub(super) fn settle(&mut self, ended: Vec<AttemptId>) -> Vec<String> {
        let mut names = Vec::with_capacity(ended.len());
        for a in ended {
            let Some(name) = self.by_attempt.get_mut(a.index()).and_then(Option::take) else {
                continue;
            };
            match self.reactor.connect_take(a) {
                Some(Ok(id)) => {
                    self.connecting.remove(&name);
                    self.register(&name, id);
                }
                Some(Err(e)) => {
                    self.connecting
                        .insert(name.clone(), Pending::Failed(could_not_connect(&e)));
                }
                None => continue,
            }
            names.push(name);
        }
        names
    }

    /// Beyond dblink: blocks until [`is_busy`](Self::is_busy) would answer false for `name` (a
    /// result or the end marker is there to take, or nothing is in flight) or `timeout` passes
    /// (`None`: no limit); returns whether it is ready. Takes nothing: the next
    /// [`get_result`](Self::get_result) then returns at once. Other connections progress meanwhile,
    /// and a result waiting on another one does not end the wait early (unlike [`wait`](Self::wait)).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.send_query("c", "SELECT pg_sleep(1)")?;
    /// while !db.wait_ready("c", Some(Duration::from_millis(100)))? {
    ///     eprint!("."); // still running
    /// }
    /// let _ = db.get_result("c")?;
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn wait_ready(&mut self, name: &str, timeout: Option<Duration>) -> Result<bool, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let id = self.open_id(name)?;
        loop {
            if !self.conn_mut(id).is_busy() {
                return Ok(true);
            }
            if self.reactor.progress_now(id) {
                continue;
            }
            let Some(left) = time_left(deadline) else {
                return Ok(false);
            };
            self.reactor.dispatch(left)?;
        }
    }

    /// Like [`get_result`](Self::get_result), giving up after `timeout` (`None`: no limit):
    /// `Ok(Some(Some(r)))` a result, `Ok(Some(None))` the end marker, `Err` a failed statement,
    /// and `Ok(None)` when the time ran out first (the query is still in flight: take its results
    /// later, or cancel it). The same shape as [`Client::get_result_timeout`](crate::driver::Client::get_result_timeout).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.send_query("c", "SELECT pg_sleep(10)")?;
    /// if db.get_result_timeout("c", Some(Duration::from_millis(100)))?.is_none() {
    ///     db.cancel_query("c")?; // too slow
    /// }
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn get_result_timeout(
        &mut self,
        name: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<Option<QueryResult>>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let id = self.open_id(name)?;
        loop {
            match self.reactor.poll_result(id) {
                PollResult::Ready(r) => return r.map(|r| Some(Some(r))),
                PollResult::Done => {
                    let active = self.conn_mut(id).is_active();
                    self.set_in_flight(id, active);
                    return Ok(Some(None));
                }
                PollResult::Pending if self.reactor.progress_now(id) => {}
                PollResult::Pending => {
                    let Some(left) = time_left(deadline) else {
                        return Ok(None);
                    };
                    self.reactor.dispatch(left)?;
                }
            }
        }
    }

    /// Beyond dblink: blocks until a notification (`NOTIFY`) has arrived on any open connection, or
    /// `timeout` passes (`None`: no limit); returns the names of the connections that hold
    /// notifications (empty on timeout), for [`get_notify`](Self::get_notify). Returns at once when
    /// notifications are already waiting. Queries and connection attempts progress meanwhile.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("jobs", "dbname=postgres")?;
    /// db.exec("jobs", "LISTEN jobs")?;
    /// loop {
    ///     for name in db.wait_notify(Some(Duration::from_secs(60)))? {
    ///         for n in db.get_notify(&name)? {
    ///             println!("{name}: {} {}", n.channel, n.payload);
    ///         }
    ///     }
    /// }
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn wait_notify(&mut self, timeout: Option<Duration>) -> Result<Vec<String>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let has = |db: &Dblink, id: ConnId| {
            db.reactor
                .get(id)
                .is_some_and(|s| s.conn().has_notifications())
        };
        let mut found: Vec<ConnId> = self
            .names
            .values()
            .map(|e| e.id)
            .filter(|&id| has(self, id))
            .collect();
        while found.is_empty() {
            let Some(left) = time_left(deadline) else {
                break;
            };
            self.reactor.dispatch(left)?;
            found.extend(self.reactor.last_ready().filter(|&id| has(self, id)));
        }
        found.sort_unstable();
        found.dedup();
        Ok(found
            .into_iter()
            .filter_map(|id| self.by_id.get(id.index()).cloned().flatten())
            .collect())
    }
}

/// The time left until `deadline` as a wait's timeout: `Some(None)` without a deadline (wait
/// without limit), `Some(Some(left))` before it, `None` once it has passed.
fn time_left(deadline: Option<Instant>) -> Option<Option<Duration>> {
    match deadline {
        None => Some(None),
        Some(d) => d
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .map(Some),
    }
}

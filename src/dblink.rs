//! [`Dblink`]: PostgreSQL's dblink API on named connections, in Rust.

mod connect;
mod deadline;

pub(crate) use deadline::CANCEL_UNANSWERED_TEXT;
mod status;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::conn::{Connection, Notification, PipelineStatus, PollResult, QueryResult, Rows, State};
use crate::driver::{AttemptId, ConnId, Reactor};
use crate::error::{Error, ErrorKind};
use crate::protocol::backend::TransactionStatus;

/// How long [`Dblink::cancel_query`] waits for the server to close the cancel socket.
pub const CANCEL_TIMEOUT: Duration = Duration::from_secs(30);

/// A registry of named connections, all driven by one `mio::Poll` in the caller's thread: no async
/// runtime, no background threads. While a call waits on one connection, the input of every other
/// connection is still read and parsed, so no server stalls on a full socket buffer.
///
/// The functions mirror PostgreSQL's dblink (`dblink_connect`, `dblink_send_query`,
/// `dblink_get_result`, ...), with its error texts and SQLSTATEs.
///
/// ```no_run
/// use pgdblink::Dblink;
///
/// let mut db = Dblink::new();
/// db.connect("a", "host=10.0.0.1 dbname=app user=app")?;
/// db.connect("b", "host=10.0.0.2 dbname=app user=app")?;
/// db.send_query("a", "SELECT count(*) FROM orders")?;
/// db.send_query("b", "SELECT count(*) FROM orders")?;
/// for name in ["a", "b"] {
///     while let Some(result) = db.get_result(name)? {
///         println!("{name}: {:?}", result.rows().and_then(|r| r.get(0, 0)));
///     }
/// }
/// # Ok::<(), pgdblink::Error>(())
/// ```
pub struct Dblink {
    reactor: Reactor,
    /// By name. foldhash instead of std's SipHash: a name is looked up on every call (three times
    /// a query in a fan-out), and SipHash was a sixth of the client's instructions there; foldhash
    /// is seeded per process, so names cannot be chosen to collide.
    names: HashMap<String, Entry, foldhash::fast::RandomState>,
    /// The name of each connection, by its id.
    by_id: Vec<Option<String>>,
    /// Connections with a query sent by `send_query` whose end marker has not been taken yet.
    in_flight: Vec<bool>,
    in_flight_count: usize,
    /// Connections the last [`Dblink::wait`] reported: still ready until their results are taken.
    reported: Vec<ConnId>,
    /// The index [`open_id`](Dblink::open_id) tries before hashing the name: the connection
    /// the caller most likely names next (see [`Dblink::guess`]).
    next_guess: usize,
    /// Where the last run of [`send_query`](Dblink::send_query) calls began: the guess of a send
    /// whose [`guess`](Dblink::guess) missed (a fan-out's next round starts where the last did).
    send_start: usize,
    /// How many of `reported` the caller has taken the end marker of, in order.
    report_cursor: usize,
    cancel_timeout: Duration,
    /// Names reserved by [`Dblink::connect_start`] whose outcome was not collected yet.
    connecting: HashMap<String, Pending, foldhash::fast::RandomState>,
    /// The name of each running attempt, by its id.
    by_attempt: Vec<Option<String>>,
    /// Where [`Dblink::wait`] makes the names it returns before moving them to the returned list
    /// (empty between calls; kept for its capacity).
    name_scratch: Vec<String>,
}

/// A name still connecting, or whose attempt failed and was not collected yet.
enum Pending {
    Running(AttemptId),
    Failed(Error),
}

struct Entry {
    id: ConnId,
    /// Cursors opened by [`Dblink::open`] inside the transaction it began.
    open_cursors: u32,
    /// [`Dblink::open`] began the remote transaction (and closing the last cursor commits it).
    new_xact_for_cursor: bool,
}

impl std::fmt::Debug for Dblink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dblink")
            .field("connections", &self.names.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Dblink {
    fn default() -> Dblink {
        Dblink::new()
    }
}

/// `connection "NAME" not available` (08003).
fn not_available(name: &str) -> Error {
    Error::new(
        ErrorKind::Usage,
        format!("connection \"{name}\" not available"),
    )
    .with_severity("ERROR")
    .with_code(crate::sqlstate::CONNECTION_DOES_NOT_EXIST)
}

/// A `&self` verb on a name still connecting: it cannot wait.
fn still_connecting(name: &str) -> Error {
    Error::new(
        ErrorKind::Usage,
        format!("connection \"{name}\" is still being established"),
    )
}

/// `could not establish connection` (08001) with libpq's reason as the detail.
fn could_not_connect(reason: &Error) -> Error {
    Error::new(ErrorKind::Connect, "could not establish connection")
        .with_severity("ERROR")
        .with_code(crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION)
        .with_detail(reason.message())
}

impl Dblink {
    /// An empty registry.
    ///
    /// # Panics
    ///
    /// If the operating system cannot create a poll instance (epoll/kqueue), which only happens when
    /// the process is out of file descriptors or memory; [`Dblink::try_new`] returns that as an error.
    pub fn new() -> Dblink {
        Dblink::try_new().expect("could not create a mio::Poll")
    }

    /// An empty registry, or the OS error if no poll instance can be created.
    ///
    /// ```no_run
    /// let db = pgdblink::Dblink::try_new()?;
    /// assert!(db.connections().is_empty());
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn try_new() -> Result<Dblink, Error> {
        Ok(Dblink {
            reactor: Reactor::new()?,
            names: HashMap::default(),
            by_id: Vec::new(),
            in_flight: Vec::new(),
            in_flight_count: 0,
            reported: Vec::new(),
            next_guess: 0,
            send_start: 0,
            report_cursor: 0,
            cancel_timeout: CANCEL_TIMEOUT,
            connecting: HashMap::default(),
            by_attempt: Vec::new(),
            name_scratch: Vec::new(),
        })
    }

    /// Sets how long [`cancel_query`](Self::cancel_query) waits for the server (default 30 s).
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.set_cancel_timeout(std::time::Duration::from_secs(5));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn set_cancel_timeout(&mut self, timeout: Duration) {
        self.cancel_timeout = timeout;
    }

    /// The open connection `name`; a name still connecting is refused without waiting.
    fn id(&self, name: &str) -> Result<ConnId, Error> {
        match self.names.get(name) {
            Some(e) => Ok(e.id),
            None if self.connecting.contains_key(name) => Err(still_connecting(name)),
            None => Err(not_available(name)),
        }
    }

    /// The open connection `name`, first waiting for its attempt like
    /// [`connect_finish`](Self::connect_finish) if it is still connecting.
    #[inline(always)]
    fn open_id(&mut self, name: &str) -> Result<ConnId, Error> {
        match self.guess(name) {
            Some(id) => Ok(id),
            None => self.open_id_hashed(name),
        }
    }

    #[inline(never)]
    fn open_id_hashed(&mut self, name: &str) -> Result<ConnId, Error> {
        match self.names.get(name) {
            Some(e) => {
                self.next_guess = id_index(e.id);
                Ok(e.id)
            }
            None => self.finish_then_id(name),
        }
    }

    /// The open connection `name` without hashing it, where the caller goes through names the way
    /// a fan-out does: after a send, the name of the next index (names opened in the order they
    /// are used); after a result, the same name (results until the end marker); after an end
    /// marker, the next name [`wait`](Self::wait) reported. `by_id` holds a name at an index
    /// exactly while `names` maps it there.
    #[inline(always)]
    fn guess(&self, name: &str) -> Option<ConnId> {
        self.named_at(self.next_guess, name)
    }

    /// The connection at index `i`, if `name` is its name.
    #[inline(always)]
    fn named_at(&self, i: usize, name: &str) -> Option<ConnId> {
        match self.by_id.get(i) {
            Some(Some(n)) if same_name(n, name) => Some(ConnId::from_index(i)),
            _ => None,
        }
    }

    /// [`open_id`](Self::open_id) for [`send_query`](Self::send_query): where the guess misses,
    /// the send starts a new run, whose first name is most likely the one the last run began with.
    #[inline(always)]
    fn send_id(&mut self, name: &str) -> Result<ConnId, Error> {
        match self.guess(name) {
            Some(id) => Ok(id),
            None => self.send_id_missed(name),
        }
    }

    #[inline(never)]
    fn send_id_missed(&mut self, name: &str) -> Result<ConnId, Error> {
        let id = match self.named_at(self.send_start, name) {
            Some(id) => id,
            None => self.open_id_hashed(name)?,
        };
        self.send_start = id_index(id);
        Ok(id)
    }

    /// Sets [`guess`](Self::guess) after a result (`done`: the end marker) of connection `id`.
    #[inline]
    fn guess_after_result(&mut self, id: ConnId, done: bool) {
        if !done {
            self.next_guess = id_index(id);
            return;
        }
        if self.reported.get(self.report_cursor) == Some(&id) {
            self.report_cursor += 1;
        }
        self.next_guess = match self.reported.get(self.report_cursor) {
            Some(&next) => id_index(next),
            None => id_index(id) + 1,
        };
    }

    /// The session state machine of a named connection (server parameters, backend pid, transaction
    /// status, ...). A name still connecting is refused (`connection "NAME" is still being
    /// established`): this cannot wait; call [`connect_finish`](Self::connect_finish) first.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "host=/tmp dbname=postgres")?;
    /// let conn = db.conn("c")?;
    /// println!("pid {:?}, server {:?}", conn.backend_key().map(|k| k.0), conn.parameter("server_version"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn conn(&self, name: &str) -> Result<&Connection, Error> {
        let id = self.id(name)?;
        Ok(self.reactor.get(id).expect("registered connection").conn())
    }

    fn conn_mut(&mut self, id: ConnId) -> &mut Connection {
        self.reactor
            .get_mut(id)
            .expect("registered connection")
            .conn_mut()
    }

    /// `dblink_connect(name, connstr)`: opens a connection under `name`, blocking until it is ready.
    ///
    /// Errors: `duplicate connection name` (42710) if the name is taken; `could not establish
    /// connection` (08001) with libpq's reason as the detail. A failed connect does not reserve the
    /// name. Names are exact, case-sensitive strings; `""` is a valid name.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c1", "host=127.0.0.1 port=5432 dbname=postgres user=postgres")?;
    /// let e = db.connect("c1", "host=127.0.0.1").unwrap_err();
    /// assert_eq!(e.code(), Some("42710"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn connect(&mut self, name: &str, conninfo: &str) -> Result<(), Error> {
        self.check_free(name)?;
        let id = self
            .reactor
            .connect(conninfo)
            .map_err(|e| could_not_connect(&e))?;
        self.register(name, id);
        Ok(())
    }

    fn register(&mut self, name: &str, id: ConnId) {
        self.names.insert(
            name.to_owned(),
            Entry {
                id,
                open_cursors: 0,
                new_xact_for_cursor: false,
            },
        );
        if self.by_id.len() <= id_index(id) {
            self.by_id.resize(id_index(id) + 1, None);
            self.in_flight.resize(id_index(id) + 1, false);
        }
        self.by_id[id_index(id)] = Some(name.to_owned());
    }

    /// `dblink_disconnect(name)`: sends Terminate, closes the socket and forgets the name, also when the
    /// connection is busy or broken.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c1", "dbname=postgres")?;
    /// db.disconnect("c1")?;
    /// assert_eq!(db.disconnect("c1").unwrap_err().code(), Some("08003"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn disconnect(&mut self, name: &str) -> Result<(), Error> {
        if self.abandon(name) {
            return Ok(());
        }
        let entry = self.names.remove(name).ok_or_else(|| not_available(name))?;
        self.by_id[id_index(entry.id)] = None;
        self.set_in_flight(entry.id, false);
        self.reactor.close(entry.id);
        Ok(())
    }

    /// `dblink_get_connections()`: the open names, in no particular order.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("a", "dbname=postgres")?;
    /// db.connect("b", "dbname=postgres")?;
    /// let mut names = db.connections();
    /// names.sort();
    /// assert_eq!(names, ["a", "b"]);
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn connections(&self) -> Vec<String> {
        self.names
            .keys()
            .chain(self.connecting.keys())
            .cloned()
            .collect()
    }

    /// `dblink_send_query(name, sql)`: dispatches a simple Query without waiting.
    ///
    /// A connection whose previous results (or end marker) have not all been taken refuses with
    /// `another command is already in progress` (no SQLSTATE), which is also appended to its error
    /// message; a closed one with `no connection to the server`.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.send_query("c", "SELECT pg_sleep(1); SELECT 2")?;
    /// assert!(db.send_query("c", "SELECT 3").is_err()); // busy until the end marker is taken
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    #[inline]
    pub fn send_query(&mut self, name: &str, sql: &str) -> Result<(), Error> {
        let id = self.send_id(name)?;
        self.reactor.command_queued(id, |c| c.send_query(sql))?;
        self.set_in_flight(id, true);
        self.next_guess = id_index(id) + 1;
        Ok(())
    }

    /// Beyond dblink: like [`send_query`](Self::send_query), in chunked-rows mode. Each row set comes
    /// back from [`get_result`](Self::get_result) as several [`Rows`] of at most `max_rows` rows (all but
    /// the last [`Rows::is_partial`]), and the connection stops reading while too many rows wait to be
    /// taken, so a result of any size streams through bounded memory.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.send_query_chunked("c", "SELECT g FROM generate_series(1, 10000000) g", 1000)?;
    /// let mut total = 0;
    /// while let Some(result) = db.get_result("c")? {
    ///     total += result.rows().map_or(0, |r| r.len());
    /// }
    /// assert_eq!(total, 10_000_000);
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn send_query_chunked(
        &mut self,
        name: &str,
        sql: &str,
        max_rows: usize,
    ) -> Result<(), Error> {
        let id = self.open_id(name)?;
        self.reactor
            .command_queued(id, |c| c.send_query_chunked(sql, max_rows))?;
        self.set_in_flight(id, true);
        Ok(())
    }

    /// `dblink_is_busy(name)`: reads and parses whatever input is available without blocking; true iff
    /// [`get_result`](Self::get_result) would have to wait. A broken connection is not busy.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.send_query("c", "SELECT pg_sleep(1)")?;
    /// while db.is_busy("c")? {
    ///     // do other work
    /// }
    /// let result = db.get_result("c")?; // does not block now
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn is_busy(&mut self, name: &str) -> Result<bool, Error> {
        let id = self.open_id(name)?;
        self.reactor.read_now(id);
        Ok(self.conn_mut(id).is_busy())
    }

    /// `dblink_get_result(name)`: blocks until the next result of the query in flight.
    ///
    /// `Ok(Some(r))`: one result per statement, in order. `Err(e)`: that statement failed on the server
    /// (`e.code()` is its SQLSTATE) or the connection was lost (08006); the end marker still follows.
    /// `Ok(None)`: the end marker; the connection is usable again. Returned again on every further
    /// call, and at once on a connection with nothing in flight.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.send_query("c", "SELECT 1; SELECT 1/0; SELECT 3")?;
    /// assert!(db.get_result("c")?.is_some()); // the first SELECT
    /// assert_eq!(db.get_result("c").unwrap_err().code(), Some("22012")); // division by zero
    /// assert!(db.get_result("c")?.is_none()); // the end marker
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    #[inline]
    pub fn get_result(&mut self, name: &str) -> Result<Option<QueryResult>, Error> {
        let id = self.open_id(name)?;
        let r = self.next_result(id);
        self.guess_after_result(id, matches!(r, Ok(None)));
        r
    }

    fn set_in_flight(&mut self, id: ConnId, on: bool) {
        if let Some(slot) = self.in_flight.get_mut(id_index(id))
            && *slot != on
        {
            *slot = on;
            if on {
                self.in_flight_count += 1;
            } else {
                self.in_flight_count -= 1;
            }
        }
    }

    #[inline]
    fn next_result(&mut self, id: ConnId) -> Result<Option<QueryResult>, Error> {
        loop {
            match self.reactor.poll_result(id) {
                PollResult::Ready(r) => return r.map(Some),
                PollResult::Done => {
                    self.ended(id);
                    return Ok(None);
                }
                PollResult::Pending => self.wait_for_input(id)?,
            }
        }
    }

    /// The end marker of connection `id` was taken.
    #[inline]
    fn ended(&mut self, id: ConnId) {
        // In pipeline mode an end marker separates commands: more may be queued.
        let active = self.conn_mut(id).is_active();
        self.set_in_flight(id, active);
    }

    /// Makes progress while [`next_result`](Self::next_result) waits (out of line: a result in
    /// hand is returned without the wait's frame).
    #[inline(never)]
    fn wait_for_input(&mut self, id: ConnId) -> Result<(), Error> {
        self.reactor.progress(id, None)
    }

    /// `dblink_cancel_query(name)`: sends a CancelRequest on a new socket to the exact address the
    /// connection uses and waits (bounded) until the server has processed it. The connection's state is
    /// untouched: the caller still drains [`get_result`](Self::get_result). `Ok(())` on an idle
    /// connection too; `Err` for an unknown name or when the request could not be delivered.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.send_query("c", "SELECT pg_sleep(60)")?;
    /// db.cancel_query("c")?;
    /// assert_eq!(db.get_result("c").unwrap_err().code(), Some("57014"));
    /// assert!(db.get_result("c")?.is_none());
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn cancel_query(&mut self, name: &str) -> Result<(), Error> {
        let id = self.open_id(name)?;
        let timeout = self.cancel_timeout;
        self.reactor.cancel(id, timeout)
    }

    /// `dblink_error_message(name)`: `None` where dblink says `OK`; otherwise libpq's formatted text
    /// without the trailing newline, e.g. `ERROR:  division by zero`.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// assert_eq!(db.error_message("c")?, None);
    /// let _ = db.query("c", "SELECT 1/0");
    /// assert_eq!(db.error_message("c")?.as_deref(), Some("ERROR:  division by zero"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn error_message(&self, name: &str) -> Result<Option<String>, Error> {
        let Some(id) = self.status_id(name)? else {
            return Ok(None);
        };
        let text = self
            .reactor
            .get(id)
            .expect("registered connection")
            .conn()
            .error_message();
        let text = text.strip_suffix('\n').unwrap_or(text);
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }

    /// Whether the named connection is encrypted (libpq's `PQsslInUse`).
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "host=db.example sslmode=require dbname=postgres")?;
    /// assert!(db.ssl_in_use("c")?);
    /// assert_eq!(db.ssl_attribute("c", "library")?.as_deref(), Some("rustls"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn ssl_in_use(&self, name: &str) -> Result<bool, Error> {
        let Some(id) = self.status_id(name)? else {
            return Ok(false);
        };
        Ok(self.reactor.get(id).is_some_and(|s| s.ssl_in_use()))
    }

    /// An attribute of the named connection's TLS session (libpq's `PQsslAttribute`): `library`
    /// (`rustls`), `protocol` (`TLSv1.2`, `TLSv1.3`), `cipher`, `key_bits`, `compression` (`off`);
    /// `None` for an unknown attribute or an unencrypted connection.
    pub fn ssl_attribute(&self, name: &str, attribute: &str) -> Result<Option<String>, Error> {
        let Some(id) = self.status_id(name)? else {
            return Ok(None);
        };
        Ok(self
            .reactor
            .get(id)
            .and_then(|s| s.ssl_attribute(attribute)))
    }

    /// `dblink_get_notify(name)`: reads available input, then returns and forgets the notifications
    /// received so far, in arrival order (including those that arrived while a query ran).
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.exec("c", "LISTEN jobs")?;
    /// db.exec("c", "NOTIFY jobs, 'job 17'")?;
    /// let notes = db.get_notify("c")?;
    /// assert_eq!((notes[0].channel.as_str(), notes[0].payload.as_str()), ("jobs", "job 17"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn get_notify(&mut self, name: &str) -> Result<Vec<Notification>, Error> {
        let id = self.open_id(name)?;
        self.reactor.read_now(id);
        Ok(self.conn_mut(id).take_notifications())
    }

    /// Notices (RAISE NOTICE, WARNING) received on the connection, returned and forgotten; never
    /// printed.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.exec("c", "DO $$ BEGIN RAISE NOTICE 'hello'; END $$")?;
    /// assert_eq!(db.take_notices("c")?[0].message(), "hello");
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn take_notices(&mut self, name: &str) -> Result<Vec<Error>, Error> {
        let id = self.open_id(name)?;
        Ok(self.conn_mut(id).take_notices())
    }

    /// Runs `f` on the named connection `target`, or on a temporary connection opened with `target` as
    /// a connection string (closed before returning).
    fn with_target<T>(
        &mut self,
        target: &str,
        f: impl FnOnce(&mut Dblink, ConnId) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some(entry) = self.names.get(target) {
            let id = entry.id;
            return f(self, id);
        }
        if self.connecting.contains_key(target) {
            let id = self.finish_then_id(target)?;
            return f(self, id);
        }
        let id = self
            .reactor
            .connect(target)
            .map_err(|e| could_not_connect(&e))?;
        let result = f(self, id);
        self.reactor.close(id);
        result
    }

    /// Sends `sql` and takes every result up to the end marker; returns the last result, or the first
    /// error once everything is drained.
    fn run_to_end(&mut self, id: ConnId, sql: &str) -> Result<QueryResult, Error> {
        self.run_to_end_with(id, |c| c.send_query(sql))
    }

    /// Like [`run_to_end`](Self::run_to_end) for any command that sends a request.
    fn run_to_end_with(
        &mut self,
        id: ConnId,
        send: impl FnOnce(&mut Connection) -> Result<(), Error>,
    ) -> Result<QueryResult, Error> {
        self.reactor.command(id, |c| {
            c.check_not_pipelined()?;
            send(c)
        })?;
        let mut last = None;
        let mut first_error = None;
        loop {
            match self.next_result(id) {
                Ok(Some(r)) => last = Some(r),
                Ok(None) => break,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        last_result(last, first_error)
    }

    /// `dblink(conn, sql)`: runs `sql` and returns its last result. `target` is a connection name if one
    /// is open under that text, else a connection string for a temporary connection. A busy connection
    /// refuses with `another command is already in progress` and keeps its pending results.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// // A connection string: a temporary connection, closed before returning.
    /// let result = db.query("host=127.0.0.1 dbname=postgres", "SELECT 1; SELECT 2 AS two")?;
    /// assert_eq!(result.rows().unwrap().get(0, 0), Some("2"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn query(&mut self, target: &str, sql: &str) -> Result<QueryResult, Error> {
        self.with_target(target, |db, id| db.run_to_end(id, sql))
    }

    /// `dblink_exec(conn, sql)`: like [`query`](Self::query), returning the last result's command tag
    /// (`INSERT 0 3`, `SET`), `""` for an empty statement. A last result with rows is refused with
    /// `statement returning results not allowed` (2F003).
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// let tag = db.exec("c", "CREATE TEMP TABLE t(x int); INSERT INTO t VALUES (1), (2)")?;
    /// assert_eq!(tag, "INSERT 0 2");
    /// assert_eq!(db.exec("c", "SELECT 1").unwrap_err().code(), Some("2F003"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn exec(&mut self, target: &str, sql: &str) -> Result<String, Error> {
        self.with_target(target, |db, id| exec_on(db, id, sql))
    }

    /// `dblink_open(name, cursor, sql)`: declares a cursor. On a remote connection outside a transaction,
    /// begins one first; that transaction is committed when the last cursor opened this way is closed.
    /// The cursor name and the query are interpolated verbatim, as dblink does.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.open("c", "cur", "SELECT g FROM generate_series(1, 100) g")?; // begins a transaction
    /// assert_eq!(db.fetch("c", "cur", 10)?.len(), 10);
    /// db.close("c", "cur")?; // the last cursor: commits
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn open(&mut self, name: &str, cursor: &str, sql: &str) -> Result<(), Error> {
        let id = self.open_id(name)?;
        if self.conn_mut(id).transaction_status() == TransactionStatus::Idle
            && self.conn_mut(id).state() == State::Idle
        {
            exec_on(self, id, "BEGIN")?;
            let entry = self.names.get_mut(name).expect("entry");
            entry.new_xact_for_cursor = true;
            entry.open_cursors = 0;
        }
        let entry = self.names.get_mut(name).expect("entry");
        if entry.new_xact_for_cursor {
            entry.open_cursors += 1;
        }
        exec_on(self, id, &format!("DECLARE {cursor} CURSOR FOR {sql}"))?;
        Ok(())
    }

    /// `dblink_fetch(name, cursor, count)`: fetches up to `count` rows from a cursor.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.open("c", "cur", "SELECT g FROM generate_series(1, 5) g")?;
    /// assert_eq!(db.fetch("c", "cur", 3)?.command_tag(), "FETCH 3");
    /// assert_eq!(db.fetch("c", "cur", 3)?.len(), 2);
    /// assert_eq!(db.fetch("c", "cur", 3)?.len(), 0); // past the end
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn fetch(&mut self, name: &str, cursor: &str, count: u64) -> Result<Rows, Error> {
        let id = self.open_id(name)?;
        match self.run_to_end(id, &format!("FETCH {count} FROM {cursor}"))? {
            QueryResult::Rows(rows) => Ok(rows),
            _ => Err(Error::new(
                ErrorKind::Usage,
                format!("cursor \"{cursor}\" does not exist"),
            )
            .with_severity("ERROR")
            .with_code(crate::sqlstate::INVALID_CURSOR_NAME)),
        }
    }

    /// `dblink_close(name, cursor)`: closes a cursor; closing the last cursor that [`open`](Self::open)
    /// opened in a transaction it began commits that transaction.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.exec("c", "BEGIN")?; // the caller's transaction stays open after close
    /// db.open("c", "cur", "SELECT 1")?;
    /// db.close("c", "cur")?;
    /// db.exec("c", "COMMIT")?;
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn close(&mut self, name: &str, cursor: &str) -> Result<(), Error> {
        let id = self.open_id(name)?;
        exec_on(self, id, &format!("CLOSE {cursor}"))?;
        let entry = self.names.get_mut(name).expect("entry");
        if entry.new_xact_for_cursor {
            entry.open_cursors = entry.open_cursors.saturating_sub(1);
            if entry.open_cursors == 0 {
                entry.new_xact_for_cursor = false;
                exec_on(self, id, "COMMIT")?;
            }
        }
        Ok(())
    }

    /// Beyond dblink: the [`Budgets`](crate::conn::Budgets) of every connection opened from now on:
    /// how many bytes a server can make a connection hold, queue by queue, and how much one
    /// connection reads per turn (see docs/behaviour.md, "Reliability: budgets"). What a
    /// connection holds: [`conn`](Self::conn)`(name)?.held_bytes()`.
    pub fn set_budgets(&mut self, budgets: crate::conn::Budgets) {
        self.reactor.set_budgets(budgets);
    }

    /// Beyond dblink: blocks until at least one named connection with a query in flight is no longer
    /// busy, or `timeout` passes; returns those names (empty on timeout, and at once when nothing is in
    /// flight). This is how one thread fans a query out to many servers. Names started with
    /// [`connect_start`](Self::connect_start) are reported too, once each, when their attempt has
    /// ended either way ([`connect_finish`](Self::connect_finish) then says which).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut db = pgdblink::Dblink::new();
    /// for i in 0..50 {
    ///     db.connect(&format!("c{i}"), "dbname=postgres")?;
    ///     db.send_query(&format!("c{i}"), "SELECT random()")?;
    /// }
    /// let mut left = 50;
    /// while left > 0 {
    ///     for name in db.wait(Some(Duration::from_secs(10)))? {
    ///         while let Some(result) = db.get_result(&name)? {
    ///             println!("{name}: {:?}", result.rows().and_then(|r| r.get(0, 0)));
    ///         }
    ///         left -= 1;
    ///     }
    /// }
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<String>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // Attempts that ended since the last call (connect_start): reported once each.
        let mut ended = self.settle_ended();
        if self.in_flight_count == 0 && ended.is_empty() && self.reactor.connects_running() == 0 {
            self.reported.clear();
            return Ok(Vec::new());
        }
        // Only connections whose input was read since the last call, or that the last call reported,
        // can have become ready: no scan of every connection.
        let mut candidates = std::mem::take(&mut self.reported);
        let (reactor, in_flight) = (&mut self.reactor, &self.in_flight);
        let is_ready = |r: &Reactor, id: ConnId| {
            in_flight.get(id_index(id)).copied().unwrap_or(false)
                && r.get(id).is_some_and(|s| !s.conn().is_busy())
        };
        candidates.retain(|&id| is_ready(reactor, id));
        if candidates.is_empty() {
            reactor.take_touched_into_if(&mut candidates, is_ready);
        } else {
            // Connections reported before are still ready (their results are taken a few at a
            // time): one look at the others without waiting, so that they are not starved.
            reactor.take_touched_into(&mut candidates);
            reactor.dispatch(Some(Duration::ZERO))?;
            reactor.take_touched_into(&mut candidates);
            candidates.retain(|&id| is_ready(reactor, id));
        }
        // Each list holds an id once, but one may be in both: sorting makes a repeat adjacent (no
        // quadratic search when hundreds are ready at once).
        candidates.sort_unstable();
        candidates.dedup();
        let mut ready_ids = candidates;
        if ready_ids.is_empty() && ended.is_empty() {
            let mut attempts = Vec::new();
            reactor.wait_until(deadline, |r| {
                // `take_touched` lists each id once, and the first batch with a ready id ends the wait.
                r.take_touched_into_if(&mut ready_ids, is_ready);
                attempts.extend(r.take_ended_connects());
                !ready_ids.is_empty() || !attempts.is_empty()
            })?;
            if !attempts.is_empty() {
                ended = self.settle(attempts);
            }
        }
        // The names are the caller's to keep, one allocation each. They are made before the list
        // that holds them: a list of some 40 names or more is a large block for glibc's malloc, whose
        // allocation first merges every small freed block (the names and results the caller
        // dropped since the last call), so that the names would then be carved out of merged
        // space at several times the cost of reusing those blocks.
        let mut made = std::mem::take(&mut self.name_scratch);
        for (nth, &id) in ready_ids.iter().enumerate() {
            if let Some(Some(name)) = self.by_id.get(id_index(id)) {
                made.push(caller_name(name, nth));
            }
        }
        let mut names: Vec<String> = Vec::with_capacity(made.len() + ended.len());
        names.append(&mut made);
        self.name_scratch = made;
        if !ended.is_empty() {
            names.extend(ended);
        }
        self.reported = ready_ids;
        self.report_cursor = 0;
        if let Some(&first) = self.reported.first() {
            self.next_guess = id_index(first);
        }
        Ok(names)
    }
}

/// Parameters, prepared statements, pipelines and COPY: libpq's extended-protocol API on named
/// connections.
impl Dblink {
    /// libpq's `PQsendQueryParams`: ONE statement with `$1..$n` bound to `params` as text (`None` =
    /// SQL NULL), through the unnamed statement; results as with [`send_query`](Self::send_query).
    /// Several statements -> the server's 42601 error.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.send_query_params("c", "SELECT $1::int + 1, $2::text", &[Some("41"), None])?;
    /// let result = db.get_result("c")?.unwrap();
    /// assert_eq!(result.rows().unwrap().get(0, 0), Some("42"));
    /// assert!(db.get_result("c")?.is_none());
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn send_query_params(
        &mut self,
        name: &str,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<(), Error> {
        let id = self.open_id(name)?;
        self.reactor
            .command_queued(id, |c| c.send_query_params(sql, params))?;
        self.set_in_flight(id, true);
        Ok(())
    }

    /// libpq's `PQsendPrepare`: creates the named prepared statement; its one result is
    /// `Command("")` (libpq's `PGRES_COMMAND_OK` with an empty tag), then the end marker.
    pub fn send_prepare(&mut self, name: &str, statement: &str, sql: &str) -> Result<(), Error> {
        let id = self.open_id(name)?;
        self.reactor
            .command_queued(id, |c| c.send_prepare(statement, sql))?;
        self.set_in_flight(id, true);
        Ok(())
    }

    /// libpq's `PQsendQueryPrepared`: runs the prepared statement `statement` with `params`.
    pub fn send_query_prepared(
        &mut self,
        name: &str,
        statement: &str,
        params: &[Option<&str>],
    ) -> Result<(), Error> {
        let id = self.open_id(name)?;
        self.reactor
            .command_queued(id, |c| c.send_query_prepared(statement, params))?;
        self.set_in_flight(id, true);
        Ok(())
    }

    /// Like [`query`](Self::query) with parameters: `target` is a name or a connection string.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// let r = db.query_params("dbname=postgres", "SELECT $1::text || '!'", &[Some("hi")])?;
    /// assert_eq!(r.rows().unwrap().get(0, 0), Some("hi!"));
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn query_params(
        &mut self,
        target: &str,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<QueryResult, Error> {
        self.with_target(target, |db, id| {
            db.run_to_end_with(id, |c| c.send_query_params(sql, params))
        })
    }

    /// libpq's `PQenterPipelineMode`: Err unless idle in dblink's sense (end marker taken), with
    /// libpq's text `cannot enter pipeline mode, connection not idle`; entering twice is a no-op.
    /// In pipeline mode the `send_*` functions queue without waiting for earlier results, and
    /// `send_query` sends its ONE statement through the extended protocol. [`get_result`](Self::get_result)
    /// returns each query's results then `Ok(None)` once, then the next query's; at every sync
    /// point `Ok(Some(QueryResult::PipelineSync))` with no `Ok(None)` after it. After a failed
    /// statement every later query up to the sync yields `Ok(Some(QueryResult::PipelineAborted))`
    /// then `Ok(None)`. A pipeline of any length keeps reading while it writes.
    ///
    /// ```no_run
    /// use pgdblink::QueryResult;
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.enter_pipeline_mode("c")?;
    /// for i in 0..1000 {
    ///     db.send_query_params("c", "SELECT $1::int", &[Some(&i.to_string())])?;
    /// }
    /// db.pipeline_sync("c")?;
    /// for _ in 0..1000 {
    ///     assert!(db.get_result("c")?.is_some());
    ///     assert!(db.get_result("c")?.is_none());
    /// }
    /// assert!(matches!(db.get_result("c")?, Some(QueryResult::PipelineSync)));
    /// db.exit_pipeline_mode("c")?;
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn enter_pipeline_mode(&mut self, name: &str) -> Result<(), Error> {
        let id = self.open_id(name)?;
        self.conn_mut(id).enter_pipeline_mode()
    }

    /// libpq's `PQexitPipelineMode`: Err while results remain to be taken or a sync is
    /// outstanding (`cannot exit pipeline mode with uncollected results`, `cannot exit pipeline
    /// mode while busy`); a no-op when not in pipeline mode. No SQLSTATE.
    pub fn exit_pipeline_mode(&mut self, name: &str) -> Result<(), Error> {
        let id = self.open_id(name)?;
        self.conn_mut(id).exit_pipeline_mode()
    }

    /// libpq's `PQpipelineSync`: a Sync, then flush.
    pub fn pipeline_sync(&mut self, name: &str) -> Result<(), Error> {
        let id = self.open_id(name)?;
        self.reactor.command_bounded(id, |c| c.pipeline_sync())?;
        self.set_in_flight(id, true);
        Ok(())
    }

    /// libpq's `PQsendFlushRequest`: a Flush message (the server sends what it has buffered).
    pub fn send_flush_request(&mut self, name: &str) -> Result<(), Error> {
        let id = self.open_id(name)?;
        self.reactor.command_bounded(id, |c| c.send_flush_request())
    }

    /// libpq's `PQpipelineStatus`: `Aborted` from when a failed query's error is taken until the
    /// sync's `PipelineSync` is.
    pub fn pipeline_status(&self, name: &str) -> Result<PipelineStatus, Error> {
        let Some(id) = self.status_id(name)? else {
            return Ok(PipelineStatus::Off);
        };
        Ok(self
            .reactor
            .get(id)
            .expect("registered connection")
            .conn()
            .pipeline_status())
    }

    /// `COPY ... FROM STDIN`, fed from `data` as it is read (never all in memory); returns the row
    /// count of the command tag. A server error -> Err with its SQLSTATE; an Err from `data` ->
    /// CopyFail carrying its text, and the server's error (57014) is returned. A statement that is
    /// not a COPY FROM STDIN -> Err. Either way the connection is usable after. While it runs,
    /// every other connection keeps being read.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.exec("c", "CREATE TEMP TABLE t (a int, b text)")?;
    /// let n = db.copy_in("c", "COPY t FROM STDIN", &mut &b"1\tone\n2\ttwo\n"[..])?;
    /// assert_eq!(n, 2);
    /// let mut out = Vec::new();
    /// assert_eq!(db.copy_out("c", "COPY t TO STDOUT", &mut out)?, 2);
    /// assert_eq!(out, b"1\tone\n2\ttwo\n");
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn copy_in(
        &mut self,
        name: &str,
        sql: &str,
        data: &mut dyn std::io::Read,
    ) -> Result<u64, Error> {
        let id = self.open_id(name)?;
        self.reactor.copy_in(id, sql, data)
    }

    /// `COPY ... TO STDOUT`: each CopyData written to `out` as it arrives; returns the row count.
    /// An Err from `out` -> Err carrying it; the rest of the COPY is drained and the connection is
    /// usable.
    pub fn copy_out(
        &mut self,
        name: &str,
        sql: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, Error> {
        let id = self.open_id(name)?;
        self.reactor.copy_out(id, sql, out)
    }
}

fn exec_on(db: &mut Dblink, id: ConnId, sql: &str) -> Result<String, Error> {
    match db.run_to_end(id, sql)? {
        QueryResult::Rows(_) => Err(Error::new(
            ErrorKind::Usage,
            "statement returning results not allowed",
        )
        .with_severity("ERROR")
        .with_code(crate::sqlstate::PROHIBITED_SQL_STATEMENT_ATTEMPTED)),
        QueryResult::Command(tag) => Ok(tag),
        _ => Ok(String::new()),
    }
}

/// `a == b`, without a call for a short name (most are).
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    crate::protocol::short_eq(a.as_bytes(), b.as_bytes())
}

/// A copy of `name` for the caller of [`Dblink::wait`], whose capacity steps through
/// [`NAME_SIZES`] sizes 16 bytes apart, one name after the other.
///
/// A fan-out holds every ready name at once and drops each after taking its results. glibc's
/// `malloc` keeps at most 7 freed blocks of each size per thread in its cheap cache; one size for
/// all the names sends the rest through its slower bins (about 240 instructions a name to get and
/// give back, measured with callgrind over 50 connections). Spread over 8 sizes, 56 names live at
/// once stay in that cache. Other allocators only see a few bytes more per name.
#[inline]
fn caller_name(name: &str, nth: usize) -> String {
    let step = (nth % NAME_SIZES) * 16;
    let mut owned = String::with_capacity(name.len().max(24) + step);
    owned.push_str(name);
    owned
}

/// How many sizes [`caller_name`] spreads the names over.
const NAME_SIZES: usize = 8;

fn id_index(id: ConnId) -> usize {
    id.index()
}

impl Drop for Dblink {
    fn drop(&mut self) {
        let names: Vec<String> = self.connecting.keys().cloned().collect();
        for name in names {
            self.abandon(&name);
        }
        let ids: Vec<ConnId> = self.names.values().map(|e| e.id).collect();
        for id in ids {
            self.reactor.close(id);
        }
    }
}

/// What `dblink` returns once a command's results are drained: the first failed statement's
/// error, else the last result; libpq's text when there was neither (the connection was lost).
pub(crate) fn last_result(
    last: Option<QueryResult>,
    first_error: Option<Error>,
) -> Result<QueryResult, Error> {
    if let Some(e) = first_error {
        return Err(e);
    }
    last.ok_or_else(|| {
        Error::new(
            ErrorKind::ConnectionLost,
            "could not obtain message string for remote error",
        )
        .with_code(crate::sqlstate::CONNECTION_FAILURE)
    })
}

#[cfg(test)]
mod tests {
    use super::{NAME_SIZES, caller_name, same_name};

    /// The names `wait` hands out are the names, whatever their capacity, and eight in a row
    /// have eight different capacities (glibc size classes 16 bytes apart).
    #[test]
    fn caller_names_are_the_names_in_eight_sizes() {
        for name in ["", "c1", "a name longer than twenty-four bytes", "ünï"] {
            let made: Vec<String> = (0..16).map(|nth| caller_name(name, nth)).collect();
            assert!(made.iter().all(|m| m == name), "{name:?}");
            let mut sizes: Vec<usize> = made[..NAME_SIZES].iter().map(String::capacity).collect();
            sizes.sort_unstable();
            sizes.dedup();
            assert_eq!(sizes.len(), NAME_SIZES, "{name:?}");
            assert!(sizes.windows(2).all(|w| w[1] - w[0] == 16), "{sizes:?}");
            assert_eq!(made[0].capacity(), made[NAME_SIZES].capacity());
        }
    }

    /// Every length up to past the `memcmp` cut, a difference at every position.
    #[test]
    fn same_name_is_string_equality() {
        for len in 0..=20 {
            let base: String = (0..len).map(|i| char::from(b'a' + i as u8)).collect();
            assert!(same_name(&base, &base.clone()), "{base:?}");
            assert!(!same_name(&base, &format!("{base}x")), "{base:?} longer");
            for at in 0..len {
                let mut other = base.clone().into_bytes();
                other[at] = b'Z';
                let other = String::from_utf8(other).expect("ascii");
                assert!(!same_name(&base, &other), "{base:?} vs {other:?}");
            }
        }
    }
}

//! One blocking-style connection over its own reactor.

use std::time::{Duration, Instant};

use super::cancel::DEFAULT_CANCEL_TIMEOUT;
use super::{CancelToken, ConnId, Reactor, TransactionStatus};
use crate::conn::{Connection, Notification, PollResult, QueryResult};
use crate::conninfo::{Config, Environment, SystemEnvironment};
use crate::error::{Error, ErrorKind};

/// A single PostgreSQL connection driven by its own `mio::Poll`: the simplest way to use pgdblink
/// when one connection is all you need. For many named connections in one thread, use `Dblink`.
///
/// ```no_run
/// use pgdblink::driver::Client;
///
/// let mut client = Client::connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres")?;
/// client.send_query("SELECT 1 AS one; SELECT 2")?;
/// while let Some(result) = client.get_result()? {
///     println!("{}", result.command_tag());
/// }
/// # Ok::<(), pgdblink::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    reactor: Reactor,
    id: ConnId,
}

impl Client {
    /// Connects with a libpq connection string (keyword/value or URI), filling in what it leaves out
    /// from the `PG*` environment variables, `~/.pgpass` and libpq's defaults.
    pub fn connect(conninfo: &str) -> Result<Client, Error> {
        let mut reactor = Reactor::new()?.untracked();
        let id = reactor.connect(conninfo)?;
        Ok(Client { reactor, id })
    }

    /// Connects with a parsed configuration and an explicit environment (hermetic tests use a
    /// `MapEnvironment`).
    pub fn connect_config(config: &Config, env: &dyn Environment) -> Result<Client, Error> {
        let mut reactor = Reactor::new()?.untracked();
        let id = reactor.connect_config(config, env)?;
        Ok(Client { reactor, id })
    }

    /// Connects with a parsed configuration (its `Display` masks the password, so it cannot go
    /// through text); the `PG*` environment and `~/.pgpass` fill in what it leaves out.
    ///
    /// ```no_run
    /// let config: pgdblink::Config = "host=db.example dbname=app user=app".parse()?;
    /// let client = pgdblink::driver::Client::connect_with(&config)?;
    /// println!("{}:{} pid {:?}", client.host(), client.port(), client.backend_pid());
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn connect_with(config: &Config) -> Result<Client, Error> {
        Client::connect_config(config, &SystemEnvironment)
    }

    /// The session state machine.
    pub fn conn(&self) -> &Connection {
        self.reactor.get(self.id).expect("client connection").conn()
    }

    fn conn_mut(&mut self) -> &mut Connection {
        self.reactor
            .get_mut(self.id)
            .expect("client connection")
            .conn_mut()
    }

    /// Dispatches a simple Query (possibly several statements) without waiting.
    pub fn send_query(&mut self, sql: &str) -> Result<(), Error> {
        self.reactor.command_queued(self.id, |c| c.send_query(sql))
    }

    /// Like [`send_query`](Self::send_query) in chunked-rows mode: row sets come back as several
    /// results of at most `max_rows` rows, streamed through bounded memory (see
    /// [`Connection::send_query_chunked`]).
    pub fn send_query_chunked(&mut self, sql: &str, max_rows: usize) -> Result<(), Error> {
        self.reactor
            .command_queued(self.id, |c| c.send_query_chunked(sql, max_rows))
    }

    /// Reads available input without blocking; true iff [`get_result`](Self::get_result) would wait.
    pub fn is_busy(&mut self) -> bool {
        self.reactor.read_now(self.id);
        self.conn().is_busy()
    }

    /// Blocks until the next result: `Ok(Some)` a result, `Err` a failed statement (or the lost
    /// connection), `Ok(None)` the end marker once all results are taken.
    #[inline]
    pub fn get_result(&mut self) -> Result<Option<QueryResult>, Error> {
        // `get_result_until(None)` without its bookkeeping: no deadline to check between turns.
        loop {
            match self.reactor.poll_result(self.id) {
                PollResult::Ready(r) => return r.map(Some),
                PollResult::Done => return Ok(None),
                PollResult::Pending => self.wait_for_input()?,
            }
        }
    }

    /// Makes progress while [`get_result`](Self::get_result) waits (out of line: the result
    /// in hand is returned without the wait's frame).
    ///
    /// With nothing else to do, the wait is a `recv` that sleeps until the answer is there (see
    /// [`Reactor::wait_in_recv`]); otherwise a turn of the reactor.
    #[inline(never)]
    fn wait_for_input(&mut self) -> Result<(), Error> {
        if self.reactor.progress_now(self.id) {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        if self.reactor.wait_in_recv(self.id) {
            return Ok(());
        }
        self.reactor.dispatch(None)
    }

    /// Like [`get_result`](Self::get_result) but gives up after `timeout`, returning `Ok(None)` then
    /// (the outer `Option`).
    pub fn get_result_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Option<QueryResult>>, Error> {
        self.get_result_until(Some(Instant::now() + timeout))
    }

    fn get_result_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Option<QueryResult>>, Error> {
        let id = self.id;
        let mut outcome = None;
        self.reactor.wait_until(deadline, |r| {
            loop {
                match r.poll_result(id) {
                    // An answer already here just after the send: read it without waiting.
                    PollResult::Pending if r.progress_now(id) => {}
                    PollResult::Pending => return false,
                    PollResult::Ready(res) => {
                        outcome = Some(res.map(Some));
                        return true;
                    }
                    PollResult::Done => {
                        outcome = Some(Ok(None));
                        return true;
                    }
                }
            }
        })?;
        match outcome {
            Some(r) => r.map(Some),
            None => Ok(None),
        }
    }

    /// Runs `sql` and collects every result up to the end marker. The first failed statement's error is
    /// returned after the results have been drained, so the connection stays usable.
    pub fn query(&mut self, sql: &str) -> Result<Vec<QueryResult>, Error> {
        self.conn_mut().check_not_pipelined()?;
        self.send_query(sql)?;
        self.collect()
    }

    /// libpq's `PQsendQueryParams`: ONE statement with `$1..$n` bound to `params` as text (`None`
    /// is SQL NULL); results as with [`send_query`](Self::send_query). See
    /// [`Connection::send_query_params`].
    pub fn send_query_params(&mut self, sql: &str, params: &[Option<&str>]) -> Result<(), Error> {
        self.reactor
            .command_queued(self.id, |c| c.send_query_params(sql, params))
    }

    /// libpq's `PQsendPrepare`: its one result is `Command("")`, then the end marker.
    pub fn send_prepare(&mut self, statement: &str, sql: &str) -> Result<(), Error> {
        self.reactor
            .command_queued(self.id, |c| c.send_prepare(statement, sql))
    }

    /// libpq's `PQsendQueryPrepared`.
    pub fn send_query_prepared(
        &mut self,
        statement: &str,
        params: &[Option<&str>],
    ) -> Result<(), Error> {
        self.reactor
            .command_queued(self.id, |c| c.send_query_prepared(statement, params))
    }

    /// Like [`query`](Self::query) with a deadline: when `timeout` passes before the end marker, a
    /// cancel request is sent (the server ends the statement with 57014, which is returned once the
    /// results are drained, so the connection stays usable). Should the server not end it within
    /// the cancel timeout either, the error says so and the connection stays busy (its results come
    /// through [`get_result`](Self::get_result)).
    pub fn query_timeout(
        &mut self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Vec<QueryResult>, Error> {
        self.conn_mut().check_not_pipelined()?;
        self.send_query(sql)?;
        let mut deadline = Instant::now() + timeout;
        let mut cancelled = false;
        let mut results = Vec::new();
        let mut first_error = None;
        loop {
            match self.get_result_until(Some(deadline)) {
                Ok(Some(Some(r))) => results.push(r),
                Ok(Some(None)) => break,
                // A failed statement (the end marker still follows).
                Err(e) => {
                    first_error.get_or_insert(e);
                }
                Ok(None) if cancelled => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        crate::dblink::CANCEL_UNANSWERED_TEXT,
                    ));
                }
                Ok(None) => {
                    cancelled = true;
                    if let Some(token) = self.cancel_token() {
                        self.reactor.run_cancel(&token, DEFAULT_CANCEL_TIMEOUT)?;
                    }
                    deadline = Instant::now() + DEFAULT_CANCEL_TIMEOUT;
                }
            }
        }
        match first_error.take() {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }

    /// Runs one statement with parameters and collects every result up to the end marker, like
    /// [`query`](Self::query).
    pub fn query_params(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<Vec<QueryResult>, Error> {
        self.conn_mut().check_not_pipelined()?;
        self.send_query_params(sql, params)?;
        self.collect()
    }

    /// Collects every result up to the end marker; the first error is returned after the drain.
    fn collect(&mut self) -> Result<Vec<QueryResult>, Error> {
        let mut results = Vec::new();
        let mut first_error = None;
        loop {
            match self.get_result() {
                Ok(Some(r)) => results.push(r),
                Ok(None) => break,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }

    /// libpq's `PQenterPipelineMode` (see [`Connection::enter_pipeline_mode`]).
    pub fn enter_pipeline_mode(&mut self) -> Result<(), Error> {
        self.conn_mut().enter_pipeline_mode()
    }

    /// libpq's `PQexitPipelineMode` (see [`Connection::exit_pipeline_mode`]).
    pub fn exit_pipeline_mode(&mut self) -> Result<(), Error> {
        self.conn_mut().exit_pipeline_mode()
    }

    /// libpq's `PQpipelineSync`: a Sync, then flush.
    pub fn pipeline_sync(&mut self) -> Result<(), Error> {
        self.reactor.command_bounded(self.id, |c| c.pipeline_sync())
    }

    /// libpq's `PQsendFlushRequest`: a Flush message.
    pub fn send_flush_request(&mut self) -> Result<(), Error> {
        self.reactor
            .command_bounded(self.id, |c| c.send_flush_request())
    }

    /// libpq's `PQpipelineStatus`.
    pub fn pipeline_status(&self) -> crate::conn::PipelineStatus {
        self.conn().pipeline_status()
    }

    /// `COPY ... FROM STDIN` fed from `data` as it is read; returns the row count (see
    /// [`Reactor::copy_in`]).
    pub fn copy_in(&mut self, sql: &str, data: &mut dyn std::io::Read) -> Result<u64, Error> {
        self.reactor.copy_in(self.id, sql, data)
    }

    /// `COPY ... TO STDOUT`, each row written to `out` as it arrives; returns the row count (see
    /// [`Reactor::copy_out`]).
    pub fn copy_out(&mut self, sql: &str, out: &mut dyn std::io::Write) -> Result<u64, Error> {
        self.reactor.copy_out(self.id, sql, out)
    }

    /// A handle to cancel the running query from anywhere.
    pub fn cancel_token(&self) -> Option<CancelToken> {
        self.reactor.cancel_token(self.id)
    }

    /// Sends a cancel request for the running query and waits until the server has processed it.
    pub fn cancel(&self) -> Result<(), Error> {
        match self.cancel_token() {
            Some(token) => token.cancel(DEFAULT_CANCEL_TIMEOUT),
            None => Err(Error::new(
                ErrorKind::Usage,
                "PQcancel() -- no cancel object supplied",
            )),
        }
    }

    /// Notifications received so far (reads available input first).
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        self.reactor.read_now(self.id);
        self.conn_mut().take_notifications()
    }

    /// Waits up to `timeout` for at least one notification.
    pub fn wait_for_notifications(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<Notification>, Error> {
        let id = self.id;
        let mut got = Vec::new();
        self.reactor
            .wait_until(Some(Instant::now() + timeout), |r| {
                r.read_now(id);
                got = r
                    .get_mut(id)
                    .expect("client connection")
                    .conn_mut()
                    .take_notifications();
                !got.is_empty()
            })?;
        Ok(got)
    }

    /// Notices received so far.
    pub fn take_notices(&mut self) -> Vec<Error> {
        self.conn_mut().take_notices()
    }

    /// libpq's error-message buffer.
    pub fn error_message(&self) -> &str {
        self.conn().error_message()
    }

    /// The TCP stream of a TCP connection (to read its socket options back, for instance); `None`
    /// over a unix-domain socket.
    pub fn tcp_stream(&self) -> Option<&mio::net::TcpStream> {
        self.reactor
            .get(self.id)
            .expect("client connection")
            .tcp_stream()
    }

    /// The backend's process id.
    pub fn backend_pid(&self) -> Option<u32> {
        self.conn().backend_key().map(|(pid, _)| pid)
    }

    /// libpq's `PQhost`: the host connected to, as the connection string gave it (a host name,
    /// else the `hostaddr`, or a unix socket directory); of several hosts, the one in use.
    pub fn host(&self) -> &str {
        self.reactor.host(self.id).unwrap_or_default()
    }

    /// libpq's `PQport`: the port of the server in use.
    pub fn port(&self) -> u16 {
        self.reactor.port(self.id).unwrap_or(0)
    }

    /// libpq's `PQparameterStatus`: a setting the server reports (`server_version`,
    /// `in_hot_standby`, ...), as last reported.
    pub fn parameter_status(&self, parameter: &str) -> Option<&str> {
        self.conn().parameter(parameter)
    }

    /// libpq's `PQtransactionStatus` (see [`TransactionStatus::of`]).
    pub fn transaction_status(&self) -> TransactionStatus {
        TransactionStatus::of(self.conn())
    }

    /// Whether the connection is encrypted (libpq's `PQsslInUse`).
    pub fn ssl_in_use(&self) -> bool {
        self.reactor.get(self.id).is_some_and(|s| s.ssl_in_use())
    }

    /// An attribute of the TLS session (libpq's `PQsslAttribute`): `library` (`rustls`), `protocol`
    /// (`TLSv1.2`, `TLSv1.3`), `cipher`, `key_bits`, `compression` (`off`); `None` for an unknown
    /// attribute or an unencrypted connection.
    pub fn ssl_attribute(&self, attribute: &str) -> Option<String> {
        self.reactor.get(self.id)?.ssl_attribute(attribute)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reactor.close(self.id);
    }
}

impl Reactor {
    /// A [`Client`]'s wait without a deadline, when its connection is the reactor's only one and
    /// nothing else is in progress: sleeps in the connection's `recv` until its input arrives
    /// ([`PgSocket::read_waiting`](super::socket::PgSocket::read_waiting)), one system call
    /// where waiting for readiness and then reading takes two. Returns false, having done nothing,
    /// where that does not apply (the caller then waits for readiness).
    #[cfg(target_os = "linux")]
    fn wait_in_recv(&mut self, id: ConnId) -> bool {
        if self.sockets.len() != 1 || !self.pending.is_empty() || self.attempts.any_running() {
            return false;
        }
        let Some(Some(socket)) = self.sockets.get_mut(id.0) else {
            return false;
        };
        let registry = self.poll.registry();
        let token = mio::Token(id.0);
        if super::with_scratch(|scratch| socket.read_waiting(scratch, registry, token)).is_none() {
            return false;
        }
        if socket.pending_read() {
            super::mark_touched(&mut self.pending, &mut self.is_pending, id.0);
        }
        if self.track {
            super::mark_touched(&mut self.touched, &mut self.is_touched, id.0);
        }
        true
    }
}

//! The mio driver: the only layer that touches sockets, time and OS randomness.
//!
//! A [`Reactor`] owns one `mio::Poll` and any number of [`PgSocket`]s. Every wait on one connection
//! dispatches the readiness events of all of them, so while a caller blocks on one server, the input of
//! every other server is still read and parsed and no server stalls on a full socket buffer.
//! [`Client`] is the single-connection convenience on top; the `Dblink` registry uses the reactor
//! directly.
//!
//! Commands go through [`Reactor::command`] (or [`PgSocket::command`]), which writes what the command
//! queued; results through [`Reactor::poll_result`], which resumes reading a connection that
//! chunked-rows backpressure paused once enough results were taken. Pausing and resuming are the
//! session's call alone ([`Connection::wants_read`]): the socket's registration follows it (see
//! [`PgSocket`]).
//!
//! A caller about to wait for the answer to what it just sent first reads once without waiting
//! ([`Reactor::read_on_hint`]): where the answer is already there (the caller did other work after
//! sending, or the server answered before the send returned), the read saves the `epoll_wait`. An
//! early read that finds nothing pauses them for the next 15 sends, and misses in a row for up to
//! 255, so a connection whose answers never come that fast pays one empty read in 256 queries.

mod attempts;
mod cancel;
mod client;
mod connect;
mod extended;
mod socket;
mod status;
mod stream;
pub mod tls;
mod transport;

pub use attempts::AttemptId;
pub use cancel::CancelToken;
pub use client::Client;
pub use extended::OUTPUT_THRESHOLD;
pub use socket::PgSocket;
pub use status::TransactionStatus;
pub use stream::{OpenError, Peer, SocketOptions, Stream, os_error_text};
pub use transport::Transport;

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Poll, Token};

use crate::auth::{ScramClient, ScramKeyCache};
use crate::conn::{Budgets, Connection, PollResult, StartupConfig};
use crate::conninfo::{Config, ConnectParams, Environment, Host, Target};
use crate::error::{Error, ErrorKind};
use std::sync::{Arc, Mutex, OnceLock};

/// Identifies a connection inside a [`Reactor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(usize);

impl ConnId {
    /// The index of the connection in its reactor (small, reused after close).
    pub fn index(self) -> usize {
        self.0
    }

    /// The id of index `index` (whether or not a connection has it).
    pub(crate) fn from_index(index: usize) -> ConnId {
        ConnId(index)
    }
}

/// The size of the read buffer shared by all connections of all reactors of a thread.
const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    /// One read buffer per thread, whatever the number of reactors and connections: a socket's bytes are
    /// handed to its session before the next socket is read.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; SCRATCH_SIZE]);
}

/// Runs `f` with this thread's read buffer.
#[inline(always)]
pub(crate) fn with_scratch<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// [`with_scratch`] for a caller that may run while the thread's read buffer is in use (bringing a
/// registration in line inside a readiness event): a buffer of its own then. Rare, hence cold.
#[cold]
pub(crate) fn with_free_scratch<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut vec![0; SCRATCH_SIZE]),
    })
}

/// One `mio::Poll` driving many connections.
pub struct Reactor {
    poll: Poll,
    events: Events,
    sockets: Vec<Option<PgSocket>>,
    free: Vec<usize>,
    /// Connections whose input was read since the last [`Reactor::take_touched`], each once.
    touched: Vec<ConnId>,
    /// Whether a connection is in `touched`, by index.
    is_touched: Vec<bool>,
    /// Connection attempts ([`Reactor::connect_start`]).
    attempts: attempts::Attempts,
    /// The host (as given) and port each connection made by an attempt went to, by index.
    origins: Vec<Option<(Box<str>, u16)>>,
    /// Connections whose last read stopped at the per-turn budget with input left
    /// ([`PgSocket::pending_read`]): the next [`dispatch`](Reactor::dispatch) does not wait, and
    /// reads them again after the events of the others.
    pending: Vec<ConnId>,
    /// Whether a connection is in `pending`, by index.
    is_pending: Vec<bool>,
    /// The budgets given to every connection opened from now on ([`Reactor::set_budgets`]).
    budgets: Option<Budgets>,
    /// Whether [`Reactor::last_ready`] and `touched` are kept: false for a [`Client`]'s reactor,
    /// whose one connection nobody asks about.
    track: bool,
}

/// The token of a cancel request's socket (never a connection's index).
const CANCEL_TOKEN: Token = Token(usize::MAX);

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("connections", &(self.sockets.len() - self.free.len()))
            .finish_non_exhaustive()
    }
}

impl Reactor {
    /// A reactor with no connections.
    pub fn new() -> Result<Reactor, Error> {
        Ok(Reactor {
            poll: Poll::new().map_err(stream::io_error)?,
            events: Events::with_capacity(1024),
            sockets: Vec::new(),
            free: Vec::new(),
            touched: Vec::new(),
            is_touched: Vec::new(),
            attempts: attempts::Attempts::default(),
            origins: Vec::new(),
            pending: Vec::new(),
            is_pending: Vec::new(),
            budgets: None,
            track: true,
        })
    }

    /// Stops keeping [`last_ready`](Self::last_ready) and [`take_touched`](Self::take_touched)
    /// (both stay empty): a [`Client`]'s reactor, whose caller never asks.
    pub(crate) fn untracked(mut self) -> Reactor {
        self.track = false;
        self
    }

    /// The connection `id`, if it exists.
    pub fn get(&self, id: ConnId) -> Option<&PgSocket> {
        self.sockets.get(id.0).and_then(|s| s.as_ref())
    }

    /// The connection `id`, mutably.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut PgSocket> {
        self.sockets.get_mut(id.0).and_then(|s| s.as_mut())
    }

    /// The ids of all connections.
    pub fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.sockets
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| ConnId(i))
    }

    /// The [`Budgets`] of every connection opened from now on (connections already open keep
    /// theirs; [`Connection::set_budgets`] changes one). Default: [`Budgets::default`].
    pub fn set_budgets(&mut self, budgets: Budgets) {
        self.budgets = Some(budgets);
    }

    fn insert(&mut self, mut socket: PgSocket) -> Result<ConnId, Error> {
        if let Some(budgets) = self.budgets {
            socket.conn_mut().set_budgets(budgets);
        }
        let index = match self.free.pop() {
            Some(i) => {
                self.sockets[i] = Some(socket);
                i
            }
            None => {
                self.sockets.push(Some(socket));
                self.sockets.len() - 1
            }
        };
        let id = ConnId(index);
        if let Err(e) = self.update(id) {
            self.remove_socket(id);
            return Err(stream::io_error(e));
        }
        Ok(id)
    }

    fn remove_socket(&mut self, id: ConnId) -> Option<PgSocket> {
        let mut socket = self.sockets.get_mut(id.0)?.take()?;
        socket.detach(self.poll.registry());
        self.free.push(id.0);
        if let Some(origin) = self.origins.get_mut(id.0) {
            *origin = None;
        }
        Some(socket)
    }

    fn set_origin(&mut self, id: ConnId, host: String, port: u16) {
        if self.origins.len() <= id.0 {
            self.origins.resize(id.0 + 1, None);
        }
        self.origins[id.0] = Some((host.into_boxed_str(), port));
    }

    /// The host connection `id` went to, as given in the connection string (libpq's `PQhost`: the
    /// host name, else the `hostaddr`, or the socket directory); `None` for an unknown id.
    pub fn host(&self, id: ConnId) -> Option<&str> {
        self.origins.get(id.0)?.as_ref().map(|(h, _)| &**h)
    }

    /// The port connection `id` went to (libpq's `PQport`).
    pub fn port(&self, id: ConnId) -> Option<u16> {
        self.origins.get(id.0)?.as_ref().map(|(_, p)| *p)
    }

    /// Removes a connection: sends Terminate (best effort) and closes the socket.
    pub fn close(&mut self, id: ConnId) {
        if let Some(mut socket) = self.remove_socket(id) {
            socket.close();
        }
    }

    /// Runs a command on connection `id` (`|c| c.send_query(sql)`, ...) and writes what it queued
    /// (as much as the socket takes; the rest goes out on writable events). `Err` for an unknown id
    /// or the command's own error.
    pub fn command<T>(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let socket = self
            .get_mut(id)
            .ok_or_else(|| Error::new(ErrorKind::Usage, "no such connection"))?;
        let result = socket.command(f);
        let _ = self.update(id);
        result
    }

    /// The next result of connection `id`, the end marker, or "not yet" ([`Connection::poll_result`]),
    /// without waiting. Taking a result may lift chunked-rows backpressure: reading resumes then,
    /// starting with what the socket already holds. An unknown id is [`PollResult::Done`].
    #[inline]
    pub fn poll_result(&mut self, id: ConnId) -> PollResult {
        let Some(socket) = self.get_mut(id) else {
            return PollResult::Done;
        };
        // Registered for reading (the steady state): taking a result leaves the registration as
        // it is, so reading cannot be stalled after it, and the result goes straight out.
        if socket.registered_for_input() {
            return socket.conn_mut().poll_result();
        }
        self.poll_result_unregistered(id)
    }

    /// [`poll_result`](Self::poll_result) of a connection not registered for reading: reading
    /// resumes if taking the result lifted the backpressure that paused it.
    #[inline(never)]
    fn poll_result_unregistered(&mut self, id: ConnId) -> PollResult {
        let Some(socket) = self.get_mut(id) else {
            return PollResult::Done;
        };
        let result = socket.conn_mut().poll_result();
        if socket.read_stalled() {
            self.resume(id);
        }
        result
    }

    /// The connection `id` and the registry it is registered with, borrowed together.
    #[inline]
    fn socket_and_registry(&mut self, id: ConnId) -> Option<(&mut PgSocket, &mio::Registry)> {
        match self.sockets.get_mut(id.0) {
            Some(Some(socket)) => Some((socket, self.poll.registry())),
            _ => None,
        }
    }

    /// Reads what a connection whose reading was paused holds, now that its session wants input
    /// again, and registers it for readability ([`PgSocket::update_registration`]).
    #[cold]
    fn resume(&mut self, id: ConnId) {
        if matches!(self.update(id), Ok(n) if n > 0) && self.track {
            mark_touched(&mut self.touched, &mut self.is_touched, id.0);
        }
        self.note_pending(id);
    }

    /// Remembers connection `id` for the next turn if its last read stopped at the per-turn budget.
    fn note_pending(&mut self, id: ConnId) {
        if self.get(id).is_some_and(PgSocket::pending_read) {
            mark_touched(&mut self.pending, &mut self.is_pending, id.0);
        }
    }

    /// Makes progress on connection `id` while the caller waits for it: without waiting where
    /// [`progress_now`](Self::progress_now) can, else by waiting once for readiness on all
    /// connections.
    #[inline(always)]
    pub fn progress(&mut self, id: ConnId, timeout: Option<Duration>) -> Result<(), Error> {
        if self.progress_now(id) {
            Ok(())
        } else {
            self.dispatch(timeout)
        }
    }

    /// Makes progress on connection `id` without waiting, where that can help: resumes reading after
    /// backpressure where results were taken some other way than [`poll_result`](Self::poll_result)
    /// (the bytes queued meanwhile raise no readiness event), or reads once right after a send (see
    /// [`read_on_hint`](Self::read_on_hint)). Returns false when only waiting for readiness can.
    #[inline]
    pub fn progress_now(&mut self, id: ConnId) -> bool {
        if self.get(id).is_some_and(|s| s.read_stalled()) {
            self.resume(id);
            true
        } else {
            self.read_on_hint(id)
        }
    }

    /// If connection `id` has just sent output (its read hint is set), reads its available input now
    /// and returns true; otherwise returns false and does nothing. A caller about to wait for the
    /// connection's answer calls this first.
    #[inline]
    pub fn read_on_hint(&mut self, id: ConnId) -> bool {
        if !self.get_mut(id).is_some_and(|s| s.take_read_hint()) {
            return false;
        }
        let n = self.read_now(id);
        if let Some(socket) = self.get_mut(id) {
            socket.hint_result(n);
        }
        true
    }

    /// Reads the connection's available input without blocking (what `is_busy` does); returns the
    /// number of bytes read.
    pub fn read_now(&mut self, id: ConnId) -> usize {
        let Some(Some(socket)) = self.sockets.get_mut(id.0) else {
            return 0;
        };
        // Outside an event: an unconsumed edge (if any) stays queued in the poll, so a short read
        // cannot lose an end of stream here.
        let registry = self.poll.registry();
        let n = with_scratch(|scratch| socket.read_registered(scratch, registry, Token(id.0)));
        if self.track {
            mark_touched(&mut self.touched, &mut self.is_touched, id.0);
        }
        if socket.pending_read() {
            mark_touched(&mut self.pending, &mut self.is_pending, id.0);
        }
        n
    }

    /// Brings the registration of connection `id` in line with its session; returns the bytes read
    /// to resume it after backpressure, if it was paused.
    fn update(&mut self, id: ConnId) -> io::Result<usize> {
        let registry = self.poll.registry();
        match self.sockets.get_mut(id.0) {
            Some(Some(socket)) => socket.update_registration(registry, Token(id.0)),
            _ => Ok(0),
        }
    }

    /// Waits once for readiness (at most `timeout`) and handles every event: all connections progress.
    ///
    /// One turn reads at most [`Budgets::read_per_turn`](crate::conn::Budgets::read_per_turn)
    /// bytes from each connection. A connection stopped there with input left does not wait for a
    /// readiness edge (it may have none to come): the next turn polls without waiting, and after
    /// the events reads it again. So a caller's deadline is checked between turns however fast one
    /// server sends, and every other connection is served on each turn.
    #[inline(always)]
    pub fn dispatch(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        if !self.pending.is_empty() || self.attempts.any_running() {
            return self.dispatch_full(timeout);
        }
        // The common turn: nothing left over from the last one, no connection attempt running.
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(stream::io_error(e)),
        }
        self.handle_events();
        Ok(())
    }

    /// [`dispatch`](Self::dispatch) with connections left with input at the last turn, or
    /// connection attempts running.
    #[inline(never)]
    fn dispatch_full(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let attempts = self.attempts.any_running();
        let pending = std::mem::take(&mut self.pending);
        for id in &pending {
            self.is_pending[id.0] = false;
        }
        let timeout = if !pending.is_empty() {
            Some(Duration::ZERO)
        } else if attempts {
            self.attempts.cap_timeout(timeout)
        } else {
            timeout
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.requeue(pending);
                return Ok(());
            }
            Err(e) => {
                self.requeue(pending);
                return Err(stream::io_error(e));
            }
        }
        self.handle_events();
        // The connections left with input at the last turn and no event at this one.
        let registry = self.poll.registry();
        for id in pending {
            // Read at this turn's event already (and still pending: queued again), or gone.
            if self.is_pending.get(id.0).copied().unwrap_or(false) {
                continue;
            }
            let Some(Some(socket)) = self.sockets.get_mut(id.0) else {
                continue;
            };
            if !socket.pending_read() {
                continue;
            }
            // No edge can be counted on: read to `WouldBlock` (or the budget).
            with_scratch(|scratch| socket.on_event(scratch, true));
            let _ = socket.update_registration(registry, Token(id.0));
            if self.track {
                mark_touched(&mut self.touched, &mut self.is_touched, id.0);
            }
            if socket.pending_read() {
                mark_touched(&mut self.pending, &mut self.is_pending, id.0);
            }
        }
        if attempts {
            self.advance_connects();
        }
        Ok(())
    }

    /// Handles the events of the last poll: each connection reads (and writes) what it can.
    #[inline(always)]
    fn handle_events(&mut self) {
        if self.events.is_empty() {
            return;
        }
        // The read buffer once for all the events.
        with_scratch(|scratch| self.handle_events_with(scratch));
    }

    /// [`handle_events`](Self::handle_events) with the read buffer.
    #[inline(always)]
    fn handle_events_with(&mut self, scratch: &mut [u8]) {
        let registry = self.poll.registry();
        for event in self.events.iter() {
            let index = event.token().0;
            let Some(Some(socket)) = self.sockets.get_mut(index) else {
                continue;
            };
            let closed = event.is_read_closed() || event.is_error();
            socket.on_event_registered(scratch, closed, registry, event.token());
            if self.track {
                mark_touched(&mut self.touched, &mut self.is_touched, index);
            }
            if socket.pending_read() {
                mark_touched(&mut self.pending, &mut self.is_pending, index);
            }
        }
    }

    /// Puts back connections taken from `pending` by a turn that read nothing.
    fn requeue(&mut self, pending: Vec<ConnId>) {
        for id in pending {
            mark_touched(&mut self.pending, &mut self.is_pending, id.0);
        }
    }

    /// The connections whose input was read (by [`dispatch`](Self::dispatch) or
    /// [`read_now`](Self::read_now)) since the last call, each once; forgets them. This is how a caller
    /// watching many connections finds the ones whose state may have changed without scanning all.
    pub fn take_touched(&mut self) -> Vec<ConnId> {
        let mut out = Vec::new();
        self.take_touched_into(&mut out);
        out
    }

    /// Like [`take_touched`](Self::take_touched), appending to `out`: no allocation once `out`
    /// and the reactor's own list have grown to the number of connections touched at once.
    pub fn take_touched_into(&mut self, out: &mut Vec<ConnId>) {
        for id in &self.touched {
            self.is_touched[id.0] = false;
        }
        out.append(&mut self.touched);
    }

    /// Like [`take_touched_into`](Self::take_touched_into), appending only the connections `keep`
    /// accepts: the others are forgotten all the same. One pass, where a `retain` after
    /// `take_touched_into` would be two.
    #[inline]
    pub fn take_touched_into_if(
        &mut self,
        out: &mut Vec<ConnId>,
        mut keep: impl FnMut(&Reactor, ConnId) -> bool,
    ) {
        if self.touched.is_empty() {
            return;
        }
        let mut touched = std::mem::take(&mut self.touched);
        // The kept ids are moved to the front of the list itself (no growth check in the loop),
        // which then becomes `out` where that is empty (the common case: no copy).
        let mut kept = 0;
        for i in 0..touched.len() {
            let id = touched[i];
            if let Some(flag) = self.is_touched.get_mut(id.0) {
                *flag = false;
            }
            if keep(self, id) {
                touched[kept] = id;
                kept += 1;
            }
        }
        touched.truncate(kept);
        if out.is_empty() {
            std::mem::swap(out, &mut touched);
        } else {
            out.extend_from_slice(&touched);
        }
        touched.clear();
        self.touched = touched;
    }

    /// The connections that had readiness events in the last [`dispatch`](Self::dispatch) (none
    /// for a dispatch interrupted by a signal), read from the events themselves: nothing is kept
    /// for it while dispatching.
    pub fn last_ready(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.events
            .iter()
            .filter(|_| self.track)
            .map(|event| event.token().0)
            .filter(|&index| matches!(self.sockets.get(index), Some(Some(_))))
            .map(ConnId)
    }

    /// Dispatches events until `done` returns true (checked first) or `deadline` passes. Returns
    /// whether `done` became true.
    pub fn wait_until(
        &mut self,
        deadline: Option<Instant>,
        mut done: impl FnMut(&mut Reactor) -> bool,
    ) -> Result<bool, Error> {
        loop {
            if done(self) {
                return Ok(true);
            }
            let timeout = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(false);
                    }
                    Some(d - now)
                }
                None => None,
            };
            self.dispatch(timeout)?;
        }
    }

    /// Connects with a libpq connection string (environment and `~/.pgpass` fill in what it leaves
    /// out), blocking until the session is ready or every host has failed. Other connections keep
    /// being served meanwhile.
    pub fn connect(&mut self, conninfo: &str) -> Result<ConnId, Error> {
        let config = Config::parse(conninfo)?;
        self.connect_config(&config, &crate::conninfo::SystemEnvironment)
    }

    /// Connects with a parsed configuration and an explicit environment: a
    /// [`connect_start`](Self::connect_start) driven to its end.
    ///
    /// On failure the error's message is libpq's `PQerrorMessage` without the final newline: one
    /// `connection to server at "...", port N failed: ...` line per attempt.
    pub fn connect_config(
        &mut self,
        config: &Config,
        env: &dyn Environment,
    ) -> Result<ConnId, Error> {
        let attempt = self.connect_start(config, env);
        self.connect_finish(attempt)
    }

    /// Cancels the query running on connection `id`: a CancelRequest on a new non-blocking socket to the
    /// exact address the connection uses, then a wait (at most `timeout`) until the server closes that
    /// socket. Every connection keeps being served meanwhile; the connection's own state is untouched.
    pub fn cancel(&mut self, id: ConnId, timeout: Duration) -> Result<(), Error> {
        match self.cancel_token(id) {
            Some(token) => self.run_cancel(&token, timeout),
            None => Err(Error::new(
                ErrorKind::Usage,
                "PQcancel() -- no cancel object supplied",
            )),
        }
    }

    /// Runs a cancel request like [`cancel`](Self::cancel) for any token.
    pub fn run_cancel(&mut self, token: &CancelToken, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let mut request = cancel::CancelRequest::start(token)?;
        request
            .stream_mut()
            .register(
                self.poll.registry(),
                CANCEL_TOKEN,
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )
            .map_err(stream::io_error)?;
        let finished = self.wait_until(Some(deadline), |_| request.progress());
        let _ = request.stream_mut().deregister(self.poll.registry());
        match finished {
            Ok(true) => request.outcome(),
            Ok(false) => Err(Error::new(ErrorKind::Io, "cancel request timed out")),
            Err(e) => Err(e),
        }
    }

    /// A handle that can cancel the query running on connection `id`, if the server sent its key.
    pub fn cancel_token(&self, id: ConnId) -> Option<CancelToken> {
        let socket = self.get(id)?;
        let (pid, key) = socket.conn().backend_key()?;
        let tls = socket
            .ssl_in_use()
            .then(|| socket.tls_plan().cloned())
            .flatten();
        Some(CancelToken::new(socket.peer().clone(), pid, key.to_vec()).with_tls(tls))
    }
}

#[inline]
fn mark_touched(touched: &mut Vec<ConnId>, is_touched: &mut Vec<bool>, index: usize) {
    if is_touched.len() <= index {
        is_touched.resize(index + 1, false);
    }
    if !is_touched[index] {
        is_touched[index] = true;
        touched.push(ConnId(index));
    }
}

/// The host name of a target, for messages.
fn host_name(target: &Target) -> String {
    match &target.host {
        Host::Tcp { name, .. } => name.clone(),
        Host::Unix { dir } => dir.display().to_string(),
    }
}

/// The addresses to try for a target, in order.
fn resolve_target(target: &Target) -> Result<Vec<Peer>, String> {
    match &target.host {
        Host::Unix { .. } => Ok(vec![Peer::Unix(target.socket_path().unwrap_or_default())]),
        Host::Tcp {
            addr: Some(addr), ..
        } => Ok(vec![Peer::Tcp(SocketAddr::new(*addr, target.port))]),
        Host::Tcp { name, addr: None } => {
            if let Ok(ip) = name.parse::<IpAddr>() {
                return Ok(vec![Peer::Tcp(SocketAddr::new(ip, target.port))]);
            }
            match (name.as_str(), target.port).to_socket_addrs() {
                Ok(addrs) => {
                    let peers: Vec<Peer> = addrs.map(Peer::Tcp).collect();
                    if peers.is_empty() {
                        Err("no addresses found".into())
                    } else {
                        Ok(peers)
                    }
                }
                Err(e) => Err(lookup_error_text(&e)),
            }
        }
    }
}

/// The reason of a failed name lookup as libpq prints it (`gai_strerror`'s text, `Name or service
/// not known`), without the words std adds before it.
fn lookup_error_text(e: &io::Error) -> String {
    let text = os_error_text(e);
    match text.strip_prefix("failed to lookup address information: ") {
        Some(reason) => reason.to_owned(),
        None => text,
    }
}

/// The failures of the attempts on one address as one error: libpq's lines, each after the first
/// with the address's prefix (the caller adds the first's); the last attempt's SQLSTATE.
fn join_attempts(failures: Vec<Error>, prefix: &str) -> Error {
    if failures.len() == 1 {
        return failures.into_iter().next().expect("one failure");
    }
    let mut text = String::new();
    for (i, e) in failures.iter().enumerate() {
        if i > 0 {
            text.push('\n');
            text.push_str(prefix);
        }
        text.push_str(e.libpq_text().trim_end());
    }
    match failures.into_iter().last() {
        Some(last) if text.is_empty() => last,
        Some(last) => {
            let joined = Error::new(last.kind(), text);
            match last.code() {
                Some(code) => joined.with_code(code),
                None => joined,
            }
        }
        None => Error::new(ErrorKind::Connect, "no connection attempt was made"),
    }
}

/// libpq's prefix naming the server an attempt went to.
pub fn describe_peer(target: &Target, peer: &Peer) -> String {
    match (peer, &target.host) {
        (Peer::Unix(path), _) => {
            format!(
                "connection to server on socket \"{}\" failed: ",
                path.display()
            )
        }
        (Peer::Tcp(addr), Host::Tcp { name, .. }) if *name != addr.ip().to_string() => format!(
            "connection to server at \"{name}\" ({}), port {} failed: ",
            addr.ip(),
            addr.port()
        ),
        (Peer::Tcp(addr), _) => format!(
            "connection to server at \"{}\", port {} failed: ",
            addr.ip(),
            addr.port()
        ),
    }
}

fn startup_config(
    params: &ConnectParams,
    target: &Target,
    peer: &Peer,
) -> Result<StartupConfig, Error> {
    let mut raw = [0u8; 18];
    getrandom::fill(&mut raw)
        .map_err(|e| Error::new(ErrorKind::Other, format!("could not generate nonce: {e}")))?;
    let over_tcp = matches!(peer, Peer::Tcp(_));
    let nonce = ScramClient::nonce_from_bytes(&raw);
    Ok(StartupConfig::from_params(params, target, over_tcp, nonce)?
        .with_scram_cache(scram_key_cache()))
}

/// The process-wide cache of derived SCRAM keys: reconnecting with the same password to the same server
/// (same salt and iteration count) costs what a trust connection costs.
fn scram_key_cache() -> Arc<Mutex<ScramKeyCache>> {
    static CACHE: OnceLock<Arc<Mutex<ScramKeyCache>>> = OnceLock::new();
    CACHE
        .get_or_init(|| Arc::new(Mutex::new(ScramKeyCache::new(64))))
        .clone()
}

/// libpq's `sslcertmode=require` check (at AuthenticationOk there; once the session is ready here):
/// the server asked for the client certificate and it was sent.
fn check_cert_sent(socket: &PgSocket, params: &ConnectParams) -> Result<(), String> {
    if params.sslcertmode != crate::conninfo::SslCertMode::Require {
        return Ok(());
    }
    match socket.tls_plan() {
        Some(plan) => plan.check_cert_sent(socket.ssl_in_use()),
        None => Err("server did not request an SSL certificate".into()),
    }
}

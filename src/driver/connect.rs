//! Connection attempts as resumable state machines, all progressing in the reactor's one `Poll`.
//!
//! A [`ConnectAttempt`] walks libpq's `PQconnectPoll` sequence: hosts in order (shuffled with
//! `load_balance_hosts=random`), each host's addresses, on each address the sslmode fallbacks
//! (`allow`, `prefer`), then the `target_session_attrs` check, with its `SHOW
//! transaction_read_only` / `SELECT pg_catalog.pg_is_in_recovery()` probe for servers that do not
//! report `default_transaction_read_only` / `in_hot_standby`. It never waits itself: the reactor
//! steps it whenever one of its socket's events is dispatched or its deadline passes, so any number
//! of attempts run at once, beside the connections already open.
//!
//! Where libpq moves on (fe-connect.c): a failed TCP/unix connect and `connect_timeout` try the
//! next address; `57P03` ("cannot connect now"), a rejected server type and a failed probe try the
//! next host; anything else after the socket connected (authentication, TLS, protocol) ends the
//! whole attempt, the remaining hosts untried. `prefer-standby` goes round once more accepting any
//! server when no standby was found. The error is every failure's line, libpq's `PQerrorMessage`.

use std::time::Instant;

use super::stream::{self, OpenError, Peer, SocketOptions};
use super::{ConnId, PgSocket, Reactor, describe_peer, resolve_target, startup_config, tls};
use crate::conn::{Connection, PollResult, QueryResult, State, TlsNegotiation};
use crate::conninfo::{
    Config, ConnectParams, Environment, GssEncMode, LoadBalanceHosts, SslMode, Target,
    TargetSessionAttrs,
};
use crate::error::{Error, ErrorKind};
use crate::sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION as SQLCLIENT_UNABLE;

/// Where an attempt goes after a failure (libpq's `try_next_addr` / `try_next_host` / giving up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// The next address (of this host, else the next host).
    Address,
    /// The next host: the other addresses of this one are not tried.
    Host,
    /// Give up: the remaining hosts are not tried.
    Stop,
}

/// The probe libpq sends when the server did not report what `target_session_attrs` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// `SHOW transaction_read_only` (`read-write`, `read-only`).
    ReadOnly,
    /// `SELECT pg_catalog.pg_is_in_recovery()` (`primary`, `standby`, `prefer-standby`).
    Recovery,
}

impl Probe {
    fn sql(self) -> &'static str {
        match self {
            Probe::ReadOnly => "SHOW transaction_read_only",
            Probe::Recovery => "SELECT pg_catalog.pg_is_in_recovery()",
        }
    }

    /// libpq's text when the probe fails.
    fn failed(self) -> &'static str {
        match self {
            Probe::ReadOnly => "\"SHOW transaction_read_only\" failed",
            Probe::Recovery => "\"SELECT pg_is_in_recovery()\" failed",
        }
    }
}

/// What the attempt waits for.
#[derive(Debug)]
enum Stage {
    /// Nothing: open the next socket (or end).
    Next,
    /// The socket's connect and the session's startup.
    Startup(ConnId),
    /// The answer to a probe: its first result (`Err` for anything but one row) once taken.
    Probe(ConnId, Probe, Option<Result<String, Option<Error>>>),
    /// The session is ready and of the kind wanted.
    Ready(ConnId),
}

/// What the server said about itself, from its reports or a probe (libpq's `PG_BOOL_*`).
#[derive(Clone, Copy, Debug, Default)]
struct ServerState {
    read_only: Option<bool>,
    hot_standby: Option<bool>,
}

/// One connection attempt over a host list. See the [module documentation](self).
pub(crate) struct ConnectAttempt {
    params: ConnectParams,
    options: Result<SocketOptions, Error>,
    tls_settings: tls::TlsSettings,
    /// Target indices in the order tried.
    order: Vec<usize>,
    /// The position in `order` of the next host.
    next_host: usize,
    /// The current target and its addresses.
    host: Option<usize>,
    peers: Vec<Peer>,
    next_peer: usize,
    /// The current address, its TLS plan and the sslmode tries left on it.
    peer: Option<Peer>,
    plan: Option<Result<tls::TlsPlan, Error>>,
    tries: &'static [bool],
    next_try: usize,
    /// The failures on the current address, one per try.
    failures: Vec<Error>,
    /// libpq's accumulated error lines, and the last failure.
    errors: String,
    last: Option<Error>,
    /// `prefer-standby`'s second pass (libpq's `SERVER_TYPE_PREFER_STANDBY_PASS2`).
    second_pass: bool,
    /// `connect_timeout` for the current address (restarted per address, as libpq).
    deadline: Option<Instant>,
    server: ServerState,
    stage: Stage,
}

impl std::fmt::Debug for ConnectAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectAttempt")
            .field("host", &self.host)
            .field("peer", &self.peer)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

/// The outcome of one step.
pub(crate) enum Progress {
    /// Waiting for the socket or the deadline.
    Waiting,
    /// Ended: the ready connection, or every failure.
    Ended(Result<ConnId, Error>),
}

impl ConnectAttempt {
    /// An attempt with a parsed configuration and an environment; `Err` for a configuration that
    /// does not resolve (what libpq reports before connecting anywhere).
    pub(crate) fn new(config: &Config, env: &dyn Environment) -> Result<ConnectAttempt, Error> {
        let params = config.resolve(env)?;
        if params.gssencmode == GssEncMode::Require {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "gssencmode value \"require\" invalid when GSSAPI support is not compiled in",
            )
            .with_code(SQLCLIENT_UNABLE));
        }
        let mut order: Vec<usize> = (0..params.targets.len()).collect();
        if params.load_balance_hosts == LoadBalanceHosts::Random {
            shuffle(&mut order);
        }
        Ok(ConnectAttempt {
            // Parsed once, reported per TCP attempt (as libpq, which sets them on each socket).
            options: SocketOptions::from_config(config),
            tls_settings: tls::TlsSettings::from_params(&params),
            params,
            order,
            next_host: 0,
            host: None,
            peers: Vec::new(),
            next_peer: 0,
            peer: None,
            plan: None,
            tries: &[],
            next_try: 0,
            failures: Vec::new(),
            errors: String::new(),
            last: None,
            second_pass: false,
            deadline: None,
            server: ServerState::default(),
            stage: Stage::Next,
        })
    }

    /// The socket in use, if any.
    pub(crate) fn socket(&self) -> Option<ConnId> {
        match self.stage {
            Stage::Next => None,
            Stage::Startup(id) | Stage::Probe(id, ..) | Stage::Ready(id) => Some(id),
        }
    }

    /// The target being tried, if any.
    pub(crate) fn target(&self) -> Option<&Target> {
        self.host.map(|i| &self.params.targets[i])
    }

    /// When the current address's `connect_timeout` runs out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Makes every step possible without waiting.
    pub(crate) fn step(&mut self, r: &mut Reactor, now: Instant) -> Progress {
        loop {
            let progressed = match self.stage {
                Stage::Next => match self.open_next(r, now) {
                    Some(end) => return Progress::Ended(end),
                    None => true,
                },
                Stage::Startup(id) => self.check_startup(r, id, now),
                Stage::Probe(id, probe, _) => self.check_probe(r, id, probe, now),
                Stage::Ready(_) => true,
            };
            if !progressed {
                return Progress::Waiting;
            }
            if let Stage::Ready(id) = self.stage {
                self.stage = Stage::Next;
                self.deadline = None;
                return Progress::Ended(Ok(id));
            }
        }
    }

    /// Opens the next socket: the next sslmode try on this address, else the next address, else the
    /// next host (resolving its name), else the second pass, else the end with every failure.
    fn open_next(&mut self, r: &mut Reactor, now: Instant) -> Option<Result<ConnId, Error>> {
        loop {
            if self.peer.is_some() && self.next_try < self.tries.len() {
                let try_tls = self.tries[self.next_try];
                self.next_try += 1;
                if let (true, Some(Err(e))) = (try_tls, &self.plan) {
                    // The TLS configuration failed (a file, a version): that is this TLS try's
                    // failure; a plain-text try after it does not need it.
                    let e = e.clone();
                    if self.next_try < self.tries.len() {
                        self.failures.push(e);
                    } else if self.failed(e, TlsNegotiation::NotAttempted, Next::Stop) == Next::Stop
                    {
                        return Some(Err(self.final_error()));
                    }
                    continue;
                }
                match self.open_socket(r, try_tls) {
                    Ok(id) => {
                        self.stage = Stage::Startup(id);
                        return None;
                    }
                    Err((e, next)) => match self.failed(e, TlsNegotiation::NotAttempted, next) {
                        Next::Stop => return Some(Err(self.final_error())),
                        _ => continue,
                    },
                }
            }
            if self.host.is_some() && self.next_peer < self.peers.len() {
                self.start_peer(now);
                continue;
            }
            if self.next_host < self.order.len() {
                self.start_host();
                continue;
            }
            if self.params.target_session_attrs == TargetSessionAttrs::PreferStandby
                && !self.second_pass
                && !self.order.is_empty()
            {
                self.second_pass = true;
                self.next_host = 0;
                continue;
            }
            return Some(Err(self.final_error()));
        }
    }

    fn start_host(&mut self) {
        let index = self.order[self.next_host];
        self.next_host += 1;
        self.host = Some(index);
        self.peer = None;
        self.next_peer = 0;
        let target = &self.params.targets[index];
        match resolve_target(target) {
            Ok(mut peers) => {
                if self.params.load_balance_hosts == LoadBalanceHosts::Random {
                    shuffle(&mut peers);
                }
                self.peers = peers;
            }
            Err(text) => {
                self.peers = Vec::new();
                self.errors.push_str(&format!(
                    "could not translate host name \"{}\" to address: {text}\n",
                    super::host_name(target)
                ));
            }
        }
    }

    /// Starts on the next address: its sslmode tries (libpq 17's `init_allowed_encryption_methods`:
    /// `allow` tries plain text first, `prefer` TLS first; unix sockets never use TLS) and its
    /// `connect_timeout`.
    fn start_peer(&mut self, now: Instant) {
        let peer = self.peers[self.next_peer].clone();
        self.next_peer += 1;
        let target = self.target().expect("a host").clone();
        let ip = match &peer {
            Peer::Tcp(addr) => Some(addr.ip()),
            Peer::Unix(_) => None,
        };
        let mode = self.params.sslmode;
        self.tries = match (ip, mode) {
            (None, _) | (_, SslMode::Disable) => &[false],
            (_, SslMode::Allow) => &[false, true],
            (_, SslMode::Prefer) => &[true, false],
            _ => &[true],
        };
        self.plan = match ip {
            Some(ip) if mode != SslMode::Disable => {
                Some(tls::plan(&self.tls_settings, &target, ip))
            }
            _ => None,
        };
        self.next_try = 0;
        self.failures.clear();
        self.peer = Some(peer);
        self.deadline = self.params.connect_timeout.map(|t| now + t);
    }

    /// Opens one socket to the current address, negotiating TLS or not.
    fn open_socket(&mut self, r: &mut Reactor, try_tls: bool) -> Result<ConnId, (Error, Next)> {
        let peer = self.peer.clone().expect("an address");
        let target = self.target().expect("a host");
        let plan = match &self.plan {
            Some(Ok(p)) => Some(p.clone()),
            _ => None,
        };
        let startup = startup_config(&self.params, target, &peer)
            .map_err(|e| (e, Next::Stop))?
            .with_tls_available(plan.is_some())
            .with_try_tls(try_tls);
        let options = match (&peer, &self.options) {
            (Peer::Tcp(_), Err(e)) => return Err((e.clone(), Next::Address)),
            (Peer::Tcp(_), Ok(o)) => o,
            // Unix-domain sockets have no TCP options: a bad value there is not an error (libpq).
            (Peer::Unix(_), _) => &SocketOptions::default(),
        };
        let socket = PgSocket::connect_with(peer.clone(), Connection::new(startup), options)
            .map_err(|e| match e {
                OpenError::Connect(e) => Error::io(
                    ErrorKind::Connect,
                    stream::connect_failure_text(&peer, &e),
                    e,
                ),
                OpenError::Option(text) => Error::new(ErrorKind::Connect, text),
            })
            .map_err(|e| (e, Next::Address))?
            .with_tls(plan);
        self.server = ServerState::default();
        r.insert(socket).map_err(|e| (e, Next::Address))
    }

    /// Checks the socket's connect and the session's startup; true if the attempt moved on.
    fn check_startup(&mut self, r: &mut Reactor, id: ConnId, now: Instant) -> bool {
        let Some(socket) = r.get_mut(id) else {
            let e = Error::new(ErrorKind::Connect, "connection closed");
            self.failed(e, TlsNegotiation::NotAttempted, Next::Address);
            return true;
        };
        if !socket.connect_failed() && socket.conn().state() == State::Startup {
            return self.timed_out(r, id, now);
        }
        let peer = socket.peer().clone();
        let outcome = if let Some(e) = socket.take_connect_error() {
            Err((
                Error::io(
                    ErrorKind::Connect,
                    stream::connect_failure_text(&peer, &e),
                    e,
                ),
                Next::Address,
            ))
        } else if let Some(e) = socket.conn().fatal_error() {
            // 57P03 ("the database system is starting up"): the next host (libpq).
            let next = if e.code() == Some("57P03") {
                Next::Host
            } else {
                Next::Stop
            };
            Err((e.clone(), next))
        } else if let Err(text) = super::check_cert_sent(socket, &self.params) {
            Err((
                Error::new(ErrorKind::Connect, text).with_code(SQLCLIENT_UNABLE),
                Next::Stop,
            ))
        } else {
            Ok(())
        };
        match outcome {
            Ok(()) => self.check_target(r, id),
            Err((e, next)) => {
                let negotiation = socket.conn().tls_negotiation();
                r.close(id);
                self.failed(e, negotiation, next);
            }
        }
        true
    }

    /// libpq's `CONNECTION_CHECK_TARGET`: accepts the session, rejects it (the next host), or sends
    /// the probe that tells.
    fn check_target(&mut self, r: &mut Reactor, id: ConnId) {
        let conn = r.get(id).expect("connection present").conn();
        let reported = |name: &str| conn.parameter(name).map(|v| v == "on");
        let server = &mut self.server;
        let wanted = match self.params.target_session_attrs {
            TargetSessionAttrs::PreferStandby if self.second_pass => TargetSessionAttrs::Any,
            TargetSessionAttrs::PreferStandby => TargetSessionAttrs::Standby,
            other => other,
        };
        let verdict = match wanted {
            TargetSessionAttrs::ReadWrite | TargetSessionAttrs::ReadOnly => {
                let read_only = server.read_only.or_else(|| {
                    match (
                        reported("default_transaction_read_only"),
                        reported("in_hot_standby"),
                    ) {
                        (Some(d), Some(h)) => Some(d || h),
                        _ => None,
                    }
                });
                match read_only {
                    None => Err(Probe::ReadOnly),
                    Some(ro) if ro == (wanted == TargetSessionAttrs::ReadWrite) => {
                        Ok(Some(if ro {
                            "session is read-only"
                        } else {
                            "session is not read-only"
                        }))
                    }
                    Some(_) => Ok(None),
                }
            }
            TargetSessionAttrs::Primary | TargetSessionAttrs::Standby => {
                // Servers before 9.0 have no standby mode (libpq assumes the answer).
                let standby = server.hot_standby.or_else(|| {
                    if super::status::server_version(conn) < 90000 {
                        Some(false)
                    } else {
                        reported("in_hot_standby")
                    }
                });
                match standby {
                    None => Err(Probe::Recovery),
                    Some(true) if wanted == TargetSessionAttrs::Primary => {
                        Ok(Some("server is in hot standby mode"))
                    }
                    Some(false) if wanted == TargetSessionAttrs::Standby => {
                        Ok(Some("server is not in hot standby mode"))
                    }
                    Some(_) => Ok(None),
                }
            }
            _ => Ok(None),
        };
        match verdict {
            Ok(None) => self.stage = Stage::Ready(id),
            Ok(Some(text)) => {
                // Closing sends Terminate: libpq's polite close of a rejected server.
                r.close(id);
                let e = Error::new(ErrorKind::Connect, text);
                self.failed(e, TlsNegotiation::NotAttempted, Next::Host);
            }
            Err(probe) => match r.command(id, |c| c.send_query(probe.sql())) {
                Ok(()) => self.stage = Stage::Probe(id, probe, None),
                Err(e) => self.probe_failed(r, id, probe, Some(e)),
            },
        }
    }

    /// Takes the probe's results up to the end marker; true if the attempt moved on.
    fn check_probe(&mut self, r: &mut Reactor, id: ConnId, probe: Probe, now: Instant) -> bool {
        loop {
            match r.poll_result(id) {
                PollResult::Pending => {
                    return self.timed_out(r, id, now);
                }
                PollResult::Ready(result) => {
                    if let Stage::Probe(_, _, first @ None) = &mut self.stage {
                        *first = Some(match result {
                            Ok(QueryResult::Rows(rows)) if rows.len() == 1 => {
                                Ok(rows.get(0, 0).unwrap_or_default().to_owned())
                            }
                            Ok(_) => Err(None),
                            Err(e) => Err(Some(e)),
                        });
                    }
                }
                PollResult::Done => break,
            }
        }
        let first = match std::mem::replace(&mut self.stage, Stage::Startup(id)) {
            Stage::Probe(_, _, first) => first,
            _ => None,
        };
        match first {
            Some(Ok(value)) => {
                // "on" proves one of the two is on; libpq counts both (CONNECTION_CHECK_WRITABLE).
                match probe {
                    Probe::ReadOnly => {
                        let on = value.starts_with("on");
                        self.server.read_only = Some(on);
                        self.server.hot_standby = Some(on);
                    }
                    Probe::Recovery => self.server.hot_standby = Some(value.starts_with('t')),
                }
                self.check_target(r, id);
            }
            Some(Err(e)) => self.probe_failed(r, id, probe, e),
            None => self.probe_failed(r, id, probe, None),
        }
        true
    }

    fn probe_failed(&mut self, r: &mut Reactor, id: ConnId, probe: Probe, e: Option<Error>) {
        r.close(id);
        let mut text = e.map(|e| e.libpq_text()).unwrap_or_default();
        text.push_str(probe.failed());
        let e = Error::new(ErrorKind::Connect, text);
        self.failed(e, TlsNegotiation::NotAttempted, Next::Host);
    }

    /// Whether this try's `connect_timeout` has passed at `now`; if so the try is closed and the
    /// attempt moves on to the next address (never to the other encryption method).
    fn timed_out(&mut self, r: &mut Reactor, id: ConnId, now: Instant) -> bool {
        if self.deadline.is_none_or(|d| now < d) {
            return false;
        }
        r.close(id);
        let e = Error::new(ErrorKind::Connect, "timeout expired");
        self.failed(e, TlsNegotiation::NotAttempted, Next::Address);
        true
    }

    /// Records a failure on the current address and decides where to go: the other sslmode try on
    /// this address when libpq would make it, else `next`. At the end of an address its failures
    /// become one libpq line each, after the address's prefix.
    fn failed(&mut self, e: Error, negotiation: TlsNegotiation, next: Next) -> Next {
        self.stage = Stage::Next;
        let more = self.next_try < self.tries.len();
        let retry = more
            && match self.params.sslmode {
                // A plain-text try the server refused (not "cannot connect now", which moves on to
                // the next host).
                SslMode::Allow => {
                    e.code().is_some_and(|c| c != "57P03") && e.kind() == ErrorKind::Server
                }
                // The handshake failed, or the server refused the encrypted session.
                SslMode::Prefer => {
                    matches!(
                        negotiation,
                        TlsNegotiation::Handshaking
                            | TlsNegotiation::Established
                            | TlsNegotiation::Failed
                    ) && e.code() != Some("57P03")
                }
                _ => false,
            };
        self.failures.push(e);
        if retry {
            return Next::Address;
        }
        self.next_try = self.tries.len();
        let failures = std::mem::take(&mut self.failures);
        if let (Some(target), Some(peer)) = (self.target(), self.peer.as_ref()) {
            let prefix = describe_peer(target, peer);
            let joined = super::join_attempts(failures, &prefix);
            self.errors.push_str(&prefix);
            self.errors.push_str(joined.libpq_text().trim_end());
            self.errors.push('\n');
            self.last = Some(joined);
        }
        match next {
            Next::Address => {}
            Next::Host => self.next_peer = self.peers.len(),
            Next::Stop => {
                self.next_peer = self.peers.len();
                self.next_host = self.order.len();
                self.second_pass = true;
            }
        }
        next
    }

    /// libpq's `PQerrorMessage` after every host failed, without the final newline; the server's
    /// SQLSTATE (28P01, 3D000, ...) for a single target, else 08001.
    fn final_error(&mut self) -> Error {
        let text = self.errors.trim_end().to_owned();
        match self.last.take() {
            Some(e) if e.code().is_some() && self.params.targets.len() == 1 => {
                let code = e.code().unwrap_or(SQLCLIENT_UNABLE).to_owned();
                Error::new(ErrorKind::Connect, text).with_code(&code)
            }
            _ => Error::new(ErrorKind::Connect, text).with_code(SQLCLIENT_UNABLE),
        }
    }
}

/// Shuffles `items` (Fisher-Yates) with the operating system's randomness, as libpq's
/// `load_balance_hosts=random` does with its strong random source. Without randomness the order
/// stays.
fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let mut raw = [0u8; 4];
        if getrandom::fill(&mut raw).is_err() {
            return;
        }
        let j = (u32::from_ne_bytes(raw) as usize) % (i + 1);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_keeps_every_item() {
        let mut v: Vec<u32> = (0..50).collect();
        shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn shuffle_moves_items() {
        // 20 shuffles of 10 items all in order: about 1 in 10^130.
        let moved = (0..20).any(|_| {
            let mut v: Vec<u32> = (0..10).collect();
            shuffle(&mut v);
            v != (0..10).collect::<Vec<_>>()
        });
        assert!(moved);
    }

    #[test]
    fn probe_texts_are_libpqs() {
        assert_eq!(Probe::ReadOnly.sql(), "SHOW transaction_read_only");
        assert_eq!(
            Probe::Recovery.sql(),
            "SELECT pg_catalog.pg_is_in_recovery()"
        );
        assert_eq!(
            Probe::Recovery.failed(),
            "\"SELECT pg_is_in_recovery()\" failed"
        );
    }
}

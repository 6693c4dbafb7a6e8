//! A scripted fake PostgreSQL server, for the conversations a real server cannot be made to have:
//! closing at a chosen byte, malformed messages, hostile SCRAM parameters, silence, trickling, resets.
//!
//! [`FakeServer::start`] binds `127.0.0.1:0` and serves each accepted connection with the next script
//! in its own thread. Every wait is bounded ([`IO_TIMEOUT`], [`ACCEPT_TIMEOUT`], the durations in the
//! steps), so a server thread always ends on its own, and [`FakeServer::finish`] never blocks forever.
//!
//! A script checks what the client sends: the `Expect*` steps read one packet and fail the script
//! unless it is the packet named. Every test must look at the outcome: [`FakeServer::finish`] panics
//! unless every script ran to its end with the client sending what it expected, and a `FakeServer`
//! dropped without [`finish`](FakeServer::finish) or [`join`](FakeServer::join) panics too.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::wire;

/// How long a read from the client may take before the script gives up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a [`Step::SendRepeated`] write may stay blocked on a client that stopped reading.
pub const STREAM_STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server waits for the next connection before it gives up.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One step of a script.
#[derive(Clone, Debug)]
pub enum Step {
    /// Read one untagged startup-phase packet of any kind (prefer the `Expect*` steps, which check it).
    ReadStartup,
    /// Read one tagged frontend message of any type (prefer [`Step::Expect`], which checks the type).
    ReadMessage,
    /// Read a StartupMessage (protocol 3.0 or 3.2, NUL-terminated name/value pairs); fail otherwise.
    ExpectStartup,
    /// Read an SSLRequest; fail otherwise.
    ExpectSslRequest,
    /// Read a CancelRequest (a process id and a 4- to 256-byte key); fail otherwise.
    ExpectCancel,
    /// Read one tagged frontend message; fail unless its type byte is this one (`b'Q'`, `b'X'`, ...).
    Expect(u8),
    /// Wait until the client has sent bytes this script has not read yet, without reading them: the
    /// client's next message is on its way (or here).
    AwaitClient,
    /// Send these bytes in one write.
    Send(Vec<u8>),
    /// Send these bytes one at a time, pausing between them.
    Trickle(Vec<u8>, Duration),
    /// Do nothing for a while: pacing, never a way to wait for the client (see [`Step::AwaitClient`]).
    Sleep(Duration),
    /// Stay silent, with the socket open, for this long (reading and discarding what arrives), then
    /// close: a server that never answers.
    Hang(Duration),
    /// Close the connection in an orderly way (FIN), then read and discard what the client still
    /// sends until it closes its end too (bounded by [`IO_TIMEOUT`]).
    Close,
    /// Read the client's SASLInitialResponse and answer with AuthenticationSASLContinue carrying the
    /// server-first message this function builds from the client's nonce.
    ScramFirst(fn(&str) -> String),
    /// Wait until the client has sent bytes this script has not read (as [`Step::AwaitClient`]),
    /// then close without reading them, which makes the kernel answer with a reset (RST) instead of
    /// a FIN.
    Reset,
    /// Send these bytes this many times, as fast as the client takes them: a large stream without
    /// holding all of it in memory.
    SendRepeated(Vec<u8>, usize),
    /// Set the socket's send buffer (`SO_SNDBUF`) to at least this many bytes, so that a following
    /// `Send` of up to that size returns at once and its bytes reach the client as fast as the client
    /// reads: a burst the client reads in one go, whatever the client's receive window.
    SendBuffer(usize),
}

/// What one scripted connection received: the raw packets read by `ReadStartup`/`ReadMessage`.
pub type Received = Vec<Vec<u8>>;

/// A running fake server. See the [module documentation](self).
#[must_use = "the scripts' outcome must be checked with `finish()`"]
pub struct FakeServer {
    addr: SocketAddr,
    /// `None` once the outcome was taken.
    handle: Option<JoinHandle<Vec<Result<Received, String>>>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if self.handle.is_some() && !thread::panicking() {
            panic!(
                "FakeServer dropped without finish(): whether the client sent what the scripts \
                 expected was never checked"
            );
        }
    }
}

impl FakeServer {
    /// Serves one connection per script, in order, each in its own thread.
    pub fn start(scripts: Vec<Vec<Step>>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let handle = thread::spawn(move || {
            let mut workers = Vec::new();
            for script in scripts {
                let deadline = Instant::now() + ACCEPT_TIMEOUT;
                let stream = loop {
                    match listener.accept() {
                        Ok((s, _)) => break Some(s),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            if Instant::now() >= deadline {
                                break None;
                            }
                            // A non-blocking listener has no accept with a deadline: look
                            // again shortly (the client connects right after the script starts).
                            thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break None,
                    }
                };
                let Some(stream) = stream else {
                    workers.push(None);
                    break;
                };
                let (tx, rx) = mpsc::channel();
                thread::spawn(move || {
                    let _ = tx.send(run_script(stream, &script));
                });
                workers.push(Some(rx));
            }
            workers
                .into_iter()
                .map(|w| match w {
                    None => Err("no connection arrived".to_owned()),
                    Some(rx) => rx
                        .recv_timeout(ACCEPT_TIMEOUT + IO_TIMEOUT)
                        .unwrap_or_else(|_| Err("script did not finish".to_owned())),
                })
                .collect()
        });
        FakeServer {
            addr,
            handle: Some(handle),
        }
    }

    /// Serves one connection with one script.
    pub fn single(script: Vec<Step>) -> FakeServer {
        FakeServer::start(vec![script])
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A connection string for this server: user `alice`, database `db1`, no SSL, a 2-second
    /// connect timeout, plus `extra` (`"password=pencil"`, `"sslmode=prefer"`, ...).
    pub fn conninfo(&self, extra: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=alice dbname=db1 sslmode=disable connect_timeout=2 {extra}",
            self.port()
        )
    }

    /// Waits for every script to end; returns, per connection, the packets it read or why it
    /// failed (for a test that expects a script to fail; otherwise use [`finish`](Self::finish)).
    /// Bounded: each script ends on its own.
    #[must_use = "a script's failure means the client did not send what it expected"]
    pub fn join(mut self) -> Vec<Result<Received, String>> {
        let handle = self.handle.take().expect("outcome taken once");
        handle.join().expect("fake server thread")
    }

    /// Waits for every script to end and asserts that each ran to its end: a connection arrived for
    /// it and the client sent what its `Expect*` steps expected. Returns, per connection, the packets
    /// read. Bounded: each script ends on its own.
    pub fn finish(self) -> Vec<Received> {
        self.join()
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|e| panic!("fake server script {i}: {e}")))
            .collect()
    }
}

/// Reads one untagged startup-phase packet, length word included.
fn read_startup(s: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    read_exact_timeout(s, &mut len)?;
    let n = u32::from_be_bytes(len) as usize;
    if !(8..=10_000).contains(&n) {
        return Err(format!("startup packet length {n}"));
    }
    let mut body = vec![0; n - 4];
    read_exact_timeout(s, &mut body)?;
    Ok([&len[..], &body].concat())
}

/// Reads one tagged message, type byte and length word included.
fn read_message(s: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut head = [0u8; 5];
    read_exact_timeout(s, &mut head)?;
    let n = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !(4..=1_000_000).contains(&n) {
        return Err(format!("message length {n}"));
    }
    let mut body = vec![0; n - 4];
    read_exact_timeout(s, &mut body)?;
    Ok([&head[..], &body].concat())
}

/// The request code of a startup-phase packet.
fn startup_code(packet: &[u8]) -> u32 {
    u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]])
}

/// Checks a StartupMessage: protocol 3.0 or 3.2, name/value pairs, a final NUL.
fn check_startup_message(packet: &[u8]) -> Result<(), String> {
    let code = startup_code(packet);
    if code != 0x0003_0000 && code != 0x0003_0002 {
        return Err(format!(
            "expected a StartupMessage, got request code {code}"
        ));
    }
    let pairs = &packet[8..];
    if pairs.last() != Some(&0) || pairs.iter().filter(|&&b| b == 0).count() % 2 != 1 {
        return Err(format!("malformed StartupMessage {pairs:?}"));
    }
    Ok(())
}

/// Waits (up to [`IO_TIMEOUT`]) until the client has sent bytes not read yet, without reading them.
fn await_client(s: &mut TcpStream) -> Result<(), String> {
    let mut one = [0u8; 1];
    match s.peek(&mut one) {
        Ok(0) => Err("the client closed instead of sending".to_owned()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("waiting for the client: {e}")),
    }
}

fn read_exact_timeout(s: &mut TcpStream, buf: &mut [u8]) -> Result<(), String> {
    s.read_exact(buf).map_err(|e| format!("read: {e}"))
}

fn run_script(mut s: TcpStream, script: &[Step]) -> Result<Received, String> {
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut received = Vec::new();
    for step in script {
        match step {
            Step::ReadStartup => received.push(read_startup(&mut s)?),
            Step::ReadMessage => received.push(read_message(&mut s)?),
            Step::ExpectStartup => {
                let packet = read_startup(&mut s)?;
                check_startup_message(&packet)?;
                received.push(packet);
            }
            Step::ExpectSslRequest => {
                let packet = read_startup(&mut s)?;
                if packet != [0, 0, 0, 8, 4, 210, 22, 47] {
                    return Err(format!("expected an SSLRequest, got {packet:?}"));
                }
                received.push(packet);
            }
            Step::ExpectCancel => {
                let packet = read_startup(&mut s)?;
                if startup_code(&packet) != 80_877_102 || !(16..=12 + 256).contains(&packet.len()) {
                    return Err(format!("expected a CancelRequest, got {packet:?}"));
                }
                received.push(packet);
            }
            Step::Expect(tag) => {
                let message = read_message(&mut s)?;
                if message[0] != *tag {
                    return Err(format!(
                        "expected message type '{}', got '{}' ({message:?})",
                        char::from(*tag),
                        char::from(message[0])
                    ));
                }
                received.push(message);
            }
            Step::AwaitClient => await_client(&mut s)?,
            Step::Send(bytes) => {
                // The client may already have gone; that is its right.
                let _ = s.write_all(bytes);
            }
            Step::Trickle(bytes, pause) => {
                for b in bytes {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    thread::sleep(*pause);
                }
            }
            Step::ScramFirst(build) => {
                let mut head = [0u8; 5];
                read_exact_timeout(&mut s, &mut head)?;
                let n = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                if head[0] != b'p' || !(4..=10_000).contains(&n) {
                    return Err(format!("expected SASLInitialResponse, got {head:?}"));
                }
                let mut body = vec![0; n - 4];
                read_exact_timeout(&mut s, &mut body)?;
                let text = String::from_utf8_lossy(&body).into_owned();
                let nonce = text
                    .split_once("r=")
                    .map(|(_, r)| r.to_owned())
                    .ok_or("no client nonce")?;
                let mut out = Vec::new();
                wire::authentication(&mut out, 11, build(&nonce).as_bytes());
                let _ = s.write_all(&out);
                received.push([&head[..], &body].concat());
            }
            Step::SendRepeated(bytes, times) => {
                // A stream lasts as long as the client takes to read it: no read timeout applies to
                // writes, but a client that stopped reading for good gets the write timeout.
                s.set_write_timeout(Some(STREAM_STALL_TIMEOUT))
                    .map_err(|e| e.to_string())?;
                for _ in 0..*times {
                    if s.write_all(bytes).is_err() {
                        break;
                    }
                }
            }
            Step::SendBuffer(size) => {
                socket2::SockRef::from(&s)
                    .set_send_buffer_size(*size)
                    .map_err(|e| format!("SO_SNDBUF: {e}"))?;
            }
            Step::Sleep(d) => thread::sleep(*d),
            Step::Hang(d) => {
                let deadline = Instant::now() + *d;
                let mut buf = [0u8; 256];
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let _ = s.set_read_timeout(Some(left));
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => break,
                    }
                }
                return Ok(received);
            }
            Step::Close => {
                let _ = s.shutdown(Shutdown::Write);
                // Keep reading until the client closes too: closing with its bytes unread would make
                // the kernel answer with a reset, which may discard the FIN before the client sees it.
                let deadline = Instant::now() + IO_TIMEOUT;
                let mut buf = [0u8; 256];
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                return Ok(received);
            }
            Step::Reset => {
                await_client(&mut s)?;
                return Ok(received);
            }
        }
    }
    Ok(received)
}

/// A trust startup as PostgreSQL sends it: AuthenticationOk, two ParameterStatus, BackendKeyData,
/// ReadyForQuery(idle).
pub fn trust_startup() -> Vec<u8> {
    let mut out = Vec::new();
    wire::authentication(&mut out, 0, &[]);
    wire::parameter_status(&mut out, "server_version", "17.0");
    wire::parameter_status(&mut out, "client_encoding", "UTF8");
    wire::backend_key_data(&mut out, 4242, &[1, 2, 3, 4]);
    wire::ready_for_query(&mut out, b'I');
    out
}

/// The result of `SELECT 1`: RowDescription, DataRow, CommandComplete, ReadyForQuery(idle).
pub fn select_1_result() -> Vec<u8> {
    let mut out = Vec::new();
    wire::row_description(&mut out, &[("?column?", 23)]);
    wire::data_row(&mut out, &[Some(b"1")]);
    wire::command_complete(&mut out, "SELECT 1");
    wire::ready_for_query(&mut out, b'I');
    out
}

/// The script of a session that starts (trust), reads one query and answers it with `answer`, then
/// runs `then`.
pub fn query_script(answer: Vec<u8>, then: Step) -> Vec<Step> {
    vec![
        Step::ExpectStartup,
        Step::Send(trust_startup()),
        Step::Expect(b'Q'),
        Step::Send(answer),
        then,
    ]
}

/// `count` DataRows of one text column, each value `width` bytes of `x`.
pub fn data_rows(count: usize, width: usize) -> Vec<u8> {
    let value = vec![b'x'; width];
    let mut out = Vec::with_capacity(count * (width + 11));
    for _ in 0..count {
        wire::data_row(&mut out, &[Some(&value)]);
    }
    out
}

/// RowDescription of one text column named `v`.
pub fn text_column() -> Vec<u8> {
    let mut out = Vec::new();
    wire::row_description(&mut out, &[("v", 25)]);
    out
}

/// CommandComplete `SELECT rows` and ReadyForQuery(idle).
pub fn select_end(rows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    wire::command_complete(&mut out, &format!("SELECT {rows}"));
    wire::ready_for_query(&mut out, b'I');
    out
}

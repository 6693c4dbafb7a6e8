//! The checking loops behind the fuzz targets (`fuzz/fuzz_targets/*.rs`), kept in the library so that
//! the corpus-replay test (`protocol-tests/tests/fuzz_corpus.rs`) runs exactly the same checks on the
//! stable toolchain. Every function panics when a property is violated; that panic is the finding.
//!
//! Not part of the API: hidden from the documentation and free to change.

use crate::auth::{ScramBinding, ScramClient, ScramLimits};
use crate::conn::{
    Budgets, Connection, MAX_QUEUED_NOTICES, PollResult, QueryResult, StartupConfig, State,
};
use crate::conninfo::{ChannelBindingMode, Config, ProtocolVersion, SslMode, SslNegotiation};
use crate::protocol::{Limits, frontend};

/// The SCRAM client nonce the fuzz targets (and the `startup_scram` transcript) use.
pub const NONCE: &str = "xV3yFJ/WUxMSClp1AbComiHv";
/// The password the fuzz targets use (the transcripts' SCRAM, MD5 and cleartext password).
pub const PASSWORD: &str = "pencil";
/// The `tls-server-end-point` channel-binding data the fuzz targets' TLS "handshakes" give the session
/// (and the `scram_plus` transcript uses): the bytes 0 to 31.
pub const END_POINT: [u8; 32] = {
    let mut data = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        data[i] = i as u8;
        i += 1;
    }
    data
};
/// The largest SCRAM iteration count the fuzz targets obey (PostgreSQL's default), so that one run
/// costs at most one PBKDF2 of 4096 rounds.
pub const MAX_ITERATIONS: u32 = 4096;

// ---------------------------------------------------------------------------------------------
// Frontend stream validation
// ---------------------------------------------------------------------------------------------

/// One frontend message found by [`check_frontend_stream`]: its type byte (0 for the untagged
/// startup-phase packets) and body (after the length word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The type byte, or 0 for SSLRequest / StartupMessage / CancelRequest.
    pub tag: u8,
    /// The message body.
    pub body: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("{n} bytes run past the end at offset {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().unwrap_or([0; 2]),
        ))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or([0; 4]),
        ))
    }
    fn cstr(&mut self) -> Result<&'a [u8], String> {
        let rest = &self.buf[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("string without NUL at offset {}", self.pos))?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }
    fn end(&self) -> Result<(), String> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(format!(
                "{} trailing bytes in message",
                self.buf.len() - self.pos
            ))
        }
    }
}

/// Whether a client-final message starts with `c=<base64>,r=`, the base64 of `n,,`, `y,,`, or
/// `p=tls-server-end-point,,` followed by binding data.
fn valid_cbind(body: &[u8]) -> bool {
    use base64::Engine;
    let Some(rest) = body.strip_prefix(b"c=") else {
        return false;
    };
    let Some(end) = rest.windows(3).position(|w| w == b",r=") else {
        return false;
    };
    match base64::engine::general_purpose::STANDARD.decode(&rest[..end]) {
        Ok(input) => {
            input == b"n,," || input == b"y,," || input.starts_with(b"p=tls-server-end-point,,")
        }
        Err(_) => false,
    }
}

/// Checks the body of one tagged frontend message for its type. `sasl` says a SASLInitialResponse was
/// seen, so a `p` is a SASLResponse.
fn check_tagged_body(tag: u8, body: &[u8], sasl: &mut bool) -> Result<(), String> {
    let mut r = Reader::new(body);
    match tag {
        b'p' if *sasl => {
            // SASLResponse: SCRAM's client-final message, `c=` the base64 of a gs2 header (and, for
            // PLUS, the binding data).
            if !valid_cbind(body) || body.contains(&0) {
                return Err(format!(
                    "bad SASLResponse {:?}",
                    String::from_utf8_lossy(body)
                ));
            }
            return Ok(());
        }
        b'p' => {
            // Either a SASLInitialResponse (mechanism, Int32 length, data) or a PasswordMessage.
            let first = r.cstr()?;
            if r.pos < body.len() {
                if !first.starts_with(b"SCRAM-SHA-256") {
                    return Err("unknown SASL mechanism".into());
                }
                let n = r.i32()?;
                if n >= 0 {
                    r.take(n as usize)?;
                } else if n != -1 {
                    return Err(format!("SASLInitialResponse length {n}"));
                }
                *sasl = true;
            }
        }
        b'Q' | b'f' => {
            let text = r.cstr()?;
            std::str::from_utf8(text).map_err(|_| "query text is not UTF-8".to_string())?;
        }
        b'X' | b'c' | b'S' | b'H' => {}
        b'd' => return Ok(()),
        b'P' => {
            r.cstr()?;
            r.cstr()?;
            let n = r.i16()?;
            if n < 0 {
                return Err("negative parameter type count".into());
            }
            r.take(4 * n as usize)?;
        }
        b'B' => {
            r.cstr()?;
            r.cstr()?;
            let nf = r.i16()?;
            if nf < 0 {
                return Err("negative format count".into());
            }
            r.take(2 * nf as usize)?;
            let np = r.i16()?;
            if np < 0 {
                return Err("negative parameter count".into());
            }
            for _ in 0..np {
                let len = r.i32()?;
                if len >= 0 {
                    r.take(len as usize)?;
                } else if len != -1 {
                    return Err(format!("parameter length {len}"));
                }
            }
            let nr = r.i16()?;
            if nr < 0 {
                return Err("negative result format count".into());
            }
            r.take(2 * nr as usize)?;
        }
        b'D' | b'C' => {
            let kind = r.take(1)?[0];
            if kind != b'S' && kind != b'P' {
                return Err(format!("bad Describe/Close kind {kind}"));
            }
            r.cstr()?;
        }
        b'E' => {
            r.cstr()?;
            if r.i32()? < 0 {
                return Err("negative row limit".into());
            }
        }
        other => return Err(format!("unknown frontend message type 0x{other:02x}")),
    }
    r.end()
}

/// Splits a client-to-server byte stream into messages and checks each: an optional SSLRequest, a
/// StartupMessage (protocol 3.0 or 3.2, NUL-terminated name/value pairs) or CancelRequest, then
/// tagged messages whose length words fit and whose bodies have the layout of their type; nothing
/// after Terminate; the stream ends on a message boundary. An empty stream is well formed.
pub fn check_frontend_stream(bytes: &[u8]) -> Result<Vec<Frame<'_>>, String> {
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut started = false;
    let mut ssl_seen = false;
    let mut sasl = false;
    let mut terminated = false;
    while pos < bytes.len() {
        if terminated {
            return Err(format!("bytes after Terminate at offset {pos}"));
        }
        if !started {
            let mut r = Reader::new(&bytes[pos..]);
            let len = r.i32()?;
            if len < 8 {
                return Err(format!("startup packet length {len}"));
            }
            let body = Reader::new(&bytes[pos + 4..]).take(len as usize - 4)?;
            let mut b = Reader::new(body);
            let code = b.i32()? as u32;
            match code {
                frontend::SSL_REQUEST_CODE if !ssl_seen && len == 8 => ssl_seen = true,
                frontend::CANCEL_REQUEST_CODE if !ssl_seen => {
                    if !(12 + 4..=12 + 256).contains(&len) {
                        return Err(format!("CancelRequest length {len}"));
                    }
                    terminated = true;
                }
                frontend::PROTOCOL_3_0 | frontend::PROTOCOL_3_2 => {
                    loop {
                        let name = b.cstr()?;
                        if name.is_empty() {
                            break;
                        }
                        b.cstr()?;
                    }
                    b.end()?;
                    started = true;
                }
                other => return Err(format!("bad startup code {other}")),
            }
            frames.push(Frame { tag: 0, body });
            pos += len as usize;
            continue;
        }
        let tag = bytes[pos];
        let mut r = Reader::new(&bytes[pos + 1..]);
        let len = r.i32()?;
        if len < 4 {
            return Err(format!("message length {len} below 4"));
        }
        let body = r.take(len as usize - 4)?;
        check_tagged_body(tag, body, &mut sasl)
            .map_err(|e| format!("message '{}' at offset {pos}: {e}", tag as char))?;
        if tag == b'X' {
            terminated = true;
        }
        frames.push(Frame { tag, body });
        pos += 1 + len as usize;
    }
    Ok(frames)
}

// ---------------------------------------------------------------------------------------------
// conn_state
// ---------------------------------------------------------------------------------------------

/// Bit of the `conn_state` input's byte 1: the client uses the extended protocol, pipeline mode and
/// COPY instead of simple queries. The first byte of every segment is then not the server's: it
/// selects the client's move at the end of the segment (its value modulo 7: a parameterized query,
/// a prepare, a prepared query, a pipeline, a COPY FROM STDIN, a COPY TO STDOUT, nothing); a COPY
/// FROM STDIN in progress is fed and ended first, and pipeline mode left when it can be.
pub const EXTENDED: u8 = 0x10;

/// Bit of the `conn_state` input's byte 1: the client's queries use chunked results
/// (`send_query_chunked` with [`CHUNK_ROWS`] rows a result) instead of whole ones.
pub const CHUNKED_RESULTS: u8 = 0x80;
/// The row count of a chunk when [`CHUNKED_RESULTS`] is set.
pub const CHUNK_ROWS: usize = 2;
/// Bit of the `conn_state` input's byte 1: when the session wants the TLS handshake (checked at the
/// start and after every segment), the harness reports it established with [`END_POINT`]; without
/// the bit it reports it failed.
pub const TLS_ESTABLISHED: u8 = 0x40;
/// Bit of the `conn_state` input's byte 1: `sslnegotiation=direct` (with the SSL option bits set,
/// the session wants the handshake from the start).
pub const DIRECT_TLS: u8 = 0x20;
/// Bit of the `conn_state` input's byte 1: the connection runs with [`fuzz_budgets`] (every
/// budget a few hundred bytes), so that floods reach them. In the chunked run results are then
/// taken only at the end of each segment, as in the whole run (where a budget stops processing,
/// batches depend on when results are taken).
pub const SMALL_BUDGETS: u8 = 0x08;

/// The budgets of a `conn_state` run with [`SMALL_BUDGETS`].
pub fn fuzz_budgets() -> Budgets {
    let mut budgets = Budgets::uniform(512);
    budgets.max_result_bytes = 2048;
    budgets
}

/// The bits of byte 2 that hold the length of the control block.
const CONTROL_LEN: u8 = 0x7f;

/// How the `conn_state` input is laid out: byte 0 selects the startup options, byte 1 holds the
/// [`CHUNKED_RESULTS`], [`TLS_ESTABLISHED`], [`DIRECT_TLS`] and [`EXTENDED`] bits, byte 2 (its low 7
/// bits) the length of a control block taken from the end of the input, and everything in between is
/// what the server sends. Each control byte is one chunk of
/// `(c & 0x7f) + 1` server bytes; `c & 0x80` ends a segment after the chunk. Between segments the
/// client acts (drain, consume output, send a query); inside a segment only chunking differs. Server
/// bytes left over when the control block runs out form one last chunk and segment.
pub struct ConnInput<'a> {
    /// The startup option bits (see [`conn_config`]).
    pub options: u8,
    /// The client's queries ask for chunked results.
    pub chunked: bool,
    /// The TLS handshake succeeds when the session wants it (else it fails).
    pub tls_established: bool,
    /// `sslnegotiation=direct`.
    pub direct: bool,
    /// The client uses the extended protocol, pipelines and COPY.
    pub extended: bool,
    /// The connection runs with [`fuzz_budgets`].
    pub small_budgets: bool,
    /// The server's bytes.
    pub server: &'a [u8],
    /// The chunking control bytes.
    pub control: &'a [u8],
}

impl<'a> ConnInput<'a> {
    /// Splits a fuzz input.
    pub fn parse(data: &'a [u8]) -> ConnInput<'a> {
        let options = data.first().copied().unwrap_or(0);
        let flags = data.get(1).copied().unwrap_or(0);
        let control_len = data.get(2).copied().unwrap_or(0);
        let rest = data.get(3..).unwrap_or_default();
        let n = usize::from(control_len & CONTROL_LEN).min(rest.len());
        let (server, control) = rest.split_at(rest.len() - n);
        ConnInput {
            options,
            chunked: flags & CHUNKED_RESULTS != 0,
            tls_established: flags & TLS_ESTABLISHED != 0,
            direct: flags & DIRECT_TLS != 0,
            extended: flags & EXTENDED != 0,
            small_budgets: flags & SMALL_BUDGETS != 0,
            server,
            control,
        }
    }

    /// Builds a fuzz input from segments of server bytes (each fed in chunks of up to 128 bytes, at
    /// most 31 chunks in all), so that the client acts after each segment: the form the seed corpus
    /// uses.
    pub fn encode(options: u8, chunked: bool, segments: &[Vec<u8>]) -> Vec<u8> {
        let flags = if chunked { CHUNKED_RESULTS } else { 0 };
        ConnInput::encode_flags(options, flags, segments)
    }

    /// Like [`encode`](Self::encode), with the [`EXTENDED`] bit when `extended`.
    pub fn encode_with(
        options: u8,
        chunked: bool,
        extended: bool,
        segments: &[Vec<u8>],
    ) -> Vec<u8> {
        let flags = if chunked { CHUNKED_RESULTS } else { 0 } | if extended { EXTENDED } else { 0 };
        ConnInput::encode_flags(options, flags, segments)
    }

    /// As [`encode`](Self::encode), with the flag bits of byte 1 ([`CHUNKED_RESULTS`],
    /// [`TLS_ESTABLISHED`], [`DIRECT_TLS`], [`EXTENDED`]) given.
    pub fn encode_flags(options: u8, flags: u8, segments: &[Vec<u8>]) -> Vec<u8> {
        let mut server = Vec::new();
        let mut control = Vec::new();
        for seg in segments {
            server.extend_from_slice(seg);
            let mut left = seg.len();
            if left == 0 {
                continue;
            }
            while left > 0 {
                let n = left.min(128);
                left -= n;
                control.push((n - 1) as u8 | if left == 0 { 0x80 } else { 0 });
            }
        }
        control.truncate(usize::from(CONTROL_LEN));
        let mut out = vec![options, flags, control.len() as u8];
        out.extend_from_slice(&server);
        out.extend_from_slice(&control);
        out
    }

    /// The segments, each a list of chunks.
    fn segments(&self) -> Vec<Vec<&'a [u8]>> {
        let mut segments = Vec::new();
        let mut current = Vec::new();
        let mut pos = 0;
        for &c in self.control {
            if pos >= self.server.len() {
                break;
            }
            let n = ((c & 0x7f) as usize + 1).min(self.server.len() - pos);
            current.push(&self.server[pos..pos + n]);
            pos += n;
            if c & 0x80 != 0 {
                segments.push(std::mem::take(&mut current));
            }
        }
        if pos < self.server.len() {
            current.push(&self.server[pos..]);
        }
        if !current.is_empty() {
            segments.push(current);
        }
        segments
    }
}

/// Option bits of the `conn_state` input: 0x01 a password, 0x02 protocol 3.2, 0x04 TLS negotiated
/// (SSLRequest first, over a transport that can run TLS), 0x08 SSL required, 0x10 at least protocol
/// 3.2 after negotiation, 0x20 channel binding required, 0x40 small decoder limits (1 KiB data
/// messages, 256-byte others), 0x80 the server closes at the end.
pub fn conn_config(options: u8) -> StartupConfig {
    conn_config_with(options, false)
}

/// [`conn_config`], with `sslnegotiation=direct` when `direct`.
pub fn conn_config_with(options: u8, direct: bool) -> StartupConfig {
    let mut config = StartupConfig::builder("alice", "db1", NONCE).scram_limits(ScramLimits {
        max_iterations: MAX_ITERATIONS,
    });
    if options & 0x01 != 0 {
        config = config.password(PASSWORD);
    }
    if options & 0x02 != 0 {
        config = config.max_protocol_version(ProtocolVersion::V3_2);
    }
    // SSLRequest first: for sslmode=require (SSL required) or, with TLS available, prefer. SSL
    // required without the request: a Unix socket, where sslmode does not apply.
    config = match (options & 0x04 != 0, options & 0x08 != 0) {
        (true, true) => config.sslmode(SslMode::Require).tls_available(true),
        (true, false) => config.sslmode(SslMode::Prefer).tls_available(true),
        (false, true) => config.sslmode(SslMode::Require).over_tcp(false),
        (false, false) => config.sslmode(SslMode::Disable),
    };
    if options & 0x10 != 0 {
        config = config.min_protocol_version(ProtocolVersion::V3_2);
    }
    if options & 0x20 != 0 {
        config = config.channel_binding(ChannelBindingMode::Require);
    }
    if direct {
        config = config.sslnegotiation(SslNegotiation::Direct);
    }
    if options & 0x40 != 0 {
        config = config.limits(Limits {
            max_data_message: 1024,
            max_small_message: 256,
        });
    }
    config.build()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each segment in one `handle_input`.
    Whole,
    /// Each segment in its chunks, results and notifications drained after every chunk.
    Chunked,
    /// As `Chunked`, and after every chunk part of the output is consumed and, when idle, a query
    /// is sent: the most interleaving, checked for the invariants only.
    Aggressive,
}

struct Run {
    conn: Connection,
    /// Queries ask for chunked results.
    chunked: bool,
    /// The TLS handshake succeeds when wanted.
    tls_established: bool,
    /// The client uses the extended protocol, pipelines and COPY.
    extended: bool,
    limits: Limits,
    /// What [`Connection::held_bytes`] must stay under: the budgets' total plus a few messages
    /// (no message is longer than the server's whole input).
    held_cap: usize,
    /// Every byte the client has "sent" (consumed output).
    sent: Vec<u8>,
    summary: String,
    /// Results (and the end marker, once per query) taken in the current segment.
    results: String,
    /// Notifications taken in the current segment.
    notifications: String,
    /// The end marker of the current query cycle was seen.
    done: bool,
    closed: Option<String>,
    queries: usize,
    /// With [`EXTENDED`]: the move selected for the end of the current segment.
    selector: Option<u8>,
}

fn describe_result(r: &Result<QueryResult, crate::Error>) -> String {
    match r {
        Ok(QueryResult::Rows(rows)) => {
            let mut s = format!(
                "{} {:?} cols",
                if rows.is_partial() { "partial" } else { "rows" },
                rows.command_tag()
            );
            if rows.is_partial() {
                assert!(rows.command_tag().is_empty(), "a partial result has a tag");
            }
            for c in rows.columns() {
                s.push_str(&format!(" {:?}:{}", c.name(), c.type_oid()));
            }
            for row in 0..rows.len() {
                s.push_str(" |");
                for col in 0..rows.columns().len() {
                    let v = rows.get_bytes(row, col);
                    assert_eq!(v.is_none(), rows.is_null(row, col));
                    s.push_str(&format!(" {v:?}"));
                }
                assert!(rows.get_bytes(row, rows.columns().len()).is_none());
            }
            assert!(rows.get_bytes(rows.len(), 0).is_none());
            // The sequential iterator sees exactly what random access sees.
            let ncols = rows.columns().len();
            let mut iter = rows.iter();
            assert_eq!(iter.len(), rows.len());
            for index in 0..rows.len() {
                let row = iter.next().expect("the iterator yields every row");
                assert_eq!(row.len(), ncols);
                for col in 0..ncols {
                    assert_eq!(row.get_bytes(col), rows.get_bytes(index, col));
                    assert_eq!(row.get(col), rows.get(index, col));
                    assert_eq!(row.is_null(col), rows.is_null(index, col));
                }
                assert!(row.get_bytes(ncols).is_none());
            }
            assert!(iter.next().is_none());
            s
        }
        Ok(QueryResult::Command(tag)) => format!("command {tag:?}"),
        Ok(QueryResult::EmptyQuery) => "empty".to_owned(),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("error {:?} {:?} {:?}", e.code(), e.severity(), e.message()),
    }
}

impl Run {
    fn new(input: &ConnInput<'_>) -> Run {
        let mut config = conn_config_with(input.options, input.direct);
        if input.small_budgets {
            config = config.with_budgets(fuzz_budgets());
        }
        let limits = config.limits();
        let budgets = config.budgets();
        let message = (limits.max_data_message.max(limits.max_small_message) as usize + 5)
            .min(input.server.len());
        // One message over each queue's budget, columns counted at up to 4 times their bytes.
        let held_cap = budgets
            .total()
            .saturating_add(budgets.max_result_bytes.min(input.server.len()))
            .saturating_add(message.saturating_mul(4))
            .saturating_add(4096);
        let mut run = Run {
            conn: Connection::new(config),
            chunked: input.chunked,
            tls_established: input.tls_established,
            extended: input.extended,
            limits,
            held_cap,
            sent: Vec::new(),
            summary: String::new(),
            results: String::new(),
            notifications: String::new(),
            done: false,
            closed: None,
            queries: 0,
            selector: None,
        };
        run.check();
        run.tls_step();
        run
    }

    /// The driver's part when the session wants TLS: the handshake, established or failed.
    fn tls_step(&mut self) {
        if !self.conn.tls_wanted() {
            return;
        }
        // The driver writes the SSLRequest out before it reads the answer and starts the handshake.
        self.consume(usize::MAX);
        if self.tls_established {
            self.conn.handle_tls_established(Some(END_POINT.to_vec()));
            assert!(self.conn.tls_in_use());
        } else {
            self.conn.handle_tls_failed(crate::Error::new(
                crate::ErrorKind::Connect,
                "SSL error: handshake failed (fuzz)",
            ));
            assert_eq!(self.conn.state(), State::Closed);
        }
        assert!(!self.conn.tls_wanted());
        self.check();
    }

    /// The invariants that hold after every call.
    fn check(&mut self) {
        let conn = &self.conn;
        assert_eq!(conn.wants_write(), !conn.pending_output().is_empty());
        if let Some(text) = &self.closed {
            assert_eq!(conn.state(), State::Closed, "a closed connection reopened");
            let now = conn.fatal_error().map(|e| e.to_string());
            assert_eq!(now.as_ref(), Some(text), "the fatal error changed");
            assert!(!conn.wants_read());
        } else if conn.state() == State::Closed {
            let e = conn
                .fatal_error()
                .expect("a closed connection has a fatal error");
            self.closed = Some(e.to_string());
        }
        // The receive buffer holds at most one incomplete message, which the decoder has already
        // checked against the limits once its header is in.
        let cap = self
            .limits
            .max_data_message
            .max(self.limits.max_small_message) as usize
            + 1;
        // Unless a budget stops processing (a driver then reads no more; the harness feeds on).
        assert!(
            conn.buffered_input() <= cap || !conn.wants_read(),
            "{} bytes buffered, cap {cap}",
            conn.buffered_input()
        );
        // The budgets: whatever the server sends, the bytes held stay within them plus about one
        // message per queue.
        assert!(
            conn.held_bytes() <= self.held_cap,
            "{} bytes held, cap {}",
            conn.held_bytes(),
            self.held_cap
        );
        if conn.is_busy() {
            assert_eq!(conn.state(), State::Busy);
        }
    }

    fn drain_results(&mut self) {
        loop {
            while let Some(data) = self.conn.take_copy_data() {
                self.results.push_str(&format!("copy data {data:?}\n"));
            }
            let busy = self.conn.is_busy();
            let r = self.conn.poll_result();
            assert_eq!(busy, matches!(r, PollResult::Pending), "is_busy disagrees");
            match r {
                PollResult::Ready(r) => {
                    assert!(!self.done, "a result after the end marker");
                    if let Ok(QueryResult::Rows(rows)) = &r {
                        if self.chunked {
                            assert!(rows.len() <= CHUNK_ROWS, "a chunk of {} rows", rows.len());
                        } else {
                            assert!(!rows.is_partial(), "a partial result without chunking");
                        }
                    }
                    let line = describe_result(&r);
                    self.results.push_str(&line);
                    self.results.push('\n');
                }
                PollResult::Pending => break,
                // Pipeline mode: an end marker between commands, more to come.
                PollResult::Done if self.conn.is_active() => {
                    self.results.push_str("end\n");
                }
                PollResult::Done => {
                    if !self.done {
                        self.results.push_str("done\n");
                        self.done = true;
                    }
                    assert!(matches!(self.conn.poll_result(), PollResult::Done));
                    assert_ne!(self.conn.state(), State::Busy);
                    break;
                }
            }
        }
        for n in self.conn.take_notifications() {
            self.summary.push_str(&format!(
                "notify {} {:?} {:?}\n",
                n.pid, n.channel, n.payload
            ));
        }
        self.check();
    }

    fn drain_notices(&mut self) {
        let notices = self.conn.take_notices();
        assert!(notices.len() <= MAX_QUEUED_NOTICES);
        for n in notices {
            self.summary
                .push_str(&format!("notice {:?}\n", n.message()));
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.conn.pending_output().len());
        let out = self.conn.pending_output()[..n].to_vec();
        self.sent.extend_from_slice(&out);
        self.conn.consume_output(n);
        self.check();
    }

    fn maybe_query(&mut self) {
        if self.extended {
            return self.extended_step();
        }
        let state = self.conn.state();
        let before_buffer = self.conn.error_message().len();
        let sql = ["SELECT 1", "SELECT 1; SELECT 2", "", "COPY t TO STDOUT"][self.queries % 4];
        let sent = if self.chunked {
            self.conn.send_query_chunked(sql, CHUNK_ROWS)
        } else {
            self.conn.send_query(sql)
        };
        match sent {
            Ok(()) => {
                assert_eq!(state, State::Idle);
                assert_eq!(self.conn.state(), State::Busy);
                self.queries += 1;
                self.done = false;
                self.summary.push_str(&format!("query {sql:?}\n"));
            }
            Err(e) => {
                assert_ne!(state, State::Idle);
                assert!(self.conn.error_message().len() > before_buffer);
                self.summary
                    .push_str(&format!("refused {:?}\n", e.message()));
            }
        }
        self.check();
    }

    /// The client's move with [`EXTENDED`]: feeds or ends a COPY FROM STDIN in progress, leaves
    /// pipeline mode when it can, and otherwise sends the next of: a parameterized query, a
    /// prepare, a prepared query, a pipeline (two queries, a sync, a flush request, one more query
    /// and a sync), a COPY FROM STDIN and a COPY TO STDOUT. Every outcome goes into the summary.
    fn extended_step(&mut self) {
        let log = |run: &mut Run, what: &str, r: Result<(), crate::Error>| {
            match r {
                Ok(()) => {
                    run.done = false;
                    run.summary.push_str(&format!("{what}\n"));
                }
                Err(e) => run
                    .summary
                    .push_str(&format!("{what} refused {:?}\n", e.message())),
            }
            run.check();
        };
        if self.conn.copy_state() == Some(crate::conn::CopyDirection::In) {
            let r = self.conn.put_copy_data(b"1\t2\n");
            log(self, "copy data", r);
            let fail = self.queries.is_multiple_of(3).then_some("reader failed");
            let r = self.conn.put_copy_end(fail);
            log(self, "copy end", r);
            return;
        }
        if self.conn.pipeline_status() != crate::conn::PipelineStatus::Off {
            let r = self.conn.exit_pipeline_mode();
            log(self, "exit pipeline", r);
            if self.conn.pipeline_status() != crate::conn::PipelineStatus::Off {
                return;
            }
        }
        let step = match self.selector.take() {
            Some(s) => usize::from(s) % 7,
            None => self.queries % 6,
        };
        self.queries += 1;
        match step {
            0 => {
                let r = self.conn.send_query_params("SELECT $1", &[Some("1"), None]);
                log(self, "query params", r);
            }
            1 => {
                let r = self.conn.send_prepare("s", "SELECT $1");
                log(self, "prepare", r);
            }
            2 => {
                let r = self.conn.send_query_prepared("s", &[Some("x")]);
                log(self, "query prepared", r);
            }
            3 => {
                let r = self.conn.enter_pipeline_mode();
                log(self, "enter pipeline", r);
                let r = self.conn.send_query("SELECT 1");
                log(self, "pipelined query", r);
                let r = if self.chunked {
                    self.conn.send_query_chunked("SELECT 1/0", CHUNK_ROWS)
                } else {
                    self.conn.send_query_params("SELECT 1/0", &[])
                };
                log(self, "pipelined query", r);
                let r = self.conn.pipeline_sync();
                log(self, "sync", r);
                let r = self.conn.send_flush_request();
                log(self, "flush", r);
                let r = self.conn.send_query("SELECT 2");
                log(self, "pipelined query", r);
                let r = self.conn.pipeline_sync();
                log(self, "sync", r);
            }
            4 => {
                let r = self
                    .conn
                    .send_copy("COPY t FROM STDIN", crate::conn::CopyDirection::In);
                log(self, "copy in", r);
            }
            5 => {
                let r = self
                    .conn
                    .send_copy("COPY t TO STDOUT", crate::conn::CopyDirection::Out);
                log(self, "copy out", r);
            }
            _ => {}
        }
    }

    fn end_segment(&mut self) {
        self.tls_step();
        self.drain_results();
        self.summary.push_str(&std::mem::take(&mut self.results));
        self.summary
            .push_str(&std::mem::take(&mut self.notifications));
        self.drain_notices();
        let c = &self.conn;
        self.summary.push_str(&format!(
            "-- {:?} tls={:?} {:?} copy={:?} tx={:?} minor={} key={:?} params={:?} fatal={:?} errmsg={:?} out={}\n",
            c.state(),
            c.tls_negotiation(),
            c.pipeline_status(),
            c.copy_state(),
            c.transaction_status(),
            c.protocol_minor(),
            c.backend_key(),
            (
                c.parameter("server_version"),
                c.parameter("client_encoding")
            ),
            c.fatal_error().map(|e| e.to_string()),
            c.error_message(),
            c.pending_output().len(),
        ));
        self.consume(usize::MAX);
        self.maybe_query();
    }
}

fn run_conn(input: &ConnInput<'_>, mode: Mode) -> (String, Vec<u8>) {
    let mut run = Run::new(input);
    let segments = input.segments();
    let control = input.control;
    let mut k = 0;
    for seg in &segments {
        let stripped;
        let seg = if input.extended {
            let (selector, rest) = split_selector(seg);
            run.selector = selector;
            stripped = rest;
            &stripped
        } else {
            seg
        };
        if mode == Mode::Whole {
            let whole: Vec<u8> = seg.concat();
            run.conn.handle_input(&whole);
            run.check();
        } else {
            for chunk in seg {
                run.conn.handle_input(chunk);
                run.check();
                if !(input.small_budgets && mode == Mode::Chunked) {
                    run.drain_results();
                }
                if mode == Mode::Aggressive {
                    let c = control.get(k).copied().unwrap_or(0xff);
                    run.consume((c & 0x0f) as usize * 7);
                    if c & 0x10 != 0 {
                        run.maybe_query();
                    }
                    run.drain_notices();
                }
                k += 1;
            }
        }
        run.end_segment();
    }
    if input.options & 0x80 != 0 {
        run.conn.handle_eof();
        run.check();
        run.end_segment();
    }
    let was_closed = run.conn.state() == State::Closed;
    run.conn.terminate();
    run.check();
    assert_eq!(run.conn.state(), State::Closed);
    if was_closed {
        assert!(run.conn.pending_output().is_empty() || run.conn.wants_write());
    }
    // Input after the end changes nothing.
    run.conn.handle_input(b"Z\0\0\0\x05I");
    run.check();
    run.consume(usize::MAX);
    (run.summary, run.sent)
}

/// The first byte of a segment (the client's move with [`EXTENDED`]) and the rest of its chunks.
fn split_selector<'a>(seg: &[&'a [u8]]) -> (Option<u8>, Vec<&'a [u8]>) {
    let mut selector = None;
    let mut rest = Vec::with_capacity(seg.len());
    for &chunk in seg {
        match (selector, chunk.split_first()) {
            (None, Some((&first, tail))) => {
                selector = Some(first);
                if !tail.is_empty() {
                    rest.push(tail);
                }
            }
            _ => rest.push(chunk),
        }
    }
    (selector, rest)
}

/// The `conn_state` target: runs the input whole, chunked and with aggressive interleaving; checks
/// the invariants (no panic, a closed connection stays closed with the same fatal error, the receive
/// buffer stays under the decoder's caps, `is_busy` agrees with `poll_result`, the client's output is
/// a well-formed frontend stream) and that whole and chunked runs produce the same summary, which is
/// returned.
pub fn conn_state(data: &[u8]) -> String {
    let input = ConnInput::parse(data);
    let (whole, sent_whole) = run_conn(&input, Mode::Whole);
    let (chunked, sent_chunked) = run_conn(&input, Mode::Chunked);
    assert_eq!(whole, chunked, "chunking changed the outcome");
    assert_eq!(sent_whole, sent_chunked, "chunking changed the output");
    if let Err(e) = check_frontend_stream(&sent_whole) {
        panic!("malformed client output: {e}\n{sent_whole:?}");
    }
    let (_, sent_aggressive) = run_conn(&input, Mode::Aggressive);
    if let Err(e) = check_frontend_stream(&sent_aggressive) {
        panic!("malformed client output (interleaved): {e}\n{sent_aggressive:?}");
    }
    chunked
}

// ---------------------------------------------------------------------------------------------
// scram
// ---------------------------------------------------------------------------------------------

/// The `scram` target: the input is server-first, a newline, then server-final. Runs them through a
/// [`ScramClient`] with [`PASSWORD`] and [`NONCE`] three times, once per channel binding (`n,,`,
/// `y,,`, and SCRAM-SHA-256-PLUS with [`END_POINT`]); checks the client-first and client-final
/// shapes (the `c=` attribute of each binding) and that errors are sticky. Returns whether any
/// exchange completed.
pub fn scram(data: &[u8]) -> bool {
    let (first, last) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut completed = false;
    for binding in [
        ScramBinding::Unsupported,
        ScramBinding::NotOffered,
        ScramBinding::TlsServerEndPoint(END_POINT.to_vec()),
    ] {
        completed |= scram_exchange(first, last, binding);
    }
    completed
}

fn scram_exchange(first: &[u8], last: &[u8], binding: ScramBinding) -> bool {
    let header = binding.gs2_header();
    let cbind = format!("c={},r=", binding.cbind_input());
    let plus = matches!(binding, ScramBinding::TlsServerEndPoint(_));
    let mut client = ScramClient::new(
        PASSWORD.as_bytes(),
        NONCE,
        ScramLimits {
            max_iterations: MAX_ITERATIONS,
        },
    )
    .with_binding(binding);
    assert_eq!(
        client.client_first_message(),
        format!("{header}n=,r={NONCE}").into_bytes()
    );
    match client.handle_server_first(first) {
        Ok(reply) => {
            let text = std::str::from_utf8(&reply).expect("client-final is ASCII");
            let rest = text
                .strip_prefix(cbind.as_str())
                .unwrap_or_else(|| panic!("client-final starts with {cbind}"));
            assert!(rest.starts_with(NONCE), "nonce lost its client prefix");
            let (_, proof) = rest.rsplit_once(",p=").expect("client-final has a proof");
            assert_eq!(proof.len(), 44, "proof is base64 of 32 bytes");
            assert!(!client.is_complete());
            // A second server-first is out of order.
            assert!(client.handle_server_first(first).is_err());
        }
        Err(e) => {
            assert_eq!(e.kind(), crate::ErrorKind::Auth, "{e}");
            // Sticky: the same error again, and server-final refused with it too.
            let again = client.handle_server_first(first).expect_err("sticky");
            assert_eq!(again.message(), e.message());
            let fin = client.handle_server_final(last).expect_err("sticky");
            assert_eq!(fin.message(), e.message());
            assert!(!client.is_complete() && !client.is_channel_bound());
            return false;
        }
    }
    match client.handle_server_final(last) {
        Ok(()) => {
            assert!(client.is_complete());
            assert_eq!(client.is_channel_bound(), plus);
            assert!(client.handle_server_final(last).is_err());
            true
        }
        Err(e) => {
            assert!(!client.is_complete() && !client.is_channel_bound());
            let again = client.handle_server_final(last).expect_err("sticky");
            assert_eq!(again.message(), e.message());
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// conninfo
// ---------------------------------------------------------------------------------------------

/// The `conninfo` target: parses the text as a connection string. If it parses, `Display` must give a
/// string that parses back to the same configuration (with secrets masked as `********`), and neither
/// `Display` nor `Debug` may depend on a secret's value. Returns whether it parsed.
pub fn conninfo(text: &str) -> bool {
    let Ok(config) = Config::parse(text) else {
        return false;
    };
    let shown = config.to_string();
    let reparsed = Config::parse(&shown)
        .unwrap_or_else(|e| panic!("Display output {shown:?} does not parse: {e}"));
    let mut masked = config.clone();
    let mut changed = config.clone();
    let secrets: Vec<String> = config
        .iter()
        .filter(|(k, _)| crate::conninfo::is_secret(k))
        .map(|(k, _)| k.to_owned())
        .collect();
    for k in &secrets {
        masked.set(k, "********").expect("known keyword");
        changed
            .set(k, "another secret value")
            .expect("known keyword");
    }
    assert_eq!(reparsed, masked, "Display of {text:?} is {shown:?}");
    assert_eq!(shown, changed.to_string(), "Display depends on a secret");
    assert_eq!(
        format!("{config:?}"),
        format!("{changed:?}"),
        "Debug depends on a secret"
    );
    for (k, v) in config.iter() {
        assert_eq!(config.get(k), Some(v));
    }
    true
}

// ---------------------------------------------------------------------------------------------
// frontend_roundtrip
// ---------------------------------------------------------------------------------------------

/// The `frontend_roundtrip` target: builds frontend messages from the input, encodes each, and checks
/// that an encoding error leaves the buffer untouched, that the buffer is a well-formed stream, and
/// that every message reads back to what was encoded. Returns the number of messages encoded.
pub fn frontend_roundtrip(data: &[u8]) -> usize {
    let mut buf = Vec::new();
    frontend::startup_message(frontend::PROTOCOL_3_0, [("user", "u")], &mut buf)
        .expect("startup encodes");
    let mut expected: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut sasl = false;
    for part in data.split(|&b| b == 0xff) {
        let Some((&op, arg)) = part.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(arg).into_owned();
        let (a, b) = text.split_at(
            text.char_indices()
                .nth(text.chars().count() / 2)
                .map_or(0, |(i, _)| i),
        );
        let before = buf.clone();
        let (tag, result) = match op % 12 {
            0 => (b'Q', frontend::query(&text, &mut buf)),
            1 => {
                let types: Vec<u32> = arg
                    .chunks(4)
                    .map(|c| c.len() as u32 * 1000 + c[0] as u32)
                    .collect();
                (b'P', frontend::parse(a, b, &types, &mut buf))
            }
            2 => {
                let params: Vec<Option<&[u8]>> = arg
                    .chunks(3)
                    .map(|c| if c[0] % 5 == 0 { None } else { Some(c) })
                    .collect();
                let formats: Vec<i16> = arg.iter().take(3).map(|&x| i16::from(x % 2)).collect();
                (
                    b'B',
                    frontend::bind(a, b, &formats, &params, &formats, &mut buf),
                )
            }
            3 => (
                b'D',
                frontend::describe(arg.first().copied().unwrap_or(b'S'), b, &mut buf),
            ),
            4 => (
                b'C',
                frontend::close(arg.first().copied().unwrap_or(b'P'), b, &mut buf),
            ),
            5 => {
                let rows = arg.iter().fold(0u32, |acc, &x| {
                    acc.wrapping_mul(251).wrapping_add(u32::from(x))
                });
                (b'E', frontend::execute(a, rows, &mut buf))
            }
            6 => {
                frontend::sync(&mut buf);
                (b'S', Ok(()))
            }
            7 => (b'd', frontend::copy_data(arg, &mut buf)),
            8 => (b'f', frontend::copy_fail(&text, &mut buf)),
            9 if !sasl => (b'p', frontend::password_message(arg, &mut buf)),
            10 if !sasl => {
                let r = frontend::sasl_initial_response(
                    "SCRAM-SHA-256",
                    (!arg.is_empty()).then_some(arg),
                    &mut buf,
                );
                if r.is_ok() {
                    sasl = true;
                }
                (b'p', r)
            }
            _ => {
                frontend::flush(&mut buf);
                (b'H', Ok(()))
            }
        };
        match result {
            Ok(()) => {
                let body = buf[before.len() + 5..].to_vec();
                assert_eq!(buf[before.len()], tag);
                assert_eq!(
                    u32::from_be_bytes(buf[before.len() + 1..before.len() + 5].try_into().unwrap())
                        as usize,
                    body.len() + 4
                );
                // The strings went in whole: the text or its halves appear in the body.
                match tag {
                    b'Q' | b'f' => assert_eq!(body, [text.as_bytes(), b"\0"].concat()),
                    b'P' => assert!(
                        body.starts_with(&[a.as_bytes(), b"\0", b.as_bytes(), b"\0"].concat())
                    ),
                    b'd' => assert_eq!(body, arg),
                    b'p' if op % 12 == 9 => assert_eq!(body, [arg, b"\0"].concat()),
                    _ => {}
                }
                expected.push((tag, body));
            }
            Err(_) => assert_eq!(buf, before, "a failed encode changed the buffer"),
        }
    }
    let frames = match check_frontend_stream(&buf) {
        Ok(f) => f,
        Err(e) => panic!("malformed frontend stream: {e}"),
    };
    assert_eq!(frames.len(), expected.len() + 1);
    for (frame, (tag, body)) in frames[1..].iter().zip(&expected) {
        assert_eq!(frame.tag, *tag);
        assert_eq!(frame.body, &body[..]);
    }
    expected.len()
}

//! Transcripts: a conversation between pgdblink and a server, written once as readable text and
//! replayed against the sans-IO [`Connection`] under several chunkings of the server's bytes.
//!
//! # Format
//!
//! One step a line; `#` starts a comment. Words are separated by spaces; `"..."` quotes a word and
//! understands `\n`, `\t`, `\\`, `\"` and `\xNN`.
//!
//! ```text
//! config user=alice database=db1 password=pencil nonce=... protocol=3.2 ssl=require
//! F StartupMessage 3.0 user=alice database=db1 client_encoding=UTF8   # the client must have sent this
//! B AuthenticationOk                                                  # the server sends this
//! call send_query "SELECT 1"                                          # a command on the connection
//! expect state Idle                                                   # an assertion
//! ```
//!
//! Frontend messages (`F`): `StartupMessage <3.0|3.2> k=v...`, `SSLRequest`, `PasswordMessage <text>`,
//! `SASLInitialResponse <mechanism> <data>`, `SASLResponse <data>`, `Query <sql>`, `CopyFail <text>`,
//! `Terminate`.
//!
//! Backend messages (`B`): `AuthenticationOk`, `AuthenticationCleartextPassword`,
//! `AuthenticationMD5Password <hex salt>`, `AuthenticationSASL <mechanism>...`,
//! `AuthenticationSASLContinue <data>`, `AuthenticationSASLFinal <data>`, `Authentication <code>`,
//! `ParameterStatus <name> <value>`, `BackendKeyData <pid> <hex key>`, `ReadyForQuery <I|T|E>`,
//! `RowDescription <name:oid>...`, `DataRow <value|NULL>...`, `CommandComplete <tag>`,
//! `EmptyQueryResponse`, `ErrorResponse <X=value>...`, `NoticeResponse <X=value>...`,
//! `NotificationResponse <pid> <channel> <payload>`, `NegotiateProtocolVersion <minor> <option>...`,
//! `CopyOutResponse <format> <ncols>`, `CopyInResponse <format> <ncols>`,
//! `CopyBothResponse <format> <ncols>`, `CopyData <data>`, `CopyDone`, `SSLResponse <byte>`,
//! `Raw <hex>`, `EOF`.
//!
//! Settings of `config`: `user`, `database`, `password`, `warning` (a warning of the connection
//! string's resolution, queued as a notice), `nonce` (the SCRAM client nonce),
//! `protocol=<3.0|3.2>`, `min_minor=<n>`, `ssl=<disable|allow|prefer|require|verify-ca|verify-full>`
//! (over a transport that can run TLS), `sslnegotiation=<postgres|direct>`, `tls=<available|none>`
//! (`none`: a transport without TLS), `channel_binding=<disable|prefer|require>`, `max_iterations`,
//! `max_small_message`, `max_data_message`. Anything else is an error.
//!
//! TLS: the replay runs no real TLS. `tls-established <hex end-point|none>` is the driver's
//! handshake finishing (it calls `handle_tls_established` with that `tls-server-end-point` data and
//! fails unless the session wanted TLS); from then on plaintext stands in for the decrypted stream.
//! `tls-failed <message>` is a failed handshake (`handle_tls_failed`).
//!
//! Expectations: `expect state <Startup|Idle|Busy|Closed>`, `expect busy <true|false>`,
//! `expect pending`, `expect done`, `expect rows <tag> <ncols> [row values joined by | ]...`,
//! `expect partial "" <ncols> [rows]...` (a chunk of a row set in chunked-rows mode),
//! `expect command <tag>`, `expect empty`, `expect error <sqlstate or -> <message>`,
//! `expect fatal <substring>`, `expect notice <message>...`, `expect notification <pid> <channel> <payload>`,
//! `expect errmsg <text>`, `expect param <name> <value>`, `expect key <pid> <hex>`,
//! `expect no-output`, `expect minor <n>`, `expect tls <NotAttempted|Refused|Handshaking|Established|Failed>`,
//! `expect tls-wanted <true|false>`.
//! Calls: `call send_query <sql>`, `call send_query_chunked <max rows> <sql>`,
//! `call send_query_fails <message>`, `call terminate`.

use pgdblink::auth::ScramLimits;
use pgdblink::conn::{Connection, PollResult, QueryResult, StartupConfig};
use pgdblink::conninfo::{ChannelBindingMode, ProtocolVersion, SslMode, SslNegotiation};
use pgdblink::protocol::{Limits, frontend};
use pgdblink::{Error, ErrorKind};

use crate::wire;

/// How the server's bytes between two client-side steps are cut into `handle_input` calls.
#[derive(Clone, Copy, Debug)]
pub enum Chunking {
    /// All at once.
    Whole,
    /// One byte per call.
    Bytewise,
    /// Random split points from a seeded generator.
    Random(u64),
}

/// Splits a line into words, honouring quotes and escapes.
pub fn words(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '#' {
            break;
        }
        let mut word = Vec::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in: {line}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => word.push(b'\n'),
                        Some('t') => word.push(b'\t'),
                        Some('0') => word.push(0),
                        Some('x') => {
                            let hex: String = chars.by_ref().take(2).collect();
                            word.push(
                                u8::from_str_radix(&hex, 16)
                                    .map_err(|_| format!("bad \\x escape in: {line}"))?,
                            );
                        }
                        Some(other) => {
                            let mut b = [0; 4];
                            word.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
                        }
                        None => return Err(format!("dangling backslash in: {line}")),
                    },
                    Some(other) => {
                        let mut b = [0; 4];
                        word.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
                    }
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                let mut b = [0; 4];
                word.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                chars.next();
            }
        }
        out.push(word);
    }
    Ok(out)
}

fn text(w: &[u8]) -> String {
    String::from_utf8_lossy(w).into_owned()
}

fn hex(s: &[u8]) -> Result<Vec<u8>, String> {
    let s = text(s);
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex length: {s}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("bad hex {s}: {e}")))
        .collect()
}

fn num<T: std::str::FromStr>(w: &[u8]) -> Result<T, String> {
    text(w)
        .parse()
        .map_err(|_| format!("not a number: {}", text(w)))
}

/// Argument `i` of the message `name`, or an error naming what is missing.
fn nth_arg<'a>(name: &str, args: &'a [Vec<u8>], i: usize) -> Result<&'a [u8], String> {
    args.get(i)
        .map(|v| v.as_slice())
        .ok_or_else(|| format!("{name}: missing argument {}", i + 1))
}

/// Encodes a backend message from its words.
pub fn backend_bytes(w: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let name = text(&w[0]);
    let args = &w[1..];
    let arg = |i: usize| nth_arg(&name, args, i);
    match name.as_str() {
        "AuthenticationOk" => wire::authentication(&mut out, 0, &[]),
        "AuthenticationCleartextPassword" => wire::authentication(&mut out, 3, &[]),
        "AuthenticationMD5Password" => wire::authentication(&mut out, 5, &hex(arg(0)?)?),
        "AuthenticationKerberosV5" => wire::authentication(&mut out, 2, &[]),
        "AuthenticationGSS" => wire::authentication(&mut out, 7, &[]),
        "AuthenticationSSPI" => wire::authentication(&mut out, 9, &[]),
        "AuthenticationSASL" => {
            let mut payload = Vec::new();
            for m in args {
                payload.extend_from_slice(m);
                payload.push(0);
            }
            payload.push(0);
            wire::authentication(&mut out, 10, &payload);
        }
        "AuthenticationSASLContinue" => wire::authentication(&mut out, 11, arg(0)?),
        "AuthenticationSASLFinal" => wire::authentication(&mut out, 12, arg(0)?),
        "Authentication" => wire::authentication(&mut out, num(arg(0)?)?, &[]),
        "ParameterStatus" => wire::parameter_status(&mut out, &text(arg(0)?), &text(arg(1)?)),
        "BackendKeyData" => wire::backend_key_data(&mut out, num(arg(0)?)?, &hex(arg(1)?)?),
        "ReadyForQuery" => wire::ready_for_query(&mut out, arg(0)?[0]),
        "RowDescription" => {
            let mut cols = Vec::new();
            for a in args {
                let a = text(a);
                let (n, oid) = a
                    .rsplit_once(':')
                    .ok_or_else(|| format!("column {a} needs name:oid"))?;
                cols.push((n.to_owned(), num::<u32>(oid.as_bytes())?));
            }
            let cols: Vec<(&str, u32)> = cols.iter().map(|(n, o)| (n.as_str(), *o)).collect();
            wire::row_description(&mut out, &cols);
        }
        "DataRow" => {
            let fields: Vec<Option<&[u8]>> = args
                .iter()
                .map(|a| (a.as_slice() != b"NULL").then_some(a.as_slice()))
                .collect();
            wire::data_row(&mut out, &fields);
        }
        "CommandComplete" => wire::command_complete(&mut out, &text(arg(0)?)),
        "EmptyQueryResponse" => wire::message(&mut out, b'I', &[]),
        "ErrorResponse" | "NoticeResponse" => {
            let mut fields = Vec::new();
            for a in args {
                let a = text(a);
                let (code, value) = a
                    .split_once('=')
                    .ok_or_else(|| format!("field {a} needs X=value"))?;
                fields.push((code.as_bytes()[0], value.to_owned()));
            }
            let fields: Vec<(u8, &str)> = fields.iter().map(|(c, v)| (*c, v.as_str())).collect();
            let tag = if name == "ErrorResponse" { b'E' } else { b'N' };
            wire::error_fields(&mut out, tag, &fields);
        }
        "NotificationResponse" => {
            wire::notification(&mut out, num(arg(0)?)?, &text(arg(1)?), &text(arg(2)?))
        }
        "NegotiateProtocolVersion" => {
            let mut b = wire::Body::default()
                .i32(num(arg(0)?)?)
                .i32(args.len() as i32 - 1);
            for a in &args[1..] {
                b = b.cstr(a);
            }
            wire::message(&mut out, b'v', &b.0);
        }
        "CopyOutResponse" | "CopyInResponse" | "CopyBothResponse" => {
            let ncols: i16 = num(arg(1)?)?;
            let mut b = wire::Body::default().u8(num(arg(0)?)?).i16(ncols);
            for _ in 0..ncols {
                b = b.i16(0);
            }
            let tag = match name.as_str() {
                "CopyOutResponse" => b'H',
                "CopyInResponse" => b'G',
                _ => b'W',
            };
            wire::message(&mut out, tag, &b.0);
        }
        "CopyData" => wire::message(&mut out, b'd', arg(0)?),
        "CopyDone" => wire::message(&mut out, b'c', &[]),
        "ParseComplete" => wire::message(&mut out, b'1', &[]),
        "BindComplete" => wire::message(&mut out, b'2', &[]),
        "CloseComplete" => wire::message(&mut out, b'3', &[]),
        "NoData" => wire::message(&mut out, b'n', &[]),
        "PortalSuspended" => wire::message(&mut out, b's', &[]),
        "ParameterDescription" => {
            let mut b = wire::Body::default().i16(args.len() as i16);
            for a in args {
                b = b.i32(num(a)?);
            }
            wire::message(&mut out, b't', &b.0);
        }
        "SSLResponse" => out.push(arg(0)?[0]),
        "Raw" => out = hex(&args.concat())?,
        other => return Err(format!("unknown backend message {other}")),
    }
    Ok(out)
}

/// Encodes an expected frontend message from its words.
pub fn frontend_bytes(w: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let name = text(&w[0]);
    let args = &w[1..];
    let arg = |i: usize| nth_arg(&name, args, i);
    let enc = |e: pgdblink::protocol::EncodeError| e.to_string();
    match name.as_str() {
        "StartupMessage" => {
            let version = match text(arg(0)?).as_str() {
                "3.0" => frontend::PROTOCOL_3_0,
                "3.2" => frontend::PROTOCOL_3_2,
                v => return Err(format!("unknown version {v}")),
            };
            let pairs: Vec<(String, String)> = args[1..]
                .iter()
                .map(|a| {
                    let a = text(a);
                    let (k, v) = a.split_once('=').unwrap_or((&a, ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect();
            frontend::startup_message(
                version,
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                &mut out,
            )
            .map_err(enc)?;
        }
        "SSLRequest" => frontend::ssl_request(&mut out),
        "PasswordMessage" => frontend::password_message(arg(0)?, &mut out).map_err(enc)?,
        "SASLInitialResponse" => {
            frontend::sasl_initial_response(&text(arg(0)?), Some(arg(1)?), &mut out).map_err(enc)?
        }
        "SASLResponse" => frontend::sasl_response(arg(0)?, &mut out).map_err(enc)?,
        "Query" => frontend::query(&text(arg(0)?), &mut out).map_err(enc)?,
        "CopyFail" => frontend::copy_fail(&text(arg(0)?), &mut out).map_err(enc)?,
        "CopyData" => frontend::copy_data(arg(0)?, &mut out).map_err(enc)?,
        "CopyDone" => frontend::copy_done(&mut out),
        "Terminate" => frontend::terminate(&mut out),
        "Parse" => frontend::parse(&text(arg(0)?), &text(arg(1)?), &[], &mut out).map_err(enc)?,
        "Bind" => {
            let values: Vec<Option<&[u8]>> = args[2..]
                .iter()
                .map(|a| (a.as_slice() != b"NULL").then_some(a.as_slice()))
                .collect();
            frontend::bind(&text(arg(0)?), &text(arg(1)?), &[], &values, &[], &mut out)
                .map_err(enc)?
        }
        "Describe" => frontend::describe(arg(0)?[0], &text(arg(1)?), &mut out).map_err(enc)?,
        "Execute" => frontend::execute(&text(arg(0)?), num(arg(1)?)?, &mut out).map_err(enc)?,
        "Sync" => frontend::sync(&mut out),
        "Flush" => frontend::flush(&mut out),
        other => return Err(format!("unknown frontend message {other}")),
    }
    Ok(out)
}

/// A small deterministic generator for split points (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Replays `script` (the transcript text) against a fresh [`Connection`] with `chunking`. Returns a
/// description of the first mismatch.
pub fn replay(script: &str, chunking: Chunking) -> Result<(), String> {
    let mut conn: Option<Connection> = None;
    let mut server: Vec<u8> = Vec::new();
    let mut sent: Vec<u8> = Vec::new();
    let mut rng = Rng(match chunking {
        Chunking::Random(seed) => seed | 1,
        _ => 1,
    });
    for (lineno, line) in script.lines().enumerate() {
        let w = words(line).map_err(|e| format!("line {}: {e}", lineno + 1))?;
        if w.is_empty() {
            continue;
        }
        let at = |e: String| format!("line {} ({}): {e}", lineno + 1, line.trim());
        let kind = text(&w[0]);
        if kind == "config" {
            let mut user = String::from("alice");
            let mut database = String::from("db1");
            let mut cfg_params: Vec<(String, String)> = Vec::new();
            for a in &w[1..] {
                let a = text(a);
                let (k, v) = a.split_once('=').unwrap_or((&a, ""));
                cfg_params.push((k.to_owned(), v.to_owned()));
                match k {
                    "user" => user = v.to_owned(),
                    "database" => database = v.to_owned(),
                    _ => {}
                }
            }
            // The transcripts' default SCRAM nonce, unless `nonce=` gives one.
            let nonce = cfg_params
                .iter()
                .find(|(k, _)| k == "nonce")
                .map_or("pgdblinkpgdblinkpgdblink", |(_, v)| v.as_str());
            let mut limits = Limits::default();
            let mut config =
                StartupConfig::builder(&user, &database, nonce).sslmode(SslMode::Disable);
            for (k, v) in &cfg_params {
                let v = v.clone();
                match k.as_str() {
                    "password" => config = config.password(&v),
                    "warning" => config = config.warning(&v),
                    "nonce" => {}
                    "protocol" if v == "3.0" => {
                        config = config.max_protocol_version(ProtocolVersion::V3_0)
                    }
                    "protocol" if v == "3.2" => {
                        config = config.max_protocol_version(ProtocolVersion::V3_2)
                    }
                    "min_minor" if v == "0" => {}
                    "min_minor" if v == "2" => {
                        config = config.min_protocol_version(ProtocolVersion::V3_2)
                    }
                    "ssl" => {
                        let mode = match v.as_str() {
                            "disable" => SslMode::Disable,
                            "allow" => SslMode::Allow,
                            "prefer" => SslMode::Prefer,
                            "require" => SslMode::Require,
                            "verify-ca" => SslMode::VerifyCa,
                            "verify-full" => SslMode::VerifyFull,
                            _ => return Err(at(format!("unknown config setting {k}={v}"))),
                        };
                        config = config.sslmode(mode).tls_available(true)
                    }
                    "sslnegotiation" if v == "direct" => {
                        config = config.sslnegotiation(SslNegotiation::Direct)
                    }
                    "sslnegotiation" if v == "postgres" => {}
                    "tls" if v == "available" => config = config.tls_available(true),
                    "tls" if v == "none" => config = config.tls_available(false),
                    "channel_binding" if v == "require" => {
                        config = config.channel_binding(ChannelBindingMode::Require)
                    }
                    "channel_binding" if v == "disable" => {
                        config = config.channel_binding(ChannelBindingMode::Disable)
                    }
                    "channel_binding" if v == "prefer" => {}
                    "max_iterations" => {
                        config = config.scram_limits(ScramLimits {
                            max_iterations: num(v.as_bytes()).map_err(at)?,
                        })
                    }
                    "max_small_message" => {
                        limits.max_small_message = num(v.as_bytes()).map_err(at)?
                    }
                    "max_data_message" => {
                        limits.max_data_message = num(v.as_bytes()).map_err(at)?
                    }
                    "user" | "database" => {}
                    // A misspelt or unsupported setting would silently test something else.
                    _ => return Err(at(format!("unknown config setting {k}={v}"))),
                }
            }
            let config = config.limits(limits).build();
            conn = Some(Connection::new(config));
            continue;
        }
        let c = conn
            .as_mut()
            .ok_or_else(|| at("the first step must be `config`".into()))?;
        if kind == "B" {
            if text(&w[1]) == "EOF" {
                feed(c, &mut server, chunking, &mut rng);
                c.handle_eof();
                continue;
            }
            server.extend_from_slice(&backend_bytes(&w[1..]).map_err(at)?);
            continue;
        }
        // Any client-side step: deliver the server's bytes first, then collect what the client sent.
        feed(c, &mut server, chunking, &mut rng);
        let out = c.pending_output().to_vec();
        c.consume_output(out.len());
        sent.extend_from_slice(&out);
        match kind.as_str() {
            "F" => {
                let expected = frontend_bytes(&w[1..]).map_err(at)?;
                if !sent.starts_with(&expected) {
                    return Err(at(format!(
                        "client sent {:?}\nexpected      {:?}",
                        String::from_utf8_lossy(&sent),
                        String::from_utf8_lossy(&expected)
                    )));
                }
                sent.drain(..expected.len());
            }
            "call" => match text(&w[1]).as_str() {
                "send_query" => c
                    .send_query(&text(w.get(2).ok_or_else(|| at("missing sql".into()))?))
                    .map_err(|e| at(format!("send_query failed: {e}")))?,
                "send_query_chunked" => {
                    let n: usize =
                        num(w.get(2).ok_or_else(|| at("missing row count".into()))?).map_err(at)?;
                    c.send_query_chunked(
                        &text(w.get(3).ok_or_else(|| at("missing sql".into()))?),
                        n,
                    )
                    .map_err(|e| at(format!("send_query_chunked failed: {e}")))?
                }
                "send_query_fails" => {
                    let sql = "SELECT 1";
                    match c.send_query(sql) {
                        Ok(()) => return Err(at("send_query succeeded".into())),
                        Err(e) if e.message() == text(&w[2]) => {}
                        Err(e) => return Err(at(format!("send_query failed with {e}"))),
                    }
                }
                "terminate" => c.terminate(),
                other => call_extended(c, other, &w[2..]).map_err(at)?,
            },
            "tls-established" => {
                let end_point = match w.get(1).map(|h| text(h)) {
                    None => return Err(at("missing end point (hex or none)".into())),
                    Some(h) if h == "none" => None,
                    Some(h) => Some(hex(h.as_bytes()).map_err(at)?),
                };
                if !c.tls_wanted() {
                    return Err(at(format!(
                        "the session does not want TLS (state {:?}, fatal {:?})",
                        c.state(),
                        c.fatal_error().map(|e| e.to_string())
                    )));
                }
                c.handle_tls_established(end_point);
            }
            "tls-failed" => {
                let message = w.get(1).ok_or_else(|| at("missing message".into()))?;
                c.handle_tls_failed(Error::new(ErrorKind::Connect, text(message)));
            }
            "expect" => expect(c, &w[1..], &sent).map_err(at)?,
            other => return Err(at(format!("unknown step {other}"))),
        }
    }
    if !sent.is_empty() {
        return Err(format!(
            "the client sent bytes no step expected: {:?}",
            String::from_utf8_lossy(&sent)
        ));
    }
    Ok(())
}

/// The calls of the extended protocol, pipeline mode and COPY.
fn call_extended(c: &mut Connection, call: &str, args: &[Vec<u8>]) -> Result<(), String> {
    let arg = |i: usize| -> Result<String, String> {
        args.get(i)
            .map(|v| text(v))
            .ok_or_else(|| format!("call {call}: missing argument"))
    };
    let params = |from: usize| -> Vec<Option<String>> {
        args.get(from..)
            .unwrap_or_default()
            .iter()
            .map(|a| (a.as_slice() != b"NULL").then(|| text(a)))
            .collect()
    };
    let refs = |p: &[Option<String>]| -> Vec<Option<String>> { p.to_vec() };
    let failed = |e: pgdblink::Error| format!("{call} failed: {e}");
    match call {
        "send_query_params" => {
            let p = refs(&params(1));
            let p: Vec<Option<&str>> = p.iter().map(|v| v.as_deref()).collect();
            c.send_query_params(&arg(0)?, &p).map_err(failed)
        }
        "send_prepare" => c.send_prepare(&arg(0)?, &arg(1)?).map_err(failed),
        "send_query_prepared" => {
            let p = refs(&params(1));
            let p: Vec<Option<&str>> = p.iter().map(|v| v.as_deref()).collect();
            c.send_query_prepared(&arg(0)?, &p).map_err(failed)
        }
        "enter_pipeline_mode" => c.enter_pipeline_mode().map_err(failed),
        "exit_pipeline_mode" => c.exit_pipeline_mode().map_err(failed),
        "pipeline_sync" => c.pipeline_sync().map_err(failed),
        "send_flush_request" => c.send_flush_request().map_err(failed),
        "send_copy_in" => c
            .send_copy(&arg(0)?, pgdblink::CopyDirection::In)
            .map_err(failed),
        "send_copy_out" => c
            .send_copy(&arg(0)?, pgdblink::CopyDirection::Out)
            .map_err(failed),
        "put_copy_data" => c
            .put_copy_data(args.first().ok_or("missing data")?)
            .map_err(failed),
        "put_copy_end" => c
            .put_copy_end(args.first().map(|a| text(a)).as_deref())
            .map_err(failed),
        // `call fails <message> <call> <args>...`: the call must fail with exactly that text.
        "fails" => {
            let want = arg(0)?;
            let inner = arg(1)?;
            match call_extended(c, &inner, &args[2..]) {
                Ok(()) => Err(format!("{inner} succeeded")),
                Err(e) if e == format!("{inner} failed: {want}") => Ok(()),
                Err(e) => Err(e),
            }
        }
        other => Err(format!("unknown call {other}")),
    }
}

fn feed(c: &mut Connection, server: &mut Vec<u8>, chunking: Chunking, rng: &mut Rng) {
    let bytes = std::mem::take(server);
    match chunking {
        Chunking::Whole => {
            if !bytes.is_empty() {
                c.handle_input(&bytes)
            }
        }
        Chunking::Bytewise => bytes.chunks(1).for_each(|b| c.handle_input(b)),
        Chunking::Random(_) => {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = 1 + (rng.next() as usize % rest.len().min(24));
                c.handle_input(&rest[..n]);
                rest = &rest[n..];
            }
        }
    }
}

fn expect(c: &mut Connection, w: &[Vec<u8>], sent: &[u8]) -> Result<(), String> {
    let what = text(&w[0]);
    let arg = |i: usize| -> Result<String, String> {
        w.get(i + 1)
            .map(|v| text(v))
            .ok_or_else(|| format!("expect {what}: missing argument"))
    };
    match what.as_str() {
        "state" => {
            let state = format!("{:?}", c.state());
            if state != arg(0)? {
                return Err(format!(
                    "state is {state} (fatal: {:?})",
                    c.fatal_error().map(|e| e.to_string())
                ));
            }
        }
        "busy" => {
            let want = arg(0)? == "true";
            if c.is_busy() != want {
                return Err(format!("is_busy is {}", c.is_busy()));
            }
        }
        "pending" => match c.poll_result() {
            PollResult::Pending => {}
            other => return Err(format!("poll_result gave {other:?}")),
        },
        "done" => match c.poll_result() {
            PollResult::Done => {}
            other => return Err(format!("poll_result gave {other:?}")),
        },
        "rows" | "partial" | "command" | "empty" | "error" => {
            let got = match c.poll_result() {
                PollResult::Ready(r) => r,
                other => return Err(format!("expected a result, poll_result gave {other:?}")),
            };
            match (what.as_str(), got) {
                ("rows" | "partial", Ok(QueryResult::Rows(rows))) => {
                    if rows.is_partial() != (what == "partial") {
                        return Err(format!("is_partial is {}", rows.is_partial()));
                    }
                    if rows.command_tag() != arg(0)? {
                        return Err(format!("tag {:?}", rows.command_tag()));
                    }
                    let ncols: usize = num(arg(1)?.as_bytes())?;
                    if rows.columns().len() != ncols {
                        return Err(format!("{} columns", rows.columns().len()));
                    }
                    let expected: Vec<String> = w[3..].iter().map(|v| text(v)).collect();
                    let actual: Vec<String> = rows
                        .iter()
                        .map(|r| {
                            (0..ncols)
                                .map(|c| r.get(c).unwrap_or("NULL"))
                                .collect::<Vec<_>>()
                                .join("|")
                        })
                        .collect();
                    if expected != actual {
                        return Err(format!("rows {actual:?}, expected {expected:?}"));
                    }
                }
                ("command", Ok(QueryResult::Command(tag))) if tag == arg(0)? => {}
                ("empty", Ok(QueryResult::EmptyQuery)) => {}
                ("error", Err(e))
                    if e.code().unwrap_or("-") == arg(0)? && e.message() == arg(1)? => {}
                (_, other) => return Err(format!("result was {other:?}")),
            }
        }
        "pipeline-sync" | "pipeline-aborted" => match (what.as_str(), c.poll_result()) {
            ("pipeline-sync", PollResult::Ready(Ok(QueryResult::PipelineSync))) => {}
            ("pipeline-aborted", PollResult::Ready(Ok(QueryResult::PipelineAborted))) => {}
            (_, other) => return Err(format!("poll_result gave {other:?}")),
        },
        "pipeline-status" => {
            let status = format!("{:?}", c.pipeline_status());
            if status != arg(0)? {
                return Err(format!("pipeline status is {status}"));
            }
        }
        "copy-state" => {
            let state = match c.copy_state() {
                None => "None".to_owned(),
                Some(d) => format!("{d:?}"),
            };
            if state != arg(0)? {
                return Err(format!("copy state is {state}"));
            }
        }
        "copy-data" => {
            let got: Vec<Vec<u8>> = std::iter::from_fn(|| c.take_copy_data())
                .map(|b| b.to_vec())
                .collect();
            let want: Vec<Vec<u8>> = w[1..].to_vec();
            if got != want {
                return Err(format!("copy data {got:?}"));
            }
        }
        "fatal" => {
            let e = c
                .fatal_error()
                .ok_or_else(|| format!("no fatal error; state {:?}", c.state()))?;
            if !e.libpq_text().contains(&arg(0)?) {
                return Err(format!("fatal error is {:?}", e.libpq_text()));
            }
        }
        "notice" => {
            let notices = c.take_notices();
            let got: Vec<String> = notices.iter().map(|n| n.message().to_owned()).collect();
            let want: Vec<String> = w[1..].iter().map(|v| text(v)).collect();
            if got != want {
                return Err(format!("notices {got:?}"));
            }
        }
        "notification" => {
            let n = c.take_notifications();
            let want = (num::<u32>(arg(0)?.as_bytes())?, arg(1)?, arg(2)?);
            match n.as_slice() {
                [one] if (one.pid, one.channel.clone(), one.payload.clone()) == want => {}
                _ => return Err(format!("notifications {n:?}")),
            }
        }
        "errmsg" => {
            if c.error_message() != arg(0)? {
                return Err(format!("error message {:?}", c.error_message()));
            }
        }
        "param" => {
            if c.parameter(&arg(0)?) != Some(arg(1)?.as_str()) {
                return Err(format!("parameter is {:?}", c.parameter(&arg(0)?)));
            }
        }
        "key" => {
            let (pid, key) = c.backend_key().ok_or("no backend key")?;
            if pid != num::<u32>(arg(0)?.as_bytes())? || key != hex(arg(1)?.as_bytes())? {
                return Err(format!("key {pid} {key:02x?}"));
            }
        }
        "minor" => {
            if c.protocol_minor() != num::<u32>(arg(0)?.as_bytes())? {
                return Err(format!("minor {}", c.protocol_minor()));
            }
        }
        "tls" => {
            let stage = format!("{:?}", c.tls_negotiation());
            if stage != arg(0)? {
                return Err(format!("TLS negotiation is {stage}"));
            }
        }
        "tls-wanted" => {
            if c.tls_wanted() != (arg(0)? == "true") {
                return Err(format!("tls_wanted is {}", c.tls_wanted()));
            }
        }
        "no-output" => {
            if !sent.is_empty() {
                return Err(format!("client sent {:?}", String::from_utf8_lossy(sent)));
            }
        }
        other => return Err(format!("unknown expectation {other}")),
    }
    Ok(())
}

/// Replays a transcript whole, byte by byte, and under several random splittings, panicking with a
/// precise message on the first mismatch.
pub fn replay_all_chunkings(name: &str, script: &str) {
    let mut chunkings = vec![Chunking::Whole, Chunking::Bytewise];
    chunkings.extend((1..=16u64).map(|s| Chunking::Random(s.wrapping_mul(0x9e37_79b9_7f4a_7c15))));
    for chunking in chunkings {
        if let Err(e) = replay(script, chunking) {
            panic!("transcript {name} under {chunking:?}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = "F StartupMessage 3.0 user=alice database=db1 client_encoding=UTF8\n\
                         B AuthenticationOk\n\
                         B ReadyForQuery I\n\
                         expect state Idle\n";

    #[test]
    fn transcript_unknown_config_setting_is_an_error() {
        for config in [
            "config user=alice database=db1 pasword=pencil",
            "config user=alice database=db1 protocol=3.1",
            "config user=alice database=db1 ssl=verify",
            "config user=alice database=db1 sslnegotiation=tls",
            "config user=alice database=db1 channel_binding=maybe",
            "config user=alice database=db1 sslmode",
        ] {
            let script = format!("{config}\n{TRUST}");
            let e = replay(&script, Chunking::Whole).expect_err(config);
            assert!(e.contains("unknown config setting"), "{config}: {e}");
            assert!(e.starts_with("line 1 "), "{config}: {e}");
        }
    }

    #[test]
    fn transcript_known_config_settings_are_accepted() {
        let script = format!(
            "config user=alice database=db1 protocol=3.0 channel_binding=prefer max_iterations=4096\n{TRUST}"
        );
        replay(&script, Chunking::Whole).expect("accepted");
    }
}

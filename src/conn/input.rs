//! Input: the bytes the server sent, framed into messages and handled (the fast path for the
//! usual exchanges, the general decoder for the rest), the rows' receive buffers kept, and how the
//! input ends (end of stream, I/O error, a fatal error).

use super::*;

impl Connection {
    /// Feeds bytes received from the server (any amount, any split) and processes every complete
    /// message.
    pub fn handle_input(&mut self, data: &[u8]) {
        if matches!(self.phase, Phase::Closed) || self.eof {
            return;
        }
        if self.recv.is_empty() && !self.stalled {
            // Nothing left over from the last input: the messages are read where they are.
            return self.process_direct(data);
        }
        self.handle_input_buffered(data);
    }

    /// [`handle_input`](Self::handle_input) with input left over in the receive buffer (or
    /// processing stalled). Out of line: the usual input finds the buffer empty.
    #[inline(never)]
    pub(super) fn handle_input_buffered(&mut self, data: &[u8]) {
        if let Some(need) = self.completes_leftover(data) {
            // The message begun in the last input is completed and processed alone; the rest is
            // then read where it is, as if nothing had been left over (not copied twice).
            let (head, rest) = data.split_at(need);
            self.reserve_recv(head.len());
            self.recv.extend_from_slice(head);
            self.process();
            if self.stalled || matches!(self.phase, Phase::Closed) {
                if !matches!(self.phase, Phase::Closed) {
                    self.reserve_recv(rest.len());
                    self.recv.extend_from_slice(rest);
                }
                return;
            }
            if self.recv.is_empty() {
                return self.process_direct(rest);
            }
            return self.handle_input(rest);
        }
        self.reserve_recv(data.len());
        self.recv.extend_from_slice(data);
        self.process();
    }

    /// The bytes of `data` that complete the message left over in the receive buffer, when
    /// taking it alone pays: a ready session, not stalled, with enough input after it to check
    /// whole ([`result::TEXT_MIN`]). `None` otherwise (then all of `data` is appended).
    #[inline]
    pub(super) fn completes_leftover(&self, data: &[u8]) -> Option<usize> {
        if self.stalled || !matches!(self.phase, Phase::Ready) {
            return None;
        }
        let have = self.recv.len();
        let mut header = [0u8; 5];
        for (i, byte) in header.iter_mut().enumerate() {
            *byte = match self.recv.get(i) {
                Some(&b) => b,
                None => *data.get(i - have)?,
            };
        }
        let [_, l0, l1, l2, l3] = header;
        let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
        // A length below 4 is the general path's to report.
        if len < 4 {
            return None;
        }
        let need = (len + 1).checked_sub(have)?;
        (need > 0 && data.len().checked_sub(need)? >= result::TEXT_MIN).then_some(need)
    }

    /// Makes room for `n` more bytes in the receive buffer.
    #[inline]
    pub(super) fn reserve_recv(&mut self, n: usize) {
        if self.recv.capacity() - self.recv.len() < n {
            // Reserve generously: row sets keep parts of this buffer alive (shared, not copied), and
            // the room after them serves the next reads without a new allocation.
            self.recv.reserve(n.max(RECV_RESERVE));
        }
    }

    /// One input pass over `data` straight from the caller's buffer (the receive buffer being
    /// empty): only what must outlive the call is copied, the bytes rows refer to (their chunk,
    /// as [`process`](Self::process) makes it) and an incomplete message at the end.
    #[inline(always)]
    pub(super) fn process_direct(&mut self, data: &[u8]) {
        let (consumed, framed_from, row_bytes) = self.scan(data);
        let (pass, rest) = data.split_at(consumed.min(data.len()));
        if self.rows_pending() {
            self.attach_direct(pass, framed_from, consumed, row_bytes);
        }
        self.mirror.reset();
        if matches!(self.phase, Phase::Closed) {
            self.recv.clear();
        } else if !rest.is_empty() {
            self.reserve_recv(rest.len());
            self.recv.extend_from_slice(rest);
        }
    }

    /// Gives the rows of a pass read in place (`pass`) their chunk: the pass's checked copy, else
    /// its bytes. Out of line: the small results of a round trip need none (their values are
    /// copied into them), and the hot input path stays short.
    #[inline(never)]
    pub(super) fn attach_direct(
        &mut self,
        pass: &[u8],
        framed_from: usize,
        consumed: usize,
        row_bytes: usize,
    ) {
        let chunk = match self.mirror_text(consumed, row_bytes) {
            Some(Ok(chunk)) => chunk,
            // Not UTF-8: kept as received.
            Some(Err(())) => self.keep_raw(pass, framed_from, consumed),
            None => match result::Chunk::checked_text(pass, framed_from, row_bytes) {
                Some(chunk) => chunk,
                None => self.keep_raw(pass, framed_from, consumed),
            },
        };
        self.attach_chunk(&chunk);
    }

    /// The bytes of a pass read in place (`pass`), copied into the receive buffer and frozen as
    /// they are: the raw chunk of [`process_direct`](Self::process_direct).
    pub(super) fn keep_raw(
        &mut self,
        pass: &[u8],
        framed_from: usize,
        consumed: usize,
    ) -> result::Chunk {
        self.reserve_recv(pass.len());
        self.recv.extend_from_slice(pass);
        result::Chunk::take(&mut self.recv, framed_from, consumed, 0)
    }

    /// The checked chunk of this pass's copy ([`result::Mirror::text`]), when every row
    /// referring to the pass is in it: none of a finished row set waits for the pass.
    #[inline]
    pub(super) fn mirror_text(
        &mut self,
        consumed: usize,
        row_bytes: usize,
    ) -> Option<Result<result::Chunk, ()>> {
        if self.outbox.needs_chunk() {
            return None;
        }
        let rows = self.requests.pending_rows();
        self.mirror.text(consumed, rows, row_bytes)
    }

    /// The server closed the connection (or the socket failed): a query in flight gets one error result
    /// (SQLSTATE 08006) and then the end marker; the connection is closed.
    pub fn handle_eof(&mut self) {
        self.input_ended(None);
    }

    /// Like [`handle_eof`](Self::handle_eof), for a socket that failed: the 08006 error keeps `e` as
    /// its [`source`](std::error::Error::source).
    pub fn handle_io_error(&mut self, e: std::io::Error) {
        self.input_ended(Some(e));
    }

    pub(super) fn input_ended(&mut self, source: Option<std::io::Error>) {
        if self.eof {
            return;
        }
        self.eof = true;
        if self.stalled && !matches!(self.phase, Phase::Closed) {
            // What arrived before the end is processed first, when the caller takes results.
            self.pending_eof = Some(source);
            return;
        }
        self.end_input(source);
    }

    /// Reports the end of the input (see [`handle_eof`](Self::handle_eof)).
    pub(super) fn end_input(&mut self, source: Option<std::io::Error>) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let text = if self.recv.is_empty() {
            SERVER_CLOSED_TEXT
        } else {
            "server closed the connection in the middle of a message"
        };
        let err = Error::new(ErrorKind::ConnectionLost, text)
            .with_code(crate::sqlstate::CONNECTION_FAILURE);
        self.fail(match source {
            Some(e) => err.with_source(e),
            None => err,
        });
    }

    /// Fails the connection: records the sticky error; a query in flight gets it as a result followed
    /// by the end marker; a startup fails.
    pub(super) fn fail(&mut self, err: Error) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.error_buffer.push_str(&err.libpq_text());
        // Behind any result of this input pass still waiting for its chunk (see `process`).
        self.fail_requests(&err);
        self.close(err);
    }

    pub(super) fn close(&mut self, err: Error) {
        // Results already queued stay retrievable (poll_result drains them before reporting Done).
        self.fatal.get_or_insert(err);
        // Dropping the startup state, if any, wipes the password.
        self.phase = Phase::Closed;
        self.requests.clear();
        self.recv.clear();
    }

    pub(super) fn protocol_violation(&mut self, text: String) {
        self.fail(
            Error::new(ErrorKind::Protocol, text).with_code(crate::sqlstate::PROTOCOL_VIOLATION),
        );
    }

    pub(super) fn push_notice(&mut self, notice: Error) {
        let bytes = budgets::error_bytes(&notice);
        self.notices.push(notice, bytes, self.budgets.notices);
    }

    /// Processes every complete message in the receive buffer (one input pass). Rows keep offsets
    /// into the buffer; at the end of the pass, if any refer to it, the consumed part is frozen and
    /// shared with them instead of copied.
    pub(super) fn process(&mut self) {
        // Take the buffer out so that messages can borrow it while `self` is mutated.
        let recv = std::mem::take(&mut self.recv);
        let (consumed, framed_from, row_bytes) = self.scan(&recv);
        self.recv = recv;
        if self.rows_pending() {
            self.attach_recv(framed_from, consumed, row_bytes);
        } else {
            self.recv.advance(consumed);
        }
        self.mirror.reset();
        if matches!(self.phase, Phase::Closed) {
            self.recv.clear();
        }
    }

    /// Gives the rows of a pass of the receive buffer their chunk: the pass's checked copy, else
    /// [`Chunk::take`](result::Chunk::take)'s. Out of line, as
    /// [`attach_direct`](Self::attach_direct).
    #[inline(never)]
    pub(super) fn attach_recv(&mut self, framed_from: usize, consumed: usize, row_bytes: usize) {
        let chunk = match self.mirror_text(consumed, row_bytes) {
            Some(Ok(chunk)) => {
                self.recv.advance(consumed);
                chunk
            }
            // Not UTF-8: kept as received.
            Some(Err(())) => result::Chunk::take(&mut self.recv, framed_from, consumed, 0),
            None => result::Chunk::take(&mut self.recv, framed_from, consumed, row_bytes),
        };
        self.attach_chunk(&chunk);
    }

    /// Processes every complete message of `recv` (one input pass); returns the bytes consumed,
    /// where framed messages start (after raw startup bytes such as the SSL response), and the
    /// bytes of the DataRows the hot path took.
    pub(super) fn scan(&mut self, recv: &[u8]) -> (usize, usize, usize) {
        let mut consumed = 0usize;
        // Where framed messages start (after raw startup bytes such as the SSL response).
        let mut framed_from = 0usize;
        // The bytes of the DataRows taken by the hot path: whether checking the pass whole pays.
        let mut row_bytes = 0usize;
        while consumed < recv.len() && !matches!(self.phase, Phase::Closed) {
            if self.over_budget() {
                // Back-pressure: the rest waits in `recv` until the caller takes what is queued.
                self.stalled = true;
                break;
            }
            if matches!(self.phase, Phase::Ready) && !self.slow_only() {
                // The hot path: the usual messages (rows above all) straight from the buffer.
                // They neither close the session nor send anything, so the budgets can only be
                // reached once a result is queued: checked again only then, here (a budget
                // reached goes back to the check above, which stops the pass).
                let mut queued = self.outbox.bytes();
                let start = consumed;
                loop {
                    let next = self.fast_message(recv, consumed, &mut row_bytes);
                    if next == consumed {
                        break;
                    }
                    consumed = next;
                    if consumed >= recv.len() {
                        break;
                    }
                    let now = self.outbox.bytes();
                    if now != queued {
                        if self.over_budget_with(now) {
                            break;
                        }
                        queued = now;
                    }
                }
                if consumed != start {
                    continue;
                }
            }
            // The general path, one message (or the raw startup bytes) at a time.
            match self.scan_general(recv, consumed) {
                Step::Framed(n) => consumed += n,
                Step::Raw(n) => {
                    consumed += n;
                    framed_from = consumed;
                }
                Step::Stop => break,
            }
        }
        (consumed, framed_from, row_bytes)
    }

    /// One step of [`scan`](Self::scan)'s general path at `consumed` in `recv`: raw startup bytes
    /// (such as the SSL response), or one message decoded and handled. Out of line: the hot loop
    /// of the fast path stays small (its registers and frame are not the general path's).
    #[inline(never)]
    pub(super) fn scan_general(&mut self, recv: &[u8], consumed: usize) -> Step {
        let rest = recv.get(consumed..).unwrap_or_default();
        if (!matches!(self.phase, Phase::Ready) || self.slow_only())
            && let Some(n) = self.raw_startup_input(rest)
        {
            // `0`: failed, or more input is needed.
            return if n == 0 { Step::Stop } else { Step::Raw(n) };
        }
        match protocol::decode(rest, &self.limits) {
            Ok(Decoded::Message(msg, len)) => {
                let sent = self.send.len();
                self.handle_message(msg, recv);
                // Replies the message made the client owe (authentication answers, CopyFail).
                self.replies += self.send.len().saturating_sub(sent);
                if self.error_buffer.len() > self.budgets.error_message {
                    self.error_dropped += budgets::trim_error_buffer(
                        &mut self.error_buffer,
                        self.budgets.error_message,
                    ) as u64;
                }
                Step::Framed(len)
            }
            Ok(Decoded::NeedMore(_)) => Step::Stop,
            Err(e) => {
                // Kind Protocol, 08P01, the decode error kept as the source.
                self.fail(Error::from(e));
                Step::Stop
            }
        }
    }

    /// Whether the fast path is off (only in tests).
    #[inline(always)]
    pub(super) fn slow_only(&self) -> bool {
        #[cfg(test)]
        return self.slow_only;
        #[cfg(not(test))]
        false
    }

    /// Handles one decoded message; `pass` is the receive buffer of this input pass, which it
    /// borrows from.
    pub(super) fn handle_message(&mut self, msg: BackendMessage<'_>, pass: &[u8]) {
        // Messages allowed in any state.
        match msg {
            BackendMessage::NoticeResponse(fields) => {
                let notice = error_from_fields(fields);
                self.push_notice(notice);
            }
            BackendMessage::NotificationResponse {
                pid,
                channel,
                payload,
            } => {
                let n = Notification {
                    channel: String::from_utf8_lossy(channel).into_owned(),
                    pid,
                    payload: String::from_utf8_lossy(payload).into_owned(),
                };
                let bytes = n.channel.len() + n.payload.len();
                self.notifications
                    .push(n, bytes, self.budgets.notifications);
            }
            BackendMessage::ParameterStatus { name, value } => {
                let name = String::from_utf8_lossy(name);
                let value = String::from_utf8_lossy(value);
                self.parameter_status(&name, &value);
            }
            msg => match self.phase {
                Phase::Startup(_) => self.handle_startup_message(msg),
                Phase::Ready => self.handle_query_message(msg, pass),
                Phase::Closed => {}
            },
        }
    }

    /// A ParameterStatus: remembered; the encodings decide how text is read.
    pub(super) fn parameter_status(&mut self, name: &str, value: &str) {
        let refuse = match name {
            "client_encoding" => !is_utf8_name(value),
            "server_encoding" => {
                self.check_utf8 = value == "SQL_ASCII";
                false
            }
            _ => false,
        };
        self.params.set(name, value, &self.budgets);
        if refuse {
            self.refuse_client_encoding(value);
        }
    }

    /// The server reads and writes text in another encoding than UTF-8: nothing it sends from now
    /// on can be read correctly, so the session ends here (a connect fails; a query in flight gets
    /// the error as its result).
    pub(super) fn refuse_client_encoding(&mut self, value: &str) {
        let e = Error::new(
            ErrorKind::Unsupported,
            format!("client_encoding \"{value}\" is not supported: pgdblink reads text as UTF-8"),
        )
        .with_code(crate::sqlstate::FEATURE_NOT_SUPPORTED);
        frontend::terminate(&mut self.send);
        self.fail(e);
    }

    /// Whether rows (in the row set in progress or in results waiting) refer to the receive buffer
    /// of this pass.
    pub(super) fn rows_pending(&self) -> bool {
        self.outbox.needs_chunk() || self.requests.rows_pending()
    }

    /// Gives the chunk just consumed to every row that refers to it.
    pub(super) fn attach_chunk(&mut self, chunk: &result::Chunk) {
        self.outbox.attach(chunk);
        self.requests.attach(chunk);
    }
}

/// What one step of [`Connection::scan_general`] consumed.
pub(super) enum Step {
    /// A message of this many bytes, handled.
    Framed(usize),
    /// This many raw startup bytes (framed messages start after them).
    Raw(usize),
    /// Nothing more in this pass: more input is needed, or the connection failed.
    Stop,
}

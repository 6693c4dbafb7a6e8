//! Server-side encoding of backend messages (what a real server sends), for transcripts and the fake
//! server. The library itself only decodes backend messages; this is the other half, for tests.

/// Appends a message with type `tag` and `body`.
pub fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
}

/// A growing message body.
#[derive(Default)]
pub struct Body(pub Vec<u8>);

impl Body {
    /// Int32.
    pub fn i32(mut self, v: i32) -> Body {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Int16.
    pub fn i16(mut self, v: i16) -> Body {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Int8.
    pub fn u8(mut self, v: u8) -> Body {
        self.0.push(v);
        self
    }
    /// NUL-terminated string.
    pub fn cstr(mut self, s: &[u8]) -> Body {
        self.0.extend_from_slice(s);
        self.0.push(0);
        self
    }
    /// Raw bytes.
    pub fn bytes(mut self, b: &[u8]) -> Body {
        self.0.extend_from_slice(b);
        self
    }
}

/// `R` with a code and payload.
pub fn authentication(out: &mut Vec<u8>, code: i32, payload: &[u8]) {
    message(out, b'R', &Body::default().i32(code).bytes(payload).0);
}

/// `Z`.
pub fn ready_for_query(out: &mut Vec<u8>, status: u8) {
    message(out, b'Z', &[status]);
}

/// `T` with `(name, type oid)` columns.
pub fn row_description(out: &mut Vec<u8>, columns: &[(&str, u32)]) {
    let mut b = Body::default().i16(columns.len() as i16);
    for (name, oid) in columns {
        b = b
            .cstr(name.as_bytes())
            .i32(0)
            .i16(0)
            .i32(*oid as i32)
            .i16(-1)
            .i32(-1)
            .i16(0);
    }
    message(out, b'T', &b.0);
}

/// `D` with text fields (`None` = NULL).
pub fn data_row(out: &mut Vec<u8>, fields: &[Option<&[u8]>]) {
    let mut b = Body::default().i16(fields.len() as i16);
    for f in fields {
        b = match f {
            Some(v) => b.i32(v.len() as i32).bytes(v),
            None => b.i32(-1),
        };
    }
    message(out, b'D', &b.0);
}

/// `C`.
pub fn command_complete(out: &mut Vec<u8>, tag: &str) {
    message(out, b'C', &Body::default().cstr(tag.as_bytes()).0);
}

/// `E` or `N` with `(code, value)` fields.
pub fn error_fields(out: &mut Vec<u8>, tag: u8, fields: &[(u8, &str)]) {
    let mut b = Body::default();
    for (code, value) in fields {
        b = b.u8(*code).cstr(value.as_bytes());
    }
    message(out, tag, &b.u8(0).0);
}

/// `S`.
pub fn parameter_status(out: &mut Vec<u8>, name: &str, value: &str) {
    message(
        out,
        b'S',
        &Body::default()
            .cstr(name.as_bytes())
            .cstr(value.as_bytes())
            .0,
    );
}

/// `K`.
pub fn backend_key_data(out: &mut Vec<u8>, pid: u32, key: &[u8]) {
    message(out, b'K', &Body::default().i32(pid as i32).bytes(key).0);
}

/// `A`.
pub fn notification(out: &mut Vec<u8>, pid: u32, channel: &str, payload: &str) {
    message(
        out,
        b'A',
        &Body::default()
            .i32(pid as i32)
            .cstr(channel.as_bytes())
            .cstr(payload.as_bytes())
            .0,
    );
}

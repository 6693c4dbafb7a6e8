//! Backend (server-to-client) messages, decoded zero-copy from a receive buffer.
//!
//! INTERFACE PINNED BY THE LEAD: the type and function signatures in this file are used by `conn`.
//! Implement the bodies; add private helpers, more impls and tests freely, but do not change the
//! public shapes below without telling the lead.

use super::{DecodeError, Limits};

/// The result of looking at the start of a receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// One complete message, and how many bytes of the buffer it occupied (type byte + length word +
    /// body). The caller consumes exactly that many bytes.
    Message(BackendMessage<'a>, usize),
    /// The buffer holds only a strict prefix of a message: at least this many more bytes are needed
    /// (for a prefix shorter than 5 bytes, the count to complete the header).
    NeedMore(usize),
}

/// Decodes the first message in `buf`, validating it completely (every count, length, terminator, and
/// the absence of trailing bytes), so that the accessors below cannot fail afterwards.
///
/// Returns [`Decoded::NeedMore`] for any strict prefix of a valid message; the length word is checked
/// against `limits` as soon as the 5-byte header is present, before waiting for the body.
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Decoded<'a>, DecodeError> {
    let _ = (buf, limits);
    todo!()
}

/// A backend message. Strings are borrowed bytes without their NUL terminator: the codec makes no
/// assumption about the client encoding.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    /// `R`: one of the authentication requests.
    Authentication(Authentication<'a>),
    /// `K`: process id and secret key for cancel requests (4 bytes in protocol 3.0, 4..=256 in 3.2).
    BackendKeyData {
        /// The backend's process id.
        pid: u32,
        /// The secret key.
        key: &'a [u8],
    },
    /// `S`: a run-time parameter's current value.
    ParameterStatus {
        /// Parameter name.
        name: &'a [u8],
        /// Its value.
        value: &'a [u8],
    },
    /// `Z`: the backend is ready for a new query.
    ReadyForQuery(TransactionStatus),
    /// `T`: the columns of the rows that follow.
    RowDescription(RowDescription<'a>),
    /// `D`: one row.
    DataRow(DataRow<'a>),
    /// `C`: a statement completed; its command tag (`SELECT 3`, `INSERT 0 1`).
    CommandComplete {
        /// The command tag.
        tag: &'a [u8],
    },
    /// `I`: the query string was empty.
    EmptyQueryResponse,
    /// `E`: an error.
    ErrorResponse(ErrorFields<'a>),
    /// `N`: a notice.
    NoticeResponse(ErrorFields<'a>),
    /// `A`: a notification from LISTEN/NOTIFY.
    NotificationResponse {
        /// The notifying backend's process id.
        pid: u32,
        /// The channel name.
        channel: &'a [u8],
        /// The payload (empty when none was given).
        payload: &'a [u8],
    },
    /// `v`: the server does not support the requested minor version or some `_pq_.` options.
    NegotiateProtocolVersion {
        /// The newest minor protocol version the server supports for the requested major version.
        newest_minor: u32,
        /// The option names the server did not recognize.
        unrecognized: StringList<'a>,
    },
    /// `G`: the server is ready to receive COPY data.
    CopyInResponse(CopyResponse<'a>),
    /// `H`: COPY data follows.
    CopyOutResponse(CopyResponse<'a>),
    /// `W`: both directions (replication).
    CopyBothResponse(CopyResponse<'a>),
    /// `d`: a chunk of COPY data.
    CopyData(&'a [u8]),
    /// `c`: the end of COPY data.
    CopyDone,
    /// `1`: Parse completed.
    ParseComplete,
    /// `2`: Bind completed.
    BindComplete,
    /// `3`: Close completed.
    CloseComplete,
    /// `n`: the described statement or portal returns no rows.
    NoData,
    /// `t`: the parameter types of a prepared statement.
    ParameterDescription(ParameterDescription<'a>),
    /// `s`: an Execute's row limit was reached.
    PortalSuspended,
    /// `V`: the result of a (legacy) function call; `None` for SQL NULL.
    FunctionCallResponse(Option<&'a [u8]>),
}

/// The `R` family. Codes without a payload PostgreSQL defines are decoded as [`Authentication::Other`]
/// with their raw payload, so the state machine can give libpq's "not supported" texts.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// 0: authentication succeeded.
    Ok,
    /// 2: Kerberos V5.
    KerberosV5,
    /// 3: send the password in clear text.
    CleartextPassword,
    /// 5: send the MD5-hashed password with this salt.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// 7: GSSAPI.
    Gss,
    /// 8: GSSAPI or SSPI continuation data.
    GssContinue(&'a [u8]),
    /// 9: SSPI.
    Sspi,
    /// 10: SASL, with the mechanisms the server offers.
    Sasl(StringList<'a>),
    /// 11: SASL challenge data.
    SaslContinue(&'a [u8]),
    /// 12: SASL outcome data.
    SaslFinal(&'a [u8]),
    /// Any other code (1, 4, 6, 99, ...), with its payload.
    Other {
        /// The request code.
        code: u32,
        /// The bytes after the code.
        payload: &'a [u8],
    },
}

/// The transaction status in `ReadyForQuery`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block.
    Failed,
}

/// A sequence of NUL-terminated strings (validated at decode time), ending with the body for
/// `NegotiateProtocolVersion` or with an empty string for `AuthenticationSASL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StringList<'a> {
    /// The raw bytes: each string followed by its NUL (for SASL, without the final empty string).
    bytes: &'a [u8],
    count: u32,
}

impl<'a> StringList<'a> {
    /// How many strings.
    pub fn len(&self) -> usize {
        self.count as usize
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The strings, without their terminators.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let bytes = self.bytes;
        bytes.split(|&b| b == 0).take(self.count as usize)
    }
}

/// The body of a `T` message. Validated at decode time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowDescription<'a> {
    /// The body after the Int16 field count.
    bytes: &'a [u8],
    count: u16,
}

/// One column of a [`RowDescription`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// Column name.
    pub name: &'a [u8],
    /// OID of the table, or 0.
    pub table_oid: u32,
    /// Attribute number in that table, or 0.
    pub column_id: i16,
    /// OID of the data type.
    pub type_oid: u32,
    /// `pg_type.typlen`.
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

impl<'a> RowDescription<'a> {
    /// Number of columns.
    pub fn len(&self) -> usize {
        self.count as usize
    }
    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The columns in order.
    pub fn fields(&self) -> impl Iterator<Item = FieldDescription<'a>> + 'a {
        let _ = self.bytes;
        std::iter::empty() // TODO
    }
}

/// The body of a `D` message: a field count and the fields. Validated at decode time, so iteration
/// cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRow<'a> {
    /// The body after the Int16 field count: (Int32 length, bytes)*.
    bytes: &'a [u8],
    count: u16,
}

impl<'a> DataRow<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.count as usize
    }
    /// Whether the row has no fields.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The raw field area (after the count): what `ranges` offsets refer to.
    pub fn body(&self) -> &'a [u8] {
        self.bytes
    }
    /// The fields in order; `None` is SQL NULL.
    pub fn fields(&self) -> DataRowFields<'a> {
        DataRowFields {
            bytes: self.bytes,
            remaining: self.count,
        }
    }
}

/// Iterator over the fields of a [`DataRow`].
#[derive(Clone, Debug)]
pub struct DataRowFields<'a> {
    bytes: &'a [u8],
    remaining: u16,
}

impl<'a> Iterator for DataRowFields<'a> {
    type Item = Option<&'a [u8]>;
    fn next(&mut self) -> Option<Self::Item> {
        let _ = (self.bytes, self.remaining);
        todo!()
    }
}

/// The fields of an `E` or `N` message: (code byte, NUL-terminated value)* ending in a zero byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorFields<'a> {
    bytes: &'a [u8],
}

impl<'a> ErrorFields<'a> {
    /// The `(code, value)` pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let _ = self.bytes;
        std::iter::empty() // TODO
    }
}

/// The body of `G`, `H` or `W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyResponse<'a> {
    /// 0 text, 1 binary.
    pub format: u8,
    /// Per-column format codes as raw big-endian Int16s.
    column_formats: &'a [u8],
}

impl<'a> CopyResponse<'a> {
    /// Number of columns.
    pub fn len(&self) -> usize {
        self.column_formats.len() / 2
    }
    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.column_formats.is_empty()
    }
    /// Per-column format codes.
    pub fn column_formats(&self) -> impl Iterator<Item = i16> + 'a {
        self.column_formats
            .chunks_exact(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
    }
}

/// The body of `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterDescription<'a> {
    oids: &'a [u8],
}

impl<'a> ParameterDescription<'a> {
    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.oids.len() / 4
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.oids.is_empty()
    }
    /// Parameter type OIDs.
    pub fn oids(&self) -> impl Iterator<Item = u32> + 'a {
        self.oids
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

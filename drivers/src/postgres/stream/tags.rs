//! The one-byte tags of the protocol messages the stream watches, named: the same byte means
//! different messages in each direction (`E` is `Execute` from the client and `ErrorResponse`
//! from the server), so each direction has its own set.

/// Messages the client sends.
pub(super) mod frontend {
    /// `Query`: a simple-protocol request, answered by one `ReadyForQuery`.
    pub(in super::super) const QUERY: u8 = b'Q';
    /// `Sync`: ends an extended-protocol request, answered by one `ReadyForQuery`.
    pub(in super::super) const SYNC: u8 = b'S';
    /// `Close` (a statement or portal).
    pub(in super::super) const CLOSE: u8 = b'C';
    /// `CopyDone`: the end of the copy data sent to the server.
    pub(in super::super) const COPY_DONE: u8 = b'c';
    /// `CopyFail`: the client gives up a copy to the server.
    pub(in super::super) const COPY_FAIL: u8 = b'f';
    /// `Parse`.
    pub(in super::super) const PARSE: u8 = b'P';
    /// `Bind`.
    pub(in super::super) const BIND: u8 = b'B';
    /// `Describe` (a statement or portal).
    pub(in super::super) const DESCRIBE: u8 = b'D';
    /// `Execute`.
    #[cfg(test)]
    pub(in super::super) const EXECUTE: u8 = b'E';
    /// `CopyData`.
    #[cfg(test)]
    pub(in super::super) const COPY_DATA: u8 = b'd';
}

/// Messages the server sends.
pub(super) mod backend {
    /// `ParseComplete`.
    pub(in super::super) const PARSE_COMPLETE: u8 = b'1';
    /// `ReadyForQuery`: a request is answered; its body is the transaction status.
    pub(in super::super) const READY_FOR_QUERY: u8 = b'Z';
    /// `ErrorResponse`: the server skips the rest of the request.
    pub(in super::super) const ERROR_RESPONSE: u8 = b'E';
    /// `CommandComplete`.
    pub(in super::super) const COMMAND_COMPLETE: u8 = b'C';
    /// `EmptyQueryResponse`.
    pub(in super::super) const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// `PortalSuspended`.
    pub(in super::super) const PORTAL_SUSPENDED: u8 = b's';
    /// `CopyInResponse`: a `COPY ... FROM STDIN` started.
    pub(in super::super) const COPY_IN_RESPONSE: u8 = b'G';
    /// `DataRow`.
    pub(in super::super) const DATA_ROW: u8 = b'D';
    /// `CopyData`.
    pub(in super::super) const COPY_DATA: u8 = b'd';
    /// `BackendKeyData`: the session's process id and cancel key.
    pub(in super::super) const BACKEND_KEY_DATA: u8 = b'K';
    /// `Authentication*` (`AuthenticationOk` and the requests for a password).
    #[cfg(test)]
    pub(in super::super) const AUTHENTICATION: u8 = b'R';
    /// `BindComplete`.
    #[cfg(test)]
    pub(in super::super) const BIND_COMPLETE: u8 = b'2';
}

/// The transaction status in the body of a `ReadyForQuery`.
pub(super) mod status {
    /// Outside any transaction block.
    pub(in super::super) const IDLE: u8 = b'I';
    /// Inside a transaction block.
    #[cfg(test)]
    pub(in super::super) const IN_TRANSACTION: u8 = b'T';
    /// Inside a failed transaction block.
    #[cfg(test)]
    pub(in super::super) const FAILED: u8 = b'E';
}

/// The `SSLRequest`, and the server's one-byte answer to it.
#[cfg(feature = "tls")]
pub(super) mod ssl {
    /// `SSLRequest`: length 8, then the magic code 80877103.
    pub(in super::super) const REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    /// TLS may begin.
    pub(in super::super) const ACCEPTED: u8 = b'S';
    /// The server does not do TLS.
    pub(in super::super) const REFUSED: u8 = b'N';
}

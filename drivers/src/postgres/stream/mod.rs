//! The socket under every pooled client.
//!
//! `tokio_postgres` hides two facts the pool needs: whether a request is still unanswered (its
//! future was dropped mid-flight) and whether the session sits inside a transaction. Both are
//! plain to see in the wire protocol: every simple `Query` and every `Sync` is answered by
//! exactly one `ReadyForQuery`, whose one-byte body is the transaction status. So the stream
//! below counts those messages as they pass. (The one exception, a `COPY ... FROM STDIN`,
//! during which the server skips `Sync`, is accounted for when its `CopyInResponse` arrives.)
//!
//! The stream also keeps the session's cancel key from the client. The server's
//! `BackendKeyData` (process id and secret key: what a cancel request must quote) reaches
//! `tokio_postgres` with a made-up secret, so the `CancelToken` anyone can take from the client
//! is inert: the server ignores a cancel request whose key is wrong. A token kept past the
//! borrow can therefore never cancel the next borrower's query. The real key stays in the
//! [`Tracker`]; only a connector made by [`Connector::for_cancel`] writes it, into a cancel
//! request for this very session, and only the borrow-scoped
//! [`CancelHandle`](super::CancelHandle) makes such a connector.
//!
//! To get hold of the stream, the driver hands `tokio_postgres` a [`Connector`] and tells it
//! to negotiate TLS "directly": `tokio_postgres` then passes the fresh socket to the connector
//! before sending anything. The connector does the real negotiation itself (the `SSLRequest`
//! of the configured [`SslMode`](super::SslMode), or nothing) and wraps whatever results, plain
//! or TLS, in a [`PgStream`](io::PgStream). The client keeps every other part of its connect
//! logic (hosts, timeouts, keepalives, cancel tokens).
//!
//! In PgBouncer mode the stream also keeps named statements client side and sends only the
//! unnamed one (see `unnamed`), so no request depends on the server connection an earlier one
//! reached.
//!
//! One concept a file: `tracker` (what the conversation has reached), `framer` (message
//! boundaries), `io` (the socket wrapper), `negotiate` (TLS), `tags` (the message tags),
//! `unnamed` (statements for transaction pooling).

mod framer;
mod io;
mod negotiate;
mod tags;
#[cfg(test)]
mod tests;
mod tracker;
mod unnamed;

pub(crate) use negotiate::{Connector, TlsRefused};
pub(crate) use tracker::{BackendKey, Tracker};

//! The [`Manager`] trait: everything the pool needs to know about one kind of connection.

use std::future::Future;

/// Whether a failed connect is worth another attempt.
///
/// The pool retries [`Transient`](ErrorKind::Transient) connect errors with exponential backoff
/// inside the caller's deadline, and hands [`Permanent`](ErrorKind::Permanent) ones back to the
/// caller at once, because retrying a wrong password or a missing database only delays the
/// answer.
///
/// Who gets a permanent error: when no connection is open and no other connect is in flight,
/// every queued caller gets it at once, since nothing else could serve any of them; otherwise
/// only the longest-waiting caller gets it, and the rest wait on for the open connections and
/// the other connects. A caller that queues after a permanent failure does not wait out the
/// backoff: it gets a fresh attempt at once (one at a time), so it hears the server's current
/// answer rather than a timeout. The backoff applies to transient errors only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The server may answer next time (refused, reset, timed out, too many connections).
    Transient,
    /// Retrying cannot help (bad credentials, unknown database, malformed address).
    Permanent,
}

/// Creates, validates and cleans connections of one kind for a [`Pool`](crate::Pool).
///
/// The pool never holds a lock while it runs any of these methods, and bounds every async
/// one with a timeout from the [`Config`](crate::Config), so a manager may block on I/O freely.
///
/// # Examples
///
/// A manager for an in-memory resource:
///
/// ```
/// use pool_core::{ErrorKind, Manager};
///
/// struct Buffers;
///
/// impl Manager for Buffers {
///     type Connection = Vec<u8>;
///     type Error = std::io::Error;
///
///     async fn connect(&self) -> Result<Vec<u8>, std::io::Error> {
///         Ok(Vec::with_capacity(4096))
///     }
///
///     async fn check(&self, _buf: &mut Vec<u8>) -> Result<(), std::io::Error> {
///         Ok(())
///     }
///
///     async fn reset(&self, buf: &mut Vec<u8>) -> Result<(), std::io::Error> {
///         buf.clear();
///         Ok(())
///     }
/// }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The pooled resource.
    type Connection: Send + 'static;
    /// What `connect`, `check` and `reset` fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection.
    ///
    /// Bounded by [`Config::connect_timeout`](crate::Config::connect_timeout). Runs in a task of
    /// its own, so a caller that gives up does not abort a connect another caller can use.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Validates a connection before it is handed out (a cheap round trip, say).
    ///
    /// Runs on checkout when [`Config::check_on_checkout`](crate::Config::check_on_checkout) is
    /// set and the connection was not used within
    /// [`Config::skip_check_within`](crate::Config::skip_check_within), and by the
    /// background keepalive. An error closes the connection and the caller gets another one.
    fn check(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Cleans a connection that a caller used, before anyone else gets it (roll back an open
    /// transaction, clear session state).
    ///
    /// `Drop` cannot await, so the pool runs this when the returned connection is next checked
    /// out, before `check`, bounded by [`Config::reset_timeout`](crate::Config::reset_timeout);
    /// a connection that sits idle instead is cleaned by the background task about 10 ms after
    /// its return, all such connections at once, so an open transaction does not hold its locks
    /// in the pool. A used connection is never handed out without it, unless
    /// [`needs_reset`](Self::needs_reset) says there is nothing to clean. An error closes the
    /// connection.
    ///
    /// The default does nothing.
    fn reset(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = conn;
        std::future::ready(Ok(()))
    }

    /// Returns a connection's session to the state of a newly opened one, whatever its user
    /// did: PostgreSQL's `DISCARD ALL`, MySQL's reset-connection, Redis's `RESET`. Runs instead
    /// of [`reset`](Self::reset) when [`Recycle`](crate::Recycle) asks for the full clean-up,
    /// with the same timing and bound.
    ///
    /// The default runs [`reset`](Self::reset).
    fn full_reset(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.reset(conn)
    }

    /// Cheap synchronous test run when a connection is returned and before
    /// [`reset`](Self::reset) would run: `false` says the returned connection is clean (the
    /// caller changed no session state), so the reset is skipped. Drivers that track session state (an open transaction, a
    /// changed setting) answer it from that; the others keep the default.
    ///
    /// The default says every used connection needs its reset.
    fn needs_reset(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        true
    }

    /// Cheap synchronous test run when a connection is opened, when it is returned, and again
    /// when it is handed out: `true` closes it instead of pooling or handing it out (the socket
    /// is closed, or a request was left half-done). Unlike [`check`](Self::check), it is never
    /// skipped. A connection broken as soon as it is opened counts as a failed connect, so a
    /// manager that keeps answering `true` meets the connect backoff rather than a busy loop.
    ///
    /// The default says no connection is ever broken.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Says whether a connect error is worth retrying; see [`ErrorKind`] for what the pool
    /// does with each answer.
    ///
    /// The default treats every error as [`ErrorKind::Transient`].
    fn classify(&self, error: &Self::Error) -> ErrorKind {
        let _ = error;
        ErrorKind::Transient
    }
}

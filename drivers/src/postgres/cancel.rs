//! [`CancelHandle`]: cancels what a borrowed connection runs, and can reach nothing after the
//! borrow ends.
//!
//! A PostgreSQL cancel request names a server process and quotes its secret key; whatever that
//! process runs when the request arrives is cancelled. On a pooled connection the process
//! outlives the borrow, so a cancel that is sent (or merely arrives) after the connection went
//! back would hit the next borrower's query. Three things together rule that out:
//!
//! - The client's own `CancelToken` is inert: it quotes a made-up key (see `stream`).
//! - A [`CancelHandle`] works only while the borrow it was taken from lasts. Checking that and
//!   noting that a cancel is on its way happen under one lock, the same one the pool's return
//!   path takes ([`Borrows::end`], called from `Manager::has_broken`), so no cancel can start
//!   once the connection is back.
//! - A connection that was sent a cancel during a borrow is closed when it comes back instead
//!   of being reused: the request may still be on its way (a cancel travels over a separate
//!   connection and PostgreSQL does not say when it lands), and with the session gone it can
//!   only reach a process nobody else uses.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_postgres::CancelToken;

use super::stream::{BackendKey, Connector};

/// The borrows of one connection, shared by the connection and the handles taken from it.
#[derive(Debug, Default)]
pub(crate) struct Borrows(Mutex<BorrowState>);

#[derive(Debug, Default)]
struct BorrowState {
    /// Counts borrows that ended; a handle works only while this is what it was when taken.
    ended: u64,
    /// A handle sent (or started to send) a cancel request: the session must not be reused.
    cancel_sent: bool,
    /// The connection was dropped.
    closed: bool,
}

impl Borrows {
    fn lock(&self) -> std::sync::MutexGuard<'_, BorrowState> {
        // Every change is a single assignment, so a poisoned lock still holds a valid state.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> u64 {
        self.lock().ended
    }

    /// Ends the current borrow, so the handles taken during it stop working, and says whether
    /// one of them ever sent a cancel request (then the connection must be closed).
    pub(crate) fn end(&self) -> bool {
        let mut state = self.lock();
        state.ended += 1;
        state.cancel_sent
    }

    /// The connection is gone; no handle works any more.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.ended += 1;
        state.closed = true;
    }

    /// Whether borrow `taken` still lasts.
    fn lasts(&self, taken: u64) -> bool {
        let state = self.lock();
        state.ended == taken && !state.closed
    }

    /// For a handle taken during borrow `taken`: if that borrow still lasts, notes that a
    /// cancel request is on its way, in the same step.
    fn begin_cancel(&self, taken: u64) -> Result<(), CancelError> {
        let mut state = self.lock();
        if state.ended != taken || state.closed {
            return Err(CancelError::BorrowEnded);
        }
        state.cancel_sent = true;
        Ok(())
    }
}

/// How a cancel request reaches the server.
#[derive(Clone)]
pub(crate) enum Route {
    /// Through the pool's connector, which negotiates TLS as the sessions do and puts the
    /// real key in place of the made-up one the token quotes.
    Swapped(Connector),
    /// The driver could not watch this session's stream (a Unix socket, or `hostaddr`
    /// without `host`), so the token quotes the real key and TLS is off; the connector is
    /// never asked for TLS.
    Direct(Connector),
    /// The server sent no cancel key (some proxies do not), so nothing can be cancelled.
    NoKey,
}

impl Route {
    /// Sends a cancel request for the session `token` belongs to.
    pub(crate) async fn send(&self, token: &CancelToken) -> Result<(), CancelError> {
        match self {
            Route::Swapped(connector) | Route::Direct(connector) => token
                .cancel_query(connector.clone())
                .await
                .map_err(CancelError::Send),
            Route::NoKey => Err(CancelError::NoKey),
        }
    }
}

/// Cancels the query running on the connection it was taken from, during the borrow it was
/// taken in, and never afterwards. Get one with
/// [`PgConnection::cancel_handle`](super::PgConnection::cancel_handle).
///
/// It is cheap to clone and may be moved to another task (a timer, a request handler that
/// noticed its client left). It sends the cancel request as the pool's own sessions connect:
/// the same host and port, the same `sslmode` and TLS settings.
///
/// Once the borrow ends (the connection goes back to the pool, or closes),
/// [`cancel`](Self::cancel) returns [`CancelError::BorrowEnded`] and sends nothing, so a
/// handle kept too long cannot cancel the next borrower's query. (A connection detached with
/// [`PooledConnection::take`](pool_core::PooledConnection::take) stays in its borrow until
/// it is dropped: nobody else can get it.) A connection that was sent a cancel is closed
/// when it goes back rather than reused, because the request may reach the server late;
/// that costs one reconnect per cancel.
///
/// `Debug` shows the server process id, never the secret key.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(pool: pool_drivers::postgres::Pool) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
///
/// let conn = pool.get().await?;
/// let cancel = conn.cancel_handle();
/// let watchdog = tokio::spawn(async move {
///     tokio::time::sleep(Duration::from_secs(5)).await;
///     cancel.cancel().await
/// });
/// // Fails with SQLSTATE 57014 (query_canceled) if it runs past 5 s.
/// let result = conn.query("SELECT pg_sleep(60)", &[]).await;
/// watchdog.abort();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    taken: u64,
    borrows: Arc<Borrows>,
    token: CancelToken,
    route: Route,
    pid: Option<i32>,
}

impl CancelHandle {
    pub(crate) fn new(
        borrows: Arc<Borrows>,
        token: CancelToken,
        route: Route,
        key: Option<BackendKey>,
    ) -> Self {
        CancelHandle {
            taken: borrows.current(),
            borrows,
            token,
            route,
            pid: key.map(|k| k.pid),
        }
    }

    /// Whether the borrow this handle was taken from still lasts, so
    /// [`cancel`](Self::cancel) would send a request. Only a hint: the borrow may end right
    /// after.
    pub fn is_current(&self) -> bool {
        self.borrows.lasts(self.taken)
    }

    /// Asks the server to cancel what the connection runs now. Like any PostgreSQL cancel, it
    /// is a request: if the query finished meanwhile, nothing happens to it; the canceled
    /// query fails with SQLSTATE `57014` (`query_canceled`).
    ///
    /// Whatever happens, the connection is closed when it goes back to the pool, not reused.
    ///
    /// # Errors
    ///
    /// - [`CancelError::BorrowEnded`]: the borrow is over; nothing was sent.
    /// - [`CancelError::NoKey`]: the server gave this session no cancel key; nothing was sent.
    /// - [`CancelError::Send`]: the request could not be delivered (connect, TLS); it may or
    ///   may not have reached the server.
    ///
    /// # Cancel safety
    ///
    /// The borrow is checked and the connection marked as cancelled before the first
    /// `.await`, in one step with respect to the pool's return path, so it is closed on
    /// return either way and a late request can reach nobody else. The request then goes out
    /// from a task of its own, which dropping the future does not stop: a cancel connection
    /// cut off half-way is dropped by a pooler in front of the server (PgBouncer 1.18 even
    /// fails on it), so once started, a request is always delivered or fails by itself.
    pub async fn cancel(&self) -> Result<(), CancelError> {
        if matches!(self.route, Route::NoKey) {
            return Err(CancelError::NoKey);
        }
        self.borrows.begin_cancel(self.taken)?;
        let route = self.route.clone();
        let token = self.token.clone();
        match tokio::spawn(async move { route.send(&token).await }).await {
            Ok(sent) => sent,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(CancelError::Interrupted),
        }
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the token: whoever reads it could cancel the session's queries (with the real
        // key; here the token holds a made-up one, but Debug should not depend on that).
        f.debug_struct("CancelHandle")
            .field("pid", &self.pid)
            .field("current", &self.is_current())
            .finish_non_exhaustive()
    }
}

/// Why [`CancelHandle::cancel`] did not send its request, or could not deliver it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// The borrow the handle was taken from has ended (the connection went back to the pool,
    /// or closed); nothing was sent.
    #[error("the borrow this cancel handle was taken from has ended; nothing was sent")]
    BorrowEnded,
    /// The server gave this session no cancel key (some proxies do not); nothing was sent.
    #[error("the server gave this session no cancel key; nothing was sent")]
    NoKey,
    /// The request could not be delivered: connecting to the server, or setting up TLS,
    /// failed. It may or may not have reached the server, so the connection is closed on
    /// return all the same.
    #[error("the cancel request could not be sent")]
    Send(#[source] tokio_postgres::Error),
    /// The runtime shut down while the request was on its way; it may or may not have
    /// reached the server.
    #[error("the runtime shut down while the cancel request was being sent")]
    Interrupted,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_movable<T: Clone + Send + Sync + 'static>() {}

    #[test]
    fn a_handle_can_go_anywhere() {
        assert_movable::<CancelHandle>();
    }

    #[test]
    fn a_cancel_after_the_borrow_is_refused_and_one_during_it_is_remembered() {
        let borrows = Borrows::default();
        let taken = borrows.current();
        assert!(!borrows.end(), "no cancel was sent");

        // A handle from the ended borrow starts nothing.
        assert!(matches!(
            borrows.begin_cancel(taken),
            Err(CancelError::BorrowEnded)
        ));
        let taken = borrows.current();
        borrows.begin_cancel(taken).unwrap();
        assert!(borrows.end(), "the cancel is reported on return");
        // And on every later look, so the connection is never handed out again.
        assert!(borrows.end());

        let taken = borrows.current();
        borrows.close();
        assert!(matches!(
            borrows.begin_cancel(taken),
            Err(CancelError::BorrowEnded)
        ));
    }
}

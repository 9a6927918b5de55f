//! [`PgConnection`]: a pooled client, the task that drives its socket, and its statement cache.

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Statement};

use super::cancel::{Borrows, CancelHandle, Route};
use super::statement_stats::StatementCounters;
use super::stream::{Connector, Tracker};

/// One pooled PostgreSQL session.
///
/// Derefs to [`tokio_postgres::Client`], so every client method works on it (and on the pool's
/// guard) directly. Adds [`prepare_cached`](Self::prepare_cached) and
/// [`cancel_handle`](Self::cancel_handle).
///
/// # Cancelling a query
///
/// Use [`cancel_handle`](Self::cancel_handle). The client's own
/// [`cancel_token`](Client::cancel_token), reachable through `Deref`, is inert by design: the
/// driver shows `tokio_postgres` a made-up secret key, so the server ignores the cancel
/// requests that token sends. The server process outlives the borrow, and a token kept past
/// it would otherwise cancel the next borrower's query. (Sessions over a Unix socket, or
/// `hostaddr` without `host`, are the exception: the driver cannot see their stream, so their
/// token stays live; do not keep it past the borrow.)
///
/// # Dropped requests
///
/// A request whose future was dropped mid-flight (a timeout, a `select!`, a client that hung
/// up) does not cost the connection: `tokio_postgres` reads and discards the reply, and before
/// the pool hands the connection out again, reset waits for that reply (until the request is
/// [`Config::drain_timeout`](super::Config::drain_timeout) old, 1 s by default) and rolls back
/// any transaction it left open. No cancel is sent for it: a cancel could arrive after the
/// reply and hit the next borrower's query. A connection whose reply does not come in time is
/// closed, and then its request is cancelled. So is one whose result was left part-read while
/// rows were still arriving: the rest could be any size.
///
/// Dropping it ends the session: the client closes, and the task that drives the socket ends
/// with it. If a request was still running (its future was dropped), the task is stopped at
/// once and the server is asked to cancel the request.
pub struct PgConnection {
    client: Client,
    driver: JoinHandle<()>,
    tracker: Option<Arc<Tracker>>,
    connector: Connector,
    statements: Mutex<StatementCache>,
    borrows: Arc<Borrows>,
    /// The manager's hit and miss counts, which this connection's lookups add to.
    statement_counters: Arc<StatementCounters>,
    retire_at: Option<Instant>,
}

impl PgConnection {
    pub(crate) fn new(
        client: Client,
        driver: JoinHandle<()>,
        tracker: Option<Arc<Tracker>>,
        connector: Connector,
        capacity: usize,
        statement_counters: Arc<StatementCounters>,
        retire_at: Option<Instant>,
    ) -> Self {
        PgConnection {
            client,
            driver,
            tracker,
            connector,
            statements: Mutex::new(StatementCache::new(capacity)),
            borrows: Arc::default(),
            statement_counters,
            retire_at,
        }
    }

    /// A handle that cancels what this connection runs, usable from any task, until the
    /// borrow ends: the way to cancel a query on a pooled connection (the client's own
    /// [`cancel_token`](Client::cancel_token) is inert, see above).
    ///
    /// Take it while holding the connection; it works through the pool's guard too
    /// (`conn.cancel_handle()`). Once the connection goes back to the pool, the handle refuses
    /// to send anything ([`CancelError::BorrowEnded`](super::CancelError::BorrowEnded)). If it
    /// did send a cancel, the pool closes the connection on its return rather than reuse it.
    pub fn cancel_handle(&self) -> CancelHandle {
        let key = self.tracker.as_ref().and_then(|t| t.key());
        CancelHandle::new(
            Arc::clone(&self.borrows),
            self.client.cancel_token(),
            self.cancel_route(),
            key,
        )
    }

    /// How a cancel request for this session reaches the server.
    fn cancel_route(&self) -> Route {
        match &self.tracker {
            Some(tracker) => match tracker.key() {
                Some(key) => Route::Swapped(self.connector.for_cancel(key)),
                None => Route::NoKey,
            },
            None => Route::Direct(self.connector.fresh()),
        }
    }

    /// Ends the current borrow (the pool took the connection back, or is about to hand it
    /// out): handles taken during it stop working. Says whether one of them sent a cancel,
    /// in which case the connection must not be reused.
    pub(crate) fn end_borrow(&self) -> bool {
        self.borrows.end()
    }

    /// When the pool retires this connection because the credentials it logged in with
    /// expire (their expiry less [`Config::retire_before_expiry`](super::Config)): from then
    /// on it is closed when it is returned or found idle, rather than reused. (A connection
    /// returned just before may still go straight to a caller waiting for one, and a borrow
    /// may last past it: the margin is what covers them.) `None` when no retirement was asked
    /// for or the credentials did not say when they expire.
    pub fn retire_at(&self) -> Option<Instant> {
        self.retire_at
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Prepares `query`, or returns the statement prepared for it earlier on this connection.
    ///
    /// Statements stay cached across checkouts (reset keeps them), until the cache is full
    /// and this one is the least recently used, or until a reset with
    /// [`Cleanup::discard_all`](super::Cleanup::discard_all) deallocates them. Run
    /// `DISCARD ALL` or `DEALLOCATE` yourself and you must call
    /// [`clear_statement_cache`](Self::clear_statement_cache).
    ///
    /// # Errors
    ///
    /// The server's error when the query does not prepare; nothing is cached then.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future caches nothing, so the cache stays consistent. The preparation may
    /// still be in flight; the pool waits for its reply before the connection is handed out
    /// again. If the server got as far as preparing it, the session keeps that statement,
    /// which nothing refers to, until it closes (`tokio_postgres` never reuses a statement
    /// name, so it cannot clash with a later one).
    pub async fn prepare_cached(&self, query: &str) -> Result<Statement, tokio_postgres::Error> {
        self.prepare_typed_cached(query, &[]).await
    }

    /// As [`prepare_cached`](Self::prepare_cached), with the types of some parameters given.
    ///
    /// # Errors
    ///
    /// The server's error when the query does not prepare; nothing is cached then.
    ///
    /// # Cancel safety
    ///
    /// As [`prepare_cached`](Self::prepare_cached).
    pub async fn prepare_typed_cached(
        &self,
        query: &str,
        types: &[Type],
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.cache().get(query, types) {
            self.statement_counters.hit();
            return Ok(statement);
        }
        self.statement_counters.miss();
        let statement = self.client.prepare_typed(query, types).await?;
        // Evicted statements are dropped after the lock is released: their `Drop` talks to
        // the client.
        let evicted = self.cache().insert(query, types, statement.clone());
        drop(evicted);
        Ok(statement)
    }

    /// How many prepared statements are cached.
    pub fn statement_cache_len(&self) -> usize {
        self.cache().entries.len()
    }

    /// Forgets every cached statement (the server is asked to close those no one else holds).
    pub fn clear_statement_cache(&self) {
        let entries = std::mem::take(&mut self.cache().entries);
        drop(entries);
    }

    /// The statement cache, and `tokio_postgres`'s own cached type-lookup statements, are
    /// stale after the server deallocated every prepared statement.
    pub(crate) fn forget_server_statements(&self) {
        self.clear_statement_cache();
        self.client.clear_type_cache();
    }

    pub(crate) fn tracker(&self) -> Option<&Tracker> {
        self.tracker.as_deref()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, StatementCache> {
        // Every cache operation leaves it consistent, so a poisoned lock is still usable.
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.client.is_closed())
            .field("cached_statements", &self.statement_cache_len())
            .finish_non_exhaustive()
    }
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        self.borrows.close();
        let abandoned = self.tracker.as_ref().is_some_and(|t| t.abandoned());
        if !abandoned {
            // Dropping the client lets the task send Terminate and finish on its own.
            return;
        }
        // The server is still busy with a request nobody waits for: stop reading its answer
        // and ask the server to cancel it, so it does not run on holding locks. The session
        // ends with this connection, so the cancel cannot reach anyone else's query.
        self.driver.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let token = self.client.cancel_token();
            let route = self.cancel_route();
            runtime.spawn(async move {
                if let Err(e) = route.send(&token).await {
                    tracing::debug!(target: "pool_drivers::postgres", error = %e, "could not cancel an abandoned request");
                }
            });
        }
    }
}

/// Prepared statements by query text and parameter types, least recently used evicted first.
struct StatementCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<(String, Vec<Type>), (Statement, u64)>,
}

impl StatementCache {
    fn new(capacity: usize) -> Self {
        StatementCache {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, query: &str, types: &[Type]) -> Option<Statement> {
        self.tick += 1;
        let tick = self.tick;
        // The key is owned, so a lookup allocates; preparing costs a round trip, so this is
        // not where time goes.
        let entry = self.entries.get_mut(&(query.to_owned(), types.to_vec()))?;
        entry.1 = tick;
        Some(entry.0.clone())
    }

    /// Caches `statement`, and returns what had to make room.
    fn insert(&mut self, query: &str, types: &[Type], statement: Statement) -> Vec<Statement> {
        let mut evicted = Vec::new();
        if self.capacity == 0 {
            return evicted;
        }
        while self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            match oldest.and_then(|key| self.entries.remove(&key)) {
                Some((statement, _)) => evicted.push(statement),
                None => break,
            }
        }
        self.tick += 1;
        self.entries
            .insert((query.to_owned(), types.to_vec()), (statement, self.tick));
        evicted
    }
}

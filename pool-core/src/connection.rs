//! A pooled connection: the resource with its metrics, and the guard handed to callers.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::manager::Manager;
use crate::shared::Shared;

/// Facts about one connection, kept by the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionMetrics {
    /// A number unique within the pool.
    pub id: u64,
    /// When it was opened.
    pub created: Instant,
    /// When it was last returned to the pool (or opened, if never used).
    pub last_used: Instant,
    /// When it last passed a check (or was opened).
    pub last_checked: Instant,
    /// How many times it was handed out.
    pub uses: u64,
    /// Taken off `max_lifetime` for this connection so a pool does not expire all at once.
    pub(crate) lifetime_cut: Duration,
    /// The pool generation it was opened in; older ones are closed when seen.
    pub(crate) generation: u64,
    /// Used since its last reset.
    pub(crate) dirty: bool,
}

impl ConnectionMetrics {
    pub(crate) fn new(
        id: u64,
        now: Instant,
        generation: u64,
        max_lifetime: Option<Duration>,
    ) -> Self {
        let lifetime_cut = max_lifetime.map_or(Duration::ZERO, |l| {
            let range = u64::try_from((l / 40).as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(fastrand::u64(0..=range))
        });
        ConnectionMetrics {
            id,
            created: now,
            last_used: now,
            last_checked: now,
            uses: 0,
            lifetime_cut,
            generation,
            dirty: false,
        }
    }

    /// How long ago it was opened.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// When it was last known good: used by a caller or checked.
    pub fn last_active(&self) -> Instant {
        self.last_used.max(self.last_checked)
    }

    pub(crate) fn expired(&self, now: Instant, max_lifetime: Option<Duration>) -> bool {
        max_lifetime.is_some_and(|limit| {
            now.saturating_duration_since(self.created)
                .saturating_add(self.lifetime_cut)
                >= limit
        })
    }
}

/// A connection together with what the pool knows about it.
pub(crate) struct Live<C> {
    pub(crate) conn: C,
    pub(crate) meta: ConnectionMetrics,
}

/// A connection checked out of a [`Pool`](crate::Pool).
///
/// Derefs to the connection. Dropping it returns the connection to the pool synchronously: no
/// task is spawned and no runtime is needed. On the way back the pool asks
/// [`Manager::has_broken`](crate::Manager::has_broken) and closes connections that are broken,
/// expired, used `max_uses` times or returned while the thread panics; others go straight to
/// the longest waiting caller, or to the idle set. [`Manager::reset`](crate::Manager::reset) runs
/// before the connection is handed out again.
pub struct PooledConnection<M: Manager> {
    live: Option<Live<M::Connection>>,
    shared: Arc<Shared<M>>,
}

impl<M: Manager> PooledConnection<M> {
    pub(crate) fn new(live: Live<M::Connection>, shared: Arc<Shared<M>>) -> Self {
        PooledConnection {
            live: Some(live),
            shared,
        }
    }

    fn live(&self) -> &Live<M::Connection> {
        self.live
            .as_ref()
            .expect("a PooledConnection holds its connection until dropped")
    }

    /// What the pool knows about this connection (as of the checkout).
    pub fn metrics(&self) -> &ConnectionMetrics {
        &self.live().meta
    }

    /// Detaches the connection from the pool, which frees its slot for a new one.
    pub fn take(mut this: Self) -> M::Connection {
        let live = this.live.take().expect("taken once");
        this.shared.detach(live.meta.id);
        live.conn
    }
}

impl<M: Manager> Deref for PooledConnection<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.live().conn
    }
}

impl<M: Manager> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .live
            .as_mut()
            .expect("a PooledConnection holds its connection until dropped")
            .conn
    }
}

impl<M: Manager> Drop for PooledConnection<M> {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            self.shared.release(live);
        }
    }
}

impl<M: Manager> fmt::Debug for PooledConnection<M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("conn", &self.live().conn)
            .field("metrics", &self.live().meta)
            .finish()
    }
}

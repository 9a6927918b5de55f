//! [`ReadPool`]: reads spread over replicas, around the ones that are down.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pool_core::{Error as PoolError, Manager, Pool, PooledConnection};

use crate::balance::{Balance, Fallback};
use crate::error::Error;
use crate::lag::{spawn_watch, LagLimit};
use crate::replica::{Probe, Replica};
use crate::replication::Replication;

/// Replicas for reads: balanced as [`Balance`] says, a replica whose connects or checks fail
/// taken out of rotation and probed in the background until it answers, a replica past the
/// [`LagLimit`] (if one is set) out of rotation until it catches up, and reads sent to the
/// primary (or failed, as [`Fallback`] says) while no replica is healthy. Cheap to clone.
pub struct ReadPool<M: Manager> {
    inner: Arc<Inner<M>>,
}

struct Inner<M: Manager> {
    replicas: Vec<Arc<Replica<M>>>,
    primary: OnceLock<Pool<M>>,
    balance: Balance,
    fallback: Fallback,
    replica_timeout: Duration,
    probe: Probe,
    next: AtomicUsize,
    /// The lag watch waiting to be started by the first read, which runs on a runtime (the
    /// pool may be built outside one).
    lag_watch: Mutex<Option<LagWatchStart>>,
    lag_watch_pending: AtomicBool,
    lag_limit: OnceLock<LagLimit>,
}

type LagWatchStart = Box<dyn FnOnce() + Send>;

/// Where a [`ReadConnection`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The replica at this index of the [`ReadPool`].
    Replica(usize),
    /// The primary, because no replica was healthy or the caller had to see its own write.
    Primary,
}

/// A connection for reads, from a replica or, as a fallback, the primary. Returns to its pool
/// when dropped.
pub struct ReadConnection<M: Manager> {
    conn: PooledConnection<M>,
    source: Source,
}

impl<M: Manager> ReadConnection<M> {
    pub(crate) fn new(conn: PooledConnection<M>, source: Source) -> Self {
        ReadConnection { conn, source }
    }

    /// Where it came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The pooled connection underneath (its metrics, or `take`).
    pub fn into_inner(self) -> PooledConnection<M> {
        self.conn
    }
}

impl<M: Manager> std::fmt::Debug for ReadConnection<M>
where
    M::Connection: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadConnection")
            .field("source", &self.source)
            .field("conn", &*self.conn)
            .finish()
    }
}

impl<M: Manager> Deref for ReadConnection<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.conn
    }
}

impl<M: Manager> DerefMut for ReadConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.conn
    }
}

impl<M: Manager> Clone for ReadPool<M> {
    fn clone(&self) -> Self {
        ReadPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M: Manager> std::fmt::Debug for ReadPool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPool")
            .field("replicas", &self.inner.replicas.len())
            .field("healthy", &self.healthy())
            .field("balance", &self.inner.balance)
            .field("fallback", &self.inner.fallback)
            .field("lag_limit", &self.inner.lag_limit.get())
            .finish()
    }
}

impl<M: Manager> ReadPool<M> {
    /// Reads over `replicas`, round-robin, falling back to the primary once one is given
    /// (by [`with_primary`](Self::with_primary) or [`DatabasePools`](crate::DatabasePools)).
    pub fn new(replicas: Vec<Pool<M>>) -> Self {
        ReadPool::configured(
            replicas,
            Balance::default(),
            Fallback::default(),
            Duration::from_secs(5),
        )
    }

    /// Reads over `replicas` with these settings. `replica_timeout` bounds how long a read
    /// waits on one replica before it tries the next one (or the fallback).
    pub fn configured(
        replicas: Vec<Pool<M>>,
        balance: Balance,
        fallback: Fallback,
        replica_timeout: Duration,
    ) -> Self {
        ReadPool {
            inner: Arc::new(Inner {
                replicas: replicas
                    .into_iter()
                    .enumerate()
                    .map(|(i, pool)| Arc::new(Replica::new(i, pool)))
                    .collect(),
                primary: OnceLock::new(),
                balance,
                fallback,
                replica_timeout,
                probe: Probe {
                    initial: Duration::from_millis(100),
                    max: Duration::from_secs(5),
                    timeout: replica_timeout,
                },
                next: AtomicUsize::new(0),
                lag_watch: Mutex::new(None),
                lag_watch_pending: AtomicBool::new(false),
                lag_limit: OnceLock::new(),
            }),
        }
    }

    /// Sets the primary that reads fall back to; the first one set stays.
    pub fn with_primary(self, primary: Pool<M>) -> Self {
        let _ = self.inner.primary.set(primary);
        self
    }

    /// The replicas' pools, in the order given.
    pub fn replicas(&self) -> impl Iterator<Item = &Pool<M>> {
        self.inner.replicas.iter().map(|r| &r.pool)
    }

    /// Whether the replica at `index` is in rotation.
    pub fn is_healthy(&self, index: usize) -> bool {
        self.inner.replicas.get(index).is_some_and(|r| r.is_up())
    }

    /// Whether the replica at `index` is out of rotation for lagging past the
    /// [`LagLimit`](Self::with_lag_limit).
    pub fn is_lagging(&self, index: usize) -> bool {
        self.inner
            .replicas
            .get(index)
            .is_some_and(|r| r.is_lagging())
    }

    /// The lag limit, if one was set.
    pub fn lag_limit(&self) -> Option<&LagLimit> {
        self.inner.lag_limit.get()
    }

    /// How many replicas are in rotation.
    pub fn healthy(&self) -> usize {
        self.inner.replicas.iter().filter(|r| r.is_up()).count()
    }

    /// The primary reads fall back to, if one was set.
    pub fn primary(&self) -> Option<&Pool<M>> {
        self.inner.primary.get()
    }

    /// Checks out a connection for reads from a healthy replica, trying the others in turn if
    /// it cannot be had within the replica timeout, then the fallback.
    ///
    /// # Errors
    ///
    /// [`Error::NoReplica`] when no replica could serve and the fallback is
    /// [`Fallback::Fail`] (or no primary was set); the primary's errors when it is the
    /// fallback; [`pool_core::Error::Closed`] and [`pool_core::Error::Rejected`] from a replica
    /// at once (as [`Error::Pool`]).
    ///
    /// # Cancel safety
    ///
    /// As [`Pool::get`]: dropping the future loses nothing.
    pub async fn get(&self) -> Result<ReadConnection<M>, Error<M::Error>> {
        if self.inner.lag_watch_pending.load(Ordering::Relaxed) {
            self.start_lag_watch();
        }
        for replica in self.order() {
            match replica.pool.get_timeout(self.inner.replica_timeout).await {
                Ok(conn) => return Ok(ReadConnection::new(conn, Source::Replica(replica.index))),
                Err(e @ (PoolError::Closed | PoolError::Rejected { .. })) => {
                    return Err(Error::Pool(e))
                }
                // A busy replica is healthy; one that cannot connect, or holds no connection
                // after the whole wait (it accepts but does not answer), is not.
                Err(e)
                    if e.is_unavailable()
                        || matches!(e, PoolError::Connect(_))
                        || replica.pool.status().size == 0 =>
                {
                    replica.mark_down(&e, self.inner.probe);
                }
                Err(_) => {}
            }
        }
        self.fall_back().await
    }

    fn start_lag_watch(&self) {
        let start = self
            .inner
            .lag_watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        self.inner.lag_watch_pending.store(false, Ordering::Relaxed);
        if let Some(start) = start {
            start();
        }
    }

    /// A read served by the primary, or [`Error::NoReplica`].
    pub(crate) async fn fall_back(&self) -> Result<ReadConnection<M>, Error<M::Error>> {
        match (self.inner.fallback, self.inner.primary.get()) {
            (Fallback::Primary, Some(primary)) => primary
                .get()
                .await
                .map(|conn| ReadConnection::new(conn, Source::Primary))
                .map_err(Error::Pool),
            _ => Err(Error::NoReplica {
                replicas: self.inner.replicas.len(),
            }),
        }
    }

    /// The replica at `index`'s pool.
    pub(crate) fn replica_pool(&self, index: usize) -> Option<&Pool<M>> {
        self.inner.replicas.get(index).map(|r| &r.pool)
    }

    /// Healthy replicas, the preferred one first.
    fn order(&self) -> Vec<&Arc<Replica<M>>> {
        let replicas = &self.inner.replicas;
        let n = replicas.len();
        if n == 0 {
            return Vec::new();
        }
        let first = match self.inner.balance {
            Balance::RoundRobin => self.inner.next.fetch_add(1, Ordering::Relaxed) % n,
            Balance::Random => fastrand::usize(..n),
            Balance::LeastConnections => replicas
                .iter()
                .filter(|r| r.is_up())
                .min_by_key(|r| r.pool.status().in_use)
                .map_or(0, |r| r.index),
        };
        (0..n)
            .map(|k| &replicas[(first + k) % n])
            .filter(|r| r.is_up())
            .collect()
    }
}

impl<M: Replication> ReadPool<M> {
    /// Measures each replica's lag every [`LagLimit::check_interval`] and keeps a replica past
    /// the limit out of rotation until it is within it again; while every replica lags, reads
    /// take the fallback. The measuring starts with the first read (on its runtime) and stops
    /// when the last clone of this read pool is dropped. Setting a limit twice keeps the first.
    pub fn with_lag_limit(self, limit: LagLimit) -> Self {
        if self.inner.lag_limit.set(limit).is_ok() && !self.inner.replicas.is_empty() {
            let replicas = self.inner.replicas.clone();
            *self
                .inner
                .lag_watch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(Box::new(move || spawn_watch(&replicas, limit)));
            self.inner.lag_watch_pending.store(true, Ordering::Relaxed);
        }
        self
    }
}

//! [`Partitions`]: pools keyed by tenant, user, application or service, sharing one
//! [`Budget`] of open connections, each within its own [`PartitionLimits`].

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use pool_core::{Config, Error, Manager, Pool, PooledConnection, Status};

use crate::budget::{Budget, LedgerId, Reclaim, Share};
use crate::error::{AcquireError, LimitError, PartitionError};
use crate::partition_manager::PartitionManager;

/// The pool of one partition.
pub type PartitionPool<M> = Pool<PartitionManager<M>>;

/// A connection checked out of a partition; derefs (twice) to the wrapped connection.
pub type PartitionGuard<M> = PooledConnection<PartitionManager<M>>;

/// What acquiring from a partition's pool fails with.
pub type PartitionPoolError<M> = Error<PartitionError<<M as Manager>::Error>>;

/// What acquiring through [`Partitions`] or a [`Router`](crate::Router) fails with.
pub type PartitionAcquireError<M> = AcquireError<PartitionError<<M as Manager>::Error>>;

/// One partition's own limits within the shared budget.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLimits {
    /// Most connections the partition opens at once, however much of the budget is free: a
    /// noisy partition never takes more. Default 10.
    pub max_connections: usize,
    /// Connections the budget guarantees the partition when it needs them, taking them back
    /// from partitions that borrowed them. The guarantees of all partitions together may not
    /// exceed the budget. They are not opened in advance. Default 0.
    pub min_connections: usize,
    /// Most callers queued for the partition's connections; one more is rejected at once with
    /// [`Error::Rejected`]. Default `None` (no limit).
    pub max_waiters: Option<usize>,
    /// How long a caller waits for one of the partition's connections in all. Default 30 s.
    pub acquire_timeout: Option<Duration>,
    /// How long one connect waits for room in the budget before it fails with
    /// [`PartitionError::BudgetExhausted`](crate::PartitionError::BudgetExhausted). The pool's
    /// connect timeout is extended by it, so that this error, not a bare timeout, is what a
    /// caller reads. Default 30 s.
    pub budget_wait: Duration,
}

impl Default for PartitionLimits {
    fn default() -> Self {
        PartitionLimits {
            max_connections: 10,
            min_connections: 0,
            max_waiters: None,
            acquire_timeout: Some(Duration::from_secs(30)),
            budget_wait: Duration::from_secs(30),
        }
    }
}

impl PartitionLimits {
    /// Limits of at most `max_connections`, the rest at their defaults.
    pub fn max(max_connections: usize) -> Self {
        PartitionLimits {
            max_connections,
            ..PartitionLimits::default()
        }
    }

    /// Sets [`min_connections`](Self::min_connections).
    pub fn min_connections(mut self, min: usize) -> Self {
        self.min_connections = min;
        self
    }

    /// Sets [`max_waiters`](Self::max_waiters).
    pub fn max_waiters(mut self, max: impl Into<Option<usize>>) -> Self {
        self.max_waiters = max.into();
        self
    }

    /// Sets [`acquire_timeout`](Self::acquire_timeout).
    pub fn acquire_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.acquire_timeout = timeout.into();
        self
    }

    /// Sets [`budget_wait`](Self::budget_wait).
    pub fn budget_wait(mut self, wait: Duration) -> Self {
        self.budget_wait = wait;
        self
    }
}

/// Pools keyed by partition (a tenant, a user, an application, a service) that share one
/// [`Budget`]: together they never hold more connections open than its capacity, each stays
/// within its own [`PartitionLimits`], and the budget is shared fairly (see [`Budget`]): an
/// idle partition's share is lent to busy ones and taken back when it needs it.
///
/// Each partition is an ordinary [`Pool`] with its own manager (its own credentials, schema or
/// `search_path`), so a connection of one partition is never handed to another.
///
/// Cheap to clone: clones share the partitions.
///
/// # Examples
///
/// ```
/// # use pool_core::Manager;
/// # struct Tenant(&'static str);
/// # impl Manager for Tenant {
/// #     type Connection = &'static str;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<&'static str, std::io::Error> { Ok(self.0) }
/// #     async fn check(&self, _: &mut &'static str) -> Result<(), std::io::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pool_fleet::{Budget, PartitionLimits, Partitions};
///
/// let tenants = Partitions::new(Budget::new(10)?);
/// tenants.add("acme", Tenant("acme"), PartitionLimits::max(4))?;
/// tenants.add("globex", Tenant("globex"), PartitionLimits::max(4).min_connections(2))?;
///
/// let conn = tenants.get(&"acme").await?;
/// assert_eq!(**conn, "acme");
/// assert_eq!(tenants.budget().status().held, 1);
/// # Ok(())
/// # }
/// ```
pub struct Partitions<K, M: Manager> {
    inner: Arc<Inner<K, M>>,
}

struct Inner<K, M: Manager> {
    budget: Budget,
    base: Config,
    partitions: RwLock<HashMap<K, Arc<Partition<M>>>>,
}

/// One partition: its pool and its account in the budget.
struct Partition<M: Manager> {
    pool: PartitionPool<M>,
    ledger: LedgerId,
    limits: PartitionLimits,
}

impl<M: Manager> Reclaim for Partition<M> {
    fn reclaim_idle(&self) {
        self.pool.retain(|conn, _| !conn.recalled());
    }
}

/// How one partition stands, from [`Partitions::status`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PartitionStatus {
    /// Its pool's counts.
    pub pool: Status,
    /// Its part of the budget.
    pub share: Share,
    /// Its limits.
    pub limits: PartitionLimits,
}

/// Why a partition could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddPartitionError {
    /// A partition with this key exists already.
    #[error("a partition with this key exists already")]
    Exists,
    /// Its limits cannot work with the budget.
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// The pool's configuration (the base with the limits applied) was refused.
    #[error(transparent)]
    Config(pool_core::ConfigError),
}

impl<K, M: Manager> Clone for Partitions<K, M> {
    fn clone(&self) -> Self {
        Partitions {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: fmt::Debug + Eq + Hash, M: Manager> fmt::Debug for Partitions<K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let partitions = self
            .inner
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Partitions")
            .field("budget", &self.inner.budget)
            .field("partitions", &partitions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<K, M> Partitions<K, M>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    M: Manager,
{
    /// Partitions sharing `budget`, their pools built with the default [`Config`] and each
    /// partition's limits.
    pub fn new(budget: Budget) -> Self {
        Self::with_config(budget, Config::default())
    }

    /// Like [`new`](Self::new), building every partition's pool from `base` (lifetimes,
    /// checks, timeouts) with the partition's limits applied over it.
    pub fn with_config(budget: Budget, base: Config) -> Self {
        Partitions {
            inner: Arc::new(Inner {
                budget,
                base,
                partitions: RwLock::new(HashMap::new()),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<K, Arc<Partition<M>>>> {
        // No code that can panic runs under this lock.
        self.inner
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The shared budget.
    pub fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    /// Adds a partition whose connections `manager` makes, within `limits`, and returns its
    /// pool. No connection is opened yet.
    ///
    /// Keep these `Partitions` (or a clone) while the pool is used: through them the budget
    /// closes the partition's idle connections when it takes its share back. Without them, it
    /// can only take back connections as they are returned.
    ///
    /// # Errors
    ///
    /// [`AddPartitionError::Exists`] for a key in use, [`AddPartitionError::Limits`] when the
    /// limits cannot work (a zero maximum, a minimum above the maximum, guarantees beyond the
    /// budget), [`AddPartitionError::Config`] when the resulting pool configuration is invalid.
    pub fn add(
        &self,
        key: K,
        manager: M,
        limits: PartitionLimits,
    ) -> Result<PartitionPool<M>, AddPartitionError> {
        let mut partitions = self
            .inner
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if partitions.contains_key(&key) {
            return Err(AddPartitionError::Exists);
        }
        let mut config = self.inner.base.clone();
        config.max_size = limits.max_connections;
        config.min_idle = 0;
        config.initial_size = 0;
        config.max_waiters = limits.max_waiters;
        config.acquire_timeout = limits.acquire_timeout;
        config.connect_timeout = config.connect_timeout.saturating_add(limits.budget_wait);
        let budget = &self.inner.budget;
        budget.check_limits(limits.min_connections, limits.max_connections)?;
        config.validate().map_err(AddPartitionError::Config)?;
        let ledger = budget.open_ledger(limits.min_connections, limits.max_connections)?;
        let manager = PartitionManager::new(manager, budget.clone(), ledger, limits.budget_wait);
        let pool = Pool::builder(manager)
            .config(config)
            .build_lazy()
            .map_err(|e| match e {
                pool_core::BuildError::Config(e) => AddPartitionError::Config(e),
                // A lazy build opens no connection, so only its configuration can fail.
                _ => AddPartitionError::Config(pool_core::ConfigError {
                    field: "pool",
                    problem: "could not be built",
                }),
            })?;
        let partition = Arc::new(Partition {
            pool: pool.clone(),
            ledger,
            limits,
        });
        let reclaim: Weak<dyn Reclaim> = Arc::downgrade(&partition) as Weak<dyn Reclaim>;
        budget.set_reclaim(ledger, reclaim);
        partitions.insert(key, partition);
        Ok(pool)
    }

    /// Removes a partition: its pool is closed (connections in use close when returned) and
    /// its guarantee and share go to the others. Returns whether it existed.
    pub fn remove(&self, key: &K) -> bool {
        let removed = self
            .inner
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        match removed {
            Some(partition) => {
                partition.pool.close();
                self.inner.budget.close_ledger(partition.ledger);
                true
            }
            None => false,
        }
    }

    /// The pool of the partition `key`.
    pub fn pool(&self, key: &K) -> Option<PartitionPool<M>> {
        self.read().get(key).map(|p| p.pool.clone())
    }

    /// Whether a partition `key` exists.
    pub fn contains(&self, key: &K) -> bool {
        self.read().contains_key(key)
    }

    /// The keys of every partition, in no particular order.
    pub fn keys(&self) -> Vec<K> {
        self.read().keys().cloned().collect()
    }

    /// Checks out a connection of the partition `key`, as [`Pool::get`] does.
    ///
    /// # Errors
    ///
    /// [`AcquireError::UnknownPartition`] for a key with no partition; otherwise as
    /// [`Pool::get`] (in [`AcquireError::Pool`]); a connect that found no room in the budget within
    /// [`PartitionLimits::budget_wait`] shows as
    /// [`PartitionError::BudgetExhausted`](crate::PartitionError::BudgetExhausted) inside the
    /// timeout.
    ///
    /// # Cancel safety
    ///
    /// As [`Pool::get`]: dropping the future loses nothing; a connect it started, waiting for
    /// room in the budget or not, finishes for the partition's pool.
    pub async fn get(&self, key: &K) -> Result<PartitionGuard<M>, PartitionAcquireError<M>> {
        let pool = self.pool(key).ok_or(AcquireError::UnknownPartition)?;
        Ok(pool.get().await?)
    }

    /// Every partition with how it stands, in no particular order.
    pub fn status(&self) -> Vec<(K, PartitionStatus)> {
        let partitions: Vec<_> = self
            .read()
            .iter()
            .map(|(k, p)| (k.clone(), Arc::clone(p)))
            .collect();
        partitions
            .into_iter()
            .map(|(key, p)| {
                let status = PartitionStatus {
                    pool: p.pool.status(),
                    share: self.inner.budget.share(p.ledger),
                    limits: p.limits.clone(),
                };
                (key, status)
            })
            .collect()
    }

    /// Closes every partition's pool.
    pub fn close_all(&self) {
        for p in self.read().values() {
            p.pool.close();
        }
    }
}

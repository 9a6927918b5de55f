//! The crate's errors: each names what went wrong in its own words, the cause behind
//! [`source`](std::error::Error::source).

use std::time::Duration;

/// Any error a loader or a pool builder returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why [`PoolRegistry::get`](crate::PoolRegistry::get) gave no pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry was built from a list of names and this is not one of them.
    #[error("no pool is configured under the name {name:?}")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The loader failed to make the pool; the next call tries again.
    #[error("could not make the pool {name:?}")]
    Load {
        /// The name asked for.
        name: String,
        /// The loader's error.
        #[source]
        source: BoxError,
    },
    /// [`PoolRegistry::close_all`](crate::PoolRegistry::close_all) was called.
    #[error("the pool registry is closed")]
    Closed,
}

/// A budget or a partition was configured with limits that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {problem}")]
pub struct LimitError {
    /// The setting at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl LimitError {
    pub(crate) fn new(field: &'static str, problem: impl Into<String>) -> Self {
        LimitError {
            field,
            problem: problem.into(),
        }
    }
}

/// What a partition's connect fails with: no room in the shared budget, or the wrapped
/// manager's own error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError<E> {
    /// The shared budget had no connection to spare for this partition within its
    /// [`budget_wait`](crate::PartitionLimits::budget_wait): every connection of the budget is
    /// held by partitions at or below their fair share.
    #[error("the shared budget of {capacity} connections had none to spare within {waited:?}")]
    BudgetExhausted {
        /// The budget's capacity.
        capacity: usize,
        /// How long the connect waited for room.
        waited: Duration,
    },
    /// The wrapped manager failed; shown as that error.
    #[error(transparent)]
    Backend(E),
}

/// Why a [`ShardRouter`](crate::ShardRouter) could not be built or grown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// No shard was given.
    #[error("a shard router needs at least one shard")]
    NoShards,
    /// Range bounds were not one fewer than the shards, or not strictly increasing.
    #[error("range bounds {problem}")]
    Ranges {
        /// What is wrong with them.
        problem: String,
    },
    /// The shard at this position (counted from zero) could not be made from its URL; the URL
    /// itself is not repeated, since it may hold a password.
    #[error("could not make shard {index} from its URL")]
    Shard {
        /// Its position in the list.
        index: usize,
        /// Why.
        #[source]
        source: BoxError,
    },
}

/// Why no connection came from [`Partitions`](crate::Partitions) or a
/// [`Router`](crate::Router).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError<E: std::error::Error + 'static> {
    /// No partition has the key asked for.
    #[error("no partition has this key")]
    UnknownPartition,
    /// The router found no partition to send the caller to (none matched, or every candidate
    /// failed).
    #[error("no partition to route to")]
    NoRoute,
    /// The chosen partition's pool failed; shown as that error.
    #[error(transparent)]
    Pool(#[from] pool_core::Error<E>),
}

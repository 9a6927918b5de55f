//! Many pools, one budget: a registry of named pools, partitions that share one maximum of
//! open connections, routing among partitions, and a shard router; all built on
//! [`pool_core`]'s public API.
//!
//! - [`PoolRegistry`]: named pools made on first use (from a closure, a map of configurations
//!   or environment prefixes), listed, reported on and closed together.
//! - [`Partitions`] with a [`Budget`]: a pool per tenant, user, application or service, all
//!   together within one maximum of open connections, each within its own
//!   [`PartitionLimits`], the budget shared fairly.
//! - [`Router`]: which partition serves a request: by key, least connections, round-robin,
//!   random or a closure, with a preferred partition, a fallback and sticky sessions.
//! - [`ShardRouter`]: each shard key to its shard (a pool, a read/write pair, anything), by a
//!   stable hash or by ranges; adding a shard is explicit.
//!
//! # What a client-side pool can and cannot limit
//!
//! A partition's pool is in the application, not in the database, so it limits what passes
//! through it and nothing else:
//!
//! | can limit, per partition | how |
//! |---|---|
//! | open connections | [`PartitionLimits::max_connections`], and all partitions together by the [`Budget`] |
//! | guaranteed connections | [`PartitionLimits::min_connections`], taken back from borrowers when needed |
//! | queued callers | [`PartitionLimits::max_waiters`] |
//! | time to get a connection | [`PartitionLimits::acquire_timeout`], [`PartitionLimits::budget_wait`] |
//! | time per statement | a per-session setting the partition's connections are opened with (PostgreSQL: `options=-c%20statement_timeout%3D5s` in the URL, or `ALTER ROLE ... SET statement_timeout`) |
//!
//! It cannot limit what the server spends on a partition's queries: CPU, memory, disk and
//! network I/O, locks held, temporary files, or the work of other clients of the same server.
//! One expensive query on one connection can still slow every partition. Those need the
//! server's own controls (PostgreSQL roles' settings and connection limits, resource groups,
//! separate servers) or a proxy in front of it.

mod budget;
mod error;
mod partition_manager;
mod partitions;
mod registry;
mod routing;
mod shards;

pub use budget::{Budget, BudgetPermit, BudgetStatus, Share};
pub use error::{AcquireError, BoxError, LimitError, PartitionError, RegistryError, ShardError};
pub use partition_manager::{PartitionConnection, PartitionManager};
pub use partitions::{
    AddPartitionError, PartitionAcquireError, PartitionGuard, PartitionLimits, PartitionPool,
    PartitionPoolError, PartitionStatus, Partitions,
};
pub use registry::{PoolRegistry, PoolReport, PoolState};
pub use routing::{Candidate, Fallback, Pick, Route, Router, StickySession, Strategy};
pub use shards::{ShardKey, ShardRouter};

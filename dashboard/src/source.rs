//! [`Source`]: one pool the dashboard shows, with its place among role pools if it has one.

use pool_core::export::Snapshot;
use pool_core::{Manager, Pool};

/// Where a pool's figures come from, whatever its manager.
pub(crate) struct Source {
    /// Its role among a database's pools (`write`, `replica 0`, `admin`), if it has one.
    pub(crate) role: Option<String>,
    /// Takes the pool's snapshot.
    pub(crate) snapshot: Box<dyn Fn() -> Snapshot + Send + Sync>,
    /// Whether a replica is in its read pool's rotation; `None` for other pools.
    pub(crate) in_rotation: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl Source {
    /// A pool shown on its own.
    pub(crate) fn pool<M: Manager>(pool: &Pool<M>, role: Option<String>) -> Self {
        let pool = pool.clone();
        Source {
            role,
            snapshot: Box::new(move || pool.snapshot()),
            in_rotation: None,
        }
    }
}

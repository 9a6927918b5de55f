//! [`Snapshot`]: what one pool looks like at a moment, for exports and dashboards.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::health::Health;
use crate::leak::Leak;
use crate::manager::Manager;
use crate::pool::Pool;
use crate::stats::{Stats, Status};

/// One pool's figures at one moment: its name, health, counts, statistics and current leaks.
/// Taken by [`Pool::snapshot`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// [`Config::name`](crate::Config::name), or `"pool"`.
    pub name: String,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// [`Pool::health`].
    pub health: Health,
    /// [`Pool::status`].
    pub status: Status,
    /// [`Config::min_idle`](crate::Config::min_idle).
    pub min_idle: usize,
    /// [`Pool::stats`].
    pub stats: Stats,
    /// [`Pool::leaks`].
    pub leaks: Vec<Leak>,
}

impl Snapshot {
    /// A snapshot of these figures, taken now.
    pub fn new(
        name: impl Into<String>,
        health: Health,
        status: Status,
        min_idle: usize,
        stats: Stats,
        leaks: Vec<Leak>,
    ) -> Self {
        let taken_at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Snapshot {
            name: name.into(),
            taken_at_unix_ms,
            health,
            status,
            min_idle,
            stats,
            leaks,
        }
    }
}

impl<M: Manager> Pool<M> {
    /// The pool's figures now, for an export or a dashboard. Its parts are read one after
    /// the other, so counts that change meanwhile may differ by a few between them;
    /// [`status`](Snapshot::status) itself is consistent.
    pub fn snapshot(&self) -> Snapshot {
        let config = self.config();
        Snapshot::new(
            config.pool_name(),
            self.health(),
            self.status(),
            config.min_idle,
            self.stats(),
            self.leaks(),
        )
    }
}

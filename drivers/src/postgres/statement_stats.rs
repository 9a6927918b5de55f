//! [`StatementCacheStats`]: how often the prepared-statement cache of a pool's connections
//! saved a round trip.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hits and misses of [`PgConnection::prepare_cached`](super::PgConnection::prepare_cached)
/// over all the connections of one [`Manager`](super::Manager), read with
/// [`Manager::statement_cache_stats`](super::Manager::statement_cache_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StatementCacheStats {
    /// Statements found in the cache.
    pub hits: u64,
    /// Statements that had to be prepared on the server.
    pub misses: u64,
}

impl StatementCacheStats {
    /// The share of lookups served from the cache, from `0.0` to `1.0`; `0.0` before any.
    pub fn hit_rate(&self) -> f64 {
        match self.hits + self.misses {
            0 => 0.0,
            lookups => self.hits as f64 / lookups as f64,
        }
    }
}

/// The counters behind [`StatementCacheStats`], shared by a manager and its connections.
#[derive(Debug, Default)]
pub(crate) struct StatementCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl StatementCounters {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> StatementCacheStats {
        StatementCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

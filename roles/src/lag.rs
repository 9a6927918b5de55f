//! Replica lag: how far behind its primary a replica is ([`Lag`]), the bound past which a
//! [`ReadPool`](crate::ReadPool) stops reading from it ([`LagLimit`]), and the background
//! watch that takes lagging replicas out of rotation and brings them back.

use std::sync::{Arc, Weak};
use std::time::Duration;

use pool_core::Manager;

use crate::replica::Replica;
use crate::replication::Replication;

/// How far behind its primary a replica is, as its server reports it.
///
/// Either measure may be unknown (`None`), and then it does not count against a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    /// Replication data received but not yet replayed, in bytes (PostgreSQL: WAL received
    /// minus WAL replayed).
    pub bytes: Option<u64>,
    /// How long ago the last replayed change was made on the primary, while changes are
    /// waiting to be replayed; zero once everything received is replayed (so an idle primary
    /// does not make its replicas look late).
    pub time: Option<Duration>,
}

impl Lag {
    /// No lag at all: what a primary, or a replica that has replayed everything, reports.
    pub const NONE: Lag = Lag {
        bytes: Some(0),
        time: Some(Duration::ZERO),
    };
}

/// The most lag a replica may have and still serve reads, and how often it is measured.
///
/// A replica past either bound leaves read rotation (reads go to the other replicas, or to
/// the fallback) until a later measurement finds it within both again.
///
/// ```
/// use std::time::Duration;
/// use pool_roles::LagLimit;
///
/// let limit = LagLimit::bytes(16 * 1024 * 1024).with_time(Duration::from_secs(5));
/// assert_eq!(limit.max_bytes, Some(16 * 1024 * 1024));
/// assert_eq!(limit.check_interval, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct LagLimit {
    /// Most bytes received and not yet replayed. Default `None` (not bounded).
    pub max_bytes: Option<u64>,
    /// Most replay delay. Default `None` (not bounded).
    pub max_time: Option<Duration>,
    /// How often each replica's lag is measured. Default 1 s.
    pub check_interval: Duration,
    /// How long one measurement may wait for a connection and its answer; a replica that
    /// cannot be measured in time is left as it was (connect failures are the read pool's
    /// health check's business). Default 2 s.
    pub check_timeout: Duration,
}

impl Default for LagLimit {
    fn default() -> Self {
        LagLimit {
            max_bytes: None,
            max_time: None,
            check_interval: Duration::from_secs(1),
            check_timeout: Duration::from_secs(2),
        }
    }
}

impl LagLimit {
    /// At most `max` bytes behind.
    pub fn bytes(max: u64) -> Self {
        LagLimit {
            max_bytes: Some(max),
            ..LagLimit::default()
        }
    }

    /// At most `max` of replay delay.
    pub fn time(max: Duration) -> Self {
        LagLimit {
            max_time: Some(max),
            ..LagLimit::default()
        }
    }

    /// Also bounds the replay delay.
    pub fn with_time(mut self, max: Duration) -> Self {
        self.max_time = Some(max);
        self
    }

    /// Measures every `interval` instead of every second.
    pub fn every(mut self, interval: Duration) -> Self {
        self.check_interval = interval;
        self
    }

    /// Whether `lag` is past either bound.
    pub fn exceeded_by(&self, lag: &Lag) -> bool {
        let over_bytes = matches!((self.max_bytes, lag.bytes), (Some(max), Some(b)) if b > max);
        let over_time = matches!((self.max_time, lag.time), (Some(max), Some(t)) if t > max);
        over_bytes || over_time
    }
}

/// Measures every replica's lag each interval and sets its lagging flag, until the read pool
/// the replicas belong to is gone.
pub(crate) async fn watch<M: Replication>(replicas: Vec<Weak<Replica<M>>>, limit: LagLimit) {
    // A zero interval would spin; the read pool's settings cannot make one, but be safe.
    let interval = limit.check_interval.max(Duration::from_millis(1));
    loop {
        tokio::time::sleep(interval).await;
        let mut alive = false;
        for replica in &replicas {
            let Some(replica) = replica.upgrade() else {
                continue;
            };
            alive = true;
            measure(&replica, &limit).await;
        }
        if !alive {
            return;
        }
    }
}

async fn measure<M: Replication>(replica: &Arc<Replica<M>>, limit: &LagLimit) {
    let measured = tokio::time::timeout(limit.check_timeout, async {
        let mut conn = replica.pool.get_timeout(limit.check_timeout).await.ok()?;
        replica.pool.manager().replay_lag(&mut conn).await.ok()
    })
    .await;
    // Unmeasurable: the replica keeps its state; a replica that is down is the probe's.
    if let Ok(Some(lag)) = measured {
        replica.set_lagging(limit.exceeded_by(&lag), &lag);
    }
}

/// Starts the lag watch over `replicas` on the current runtime.
pub(crate) fn spawn_watch<M: Manager + Replication>(replicas: &[Arc<Replica<M>>], limit: LagLimit) {
    let replicas = replicas.iter().map(Arc::downgrade).collect();
    tokio::spawn(watch(replicas, limit));
}

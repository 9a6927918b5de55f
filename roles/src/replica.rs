//! One replica of a [`ReadPool`](crate::ReadPool): its pool, whether it is up (reachable and
//! not lagging), and the background probe that brings it back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use pool_core::{Manager, Pool};

/// How a replica marked down is probed until it answers again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    /// The first pause before probing; it doubles after each failed probe.
    pub(crate) initial: Duration,
    /// The longest pause between probes.
    pub(crate) max: Duration,
    /// How long one probe may wait for a connection.
    pub(crate) timeout: Duration,
}

pub(crate) struct Replica<M: Manager> {
    pub(crate) index: usize,
    pub(crate) pool: Pool<M>,
    down: AtomicBool,
    /// Set by the lag watch while the replica is past the read pool's [`LagLimit`].
    ///
    /// [`LagLimit`]: crate::LagLimit
    lagging: AtomicBool,
}

impl<M: Manager> Replica<M> {
    pub(crate) fn new(index: usize, pool: Pool<M>) -> Self {
        Replica {
            index,
            pool,
            down: AtomicBool::new(false),
            lagging: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        !self.down.load(Ordering::Relaxed) && !self.is_lagging()
    }

    pub(crate) fn is_lagging(&self) -> bool {
        self.lagging.load(Ordering::Relaxed)
    }

    /// Takes the replica out of rotation while `lagging`, and brings it back once not.
    pub(crate) fn set_lagging(&self, lagging: bool, lag: &crate::Lag) {
        if self.lagging.swap(lagging, Ordering::AcqRel) == lagging {
            return;
        }
        if lagging {
            tracing::warn!(target: "pool_roles", replica = self.index, bytes = ?lag.bytes, time = ?lag.time, "replica lags past its limit: out of rotation");
        } else {
            tracing::info!(target: "pool_roles", replica = self.index, bytes = ?lag.bytes, time = ?lag.time, "replica caught up: back in rotation");
        }
    }

    /// Takes the replica out of rotation and starts probing it in the background; it comes
    /// back once a probe gets a (checked) connection.
    pub(crate) fn mark_down(self: &Arc<Self>, why: &dyn std::fmt::Display, probe: Probe) {
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(target: "pool_roles", replica = self.index, error = %why, "replica marked down");
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(probe_until_up(Arc::downgrade(self), probe));
            }
            // No runtime to probe from: let the next read try it.
            Err(_) => self.down.store(false, Ordering::Release),
        }
    }
}

/// Probes with backoff until the replica answers, or until its read pool is gone.
async fn probe_until_up<M: Manager>(replica: Weak<Replica<M>>, probe: Probe) {
    let mut pause = probe.initial;
    loop {
        tokio::time::sleep(pause).await;
        let Some(replica) = replica.upgrade() else {
            return;
        };
        if replica.pool.get_timeout(probe.timeout).await.is_ok() {
            replica.down.store(false, Ordering::Release);
            tracing::info!(target: "pool_roles", replica = replica.index, "replica back in rotation");
            return;
        }
        pause = (pause * 2).min(probe.max);
    }
}

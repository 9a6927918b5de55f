//! [`Health`]: what the pool has lately seen of its server, cheap to read on every request.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

/// What the pool has lately seen of its server. Read it with
/// [`Pool::health`](crate::Pool::health), e.g. for a readiness probe.
///
/// Acquires, connects and the background checks update it; each change is logged as a
/// `tracing` event under the target `pool_core::health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// The last connect or check succeeded.
    Healthy,
    /// Connects or checks are failing, but the pool still holds connections that may work.
    Degraded,
    /// Connects are failing and the pool holds no connection, or an acquire gave up on a
    /// failing server.
    Unavailable,
}

impl Health {
    fn from_u8(v: u8) -> Health {
        match v {
            0 => Health::Healthy,
            1 => Health::Degraded,
            _ => Health::Unavailable,
        }
    }

    /// A lower-case name: `healthy`, `degraded`, `unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unavailable => "unavailable",
        }
    }
}

/// The pool's current [`Health`], and a signal for those waiting to see it recover.
pub(crate) struct HealthState {
    current: AtomicU8,
    /// Set by the first successful connect, for [`Retry::until_first_success`](crate::Retry).
    ever_connected: std::sync::atomic::AtomicBool,
    /// Woken each time the pool turns healthy again.
    pub(crate) recovered: Notify,
}

impl HealthState {
    pub(crate) fn new() -> Self {
        HealthState {
            current: AtomicU8::new(Health::Healthy as u8),
            ever_connected: std::sync::atomic::AtomicBool::new(false),
            recovered: Notify::new(),
        }
    }

    pub(crate) fn get(&self) -> Health {
        Health::from_u8(self.current.load(Ordering::Relaxed))
    }

    pub(crate) fn ever_connected(&self) -> bool {
        self.ever_connected.load(Ordering::Relaxed)
    }

    /// A connection was opened.
    pub(crate) fn connected(&self) {
        if !self.ever_connected.load(Ordering::Relaxed) {
            self.ever_connected.store(true, Ordering::Relaxed);
        }
        self.set(Health::Healthy);
    }

    /// A connection was handed out: the server answered lately. Costs one relaxed load when
    /// nothing changes, as it is on the hot path.
    #[inline]
    pub(crate) fn served(&self) {
        if self.current.load(Ordering::Relaxed) != Health::Healthy as u8 {
            self.set(Health::Healthy);
        }
    }

    /// Moves to `next`, logging the change and waking those waiting for a recovery.
    pub(crate) fn set(&self, next: Health) {
        let previous = Health::from_u8(self.current.swap(next as u8, Ordering::AcqRel));
        if previous == next {
            return;
        }
        match next {
            Health::Healthy => {
                tracing::info!(target: "pool_core::health", from = previous.as_str(), to = next.as_str(), "pool recovered");
                self.recovered.notify_waiters();
            }
            _ => {
                tracing::warn!(target: "pool_core::health", from = previous.as_str(), to = next.as_str(), "pool health changed");
            }
        }
    }

    /// Moves to `next` only if that is worse than where it is.
    pub(crate) fn worsen(&self, next: Health) {
        let previous = Health::from_u8(self.current.fetch_max(next as u8, Ordering::AcqRel));
        if (previous as u8) < (next as u8) {
            tracing::warn!(target: "pool_core::health", from = previous.as_str(), to = next.as_str(), "pool health changed");
        }
    }
}

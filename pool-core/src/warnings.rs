//! Soft limits: `tracing` warnings (and counters) before the pool meets a hard limit, once per
//! episode.

use std::time::Duration;

use crate::clock::{nanos, Nanos};

/// When the pool warns that it is nearing a hard limit. Each warning is a `tracing` event under
/// the target `pool_core::warning`, given once per episode (until the condition clears), and
/// counted in [`Stats::warnings`](crate::Stats::warnings).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct SoftLimits {
    /// Warn when at least this share of `max_size` stays in use for `busy_for`. Default 0.9.
    pub busy_share: f64,
    /// See `busy_share`. Default 30 s.
    pub busy_for: Duration,
    /// Warn when a caller waited longer than this share of `acquire_timeout` before it was
    /// served. Default 0.5.
    pub wait_share: f64,
    /// Warn when a connection comes back after its lifetime ended while it was in use (the pool
    /// cannot close a connection a caller holds). Default `true`.
    pub overdue: bool,
}

impl Default for SoftLimits {
    fn default() -> Self {
        SoftLimits {
            busy_share: 0.9,
            busy_for: Duration::from_secs(30),
            wait_share: 0.5,
            overdue: true,
        }
    }
}

impl SoftLimits {
    /// Sets the share of `max_size` in use that counts as busy.
    pub fn busy_share(mut self, share: f64) -> Self {
        self.busy_share = share;
        self
    }

    /// Sets how long the pool must stay busy before it warns.
    pub fn busy_for(mut self, window: Duration) -> Self {
        self.busy_for = window;
        self
    }

    /// Sets the share of `acquire_timeout` a wait may take before it is warned of.
    pub fn wait_share(mut self, share: f64) -> Self {
        self.wait_share = share;
        self
    }

    /// Sets whether connections returned past their lifetime are warned of.
    pub fn overdue(mut self, on: bool) -> Self {
        self.overdue = on;
        self
    }
}

/// Warnings given, one per episode, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Warnings {
    /// The pool stayed busy (see [`SoftLimits::busy_share`]).
    pub busy: u64,
    /// Callers waited long (see [`SoftLimits::wait_share`]).
    pub slow_waits: u64,
    /// Connections came back past their lifetime (see [`SoftLimits::overdue`]).
    pub overdue: u64,
}

/// Where the current episodes stand.
#[derive(Debug, Default)]
pub(crate) struct Episodes {
    busy_since: Option<Nanos>,
    busy_warned: bool,
    /// When the last long wait of the current slow-wait episode ended, if one is going on.
    slow_wait_at: Option<Nanos>,
}

impl Episodes {
    /// Looks at how busy the pool is now; warns when it has been busy for the window.
    pub(crate) fn busy(
        &mut self,
        limits: &SoftLimits,
        in_use: usize,
        max_size: usize,
        now: Nanos,
        count: &mut Warnings,
    ) {
        let busy = max_size > 0 && in_use as f64 >= limits.busy_share * max_size as f64;
        if !busy {
            self.busy_since = None;
            self.busy_warned = false;
            return;
        }
        let since = *self.busy_since.get_or_insert(now);
        if !self.busy_warned && now.saturating_sub(since) >= nanos(limits.busy_for) {
            self.busy_warned = true;
            count.busy += 1;
            tracing::warn!(
                target: "pool_core::warning",
                in_use,
                max_size,
                busy_s = limits.busy_for.as_secs_f64(),
                "{in_use} of {max_size} connections in use for {:?} or more: the pool is near its size",
                limits.busy_for,
            );
        }
    }

    /// Looks at how long a caller served at `now` waited; warns at the first long wait of an
    /// episode, which ends with a wait under the share, or once no caller has waited long for
    /// a whole `acquire_timeout`.
    pub(crate) fn waited(
        &mut self,
        limits: &SoftLimits,
        waited: Duration,
        acquire_timeout: Option<Duration>,
        now: Nanos,
        count: &mut Warnings,
    ) {
        let Some(timeout) = acquire_timeout else {
            return;
        };
        if waited <= timeout.mul_f64(limits.wait_share) {
            self.slow_wait_at = None;
            return;
        }
        let last = self.slow_wait_at.replace(now);
        if last.is_none_or(|last| now.saturating_sub(last) > nanos(timeout)) {
            count.slow_waits += 1;
            tracing::warn!(
                target: "pool_core::warning",
                waited_ms = waited.as_millis() as u64,
                timeout_ms = timeout.as_millis() as u64,
                "a caller waited {waited:?} for a connection, more than {:.0} % of the acquire \
                 timeout ({timeout:?})",
                limits.wait_share * 100.0,
            );
        }
    }
}

/// Warns of a connection that came back `late` past the end of its lifetime.
pub(crate) fn overdue(id: u64, late: Duration, count: &mut Warnings) {
    count.overdue += 1;
    tracing::warn!(
        target: "pool_core::warning",
        id,
        late_ms = late.as_millis() as u64,
        "connection {id} was in use {late:?} past the end of its lifetime",
    );
}

//! The background task's schedule: work by [`UpkeepLevel`], an interval that adapts to how much
//! work there is, and the [`Maintenance`] handle that stops, restarts and runs it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ConfigError;
use crate::maintenance;
use crate::manager::Manager;
use crate::shared::Shared;

/// How urgent a piece of background work is. A round serves every level that is due, highest
/// first; [`Urgent`](Self::Urgent) and [`High`](Self::High) work is due at once, even while
/// upkeep is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum UpkeepLevel {
    /// Routine: lifetime and idle expiry, keepalive checks, cleaning returned connections,
    /// refilling `min_idle`. Due every interval.
    Low,
    /// After a failed acquisition (a checkout check failed, or a connection handed out was
    /// found broken): every idle connection is checked. Due one `maintenance_interval_min`
    /// after the failure.
    Medium,
    /// After a configuration change: the idle connections are looked at under the new
    /// settings. Due at once.
    High,
    /// After [`Pool::signal_recovery`](crate::Pool::signal_recovery): connections of the old
    /// server are retired and the pool refilled. Due at once.
    Urgent,
}

impl UpkeepLevel {
    /// Every level, lowest first.
    pub const ALL: [UpkeepLevel; 4] = [
        UpkeepLevel::Low,
        UpkeepLevel::Medium,
        UpkeepLevel::High,
        UpkeepLevel::Urgent,
    ];

    /// A short stable name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            UpkeepLevel::Low => "low",
            UpkeepLevel::Medium => "medium",
            UpkeepLevel::High => "high",
            UpkeepLevel::Urgent => "urgent",
        }
    }
}

/// When each level of work is due, and how the routine interval stands.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// When work of each level (indexed by `UpkeepLevel as usize`) is due; `None` if none is
    /// queued. `Low` is always queued while upkeep runs.
    due: [Option<Instant>; 4],
    /// The routine interval now: halved (down to the floor) after a round that found work,
    /// doubled (up to the ceiling) after one that found none.
    pub(crate) interval: Duration,
    /// Stopped by [`Maintenance::stop`]: no round runs unless asked for.
    pub(crate) stopped: bool,
    /// Rounds begun and ended since the pool was built; [`Maintenance::run_now`] waits on these.
    pub(crate) begun: u64,
    pub(crate) ended: u64,
    /// Rounds run per level.
    pub(crate) runs: [u64; 4],
    /// A routine round was asked for by [`Maintenance::run_now`]: it runs also while stopped.
    pub(crate) forced: bool,
}

impl Schedule {
    pub(crate) fn new(interval: Duration) -> Self {
        Schedule {
            due: [Some(Instant::now()), None, None, None],
            interval,
            stopped: false,
            begun: 0,
            ended: 0,
            runs: [0; 4],
            forced: false,
        }
    }

    /// Queues work of `level`, due at `at` (or earlier, if it already was). Returns whether the
    /// background task must be woken for it.
    pub(crate) fn request(&mut self, level: UpkeepLevel, at: Instant) -> bool {
        let slot = &mut self.due[level as usize];
        let earlier = slot.is_none_or(|due| at < due);
        if earlier {
            *slot = Some(at);
        }
        earlier
    }

    /// The earliest moment some work is due, if the task should wake for it. While stopped,
    /// only urgent and high work counts.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        if self.forced {
            return Some(Instant::now());
        }
        let first = if self.stopped {
            UpkeepLevel::High as usize
        } else {
            0
        };
        self.due[first..].iter().flatten().min().copied()
    }

    /// Takes the levels due at `now`, highest first, and counts a round begun for them.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<UpkeepLevel> {
        let mut levels = Vec::new();
        let forced = std::mem::take(&mut self.forced);
        if forced {
            self.due[UpkeepLevel::Low as usize] = Some(now);
        }
        for level in UpkeepLevel::ALL.into_iter().rev() {
            let held =
                self.stopped && level < UpkeepLevel::High && !(forced && level == UpkeepLevel::Low);
            if self.due[level as usize].is_some_and(|at| at <= now && !held) {
                self.due[level as usize] = None;
                self.runs[level as usize] += 1;
                levels.push(level);
            }
        }
        if !levels.is_empty() {
            self.begun += 1;
        }
        levels
    }

    /// A round ended that found work (`busy`) or not: adapts the interval between `floor` and
    /// `ceiling` and queues the next routine round.
    pub(crate) fn ended(&mut self, busy: bool, floor: Duration, ceiling: Duration) {
        self.ended += 1;
        self.interval = if busy {
            (self.interval / 2).max(floor)
        } else {
            self.interval.saturating_mul(2).min(ceiling)
        }
        .clamp(floor.min(ceiling), ceiling);
        let next = Instant::now() + self.interval;
        self.request(UpkeepLevel::Low, next);
    }
}

/// Controls a pool's background upkeep (see [`Pool::maintenance`](crate::Pool::maintenance)):
/// for tests that want rounds at chosen moments, and for operators.
///
/// While upkeep is stopped the pool stays correct: queued callers still time out at their
/// deadlines, connects still retry after their backoff, expired and broken connections are
/// still closed when they are returned or about to be handed out, and a returned connection is
/// still reset before its next use. What stops is the routine work: closing idle and expired
/// idle connections, keepalive checks, leak reports, refilling `min_idle`. Urgent and high work
/// (after a recovery signal or a configuration change) still runs.
pub struct Maintenance<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> std::fmt::Debug for Maintenance<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Maintenance")
            .field("stopped", &st.schedule.stopped)
            .field("interval", &st.schedule.interval)
            .finish()
    }
}

impl<M: Manager> Maintenance<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>) -> Self {
        Maintenance { shared }
    }

    /// Stops routine upkeep until [`start`](Self::start) or [`restart`](Self::restart).
    pub fn stop(&self) {
        self.shared.lock().schedule.stopped = true;
    }

    /// Starts routine upkeep again, with a round at once.
    pub fn start(&self) {
        let mut st = self.shared.lock();
        st.schedule.stopped = false;
        st.schedule.request(UpkeepLevel::Low, Instant::now());
        drop(st);
        self.wake();
    }

    /// Starts routine upkeep again with a new ceiling for its interval
    /// ([`Config::maintenance_interval`](crate::Config::maintenance_interval)), with a round at
    /// once.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if `interval` is zero; nothing changes then.
    pub fn restart(&self, interval: Duration) -> Result<(), ConfigError> {
        let mut config = self.shared.lock().config.clone();
        config.maintenance_interval = interval;
        config.validate_update()?;
        let mut st = self.shared.lock();
        let mut current = st.config.clone();
        current.maintenance_interval = interval;
        st.set_config(current);
        st.schedule.interval = interval;
        drop(st);
        self.start();
        Ok(())
    }

    /// Whether routine upkeep is stopped.
    pub fn is_stopped(&self) -> bool {
        self.shared.lock().schedule.stopped
    }

    /// The routine interval now (it adapts between `maintenance_interval_min` and
    /// `maintenance_interval`).
    pub fn interval(&self) -> Duration {
        self.shared.lock().schedule.interval
    }

    /// Rounds run so far, per level, indexed by `UpkeepLevel as usize`.
    pub fn runs(&self) -> [u64; 4] {
        self.shared.lock().schedule.runs
    }

    /// Runs one round of routine upkeep now (also while stopped) and waits until it has ended.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops only the waiting: the round runs anyway.
    pub async fn run_now(&self) {
        let target = {
            let mut st = self.shared.lock();
            let target = st.schedule.begun + 1;
            st.schedule.forced = true;
            target
        };
        self.wake();
        loop {
            let ended = self.shared.round_ended.notified();
            let mut ended = std::pin::pin!(ended);
            ended.as_mut().enable();
            if self.shared.lock().schedule.ended >= target {
                return;
            }
            ended.await;
        }
    }

    fn wake(&self) {
        maintenance::ensure_started(&self.shared);
        self.shared.wake.notify_one();
    }
}

//! [`Status`] (the pool right now) and [`Stats`] (what happened since it was built).

use std::time::Duration;

use crate::priority::Priority;
use crate::warnings::Warnings;

/// A snapshot of the pool's counts, taken under one lock so they add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// Open connections: `idle + in_use`.
    pub size: usize,
    /// Connections waiting in the pool.
    pub idle: usize,
    /// Connections checked out (including ones being reset or checked).
    pub in_use: usize,
    /// Connects in flight.
    pub connecting: usize,
    /// Callers queued for a connection.
    pub waiting: usize,
    /// The current maximum size.
    pub max_size: usize,
}

/// Why the pool closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Manager::has_broken`](crate::Manager::has_broken) said so, asked when the connection
    /// was returned or when an idle one was about to be handed out. (A connection it calls
    /// broken as soon as it is opened is not counted here but as a failed connect.)
    Broken,
    /// [`Manager::check`](crate::Manager::check) failed or timed out.
    CheckFailed,
    /// [`Manager::reset`](crate::Manager::reset) failed or timed out.
    ResetFailed,
    /// It reached its lifetime.
    Expired,
    /// It stayed idle longer than the idle timeout.
    IdleTimeout,
    /// It reached `max_uses`.
    MaxUses,
    /// The pool shrank, or its configuration or generation changed.
    Retired,
    /// [`Pool::retain`](crate::Pool::retain) rejected it.
    Retain,
    /// Its holder panicked, or a future was dropped while the connection's state was unknown.
    Abandoned,
    /// The pool is closed.
    PoolClosed,
    /// Replaced by a new connection on its return, as [`Config::recycle`](crate::Config::recycle)
    /// said.
    Recycled,
}

impl CloseReason {
    pub(crate) const ALL: [CloseReason; 11] = [
        CloseReason::Broken,
        CloseReason::CheckFailed,
        CloseReason::ResetFailed,
        CloseReason::Expired,
        CloseReason::IdleTimeout,
        CloseReason::MaxUses,
        CloseReason::Retired,
        CloseReason::Retain,
        CloseReason::Abandoned,
        CloseReason::PoolClosed,
        CloseReason::Recycled,
    ];

    /// A short stable name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Broken => "broken",
            CloseReason::CheckFailed => "check_failed",
            CloseReason::ResetFailed => "reset_failed",
            CloseReason::Expired => "expired",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::MaxUses => "max_uses",
            CloseReason::Retired => "retired",
            CloseReason::Retain => "retain",
            CloseReason::Abandoned => "abandoned",
            CloseReason::PoolClosed => "pool_closed",
            CloseReason::Recycled => "recycled",
        }
    }
}

/// Counts of connections closed, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Closes([u64; CloseReason::ALL.len()]);

impl Closes {
    /// How many were closed for `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        self.0[reason as usize]
    }

    /// How many were closed in all.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Each reason with its count.
    pub fn iter(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL.iter().map(|&r| (r, self.get(r)))
    }

    pub(crate) fn add(&mut self, reason: CloseReason) {
        self.0[reason as usize] += 1;
    }
}

/// Counters since the pool was built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// Connects that succeeded.
    pub connects_ok: u64,
    /// Connect attempts that failed (errors, timeouts, panics, and new connections that
    /// [`Manager::has_broken`](crate::Manager::has_broken) called broken at once).
    pub connects_failed: u64,
    /// Connections made elsewhere and given to the pool with [`Pool::add`](crate::Pool::add).
    pub connections_added: u64,
    /// Checkout and keepalive checks that failed.
    pub checks_failed: u64,
    /// Connections closed, by reason.
    pub closes: Closes,
    /// Acquires served from an idle connection without queueing.
    pub acquires_direct: u64,
    /// Acquires that queued and were then served: counted once per acquire, when it is handed
    /// a connection that needs no reset or check. (Should that connection then turn out broken,
    /// the caller goes on waiting for another without being counted again; if it then times
    /// out, it is counted under both headings.)
    pub acquires_waited: u64,
    /// Acquires that timed out.
    pub acquires_timed_out: u64,
    /// Acquires refused because `max_waiters` callers were already queued.
    pub acquires_rejected: u64,
    /// Time from the start of an acquire until it got a connection (direct ones count as zero).
    pub wait_time: WaitHistogram,
    /// The acquires above by [`Priority`], indexed by `Priority as usize`
    /// (see [`by_priority`](Self::by_priority)).
    pub priorities: [PriorityStats; 4],
    /// Soft-limit warnings given (see [`Config::soft_limits`](crate::Config::soft_limits)).
    pub warnings: Warnings,
    /// Times [`AgingPolicy::Adaptive`](crate::AgingPolicy::Adaptive) shortened connection
    /// lifetimes because connections kept failing.
    pub lifetimes_shortened: u64,
    /// Acquires whose caller gave up (dropped the future) while queued, before it was served.
    pub acquires_cancelled: u64,
    /// Connections returned while callers waited that were made idle for whoever asked first,
    /// without waking a waiter, because the callers woken before had found their connection
    /// taken. Only on a multi-thread runtime under [`Fairness::Bounded`](crate::Fairness);
    /// each such wake-up would have been a task switch for nothing.
    pub wakes_deferred: u64,
    /// How long callers held their connections, from checkout to return, read from the pool's
    /// cached clock (so to within about 10 ms: the hot path reads no real clock). Connections
    /// still out, and those detached with
    /// [`PooledConnection::take`](crate::PooledConnection::take), are not in it.
    pub use_time: WaitHistogram,
    /// How long successful connects took, from the start of the attempt to an open connection.
    pub connect_time: WaitHistogram,
    /// Connections returned, by the hour of the day (UTC, `0..24`) they were checked out in:
    /// the pool's daily usage pattern.
    pub acquires_by_hour: [u64; 24],
    /// How long the pool has existed (filled in when the statistics are read).
    pub uptime: Duration,
    /// The pool's maximum size when the statistics were read, which
    /// [`utilisation`](Self::utilisation) measures against.
    pub max_size: usize,
}

/// Acquires of one [`Priority`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PriorityStats {
    /// Served from an idle connection without queueing.
    pub direct: u64,
    /// Queued and then served.
    pub waited: u64,
    /// Timed out.
    pub timed_out: u64,
    /// Time from the start of an acquire until it got a connection (direct ones count as zero).
    pub wait_time: WaitHistogram,
}

impl Stats {
    /// Acquires that got a connection, directly or after queueing.
    pub fn acquires_served(&self) -> u64 {
        self.acquires_direct + self.acquires_waited
    }

    /// The time-weighted share of the pool's capacity that was in use since it was built:
    /// the time connections spent checked out (their [`use_time`](Self::use_time), so only
    /// connections already returned count) over [`uptime`](Self::uptime) times
    /// [`max_size`](Self::max_size). From `0.0` to `1.0`; `0.0` before anything was returned.
    pub fn utilisation(&self) -> f64 {
        let capacity = self.uptime.as_secs_f64() * self.max_size as f64;
        if capacity <= 0.0 {
            return 0.0;
        }
        (self.use_time.sum().as_secs_f64() / capacity).min(1.0)
    }

    /// How many times each connection opened was handed out, on average: served acquires
    /// per successful connect (or added connection). High is good: connects are expensive.
    /// `0.0` before any connection was opened.
    pub fn reuse_rate(&self) -> f64 {
        let opened = self.connects_ok + self.connections_added;
        if opened == 0 {
            return 0.0;
        }
        self.acquires_served() as f64 / opened as f64
    }

    /// A connection checked out at hour `hour` (UTC) came back after `held_us` microseconds.
    #[inline]
    pub(crate) fn record_use(&mut self, held_us: u64, hour: usize) {
        self.use_time.record_micros(held_us);
        // An hour from the clock is below 24: a bound check costs less than a division.
        if let Some(n) = self.acquires_by_hour.get_mut(hour) {
            *n += 1;
        }
    }

    /// The acquires of one priority.
    pub fn by_priority(&self, priority: Priority) -> &PriorityStats {
        &self.priorities[priority as usize]
    }

    /// An acquire served from an idle connection. Plain `get` calls (`Normal`) only bump the
    /// total on this hot path; their share is worked out in [`settled`](Self::settled).
    #[inline]
    pub(crate) fn record_direct(&mut self, priority: Priority) {
        self.acquires_direct += 1;
        if priority != Priority::Normal {
            self.priorities[priority as usize].direct += 1;
        }
    }

    /// An acquire served after queueing, recorded once, when the caller has its connection.
    pub(crate) fn record_waited(&mut self, priority: Priority, waited: Duration) {
        self.acquires_waited += 1;
        self.wait_time.record(waited);
        let level = &mut self.priorities[priority as usize];
        level.waited += 1;
        level.wait_time.record(waited);
    }

    /// An acquire that timed out.
    pub(crate) fn record_timeout(&mut self, priority: Priority) {
        self.acquires_timed_out += 1;
        self.priorities[priority as usize].timed_out += 1;
    }

    /// Takes back a [`record_direct`](Self::record_direct) while the connection it counted
    /// is reset or checked, or after it was closed on its way out.
    pub(crate) fn undo_direct(&mut self, priority: Priority) {
        self.acquires_direct -= 1;
        if priority != Priority::Normal {
            self.priorities[priority as usize].direct -= 1;
        }
    }

    /// The counters as users read them: direct acquires are kept apart from the histograms
    /// while counting (they would cost the hot path a histogram write each) and added as zeros
    /// here, and the `Normal` direct acquires are what the other priorities leave of the total.
    pub(crate) fn settled(mut self) -> Stats {
        let others: u64 = Priority::ALL
            .iter()
            .filter(|&&p| p != Priority::Normal)
            .map(|&p| self.priorities[p as usize].direct)
            .sum();
        self.priorities[Priority::Normal as usize].direct =
            self.acquires_direct.saturating_sub(others);
        self.wait_time.record_zeros(self.acquires_direct);
        for level in &mut self.priorities {
            level.wait_time.record_zeros(level.direct);
        }
        self
    }
}

/// Buckets below this many microseconds are exact; above, each power of two is split in
/// `SUB` buckets, which keeps the relative error of a percentile under 1/`SUB`.
const EXACT: u64 = 16;
const SUB: u64 = 8;
const SUB_BITS: u32 = SUB.trailing_zeros();
const BUCKETS: usize = (EXACT + (64 - EXACT.trailing_zeros() as u64) * SUB) as usize;

/// A histogram of durations (acquire waits, use times, connect times), in microseconds, with
/// bounded relative error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitHistogram {
    buckets: Box<[u64; BUCKETS]>,
    count: u64,
    max_us: u64,
    sum_us: u64,
}

impl Default for WaitHistogram {
    fn default() -> Self {
        WaitHistogram {
            buckets: Box::new([0; BUCKETS]),
            count: 0,
            max_us: 0,
            sum_us: 0,
        }
    }
}

impl WaitHistogram {
    fn index(us: u64) -> usize {
        if us < EXACT {
            return us as usize;
        }
        let exp = 63 - us.leading_zeros();
        let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
        (EXACT + u64::from(exp - EXACT.trailing_zeros()) * SUB + sub) as usize
    }

    /// The largest value that falls in bucket `index`.
    fn upper(index: usize) -> u64 {
        let index = index as u64;
        if index < EXACT {
            return index;
        }
        let exp = (index - EXACT) / SUB + u64::from(EXACT.trailing_zeros());
        let sub = (index - EXACT) % SUB;
        let width = 1u128 << (exp - u64::from(SUB_BITS));
        let upper = (1u128 << exp) + u128::from(sub + 1) * width - 1;
        u64::try_from(upper).unwrap_or(u64::MAX)
    }

    pub(crate) fn record(&mut self, wait: Duration) {
        self.record_micros(u64::try_from(wait.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one duration given in microseconds.
    #[inline]
    pub(crate) fn record_micros(&mut self, us: u64) {
        self.buckets[Self::index(us)] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Adds `n` durations of zero: the direct acquires, which the pool counts apart so that the
    /// hot path touches one counter rather than the histogram.
    pub(crate) fn record_zeros(&mut self, n: u64) {
        self.buckets[0] += n;
        self.count += n;
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// All recorded durations added up (to the microsecond).
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_us)
    }

    /// The mean duration; zero when nothing was recorded.
    pub fn mean(&self) -> Duration {
        match self.count {
            0 => Duration::ZERO,
            n => Duration::from_micros(self.sum_us / n),
        }
    }

    /// How many recorded durations were at most `bound`, counting a bucket in when its upper
    /// end is within `bound` (so to within 1/8 of `bound`): the cumulative counts of a
    /// Prometheus histogram.
    pub fn count_within(&self, bound: Duration) -> u64 {
        let us = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
        if us >= self.max_us {
            return self.count;
        }
        self.buckets
            .iter()
            .enumerate()
            .take_while(|&(i, _)| Self::upper(i) <= us)
            .map(|(_, &n)| n)
            .sum()
    }

    /// The longest duration recorded.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The duration that `q` (0.0 to 1.0) of those recorded did not exceed, to within 1/8.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(Self::upper(i).min(self.max_us));
            }
        }
        self.max()
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    /// The 95th percentile.
    pub fn p95(&self) -> Duration {
        self.quantile(0.95)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for us in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let i = WaitHistogram::index(us);
            assert!(i < BUCKETS, "{us} -> {i}");
            assert!(i >= last, "not monotonic at {us}");
            assert!(WaitHistogram::upper(i) >= us, "{us} above its bucket");
            last = i;
        }
    }

    #[test]
    fn percentiles_are_within_an_eighth() {
        let mut h = WaitHistogram::default();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.p50().as_micros() as f64;
        let p99 = h.p99().as_micros() as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.125, "p50 {p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.125, "p99 {p99}");
        assert_eq!(h.max(), Duration::from_secs(1));
        assert_eq!(h.count(), 1000);
    }
}

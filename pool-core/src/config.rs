//! [`Config`]: the pool's settings as plain data, with their defaults and validation.

use std::time::Duration;

use crate::aging::AgingPolicy;
use crate::error::ConfigError;
use crate::recycle::Recycle;
use crate::warnings::SoftLimits;

/// Which idle connection an acquire takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum IdleOrder {
    /// The connection idle the longest: spreads use over all connections.
    #[default]
    Fifo,
    /// The connection returned last: keeps a hot set and lets the rest reach the idle timeout.
    Lifo,
}

/// How a connection returned while callers wait is shared out.
///
/// Handing every returned connection to the oldest waiter (strict FIFO) is fair but slow under
/// load: once one caller queues, every later caller queues too, and each acquire costs a wake-up
/// and a task switch for as long as the load lasts. Letting a caller take an idle connection
/// ahead of the queue (barging) keeps the fast path, but on its own could starve a waiter.
/// `Bounded` does both: callers may overtake waiters, but a waiter that was passed over is not
/// overtaken past the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Fairness {
    /// First come, first served: a returned connection goes to the oldest waiter, and nobody
    /// takes an idle connection while others wait.
    Strict,
    /// A returned connection is made idle and the next waiter (highest priority, then oldest)
    /// is woken to take it; a caller that did not queue may take it first, passing the waiter
    /// over. Once a waiter was passed over, each connection returned or opened goes straight to
    /// the next waiter for as long as that waiter has waited at least this long.
    ///
    /// The guarantee: once the next waiter has waited this long, it is passed over at most once
    /// more; the connection returned or opened after that is its own. A waiter that is woken and
    /// finds an idle connection is never held back, so on a busy runtime, where a woken waiter
    /// may wait longer than the bound for its turn on a thread, the pool does not hand
    /// connections to callers that are not running yet (which would turn every acquire into a
    /// task switch).
    ///
    /// On a multi-thread runtime, once two callers in a row were woken for a connection and
    /// found it taken, a connection returned is left idle for whoever asks first without
    /// waking anyone (counted in [`Stats::wakes_deferred`](crate::Stats::wakes_deferred)):
    /// such wake-ups are task switches for nothing. The waiters then count as passed over, so
    /// the guarantee above holds, and a connection left idle while callers wait is brought to
    /// one of them within about a millisecond by the background task.
    Bounded(Duration),
}

impl Default for Fairness {
    /// `Bounded(500 µs)`: about the typical wait of a busy pool serving queries of a few
    /// hundred microseconds, which keeps the tail of the waits that of strict FIFO while
    /// callers that only wait for their turn on a thread still overtake freely (measured by
    /// `pool-bench`'s `realistic` and `micro` suites).
    fn default() -> Self {
        Fairness::Bounded(Duration::from_micros(500))
    }
}

/// What the pool does when a task that holds one of its connections asks for another that can
/// never come: the pool is full, and every connection is held by a task that is itself waiting
/// for one (a task that nests `get()` calls, say, when every connection is held by such tasks).
///
/// Detection needs the pool to note which task holds each connection, a map update on every
/// checkout and return, so it is off by default; turn it on in development and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum SelfDeadlock {
    /// Not looked for: the caller waits until its acquire timeout.
    #[default]
    Ignore,
    /// A `tracing` warning (target `pool_core::deadlock`) naming where the task checked out the
    /// connection it holds and where it asked for another, once per pool; the caller still
    /// waits until its timeout.
    Warn,
    /// The warning, and the caller gets [`Error::SelfDeadlock`](crate::Error::SelfDeadlock) at
    /// once.
    Fail,
}

/// The pool's settings. Every field documents its default; [`Config::default`] gives them all.
///
/// Validated by [`Builder::build`](crate::Builder::build) and
/// [`Pool::update_config`](crate::Pool::update_config), which name the offending field.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct Config {
    /// Most connections open at once, in use or idle. Default 10.
    pub max_size: usize,
    /// Idle connections the background task keeps open. Default 0.
    pub min_idle: usize,
    /// Connections opened when the pool is built. Default 0.
    pub initial_size: usize,
    /// How long [`Pool::get`](crate::Pool::get) waits in all. `None` waits forever.
    /// Default 30 s.
    pub acquire_timeout: Option<Duration>,
    /// Bound on one [`Manager::connect`](crate::Manager::connect). Default 10 s.
    pub connect_timeout: Duration,
    /// Bound on one [`Manager::check`](crate::Manager::check). Default 5 s.
    pub check_timeout: Duration,
    /// Bound on one [`Manager::reset`](crate::Manager::reset). Default 5 s.
    pub reset_timeout: Duration,
    /// Connections older than this are closed (when idle, or when returned). A random part is
    /// taken off each connection's lifetime so connections opened together do not expire
    /// together: up to 1/40 of it, or four `maintenance_interval`s if that is more, but never
    /// more than a quarter of it. The background task also retires at most a tenth of the pool
    /// per round. Default 30 min.
    pub max_lifetime: Option<Duration>,
    /// Idle connections unused for this long are closed, down to `min_idle`. Default 10 min.
    pub idle_timeout: Option<Duration>,
    /// Connections handed out this many times are closed when returned. Default `None`.
    pub max_uses: Option<u64>,
    /// Run [`Manager::check`](crate::Manager::check) before handing out a connection.
    /// Default `true`.
    pub check_on_checkout: bool,
    /// Skip the checkout check for a connection used or checked this recently. Default 500 ms.
    pub skip_check_within: Duration,
    /// Which idle connection an acquire takes. Default [`IdleOrder::Fifo`].
    pub idle_order: IdleOrder,
    /// How returned connections are shared out among waiting callers.
    /// Default [`Fairness::Bounded`] at 500 µs.
    pub fairness: Fairness,
    /// A queued caller waiting this long is served as if it were
    /// [`Priority::Critical`](crate::Priority::Critical), so a stream of urgent callers cannot
    /// starve the others. `None` turns the boost off. Default 1 s.
    pub priority_boost_after: Option<Duration>,
    /// Whether to detect a task waiting for a connection while it holds one that could serve
    /// it, and what to do then. Default [`SelfDeadlock::Ignore`].
    pub self_deadlock: SelfDeadlock,
    /// Most callers queued at once; one more fails at once with
    /// [`Error::Rejected`](crate::Error::Rejected). Default `None` (no limit).
    pub max_waiters: Option<usize>,
    /// Most callers of each [`Priority`](crate::Priority) queued at once, indexed by
    /// `Priority as usize`; one more of that priority fails at once with
    /// [`Error::Rejected`](crate::Error::Rejected), so a flood of low-priority callers cannot
    /// fill the queue that urgent ones need. Applies besides `max_waiters`. Default no limit.
    pub max_waiters_by_priority: [Option<usize>; 4],
    /// Most connects in flight at once. Default 4.
    pub max_concurrent_connects: usize,
    /// Most new connections per second, to spare a server that just came back.
    /// Default `None` (no limit).
    pub connect_rate: Option<u32>,
    /// First pause after a failed connect; it doubles (with jitter) up to
    /// `connect_backoff_max`. Default 50 ms.
    pub connect_backoff: Duration,
    /// Longest pause between connect attempts. Default 5 s.
    pub connect_backoff_max: Duration,
    /// Idle connections not used or checked for this long are checked by the background task.
    /// Default `None` (off).
    pub keepalive_interval: Option<Duration>,
    /// A connection held longer than this gets one `tracing` warning naming where it was
    /// checked out. Default `None` (off).
    pub leak_threshold: Option<Duration>,
    /// The longest time between two rounds of the background task, which looks for expired,
    /// idle and leaked connections: the interval it keeps while it finds nothing to do.
    /// Default 1 s.
    pub maintenance_interval: Duration,
    /// The shortest time between two routine rounds: while rounds find work the interval halves
    /// down to this; rounds that find none double it back up to `maintenance_interval`.
    /// Default 100 ms (capped at `maintenance_interval`).
    pub maintenance_interval_min: Duration,
    /// How connections age: a fixed lifetime, or one shortened while connections fail.
    /// Default [`AgingPolicy::Fixed`].
    pub aging: AgingPolicy,
    /// What happens to a returned connection before its next use. Default [`Recycle::Fast`].
    pub recycle: Recycle,
    /// Check a returned connection (after its reset) in the background before it is idle
    /// again; until then it is not handed out, and one that fails is closed. The caller's drop
    /// is never delayed. Needs a tokio runtime where connections are dropped (without one the
    /// check runs at the next checkout instead). Default `false`.
    pub check_on_return: bool,
    /// When to warn that the pool is nearing a hard limit. `None` turns the warnings off.
    /// Default `Some(SoftLimits::default())`.
    pub soft_limits: Option<SoftLimits>,
    /// The pool's name in metrics (the `db.client.connection.pool.name` label) and exports.
    /// Read when the pool is built. Default `None`, which reads as `"pool"`; the drivers'
    /// pools default to `host:port/database`.
    pub name: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_size: 10,
            min_idle: 0,
            initial_size: 0,
            acquire_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(10),
            check_timeout: Duration::from_secs(5),
            reset_timeout: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            max_uses: None,
            check_on_checkout: true,
            skip_check_within: Duration::from_millis(500),
            idle_order: IdleOrder::Fifo,
            fairness: Fairness::default(),
            priority_boost_after: Some(Duration::from_secs(1)),
            self_deadlock: SelfDeadlock::Ignore,
            max_waiters: None,
            max_waiters_by_priority: [None; 4],
            max_concurrent_connects: 4,
            connect_rate: None,
            connect_backoff: Duration::from_millis(50),
            connect_backoff_max: Duration::from_secs(5),
            keepalive_interval: None,
            leak_threshold: None,
            maintenance_interval: Duration::from_secs(1),
            maintenance_interval_min: Duration::from_millis(100),
            aging: AgingPolicy::Fixed,
            recycle: Recycle::Fast,
            check_on_return: false,
            soft_limits: Some(SoftLimits::default()),
            name: None,
        }
    }
}

impl Config {
    /// [`name`](Self::name), or `"pool"` when none was given.
    pub fn pool_name(&self) -> &str {
        self.name.as_deref().unwrap_or("pool")
    }
}

impl Config {
    /// Checks that the settings can work together.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first field that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_size == 0 {
            return Err(ConfigError {
                field: "max_size",
                problem: "must be greater than zero",
            });
        }
        if self.initial_size > self.max_size {
            return Err(ConfigError {
                field: "initial_size",
                problem: "must not exceed max_size",
            });
        }
        self.validate_update()
    }

    /// What [`validate`](Self::validate) checks, less what only matters when a pool is built: a
    /// running pool may be drained with `max_size` zero, and `initial_size` is read at build
    /// time only.
    pub(crate) fn validate_update(&self) -> Result<(), ConfigError> {
        fn fail(field: &'static str, problem: &'static str) -> Result<(), ConfigError> {
            Err(ConfigError { field, problem })
        }
        const ZERO: &str = "must be greater than zero";
        let optional = [
            ("max_lifetime", self.max_lifetime),
            ("idle_timeout", self.idle_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("leak_threshold", self.leak_threshold),
            ("priority_boost_after", self.priority_boost_after),
        ];
        let required = [
            ("connect_timeout", self.connect_timeout),
            ("check_timeout", self.check_timeout),
            ("reset_timeout", self.reset_timeout),
            ("connect_backoff", self.connect_backoff),
            ("maintenance_interval", self.maintenance_interval),
            ("maintenance_interval_min", self.maintenance_interval_min),
        ];
        // Shares are fractions of a whole: `NaN` and values outside (0, 1] cannot work.
        let share = |x: f64| x > 0.0 && x <= 1.0;
        if self.min_idle > self.max_size {
            return fail("min_idle", "must not exceed max_size");
        }
        if self.max_concurrent_connects == 0 {
            return fail("max_concurrent_connects", ZERO);
        }
        if self.connect_rate == Some(0) {
            return fail("connect_rate", ZERO);
        }
        if self.max_uses == Some(0) {
            return fail("max_uses", ZERO);
        }
        if let Some((field, _)) = required.iter().find(|(_, d)| d.is_zero()) {
            return fail(field, ZERO);
        }
        if let Some((field, _)) = optional
            .iter()
            .find(|(_, d)| d.is_some_and(|d| d.is_zero()))
        {
            return fail(field, ZERO);
        }
        if self.connect_backoff_max < self.connect_backoff {
            return fail("connect_backoff_max", "must not be below connect_backoff");
        }
        if let AgingPolicy::Adaptive(aging) = &self.aging {
            if !share(aging.error_rate) || !share(aging.shortened_to) {
                return fail("aging", "error_rate and shortened_to must be in (0, 1]");
            }
            if aging.window.is_zero() {
                return fail("aging", "window must be greater than zero");
            }
        }
        if let Recycle::Adaptive(rules) = &self.recycle {
            if rules.replace_after_uses == Some(0)
                || rules.replace_after_age.is_some_and(|age| age.is_zero())
            {
                return fail(
                    "recycle",
                    "replace_after_uses and replace_after_age must be greater than zero",
                );
            }
        }
        if let Some(limits) = &self.soft_limits {
            if !share(limits.busy_share) || !share(limits.wait_share) {
                return fail("soft_limits", "busy_share and wait_share must be in (0, 1]");
            }
        }
        Ok(())
    }
}

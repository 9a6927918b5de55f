//! [`Pool`]: the public handle.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::acquire::{acquire, Request, Wait};
use crate::builder::Builder;
use crate::clock::nanos;
use crate::config::Config;
use crate::connection::{ConnectionMetrics, PooledConnection};
use crate::error::{AddError, AddRefusal, ConfigError, ConnectError, Error};
use crate::health::Health;
use crate::leak::Leak;
use crate::maintenance;
use crate::manager::Manager;
use crate::place::QueuePlace;
use crate::priority::Priority;
use crate::retry::Retry;
use crate::shared::Shared;
use crate::stats::{CloseReason, Stats, Status};
use crate::taken::Taken;
use crate::upkeep::{Maintenance, UpkeepLevel};

/// A pool of connections made by a [`Manager`].
///
/// Cheap to clone: clones share one pool. Needs a tokio runtime for acquiring (it opens
/// connections in tasks of their own), not for returning connections.
///
/// # Examples
///
/// ```
/// use pool_core::{Manager, Pool};
///
/// struct Counter;
///
/// impl Manager for Counter {
///     type Connection = u64;
///     type Error = std::io::Error;
///
///     async fn connect(&self) -> Result<u64, std::io::Error> {
///         Ok(0)
///     }
///
///     async fn check(&self, _: &mut u64) -> Result<(), std::io::Error> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(Counter).max_size(4).build().await?;
/// let mut conn = pool.get().await?;
/// *conn += 1;
/// drop(conn); // back in the pool
/// assert_eq!(pool.status().idle, 1);
/// # Ok(())
/// # }
/// ```
pub struct Pool<M: Manager> {
    pub(crate) shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.status())
            .finish()
    }
}

impl<M: Manager> Pool<M> {
    /// Starts configuring a pool of connections made by `manager`.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    /// Checks out a connection, waiting at most
    /// [`Config::acquire_timeout`](crate::Config::acquire_timeout).
    ///
    /// An idle connection is taken at once (after its reset and, if due, its check). Otherwise
    /// the caller queues, and the pool opens a connection if it has room; a returned connection
    /// or a new one goes to the queued callers as [`Config::fairness`](crate::Config::fairness)
    /// says: by default a caller may take an idle connection ahead of those queued, but a
    /// queued caller that was passed over is not passed over again once it has waited longer
    /// than the bound (500 µs, give or take one more connection). With
    /// [`Fairness::Strict`](crate::Fairness::Strict), callers are served strictly first come,
    /// first served. Uses [`Priority::Normal`].
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] (carrying the last connect error when connects were failing),
    /// [`Error::Connect`] when a connect failed permanently, [`Error::Rejected`] when
    /// `max_waiters` callers already wait, [`Error::Closed`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future at any point loses nothing: a place in the queue is given up (and a
    /// connection already sent to it passes to the next caller), a connect started for the
    /// caller finishes for the pool, and a connection being reset or checked is closed, since
    /// its state is unknown.
    #[track_caller]
    pub fn get(
        &self,
    ) -> impl Future<Output = Result<PooledConnection<M>, Error<M::Error>>> + Send + '_ {
        self.request(Wait::Configured, Priority::Normal, None)
    }

    /// Like [`get`](Self::get), at the given priority: queued callers are served highest
    /// priority first, and a caller never takes an idle connection ahead of a queued caller of
    /// a higher priority (see [`Priority`]).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Cancel safety
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_with(
        &self,
        priority: Priority,
    ) -> impl Future<Output = Result<PooledConnection<M>, Error<M::Error>>> + Send + '_ {
        self.request(Wait::Configured, priority, None)
    }

    /// Like [`get_with`](Self::get_with), keeping `place` up to date so that the caller, or
    /// anyone it shared a clone of `place` with, can read its position in the queue while it
    /// waits.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Cancel safety
    ///
    /// As [`get`](Self::get); `place` is cleared when the future ends or is dropped.
    #[track_caller]
    pub fn get_tracked<'a>(
        &'a self,
        priority: Priority,
        place: &'a QueuePlace,
    ) -> impl Future<Output = Result<PooledConnection<M>, Error<M::Error>>> + Send + 'a {
        self.request(Wait::Configured, priority, Some(place))
    }

    #[track_caller]
    fn request<'a>(
        &'a self,
        wait: Wait,
        priority: Priority,
        place: Option<&'a QueuePlace>,
    ) -> impl Future<Output = Result<PooledConnection<M>, Error<M::Error>>> + Send + 'a {
        acquire(
            &self.shared,
            Request {
                wait,
                priority,
                place,
                caller: Location::caller(),
            },
        )
    }

    /// Like [`get`](Self::get), waiting at most `timeout` (zero: take an idle connection or
    /// fail; `Duration::MAX`: wait forever).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Cancel safety
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<PooledConnection<M>, Error<M::Error>>> + Send + '_ {
        self.request(Wait::For(timeout), Priority::Normal, None)
    }

    /// Takes an idle connection if one is free and the caller may take it (see
    /// [`get`](Self::get)); never queues and never opens a connection. The future may still await the connection's reset and check.
    ///
    /// # Errors
    ///
    /// [`Error::NoIdle`] when no idle connection is free, [`Error::Timeout`] when its reset or
    /// check outlasted the acquire timeout, [`Error::Closed`].
    ///
    /// # Cancel safety
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn try_get(
        &self,
    ) -> impl Future<Output = Result<PooledConnection<M>, Error<M::Error>>> + Send + '_ {
        self.request(Wait::Never, Priority::Normal, None)
    }

    /// Checks out a connection like [`get`](Self::get), but keeps trying while the server is
    /// unreachable, pausing between attempts as `retry` says, and gives up with
    /// [`Error::ServiceUnavailable`] (carrying the number of attempts and the last error) once
    /// [`Retry::give_up_after`] has passed. A pause ends at once when the pool recovers.
    ///
    /// Meant for requests that should wait out a short outage or a failover but answer
    /// "unavailable" (HTTP 503) rather than hang when it lasts.
    ///
    /// # Errors
    ///
    /// [`Error::ServiceUnavailable`] when it gave up; at once, without retrying:
    /// [`Error::Connect`] (a permanent connect error such as a wrong password: waiting cannot
    /// fix it), [`Error::Rejected`] and [`Error::Closed`].
    ///
    /// # Cancel safety
    ///
    /// As [`get`](Self::get): dropping the future, during an attempt or a pause, loses nothing.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn handler<M: pool_core::Manager>(pool: pool_core::Pool<M>) -> u16 {
    /// use pool_core::{Error, Retry};
    ///
    /// match pool.get_retrying(&Retry::default()).await {
    ///     Ok(conn) => 200,
    ///     Err(Error::ServiceUnavailable { .. }) => 503,
    ///     Err(_) => 500,
    /// }
    /// # }
    /// ```
    #[track_caller]
    pub fn get_retrying<'a>(
        &'a self,
        retry: &'a Retry,
    ) -> impl Future<Output = Result<PooledConnection<M>, Error<M::Error>>> + Send + 'a {
        let caller = Location::caller();
        async move {
            let start = Instant::now();
            let mut attempts = 0u32;
            let mut delay = retry.initial_delay;
            loop {
                attempts = attempts.saturating_add(1);
                let unbounded = retry.until_first_success && !self.shared.health.ever_connected();
                let give_up = retry
                    .give_up_after
                    .filter(|_| !unbounded)
                    .and_then(|after| start.checked_add(after));
                let left = give_up.map_or(Duration::MAX, |at| {
                    at.saturating_duration_since(Instant::now())
                });
                let limit = retry.attempt_timeout.min(left);
                // Made before the attempt, so a recovery while it fails still ends the pause.
                let recovered = self.shared.health.recovered.notified();
                let request = Request {
                    wait: Wait::Capped(limit),
                    priority: Priority::Normal,
                    place: None,
                    caller,
                };
                let timeout = match acquire(&self.shared, request).await {
                    Ok(conn) => return Ok(conn),
                    Err(Error::Timeout(timeout)) => timeout,
                    Err(other) => return Err(other),
                };
                let (pause, next) = retry.pause(delay);
                delay = next;
                let now = Instant::now();
                if give_up.is_some_and(|at| now + pause >= at) {
                    return Err(Error::ServiceUnavailable {
                        attempts,
                        waited: now.saturating_duration_since(start),
                        last: Box::new(timeout),
                    });
                }
                let _ = tokio::time::timeout(pause, recovered).await;
            }
        }
    }

    /// What the pool has lately seen of its server; one atomic load.
    pub fn health(&self) -> Health {
        self.shared.health.get()
    }

    /// The pool's counts right now.
    pub fn status(&self) -> Status {
        self.shared.lock().status()
    }

    /// Counters and the wait-time histogram since the pool was built.
    pub fn stats(&self) -> Stats {
        let (mut stats, max_size) = {
            let st = self.shared.lock();
            (st.stats.clone(), st.config.max_size)
        };
        stats.uptime = self.shared.clock.uptime();
        stats.max_size = max_size;
        stats.settled()
    }

    /// The connections checked out right now for longer than
    /// [`Config::leak_threshold`](crate::Config::leak_threshold), longest held first, each
    /// with where it was checked out and how long it has been out. Empty when no threshold
    /// is set (checkouts are tracked only then). The same connections get a `tracing`
    /// warning once (target `pool_core::leak`).
    pub fn leaks(&self) -> Vec<Leak> {
        let st = self.shared.lock();
        let Some(threshold) = st.config.leak_threshold else {
            return Vec::new();
        };
        crate::leak::over(
            st.leaks.values(),
            nanos(threshold),
            self.shared.clock.precise(),
        )
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.shared.lock().config.clone()
    }

    /// The manager that makes this pool's connections.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }

    /// Changes the maximum size. Growing serves queued callers at once; shrinking closes idle
    /// extras now and checked-out extras as they come back.
    ///
    /// `resize(0)` drains the pool without closing it: idle connections are closed now, those
    /// in use when they come back, no connection is opened, and acquires wait (within their
    /// timeouts) until the pool is resized up again. It needs `min_idle` of zero.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if `max_size` is below `min_idle`, or if the pool is closed (a closed
    /// pool keeps its configuration).
    pub fn resize(&self, max_size: usize) -> Result<(), ConfigError> {
        let mut config = self.config();
        config.max_size = max_size;
        self.update_config(config)
    }

    /// Replaces the configuration at run time, all at once. Limits and timeouts apply to the
    /// next operation; a smaller `max_size` retires extras as in [`resize`](Self::resize),
    /// including `max_size` zero. `initial_size` is only read when a pool is built.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the invalid field, or naming `pool` if the pool is closed; the
    /// old configuration stays.
    pub fn update_config(&self, config: Config) -> Result<(), ConfigError> {
        config.validate_update()?;
        let mut st = self.shared.lock();
        if st.closed {
            return Err(ConfigError {
                field: "pool",
                problem: "is closed: its configuration no longer changes",
            });
        }
        st.set_config(config);
        let excess = st
            .size()
            .saturating_sub(st.config.max_size)
            .min(st.ledger.idle());
        let closing: Vec<_> = st
            .ledger
            .take_idle(excess)
            .map(|live| (live, CloseReason::Retired))
            .collect();
        for _ in &closing {
            st.stats.closes.add(CloseReason::Retired);
        }
        st.request_upkeep(UpkeepLevel::High);
        self.shared.settle(st, closing);
        maintenance::ensure_started(&self.shared);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Adds a connection made elsewhere (by [`dedicated_connection`](Self::dedicated_connection),
    /// or taken out with [`PooledConnection::take`]) to the pool, as an idle connection or
    /// straight to the longest waiting caller. It counts as newly opened for `max_lifetime`.
    ///
    /// # Errors
    ///
    /// Hands the connection back, with the reason, if the pool is closed, if it has no room
    /// (open and opening connections already reach `max_size`), or if
    /// [`Manager::has_broken`] says it is broken.
    pub fn add(&self, mut conn: M::Connection) -> Result<(), AddError<M::Connection>> {
        let shared = &self.shared;
        if shared.manager.has_broken(&mut conn) {
            return Err(AddError::new(conn, AddRefusal::Broken));
        }
        let mut st = shared.lock();
        let refusal = if st.closed {
            Some(AddRefusal::Closed)
        } else if st.size() + st.ledger.connecting() >= st.config.max_size {
            Some(AddRefusal::Full)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(st);
            return Err(AddError::new(conn, refusal));
        }
        st.stats.connections_added += 1;
        let live = shared.new_live(conn, &st);
        let back = st.put_back(live, None).err();
        shared.settle(st, back);
        Ok(())
    }

    /// Opens a connection with the pool's manager that the pool does not count or keep: for a
    /// `LISTEN` session, a long stream, or a replication connection that must not take a slot
    /// from ordinary callers. Bounded by
    /// [`Config::connect_timeout`](crate::Config::connect_timeout); no retry, no backoff.
    /// [`add`](Self::add) can hand it to the pool later.
    ///
    /// # Errors
    ///
    /// The [`ConnectError`] of the attempt.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connect with it; nothing of the pool's changes.
    pub async fn dedicated_connection(&self) -> Result<M::Connection, ConnectError<M::Error>> {
        let limit = self.shared.lock().config.connect_timeout;
        crate::connector::attempt(&self.shared, limit).await
    }

    /// Closes every idle connection for which `keep` returns false. Connections in use are
    /// not looked at. `keep` runs without the pool's lock held.
    pub fn retain(&self, mut keep: impl FnMut(&M::Connection, &ConnectionMetrics) -> bool) {
        let shared = &self.shared;
        let idle: Vec<_> = {
            let mut st = shared.lock();
            st.ledger
                .check_out_all()
                .map(|live| Taken::new(shared, live))
                .collect()
        };
        for mut taken in idle {
            let live = taken.live();
            if keep(&live.conn, &live.meta.public(&shared.clock)) {
                shared.restore(taken.keep());
            } else {
                taken.close(CloseReason::Retain);
            }
        }
    }

    /// Tells the pool the server was replaced or came back (after a failover): every idle
    /// connection is closed now, connections in use are closed when returned, and the connect
    /// backoff starts over, so the next acquire connects at once.
    pub fn signal_recovery(&self) {
        let mut st = self.shared.lock();
        st.generation = st.generation.wrapping_add(1);
        st.failures = 0;
        st.permanent_failure = false;
        st.retry_at = None;
        st.last_error = None;
        let closing: Vec<_> = st
            .ledger
            .take_all_idle()
            .map(|live| (live, CloseReason::Retired))
            .collect();
        for _ in &closing {
            st.stats.closes.add(CloseReason::Retired);
        }
        // Connections of the old server still being cleaned or checked are retired when they
        // come back; the round also refills `min_idle` from the new one.
        st.request_upkeep(UpkeepLevel::Urgent);
        self.shared.settle(st, closing);
        maintenance::ensure_started(&self.shared);
        self.shared.wake.notify_one();
        self.shared.retry_now.notify_waiters();
        tracing::info!(target: "pool_core::recovery", "recovery signalled: idle connections closed, backoff reset");
    }

    /// Pauses the pool for planned maintenance (a switch-over, say): from now on no caller is
    /// handed a connection and no connection is opened; acquires queue and wait, each within its
    /// own timeout, until [`resume`](Self::resume). Connections in use stay with their holders
    /// and come back to the idle set. [`try_get`](Self::try_get) fails with
    /// [`Error::NoIdle`]. Pausing a paused pool does nothing.
    ///
    /// For a switch-over: `pause()`, switch the server, [`signal_recovery`](Self::signal_recovery)
    /// (the old server's connections are closed), `resume()`: queued callers are then served
    /// from new connections.
    pub fn pause(&self) {
        let mut st = self.shared.lock();
        if !st.paused && !st.closed {
            st.paused = true;
            drop(st);
            tracing::info!(target: "pool_core::recovery", "pool paused");
        }
    }

    /// Ends a [`pause`](Self::pause): queued callers are served from idle connections first,
    /// then from new ones.
    pub fn resume(&self) {
        let mut st = self.shared.lock();
        if !st.paused {
            return;
        }
        st.paused = false;
        st.send_for_idle();
        self.shared.settle(st, None);
        tracing::info!(target: "pool_core::recovery", "pool resumed");
    }

    /// Whether the pool is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.lock().paused
    }

    /// Closes the pool: queued callers get [`Error::Closed`] at once, idle connections are
    /// closed now, connections in use when they are returned, and later acquires fail with
    /// [`Error::Closed`].
    pub fn close(&self) {
        self.shared.close();
    }

    /// Closes the pool like [`close`](Self::close), then waits at most `limit` until every
    /// connection is closed and no connect is in flight. Returns whether that happened.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops only the waiting; the pool is closed either way.
    pub async fn close_and_wait(&self, limit: Duration) -> bool {
        self.shared.close();
        let drained = self.shared.drained.notified();
        let mut drained = std::pin::pin!(drained);
        drained.as_mut().enable();
        if self.shared.is_drained() {
            return true;
        }
        let _ = tokio::time::timeout(limit, drained).await;
        self.shared.is_drained()
    }

    /// The handle that stops, restarts and runs the pool's background upkeep now.
    pub fn maintenance(&self) -> Maintenance<M> {
        Maintenance::new(Arc::clone(&self.shared))
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

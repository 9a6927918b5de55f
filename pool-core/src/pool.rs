//! [`Pool`]: the public handle.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::bounded::bounded;
use crate::builder::Builder;
use crate::checkout::Checkout;
use crate::config::Config;
use crate::connection::{ConnectionMetrics, Live, PooledConnection};
use crate::error::{
    AddError, AddRefusal, ConfigError, ConnectError, Error, TimeoutError, TimeoutStage,
};
use crate::health::Health;
use crate::maintenance;
use crate::manager::Manager;
use crate::retry::Retry;
use crate::shared::{Policy, Shared, State};
use crate::stats::{CloseReason, Stats, Status};
use crate::waiter::{Grant, Queued, Waiter};

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

/// What a connection on its way out turned out to need.
enum Inspected<'a, M: Manager> {
    /// Nothing: hand it out.
    Ready(Live<M::Connection>),
    /// A reset, a check or both, under a guard that closes it if the caller goes away.
    Work(Checkout<'a, M>, Work),
    /// It was closed (expired, or broken while idle).
    Closed,
}

/// The async steps a checkout needs.
#[derive(Clone, Copy)]
struct Work {
    reset: bool,
    check: bool,
}

/// How long an acquire may wait.
#[derive(Clone, Copy)]
enum Wait {
    /// `Config::acquire_timeout`.
    Configured,
    /// At most this long.
    For(Duration),
    /// Not at all: only an idle connection will do.
    Never,
    /// At most this long, and never past `Config::acquire_timeout`.
    Capped(Duration),
}

impl Wait {
    /// How long an acquire may take in all, given `Config::acquire_timeout`; `None` for no
    /// limit. (`Never` queues for no time, but its reset and check get the configured limit.)
    fn limit(self, configured: Option<Duration>) -> Option<Duration> {
        match self {
            Wait::Configured | Wait::Never => configured,
            Wait::For(limit) => Some(limit),
            Wait::Capped(limit) => Some(configured.map_or(limit, |c| c.min(limit))),
        }
    }
}

/// When an acquire started (now, if it has not been given a start yet) and its deadline, given
/// how long it may take in all.
fn started_and_deadline(
    started: &mut Option<Instant>,
    limit: Option<Duration>,
) -> (Instant, Option<Instant>) {
    let start = *started.get_or_insert_with(Instant::now);
    (start, limit.and_then(|limit| start.checked_add(limit)))
}

/// What [`Pool::begin`] found.
enum Step<M: Manager> {
    /// An idle connection, now counted in use.
    Idle(Live<M::Connection>),
    /// A place in the queue, and when the acquire started.
    Queued(oneshot::Receiver<Grant<M>>, Instant),
}

impl<M: Manager> Pool<M> {
    /// Starts configuring a pool of connections made by `manager`.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    /// Checks out a connection, waiting at most
    /// [`Config::acquire_timeout`](crate::Config::acquire_timeout).
    ///
    /// An idle connection is taken at once (after its reset and, if due, its check) unless
    /// others are already queued: callers are served first come, first served. Otherwise the
    /// caller queues, and the pool opens a connection if it has room; whichever comes first, a
    /// returned connection or a new one, is handed to the oldest caller.
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
        self.acquire(Wait::Configured, Location::caller())
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
        self.acquire(Wait::For(timeout), Location::caller())
    }

    /// Takes an idle connection if one is free and nobody is queued; never queues and never
    /// opens a connection. The future may still await the connection's reset and check.
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
        self.acquire(Wait::Never, Location::caller())
    }

    async fn acquire(
        &self,
        wait: Wait,
        caller: &'static Location<'static>,
    ) -> Result<PooledConnection<M>, Error<M::Error>> {
        let shared = &self.shared;
        let mut started: Option<Instant> = None;
        // Whether this acquire queued at any point: then it counts as waited, however it is
        // served in the end; otherwise as direct, counted by `begin` when it takes an idle
        // connection (and taken back if that connection fails its reset or check).
        let mut queued = false;
        loop {
            let (policy, step) = self.begin(wait, !queued, started)?;
            // The wait recorded in the stats for this grant, taken back if the connection
            // turns out unusable and the caller queues again.
            let mut recorded = None;
            let live = match step {
                Step::Idle(live) => live,
                Step::Queued(rx, since) => {
                    queued = true;
                    started = Some(since);
                    // Deadlines are enforced by the background task, which must be running.
                    maintenance::ensure_started(shared);
                    match Waiter::new(shared, rx).await {
                        Grant::Conn { live, waited } => {
                            recorded = Some(waited);
                            live
                        }
                        Grant::Failed(error) => return Err(Error::Connect(error)),
                        Grant::TimedOut => return Err(self.timeout(since, TimeoutStage::Waiting)),
                        Grant::Closed => return Err(Error::Closed),
                    }
                }
            };
            // Most checkouts need neither a reset nor a check: they skip the async part. What a
            // timeout reports the acquire was doing: a connection closed at once (expired,
            // broken) sends it back to waiting, not to preparing.
            let (prepared, stage) = match self.inspect(live, &policy) {
                Inspected::Ready(live) => (Some(live), TimeoutStage::Waiting),
                Inspected::Work(checkout, work) => (
                    self.prepare(checkout, work, wait, &mut started).await,
                    TimeoutStage::Preparing,
                ),
                Inspected::Closed => (None, TimeoutStage::Waiting),
            };
            match prepared {
                Some(mut live) => {
                    live.meta.uses += 1;
                    if queued && recorded.is_none() {
                        // Queued once, then served directly after the connection it was sent
                        // failed: still a waited acquire.
                        let waited = started.map_or(Duration::ZERO, |s| s.elapsed());
                        let mut st = shared.lock();
                        st.stats.acquires_waited += 1;
                        st.stats.wait_time.record(waited);
                    }
                    shared.health.served();
                    if policy.track_leaks {
                        shared.watch_leak(live.meta.id, caller, shared.now());
                    }
                    return Ok(PooledConnection::new(live, Arc::clone(shared)));
                }
                None => {
                    let limit = {
                        let mut st = shared.lock();
                        match recorded {
                            Some(waited) => {
                                st.stats.acquires_waited -= 1;
                                st.stats.wait_time.forget(waited);
                            }
                            None if !queued => st.stats.acquires_direct -= 1,
                            None => {}
                        }
                        wait.limit(st.config.acquire_timeout)
                    };
                    let (start, deadline) = started_and_deadline(&mut started, limit);
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(self.timeout(start, stage));
                    }
                }
            }
        }
    }

    /// Takes an idle connection if nobody is queued, else queues the caller (and reserves a
    /// connect if there is room). `count_direct` counts a direct acquire in the stats;
    /// `started` is when the acquire first queued, if it did.
    #[inline]
    fn begin(
        &self,
        wait: Wait,
        count_direct: bool,
        started: Option<Instant>,
    ) -> Result<(Policy, Step<M>), Error<M::Error>> {
        let mut st = self.shared.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        let policy = st.policy();
        if st.waiting == 0 {
            if let Some(live) = st.pop_idle() {
                if count_direct {
                    st.stats.acquires_direct += 1;
                }
                return Ok((policy, Step::Idle(live)));
            }
        }
        self.queue(st, wait, policy, started)
    }

    /// The part of [`begin`](Self::begin) for a caller that found no idle connection it may
    /// take: queues it, unless it may not wait.
    #[inline(never)]
    fn queue(
        &self,
        mut st: MutexGuard<'_, State<M>>,
        wait: Wait,
        policy: Policy,
        started: Option<Instant>,
    ) -> Result<(Policy, Step<M>), Error<M::Error>> {
        if let Wait::Never = wait {
            return Err(Error::NoIdle);
        }
        let limit = wait.limit(st.config.acquire_timeout);
        if let Some(max_waiters) = st.config.max_waiters.filter(|&m| st.waiting >= m) {
            st.stats.acquires_rejected += 1;
            return Err(Error::Rejected { max_waiters });
        }
        let since = started.unwrap_or_else(Instant::now);
        let deadline = limit.and_then(|limit| since.checked_add(limit));
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back(Queued {
            tx,
            since,
            deadline,
        });
        st.waiting += 1;
        // The background task sleeps until the earliest deadline it knows of; only a caller
        // due before that has to wake it.
        let mut wake = false;
        if let Some(at) = deadline {
            if st.next_deadline.is_none_or(|next| at < next) {
                st.next_deadline = Some(at);
                wake = st.sleeping_until.is_none_or(|until| at < until);
            }
        }
        self.shared.settle(st, None);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok((policy, Step::Queued(rx, since)))
    }

    /// Looks at a connection on its way out, without awaiting: closes it if it expired or
    /// broke while idle, and says whether it needs a reset or a check first.
    #[inline]
    fn inspect<'a>(&'a self, mut live: Live<M::Connection>, policy: &Policy) -> Inspected<'a, M> {
        let shared = &self.shared;
        let manager = &shared.manager;
        let now = shared.now();
        let close = if live.meta.expired(now, policy.max_lifetime) {
            Some(CloseReason::Expired)
        } else if manager.has_broken(&mut live.conn) {
            // Asked again on the way out, as it costs nothing: a connection the server closed
            // while it sat idle is caught even when the checkout check is skipped.
            Some(CloseReason::Broken)
        } else {
            None
        };
        if let Some(reason) = close {
            Checkout::new(shared, live).close(reason);
            return Inspected::Closed;
        }
        if live.meta.dirty && !manager.needs_reset(&mut live.conn) {
            live.meta.dirty = false;
        }
        let fresh = now.saturating_sub(live.meta.last_active()) < policy.skip_check_within;
        let work = Work {
            reset: live.meta.dirty,
            check: policy.check_on_checkout && !fresh,
        };
        if work.reset || work.check {
            Inspected::Work(Checkout::new(shared, live), work)
        } else {
            Inspected::Ready(live)
        }
    }

    /// Resets and checks a connection on its way out, as `work` says, within what is left of
    /// the acquire's time; `None` if it had to be closed.
    ///
    /// The fast path reads no real clock, so an acquire that gets here without having queued
    /// counts as started when its reset or check first has to wait. That start is kept in
    /// `started`, so a caller whose connection fails gets no fresh limit.
    async fn prepare(
        &self,
        mut checkout: Checkout<'_, M>,
        work: Work,
        wait: Wait,
        started: &mut Option<Instant>,
    ) -> Option<Live<M::Connection>> {
        let shared = &self.shared;
        let manager = &shared.manager;
        let (limit, reset_timeout, check_timeout) = {
            let st = shared.lock();
            let c = &st.config;
            (
                wait.limit(c.acquire_timeout),
                c.reset_timeout,
                c.check_timeout,
            )
        };
        // Worked out the first time a reset or check has to wait, not before.
        let mut deadline = None;
        let mut left = || {
            deadline
                .get_or_insert_with(|| started_and_deadline(started, limit).1)
                .map_or(Duration::MAX, |d| {
                    d.saturating_duration_since(Instant::now())
                })
        };
        let live = checkout.live();
        if work.reset {
            let limit = || reset_timeout.min(left());
            if !matches!(
                bounded(manager.reset(&mut live.conn), limit).await,
                Some(Ok(()))
            ) {
                checkout.close(CloseReason::ResetFailed);
                return None;
            }
            live.meta.dirty = false;
        }
        if work.check {
            let limit = || check_timeout.min(left());
            if !matches!(
                bounded(manager.check(&mut live.conn), limit).await,
                Some(Ok(()))
            ) {
                checkout.close(CloseReason::CheckFailed);
                return None;
            }
            live.meta.last_checked = shared.now();
        }
        Some(checkout.keep())
    }

    fn timeout(&self, start: Instant, stage: TimeoutStage) -> Error<M::Error> {
        let mut st = self.shared.lock();
        st.stats.acquires_timed_out += 1;
        if st.last_error.is_some() && st.size() == 0 {
            self.shared.health.worsen(Health::Unavailable);
        }
        Error::Timeout(TimeoutError {
            waited: start.elapsed(),
            stage,
            in_use: st.in_use,
            max_size: st.config.max_size,
            waiting: st.waiting,
            last_error: st.last_error.clone(),
        })
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
                let timeout = match self.acquire(Wait::Capped(limit), caller).await {
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
        let mut stats = self.shared.lock().stats.clone();
        // Kept apart from the histogram while counting; see `record_zeros`.
        stats.wait_time.record_zeros(stats.acquires_direct);
        stats
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
            .min(st.idle.len());
        let closing: Vec<_> = st
            .idle
            .drain(..excess)
            .map(|live| (live, CloseReason::Retired))
            .collect();
        for _ in &closing {
            st.stats.closes.add(CloseReason::Retired);
        }
        self.shared.settle(st, closing);
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
        } else if st.size() + st.connecting >= st.config.max_size {
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
        let taken: Vec<_> = {
            let mut st = shared.lock();
            let idle = std::mem::take(&mut st.idle);
            st.in_use += idle.len();
            idle.into_iter()
                .map(|live| Checkout::new(shared, live))
                .collect()
        };
        for mut checkout in taken {
            let live = checkout.live();
            if keep(&live.conn, &live.meta.public(&shared.clock)) {
                shared.restore(checkout.keep());
            } else {
                checkout.close(CloseReason::Retain);
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
            .idle
            .drain(..)
            .map(|live| (live, CloseReason::Retired))
            .collect();
        for _ in &closing {
            st.stats.closes.add(CloseReason::Retired);
        }
        self.shared.settle(st, closing);
        self.shared.recovered.notify_waiters();
        tracing::info!(target: "pool_core::recovery", "recovery signalled: idle connections closed, backoff reset");
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

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

//! The state every handle of one pool shares, and the operations that change its counts.
//!
//! Every connection is in exactly one place: in `idle`, or counted in `in_use` (held by a
//! caller, being reset or checked, in transit to a waiter, or under a keepalive check). Each
//! place that takes a connection out of `idle` or opens a slot owns an RAII guard that puts the
//! count back, so a dropped future or a panic cannot leak a slot. The lock is never held while
//! manager code runs or while a connection is dropped.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::aging::{AgingPolicy, Outcomes};
use crate::clock::{nanos, Clock, Nanos};
use crate::config::{Config, Fairness, SelfDeadlock};
use crate::connection::{Live, Meta};
use crate::deferral::Deferral;
use crate::error::ConnectError;
use crate::health::{Health, HealthState};
use crate::leak::{self, LeakRecord};
use crate::ledger::Ledger;
use crate::maintenance;
use crate::manager::Manager;
use crate::queue::{Grant, Key, Queue};
use crate::recycle::{Cleanup, Recycle, Verdict};
use crate::stats::{CloseReason, Stats, Status};
use crate::upkeep::{Schedule, UpkeepLevel};
use crate::warnings::{self, Episodes};

/// What an acquire needs to know to hand out an idle connection that needs no reset or check:
/// the configuration in the clock's unit, small enough to copy under the lock. The slower
/// paths read the rest of the configuration when they get there.
#[derive(Clone, Copy)]
pub(crate) struct Policy {
    /// Whether a caller may take an idle connection while others wait (see `Fairness`).
    pub(crate) overtaking: bool,
    pub(crate) check_on_checkout: bool,
    pub(crate) skip_check_within: Nanos,
    /// `u64::MAX` for none.
    pub(crate) max_lifetime: Nanos,
    /// Whether each checkout's holder is recorded (for leak reports and self-deadlock
    /// detection).
    pub(crate) track_holders: bool,
    /// Whether a returned connection takes the plain way back: `Recycle::Fast`, no check on
    /// return, a fixed lifetime.
    pub(crate) plain_return: bool,
}

pub(crate) struct State<M: Manager> {
    /// Changed only through `set_config`, which keeps `policy` in step.
    pub(crate) config: Config,
    policy: Policy,
    /// Where each connection is: the only place the counts change.
    pub(crate) ledger: Ledger<M::Connection>,
    /// Queued callers, in the order they are served.
    pub(crate) queue: Queue<M>,
    /// Whether a connection returned while callers wait may be made idle without waking one.
    pub(crate) deferral: Deferral,
    /// When the background task wakes next on its own; `None` while it is awake (or not
    /// running), and then it looks at the queue's next deadline before it sleeps again.
    pub(crate) sleeping_until: Option<Instant>,
    pub(crate) closed: bool,
    /// Set by `Pool::pause`: nobody is handed a connection and no connection is opened; callers
    /// queue (within their timeouts) until `Pool::resume`.
    pub(crate) paused: bool,
    /// Bumped by `signal_recovery`: connections of an older generation are closed when seen.
    pub(crate) generation: u16,
    /// Connects that failed in a row; drives the backoff.
    pub(crate) failures: u32,
    /// Whether the last of those failures was permanent (a wrong password, say): then a new
    /// caller gets a fresh attempt at once instead of waiting out the backoff.
    pub(crate) permanent_failure: bool,
    /// No new connect starts before this (backoff after failures).
    pub(crate) retry_at: Option<Instant>,
    /// When the background task should clean connections returned with session state to undo
    /// (an open transaction holding locks); `None` while none waits for that.
    pub(crate) tend_at: Option<Instant>,
    /// When the background task should go on retiring expired connections it left for later
    /// (it retires a share of the pool per round). Apart from `wake_at`, which `settle` acts on
    /// at once: this one must wait for its moment.
    pub(crate) retire_at: Option<Instant>,
    /// With a connect rate, the earliest start of the next connect.
    pub(crate) next_connect: Option<Instant>,
    /// When the background task should look again at connects it could not start yet.
    pub(crate) wake_at: Option<Instant>,
    pub(crate) last_error: Option<Arc<ConnectError<M::Error>>>,
    /// Connections a lazily built pool still opens in the background (`initial_size`).
    pub(crate) prefill: usize,
    pub(crate) leaks: HashMap<u64, LeakRecord>,
    /// Whether a self-deadlock was reported already (once per pool).
    pub(crate) deadlock_warned: bool,
    pub(crate) stats: Stats,
    /// Recent outcomes of connections, for `AgingPolicy::Adaptive`.
    pub(crate) outcomes: Outcomes,
    /// Where the soft-limit warnings' episodes stand.
    pub(crate) episodes: Episodes,
    /// The background task's work by level, and its interval.
    pub(crate) schedule: Schedule,
}

/// Holds a value on cache lines of its own (128 bytes: Intel fetches lines in adjacent pairs).
/// The pool's lock and the state behind it change hands between threads on every acquire;
/// a field read on every acquire (the clock) on one of their lines would be fetched again from
/// the other thread's cache each time that thread took the lock.
#[repr(align(128))]
struct OwnLines<T>(T);

pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    state: OwnLines<Mutex<State<M>>>,
    pub(crate) clock: Clock,
    next_id: AtomicU64,
    /// Wakes the background task early.
    pub(crate) wake: Arc<Notify>,
    /// Signalled when a closed pool has no connection and no connect left.
    pub(crate) drained: Notify,
    /// Ends the backoff of connects sleeping after failures: on `signal_recovery`, on `close`,
    /// and when another connect succeeded.
    pub(crate) retry_now: Notify,
    pub(crate) maintenance_started: AtomicBool,
    pub(crate) health: HealthState,
    /// Signalled when a round of upkeep ends.
    pub(crate) round_ended: Notify,
    /// Where the pool's figures are recorded through the `metrics` facade (nothing without
    /// the `metrics` feature).
    pub(crate) metrics: crate::metrics::Recorder,
}

impl<M: Manager> State<M> {
    pub(crate) fn size(&self) -> usize {
        self.ledger.size()
    }

    pub(crate) fn status(&self) -> Status {
        Status {
            size: self.size(),
            idle: self.ledger.idle(),
            in_use: self.ledger.in_use(),
            connecting: self.ledger.connecting(),
            waiting: self.queue.len(),
            max_size: self.config.max_size,
        }
    }

    /// What checkouts follow now; worked out once per configuration, not per acquire.
    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the configuration and what follows from it.
    pub(crate) fn set_config(&mut self, config: Config) {
        self.policy = Policy::of(&config, self.outcomes.shortened);
        self.config = config;
    }

    /// Records how a connection fared, for `AgingPolicy::Adaptive`: shortens or restores the
    /// lifetime when the failure rate crosses its bounds.
    pub(crate) fn note_outcome(&mut self, failed: bool, now: Nanos) {
        let AgingPolicy::Adaptive(aging) = self.config.aging else {
            return;
        };
        let Some(shortened) = self.outcomes.record(failed, now, &aging) else {
            return;
        };
        self.policy = Policy::of(&self.config, shortened);
        let rate = self.outcomes.rate(&aging).unwrap_or(0.0) * 100.0;
        if shortened {
            self.stats.lifetimes_shortened += 1;
            tracing::warn!(
                target: "pool_core::aging",
                failure_rate = rate,
                "{rate:.1} % of recent connection outcomes failed: lifetimes shortened to {:.0} % \
                 of max_lifetime",
                aging.shortened_to * 100.0,
            );
        } else {
            tracing::info!(
                target: "pool_core::aging",
                failure_rate = rate,
                "connection failures subsided ({rate:.1} %): lifetimes restored",
            );
        }
    }

    /// Counts an acquire served after queueing at `now`, and warns if it waited long.
    pub(crate) fn record_waited(
        &mut self,
        priority: crate::priority::Priority,
        waited: Duration,
        now: Nanos,
    ) {
        self.stats.record_waited(priority, waited);
        if let Some(limits) = &self.config.soft_limits {
            let timeout = self.config.acquire_timeout;
            self.episodes
                .waited(limits, waited, timeout, now, &mut self.stats.warnings);
        }
    }

    /// Queues background work of `level` and says whether the background task sleeps past it
    /// and must be woken.
    pub(crate) fn request_upkeep(&mut self, level: UpkeepLevel) -> bool {
        let at = match level {
            UpkeepLevel::Medium => Instant::now() + self.upkeep_floor(),
            _ => Instant::now(),
        };
        self.schedule.request(level, at) && self.sleeping_until.is_none_or(|until| at < until)
    }

    /// The shortest routine interval in force.
    pub(crate) fn upkeep_floor(&self) -> Duration {
        self.config
            .maintenance_interval_min
            .min(self.config.maintenance_interval)
    }
}

/// How much of `max_lifetime` may be taken off one connection's life, so connections opened
/// together do not all expire together: 1/40 of the lifetime, but at least four upkeep
/// intervals (upkeep closes whatever expired since its last round in one go, so a spread
/// narrower than its interval spreads nothing), and never more than a quarter of the lifetime.
/// A share of the lifetime in 256ths (see `Meta::lifetime_share`).
fn lifetime_spread(config: &Config) -> u8 {
    config.max_lifetime.map_or(0, |lifetime| {
        let spread = (lifetime / 40)
            .max(config.maintenance_interval.saturating_mul(4))
            .min(lifetime / 4);
        ((u128::from(nanos(spread)) << 8) / u128::from(nanos(lifetime).max(1))) as u8
    })
}

impl Policy {
    /// `shortened`: whether `AgingPolicy::Adaptive` shortens lifetimes now.
    fn of(c: &Config, shortened: bool) -> Policy {
        let lifetime = match (c.aging, c.max_lifetime) {
            (AgingPolicy::Adaptive(aging), Some(lifetime)) if shortened => {
                Some(lifetime.mul_f64(aging.shortened_to))
            }
            (_, lifetime) => lifetime,
        };
        Policy {
            overtaking: matches!(c.fairness, Fairness::Bounded(_)),
            check_on_checkout: c.check_on_checkout,
            skip_check_within: nanos(c.skip_check_within),
            max_lifetime: lifetime.map_or(u64::MAX, nanos),
            track_holders: c.leak_threshold.is_some() || c.self_deadlock != SelfDeadlock::Ignore,
            plain_return: c.recycle == Recycle::Fast
                && !c.check_on_return
                && c.aging == AgingPolicy::Fixed,
        }
    }
}

impl<M: Manager> State<M> {
    pub(crate) fn pop_idle(&mut self) -> Option<Live<M::Connection>> {
        self.ledger.check_out(self.config.idle_order)
    }

    /// Why a connection coming back (not counted anywhere) must be closed, if it must.
    fn retire_reason(&self, meta: &Meta, now: Option<Nanos>) -> Option<CloseReason> {
        if self.closed {
            Some(CloseReason::PoolClosed)
        } else if meta.generation != self.generation || self.size() >= self.config.max_size {
            Some(CloseReason::Retired)
        } else if now.is_some_and(|now| meta.expired(now, self.policy.max_lifetime)) {
            Some(CloseReason::Expired)
        } else if self.config.max_uses.is_some_and(|max| meta.uses() >= max) {
            Some(CloseReason::MaxUses)
        } else {
            None
        }
    }

    /// Gives a connection that is not counted anywhere to a waiter, or makes it idle; or hands
    /// it back with the reason it must be closed.
    #[inline]
    pub(crate) fn put_back(
        &mut self,
        live: Live<M::Connection>,
        now: Option<Nanos>,
    ) -> Result<(), (Live<M::Connection>, CloseReason)> {
        if let Some(reason) = self.retire_reason(&live.meta, now) {
            self.stats.closes.add(reason);
            return Err((live, reason));
        }
        if self.queue.is_empty() || self.paused {
            self.ledger.make_idle(live);
        } else {
            self.share_out(live);
        }
        Ok(())
    }

    /// Shares out a connection while callers wait, as `Config::fairness` says: straight to the
    /// caller to serve next if overtaking is off, or if the pool owes it one (see
    /// [`Queue::owed`]); otherwise it is made idle and one caller is sent to take it, and
    /// whoever comes first (that caller, or one that did not queue) gets it.
    ///
    /// A caller is owed a connection for waiting past the bound only after some caller was
    /// passed over (woken, it found its connection taken): a caller that merely has not run yet
    /// (on a busy runtime, every waiter may wait longer than the bound for its turn on a
    /// thread) finds idle connections when it runs, and handing connections to callers that are
    /// not running would turn every acquire into a task switch, the convoy bounded fairness
    /// exists to avoid.
    #[inline(never)]
    fn share_out(&mut self, live: Live<M::Connection>) {
        let boost = self.config.priority_boost_after;
        let granted = match self.config.fairness {
            Fairness::Strict => self.queue.grant_next(Grant::Conn(live), boost),
            Fairness::Bounded(bound) => match self.queue.owed(bound, boost) {
                Some(key) => {
                    self.queue.grant(key, Grant::Conn(live));
                    Ok(())
                }
                None => Err(Grant::Conn(live)),
            },
        };
        match granted {
            Ok(()) => self.ledger.count_in_use(),
            Err(Grant::Conn(live)) => self.ledger.make_idle(live),
            Err(_) => unreachable!("a grant refused comes back as it was"),
        }
        // The caller served may have been the one on its way to another idle connection.
        self.send_or_defer();
    }

    /// [`send_for_idle`](Self::send_for_idle) for a connection just shared out, unless
    /// [`Deferral`] says the caller sent would most likely find it taken; the waiters then count
    /// as passed over, which keeps the fairness bound.
    #[inline]
    fn send_or_defer(&mut self) {
        if !self.unattended() {
            return;
        }
        if self.deferral.defer() {
            self.queue.pass_over();
            self.stats.wakes_deferred += 1;
        } else {
            self.queue.wake_one();
        }
    }

    /// Closes a returned connection that `Recycle` replaces, and asks for one in its place.
    fn replace(&mut self, live: Live<M::Connection>) -> (Live<M::Connection>, CloseReason) {
        if let Some(reason) = self.retire_reason(&live.meta, None) {
            self.stats.closes.add(reason);
            return (live, reason);
        }
        // `prefill` is the size the pool opens connections up to by itself.
        self.prefill = self.prefill.max(self.size() + 1);
        self.stats.closes.add(CloseReason::Recycled);
        (live, CloseReason::Recycled)
    }

    /// Warns, if the soft limits say so, of a connection returned past the end of its lifetime
    /// that began before its user got it.
    #[cold]
    fn overdue(&mut self, meta: &Meta, handed_out: Nanos, now: Nanos) {
        if !self.config.soft_limits.is_some_and(|limits| limits.overdue) {
            return;
        }
        let lifetime = self.policy.max_lifetime;
        let end = meta
            .created()
            .saturating_add(lifetime.saturating_sub(meta.lifetime_cut(lifetime)));
        if handed_out < end {
            let late = std::time::Duration::from_nanos(now.saturating_sub(end));
            warnings::overdue(meta.id(), late, &mut self.stats.warnings);
        }
    }

    /// Whether a connection is idle while callers wait and none of them is on its way to it.
    #[inline]
    fn unattended(&self) -> bool {
        !self.paused && self.ledger.idle() > 0 && !self.queue.is_empty() && self.queue.woken() == 0
    }

    /// Keeps the queue's promise: while a connection is idle and callers wait, one of them is
    /// on its way to take it. (A connection returned may be left for a moment without one: see
    /// [`Deferral`].)
    pub(crate) fn send_for_idle(&mut self) {
        if self.unattended() {
            self.queue.wake_one();
        }
    }

    /// When the background task is to look after deferred sends next, if it is.
    pub(crate) fn next_look(&self) -> Option<Instant> {
        self.deferral
            .watched()
            .then(|| Instant::now() + crate::deferral::LOOK)
    }

    /// An idle connection for the queued caller holding `key`, who was woken to take one; it
    /// leaves the queue if it gets one. If it gets none, it waits on in its place, passed over.
    pub(crate) fn take_idle_for(
        &mut self,
        key: Key,
        cx: &mut std::task::Context<'_>,
    ) -> Option<Live<M::Connection>> {
        let live = if self.paused { None } else { self.pop_idle() };
        let Some(live) = live else {
            self.queue.park(key, cx);
            self.deferral.missed();
            return None;
        };
        self.deferral.found();
        self.queue.leave(key);
        self.send_for_idle();
        Some(live)
    }

    /// Fails waiters with a permanent connect error: all of them when nothing else could serve
    /// them, else the one to serve next.
    pub(crate) fn fail_waiters(&mut self, error: &Arc<ConnectError<M::Error>>) {
        if self.size() == 0 && self.ledger.connecting() <= 1 {
            self.queue.settle_all(|| Grant::Failed(Arc::clone(error)));
        } else {
            let boost = self.config.priority_boost_after;
            let _ = self
                .queue
                .grant_next(Grant::Failed(Arc::clone(error)), boost);
            // The caller failed may have been the one on its way to an idle connection.
            self.send_for_idle();
        }
    }

    /// The background task's look at the queue, each time it wakes (every
    /// [`deferral::LOOK`](crate::deferral::LOOK) while sends are deferred): times out every
    /// queued caller whose deadline is `now` or earlier, and sends for a connection left idle
    /// by a deferred send or by a timed-out caller that had been on its way to it.
    pub(crate) fn look_at_waiters(&mut self, now: Instant) {
        let expired_woken = self.queue.expire(now);
        // Called every time: it also decides whether the task looks again within `LOOK`.
        let deferred = self.deferral.look();
        if expired_woken || deferred {
            self.send_for_idle();
        }
    }

    /// Where the task `me` checked out a connection of this pool it still holds, if it holds one
    /// and asking for another can never be served: no connection is idle or being opened, the
    /// pool is full, and every connection is held by a task that is itself queued here.
    /// Needs every checkout tracked (`Policy::track_holders`).
    pub(crate) fn self_deadlock(&self, me: tokio::task::Id) -> Option<&'static Location<'static>> {
        let held_at = self.leaks.values().find(|h| h.task == Some(me))?.caller;
        let stuck = self.ledger.idle() == 0
            && self.ledger.connecting() == 0
            && self.size() >= self.config.max_size
            // Connections in transit or being prepared are held by nobody yet.
            && self.leaks.len() == self.ledger.in_use()
            && self.leaks.values().all(|h| {
                h.task
                    .is_some_and(|task| task == me || self.queue.has_task(task))
            });
        stuck.then_some(held_at)
    }

    /// Asks the background task to clean the connections returned dirty once they have sat idle
    /// for `TEND_AFTER`; returns whether it sleeps past that and must be woken.
    #[cold]
    fn schedule_tending(&mut self) -> bool {
        let at = Instant::now() + maintenance::TEND_AFTER;
        self.tend_at = Some(at);
        self.sleeping_until.is_some_and(|until| at < until)
    }

    /// Connections still wanted: queued callers not covered by idle connections (a woken
    /// caller may not have taken its connection yet), the `min_idle` shortfall once they have,
    /// and what a lazy build still has to open.
    pub(crate) fn demand(&self) -> usize {
        let (waiting, idle) = (self.queue.len(), self.ledger.idle());
        let idle_short = self
            .config
            .min_idle
            .saturating_sub(idle.saturating_sub(waiting));
        let prefill_short = self.prefill.saturating_sub(self.size());
        waiting.saturating_sub(idle) + idle_short.max(prefill_short)
    }

    /// Reserves and returns how many connects to start now, within `max_size`, the connect
    /// concurrency, the backoff and the connect rate.
    pub(crate) fn reserve_connects(&mut self) -> usize {
        if self.closed || self.paused {
            return 0;
        }
        if self.size() >= self.prefill {
            self.prefill = 0;
        }
        let room = self
            .config
            .max_size
            .saturating_sub(self.size() + self.ledger.connecting());
        let parallel = self
            .config
            .max_concurrent_connects
            .saturating_sub(self.ledger.connecting());
        let mut n = self
            .demand()
            .saturating_sub(self.ledger.connecting())
            .min(room)
            .min(parallel);
        if n == 0 {
            return 0;
        }
        let now = Instant::now();
        if let Some(at) = self.retry_at.filter(|&at| at > now) {
            // The backoff spares a struggling server a storm of transient failures. A permanent
            // one (a wrong password) is not worth waiting out: a caller queued since then gets
            // one fresh attempt at once, so it hears the server's answer rather than a timeout.
            if !(self.permanent_failure && !self.queue.is_empty() && self.ledger.connecting() == 0)
            {
                self.wake_at = Some(at);
                return 0;
            }
            n = 1;
        }
        if let Some(rate) = self.config.connect_rate {
            let gap = Duration::from_secs(1) / rate;
            let next = self.next_connect.unwrap_or(now).max(now);
            if next > now {
                self.wake_at = Some(next);
                return 0;
            }
            n = 1;
            self.next_connect = Some(next + gap);
        }
        self.ledger.begin_connects(n);
        n
    }

    /// The pause before the next connect attempt after `failures` in a row, with jitter.
    pub(crate) fn backoff(&self) -> Duration {
        let base = self.config.connect_backoff;
        let cap = self.config.connect_backoff_max;
        let doubled = base.saturating_mul(1u32 << self.failures.saturating_sub(1).min(20));
        let full = doubled.min(cap);
        full / 2 + full.mul_f64(fastrand::f64() / 2.0)
    }

    fn drained(&self) -> bool {
        self.closed && self.size() == 0 && self.ledger.connecting() == 0
    }
}

impl<M: Manager> Shared<M> {
    pub(crate) fn new(manager: M, config: Config, prefill: usize) -> Self {
        let wake = Arc::new(Notify::new());
        let metrics = crate::metrics::Recorder::new(&config);
        Shared {
            clock: Clock::new(),
            manager,
            state: OwnLines(Mutex::new(State {
                policy: Policy::of(&config, false),
                schedule: Schedule::new(config.maintenance_interval),
                outcomes: Outcomes::default(),
                episodes: Episodes::default(),
                ledger: Ledger::new(),
                config,
                queue: Queue::new(),
                deferral: Deferral::new(),
                sleeping_until: None,
                closed: false,
                paused: false,
                generation: 0,
                failures: 0,
                permanent_failure: false,
                tend_at: None,
                retire_at: None,
                retry_at: None,
                next_connect: None,
                wake_at: None,
                last_error: None,
                prefill,
                leaks: HashMap::new(),
                deadlock_warned: false,
                stats: Stats::default(),
            })),
            next_id: AtomicU64::new(1),
            wake,
            drained: Notify::new(),
            retry_now: Notify::new(),
            maintenance_started: AtomicBool::new(false),
            health: HealthState::new(),
            round_ended: Notify::new(),
            metrics,
        }
    }

    /// Locks the state. No user code runs under the lock, and the lock does not poison: a
    /// release during a panic (which closes the connection) still finds whole counts.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state.0.lock()
    }

    pub(crate) fn new_live(&self, conn: M::Connection, st: &State<M>) -> Live<M::Connection> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let meta = Meta::new(
            id,
            self.clock.precise(),
            st.generation,
            lifetime_spread(&st.config),
        );
        Live::new(conn, meta)
    }

    /// The time, at most about `clock::RESOLUTION` behind; cheap while the background task runs.
    #[inline]
    pub(crate) fn now(self: &Arc<Self>) -> Nanos {
        match self.clock.cached() {
            Some(now) => now,
            None => self.refresh_clock(),
        }
    }

    /// Reads the real clock and makes sure the background task marks it stale again: woken if
    /// it sleeps, started if it is gone (its runtime shut down since it was started: a pool in a
    /// `static` used by one test runtime after another, say).
    #[cold]
    fn refresh_clock(self: &Arc<Self>) -> Nanos {
        let (now, start_ticking) = self.clock.refresh();
        if start_ticking {
            if maintenance::ensure_started(self) {
                self.wake.notify_one();
            } else {
                // No runtime here to run the task: trust no cache until one does.
                self.clock.stop();
            }
        }
        now
    }

    /// Ends the lock, then closes what must be closed and starts the connects reserved, in that
    /// order, so no connection is dropped and no task spawned under the lock.
    pub(crate) fn settle(
        self: &Arc<Self>,
        mut st: MutexGuard<'_, State<M>>,
        closing: impl IntoIterator<Item = (Live<M::Connection>, CloseReason)>,
    ) {
        let connects = st.reserve_connects();
        let drained = st.drained();
        let wake = st.wake_at.is_some();
        self.metrics.publish(&st);
        drop(st);
        for (live, reason) in closing {
            tracing::debug!(target: "pool_core::close", id = live.meta.id(), reason = reason.as_str(), "closing connection");
            drop(live);
        }
        if drained {
            self.drained.notify_waiters();
        }
        if wake {
            self.wake.notify_one();
        }
        self.spawn_connects(connects);
    }

    /// Starts `n` reserved connects as tasks of their own; outside a runtime, hands them to the
    /// background task instead.
    pub(crate) fn spawn_connects(self: &Arc<Self>, n: usize) {
        if n == 0 {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                for _ in 0..n {
                    handle.spawn(crate::connector::connect(Arc::clone(self)));
                }
            }
            Err(_) => {
                let mut st = self.lock();
                st.ledger.end_connects(n);
                st.wake_at = Some(Instant::now());
                drop(st);
                self.wake.notify_one();
            }
        }
    }

    /// Takes back a connection a caller returned (the `Drop` of `PooledConnection`).
    pub(crate) fn release(self: &Arc<Self>, mut live: Live<M::Connection>) {
        let broken = if std::thread::panicking() {
            Some(CloseReason::Abandoned)
        } else if self.manager.has_broken(&mut live.conn) {
            Some(CloseReason::Broken)
        } else {
            None
        };
        let needs_reset = broken.is_none() && self.manager.needs_reset(&mut live.conn);
        let now = self.now();
        // While out, `last_used` says when it was handed out.
        let handed_out = std::mem::replace(&mut live.meta.last_used, now);
        // The manager's answer stands until the next checkout (nobody uses the connection
        // meanwhile), so that checkout need not ask again.
        live.meta.cleanup = if needs_reset {
            Cleanup::Reset
        } else {
            Cleanup::None
        };
        let mut st = self.lock();
        st.ledger.count_returned();
        let held = now.saturating_sub(handed_out);
        st.stats.record_use(held / 1000, self.clock.hour());
        self.metrics.used(held);
        let leaked = if st.leaks.is_empty() {
            None
        } else {
            st.leaks.remove(&live.meta.id())
        };
        if !st.policy.plain_return {
            return self.release_by_policy(st, live, broken, needs_reset, handed_out, leaked);
        }
        let goes_idle = st.queue.is_empty();
        let outcome = match broken {
            Some(reason) => {
                st.stats.closes.add(reason);
                Err((live, reason))
            }
            None => st.put_back(live, Some(now)),
        };
        let tend = needs_reset && goes_idle && outcome.is_ok() && st.tend_at.is_none();
        self.finish_release(st, outcome, tend, (handed_out, now), leaked);
    }

    /// The rest of [`release`](Self::release) under the lifecycle policies in force (a recycling
    /// strategy other than `Fast`, a check on return, adaptive aging).
    #[cold]
    #[inline(never)]
    fn release_by_policy(
        self: &Arc<Self>,
        mut st: MutexGuard<'_, State<M>>,
        mut live: Live<M::Connection>,
        broken: Option<CloseReason>,
        needs_reset: bool,
        handed_out: Nanos,
        leaked: Option<LeakRecord>,
    ) {
        let now = live.meta.last_used;
        st.note_outcome(broken.is_some(), now);
        let goes_idle = st.queue.is_empty();
        let verdict = match broken {
            Some(_) => Verdict::Keep(Cleanup::Reset),
            None => st
                .config
                .recycle
                .verdict(&live.meta, handed_out, now, needs_reset),
        };
        live.meta.cleanup = match verdict {
            Verdict::Keep(cleanup) => cleanup,
            Verdict::Replace => Cleanup::None,
        };
        let full = live.meta.cleanup == Cleanup::Full;
        let outcome = match (broken, verdict) {
            (Some(reason), _) => {
                st.stats.closes.add(reason);
                Err((live, reason))
            }
            (None, Verdict::Replace) => Err(st.replace(live)),
            (None, Verdict::Keep(_)) if st.config.check_on_return => {
                match tokio::runtime::Handle::try_current() {
                    // Counted in use until the check has passed.
                    Ok(runtime) => {
                        st.ledger.count_in_use();
                        let (reset_timeout, check_timeout) =
                            (st.config.reset_timeout, st.config.check_timeout);
                        drop(st);
                        let shared = Arc::clone(self);
                        runtime.spawn(async move {
                            maintenance::tend(&shared, live, true, reset_timeout, check_timeout)
                                .await;
                        });
                        if let Some(record) = leaked {
                            leak::returned(&record, now);
                        }
                        return;
                    }
                    Err(_) => st.put_back(live, Some(now)),
                }
            }
            (None, Verdict::Keep(_)) => st.put_back(live, Some(now)),
        };
        let tend = (needs_reset || full) && goes_idle && outcome.is_ok() && st.tend_at.is_none();
        self.finish_release(st, outcome, tend, (handed_out, now), leaked);
    }

    /// The end of every release: closes what must be closed, asks for the clean-up of a dirty
    /// connection gone idle (`tend`), and notes a reported leak's return. `out` is when the
    /// connection was handed out and when it came back.
    #[inline(always)]
    fn finish_release(
        self: &Arc<Self>,
        mut st: MutexGuard<'_, State<M>>,
        outcome: Result<(), (Live<M::Connection>, CloseReason)>,
        tend: bool,
        (handed_out, now): (Nanos, Nanos),
        leaked: Option<LeakRecord>,
    ) {
        let wake = tend && st.schedule_tending();
        self.metrics.publish(&st);
        match outcome {
            Ok(()) => drop(st),
            Err(closing) => {
                if closing.1 == CloseReason::Expired {
                    st.overdue(&closing.0.meta, handed_out, now);
                }
                self.settle(st, Some(closing))
            }
        }
        if tend {
            maintenance::ensure_started(self);
        }
        if wake {
            self.wake.notify_one();
        }
        if let Some(record) = leaked {
            leak::returned(&record, now);
        }
    }

    /// Puts back a connection counted in `in_use` that no caller used (it was looked at by
    /// the pool itself).
    pub(crate) fn restore(self: &Arc<Self>, live: Live<M::Connection>) {
        let mut st = self.lock();
        st.ledger.count_returned();
        let back = st.put_back(live, Some(self.now())).err();
        self.settle(st, back);
    }

    /// Closes a connection that was counted in `in_use`.
    pub(crate) fn close_in_use(self: &Arc<Self>, live: Live<M::Connection>, reason: CloseReason) {
        let mut st = self.lock();
        st.ledger.count_returned();
        st.leaks.remove(&live.meta.id());
        st.stats.closes.add(reason);
        if reason == CloseReason::CheckFailed {
            st.stats.checks_failed += 1;
            self.health.worsen(Health::Degraded);
        }
        let failed = matches!(
            reason,
            CloseReason::CheckFailed | CloseReason::ResetFailed | CloseReason::Broken
        );
        if failed {
            st.note_outcome(true, self.now());
        }
        self.settle(st, Some((live, reason)));
    }

    /// A connection on its way to a caller was found broken or failed its check: its idle
    /// neighbours may be dead too, so they are all checked soon, before they are handed out.
    #[cold]
    pub(crate) fn acquisition_failed(self: &Arc<Self>) {
        if self.lock().request_upkeep(UpkeepLevel::Medium) {
            maintenance::ensure_started(self);
            self.wake.notify_one();
        }
    }

    /// Forgets a connection the caller took out of the pool for good.
    pub(crate) fn detach(self: &Arc<Self>, id: u64) {
        let mut st = self.lock();
        st.ledger.count_returned();
        st.leaks.remove(&id);
        self.settle(st, None);
    }

    /// Starts watching a checked-out connection for leaks.
    pub(crate) fn watch_leak(&self, id: u64, caller: &'static Location<'static>, now: Nanos) {
        self.lock().leaks.insert(
            id,
            LeakRecord {
                id,
                since: now,
                caller,
                task: tokio::task::try_id(),
                warned: false,
            },
        );
    }

    /// Closes the pool: queued callers get `Closed` now, idle connections are closed now, the
    /// others when they come back.
    pub(crate) fn close(self: &Arc<Self>) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        // Sent under the lock: a waiter giving up at the same moment must see either the
        // grant or its own place in the count, never neither.
        st.queue.settle_all(|| Grant::Closed);
        let idle = st.ledger.take_all_idle();
        for _ in 0..idle.len() {
            st.stats.closes.add(CloseReason::PoolClosed);
        }
        let drained = st.drained();
        drop(st);
        tracing::debug!(target: "pool_core::close", idle = idle.len(), "pool closed");
        drop(idle);
        if drained {
            self.drained.notify_waiters();
        }
        // Connects backing off see the pool closed and end now rather than try once more.
        self.retry_now.notify_waiters();
        self.wake.notify_one();
    }

    pub(crate) fn is_drained(&self) -> bool {
        self.lock().drained()
    }
}

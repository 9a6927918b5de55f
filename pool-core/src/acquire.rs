//! The acquire engine behind every `Pool::get*`: take an idle connection or queue for one, then
//! give it its reset and check, and start over if it had to be closed.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use parking_lot::MutexGuard;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::bounded::bounded;
use crate::clock::Nanos;
use crate::config::SelfDeadlock;
use crate::connection::{Live, Meta, PooledConnection};
use crate::error::{Error, TimeoutError, TimeoutStage};
use crate::health::Health;
use crate::maintenance;
use crate::manager::Manager;
use crate::place::QueuePlace;
use crate::priority::Priority;
use crate::queue::{Grant, Key};
use crate::recycle::Cleanup;
use crate::shared::{Policy, Shared, State};
use crate::stats::CloseReason;
use crate::taken::Taken;
use crate::waiter::Waiter;

/// How long an acquire may wait.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
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

/// What a caller asks for.
#[derive(Clone, Copy)]
pub(crate) struct Request<'a> {
    pub(crate) wait: Wait,
    pub(crate) priority: Priority,
    /// Where the caller wants to read its position while it waits.
    pub(crate) place: Option<&'a QueuePlace>,
    pub(crate) caller: &'static Location<'static>,
}

/// What the pool's own figures say of an idle connection on its way out: worked out where the
/// checkout policy is at hand (under the lock, for a connection taken there), so that only the
/// manager's questions are left for after it.
#[derive(Clone, Copy)]
pub(crate) struct Outlook {
    /// The time it was worked out for, which the connection is handed out at.
    at: Nanos,
    pub(crate) expired: bool,
    pub(crate) check: bool,
    /// Whether its holder is recorded (`Policy::track_holders`).
    track_holders: bool,
}

impl Policy {
    /// The outlook of a connection with `meta` handed out at `now`.
    #[inline]
    pub(crate) fn outlook(&self, meta: &Meta, now: Nanos) -> Outlook {
        let fresh = now.saturating_sub(meta.last_active()) < self.skip_check_within;
        Outlook {
            at: now,
            expired: meta.expired(now, self.max_lifetime),
            check: self.check_on_checkout && !fresh,
            track_holders: self.track_holders,
        }
    }
}

/// What a connection on its way out turned out to need.
enum Inspected {
    /// Nothing: hand it out.
    Ready,
    /// A reset, a check or both.
    Work(Work),
    /// It must be closed.
    Close(CloseReason),
}

/// The async steps a checkout needs.
#[derive(Clone, Copy)]
struct Work {
    reset: Cleanup,
    check: bool,
}

/// What [`begin`] found.
enum Begun<C> {
    /// An idle connection, now counted in use, and its outlook.
    Idle(Live<C>, Outlook),
    /// A place in the queue.
    Queued(Key),
}

/// Where an acquire stands after [`begin`], with the connection it took looked at.
enum Found<C> {
    /// An idle connection, counted in use, what it needs, and whether its holder is recorded.
    Taken {
        live: Live<C>,
        inspected: Inspected,
        track_holders: bool,
    },
    /// A place in the queue.
    Queued(Key),
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

/// How many acquires on one thread spend one unit of the runtime's cooperative budget.
const COOP_EVERY: u8 = 8;

thread_local! {
    /// Acquires on this thread since one last spent from the budget.
    static SINCE_COOP: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// Whether this acquire should spend from the runtime's cooperative budget.
#[inline]
fn coop_due() -> bool {
    SINCE_COOP.with(|n| {
        let next = n.get() + 1;
        let due = next >= COOP_EVERY;
        n.set(if due { 0 } else { next });
        due
    })
}

pin_project! {
    /// The future of every `Pool::get*`.
    ///
    /// Its first poll runs as plain code: it takes an idle connection that needs no reset or
    /// check and returns it, or finds out that it cannot. Only then does the acquire become the
    /// [`engine`]'s future, which waits in the queue, resets and checks. An async fn keeps the
    /// locals that live across its awaits in the future's memory and moves them there and back,
    /// so the same checkout inside the engine cost more: 434 instructions per uncontended
    /// acquire + release against 410 this way (callgrind, the `hot_path` example).
    pub(crate) struct Acquire<'a, M: Manager, E, F> {
        // Makes the engine's future from the request and what the first poll found: the
        // function item `engine`, which takes no room.
        engine: E,
        #[pin]
        stage: Stage<'a, M, F>,
    }
}

pin_project! {
    /// Where an [`Acquire`] is.
    #[project = StageProj]
    enum Stage<'a, M: Manager, F> {
        /// Not polled yet.
        Start { shared: &'a Arc<Shared<M>>, request: Request<'a> },
        /// In the engine.
        Engine { #[pin] future: F },
        /// Returned its output.
        Done,
    }
}

/// Checks out a connection for `request`.
///
/// Dropped before its first poll, it did nothing; dropped later, it is the engine's future,
/// which gives back whatever it holds (see `Pool::get`).
pub(crate) fn acquire<'a, M: Manager>(
    shared: &'a Arc<Shared<M>>,
    request: Request<'a>,
) -> impl Future<Output = Result<PooledConnection<M>, Error<M::Error>>> + Send + 'a {
    Acquire {
        engine: engine::<M>,
        stage: Stage::Start { shared, request },
    }
}

impl<'a, M, E, F> Future for Acquire<'a, M, E, F>
where
    M: Manager,
    E: Fn(&'a Arc<Shared<M>>, Request<'a>, Found<M::Connection>) -> F,
    F: Future<Output = Result<PooledConnection<M>, Error<M::Error>>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        loop {
            let (shared, request) = match this.stage.as_mut().project() {
                StageProj::Start { shared, request } => (*shared, &*request),
                StageProj::Engine { future } => {
                    let output = ready!(future.poll(cx));
                    this.stage.set(Stage::Done);
                    return Poll::Ready(output);
                }
                StageProj::Done => panic!("an acquire polled after it returned"),
            };
            // A task that loops on acquire and release against an idle pool never waits on
            // anything, so it would keep its thread from every other task; the runtime's budget
            // makes it yield now and then, as any tokio resource does. Spending from it costs
            // about as much as the rest of an acquire, so only every `COOP_EVERY`th acquire on a
            // thread spends a unit: a looping task still yields, after `COOP_EVERY` times the
            // runtime's budget. (Polled again after that yield, it is no longer due and goes on.)
            if coop_due() {
                ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
            }
            let found = match find(shared, request, true, None, Some(cx.waker())) {
                Ok(Found::Taken {
                    live,
                    inspected: Inspected::Ready,
                    track_holders,
                }) => {
                    let conn = hand_out(shared, live, request, track_holders, Waited::No);
                    this.stage.set(Stage::Done);
                    return Poll::Ready(Ok(conn));
                }
                Ok(found) => found,
                Err(error) => {
                    this.stage.set(Stage::Done);
                    return Poll::Ready(Err(error));
                }
            };
            // Polled at once, in the next round: its first step (joining the queue, say) asks
            // for the wake-up.
            let future = (this.engine)(shared, *request, found);
            this.stage.set(Stage::Engine { future });
        }
    }
}

/// [`begin`], and a look at the connection it took. `now` is read before the lock, to keep the
/// clock's slow path (its first reading starts the background task) out from under it.
#[inline(always)]
fn find<M: Manager>(
    shared: &Arc<Shared<M>>,
    request: &Request<'_>,
    count_direct: bool,
    started: Option<Instant>,
    waker: Option<&Waker>,
) -> Result<Found<M::Connection>, Error<M::Error>> {
    let now = shared.now();
    Ok(
        match begin(shared, request, count_direct, started, now, waker)? {
            Begun::Idle(mut live, outlook) => {
                let inspected = inspect(shared, &mut live, outlook);
                Found::Taken {
                    live,
                    inspected,
                    track_holders: outlook.track_holders,
                }
            }
            Begun::Queued(key) => Found::Queued(key),
        },
    )
}

/// The rest of an acquire that its first poll could not finish: from what that poll `found`,
/// waits in the queue, resets and checks, and starts over while connections have to be closed.
async fn engine<'a, M: Manager>(
    shared: &'a Arc<Shared<M>>,
    request: Request<'a>,
    mut found: Found<M::Connection>,
) -> Result<PooledConnection<M>, Error<M::Error>> {
    let mut started: Option<Instant> = None;
    // Whether this acquire queued at any point: then it counts as waited, however it is served
    // in the end. Until then, `begin` counts each idle connection it takes as a direct acquire;
    // a connection that needs a reset or check first, or is closed on the way out, is no longer
    // counted while that happens, so a caller that goes away or moves on meanwhile leaves no
    // count behind.
    let mut queued = false;
    // Whether its wait is in the stats yet (it is recorded when its connection is collected, if
    // the pool can tell then that the connection needs nothing).
    let mut recorded = false;
    // Whether `found` is what the first poll found: a caller that queued there had its waker
    // registered as it queued (later rounds of this loop queue without one).
    let mut first = true;
    loop {
        let (live, inspected, track_holders, direct) = match found {
            Found::Taken {
                live,
                inspected,
                track_holders,
            } => (live, inspected, track_holders, !queued),
            Found::Queued(key) => {
                queued = true;
                // Deadlines are enforced by the background task, which must be running.
                maintenance::ensure_started(shared);
                let waiter = Waiter::new(shared, key, request.place, first, !recorded);
                let (since, collected) = waiter.await;
                started = Some(since);
                match collected {
                    Ok((mut live, outlook, waited)) => {
                        recorded |= waited;
                        let inspected = inspect(shared, &mut live, outlook);
                        (live, inspected, outlook.track_holders, false)
                    }
                    Err(Grant::Failed(error)) => return Err(Error::Connect(error)),
                    Err(Grant::TimedOut) => {
                        return Err(timeout(shared, request, since, TimeoutStage::Waiting))
                    }
                    Err(Grant::Closed) => return Err(Error::Closed),
                    Err(Grant::Conn(_)) => unreachable!("a connection is collected as `Ok`"),
                }
            }
        };
        // Most checkouts need neither a reset nor a check: they skip the async part. What a
        // timeout reports the acquire was doing: a connection closed at once (expired, broken)
        // sends it back to waiting, not to preparing.
        let (prepared, stage) = match inspected {
            Inspected::Ready => (Some(live), TimeoutStage::Waiting),
            Inspected::Work(work) => {
                // Boxed: the manager's futures would otherwise make every acquire future, and
                // so every queued caller, twice as large (576 bytes against 248 with a unit
                // manager), for a step most checkouts skip and the others spend a round trip on.
                let taken = Taken::new(shared, live);
                let prepared = prepare(shared, taken, work, request, direct, &mut started);
                (Box::pin(prepared).await, TimeoutStage::Preparing)
            }
            Inspected::Close(reason) => {
                Taken::new(shared, live).close(reason);
                if reason == CloseReason::Broken {
                    shared.acquisition_failed();
                }
                if direct {
                    shared.lock().stats.undo_direct(request.priority);
                }
                (None, TimeoutStage::Waiting)
            }
        };
        if let Some(live) = prepared {
            let waited = if recorded {
                Waited::Recorded
            } else {
                started.filter(|_| queued).map_or(Waited::No, Waited::Since)
            };
            return Ok(hand_out(shared, live, &request, track_holders, waited));
        }
        let limit = request.wait.limit(shared.lock().config.acquire_timeout);
        let (start, deadline) = started_and_deadline(&mut started, limit);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timeout(shared, request, start, stage));
        }
        first = false;
        found = find(shared, &request, !queued, started, None)?;
    }
}

/// Whether an acquire served now waited, and whether that is in the stats yet.
enum Waited {
    /// It did not queue.
    No,
    /// It queued at this moment: its wait is still to be recorded.
    Since(Instant),
    /// It waited, and that is recorded already.
    Recorded,
}

/// The guard for a connection ready to go to the caller, its holder recorded if
/// `track_holders`.
#[inline(always)]
fn hand_out<M: Manager>(
    shared: &Arc<Shared<M>>,
    mut live: Live<M::Connection>,
    request: &Request<'_>,
    track_holders: bool,
    waited: Waited,
) -> PooledConnection<M> {
    live.meta.count_use();
    match waited {
        Waited::No => shared.metrics.waited(Duration::ZERO),
        Waited::Since(since) => {
            let waited = since.elapsed();
            shared
                .lock()
                .record_waited(request.priority, waited, shared.now());
            shared.metrics.waited(waited);
        }
        Waited::Recorded => {}
    }
    shared.health.served();
    if track_holders {
        shared.watch_leak(live.meta.id(), request.caller, shared.now());
    }
    PooledConnection::new(live, Arc::clone(shared))
}

/// Takes an idle connection if the caller may (nobody waits, or overtaking is allowed and
/// nobody of a higher priority waits), else queues it, with `waker` if one is at hand.
/// `count_direct` counts a direct acquire in the stats; `started` is when the acquire first
/// queued, if it did; `now` is the time an idle connection is handed out at.
#[inline(always)]
fn begin<M: Manager>(
    shared: &Arc<Shared<M>>,
    request: &Request<'_>,
    count_direct: bool,
    started: Option<Instant>,
    now: Nanos,
    waker: Option<&Waker>,
) -> Result<Begun<M::Connection>, Error<M::Error>> {
    let mut st = shared.lock();
    if st.closed {
        return Err(Error::Closed);
    }
    let policy = st.policy();
    let may_take =
        st.queue.is_empty() || (policy.overtaking && st.queue.may_overtake(request.priority));
    if may_take && !st.paused {
        if let Some(live) = st.pop_idle() {
            let outlook = st.policy().outlook(&live.meta, now);
            if count_direct {
                st.stats.record_direct(request.priority);
            }
            shared.metrics.publish(&st);
            return Ok(Begun::Idle(live, outlook));
        }
    }
    queue(shared, st, request, started, waker).map(Begun::Queued)
}

/// The part of [`begin`] for a caller that found no idle connection it may take: queues it
/// (and reserves a connect if there is room), unless it may not wait.
#[inline(never)]
fn queue<M: Manager>(
    shared: &Arc<Shared<M>>,
    mut st: MutexGuard<'_, State<M>>,
    request: &Request<'_>,
    started: Option<Instant>,
    waker: Option<&Waker>,
) -> Result<Key, Error<M::Error>> {
    if let Wait::Never = request.wait {
        return Err(Error::NoIdle);
    }
    let limit = request.wait.limit(st.config.acquire_timeout);
    let level_full = st.config.max_waiters_by_priority[request.priority as usize]
        .filter(|&m| st.queue.len_of(request.priority) >= m);
    let queue_full = st.config.max_waiters.filter(|&m| st.queue.len() >= m);
    if let Some(max_waiters) = level_full.or(queue_full) {
        st.stats.acquires_rejected += 1;
        return Err(Error::Rejected { max_waiters });
    }
    // Looked for only when asked: it needs every checkout tracked.
    let deadlock = match st.config.self_deadlock {
        SelfDeadlock::Ignore => None,
        mode => tokio::task::try_id()
            .and_then(|me| st.self_deadlock(me))
            .map(|held_at| {
                (
                    held_at,
                    !std::mem::replace(&mut st.deadlock_warned, true),
                    mode,
                )
            }),
    };
    if let Some((held_at, warn, SelfDeadlock::Fail)) = deadlock {
        drop(st);
        warn_self_deadlock(warn, held_at, request.caller);
        return Err(Error::SelfDeadlock {
            held_at,
            asked_at: request.caller,
        });
    }
    let since = started.unwrap_or_else(Instant::now);
    let deadline = limit.and_then(|limit| since.checked_add(limit));
    let (key, earliest) = st.queue.push(request.priority, since, deadline, waker);
    // The background task sleeps until the earliest deadline it knows of; only a caller due
    // before that has to wake it.
    let wake =
        earliest && deadline.is_some_and(|at| st.sleeping_until.is_none_or(|until| at < until));
    shared.settle(st, None);
    if wake {
        shared.wake.notify_one();
    }
    if let Some((held_at, warn, _)) = deadlock {
        warn_self_deadlock(warn, held_at, request.caller);
    }
    Ok(key)
}

/// The warning of a self-deadlock, if it is the pool's first.
fn warn_self_deadlock(
    first: bool,
    held_at: &'static Location<'static>,
    asked_at: &'static Location<'static>,
) {
    if first {
        tracing::warn!(
            target: "pool_core::deadlock",
            %held_at,
            %asked_at,
            "a task holding a connection checked out at {held_at} asked for another at \
             {asked_at}, but every connection is held by a task waiting for one: it can never \
             be served",
        );
    }
}

/// Looks at a connection on its way out, without awaiting: says, from its `outlook` and the
/// manager's answers, whether it must be closed (expired, or broken while idle) or needs a reset
/// or a check first.
#[inline]
fn inspect<M: Manager>(
    shared: &Arc<Shared<M>>,
    live: &mut Live<M::Connection>,
    outlook: Outlook,
) -> Inspected {
    let manager = &shared.manager;
    if outlook.expired {
        return Inspected::Close(CloseReason::Expired);
    }
    // Asked again on the way out, as it costs nothing: a connection the server closed while it
    // sat idle is caught even when the checkout check is skipped.
    if manager.has_broken(&mut live.conn) {
        return Inspected::Close(CloseReason::Broken);
    }
    if live.meta.cleanup == Cleanup::Reset && !manager.needs_reset(&mut live.conn) {
        live.meta.cleanup = Cleanup::None;
    }
    let work = Work {
        reset: live.meta.cleanup,
        check: outlook.check,
    };
    if work.reset != Cleanup::None || work.check {
        Inspected::Work(work)
    } else {
        // From here on, when it was handed out.
        live.meta.last_used = outlook.at;
        Inspected::Ready
    }
}

/// Resets and checks a connection on its way out, as `work` says, within what is left of the
/// acquire's time; `None` if it had to be closed.
///
/// The fast path reads no real clock, so an acquire that gets here without having queued
/// counts as started when its reset or check first has to wait. That start is kept in
/// `started`, so a caller whose connection fails gets no fresh limit.
///
/// `direct`: the acquire was counted as direct when it took this connection. It is not counted
/// while the reset and check run, and counted again once they passed.
async fn prepare<M: Manager>(
    shared: &Arc<Shared<M>>,
    mut taken: Taken<'_, M>,
    work: Work,
    request: Request<'_>,
    direct: bool,
    started: &mut Option<Instant>,
) -> Option<Live<M::Connection>> {
    let manager = &shared.manager;
    let (limit, reset_timeout, check_timeout) = {
        let mut st = shared.lock();
        if direct {
            st.stats.undo_direct(request.priority);
        }
        let c = &st.config;
        (
            request.wait.limit(c.acquire_timeout),
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
    let live = taken.live();
    if work.reset != Cleanup::None {
        let limit = || reset_timeout.min(left());
        let reset = match work.reset {
            Cleanup::Full => bounded(manager.full_reset(&mut live.conn), limit).await,
            _ => bounded(manager.reset(&mut live.conn), limit).await,
        };
        if !matches!(reset, Some(Ok(()))) {
            taken.close(CloseReason::ResetFailed);
            return None;
        }
        live.meta.cleanup = Cleanup::None;
    }
    if work.check {
        let limit = || check_timeout.min(left());
        if !matches!(
            bounded(manager.check(&mut live.conn), limit).await,
            Some(Ok(()))
        ) {
            taken.close(CloseReason::CheckFailed);
            shared.acquisition_failed();
            return None;
        }
        live.meta.checked(shared.now());
    }
    if direct {
        shared.lock().stats.record_direct(request.priority);
    }
    taken.live().meta.last_used = shared.now();
    Some(taken.keep())
}

/// The error of an acquire that ran out of time, counted in the stats.
fn timeout<M: Manager>(
    shared: &Shared<M>,
    request: Request<'_>,
    start: Instant,
    stage: TimeoutStage,
) -> Error<M::Error> {
    let mut st = shared.lock();
    st.stats.record_timeout(request.priority);
    shared.metrics.timed_out();
    if st.last_error.is_some() && st.size() == 0 {
        shared.health.worsen(Health::Unavailable);
    }
    Error::Timeout(TimeoutError {
        waited: start.elapsed(),
        stage,
        in_use: st.ledger.in_use(),
        max_size: st.config.max_size,
        waiting: st.queue.len(),
        last_error: st.last_error.clone(),
    })
}

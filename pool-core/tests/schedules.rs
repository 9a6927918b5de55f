//! A seeded schedule explorer for the pool's state machine.
//!
//! Each schedule builds a pool with a random configuration and runs a few actor tasks, each a
//! random program of acquires (`get`, `get_timeout`, `try_get`, waiting forever), holds,
//! returns, `take()`, panics while holding, acquires given up after a random number of polls
//! or aborted from outside, resizes, reconfigurations, `retain`, `signal_recovery` and a
//! `close` near the end, while the mock manager's connect, check and reset succeed, fail
//! (transiently or permanently), dawdle, hang or panic as scripted at random. After every step
//! the pool's invariants are checked through its public API, and at the end the pool must be
//! quiet, serve again and close cleanly.
//!
//! Why this is deterministic: the runtime is tokio's current-thread one with paused time, so
//! tasks interleave only at await points, in an order fixed by what woke whom, and time moves
//! only when every task waits. Every choice (the configuration, each program, yields between
//! steps, poll limits, durations, the mock's behaviour, and the pool's own jitter, which reads
//! the same thread-local `fastrand` generator) comes from one generator seeded with the
//! schedule's seed. So a seed fixes the whole run, and a failing schedule replays from it:
//!
//! ```text
//! POOL_SCHEDULE_SEED=1234 cargo test -p pool-core --test schedules -- --nocapture explore
//! POOL_SCHEDULES=100000 cargo test -p pool-core --test schedules -- explore  # seeds 0..100000
//! ```
//!
//! Durations are drawn from a few multiples of 5 ms on purpose: events then often fall on the
//! same virtual instant (a return at a waiter's deadline, a connect finishing as a caller gives
//! up), which is where hand-offs race.
//!
//! The explorer runs the real pool, not a model of it: no shim in `pool-core/src`. What it
//! cannot do is interleave inside a synchronous section (the pool's lock is never contended on
//! one thread); [`multi_thread_interleavings`] runs the same programs on two worker threads
//! for that, without replay. Defects found are kept as ignored tests at the end of this file.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{assert_quiet, hold, Behave, Held, Mock, MockError, Op};
use pool_core::{Config, Error, IdleOrder, Pool, PooledConnection, Status};
use tokio::time::Instant;

/// Schedules run by default (seeds 0 to 9999): about 15 s of a debug build on an idle 2-core
/// machine, 30 s on a busy one. Runs of 30,000 and 60,000 seeds found nothing these did not.
const DEFAULT_SCHEDULES: u64 = 10_000;

/// No schedule's actors may take longer than this many units of time (two minutes of virtual
/// time in `explore`); one that does has wedged. A program takes at most a few seconds.
const BOUND_UNITS: u32 = 120_000;

/// A schedule still running after this much real time is spinning (time only moves when every
/// task waits, so a busy loop stops the clock): the watchdog reports its seed and ends the
/// process, since a stuck test would otherwise hang CI.
const WALL_BOUND: Duration = Duration::from_secs(60);

/// How late an acquire may end after its time limit. The background task times waiters out at
/// their deadline exactly (paused time), and timers round up to the millisecond.
const LATE_SLACK: Duration = Duration::from_millis(2);

type Acquired = Result<PooledConnection<Mock>, Error<MockError>>;
type AcquireFuture<'a> = Pin<Box<dyn Future<Output = Acquired> + Send + 'a>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One of `options`, chosen by the schedule's generator.
fn pick<T: Copy>(options: &[T]) -> T {
    options[fastrand::usize(..options.len())]
}

/// True with probability `percent` in 100.
fn chance(percent: u32) -> bool {
    fastrand::u32(..100) < percent
}

/// Lets other ready tasks run a random number of times (0 to 3), without moving time.
async fn yield_random() {
    for _ in 0..fastrand::usize(..4) {
        tokio::task::yield_now().await;
    }
}

/// A behaviour for one manager call: mostly success, sometimes slow, failing, hanging (until
/// the pool's timeout for that call) or panicking.
fn random_behaviour(unit: Duration) -> Behave {
    match fastrand::u32(..100) {
        0..=29 => Behave::Ok,
        30..=49 => Behave::Transient,
        50..=57 => Behave::Permanent,
        58..=82 => Behave::Slow(unit * pick(&[5, 10, 20, 40])),
        83..=89 => Behave::Hang,
        _ => Behave::Panic,
    }
}

/// Messages of panics this file causes on purpose; the panic hook keeps them quiet.
const INTENDED_PANIC: &str = "schedule: intended panic while holding";

/// Silences the panics this file provokes (the mock's scripted ones and the intended panics
/// while holding); every other panic is reported as usual.
fn quiet_intended_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = panic_text(info.payload());
            let intended = text == INTENDED_PANIC
                || (text.starts_with("mock ") && text.ends_with(" panicked"));
            if !intended {
                default(info);
            }
        }));
    });
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// What a [`Limited`] future came to.
enum Outcome<T> {
    Done(T),
    /// It was dropped without finishing after this many polls.
    GaveUp(usize),
    /// A poll panicked (a check or reset that panics runs in the caller's future).
    Panicked(String),
}

/// Polls a future at most `polls` times and drops it at the next wake-up after that, without
/// polling it again: so an acquire is dropped at each of its await points in turn, including
/// just after a connection was sent to it and before it saw it. Panics in a poll are caught.
struct Limited<F> {
    inner: Option<Pin<Box<F>>>,
    left: Option<usize>,
    polls: usize,
}

impl<F: Future> Limited<F> {
    fn new(fut: F, polls: Option<usize>) -> Self {
        Limited {
            inner: Some(Box::pin(fut)),
            left: polls,
            polls: 0,
        }
    }
}

impl<F: Future> Future for Limited<F> {
    type Output = Outcome<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let inner = this.inner.as_mut().expect("Limited polled after it ended");
        if this.left == Some(0) {
            this.inner = None;
            return Poll::Ready(Outcome::GaveUp(this.polls));
        }
        if let Some(left) = &mut this.left {
            *left -= 1;
        }
        this.polls += 1;
        let polled = catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                this.inner = None;
                Poll::Ready(Outcome::Done(out))
            }
            Err(panic) => {
                this.inner = None;
                Poll::Ready(Outcome::Panicked(panic_text(&*panic)))
            }
        }
    }
}

/// The kinds of acquire an actor makes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Get,
    Timeout(Duration),
    Try,
    /// `get_timeout(Duration::MAX)`: only ever made by an actor that holds nothing, so no
    /// program can deadlock itself.
    Forever,
}

impl Kind {
    fn random(unit: Duration, may_wait_forever: bool) -> Kind {
        match fastrand::u32(..100) {
            0..=39 => Kind::Get,
            40..=69 => Kind::Timeout(unit * pick(&[0, 5, 10, 20, 40, 80])),
            70..=89 => Kind::Try,
            _ if may_wait_forever => Kind::Forever,
            _ => Kind::Get,
        }
    }

    fn start(self, pool: &Pool<Mock>) -> AcquireFuture<'_> {
        match self {
            Kind::Get => Box::pin(pool.get()),
            Kind::Timeout(limit) => Box::pin(pool.get_timeout(limit)),
            Kind::Try => Box::pin(pool.try_get()),
            Kind::Forever => Box::pin(pool.get_timeout(Duration::MAX)),
        }
    }

    /// How long the acquire may take in all, as documented.
    fn limit(self, config: &Config) -> Option<Duration> {
        match self {
            Kind::Get | Kind::Try => config.acquire_timeout,
            Kind::Timeout(limit) => Some(limit),
            Kind::Forever => None,
        }
    }
}

fn describe(error: &Error<MockError>) -> &'static str {
    match error {
        Error::Timeout(_) => "timeout",
        Error::Connect(_) => "connect error",
        Error::Closed => "closed",
        Error::Rejected { .. } => "rejected",
        Error::NoIdle => "no idle",
        _ => "other error",
    }
}

/// Counts of what the actors saw, to compare with the pool's `Stats`.
#[derive(Default)]
struct Seen {
    ok: AtomicU64,
    timeouts: AtomicU64,
    rejected: AtomicU64,
    /// Acquires that ended without a result: given up, aborted or panicked. Such an acquire
    /// may have been counted as served by the pool (see
    /// `an_acquire_dropped_during_its_reset_is_not_counted_as_served`).
    abandoned: AtomicU64,
    /// Connections detached with `take()`.
    taken: AtomicU64,
    /// The taken connections themselves, kept alive as a user would keep them, so the
    /// manager's count of connection objects is the pool's size plus these.
    taken_conns: Mutex<Vec<common::MockConn>>,
}

/// How a schedule runs.
#[derive(Clone, Copy)]
struct Mode {
    /// Every duration is a multiple of this: 1 ms of virtual time for `explore`, a fraction
    /// of a real millisecond for the multi-thread variant.
    unit: Duration,
    /// One thread and paused time: every check holds exactly between any two steps, and
    /// deadlines to the millisecond. Without it (worker threads, real time), only what a
    /// single `status()` snapshot shows is checked while tasks run, and the rest once the
    /// pool is at rest.
    exact: bool,
}

/// What every actor of one schedule shares.
struct Ctx {
    pool: Pool<Mock>,
    mock: Mock,
    unit: Duration,
    exact: bool,
    start: Instant,
    trace: Arc<Mutex<Vec<String>>>,
    /// Pool ids of connections an actor holds, with the holder.
    held: Mutex<HashMap<u64, String>>,
    /// Acquires in progress (a future exists and has not ended or been dropped).
    inside: AtomicUsize,
    seen: Seen,
    failure: Mutex<Option<String>>,
    /// From the configuration; `update_config` in these schedules never changes it.
    max_concurrent_connects: usize,
    /// How many times `update_config` ran.
    reconfigured: AtomicUsize,
    /// Where a step saw a caller queued while a connection sat idle, for the monitor.
    suspect: Mutex<Option<String>>,
    monitor_wake: tokio::sync::Notify,
}

impl Ctx {
    /// `n` units of time.
    fn t(&self, n: u32) -> Duration {
        self.unit * n
    }

    fn log(&self, line: impl std::fmt::Display) {
        let entry = if self.exact {
            let at = self.start.elapsed().as_millis();
            let s = self.pool.status();
            format!(
                "{at:>5}ms {line}    [size {} idle {} in_use {} connecting {} waiting {} max {}]",
                s.size, s.idle, s.in_use, s.connecting, s.waiting, s.max_size
            )
        } else {
            // Across threads a status next to the line could belong to another moment.
            let at = self.start.elapsed().as_micros();
            format!("{at:>7}us {line}")
        };
        self.trace.lock().unwrap().push(entry);
    }

    fn failed(&self) -> bool {
        self.failure.lock().unwrap().is_some()
    }

    /// Records the first invariant that broke; the schedule stops soon after.
    fn fail(&self, message: String) {
        self.log(format!("FAILED: {message}"));
        let mut failure = self.failure.lock().unwrap();
        if failure.is_none() {
            *failure = Some(message);
        }
    }

    /// The invariants that hold between any two steps of any task (with worker threads,
    /// those a single snapshot shows).
    fn check(&self, at: &str) {
        self.check_with(at, self.exact);
    }

    /// The invariants; `exact` adds those that compare several readings, which hold on one
    /// thread between any two steps, and on any runtime once the pool is at rest.
    fn check_with(&self, at: &str, exact: bool) {
        if self.failed() {
            return;
        }
        // Read first: a pool seen closed here is closed in the snapshot below.
        let closed = self.pool.is_closed();
        let s = self.pool.status();
        let mut problems = Vec::new();
        if s.size != s.idle + s.in_use {
            problems.push("size != idle + in_use".to_owned());
        }
        // A smaller max_size closes idle extras at once and checked-out extras as they come
        // back, so the pool may be above its maximum only while the extras are out: never with
        // an idle connection. (size <= max_size itself is checked once everything is back.)
        if s.size > s.max_size && s.idle > 0 {
            problems.push("above max_size with connections idle".to_owned());
        }
        // A caller queued while a connection sits idle may be a moment of a hand-off (a
        // caller woken to take it and not yet run, under a barging policy); the monitor checks
        // that it ends before time moves on. On worker threads, where "before anything else
        // runs" has no meaning, it is left to the checks at rest.
        if s.waiting > 0 && s.idle > 0 && self.exact {
            let mut suspect = self.suspect.lock().unwrap();
            if suspect.is_none() {
                *suspect = Some(at.to_owned());
                self.monitor_wake.notify_one();
            }
        }
        if s.connecting > self.max_concurrent_connects {
            problems.push("more connects in flight than max_concurrent_connects".to_owned());
        }
        if closed && (s.idle > 0 || s.waiting > 0) {
            problems.push("closed with idle connections or waiting callers".to_owned());
        }
        if exact {
            self.cross_check(&s, &mut problems);
        }
        if !problems.is_empty() {
            self.fail(format!("{at}: {} ({s:?})", problems.join("; ")));
        }
    }

    /// The checks that compare the status `s` with other readings.
    fn cross_check(&self, s: &Status, problems: &mut Vec<String>) {
        let stats = self.pool.stats();
        let held = self.held.lock().unwrap().len();
        let inside = self.inside.load(SeqCst);
        let live = self.mock.live();
        let taken = self.seen.taken.load(SeqCst);
        // Queued callers are a subset of the acquires in progress (others are being reset or
        // checked, or were answered and not yet polled).
        if s.waiting > inside {
            problems.push(format!(
                "{} waiting but only {inside} acquires in progress",
                s.waiting
            ));
        }
        if s.in_use < held {
            problems.push(format!("{held} connections held but in_use {}", s.in_use));
        }
        // Connection objects are created by a successful connect and dropped when the pool
        // closes them, so at every step those alive are exactly the pool's and the taken
        // ones: a leak or a double count shows here.
        if live as u64 != s.size as u64 + taken {
            problems.push(format!(
                "{live} connection objects alive for size {} and {taken} taken",
                s.size
            ));
        }
        if stats.connects_ok != stats.closes.total() + s.size as u64 + taken {
            problems.push(format!(
                "connects_ok {} != closed {} + open {} + taken {taken}",
                stats.connects_ok,
                stats.closes.total(),
                s.size
            ));
        }
        if stats.connects_ok != self.mock.connects_ok() as u64 {
            problems.push(format!(
                "pool counted {} connects, the manager made {}",
                stats.connects_ok,
                self.mock.connects_ok()
            ));
        }
    }

    /// Takes a freshly acquired connection for `who`, failing the schedule if it is already
    /// held by someone else.
    fn claim(self: &Arc<Self>, who: &str, conn: PooledConnection<Mock>) -> Option<Holding> {
        let id = conn.metrics().id;
        {
            let mut held = self.held.lock().unwrap();
            if let Some(other) = held.get(&id) {
                let message = format!("conn {id} handed to {who} while {other} holds it");
                drop(held);
                // Not returned: dropping it would hand the same connection on once more.
                std::mem::forget(conn);
                self.fail(message);
                return None;
            }
            held.insert(id, who.to_owned());
        }
        Some(Holding {
            id,
            ctx: Arc::clone(self),
            held: Some(hold(conn)),
        })
    }
}

/// A connection an actor holds. Dropping it forgets the holder first, then returns the
/// connection, so the next holder never meets a stale claim.
struct Holding {
    id: u64,
    ctx: Arc<Ctx>,
    held: Option<Held>,
}

impl Holding {
    fn conn(&mut self) -> &mut Held {
        self.held.as_mut().expect("held until dropped or taken")
    }

    /// Detaches the connection for good and drops it.
    fn take(mut self) {
        self.ctx.held.lock().unwrap().remove(&self.id);
        let held = self.held.take().expect("held until dropped or taken");
        let conn = held.take();
        self.ctx.seen.taken_conns.lock().unwrap().push(conn);
        self.ctx.seen.taken.fetch_add(1, SeqCst);
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            self.ctx.held.lock().unwrap().remove(&self.id);
            drop(held);
        }
    }
}

/// Counts an acquire in progress for as long as it lives.
struct Inside<'a>(&'a Ctx);

impl<'a> Inside<'a> {
    fn new(ctx: &'a Ctx) -> Self {
        ctx.inside.fetch_add(1, SeqCst);
        Inside(ctx)
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, SeqCst);
    }
}

/// A random configuration for one schedule: small pools, timeouts of a few tens of virtual
/// milliseconds, and every optional mechanism (lifetime, idle timeout, keepalive, max uses,
/// waiter limit, connect rate) switched on in some schedules.
fn random_config(unit: Duration) -> Config {
    let mut c = Config::default();
    c.max_size = fastrand::usize(1..=4);
    c.min_idle = if chance(25) {
        fastrand::usize(..=c.max_size.min(2))
    } else {
        0
    };
    c.initial_size = if chance(30) {
        fastrand::usize(..=c.max_size)
    } else {
        0
    };
    c.acquire_timeout = Some(unit * pick(&[20, 50, 100, 200]));
    c.connect_timeout = unit * pick(&[10, 25, 50]);
    c.check_timeout = unit * pick(&[10, 25]);
    c.reset_timeout = unit * pick(&[10, 25]);
    c.check_on_checkout = chance(70);
    c.skip_check_within = unit * pick(&[0, 10, 500]);
    c.idle_order = if chance(50) {
        IdleOrder::Fifo
    } else {
        IdleOrder::Lifo
    };
    c.max_waiters = chance(15).then(|| fastrand::usize(1..=3));
    c.max_concurrent_connects = fastrand::usize(1..=3);
    c.connect_rate = chance(10).then_some(200);
    c.connect_backoff = unit * pick(&[1, 5]);
    c.connect_backoff_max = unit * pick(&[10, 40]);
    c.max_lifetime = pick(&[None, Some(60), Some(300)]).map(|n| unit * n);
    c.idle_timeout = pick(&[None, Some(30), Some(120)]).map(|n| unit * n);
    c.max_uses = pick(&[None, Some(2), Some(3)]);
    c.keepalive_interval = pick(&[None, Some(20)]).map(|n| unit * n);
    c.maintenance_interval = unit * pick(&[5, 20, 100]);
    c
}

/// Scripts the next few calls of one manager operation.
fn script_mock(ctx: &Ctx, who: &str) {
    let op = pick(&[Op::Connect, Op::Check, Op::Reset]);
    let behaviours: Vec<Behave> = (0..fastrand::usize(1..=3))
        .map(|_| random_behaviour(ctx.unit))
        .collect();
    ctx.log(format!("{who}: script {op} {behaviours:?}"));
    ctx.mock.script(op, behaviours);
}

/// One acquire, made and (if it succeeds) used as the program says. `kept` is the
/// connection the actor may keep across steps; a new one may take its place.
async fn acquire(ctx: &Arc<Ctx>, who: &str, kept: &mut Option<Holding>) {
    let kind = Kind::random(ctx.unit, kept.is_none());
    let polls = chance(25).then(|| fastrand::usize(..5));
    let config = ctx.pool.config();
    let reconfigured = ctx.reconfigured.load(SeqCst);
    ctx.log(format!("{who}: {kind:?} (polls {polls:?})"));
    let started = Instant::now();
    let outcome = {
        let _inside = Inside::new(ctx);
        Limited::new(kind.start(&ctx.pool), polls).await
    };
    let elapsed = started.elapsed();
    // An `acquire_timeout` changed meanwhile applies from the acquire's next step on, so the
    // limit is then somewhere between old and new: not checked.
    let limit = kind.limit(&config).filter(|_| {
        matches!(kind, Kind::Timeout(_)) || ctx.reconfigured.load(SeqCst) == reconfigured
    });
    let slack = LATE_SLACK;
    // Real time on worker threads runs late as the OS pleases: deadlines are checked only on
    // paused time.
    let limit = limit.filter(|_| ctx.exact);
    let late = limit.is_some_and(|limit| elapsed > limit + slack);
    match outcome {
        Outcome::Done(Ok(conn)) => {
            ctx.seen.ok.fetch_add(1, SeqCst);
            let id = conn.metrics().id;
            ctx.log(format!(
                "{who}: {kind:?} -> conn {id} after {}ms",
                elapsed.as_millis()
            ));
            if late {
                ctx.fail(format!(
                    "{who}: {kind:?} served after {elapsed:?}, past its limit"
                ));
            }
            if let Some(holding) = ctx.claim(who, conn) {
                ctx.check(&format!("{who} got conn {id}"));
                use_connection(ctx, who, holding, kept).await;
            }
        }
        Outcome::Done(Err(error)) => {
            let what = describe(&error);
            ctx.log(format!(
                "{who}: {kind:?} -> {what} after {}ms",
                elapsed.as_millis()
            ));
            match &error {
                Error::Timeout(_) => {
                    ctx.seen.timeouts.fetch_add(1, SeqCst);
                    if limit.is_some_and(|limit| elapsed < limit) {
                        ctx.fail(format!(
                            "{who}: {kind:?} timed out early, after {elapsed:?}"
                        ));
                    }
                }
                Error::Rejected { .. } => {
                    ctx.seen.rejected.fetch_add(1, SeqCst);
                }
                _ => {}
            }
            if late {
                ctx.fail(format!(
                    "{who}: {kind:?} failed after {elapsed:?}, past its limit"
                ));
            }
            if what == "other error" {
                ctx.fail(format!("{who}: unexpected error {error}"));
            }
        }
        Outcome::GaveUp(polls) => {
            ctx.seen.abandoned.fetch_add(1, SeqCst);
            ctx.log(format!("{who}: {kind:?} given up after {polls} polls"));
        }
        Outcome::Panicked(message) => {
            ctx.seen.abandoned.fetch_add(1, SeqCst);
            ctx.log(format!("{who}: {kind:?} panicked: {message}"));
        }
    }
}

/// Holds a connection for a while and lets it go one way or another: returned (possibly
/// dirty or broken), taken, dropped by a panic, or kept for later steps.
async fn use_connection(
    ctx: &Arc<Ctx>,
    who: &str,
    mut holding: Holding,
    kept: &mut Option<Holding>,
) {
    let id = holding.id;
    if chance(50) {
        holding.conn().dirty = true;
    }
    if chance(5) {
        holding.conn().broken = true;
    }
    if chance(50) {
        yield_random().await;
    } else {
        tokio::time::sleep(ctx.t(pick(&[0, 5, 10, 20, 40]))).await;
    }
    match fastrand::u32(..100) {
        0..=79 => {
            ctx.log(format!("{who}: returns conn {id}"));
            drop(holding);
        }
        80..=87 => {
            ctx.log(format!("{who}: takes conn {id}"));
            holding.take();
        }
        88..=94 => {
            ctx.log(format!("{who}: panics holding conn {id}"));
            let unwound = catch_unwind(AssertUnwindSafe(move || {
                let _holding = holding;
                panic!("{INTENDED_PANIC}");
            }));
            assert!(unwound.is_err());
        }
        _ => {
            ctx.log(format!("{who}: keeps conn {id}"));
            if let Some(old) = kept.replace(holding) {
                ctx.log(format!("{who}: returns kept conn {}", old.id));
                drop(old);
            }
        }
    }
}

/// An acquire in a task of its own, aborted after a random number of yields or a random
/// sleep: the acquire (or the connection it got) is dropped wherever it was.
async fn aborted_acquire(ctx: &Arc<Ctx>, who: &str) {
    let sub = format!("{who}.spawned");
    let task = tokio::spawn({
        let ctx = Arc::clone(ctx);
        let sub = sub.clone();
        async move {
            let mut kept = None;
            acquire(&ctx, &sub, &mut kept).await;
        }
    });
    if chance(50) {
        yield_random().await;
    } else {
        tokio::time::sleep(ctx.t(pick(&[0, 5, 10, 20]))).await;
    }
    task.abort();
    let ended = task.await;
    let how = match &ended {
        Ok(()) => "had finished",
        Err(e) if e.is_cancelled() => "aborted",
        Err(_) => "panicked",
    };
    ctx.log(format!("{who}: abort -> {how}"));
    if let Err(e) = ended {
        if e.is_cancelled() {
            // Counted here: the task may have been dropped mid-acquire.
            ctx.seen.abandoned.fetch_add(1, SeqCst);
        } else {
            ctx.fail(format!("{sub}: task panicked: {e}"));
        }
    }
}

/// Changes a few settings at run time, as `update_config` allows.
fn reconfigure(ctx: &Ctx, who: &str) {
    let mut c = ctx.pool.config();
    c.check_on_checkout = chance(70);
    c.acquire_timeout = Some(ctx.t(pick(&[20, 50, 100, 200])));
    c.idle_order = if chance(50) {
        IdleOrder::Fifo
    } else {
        IdleOrder::Lifo
    };
    c.max_uses = pick(&[None, Some(2), Some(3)]);
    c.max_waiters = chance(15).then(|| fastrand::usize(1..=3));
    let summary = format!(
        "check {} acquire {:?} {:?} max_uses {:?} max_waiters {:?}",
        c.check_on_checkout, c.acquire_timeout, c.idle_order, c.max_uses, c.max_waiters
    );
    let result = ctx.pool.update_config(c);
    ctx.reconfigured.fetch_add(1, SeqCst);
    ctx.log(format!("{who}: update_config({summary}) -> {result:?}"));
}

/// One actor's random program.
async fn actor(ctx: Arc<Ctx>, me: usize) {
    let who = format!("actor {me}");
    let mut kept: Option<Holding> = None;
    for _ in 0..fastrand::usize(3..=12) {
        if ctx.failed() {
            break;
        }
        yield_random().await;
        match fastrand::u32(..100) {
            0..=59 => acquire(&ctx, &who, &mut kept).await,
            60..=66 => aborted_acquire(&ctx, &who).await,
            67..=74 => {
                let pause = ctx.t(pick(&[5, 10, 20, 40]));
                ctx.log(format!("{who}: sleeps {}ms", pause.as_millis()));
                tokio::time::sleep(pause).await;
            }
            75..=83 => script_mock(&ctx, &who),
            84..=88 => {
                let max = fastrand::usize(1..=4);
                let result = ctx.pool.resize(max);
                ctx.log(format!("{who}: resize({max}) -> {result:?}"));
            }
            89..=91 => reconfigure(&ctx, &who),
            92..=94 => {
                let mut kept_ids = Vec::new();
                ctx.pool.retain(|_, metrics| {
                    let keep = chance(50);
                    if keep {
                        kept_ids.push(metrics.id);
                    }
                    keep
                });
                ctx.log(format!("{who}: retain kept {kept_ids:?}"));
            }
            95..=96 => {
                ctx.log(format!("{who}: signal_recovery"));
                ctx.pool.signal_recovery();
            }
            _ => {
                if let Some(old) = kept.take() {
                    ctx.log(format!("{who}: returns kept conn {}", old.id));
                    drop(old);
                }
            }
        }
        ctx.check(&format!("{who} after a step"));
    }
    if let Some(old) = kept.take() {
        ctx.log(format!("{who}: returns kept conn {} at the end", old.id));
        drop(old);
    }
    ctx.log(format!("{who}: done"));
    ctx.check(&format!("{who} at its end"));
}

/// Builds the pool, runs the actors, then checks the pool at rest, serving again, and closed.
/// Returns what broke, if anything did.
async fn drive(mode: Mode, seed: u64, trace: Arc<Mutex<Vec<String>>>) -> Option<String> {
    let mock = Mock::new();
    mock.track_state(chance(30));
    let config = random_config(mode.unit);
    let lazy = chance(70);
    let description = format!("seed {seed}: {config:?}, lazy {lazy}");
    trace.lock().unwrap().push(description);
    let builder = Pool::builder(mock.clone()).config(config.clone());
    // A pool built eagerly opens its initial connections with the mock still healthy.
    let pool = if lazy {
        builder.build_lazy()
    } else {
        builder.build().await
    }
    .expect("a random configuration is valid and the first connects succeed");
    let ctx = Arc::new(Ctx {
        pool,
        mock,
        unit: mode.unit,
        exact: mode.exact,
        start: Instant::now(),
        trace,
        held: Mutex::new(HashMap::new()),
        inside: AtomicUsize::new(0),
        seen: Seen::default(),
        failure: Mutex::new(None),
        max_concurrent_connects: config.max_concurrent_connects,
        reconfigured: AtomicUsize::new(0),
        suspect: Mutex::new(None),
        monitor_wake: tokio::sync::Notify::new(),
    });
    ctx.check("built");
    run_actors(&ctx).await;
    if !ctx.failed() {
        final_checks(&ctx).await;
    }
    let failure = ctx.failure.lock().unwrap().clone();
    failure
}

/// Runs the actors (and sometimes a task that closes the pool meanwhile) to their end.
async fn run_actors(ctx: &Arc<Ctx>) {
    let actors = fastrand::usize(2..=5);
    let mut tasks: Vec<_> = (0..actors)
        .map(|me| tokio::spawn(actor(Arc::clone(ctx), me)))
        .collect();
    // Sometimes the pool is closed while the actors still run (callers queued, connections
    // out, connects in flight).
    if chance(30) {
        let ctx = Arc::clone(ctx);
        let at = ctx.t(pick(&[20, 50, 100, 200, 400]));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(at).await;
            ctx.log("closer: close");
            ctx.pool.close();
            ctx.check("after close");
        }));
    }
    let monitor = tokio::spawn(monitor(Arc::clone(ctx)));
    let all = async {
        for task in tasks {
            if let Err(e) = task.await {
                ctx.fail(format!("a task failed: {e}"));
            }
        }
    };
    let bound = ctx.t(BOUND_UNITS);
    if tokio::time::timeout(bound, all).await.is_err() {
        ctx.fail(format!("wedged: tasks still running after {bound:?}"));
    }
    monitor.abort();
}

/// Scheduler turns a caller may stay queued while a connection sits idle.
const QUIESCE_YIELDS: usize = 32;

/// Fails the schedule if a caller stays queued while a connection sits idle for
/// `QUIESCE_YIELDS` turns of the scheduler in a row: every task that was woken has run by
/// then, and no time has passed (this task stays ready, so paused time cannot move), so
/// nobody is coming for that connection: a lost wake-up.
async fn monitor(ctx: Arc<Ctx>) {
    loop {
        ctx.monitor_wake.notified().await;
        let Some(at) = ctx.suspect.lock().unwrap().clone() else {
            continue;
        };
        let mut persisted = true;
        for _ in 0..QUIESCE_YIELDS {
            tokio::task::yield_now().await;
            let s = ctx.pool.status();
            if s.waiting == 0 || s.idle == 0 {
                persisted = false;
                break;
            }
        }
        if persisted {
            ctx.fail(format!(
                "{at}: a caller still waits while a connection sits idle, {QUIESCE_YIELDS} \
                 scheduler turns later ({:?})",
                ctx.pool.status()
            ));
        }
        *ctx.suspect.lock().unwrap() = None;
    }
}

/// At rest, then serving again, then closed.
async fn final_checks(ctx: &Arc<Ctx>) {
    let pool = &ctx.pool;
    // Healthy from here on; let every timeout, backoff, reset and keepalive run out.
    ctx.mock.set_all_ok();
    ctx.mock.set_broken(false);
    if !ctx.exact && !pool.is_closed() {
        // With worker threads, upkeep that closes or checks idle connections could run between
        // two of the readings compared at rest: stop it (resets of returned connections stay,
        // and end while resting).
        let mut still = pool.config();
        still.max_lifetime = None;
        still.idle_timeout = None;
        still.keepalive_interval = None;
        pool.update_config(still).unwrap();
    }
    tokio::time::sleep(ctx.t(1000)).await;
    ctx.log("rest");
    ctx.check_with("at rest", true);
    let s = pool.status();
    let config = pool.config();
    if s.waiting != 0 || s.in_use != 0 || s.size > s.max_size {
        ctx.fail(format!(
            "at rest: callers waiting, connections out or above max: {s:?}"
        ));
    }
    // Connections that expire are replaced one round later (and one at a time under a connect
    // rate), so min_idle is a level the pool comes back to, not one it never leaves.
    let mut idle = s.idle;
    for _ in 0..300 {
        if pool.is_closed() || idle >= config.min_idle {
            break;
        }
        tokio::time::sleep(ctx.t(1)).await;
        idle = pool.status().idle;
    }
    if !pool.is_closed() && idle < config.min_idle {
        ctx.fail(format!(
            "at rest: below min_idle {} for 300 units: {:?}",
            config.min_idle,
            pool.status()
        ));
    }
    check_stats(ctx);
    if ctx.failed() {
        return;
    }

    if !pool.is_closed() {
        // Nothing wedged: the pool serves max_size callers at once, with distinct connections
        // (all of whom may queue).
        let mut unlimited = config.clone();
        unlimited.max_waiters = None;
        pool.update_config(unlimited).unwrap();
        let callers: Vec<_> = (0..s.max_size)
            .map(|i| {
                let ctx = Arc::clone(ctx);
                tokio::spawn(async move {
                    let got = ctx.pool.get_timeout(ctx.t(5000)).await;
                    let who = format!("final caller {i}");
                    match got {
                        Ok(conn) => {
                            ctx.seen.ok.fetch_add(1, SeqCst);
                            ctx.log(format!("{who}: got conn {}", conn.metrics().id));
                            let holding = ctx.claim(&who, conn);
                            tokio::time::sleep(ctx.t(10)).await;
                            drop(holding);
                        }
                        Err(e) => ctx.fail(format!("{who}: a healthy pool failed: {e}")),
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.expect("final callers do not panic");
        }
        if ctx.failed() {
            return;
        }
        let taken = usize::try_from(ctx.seen.taken.load(SeqCst)).unwrap();
        let quiet = assert_quiet(pool, taken).await;
        ctx.log(format!("quiet: {quiet:?}"));
        ctx.check_with("quiet", true);
    }

    pool.close();
    ctx.log("close");
    ctx.check("closed");
    match pool.get().await {
        Err(Error::Closed) => {}
        Err(e) => ctx.fail(format!("get on a closed pool: {e}, not Closed")),
        Ok(_) => ctx.fail("get on a closed pool succeeded".to_owned()),
    }
    let drained = pool.close_and_wait(ctx.t(1000)).await;
    // A connect that finished after the close drops its connection just after the pool
    // counts it gone; with worker threads that can be a moment later.
    tokio::time::sleep(ctx.t(10)).await;
    let s: Status = pool.status();
    ctx.log(format!("drained {drained}"));
    let taken = ctx.seen.taken.load(SeqCst);
    if !drained || s.size != 0 || s.connecting != 0 || ctx.mock.live() as u64 != taken {
        ctx.fail(format!(
            "closed pool not drained: {s:?}, {} connection objects alive, {taken} taken",
            ctx.mock.live()
        ));
    }
    check_stats(ctx);
}

/// The acquire counters against what the actors saw.
fn check_stats(ctx: &Ctx) {
    let stats = ctx.pool.stats();
    let seen = &ctx.seen;
    let ok = seen.ok.load(SeqCst);
    let served = stats.acquires_direct + stats.acquires_waited;
    let mut problems = Vec::new();
    if stats.acquires_timed_out != seen.timeouts.load(SeqCst) {
        problems.push(format!(
            "acquires_timed_out {} but {} timeouts seen",
            stats.acquires_timed_out,
            seen.timeouts.load(SeqCst)
        ));
    }
    if stats.acquires_rejected != seen.rejected.load(SeqCst) {
        problems.push(format!(
            "acquires_rejected {} but {} rejections seen",
            stats.acquires_rejected,
            seen.rejected.load(SeqCst)
        ));
    }
    if served != ok {
        problems.push(format!(
            "direct {} + waited {} vs {ok} acquires served ({} abandoned)",
            stats.acquires_direct,
            stats.acquires_waited,
            seen.abandoned.load(SeqCst)
        ));
    }
    if stats.wait_time.count() != served {
        problems.push(format!(
            "wait histogram holds {} for {served} served",
            stats.wait_time.count()
        ));
    }
    if !problems.is_empty() {
        ctx.fail(format!("stats: {}", problems.join("; ")));
    }
}

/// A failed schedule: its seed, what broke, and everything that happened.
struct Failure {
    seed: u64,
    message: String,
    trace: Vec<String>,
    /// Whether the seed replays it (only on the paused current-thread runtime).
    replayable: bool,
}

impl Failure {
    fn report(&self) -> String {
        let replay = if self.replayable {
            format!(
                "replay: POOL_SCHEDULE_SEED={} cargo test -p pool-core --test schedules -- --nocapture explore",
                self.seed
            )
        } else {
            "not replayable: threads interleaved as the OS scheduled them".to_owned()
        };
        let mut out = format!(
            "schedule {} failed: {}\n{replay}\ntrace:\n",
            self.seed, self.message
        );
        for line in &self.trace {
            let _ = writeln!(out, "  {line}");
        }
        out
    }
}

/// The watchdog's view of the schedule in progress.
struct Current {
    seed: u64,
    since: std::time::Instant,
    trace: Arc<Mutex<Vec<String>>>,
}

/// `explore`'s mode: virtual milliseconds on one thread.
const EXACT: Mode = Mode {
    unit: Duration::from_millis(1),
    exact: true,
};

/// Runs one schedule to its end on a paused current-thread runtime; its trace, or what broke.
fn run_schedule(seed: u64, current: &Mutex<Option<Current>>) -> Result<Vec<String>, Failure> {
    fastrand::seed(seed);
    let trace = Arc::new(Mutex::new(Vec::new()));
    *current.lock().unwrap() = Some(Current {
        seed,
        since: std::time::Instant::now(),
        trace: Arc::clone(&trace),
    });
    let ran = catch_unwind(AssertUnwindSafe(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(drive(EXACT, seed, Arc::clone(&trace)))
    }));
    *current.lock().unwrap() = None;
    let failure = ran.unwrap_or_else(|panic| Some(format!("panicked: {}", panic_text(&*panic))));
    let trace = std::mem::take(&mut *trace.lock().unwrap());
    match failure {
        Some(message) => Err(Failure {
            seed,
            message,
            trace,
            replayable: true,
        }),
        None => Ok(trace),
    }
}

/// Reports a schedule that spins (or wedges outside virtual time) and ends the process.
fn watchdog(current: Arc<Mutex<Option<Current>>>, done: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !done.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            let guard = current.lock().unwrap();
            if let Some(cur) = guard.as_ref() {
                if cur.since.elapsed() > WALL_BOUND {
                    let failure = Failure {
                        seed: cur.seed,
                        message: format!("still running after {WALL_BOUND:?} of real time"),
                        trace: cur.trace.lock().unwrap().clone(),
                        replayable: true,
                    };
                    eprintln!("{}", failure.report());
                    std::process::exit(101);
                }
            }
        }
    });
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
    )
}

/// Explores `DEFAULT_SCHEDULES` seeded schedules (seeds 0, 1, 2, ...; `POOL_SCHEDULES=<n>` for
/// more) of concurrent acquires, returns, cancellations at every await point, aborts, panics,
/// resizes, reconfigurations, `retain`, `signal_recovery` and `close`, against a manager that
/// fails, dawdles, hangs and panics at random, checking the pool's invariants after every step
/// and its state at rest, serving and closed. `POOL_SCHEDULE_SEED=<n>` replays one schedule and
/// prints its trace.
#[test]
fn explore() {
    quiet_intended_panics();
    let seeds: Vec<u64> = match env_u64("POOL_SCHEDULE_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("POOL_SCHEDULES").unwrap_or(DEFAULT_SCHEDULES)).collect(),
    };
    let replaying = seeds.len() == 1;
    let current = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    watchdog(Arc::clone(&current), Arc::clone(&done));
    let started = std::time::Instant::now();
    let mut steps = 0;
    for &seed in &seeds {
        match run_schedule(seed, &current) {
            Ok(trace) => {
                steps += trace.len();
                if replaying {
                    println!("schedule {seed} passed; trace:");
                    for line in &trace {
                        println!("  {line}");
                    }
                }
            }
            Err(failure) => {
                done.store(true, SeqCst);
                panic!("{}", failure.report());
            }
        }
    }
    done.store(true, SeqCst);
    println!(
        "{} schedules, {steps} trace lines, in {:?}",
        seeds.len(),
        started.elapsed()
    );
}

/// A schedule is a function of its seed: the same seeds run twice give the same traces, line
/// for line (every decision and the pool's own jitter come from the seeded generator, and the
/// paused current-thread runtime adds no choice of its own).
#[test]
fn schedules_replay_from_their_seed() {
    quiet_intended_panics();
    let current = Mutex::new(None);
    for seed in [7, 42, 1001, 31337, 0xdead_beef] {
        let first = run_schedule(seed, &current).map_err(|f| f.report());
        let second = run_schedule(seed, &current).map_err(|f| f.report());
        let first = first.unwrap_or_else(|report| panic!("{report}"));
        let second = second.unwrap_or_else(|report| panic!("{report}"));
        assert!(first.len() > 10, "seed {seed}: a schedule does something");
        if let Some(i) = (0..first.len().max(second.len())).find(|&i| first.get(i) != second.get(i))
        {
            panic!(
                "seed {seed} diverged at line {i}:\n  first:  {:?}\n  second: {:?}",
                first.get(i),
                second.get(i)
            );
        }
    }
}

/// Iterations of [`multi_thread_interleavings`] by default; `POOL_MT_ITERATIONS=<n>` for more.
const DEFAULT_MT_ITERATIONS: u64 = 400;

/// Schedules of [`multi_thread_interleavings`] run at once, so both workers stay busy.
const MT_AT_ONCE: u64 = 8;

/// The same random programs as [`explore`] on a multi-thread runtime with two workers and real
/// time (a unit of 100 µs, so timeouts of a few milliseconds), eight schedules at once: the
/// pool's lock, the oneshot hand-off between `State::grant` and `Waiter::drop`, the clock's
/// atomics and the background task's wake-ups then meet truly parallel interleavings, which the
/// single-threaded explorer cannot produce. While the actors run, only what one `status()`
/// snapshot shows is checked, and that no connection is held twice; the cross-checks and the
/// stats once the pool is at rest.
///
/// Unlike `explore`, a failure here cannot be replayed from its seed: the OS decides how the
/// threads interleave, and each worker's generator is seeded by the OS too. The report gives
/// the iteration and its trace; running `explore` with more schedules is the way to a
/// replayable case.
#[test]
fn multi_thread_interleavings() {
    quiet_intended_panics();
    let iterations = env_u64("POOL_MT_ITERATIONS").unwrap_or(DEFAULT_MT_ITERATIONS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let mode = Mode {
        unit: Duration::from_micros(100),
        exact: false,
    };
    let started = std::time::Instant::now();
    for first in (0..iterations).step_by(MT_AT_ONCE as usize) {
        let batch: Vec<_> = (first..iterations.min(first + MT_AT_ONCE))
            .map(|i| {
                let trace = Arc::new(Mutex::new(Vec::new()));
                (i, Arc::clone(&trace), rt.spawn(drive(mode, i, trace)))
            })
            .collect();
        for (i, trace, task) in batch {
            let failure = rt
                .block_on(task)
                .unwrap_or_else(|e| Some(format!("task failed: {e}")));
            if let Some(message) = failure {
                let trace = std::mem::take(&mut *trace.lock().unwrap());
                let failure = Failure {
                    seed: i,
                    message,
                    trace,
                    replayable: false,
                };
                panic!("{}", failure.report());
            }
        }
    }
    println!("{iterations} iterations in {:?}", started.elapsed());
}

/// Known defect: a queued caller's deadline is enforced by the background task, which does not
/// look at deadlines while an upkeep round awaits a reset or a keepalive check of an idle
/// connection. A caller then waits past its timeout by as long as the round takes (up to
/// `reset_timeout` + `check_timeout` for each connection tended), and is even served late
/// when the tended connection comes back.
///
/// Found by `explore`: seed 209 at the time of writing, once the `slack` allowance in
/// `acquire` is removed (a `get_timeout(0)` queued at 25 ms timed out at 30 ms, when the
/// upkeep round's 20 ms reset ended).
#[tokio::test(start_paused = true)]
async fn a_deadline_passes_on_time_while_upkeep_resets_a_connection() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .maintenance_interval(ms(10))
        .reset_timeout(ms(500))
        .build_lazy()
        .unwrap();
    drop(pool.get().await.unwrap());
    // The returned connection is dirty: the next upkeep round resets it, and the reset hangs
    // until `reset_timeout`.
    mock.script(Op::Reset, [Behave::Hang]);
    tokio::time::sleep(ms(15)).await;
    assert_eq!(pool.status().in_use, 1, "the upkeep round is resetting it");
    let started = Instant::now();
    let outcome = pool.get_timeout(ms(20)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed <= ms(20) + LATE_SLACK,
        "get_timeout(20ms) ended after {elapsed:?} with {}",
        match &outcome {
            Ok(_) => "a connection",
            Err(e) => describe(e),
        }
    );
}

/// Known defect: an acquire that takes an idle connection is counted in `acquires_direct` at
/// once (a queued one in `acquires_waited` when it is sent a connection), and the count is
/// taken back when the connection fails its reset or check, but not when the acquire is
/// dropped, or the manager panics, while that reset or check runs. The caller got nothing,
/// yet `Stats` says it was served, and the wait histogram keeps the entry.
///
/// Found by `explore`: seed 1 at the time of writing, once the lower bound in `check_stats`
/// is made exact (11 acquires counted as served, 10 served).
#[tokio::test(start_paused = true)]
async fn an_acquire_dropped_during_its_reset_is_not_counted_as_served() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .reset_timeout(ms(500))
        .maintenance_interval(ms(1000))
        .build_lazy()
        .unwrap();
    drop(pool.get().await.unwrap());
    let served_before = pool.stats().acquires_direct + pool.stats().acquires_waited;
    // The next checkout resets the returned connection, slowly; the caller gives up meanwhile.
    mock.script(Op::Reset, [Behave::Slow(ms(100))]);
    let outcome = Limited::new(pool.get(), Some(1)).await;
    assert!(
        matches!(outcome, Outcome::GaveUp(1)),
        "dropped during the reset"
    );
    let stats = pool.stats();
    assert_eq!(
        stats.acquires_direct + stats.acquires_waited,
        served_before,
        "no acquire was served since: {stats:?}"
    );
}

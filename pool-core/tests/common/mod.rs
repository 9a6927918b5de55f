//! A scriptable [`Manager`] shared by the behaviour tests, and the checks every test ends
//! with.
//!
//! Each test binary uses a different part of this module, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use pool_core::{CloseReason, ErrorKind, Manager, Pool, PooledConnection, Status};

/// What one call of `connect`, `check` or `reset` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behave {
    /// Succeeds at once.
    Ok,
    /// Fails with an error `classify` calls transient.
    Transient,
    /// Fails with an error `classify` calls permanent.
    Permanent,
    /// Sleeps (tokio time), then succeeds.
    Slow(Duration),
    /// Never finishes.
    Hang,
    /// Panics when first polled.
    Panic,
}

/// The manager operations whose behaviour a test can switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Connect,
    Check,
    Reset,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Connect => "connect",
            Op::Check => "check",
            Op::Reset => "reset",
        })
    }
}

/// The mock's error: a message the tests can look for, and whether retrying could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MockError {
    pub message: String,
    pub permanent: bool,
}

/// The text of the error a failing `op` returns, so tests can find it in error chains.
pub fn error_text(op: Op, permanent: bool) -> String {
    let kind = if permanent { "permanent" } else { "transient" };
    format!("mock {op} refused ({kind})")
}

/// One operation's plan: scripted one-off behaviours first, then the default.
#[derive(Default)]
struct Plan {
    default: Option<Behave>,
    script: VecDeque<Behave>,
}

impl Plan {
    fn next(&mut self) -> Behave {
        self.script
            .pop_front()
            .or(self.default)
            .unwrap_or(Behave::Ok)
    }
}

/// State shared by every clone of a [`Mock`] and every connection it made.
#[derive(Default)]
struct Inner {
    plans: Mutex<[Plan; 3]>,
    broken: AtomicBool,
    /// Makes `needs_reset` answer from each connection's `dirty` flag instead of always yes.
    tracks_state: AtomicBool,
    next_id: AtomicU64,
    connects_attempted: AtomicUsize,
    connects_ok: AtomicUsize,
    checks: AtomicUsize,
    resets: AtomicUsize,
    full_resets: AtomicUsize,
    /// `MockConn` objects in existence.
    live: AtomicUsize,
    /// `Mock` values in existence (the test's clones and the pool's).
    managers: AtomicUsize,
}

impl Inner {
    fn plans(&self) -> MutexGuard<'_, [Plan; 3]> {
        // A scripted panic never happens under this lock, so poisoning cannot hide a bug.
        self.plans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one call of `op` as planned. The plan is read before the first await, so the
    /// lock is never held across one and the future stays `Send`.
    async fn perform(&self, op: Op) -> Result<(), MockError> {
        let behave = self.plans()[op as usize].next();
        match behave {
            Behave::Ok => Ok(()),
            Behave::Transient | Behave::Permanent => {
                let permanent = behave == Behave::Permanent;
                Err(MockError {
                    message: error_text(op, permanent),
                    permanent,
                })
            }
            Behave::Slow(pause) => {
                tokio::time::sleep(pause).await;
                Ok(())
            }
            Behave::Hang => std::future::pending().await,
            Behave::Panic => panic!("mock {op} panicked"),
        }
    }
}

/// A connection made by [`Mock`].
pub struct MockConn {
    /// Unique among the connections of one mock, in the order they were opened.
    pub id: u64,
    /// Session state a holder may leave behind; a successful `reset` clears it.
    pub dirty: bool,
    /// Makes `has_broken` report this connection as broken when it is returned.
    pub broken: bool,
    /// Set while a [`Held`] guard owns the connection.
    claimed: AtomicBool,
    inner: Arc<Inner>,
}

impl fmt::Debug for MockConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConn")
            .field("id", &self.id)
            .field("dirty", &self.dirty)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Drop for MockConn {
    fn drop(&mut self) {
        self.inner.live.fetch_sub(1, SeqCst);
    }
}

/// A manager whose `connect`, `check` and `reset` can be switched while the pool runs, and
/// which counts what the pool asked of it.
///
/// Clones share everything, so a test keeps one while the pool owns another.
pub struct Mock {
    inner: Arc<Inner>,
}

impl Mock {
    pub fn new() -> Mock {
        let inner = Arc::new(Inner {
            next_id: AtomicU64::new(1),
            ..Inner::default()
        });
        inner.managers.fetch_add(1, SeqCst);
        Mock { inner }
    }

    /// Makes every later call of `op` behave like this, dropping anything scripted.
    pub fn set(&self, op: Op, behave: Behave) {
        let mut plans = self.inner.plans();
        plans[op as usize] = Plan {
            default: Some(behave),
            script: VecDeque::new(),
        };
    }

    /// Puts every operation back to succeeding at once.
    pub fn set_all_ok(&self) {
        for op in [Op::Connect, Op::Check, Op::Reset] {
            self.set(op, Behave::Ok);
        }
    }

    /// Queues one-off behaviours for the next calls of `op`; the default applies after them.
    pub fn script(&self, op: Op, behaviours: impl IntoIterator<Item = Behave>) {
        self.inner.plans()[op as usize].script.extend(behaviours);
    }

    /// Makes `has_broken` report every returned connection as broken (or not).
    pub fn set_broken(&self, broken: bool) {
        self.inner.broken.store(broken, SeqCst);
    }

    /// Makes `needs_reset` say whether a returned connection was left dirty, as a driver that
    /// tracks session state would.
    pub fn track_state(&self, on: bool) {
        self.inner.tracks_state.store(on, SeqCst);
    }

    pub fn connects_attempted(&self) -> usize {
        self.inner.connects_attempted.load(SeqCst)
    }

    pub fn connects_ok(&self) -> usize {
        self.inner.connects_ok.load(SeqCst)
    }

    pub fn checks(&self) -> usize {
        self.inner.checks.load(SeqCst)
    }

    pub fn resets(&self) -> usize {
        self.inner.resets.load(SeqCst)
    }

    /// Calls of `full_reset` (which `resets` does not count).
    pub fn full_resets(&self) -> usize {
        self.inner.full_resets.load(SeqCst)
    }

    /// Connection objects that exist right now, wherever they are.
    pub fn live(&self) -> usize {
        self.inner.live.load(SeqCst)
    }

    /// `Mock` values that exist right now: the pool's copy is one of them until the pool's
    /// shared state is freed.
    pub fn managers(&self) -> usize {
        self.inner.managers.load(SeqCst)
    }
}

impl Clone for Mock {
    fn clone(&self) -> Mock {
        self.inner.managers.fetch_add(1, SeqCst);
        Mock {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.inner.managers.fetch_sub(1, SeqCst);
    }
}

impl Manager for Mock {
    type Connection = MockConn;
    type Error = MockError;

    async fn connect(&self) -> Result<MockConn, MockError> {
        self.inner.connects_attempted.fetch_add(1, SeqCst);
        self.inner.perform(Op::Connect).await?;
        self.inner.connects_ok.fetch_add(1, SeqCst);
        self.inner.live.fetch_add(1, SeqCst);
        Ok(MockConn {
            id: self.inner.next_id.fetch_add(1, SeqCst),
            dirty: false,
            broken: false,
            claimed: AtomicBool::new(false),
            inner: Arc::clone(&self.inner),
        })
    }

    async fn check(&self, _conn: &mut MockConn) -> Result<(), MockError> {
        self.inner.checks.fetch_add(1, SeqCst);
        self.inner.perform(Op::Check).await
    }

    async fn reset(&self, conn: &mut MockConn) -> Result<(), MockError> {
        self.inner.resets.fetch_add(1, SeqCst);
        self.inner.perform(Op::Reset).await?;
        conn.dirty = false;
        Ok(())
    }

    async fn full_reset(&self, conn: &mut MockConn) -> Result<(), MockError> {
        self.inner.full_resets.fetch_add(1, SeqCst);
        self.inner.perform(Op::Reset).await?;
        conn.dirty = false;
        Ok(())
    }

    fn needs_reset(&self, conn: &mut MockConn) -> bool {
        !self.inner.tracks_state.load(SeqCst) || conn.dirty
    }

    fn has_broken(&self, conn: &mut MockConn) -> bool {
        conn.broken || self.inner.broken.load(SeqCst)
    }

    fn classify(&self, error: &MockError) -> ErrorKind {
        if error.permanent {
            ErrorKind::Permanent
        } else {
            ErrorKind::Transient
        }
    }
}

/// A checked-out connection whose exclusive ownership is asserted: taking it flips the
/// connection's claim flag on (failing if another holder has it), dropping it flips the flag
/// off before the connection goes back to the pool.
pub struct Held {
    conn: Option<PooledConnection<Mock>>,
}

/// Claims a freshly checked-out connection for the test.
#[track_caller]
pub fn hold(conn: PooledConnection<Mock>) -> Held {
    let was_claimed = conn.claimed.swap(true, SeqCst);
    assert!(
        !was_claimed,
        "connection {} was handed to two holders at once",
        conn.id
    );
    Held { conn: Some(conn) }
}

impl Held {
    /// Detaches the connection from the pool for good, releasing the claim.
    pub fn take(mut self) -> MockConn {
        let conn = self
            .conn
            .take()
            .expect("a Held owns its connection until dropped");
        conn.claimed.store(false, SeqCst);
        PooledConnection::take(conn)
    }
}

impl Deref for Held {
    type Target = PooledConnection<Mock>;

    fn deref(&self) -> &PooledConnection<Mock> {
        self.conn
            .as_ref()
            .expect("a Held owns its connection until dropped")
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut PooledConnection<Mock> {
        self.conn
            .as_mut()
            .expect("a Held owns its connection until dropped")
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Unclaim first: once the pool has it, the next holder may claim it at once.
            conn.claimed.store(false, SeqCst);
            drop(conn);
        }
    }
}

/// Checks out `n` connections at once.
pub async fn hold_n(pool: &Pool<Mock>, n: usize) -> Vec<Held> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(hold(pool.get().await.unwrap()));
    }
    held
}

/// Connections the pool closed for `reason`.
pub fn closes(pool: &Pool<Mock>, reason: CloseReason) -> u64 {
    pool.stats().closes.get(reason)
}

/// How long [`assert_quiet`] lets in-flight connects, checks and drops settle, in tokio time.
const QUIET_WITHIN: Duration = Duration::from_secs(30);
const QUIET_STEP: Duration = Duration::from_millis(10);

/// Waits (in tokio time) until no connect is in flight and nobody is queued, then checks the
/// pool's invariants: size within max, size = idle + in use, nothing waiting, every
/// connection object the mock made is in the pool (or among the `outside` ones the test took
/// out with [`Held::take`]), and every connection the pool opened is either still open,
/// taken, or counted as closed for some reason.
#[track_caller]
pub fn assert_quiet(pool: &Pool<Mock>, outside: usize) -> impl Future<Output = Status> + '_ {
    let at = std::panic::Location::caller();
    async move {
        let mock = pool.manager();
        let settled =
            |s: &Status| s.connecting == 0 && s.waiting == 0 && mock.live() == s.size + outside;
        let mut waited = Duration::ZERO;
        let mut status = pool.status();
        while !settled(&status) && waited < QUIET_WITHIN {
            tokio::time::sleep(QUIET_STEP).await;
            waited += QUIET_STEP;
            status = pool.status();
        }
        assert!(
            status.size <= status.max_size,
            "{at}: size above max: {status:?}"
        );
        assert_eq!(
            status.size,
            status.idle + status.in_use,
            "{at}: counts do not add up: {status:?}"
        );
        assert_eq!(status.waiting, 0, "{at}: callers still queued: {status:?}");
        assert_eq!(
            status.connecting, 0,
            "{at}: connects still in flight: {status:?}"
        );
        assert_eq!(
            mock.live(),
            status.size + outside,
            "{at}: connection objects alive vs pool size + {outside} taken out: {status:?}"
        );
        let stats = pool.stats();
        assert_eq!(
            stats.connects_ok + stats.connections_added,
            stats.closes.total() + (status.size + outside) as u64,
            "{at}: opened connections not all open, taken or closed: {status:?}, {stats:?}"
        );
        status
    }
}

/// What became of a future polled a fixed number of times.
pub enum Polled<T> {
    /// It finished within the polls allowed.
    Done(T),
    /// It was still pending and has been dropped.
    Dropped,
    /// A poll panicked; the future has been dropped.
    Panicked,
}

impl<T> Polled<T> {
    pub fn is_dropped(&self) -> bool {
        matches!(self, Polled::Dropped)
    }
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Polls `fut` by hand at most `polls` times, letting `gap` of tokio time pass after each
/// pending poll (so connect tasks, timers and the background task move on), then drops it.
///
/// Stopping after 0, 1, 2, ... polls drops the future at each of its await points in turn.
/// A panic inside a poll is caught here, as it would be by a task's `JoinHandle`.
pub async fn poll_times<F: Future>(fut: F, polls: usize, gap: Duration) -> Polled<F::Output> {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(NoopWake));
    for _ in 0..polls {
        let mut cx = Context::from_waker(&waker);
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(out)) => return Polled::Done(out),
            Ok(Poll::Pending) => tokio::time::sleep(gap).await,
            Err(_) => return Polled::Panicked,
        }
    }
    Polled::Dropped
}

/// Polls `fut` exactly once by hand, without a task: enough to queue a caller whose future
/// the test then keeps, polls again or drops at a moment of its choosing.
pub fn poll_once<F: Future>(mut fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(NoopWake));
    fut.as_mut().poll(&mut Context::from_waker(&waker))
}

/// Lets every task that is ready run, without moving tokio time.
pub async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

/// A task that asks `pool` for a connection and returns it at once: a caller that queues
/// while the pool is busy.
pub fn spawn_get(
    pool: &Pool<Mock>,
) -> tokio::task::JoinHandle<Result<(), pool_core::Error<MockError>>> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.get().await.map(drop) })
}

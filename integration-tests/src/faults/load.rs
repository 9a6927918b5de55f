//! Load on a pool: tasks looping acquire + request, each step logged with its time, outcome
//! and the connection it was served with, so a test can ask afterwards what failed when, and
//! why.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pool_drivers::{Error, Manager, Pool};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::backend::Backend;
use super::chain;
use crate::invariants::Acquires;

/// How long one request may take before the load gives up on it (and drops its future).
pub const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// A small deterministic random number generator (xorshift), so the tests need no crate for
/// it and a failing seed can be replayed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What went wrong in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The acquire failed. `has_cause`: the error carries the real cause (a permanent connect
    /// error, or a timeout carrying the connect error that kept it waiting).
    Acquire {
        /// The error with its source chain.
        error: String,
        /// Whether a connect error came with it.
        has_cause: bool,
    },
    /// The request on a connection that was handed out failed.
    Request(String),
    /// The answer belonged to another request.
    WrongAnswer {
        /// What was sent.
        sent: i64,
        /// What came back.
        got: i64,
    },
    /// The request took longer than [`REQUEST_LIMIT`]; its future was dropped.
    Stuck,
}

/// One step of one task: an acquire and a request.
#[derive(Debug, Clone)]
pub struct Step {
    /// When the acquire started.
    pub started: Instant,
    /// When the step ended.
    pub ended: Instant,
    /// When the connection handed out was opened, if one was.
    pub conn_created: Option<Instant>,
    /// What the server said the session's user is ([`Work::WhoAmI`]).
    pub user: Option<String>,
    /// `None` when the step succeeded.
    pub failure: Option<Failure>,
}

/// What each step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// [`Backend::echo`] of a number no other step uses, checked.
    Echo,
    /// [`Backend::whoami`].
    WhoAmI,
}

/// Whether an acquire error carries its real cause.
pub fn has_cause<E>(error: &Error<E>) -> bool {
    matches!(error, Error::Connect(_)) || error.is_unavailable()
}

/// Tasks looping acquire + request on one pool until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Step>>>,
}

impl Load {
    /// Starts `tasks` tasks on `pool`, timing every acquire with `acquires`.
    pub fn start<B, M>(pool: &Pool<M>, tasks: usize, acquires: &Arc<Acquires>, work: Work) -> Load
    where
        B: Backend,
        M: Manager<Connection = B::Conn, Error = B::Error>,
    {
        static NEXT: AtomicI64 = AtomicI64::new(1);
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|_| {
                let (pool, stop, acquires) =
                    (pool.clone(), Arc::clone(&stop), Arc::clone(acquires));
                tokio::spawn(async move {
                    let mut steps = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let n = NEXT.fetch_add(1, Ordering::Relaxed);
                        let step = step::<B, M>(&pool, &acquires, work, n).await;
                        let failed = step.failure.is_some();
                        steps.push(step);
                        if failed {
                            // A real client would also not retry in a tight loop.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                    steps
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the tasks after their current step and returns every step, oldest first.
    ///
    /// # Panics
    ///
    /// When a task panicked.
    pub async fn stop(self) -> Vec<Step> {
        self.stop.store(true, Ordering::Relaxed);
        let mut steps = Vec::new();
        for task in self.tasks {
            steps.extend(task.await.expect("a load task panicked"));
        }
        steps.sort_by_key(|s| s.started);
        steps
    }
}

async fn step<B, M>(pool: &Pool<M>, acquires: &Acquires, work: Work, n: i64) -> Step
where
    B: Backend,
    M: Manager<Connection = B::Conn, Error = B::Error>,
{
    let started = Instant::now();
    let mut step = Step {
        started,
        ended: started,
        conn_created: None,
        user: None,
        failure: None,
    };
    match acquires.get(pool).await {
        Err(e) => {
            step.failure = Some(Failure::Acquire {
                error: chain(&e),
                has_cause: has_cause(&e),
            });
        }
        Ok(mut conn) => {
            step.conn_created = Some(conn.metrics().created);
            let request = async {
                match work {
                    Work::Echo => match B::echo(&mut conn, n).await {
                        Ok(got) if got == n => None,
                        Ok(got) => Some(Failure::WrongAnswer { sent: n, got }),
                        Err(e) => Some(Failure::Request(e)),
                    },
                    Work::WhoAmI => match B::whoami(&mut conn).await {
                        Ok(user) => {
                            step.user = Some(user);
                            None
                        }
                        Err(e) => Some(Failure::Request(e)),
                    },
                }
            };
            step.failure = tokio::time::timeout(REQUEST_LIMIT, request)
                .await
                .unwrap_or(Some(Failure::Stuck));
        }
    }
    step.ended = Instant::now();
    step
}

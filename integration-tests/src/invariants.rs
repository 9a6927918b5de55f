//! What must hold after every fault scenario, whatever was broken during it:
//!
//! - the pool's counts add up: size = idle + in use ≤ max, and within a second nothing is
//!   checked out (upkeep borrows an idle connection only for a moment);
//! - the server's own count of the pool's sessions equals the pool's size within a second
//!   (no session leaked on the server, none the pool believes in that the server ended);
//! - no session of the pool is inside a transaction (within a second);
//! - every acquire ended by its deadline plus a small margin ([`Acquires`]).

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pool_drivers::{Error, Manager, Pool, PooledConnection};
use tokio::time::Instant;

use crate::faults::Tenant;

/// How long after its deadline an acquire may end: scheduling on a busy machine, not slack
/// in the pool (its deadlines are enforced by a timer, and pool-core's own tests check them
/// exactly under paused time). On a 2-vCPU virtual machine whose host took a fifth of its CPU
/// time, timers here fired up to 370 ms late.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// How long the server's view may take to agree with the pool's (sessions closing or opening).
pub const AGREE_WITHIN: Duration = Duration::from_secs(1);

/// Times acquires against their deadlines, and keeps the longest.
#[derive(Debug, Default)]
pub struct Acquires {
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    count: u64,
    longest: Duration,
    late: Vec<String>,
}

impl Acquires {
    /// A fresh record.
    pub fn new() -> Acquires {
        Acquires::default()
    }

    /// [`Pool::get`], timed against the pool's acquire timeout.
    ///
    /// # Errors
    ///
    /// The pool's error.
    pub async fn get<M: Manager>(
        &self,
        pool: &Pool<M>,
    ) -> Result<PooledConnection<M>, Error<M::Error>> {
        let limit = pool.config().acquire_timeout;
        self.time(limit, pool.get()).await
    }

    /// [`Pool::get_timeout`], timed against `timeout`.
    ///
    /// # Errors
    ///
    /// The pool's error.
    pub async fn get_timeout<M: Manager>(
        &self,
        pool: &Pool<M>,
        timeout: Duration,
    ) -> Result<PooledConnection<M>, Error<M::Error>> {
        self.time(Some(timeout), pool.get_timeout(timeout)).await
    }

    /// Times one acquire that may take at most `limit` (`None`: no limit). An acquire whose
    /// future is dropped is not recorded: it had no chance to end late.
    pub async fn time<T, E: std::fmt::Display>(
        &self,
        limit: Option<Duration>,
        acquire: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = acquire.await;
        let took = started.elapsed();
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.count += 1;
        log.longest = log.longest.max(took);
        if let Some(limit) = limit {
            if took > limit + DEADLINE_MARGIN {
                let outcome = match &result {
                    Ok(_) => "succeeded".to_owned(),
                    Err(e) => format!("failed: {e}"),
                };
                log.late.push(format!(
                    "took {took:?} with a limit of {limit:?}, {outcome}"
                ));
            }
        }
        result
    }

    /// How many acquires ended.
    pub fn count(&self) -> u64 {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count
    }

    /// The longest acquire so far.
    pub fn longest(&self) -> Duration {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .longest
    }

    /// Acquires that ended later than their deadline plus [`DEADLINE_MARGIN`].
    pub fn late(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .late
            .clone()
    }

    /// Fails the test if an acquire ended late.
    ///
    /// # Panics
    ///
    /// When one did.
    #[track_caller]
    pub fn assert_in_time(&self) {
        let late = self.late();
        assert!(
            late.is_empty(),
            "{} of {} acquires ended after their deadline + {DEADLINE_MARGIN:?}: {late:#?}",
            late.len(),
            self.count()
        );
    }
}

/// Polls `check` every 20 ms until it returns `Ok`, or fails with its last complaint after
/// `within`.
///
/// # Panics
///
/// When `within` passes first.
#[track_caller]
pub fn eventually<'a, F, Fut>(
    what: &'a str,
    within: Duration,
    mut check: F,
) -> impl Future<Output = ()> + 'a
where
    F: FnMut() -> Fut + 'a,
    Fut: Future<Output = Result<(), String>> + 'a,
{
    let at = std::panic::Location::caller();
    async move {
        let started = Instant::now();
        loop {
            let complaint = match check().await {
                Ok(()) => return,
                Err(complaint) => complaint,
            };
            if started.elapsed() > within {
                panic!("{what} not within {within:?}: {complaint} (polled at {at})");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether the server counts exactly as many sessions of `tenants` as `pool` holds, with no
/// connect under way; the complaint says what differs.
///
/// # Errors
///
/// A description of the difference.
pub async fn server_agrees<M: Manager>(pool: &Pool<M>, tenants: &[&Tenant]) -> Result<(), String> {
    let before = pool.status();
    let mut server = 0;
    for tenant in tenants {
        server += tenant.sessions().await?;
    }
    let after = pool.status();
    if before.size == after.size && after.connecting == 0 && server == after.size {
        Ok(())
    } else {
        Err(format!(
            "the server has {server} sessions, the pool {after:?}"
        ))
    }
}

/// Checks everything in the module documentation, for `pool`, whose sessions belong to
/// `tenants`, and whose acquires were timed by `acquires`.
///
/// # Panics
///
/// When something does not hold.
#[track_caller]
pub fn assert_invariants<'a, M: Manager>(
    pool: &'a Pool<M>,
    tenants: &'a [&'a Tenant],
    acquires: &'a Acquires,
) -> impl Future<Output = ()> + 'a {
    let at = std::panic::Location::caller();
    async move {
        let status = pool.status();
        assert_eq!(
            status.size,
            status.idle + status.in_use,
            "{at}: counts do not add up: {status:?}"
        );
        assert!(status.size <= status.max_size, "{at}: over max: {status:?}");
        // Upkeep (a keepalive check, a reset of a returned connection) counts the connection it
        // works on as in use for a moment, so only one that stays out is a leak.
        let what = format!("{at}: every connection back in the pool");
        eventually(&what, AGREE_WITHIN, || async {
            match pool.status() {
                s if s.in_use == 0 => Ok(()),
                s => Err(format!("still checked out: {s:?}")),
            }
        })
        .await;
        let what = format!("{at}: the server agreeing with the pool");
        eventually(&what, AGREE_WITHIN, || server_agrees(pool, tenants)).await;
        let what = format!("{at}: no session inside a transaction");
        eventually(&what, AGREE_WITHIN, || async {
            let mut open = 0;
            for tenant in tenants {
                open += tenant.sessions_in_transaction().await?;
            }
            if open == 0 {
                Ok(())
            } else {
                Err(format!("{open} sessions are inside a transaction"))
            }
        })
        .await;
        let late = acquires.late();
        assert!(
            late.is_empty(),
            "{at}: {} of {} acquires ended after their deadline + {DEADLINE_MARGIN:?}: {late:#?}",
            late.len(),
            acquires.count()
        );
    }
}

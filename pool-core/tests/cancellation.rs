//! Giving up at any moment loses nothing: `get()` futures dropped at each of their await
//! points, while connect, check and reset in turn succeed, fail, dawdle, hang or panic, and
//! tasks aborted while queued, leave a pool that still serves with exact counts.

mod common;

use std::time::Duration;

use common::{assert_quiet, hold, poll_times, settle, Behave, Mock, Op, Polled};
use pool_core::{CloseReason, ConnectError, Error, Pool, PooledConnection};

const GAP: Duration = Duration::from_millis(10);
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(250);
const STEP_TIMEOUT: Duration = Duration::from_millis(60);
const BEHAVIOURS: [Behave; 6] = [
    Behave::Ok,
    Behave::Transient,
    Behave::Permanent,
    Behave::Slow(Duration::from_millis(25)),
    Behave::Hang,
    Behave::Panic,
];

/// A pool where every stage of an acquire is reachable: checks always run, and every manager
/// call is bounded well inside the acquire timeout so even `Hang` lets the acquire end.
fn pool(mock: &Mock) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(2)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_timeout(STEP_TIMEOUT)
        .check_timeout(STEP_TIMEOUT)
        .reset_timeout(STEP_TIMEOUT)
        .skip_check_within(Duration::ZERO)
        .connect_backoff(Duration::from_millis(5))
        .connect_backoff_max(Duration::from_millis(20))
        .idle_timeout(None)
        .max_lifetime(None)
        .build_lazy()
        .unwrap()
}

/// Puts `op` on the path of the next acquire: for a connect, nothing may be idle; for a check
/// or a reset, a used connection must be.
async fn stage_for(pool: &Pool<Mock>, op: Op) {
    match op {
        Op::Connect => pool.retain(|_, _| false),
        Op::Check | Op::Reset => drop(pool.get().await.expect("staging runs with a healthy mock")),
    }
}

/// Says whether the final outcome of an acquire run to its end fits what `op` did.
fn expected(
    op: Op,
    behave: Behave,
    outcome: &Polled<Result<PooledConnection<Mock>, Error<common::MockError>>>,
) -> bool {
    match (op, behave, outcome) {
        (_, Behave::Ok | Behave::Slow(_), Polled::Done(Ok(_))) => true,
        (Op::Connect, Behave::Permanent, Polled::Done(Err(Error::Connect(e)))) => {
            e.backend().is_some_and(|e| e.permanent)
        }
        (Op::Connect, Behave::Transient, Polled::Done(Err(Error::Timeout(t)))) => {
            matches!(t.last_connect_error(), Some(ConnectError::Backend(_)))
        }
        (Op::Connect, Behave::Hang, Polled::Done(Err(Error::Timeout(t)))) => {
            matches!(t.last_connect_error(), Some(ConnectError::Timeout(_)))
        }
        (Op::Connect, Behave::Panic, Polled::Done(Err(Error::Timeout(t)))) => {
            matches!(t.last_connect_error(), Some(ConnectError::Panic(_)))
        }
        // A fresh connection is clean, so after a failed reset the replacement is served.
        (Op::Reset, Behave::Transient | Behave::Permanent | Behave::Hang, Polled::Done(Ok(_))) => {
            true
        }
        // Every connection, fresh or not, fails the check: the acquire runs out of time.
        (
            Op::Check,
            Behave::Transient | Behave::Permanent | Behave::Hang,
            Polled::Done(Err(Error::Timeout(_))),
        ) => true,
        // Check and reset run in the caller's future, so their panics reach the caller.
        (Op::Check | Op::Reset, Behave::Panic, Polled::Panicked) => true,
        _ => false,
    }
}

#[tokio::test(start_paused = true)]
async fn get_dropped_at_every_await_point_under_every_manager_behaviour() {
    let mock = Mock::new();
    let pool = pool(&mock);
    for op in [Op::Connect, Op::Check, Op::Reset] {
        for behave in BEHAVIOURS {
            let mut polls = 0;
            loop {
                mock.set_all_ok();
                stage_for(&pool, op).await;
                mock.set(op, behave);
                let outcome = poll_times(pool.get(), polls, GAP).await;
                mock.set_all_ok();

                let case = format!("{op} {behave:?}, dropped after {polls} polls");
                assert_quiet(&pool, 0).await;
                let conn = hold(
                    pool.get()
                        .await
                        .unwrap_or_else(|e| panic!("{case}: pool no longer serves: {e}")),
                );
                drop(conn);
                assert_quiet(&pool, 0).await;

                if !outcome.is_dropped() {
                    assert!(expected(op, behave, &outcome), "{case}: unexpected outcome");
                    break;
                }
                polls += 1;
                assert!(polls < 200, "{case}: the acquire never ended");
            }
        }
    }
}

/// A panicking check unwinds out of a task's `get()`; the connection it was checking is
/// closed as abandoned and the slot freed.
#[tokio::test(start_paused = true)]
async fn a_panicking_check_reaches_the_task_and_frees_the_slot() {
    let mock = Mock::new();
    let pool = pool(&mock);
    stage_for(&pool, Op::Check).await;
    mock.set(Op::Check, Behave::Panic);

    let task = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.id) }
    });
    let err = task.await.expect_err("the check's panic propagates");
    assert!(err.is_panic());

    mock.set(Op::Check, Behave::Ok);
    assert_eq!(pool.stats().closes.get(CloseReason::Abandoned), 1);
    assert_eq!(assert_quiet(&pool, 0).await.size, 0);
    drop(hold(pool.get().await.unwrap()));
}

/// Tasks queued for a connection are aborted, some of them after a connection was already
/// sent to them: the connections pass on and the remaining tasks are all served.
#[tokio::test(start_paused = true)]
async fn aborting_queued_tasks_passes_their_connections_on() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .acquire_timeout(None)
        .build_lazy()
        .unwrap();
    let a = hold(pool.get().await.unwrap());
    let b = hold(pool.get().await.unwrap());

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = hold(pool.get().await.unwrap());
                tokio::time::sleep(Duration::from_millis(1)).await;
                conn.id
            })
        })
        .collect();
    settle().await;
    assert_eq!(pool.status().waiting, 10);

    // Aborted while plainly queued.
    for task in &tasks[4..7] {
        task.abort();
    }
    // The connection goes to task 0 at once; task 0 is aborted before it ever runs again.
    drop(a);
    tasks[0].abort();
    // Likewise for task 1.
    drop(b);
    tasks[1].abort();

    let mut served = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(_) => served += 1,
            Err(e) => assert!(
                e.is_cancelled() && matches!(i, 0 | 1 | 4..=6),
                "task {i}: {e}"
            ),
        }
    }
    assert_eq!(
        served, 5,
        "every task that was not aborted got a connection"
    );
    let status = assert_quiet(&pool, 0).await;
    assert_eq!(
        status.size, 2,
        "no connection was lost with the aborted tasks"
    );
    assert_eq!(mock.connects_attempted(), 2);
}

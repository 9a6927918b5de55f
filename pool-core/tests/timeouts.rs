//! Acquire limits at their edges: zero, one nanosecond, `Duration::MAX`, no timeout at all;
//! what a timeout error says; `try_get`, which never waits; and `max_waiters`.

mod common;

use std::time::Duration;

use common::{assert_quiet, hold, settle, Behave, Mock, Op};
use pool_core::{Error, Pool, TimeoutStage};
use tokio::time::Instant;

/// Connections live forever here, since some tests hold one for hours of (paused) time; the
/// background task, with nothing to do, only looks once a minute.
fn pool(mock: &Mock, max_size: usize) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(max_size)
        .max_lifetime(None)
        .idle_timeout(None)
        .maintenance_interval(Duration::from_secs(60))
        .build_lazy()
        .unwrap()
}

/// Opens one connection and leaves it idle.
async fn with_one_idle(mock: &Mock) -> Pool<Mock> {
    let pool = pool(mock, 1);
    drop(pool.get().await.unwrap());
    pool
}

#[tokio::test(start_paused = true)]
async fn a_zero_timeout_takes_an_idle_connection() {
    let mock = Mock::new();
    let pool = with_one_idle(&mock).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // so the checkout check runs too

    let conn = pool
        .get_timeout(Duration::ZERO)
        .await
        .expect("an idle connection needs no waiting");
    assert_eq!(
        mock.checks(),
        1,
        "the check finished at once, within a zero limit"
    );
    drop(conn);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn tiny_timeouts_with_nothing_idle_fail_cleanly_and_the_connect_they_started_is_kept() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    // Paused time makes an instant connect take no time at all; make it take some.
    mock.set(Op::Connect, Behave::Slow(Duration::from_millis(5)));
    for limit in [Duration::ZERO, Duration::from_nanos(1)] {
        pool.retain(|_, _| false);
        let start = Instant::now();
        let err = pool.get_timeout(limit).await.unwrap_err();
        let Error::Timeout(timeout) = &err else {
            panic!("{limit:?}: expected a timeout, got {err:?}")
        };
        assert_eq!(timeout.stage(), TimeoutStage::Waiting);
        assert!(
            start.elapsed() <= Duration::from_millis(1),
            "{limit:?}: gave up late"
        );

        // The connect the caller started finishes for the pool: the next caller finds it.
        let status = assert_quiet(&pool, 0).await;
        assert_eq!(status.idle, 1, "{limit:?}");
        drop(
            pool.get_timeout(limit)
                .await
                .expect("now a connection is idle"),
        );
    }
    assert_eq!(pool.stats().acquires_timed_out, 2);
}

#[tokio::test(start_paused = true)]
async fn duration_max_means_wait_without_limit() {
    let mock = Mock::new();
    let pool = with_one_idle(&mock).await;
    let conn = hold(
        pool.get_timeout(Duration::MAX)
            .await
            .expect("no overflow computing a deadline"),
    );

    // Held for an hour, far past the default acquire timeout: a caller with Duration::MAX is
    // still there when it comes back.
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_timeout(Duration::MAX).await.map(|c| c.id) }
    });
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!waiter.is_finished());
    let id = conn.id;
    drop(conn);
    assert_eq!(waiter.await.unwrap().unwrap(), id);

    // Limits too large to add to the clock behave the same, including while checking.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let conn = pool
        .get_timeout(Duration::from_secs(u64::MAX))
        .await
        .unwrap();
    assert_eq!(mock.checks(), 1);
    drop(conn);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn no_acquire_timeout_waits_as_long_as_it_takes() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .acquire_timeout(None)
        .maintenance_interval(Duration::from_secs(60))
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.id) }
    });
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!waiter.is_finished(), "still waiting after an hour");
    assert_eq!(pool.status().waiting, 1);
    drop(conn);
    assert!(waiter.await.unwrap().is_ok());
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_timeout_says_what_the_pool_was_doing_and_how_busy_it_was() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    let a = hold(pool.get().await.unwrap());
    let b = hold(pool.get().await.unwrap());
    let other = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.get_timeout(Duration::from_secs(60))
                .await
                .map(|c| c.id)
        }
    });
    settle().await;

    let err = pool
        .get_timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    let Error::Timeout(timeout) = &err else {
        panic!("expected a timeout, got {err:?}")
    };
    assert_eq!(timeout.stage(), TimeoutStage::Waiting);
    assert_eq!(timeout.waited(), Duration::from_millis(100));
    assert!(err.is_timeout());
    let text = err.to_string();
    for part in [
        "100ms",
        "waiting for a connection",
        "2 of 2 in use",
        "1 others waiting",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
    drop((a, b));
    assert!(other.await.unwrap().is_ok());

    // A check that never answers: the caller times out while preparing the connection.
    tokio::time::sleep(Duration::from_secs(1)).await;
    mock.set(Op::Check, Behave::Hang);
    let err = pool
        .get_timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    let Error::Timeout(timeout) = &err else {
        panic!("expected a timeout, got {err:?}")
    };
    assert_eq!(timeout.stage(), TimeoutStage::Preparing);
    assert!(
        err.to_string()
            .contains("resetting or checking a connection"),
        "{err}"
    );
    mock.set(Op::Check, Behave::Ok);
    assert_quiet(&pool, 0).await;
}

/// The limit covers the whole acquire, however many connections fail their check on the
/// way: a caller does not get a fresh limit after each failure.
#[tokio::test(start_paused = true)]
async fn a_caller_whose_checks_keep_hanging_gives_up_at_its_deadline() {
    let mock = Mock::new();
    let pool = pool(&mock, 3);
    let held: Vec<_> = [pool.get().await, pool.get().await, pool.get().await]
        .into_iter()
        .map(|c| hold(c.unwrap()))
        .collect();
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await; // all three are due a check
    mock.set(Op::Check, Behave::Hang);

    let start = Instant::now();
    let err = pool
        .get_timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    let Error::Timeout(timeout) = &err else {
        panic!("expected a timeout, got {err:?}")
    };
    assert_eq!(timeout.stage(), TimeoutStage::Preparing);
    assert_eq!(start.elapsed(), Duration::from_millis(300), "gave up late");
    assert_eq!(
        timeout.waited(),
        start.elapsed(),
        "the error reports the whole wait"
    );

    mock.set(Op::Check, Behave::Ok);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn try_get_never_queues_and_never_connects() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    assert!(
        matches!(pool.try_get().await, Err(Error::NoIdle)),
        "nothing idle in a new pool"
    );
    settle().await;
    assert_eq!(
        mock.connects_attempted(),
        0,
        "try_get does not open connections"
    );

    let conn = hold(pool.get().await.unwrap());
    assert!(matches!(pool.try_get().await, Err(Error::NoIdle)));
    assert_eq!(pool.status().waiting, 0);
    drop(conn);
    let conn = pool.try_get().await.expect("an idle connection is taken");
    drop(conn);
    assert_eq!(mock.connects_attempted(), 1);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn one_waiter_more_than_max_waiters_is_rejected_at_once() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .max_waiters(2)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(hold).map(drop) })
        })
        .collect();
    settle().await;
    assert_eq!(pool.status().waiting, 2);

    let start = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, Error::Rejected { max_waiters: 2 }), "{err:?}");
    assert_eq!(start.elapsed(), Duration::ZERO, "rejected without waiting");
    assert_eq!(pool.stats().acquires_rejected, 1);

    drop(conn);
    for waiter in waiters {
        waiter
            .await
            .unwrap()
            .expect("queued callers are served as usual");
    }
    // With the queue empty again, a caller may queue.
    drop(pool.get().await.unwrap());
    assert_quiet(&pool, 0).await;
}

/// Deadlines are kept by the pool's background task. When the runtime it ran on shuts down, the
/// next acquire starts it again on its own runtime, so a pool used from one runtime after
/// another still times out rather than waits forever.
#[test]
fn deadlines_hold_after_the_first_runtime_is_gone() {
    let mock = Mock::new();
    let pool = pool(&mock, 1);
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let held = first.block_on(async { pool.get().await.unwrap() });
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        let started = Instant::now();
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            pool.get_timeout(Duration::from_millis(50)),
        )
        .await
        .expect("the acquire ends by its own deadline")
        .unwrap_err();
        assert!(
            matches!(&err, Error::Timeout(t) if t.stage() == TimeoutStage::Waiting),
            "{err:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(held);
        drop(pool.get().await.expect("the returned connection serves"));
    });
}

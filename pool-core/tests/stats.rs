//! The numbers the pool reports: acquire and connect counters, closes by reason, the wait-time
//! histogram, and each connection's own metrics.

mod common;

use std::time::Duration;

use common::{assert_quiet, hold, settle, Behave, Mock, Op};
use pool_core::{CloseReason, Error, Pool};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn every_acquire_and_connect_is_counted_once_under_the_right_heading() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .max_waiters(1)
        .connect_backoff(Duration::from_millis(10))
        .connect_backoff_max(Duration::from_millis(10))
        .build_lazy()
        .unwrap();

    // Two callers on an empty pool wait for connects, one of which fails once first.
    mock.script(Op::Connect, [Behave::Transient]);
    let a = hold(pool.get().await.unwrap());
    let b = hold(pool.get().await.unwrap());
    // One is served from the idle set.
    drop(b);
    let b = hold(pool.get().await.unwrap());
    // One gives up while both are busy.
    assert!(pool
        .get_timeout(Duration::from_millis(10))
        .await
        .unwrap_err()
        .is_timeout());
    // One queues (the limit is one) and is served later; one more is turned away.
    let queued = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    settle().await;
    assert!(matches!(pool.get().await, Err(Error::Rejected { .. })));
    drop(a);
    queued.await.unwrap().unwrap();
    drop(b);

    let stats = pool.stats();
    assert_eq!(stats.acquires_direct, 1);
    assert_eq!(stats.acquires_waited, 3);
    assert_eq!(stats.acquires_timed_out, 1);
    assert_eq!(stats.acquires_rejected, 1);
    assert_eq!((stats.connects_ok, stats.connects_failed), (2, 1));
    assert_eq!(
        stats.wait_time.count(),
        stats.acquires_direct + stats.acquires_waited
    );
    assert_eq!(stats.closes.total(), 0);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn closes_are_counted_by_reason() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .max_uses(2)
        .build_lazy()
        .unwrap();
    let mut held: Vec<_> = [pool.get().await, pool.get().await, pool.get().await]
        .into_iter()
        .map(|c| hold(c.unwrap()))
        .collect();

    held[0].broken = true;
    drop(held.remove(0)); // Broken
    drop(held); // back idle, one use each

    tokio::time::sleep(Duration::from_secs(1)).await; // due a check on checkout
    mock.script(Op::Check, [Behave::Transient]);
    let conn = pool.get().await.unwrap(); // CheckFailed, then the other idle one
    assert_eq!(conn.metrics().uses, 2);
    drop(conn); // MaxUses
    drop(pool.get().await.unwrap()); // a new one, idle again
    pool.retain(|_, _| false); // Retain
    let conn = pool.get().await.unwrap();
    pool.close();
    drop(conn); // PoolClosed

    let closes = pool.stats().closes;
    for (reason, count) in [
        (CloseReason::Broken, 1),
        (CloseReason::CheckFailed, 1),
        (CloseReason::MaxUses, 1),
        (CloseReason::Retain, 1),
        (CloseReason::PoolClosed, 1),
    ] {
        assert_eq!(closes.get(reason), count, "{}", reason.as_str());
    }
    assert_eq!(pool.stats().checks_failed, 1);
    assert_eq!(closes.total(), 5);
    assert_eq!(closes.iter().map(|(_, n)| n).sum::<u64>(), closes.total());
    assert_eq!(mock.live(), 0, "every connection opened was closed");
}

/// An acquire whose idle connection fails its check, and which then queues for another, is
/// one acquire: counted once, with one wait time (the whole of it).
#[tokio::test(start_paused = true)]
async fn an_acquire_that_retries_after_a_failed_check_is_counted_once() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .acquire_timeout(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = pool.stats();

    mock.script(Op::Check, [Behave::Transient]);
    mock.set(Op::Connect, Behave::Slow(Duration::from_millis(30)));
    drop(pool.get().await.expect("served by a new connection"));
    let stats = pool.stats();
    let direct = stats.acquires_direct - before.acquires_direct;
    let waited = stats.acquires_waited - before.acquires_waited;
    assert_eq!(
        (direct, waited),
        (0, 1),
        "it waited for a connect, so it counts as waited only"
    );
    assert_eq!(
        stats.wait_time.count() - before.wait_time.count(),
        1,
        "one acquire, one wait time"
    );
    assert!(stats.wait_time.max() >= Duration::from_millis(30));

    // The same when it runs out of time instead: a timeout, nothing else.
    tokio::time::sleep(Duration::from_secs(1)).await;
    mock.script(Op::Check, [Behave::Transient]);
    mock.set(Op::Connect, Behave::Hang);
    assert!(pool.get().await.unwrap_err().is_timeout());
    let after = pool.stats();
    assert_eq!(after.acquires_direct, stats.acquires_direct);
    assert_eq!(after.acquires_waited, stats.acquires_waited);
    assert_eq!(after.acquires_timed_out, stats.acquires_timed_out + 1);
    assert_eq!(after.wait_time.count(), stats.wait_time.count());
}

#[tokio::test(start_paused = true)]
async fn wait_time_percentiles_are_ordered_and_match_the_waits() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    drop(pool.get().await.unwrap()); // waited for the first connect, in no time
    for _ in 0..40 {
        drop(pool.get().await.unwrap()); // direct
    }

    // Ten callers queue behind a connection that comes back after 1..=10 ms each.
    let conn = pool.get().await.unwrap();
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.get().await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
                drop(conn);
            })
        })
        .collect();
    settle().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    drop(conn);
    for caller in callers {
        caller.await.unwrap();
    }

    let stats = pool.stats();
    let h = &stats.wait_time;
    assert_eq!(h.count(), stats.acquires_direct + stats.acquires_waited);
    assert_eq!(h.count(), 52);
    assert_eq!(
        h.max(),
        Duration::from_millis(10),
        "the last caller waited 10 ms"
    );
    assert_eq!(h.p50(), Duration::ZERO, "most acquires were direct");
    assert!(h.p50() <= h.p95() && h.p95() <= h.p99() && h.p99() <= h.max());
    assert!(h.p99() >= Duration::from_millis(8), "p99 {:?}", h.p99());
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn connection_metrics_follow_each_use() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .skip_check_within(Duration::from_millis(100))
        .build_lazy()
        .unwrap();
    let opened = Instant::now();
    let conn = pool.get().await.unwrap();
    let first = conn.metrics();
    assert_eq!(first.uses, 1);
    assert_eq!(first.created, opened);
    assert_eq!(first.last_used, first.created, "never returned yet");

    tokio::time::sleep(Duration::from_secs(2)).await;
    let returned = Instant::now();
    drop(conn);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let conn = pool.get().await.unwrap();
    let second = conn.metrics();
    assert_eq!(
        (second.id, second.created),
        (first.id, first.created),
        "same connection"
    );
    assert_eq!(second.uses, 2);
    // While out, `last_used` is when it was handed out: 3 s after its return. The pool stamps
    // times from a clock that may lag the real one a little.
    let handed_out = returned + Duration::from_secs(3);
    assert!(
        second.last_used > first.last_used && second.last_used <= handed_out,
        "{second:?}"
    );
    assert!(
        handed_out - second.last_used < Duration::from_millis(100),
        "{second:?}"
    );
    assert!(
        second.last_checked > returned,
        "checked on this checkout: idle 3 s"
    );
    assert!(second.age() >= Duration::from_secs(5));
    drop(conn);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_waiter_whose_connection_turns_out_broken_is_counted_once() {
    let mock = Mock::new();
    // Connections come back clean, so the pool itself sees nothing to do before handing one out.
    mock.track_state(true);
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build()
        .await
        .unwrap();
    let held = hold(pool.get().await.unwrap());
    let waited_before = pool.stats().acquires_waited;
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    settle().await;
    // Its connection comes back whole, and is found broken on its way to the waiter: the
    // waiter queues again and is served by the connection opened in its place.
    mock.set(Op::Connect, Behave::Slow(Duration::from_millis(10)));
    drop(held);
    mock.set_broken(true);
    settle().await;
    mock.set_broken(false);
    let served_by = waiter.await.unwrap().unwrap();

    let stats = pool.stats();
    assert_eq!(
        served_by, 2,
        "served by the connection opened in place of the broken one"
    );
    assert_eq!(stats.closes.get(CloseReason::Broken), 1);
    assert_eq!(stats.acquires_waited - waited_before, 1);
    assert_eq!(
        stats.wait_time.count(),
        stats.acquires_direct + stats.acquires_waited
    );
    assert_quiet(&pool, 0).await;
}

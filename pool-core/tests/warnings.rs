//! Soft limits: warnings before the pool meets a hard limit, once per episode.

mod common;

use std::time::Duration;

use common::{assert_quiet, closes, hold_n, Mock};
use pool_core::{CloseReason, Pool, SoftLimits};

#[tokio::test(start_paused = true)]
async fn a_busy_pool_is_warned_of_once_per_episode() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(4)
        .maintenance_interval(Duration::from_secs(1))
        .soft_limits(
            SoftLimits::default()
                .busy_share(0.75)
                .busy_for(Duration::from_secs(5)),
        )
        .build_lazy()
        .unwrap();
    let busy = || pool.stats().warnings.busy;

    let held = hold_n(&pool, 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(busy(), 0, "busy for less than the window");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(busy(), 1, "once, however long it lasts");
    drop(held);

    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = hold_n(&pool, 4).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(busy(), 2, "a new episode");
    drop(held);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn long_waits_are_warned_of_once_per_episode() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .acquire_timeout(Duration::from_secs(10))
        .maintenance_interval(Duration::from_secs(1))
        .soft_limits(SoftLimits::default().wait_share(0.5))
        .build_lazy()
        .unwrap();
    let slow = || pool.stats().warnings.slow_waits;

    // Three callers queue for the one connection and are served after 6, 7 and 8 s: one
    // episode, since the queue never emptied.
    let conn = pool.get().await.unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.get().await.unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
                drop(conn);
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop(conn);
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(slow(), 1, "{:?}", pool.stats());

    // No long wait for a whole acquire timeout: the next one is a new episode.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let conn = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { drop(pool.get().await.unwrap()) }
    });
    tokio::time::sleep(Duration::from_secs(7)).await;
    drop(conn);
    waiter.await.unwrap();
    assert_eq!(slow(), 2);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_in_use_past_its_lifetime_is_warned_of_when_it_comes_back() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .max_lifetime(Duration::from_secs(10))
        .maintenance_interval(Duration::from_millis(100))
        .build_lazy()
        .unwrap();
    let conn = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    drop(conn);
    assert_eq!(pool.stats().warnings.overdue, 1);
    assert_eq!(closes(&pool, CloseReason::Expired), 1);

    // Turned off, no warning.
    let mut config = pool.config();
    config.soft_limits = None;
    pool.update_config(config).unwrap();
    let conn = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    drop(conn);
    assert_eq!(pool.stats().warnings.overdue, 1);
    assert_quiet(&pool, 0).await;
}

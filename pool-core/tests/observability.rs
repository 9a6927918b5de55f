//! The figures added for monitoring: use and connect times, cancelled acquires, acquires by
//! hour, utilisation and reuse, and leak reports as data.

mod common;

use std::time::Duration;

use common::{hold, settle, spawn_get, Behave, Mock, Op};
use pool_core::Pool;

/// How far the pool's cached clock may lag behind.
const CLOCK: Duration = Duration::from_millis(20);

#[tokio::test(start_paused = true)]
async fn use_and_connect_times_are_recorded() {
    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Slow(Duration::from_millis(200)));
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .build_lazy()
        .unwrap();

    let conn = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(conn);
    let conn = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(conn);

    let stats = pool.stats();
    assert_eq!(stats.connect_time.count(), 1);
    // The paused clock makes the connect take exactly its sleep.
    assert_eq!(stats.connect_time.max(), Duration::from_millis(200));
    // Use times come from the pool's cached clock, up to 10 ms behind at either end.
    let near = |d: Duration, secs: u64| d.abs_diff(Duration::from_secs(secs)) <= CLOCK;
    assert_eq!(stats.use_time.count(), 2);
    assert!(near(stats.use_time.max(), 3), "{:?}", stats.use_time.max());
    assert!(near(stats.use_time.sum(), 4), "{:?}", stats.use_time.sum());
    assert!(
        near(stats.use_time.mean(), 2),
        "{:?}",
        stats.use_time.mean()
    );
    assert_eq!(stats.use_time.count_within(Duration::from_secs(2)), 1);
    assert_eq!(stats.acquires_by_hour.iter().sum::<u64>(), 2);
    // One connection opened, handed out twice.
    assert_eq!(stats.reuse_rate(), 2.0);
    assert_eq!(stats.max_size, 2);
    assert!(
        stats.uptime >= Duration::from_millis(4200),
        "{:?}",
        stats.uptime
    );
    // 4 s held out of (uptime x 2) connection-seconds.
    let expected = stats.use_time.sum().as_secs_f64() / (stats.uptime.as_secs_f64() * 2.0);
    assert!((stats.utilisation() - expected).abs() < 1e-9);
    assert!(stats.utilisation() > 0.4 && stats.utilisation() < 0.5);
}

#[tokio::test(start_paused = true)]
async fn an_acquire_given_up_while_queued_counts_as_cancelled() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    let held = hold(pool.get().await.unwrap());

    let waiting = spawn_get(&pool);
    settle().await;
    assert_eq!(pool.status().waiting, 1);
    waiting.abort();
    let _ = waiting.await;

    let stats = pool.stats();
    assert_eq!(stats.acquires_cancelled, 1);
    assert_eq!(stats.acquires_timed_out, 0);
    assert_eq!(pool.status().waiting, 0);
    drop(held);
    // A timeout is not a cancellation.
    let held = pool.get().await.unwrap();
    assert!(pool
        .get_timeout(Duration::from_millis(5))
        .await
        .unwrap_err()
        .is_timeout());
    drop(held);
    assert_eq!(pool.stats().acquires_cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn leaks_lists_the_connections_out_past_the_threshold() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .leak_threshold(Duration::from_secs(10))
        .build_lazy()
        .unwrap();

    let old = pool.get().await.unwrap();
    let line = line!() - 1;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let newer = pool.get().await.unwrap();
    assert!(pool.leaks().is_empty(), "nothing is out for 10 s yet");

    tokio::time::sleep(Duration::from_secs(8)).await;
    let leaks = pool.leaks();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(leaks[0].id, old.metrics().id);
    assert_eq!(leaks[0].checked_out_at.file(), file!());
    assert_eq!(leaks[0].checked_out_at.line(), line);
    assert!(leaks[0].held >= Duration::from_secs(12));

    tokio::time::sleep(Duration::from_secs(4)).await;
    let leaks = pool.leaks();
    assert_eq!(leaks.len(), 2);
    assert_eq!(leaks[0].id, old.metrics().id, "longest held first");
    assert_eq!(leaks[1].id, newer.metrics().id);

    drop(old);
    let leaks = pool.leaks();
    assert_eq!(leaks.len(), 1);
    assert_eq!(leaks[0].id, newer.metrics().id);
    drop(newer);
    assert!(pool.leaks().is_empty());
}

#[tokio::test(start_paused = true)]
async fn no_threshold_means_no_leak_report() {
    let pool = Pool::builder(Mock::new()).build_lazy().unwrap();
    let _conn = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(pool.leaks().is_empty());
}

//! Priorities: queued callers are served highest priority first, a long waiter is boosted past
//! them, a caller never overtakes a higher-priority waiter, callers can read their position,
//! and all of it holds when callers give up.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_quiet, hold, settle, Mock};
use pool_core::{Pool, Priority, QueuePlace};

/// Spawns a caller at `priority` that records its name when served and holds the connection
/// for `hold_for`.
fn caller(
    pool: &Pool<Mock>,
    priority: Priority,
    name: &'static str,
    served: &Arc<Mutex<Vec<&'static str>>>,
    hold_for: Duration,
) -> tokio::task::JoinHandle<()> {
    let pool = pool.clone();
    let served = Arc::clone(served);
    tokio::spawn(async move {
        let conn = hold(pool.get_with(priority).await.unwrap());
        served.lock().unwrap().push(name);
        tokio::time::sleep(hold_for).await;
        drop(conn);
    })
}

#[tokio::test(start_paused = true)]
async fn queued_callers_are_served_highest_priority_first() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (priority, name) in [
        (Priority::Low, "low"),
        (Priority::Normal, "normal"),
        (Priority::High, "high"),
        (Priority::Critical, "critical"),
        (Priority::High, "high 2"),
    ] {
        tasks.push(caller(
            &pool,
            priority,
            name,
            &served,
            Duration::from_millis(1),
        ));
        settle().await;
    }
    drop(conn);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        *served.lock().unwrap(),
        ["critical", "high", "high 2", "normal", "low"]
    );
    let stats = pool.stats();
    assert_eq!(stats.by_priority(Priority::High).waited, 2);
    assert_eq!(stats.by_priority(Priority::Low).waited, 1);
    assert_eq!(
        stats.by_priority(Priority::Normal).waited,
        2,
        "the first caller queued for the first connection"
    );
    assert_eq!(stats.by_priority(Priority::Critical).wait_time.count(), 1);
    assert_quiet(&pool, 0).await;
}

/// A low-priority caller is not starved by a steady stream of high-priority ones: once it has
/// waited `priority_boost_after`, it is served next.
#[tokio::test(start_paused = true)]
async fn a_long_waiter_is_boosted_past_a_stream_of_urgent_callers() {
    const BOOST: Duration = Duration::from_millis(100);
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .priority_boost_after(BOOST)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let low = tokio::spawn({
        let pool = pool.clone();
        async move {
            let start = tokio::time::Instant::now();
            drop(pool.get_with(Priority::Low).await.unwrap());
            start.elapsed()
        }
    });
    settle().await;
    // Urgent callers arrive faster than they are served, each holding 10 ms.
    let served = Arc::new(Mutex::new(Vec::new()));
    let stream = tokio::spawn({
        let pool = pool.clone();
        let served = Arc::clone(&served);
        async move {
            let mut tasks = Vec::new();
            for _ in 0..40 {
                tasks.push(caller(
                    &pool,
                    Priority::High,
                    "high",
                    &served,
                    Duration::from_millis(10),
                ));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
    });
    // Let a few urgent callers queue behind the held connection before it comes back.
    tokio::time::sleep(Duration::from_millis(12)).await;
    drop(conn);
    let waited = low.await.unwrap();
    assert!(
        waited >= BOOST && waited <= BOOST + Duration::from_millis(20),
        "the low caller waited {waited:?}"
    );
    stream.await.unwrap();
    assert_quiet(&pool, 0).await;
}

/// A caller does not take an idle connection ahead of a queued caller of a higher priority,
/// even while overtaking is allowed.
#[tokio::test(start_paused = true)]
async fn nobody_overtakes_a_higher_priority_waiter() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let urgent = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_with(Priority::High).await.map(|c| c.id) }
    });
    settle().await;
    let id = conn.id;
    drop(conn);
    assert!(
        matches!(pool.try_get().await, Err(pool_core::Error::NoIdle)),
        "a Normal caller may not overtake a queued High one"
    );
    assert_eq!(urgent.await.unwrap().unwrap(), id);
    assert_quiet(&pool, 0).await;
}

/// Queued callers read their position; it moves up as callers ahead are served or give up,
/// and is `None` once served.
#[tokio::test(start_paused = true)]
async fn queued_callers_read_their_position() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let places: Vec<QueuePlace> = (0..4).map(|_| QueuePlace::new()).collect();
    let priorities = [
        Priority::Normal,
        Priority::Normal,
        Priority::Low,
        Priority::High,
    ];
    let mut tasks = Vec::new();
    for (place, priority) in places.iter().zip(priorities) {
        let pool = pool.clone();
        let place = place.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.get_tracked(priority, &place).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(conn);
        }));
        settle().await;
    }
    let positions = || places.iter().map(QueuePlace::position).collect::<Vec<_>>();
    assert_eq!(positions(), [Some(1), Some(2), Some(3), Some(0)]);

    tasks.remove(1).abort();
    settle().await;
    assert_eq!(positions()[2], Some(2), "the Low caller moved up");

    drop(conn);
    tokio::time::sleep(Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(positions()[3], None, "the High caller was served");
    for task in tasks {
        task.await.unwrap();
    }
    assert!(positions().iter().all(Option::is_none));
    assert_quiet(&pool, 0).await;
}

/// A high-priority caller that gives up while it was being sent the connection passes it on to
/// the next caller in order.
#[tokio::test(start_paused = true)]
async fn a_high_priority_caller_giving_up_passes_its_turn_on() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let id = conn.id;
    let mut urgent = Box::pin(pool.get_with(Priority::Critical));
    assert!(common::poll_once(urgent.as_mut()).is_pending());
    let normal = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.id) }
    });
    settle().await;
    drop(conn);
    drop(urgent);
    let got = tokio::time::timeout(Duration::from_millis(100), normal)
        .await
        .expect("served at once")
        .unwrap()
        .unwrap();
    assert_eq!(got, id);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn each_priority_can_have_its_own_waiter_limit() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .max_waiters_by_priority([Some(1), None, None, None])
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let low = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_with(Priority::Low).await.map(drop) }
    });
    settle().await;
    let err = pool.get_with(Priority::Low).await.unwrap_err();
    assert!(
        matches!(err, pool_core::Error::Rejected { max_waiters: 1 }),
        "{err}"
    );
    assert_eq!(pool.stats().acquires_rejected, 1);
    // Other priorities still queue.
    let normal = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    settle().await;
    assert_eq!(pool.status().waiting, 2);
    drop(conn);
    normal.await.unwrap().unwrap();
    low.await.unwrap().unwrap();
    assert_quiet(&pool, 0).await;
}

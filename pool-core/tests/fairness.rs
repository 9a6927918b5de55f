//! First come, first served: under steady contention no caller waits much longer than its
//! fair share, and queued callers are served in the order they arrived.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_quiet, hold, settle, Mock};
use pool_core::{Fairness, Pool};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn no_task_waits_much_longer_than_its_fair_share() {
    const TASKS: usize = 100;
    const CONNECTIONS: usize = 4;
    const ROUNDS: usize = 20;
    const HOLD: Duration = Duration::from_millis(1);

    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(CONNECTIONS)
        .build_lazy()
        .unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut longest = Duration::ZERO;
                for _ in 0..ROUNDS {
                    let asked = Instant::now();
                    let conn = hold(pool.get().await.unwrap());
                    longest = longest.max(asked.elapsed());
                    tokio::time::sleep(HOLD).await;
                    drop(conn);
                }
                longest
            })
        })
        .collect();

    let mut longest = Duration::ZERO;
    for task in tasks {
        longest = longest.max(task.await.unwrap());
    }
    // With every caller queued behind the others, one turn comes every TASKS / CONNECTIONS
    // hold times. A pool that let callers barge in would starve some far beyond that.
    let fair_share = HOLD * (TASKS / CONNECTIONS) as u32;
    assert!(
        longest <= fair_share * 3,
        "longest wait {longest:?}, fair share {fair_share:?}"
    );

    let stats = pool.stats();
    assert_eq!(
        stats.acquires_direct + stats.acquires_waited,
        (TASKS * ROUNDS) as u64
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn queued_callers_are_served_in_arrival_order() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());

    let served = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        let (pool, served) = (pool.clone(), Arc::clone(&served));
        tasks.push(tokio::spawn(async move {
            let conn = hold(pool.get().await.unwrap());
            served.lock().unwrap().push(name);
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(conn);
        }));
        // Let this caller queue before the next one arrives.
        settle().await;
    }
    assert_eq!(pool.status().waiting, 5);

    drop(conn);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*served.lock().unwrap(), ["A", "B", "C", "D", "E"]);
    assert_quiet(&pool, 0).await;
}

/// Strict FIFO: a connection coming back while callers queue goes to the oldest of them: a
/// newcomer that finds it "in transit" may not take it, even if the queued caller has not run
/// yet.
#[tokio::test(start_paused = true)]
async fn a_newcomer_does_not_take_a_connection_meant_for_a_queued_caller() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .fairness(Fairness::Strict)
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());
    let queued = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.id) }
    });
    settle().await;

    let id = conn.id;
    drop(conn);
    assert!(
        matches!(pool.try_get().await, Err(pool_core::Error::NoIdle)),
        "the returned connection already belongs to the queued caller"
    );
    assert_eq!(queued.await.unwrap().unwrap(), id);
    assert_quiet(&pool, 0).await;
}

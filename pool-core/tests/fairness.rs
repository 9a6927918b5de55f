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

/// A caller that keeps taking the pool's only connection back as soon as it returns it cannot
/// keep a queued caller waiting longer than the fairness bound (plus the hold under way when
/// the bound passes): from then on, the returned connection goes to the queued caller.
#[tokio::test(start_paused = true)]
async fn a_queued_caller_is_overtaken_for_at_most_the_fairness_bound() {
    const BOUND: Duration = Duration::from_millis(20);
    const HOLD: Duration = Duration::from_millis(1);
    for fairness in [Fairness::Bounded(BOUND), Fairness::Strict] {
        let mock = Mock::new();
        let pool = Pool::builder(mock.clone())
            .max_size(1)
            .fairness(fairness)
            .build_lazy()
            .unwrap();
        let first = hold(pool.get().await.unwrap());
        let queued_at = Instant::now();
        let queued = tokio::spawn({
            let pool = pool.clone();
            async move {
                drop(pool.get().await.unwrap());
                queued_at.elapsed()
            }
        });
        settle().await;
        // The hog returns its connection and asks again at once, without yielding.
        let mut conn = first;
        let mut overtook = 0;
        while !queued.is_finished() {
            tokio::time::sleep(HOLD).await;
            drop(conn);
            match pool.try_get().await {
                Ok(again) => {
                    overtook += 1;
                    conn = hold(again);
                }
                Err(_) => break,
            }
        }
        let waited = queued.await.unwrap();
        match fairness {
            Fairness::Strict => assert_eq!(overtook, 0, "strict FIFO: nobody overtakes"),
            Fairness::Bounded(bound) => {
                assert!(overtook > 0, "overtaking is allowed within the bound");
                assert!(
                    waited <= bound + HOLD,
                    "waited {waited:?}, bound {bound:?} (overtaken {overtook} times)"
                );
            }
        }
        assert_quiet(&pool, 0).await;
    }
}

/// Queued callers do not wake one another for nothing: a connection returned while callers
/// queue is handed out, and the queue is served in order, also when callers give up.
#[tokio::test(start_paused = true)]
async fn a_queue_of_callers_drains_under_default_fairness() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .build_lazy()
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = hold(pool.get().await.unwrap());
                tokio::time::sleep(Duration::from_millis(1 + i % 3)).await;
                drop(conn);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = pool.stats();
    assert_eq!(stats.acquires_direct + stats.acquires_waited, 50);
    assert_quiet(&pool, 0).await;
}

/// A task looping on acquire and release against an idle pool never waits, so without the
/// runtime's cooperative budget it would keep every other task of its thread from running.
#[tokio::test]
async fn a_task_looping_on_an_idle_pool_lets_other_tasks_run() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .build_lazy()
        .unwrap();
    drop(pool.get().await.unwrap());
    let other_ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = tokio::spawn({
        let pool = pool.clone();
        let other_ran = Arc::clone(&other_ran);
        async move {
            for i in 0..1_000_000 {
                drop(pool.get().await.unwrap());
                if other_ran.load(std::sync::atomic::Ordering::SeqCst) {
                    return Some(i);
                }
            }
            None
        }
    });
    let other = tokio::spawn({
        let other_ran = Arc::clone(&other_ran);
        async move { other_ran.store(true, std::sync::atomic::Ordering::SeqCst) }
    });
    let seen_after = looping.await.unwrap();
    other.await.unwrap();
    assert!(
        seen_after.is_some_and(|i| i < 10_000),
        "the other task ran only after {seen_after:?} acquires"
    );
}

/// Tasks looping on acquire and release with no hold, on one thread: a queued caller waits only
/// for its turn on the thread, and finds an idle connection when it gets it. However long that
/// turn takes (here longer than the bound, which is zero), such a caller was never passed over,
/// so returned connections are not handed to it while it is not running: that would make every
/// acquire queue behind a caller that has not run yet, a task switch per acquire.
#[tokio::test]
async fn callers_waiting_only_for_their_turn_on_the_thread_do_not_force_hand_offs() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 500;
    for fairness in [Fairness::Bounded(Duration::ZERO), Fairness::Strict] {
        let mock = Mock::new();
        let pool = Pool::builder(mock.clone())
            .max_size(4)
            .fairness(fairness)
            .build_lazy()
            .unwrap();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for _ in 0..ROUNDS {
                        drop(pool.get().await.unwrap());
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = pool.stats();
        assert_eq!(
            stats.acquires_direct + stats.acquires_waited,
            (TASKS * ROUNDS) as u64
        );
        match fairness {
            // Each task queues when it first runs, while the connections open, and barely after.
            Fairness::Bounded(_) => assert!(
                stats.acquires_waited <= 2 * TASKS as u64,
                "{} of {} acquires waited",
                stats.acquires_waited,
                TASKS * ROUNDS
            ),
            // Strict hand-off queues nearly every acquire: the contrast the test relies on.
            Fairness::Strict => assert!(
                stats.acquires_waited >= (TASKS * ROUNDS / 2) as u64,
                "only {} acquires waited under strict FIFO",
                stats.acquires_waited
            ),
        }
        assert_quiet(&pool, 0).await;
    }
}

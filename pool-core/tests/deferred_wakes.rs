//! Deferred wake-ups: on a multi-thread runtime, once callers woken for a returned connection
//! keep finding it taken, a returned connection is left for whoever asks first; the background
//! task still brings a connection left idle to its waiter, and nobody is starved. Real time:
//! paused time needs the current-thread runtime, where wake-ups are never deferred.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use common::{assert_quiet, hold, poll_once, Mock};
use pool_core::Pool;

/// Tasks looping acquire, yield, release on fewer connections than tasks, until `enough` says
/// so or `budget` runs out; returns how many rounds each task made.
async fn hold_loops(
    pool: &Pool<Mock>,
    tasks: usize,
    budget: Duration,
    enough: impl Fn(&Pool<Mock>) -> bool,
) -> Vec<usize> {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (pool, stop) = (pool.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut rounds = 0;
                while !stop.load(SeqCst) {
                    let conn = hold(pool.get().await.expect("served within the timeout"));
                    tokio::task::yield_now().await;
                    drop(conn);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let until = tokio::time::Instant::now() + budget;
    while !enough(pool) && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, SeqCst);
    let mut rounds = Vec::new();
    for handle in handles {
        rounds.push(handle.await.unwrap());
    }
    rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_contention_wakes_are_deferred_and_every_task_is_served() {
    let pool = Pool::builder(Mock::new())
        .max_size(2)
        .acquire_timeout(Duration::from_secs(10))
        .build_lazy()
        .unwrap();

    // Each task must also have been served a few times, so a starved task fails the test.
    let rounds = hold_loops(&pool, 8, Duration::from_secs(20), |pool| {
        pool.stats().wakes_deferred >= 100 && pool.stats().acquires_waited >= 1_000
    })
    .await;

    let stats = pool.stats();
    assert!(
        stats.wakes_deferred >= 100,
        "{} wakes deferred, {} acquires waited",
        stats.wakes_deferred,
        stats.acquires_waited
    );
    assert!(
        rounds.iter().all(|&n| n > 0),
        "a task was starved: {rounds:?}"
    );
    assert_eq!(
        stats.acquires_direct + stats.acquires_waited,
        rounds.iter().sum::<usize>() as u64
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(flavor = "current_thread")]
async fn wakes_are_never_deferred_on_the_current_thread_runtime() {
    let pool = Pool::builder(Mock::new()).max_size(2).build_lazy().unwrap();

    let rounds = hold_loops(&pool, 8, Duration::from_millis(200), |_| false).await;

    let stats = pool.stats();
    assert_eq!(stats.wakes_deferred, 0);
    assert!(stats.acquires_waited > 0, "nobody queued");
    assert!(
        rounds.iter().all(|&n| n > 0),
        "a task was starved: {rounds:?}"
    );
    assert_quiet(&pool, 0).await;
}

// One worker thread: the tasks below take turns on it, so every round goes the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_connection_left_idle_by_a_deferred_wake_reaches_its_waiter() {
    let pool = Pool::builder(Mock::new())
        .max_size(1)
        .acquire_timeout(Duration::from_secs(20))
        // No routine round, whose look at the idle connection would also bring it to the
        // waiter.
        .maintenance_interval(Duration::from_secs(3600))
        .build_lazy()
        .unwrap();
    let conn = hold(pool.get().await.unwrap());

    // The waiter takes its turn whenever it is served, and counts its turns.
    let (served, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let waiter = {
        let (pool, served, stop) = (pool.clone(), Arc::clone(&served), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                drop(hold(pool.get().await.expect("served within the timeout")));
                served.fetch_add(1, SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };

    // Return the connection and take it straight back, so that the waiter woken for it finds it
    // taken, until a connection returned wakes nobody.
    let holder = {
        let (pool, served) = (pool.clone(), Arc::clone(&served));
        tokio::spawn(async move {
            let mut conn = conn;
            for _ in 0..100 {
                while pool.status().waiting == 0 {
                    tokio::task::yield_now().await;
                }
                let (deferred, served_before) = (pool.stats().wakes_deferred, served.load(SeqCst));
                drop(conn);
                if pool.stats().wakes_deferred > deferred {
                    return Some(served_before);
                }
                let taken = {
                    let mut get = std::pin::pin!(pool.get());
                    match poll_once(get.as_mut()) {
                        Poll::Ready(taken) => Some(taken.unwrap()),
                        Poll::Pending => None,
                    }
                };
                conn = match taken {
                    Some(taken) => hold(taken),
                    // The waiter had waited past the fairness bound and was handed it: wait for
                    // the end of its turn.
                    None => hold(pool.get().await.unwrap()),
                };
                // The woken waiter looks now, and finds nothing.
                tokio::task::yield_now().await;
            }
            None
        })
    };
    let served_before = holder.await.unwrap();
    let served_before =
        served_before.unwrap_or_else(|| panic!("no wake was deferred: {:?}", pool.status()));

    // Nobody returns a connection any more: only the background task's look brings the idle
    // connection to the waiter, long before its acquire timeout.
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        while served.load(SeqCst) == served_before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the waiter was never served: {:?}, {} wakes deferred",
        pool.status(),
        pool.stats().wakes_deferred
    );
    stop.store(true, SeqCst);
    waiter.await.unwrap();
    assert_quiet(&pool, 0).await;
}

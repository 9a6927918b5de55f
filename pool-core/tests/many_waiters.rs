//! Crowds on a multi-threaded runtime: ten thousand callers on three connections, rounds of
//! callers that all give up, and callers giving up while the pool closes under them.

mod common;

use std::time::Duration;

use common::{assert_quiet, hold, Mock};
use pool_core::{Error, Pool};

/// Waits (real time, bounded) until `pool` has `n` callers queued.
async fn until_waiting(pool: &Pool<Mock>, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pool.status().waiting != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached {n} waiters: {:?}",
            pool.status()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_waiters_on_three_connections_all_complete() {
    const WAITERS: usize = 10_000;
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .acquire_timeout(Duration::from_secs(120))
        .build_lazy()
        .unwrap();
    let held: Vec<_> = [pool.get().await, pool.get().await, pool.get().await]
        .into_iter()
        .map(|c| hold(c.unwrap()))
        .collect();

    let waited_before = pool.stats().acquires_waited;

    let tasks: Vec<_> = (0..WAITERS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = hold(pool.get().await?);
                tokio::task::yield_now().await;
                drop(conn);
                Ok::<_, Error<common::MockError>>(())
            })
        })
        .collect();
    // All of them queue at once before anyone is served.
    until_waiting(&pool, WAITERS).await;
    drop(held);

    for task in tasks {
        task.await.unwrap().expect("every waiter is served");
    }
    assert_eq!(pool.stats().acquires_waited - waited_before, WAITERS as u64);
    assert_eq!(
        mock.connects_attempted(),
        3,
        "the same three connections served everyone"
    );
    assert_eq!(assert_quiet(&pool, 0).await.size, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_of_callers_that_all_time_out_leave_nobody_queued() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .build_lazy()
        .unwrap();
    let held: Vec<_> = [pool.get().await, pool.get().await, pool.get().await]
        .into_iter()
        .map(|c| hold(c.unwrap()))
        .collect();

    for round in 0..20 {
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(
                    async move { pool.get_timeout(Duration::from_millis(1)).await.map(drop) },
                )
            })
            .collect();
        for task in tasks {
            let outcome = task.await.unwrap();
            assert!(
                matches!(outcome, Err(Error::Timeout(_))),
                "round {round}: {outcome:?}"
            );
        }
        assert_eq!(pool.status().waiting, 0, "round {round}");
    }
    assert_eq!(pool.stats().acquires_timed_out, 20 * 200);

    drop(held);
    let conn = tokio::time::timeout(Duration::from_secs(5), pool.get())
        .await
        .expect("served at once: no stale queue entry stands in the way")
        .unwrap();
    drop(hold(conn));
    assert_quiet(&pool, 0).await;
}

/// Callers give up (their tasks are aborted, on the runtime's worker threads) while another
/// thread closes the pool. Each must end either told `Closed` or cancelled, never with a
/// panic from miscounting, and the counts must come out whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_giving_up_while_the_pool_closes() {
    const WAITERS: usize = 2_000;
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let mock = Mock::new();
        let pool = Pool::builder(mock.clone())
            .max_size(1)
            .build_lazy()
            .unwrap();
        let held = hold(pool.get().await.unwrap());
        let tasks: Vec<_> = (0..WAITERS)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.get().await.map(drop) })
            })
            .collect();
        until_waiting(&pool, WAITERS).await;

        let closer = std::thread::spawn({
            let pool = pool.clone();
            move || pool.close()
        });
        for task in tasks.iter().rev() {
            task.abort();
        }
        closer.join().unwrap();

        for task in tasks {
            match task.await {
                Ok(outcome) => assert!(
                    matches!(outcome, Err(Error::Closed)),
                    "round {round}: {outcome:?}"
                ),
                Err(e) => assert!(
                    e.is_cancelled(),
                    "round {round}: a caller's task failed: {e}"
                ),
            }
        }
        let status = pool.status();
        assert_eq!(
            (status.waiting, status.size),
            (0, 1),
            "round {round}: {status:?}"
        );
        drop(held);
        assert!(
            pool.close_and_wait(Duration::from_secs(5)).await,
            "round {round}"
        );
        assert_eq!(mock.live(), 0, "round {round}");
    }
}

//! A caller that is sent a connection and gives up before it runs must pass the connection
//! on: the wake-up it received may not be swallowed while others wait.

mod common;

use std::task::Poll;
use std::time::Duration;

use common::{assert_quiet, hold, poll_once, settle, Mock};
use pool_core::{Fairness, Pool};

fn single(mock: &Mock) -> Pool<Mock> {
    single_with(mock, Fairness::default())
}

fn single_with(mock: &Mock, fairness: Fairness) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(1)
        .fairness(fairness)
        .acquire_timeout(Duration::from_secs(5))
        .build_lazy()
        .unwrap()
}

/// Spawns a task that waits for a connection, holds it briefly and reports its id.
fn queued_task(pool: &Pool<Mock>) -> tokio::task::JoinHandle<u64> {
    let pool = pool.clone();
    tokio::spawn(async move {
        let conn = hold(
            pool.get()
                .await
                .expect("the connection must reach this task"),
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
        conn.id
    })
}

#[tokio::test(start_paused = true)]
async fn a_granted_waiter_dropped_unpolled_passes_the_connection_to_the_next() {
    let mock = Mock::new();
    // Strict FIFO hands the connection to A itself.
    let pool = single_with(&mock, Fairness::Strict);
    let conn = hold(pool.get().await.unwrap());
    let id = conn.id;

    // Boxed, not `pin!`ed, so that `drop(a)` below really drops the future.
    let mut a = Box::pin(pool.get());
    assert!(
        poll_once(a.as_mut()).is_pending(),
        "A queues behind the held connection"
    );
    let b = queued_task(&pool);
    settle().await;
    assert_eq!(pool.status().waiting, 2);

    // The connection is sent to A, the oldest waiter, but A never runs again.
    drop(conn);
    assert_eq!(
        pool.status().idle,
        0,
        "the returned connection went to A, not to the idle set"
    );
    drop(a);

    let got = tokio::time::timeout(Duration::from_millis(100), b)
        .await
        .expect("B is served at once, not after its acquire timeout")
        .unwrap();
    assert_eq!(got, id, "B got the very connection A gave up");
    assert_eq!(
        mock.connects_attempted(),
        1,
        "no connect was needed to serve B"
    );
    assert_quiet(&pool, 0).await;
}

/// With overtaking allowed, a returned connection is made idle and the oldest waiter is woken to
/// take it; if that waiter is dropped before it runs, the wake-up passes to the next one.
#[tokio::test(start_paused = true)]
async fn a_woken_waiter_dropped_unpolled_passes_the_wake_up_to_the_next() {
    let mock = Mock::new();
    let pool = single(&mock);
    let conn = hold(pool.get().await.unwrap());
    let id = conn.id;

    let mut a = Box::pin(pool.get());
    assert!(poll_once(a.as_mut()).is_pending());
    let b = queued_task(&pool);
    settle().await;
    assert_eq!(pool.status().waiting, 2);

    drop(conn);
    assert_eq!(pool.status().idle, 1, "made idle, A woken to take it");
    drop(a);
    let got = tokio::time::timeout(Duration::from_millis(100), b)
        .await
        .expect("B is woken in A's place and served at once")
        .unwrap();
    assert_eq!(got, id);
    assert_eq!(mock.connects_attempted(), 1);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn the_connection_skips_every_waiter_that_gave_up() {
    let mock = Mock::new();
    let pool = single(&mock);
    let conn = hold(pool.get().await.unwrap());

    // A is granted the connection and then dropped; B and C gave up before that; D waits.
    let mut a = Box::pin(pool.get());
    assert!(poll_once(a.as_mut()).is_pending());
    let b = queued_task(&pool);
    let c = queued_task(&pool);
    let d = queued_task(&pool);
    settle().await;
    b.abort();
    c.abort();
    settle().await;
    assert_eq!(pool.status().waiting, 2, "A and D are still queued");

    drop(conn);
    drop(a);
    let got = tokio::time::timeout(Duration::from_millis(100), d)
        .await
        .expect("D is served at once")
        .unwrap();
    assert_eq!(got, 1);
    assert_quiet(&pool, 0).await;
}

/// A granted waiter that is polled again after all keeps the connection: giving up is what
/// passes it on, not a late poll.
#[tokio::test(start_paused = true)]
async fn a_granted_waiter_that_runs_keeps_its_connection() {
    let mock = Mock::new();
    let pool = single(&mock);
    let conn = hold(pool.get().await.unwrap());
    let id = conn.id;

    let mut a = Box::pin(pool.get());
    assert!(poll_once(a.as_mut()).is_pending());
    let b = queued_task(&pool);
    settle().await;
    drop(conn);

    let Poll::Ready(got) = poll_once(a.as_mut()) else {
        panic!("A was granted the connection, so its next poll completes");
    };
    let got = hold(got.unwrap());
    assert_eq!(got.id, id);
    assert!(
        !b.is_finished(),
        "B still waits while A holds the only connection"
    );
    drop(got);
    assert_eq!(b.await.unwrap(), id);
    assert_quiet(&pool, 0).await;
}

//! `pause` and `resume`: callers wait without being served and nothing is opened until the
//! pool resumes.

mod common;

use std::time::Duration;

use common::{assert_quiet, hold_n, poll_times, Mock};
use pool_core::{Error, Pool};

fn pool_of(mock: &Mock) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(2)
        .acquire_timeout(Duration::from_secs(10))
        .build_lazy()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_paused_pool_serves_nobody_and_opens_nothing_until_it_resumes() {
    let mock = Mock::new();
    let pool = pool_of(&mock);
    drop(hold_n(&pool, 1).await);
    pool.pause();
    assert!(pool.is_paused());
    assert!(matches!(pool.try_get().await, Err(Error::NoIdle)));

    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|conn| conn.id) })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = pool.status();
    assert_eq!(
        (status.waiting, status.idle, status.size),
        (3, 1, 1),
        "{status:?}"
    );
    assert_eq!(mock.connects_attempted(), 1, "nothing opened while paused");

    pool.resume();
    assert!(!pool.is_paused());
    for waiter in waiters {
        waiter.await.unwrap().unwrap();
    }
    assert_eq!(mock.connects_ok(), 2, "the idle one first, then one more");
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn callers_of_a_paused_pool_time_out_at_their_deadline() {
    let mock = Mock::new();
    let pool = pool_of(&mock);
    pool.pause();
    let started = tokio::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    pool.resume();
    drop(pool.get().await.unwrap());
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn connections_returned_while_paused_wait_for_the_resume() {
    let mock = Mock::new();
    let pool = pool_of(&mock);
    let held = hold_n(&pool, 2).await;
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    pool.pause();
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        pool.status().idle,
        2,
        "back in the pool, not handed to the waiter"
    );
    assert!(!waiter.is_finished());
    pool.resume();
    waiter.await.unwrap().unwrap();
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_switch_over_serves_queued_callers_from_new_connections() {
    let mock = Mock::new();
    let pool = pool_of(&mock);
    drop(hold_n(&pool, 2).await);
    pool.pause();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.id) }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    pool.signal_recovery();
    pool.resume();
    let id = waiter.await.unwrap().unwrap();
    assert!(
        id > 2,
        "a connection to the new server, not connection {id}"
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn callers_who_give_up_while_paused_leave_nothing_behind() {
    let mock = Mock::new();
    let pool = pool_of(&mock);
    drop(hold_n(&pool, 1).await);
    pool.pause();
    for polls in 0..4 {
        let dropped = poll_times(pool.get(), polls, Duration::from_millis(1)).await;
        assert!(dropped.is_dropped());
    }
    pool.resume();
    drop(hold_n(&pool, 2).await);
    assert_quiet(&pool, 0).await;
}

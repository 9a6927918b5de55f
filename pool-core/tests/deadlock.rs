//! Self-deadlock detection: a task that holds a connection and asks for another, while every
//! connection is held by a task waiting for one, is told at once (or warned) instead of
//! waiting out its timeout.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_quiet, hold, settle, Mock};
use pool_core::{Error, Pool, SelfDeadlock};
use tokio::sync::Barrier;

/// Two tasks each hold one of two connections and each ask for a second one: the second to ask
/// completes the cycle and gets `Error::SelfDeadlock` naming both call sites; giving up its
/// connection lets the first task through.
#[tokio::test(start_paused = true)]
async fn nested_acquires_that_can_never_be_served_fail_fast() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .acquire_timeout(Duration::from_secs(10))
        .self_deadlock(SelfDeadlock::Fail)
        .build_lazy()
        .unwrap();
    let both_hold = Arc::new(Barrier::new(2));
    let nested = |first: bool| {
        let pool = pool.clone();
        let both_hold = Arc::clone(&both_hold);
        tokio::spawn(async move {
            let outer = hold(pool.get().await.unwrap());
            both_hold.wait().await;
            if !first {
                // Let the other task queue first.
                settle().await;
            }
            let inner = pool.get().await.map(hold);
            drop(outer);
            inner.map(drop)
        })
    };
    let (a, b) = (nested(true), nested(false));
    let started = tokio::time::Instant::now();
    let b = b.await.unwrap();
    let Err(Error::SelfDeadlock { held_at, asked_at }) = &b else {
        panic!("expected a self-deadlock, got {b:?}");
    };
    assert_eq!(held_at.file(), file!());
    assert_eq!(asked_at.file(), file!());
    assert!(held_at.line() < asked_at.line());
    assert_eq!(started.elapsed(), Duration::ZERO, "failed at once");
    assert!(
        format!("{}", b.unwrap_err()).contains("self-deadlock"),
        "the message names it"
    );
    a.await
        .unwrap()
        .expect("the other task is served once b gives up");
    assert_quiet(&pool, 0).await;
}

/// Detection is off by default, and a task that holds a connection and asks for another while
/// others are free to return theirs is no deadlock.
#[tokio::test(start_paused = true)]
async fn only_a_cycle_that_cannot_end_is_reported() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .self_deadlock(SelfDeadlock::Fail)
        .build_lazy()
        .unwrap();
    let other = hold(pool.get().await.unwrap());
    let nested = tokio::spawn({
        let pool = pool.clone();
        async move {
            let outer = hold(pool.get().await.unwrap());
            let inner = pool.get().await.map(hold);
            drop(outer);
            inner.map(drop)
        }
    });
    settle().await;
    // The held connection belongs to no waiting task: it may come back.
    drop(other);
    nested
        .await
        .unwrap()
        .expect("served once the other connection came back");
    assert_quiet(&pool, 0).await;
}

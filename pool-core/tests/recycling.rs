//! `Recycle` strategies and `check_on_return`: what happens to a connection on its way back.

mod common;

use std::time::Duration;

use common::{assert_quiet, closes, settle, Behave, Mock, Op};
use pool_core::{AdaptiveRecycle, CloseReason, Pool, Recycle};

fn pool_with(mock: &Mock, recycle: Recycle) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(2)
        .recycle(recycle)
        .check_on_checkout(false)
        .build_lazy()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn fast_resets_only_connections_left_dirty() {
    let mock = Mock::new();
    mock.track_state(true);
    let pool = pool_with(&mock, Recycle::Fast);
    drop(pool.get().await.unwrap());
    pool.get().await.unwrap().dirty = true;
    drop(pool.get().await.unwrap());
    assert_eq!((mock.resets(), mock.full_resets()), (1, 0));
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn checked_runs_the_full_reset_after_every_use() {
    let mock = Mock::new();
    mock.track_state(true);
    let pool = pool_with(&mock, Recycle::Checked);
    for _ in 0..3 {
        drop(pool.get().await.unwrap());
    }
    assert_eq!(
        (mock.resets(), mock.full_resets()),
        (0, 2),
        "before each later checkout, though nothing was left dirty"
    );
    // A connection that sits idle gets it in the background, soon after its return.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(mock.full_resets(), 3);
    let failures = closes(&pool, CloseReason::ResetFailed);
    mock.script(Op::Reset, [Behave::Transient]);
    drop(pool.get().await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        closes(&pool, CloseReason::ResetFailed),
        failures + 1,
        "a failed full reset closes"
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn replace_closes_each_returned_connection_and_opens_another() {
    let mock = Mock::new();
    let pool = pool_with(&mock, Recycle::Replace);
    let first = pool.get().await.unwrap().id;
    settle().await;
    let status = assert_quiet(&pool, 0).await;
    assert_eq!((status.size, status.idle), (1, 1), "a replacement is open");
    let second = pool.get().await.unwrap().id;
    assert_ne!(first, second);
    assert_quiet(&pool, 0).await;
    assert_eq!(closes(&pool, CloseReason::Recycled), 2);
    assert_eq!(mock.connects_ok(), 3);
}

#[tokio::test(start_paused = true)]
async fn adaptive_replaces_worn_connections_and_fully_resets_after_long_sessions() {
    let mock = Mock::new();
    mock.track_state(true);
    let rules = AdaptiveRecycle::default()
        .replace_after_uses(3)
        .full_reset_after(Duration::from_secs(1));
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .recycle(Recycle::Adaptive(rules))
        .check_on_checkout(false)
        .build_lazy()
        .unwrap();

    // A short session left dirty: the ordinary reset.
    pool.get().await.unwrap().dirty = true;
    // A long one left dirty: the full reset.
    {
        let mut conn = pool.get().await.unwrap();
        conn.dirty = true;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!((mock.resets(), mock.full_resets()), (1, 1));
    // The third use wears it out: replaced.
    let third = pool.get().await.unwrap().id;
    let fourth = pool.get().await.unwrap().id;
    assert_ne!(third, fourth, "replaced after 3 uses");
    assert_eq!(closes(&pool, CloseReason::Recycled), 1);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_returned_connection_is_checked_before_it_is_handed_out_again() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .check_on_return(true)
        .check_on_checkout(false)
        .build_lazy()
        .unwrap();
    let first = pool.get().await.unwrap();
    let first_id = first.id;
    mock.script(Op::Check, [Behave::Slow(Duration::from_secs(1))]);
    drop(first);
    // The drop did not wait for the check; the connection is not idle until it passes.
    let status = pool.status();
    assert_eq!((status.in_use, status.idle), (1, 0), "{status:?}");
    let again = pool.get().await.unwrap();
    assert_eq!(again.id, first_id, "it passed and was handed out");
    assert_eq!(mock.checks(), 1);

    // One that fails the check is closed, never handed out.
    mock.script(Op::Check, [Behave::Transient]);
    drop(again);
    let next = pool.get().await.unwrap();
    assert_ne!(next.id, first_id, "the failed one was never handed out");
    assert_eq!(closes(&pool, CloseReason::CheckFailed), 1);
    drop(next);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_check_on_return_that_hangs_is_bounded_and_costs_no_slot() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .check_on_return(true)
        .build_lazy()
        .unwrap();
    mock.set(Op::Check, Behave::Hang);
    let conn = pool.get().await.unwrap();
    drop(conn);
    // The check hangs; its bound (check_timeout, 5 s) closes the connection and frees the slot.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(closes(&pool, CloseReason::CheckFailed), 1);
    mock.set(Op::Check, Behave::Ok);
    drop(pool.get().await.unwrap());
    assert_quiet(&pool, 0).await;
}

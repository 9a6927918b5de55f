//! What happens to a connection on its way out of the pool and on its way back: reset, check,
//! `has_broken`, `max_uses`, panicking holders, `take`, returns from outside a runtime, and
//! which idle connection is picked.

mod common;

use std::time::Duration;

use common::{assert_quiet, hold, settle, Behave, Mock, Op};
use pool_core::{CloseReason, IdleOrder, Pool};

fn pool(mock: &Mock, max_size: usize) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(max_size)
        .build_lazy()
        .expect("valid config")
}

#[tokio::test(start_paused = true)]
async fn reset_runs_before_a_used_connection_is_handed_out_again_and_never_on_a_fresh_one() {
    let mock = Mock::new();
    let pool = pool(&mock, 1);

    let mut conn = hold(pool.get().await.unwrap());
    assert_eq!(mock.resets(), 0, "a connection nobody used needs no reset");
    let id = conn.id;
    conn.dirty = true; // session state the next holder must not see
    drop(conn);
    assert_eq!(
        mock.resets(),
        0,
        "reset is deferred to the next checkout, not run in Drop"
    );

    let conn = hold(pool.get().await.unwrap());
    assert_eq!(conn.id, id, "the only connection came back");
    assert_eq!(mock.resets(), 1);
    assert!(
        !conn.dirty,
        "reset ran before the second holder got the connection"
    );
    drop(conn);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn check_runs_on_checkout_unless_the_connection_was_used_recently() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .skip_check_within(Duration::from_millis(500))
        .build_lazy()
        .unwrap();

    drop(pool.get().await.unwrap());
    assert_eq!(
        mock.checks(),
        0,
        "a connection opened just now is known good"
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(
        mock.checks(),
        0,
        "used 100 ms ago: within skip_check_within"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(
        mock.checks(),
        1,
        "idle for 1 s: checked before being handed out"
    );

    // With checks turned off nothing is checked however long it idled.
    let mut config = pool.config();
    config.check_on_checkout = false;
    pool.update_config(config).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(mock.checks(), 1);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_check_closes_the_connection_and_the_caller_gets_another() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    let first = pool.get().await.unwrap().id;
    tokio::time::sleep(Duration::from_secs(1)).await; // past skip_check_within

    mock.script(Op::Check, [Behave::Transient]);
    let conn = hold(
        pool.get()
            .await
            .expect("the failed check is not the caller's problem"),
    );
    assert_ne!(
        conn.id, first,
        "the connection that failed its check was not handed out"
    );
    let stats = pool.stats();
    assert_eq!(stats.closes.get(CloseReason::CheckFailed), 1);
    assert_eq!(stats.checks_failed, 1);
    drop(conn);
    assert_eq!(
        assert_quiet(&pool, 0).await.size,
        1,
        "only the replacement is left"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_reset_closes_the_connection_and_the_caller_gets_another() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    let mut conn = pool.get().await.unwrap();
    conn.dirty = true;
    let first = conn.id;
    drop(conn);

    mock.script(Op::Reset, [Behave::Permanent]);
    let conn = hold(pool.get().await.unwrap());
    assert_ne!(conn.id, first);
    assert!(
        !conn.dirty,
        "state left by the first holder never reaches the second"
    );
    assert_eq!(pool.stats().closes.get(CloseReason::ResetFailed), 1);
    drop(conn);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn has_broken_on_return_closes_the_connection() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    let mut a = hold(pool.get().await.unwrap());
    let b = hold(pool.get().await.unwrap());
    a.broken = true;
    let (a_id, b_id) = (a.id, b.id);
    drop(a);
    drop(b);

    let status = assert_quiet(&pool, 0).await;
    assert_eq!(status.idle, 1, "only the healthy connection went back");
    assert_eq!(pool.stats().closes.get(CloseReason::Broken), 1);
    let conn = pool.get().await.unwrap();
    assert_eq!(conn.id, b_id);
    assert_ne!(conn.id, a_id);

    // The manager's verdict applies to every return while it says so.
    mock.set_broken(true);
    drop(conn);
    assert_eq!(assert_quiet(&pool, 0).await.size, 0);
    assert_eq!(pool.stats().closes.get(CloseReason::Broken), 2);
}

#[tokio::test(start_paused = true)]
async fn max_uses_closes_a_connection_after_its_last_use() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .max_uses(3)
        .build_lazy()
        .unwrap();

    let mut ids = Vec::new();
    for _ in 0..6 {
        let conn = hold(pool.get().await.unwrap());
        ids.push((conn.id, conn.metrics().uses));
    }
    assert_eq!(
        ids,
        [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)],
        "each connection serves exactly max_uses checkouts"
    );
    assert_eq!(pool.stats().closes.get(CloseReason::MaxUses), 2);
    assert_eq!(assert_quiet(&pool, 0).await.size, 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_dropped_while_its_holder_panics_is_discarded() {
    let mock = Mock::new();
    let pool = pool(&mock, 1);
    let conn = pool.get().await.unwrap();

    // Whatever the holder was doing was cut short: its state is unknown.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _conn = conn;
        panic!("holder failed mid-request");
    }));
    assert!(outcome.is_err());

    assert_eq!(pool.stats().closes.get(CloseReason::Abandoned), 1);
    assert_eq!(assert_quiet(&pool, 0).await.size, 0);
    // The slot was freed: the pool can open a new connection in its place.
    assert_eq!(pool.get().await.unwrap().id, 2);
}

#[tokio::test(start_paused = true)]
async fn take_detaches_the_connection_and_frees_its_slot_for_a_waiter() {
    let mock = Mock::new();
    let pool = pool(&mock, 1);
    let conn = hold(pool.get().await.unwrap());

    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { hold(pool.get().await.unwrap()).id }
    });
    settle().await;
    assert_eq!(pool.status().waiting, 1);

    let detached = conn.take();
    assert_eq!(
        pool.status().in_use,
        0,
        "the pool forgot the taken connection at once"
    );
    let got = waiter.await.unwrap();
    assert_ne!(got, detached.id, "the waiter got a newly opened connection");
    assert_eq!(mock.connects_ok(), 2);

    assert_eq!(assert_quiet(&pool, 1).await.size, 1);
    drop(detached);
    assert_eq!(
        mock.live(),
        1,
        "dropping a taken connection is the caller's business"
    );
    assert_eq!(
        pool.stats().closes.total(),
        0,
        "a taken connection is not a close"
    );
}

/// Returning a connection is synchronous: it works on a thread with no runtime, and hands the
/// connection straight to a caller queued on the runtime.
#[tokio::test]
async fn a_connection_returned_outside_any_runtime_reaches_a_waiter() {
    let mock = Mock::new();
    let pool = pool(&mock, 1);
    let conn = hold(pool.get().await.unwrap());
    let id = conn.id;

    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { hold(pool.get().await.unwrap()).id }
    });
    while pool.status().waiting == 0 {
        tokio::task::yield_now().await;
    }

    std::thread::spawn(move || {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "no runtime on this thread"
        );
        drop(conn);
    })
    .join()
    .expect("returning a connection needs no runtime");

    assert_eq!(
        waiter.await.unwrap(),
        id,
        "the returned connection went to the waiter"
    );
    assert_eq!(mock.connects_attempted(), 1, "no connect was needed");

    // And with nobody waiting it simply becomes idle.
    let conn = pool.get().await.unwrap();
    std::thread::spawn(move || drop(conn)).join().unwrap();
    assert_eq!(assert_quiet(&pool, 0).await.idle, 1);
}

/// Checks out three connections, returns them in order 1, 2, 3, then reports which one the
/// next checkout picks.
async fn picked_after_returning_in_order(order: IdleOrder) -> (Vec<u64>, u64) {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .idle_order(order)
        .build_lazy()
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(hold(pool.get().await.unwrap()));
    }
    let returned: Vec<u64> = held.iter().map(|c| c.id).collect();
    for conn in held {
        drop(conn);
    }
    let picked = pool.get().await.unwrap().id;
    assert_quiet(&pool, 0).await;
    (returned, picked)
}

#[tokio::test(start_paused = true)]
async fn fifo_picks_the_longest_idle_connection_and_lifo_the_last_returned() {
    let (returned, picked) = picked_after_returning_in_order(IdleOrder::Fifo).await;
    assert_eq!(picked, returned[0]);
    let (returned, picked) = picked_after_returning_in_order(IdleOrder::Lifo).await;
    assert_eq!(picked, returned[2]);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_broke_while_idle_is_not_handed_out_even_within_the_skip_window() {
    let mock = Mock::new();
    let pool = pool(&mock, 1);
    let first = pool.get().await.unwrap().id;

    // It breaks while idle (the server closed it), right after its last use, so the checkout
    // check would be skipped.
    mock.set_broken(true);
    let mut get = std::pin::pin!(pool.get());
    assert!(common::poll_once(get.as_mut()).is_pending());
    mock.set_broken(false);
    let conn = get.await.unwrap();

    assert_ne!(conn.id, first, "a new connection, not the broken one");
    assert_eq!(mock.checks(), 0, "caught without a check");
    assert_eq!(pool.stats().closes.get(CloseReason::Broken), 1);
    drop(conn);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn reset_is_skipped_when_the_manager_says_the_connection_is_clean() {
    let mock = Mock::new();
    mock.track_state(true);
    let pool = pool(&mock, 1);

    drop(pool.get().await.unwrap());
    drop(pool.get().await.unwrap());
    assert_eq!(mock.resets(), 0, "left clean: nothing to reset");

    pool.get().await.unwrap().dirty = true;
    let conn = pool.get().await.unwrap();
    assert_eq!(mock.resets(), 1, "left dirty: reset before reuse");
    assert!(!conn.dirty);
    drop(conn);
    assert_quiet(&pool, 0).await;
}

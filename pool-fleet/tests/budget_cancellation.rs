//! A caller or a connect that gives up while waiting for room in the budget loses nothing: its
//! place goes, a permit already granted to it goes on to the next waiter, and the counts stay
//! true.

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{settle, tenants};
use pool_core::Manager;
use pool_fleet::{Budget, PartitionLimits};

#[tokio::test(start_paused = true)]
async fn a_connect_dropped_while_queued_or_once_granted_gives_its_place_back() {
    // No close grace: the permit of a closed connection comes back at once, so the grant to
    // the queued connect can be watched.
    let budget = Budget::new(1).unwrap().close_grace(Duration::ZERO).unwrap();
    let (server, parts, [a, b]) = tenants(budget, ["a", "b"], PartitionLimits::max(1));
    let held = a.get().await.unwrap();
    let mut cx = Context::from_waker(Waker::noop());

    // Queued, then dropped.
    {
        let mut connect = pin!(b.manager().connect());
        assert!(connect.as_mut().poll(&mut cx).is_pending());
        assert_eq!(parts.budget().status().waiting, 1);
    }
    assert_eq!(parts.budget().status().waiting, 0);
    assert_eq!(
        parts.budget().status().recalling,
        0,
        "the recall was withdrawn"
    );

    // Queued, granted (the holder closed its connection), then dropped before it collected.
    {
        let mut connect = pin!(b.manager().connect());
        assert!(connect.as_mut().poll(&mut cx).is_pending());
        drop(held);
        settle().await;
        assert_eq!(
            server.open(),
            0,
            "the recalled connection was closed on return"
        );
        assert_eq!(
            parts.budget().status().held,
            1,
            "granted to the queued connect"
        );
    }
    assert_eq!(
        parts.budget().status().held,
        0,
        "the uncollected permit came back"
    );

    // Nothing was lost: each partition can still open its one connection in turn.
    let conn = b.get_timeout(Duration::from_secs(5)).await.unwrap();
    assert_eq!(conn.tenant, "b");
    drop(conn);
    let conn = a.get_timeout(Duration::from_secs(5)).await.unwrap();
    assert_eq!(conn.tenant, "a");
}

#[tokio::test(start_paused = true)]
async fn callers_dropped_at_every_point_of_their_wait_lose_nothing() {
    let (server, parts, [a, b]) =
        tenants(Budget::new(2).unwrap(), ["a", "b"], PartitionLimits::max(2));
    let mut cx = Context::from_waker(Waker::noop());
    // Each round polls a caller of `b` a few more times than the last, with `a` holding the
    // whole budget, and drops it there; then lets time pass.
    for polls in 0..12 {
        let held = [a.get().await.unwrap(), a.get().await.unwrap()];
        {
            let mut get = pin!(b.get());
            let mut done = false;
            for _ in 0..polls {
                if let Poll::Ready(conn) = get.as_mut().poll(&mut cx) {
                    done = true;
                    drop(conn);
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert!(!done || polls > 0);
        }
        drop(held);
        tokio::time::sleep(Duration::from_millis(polls)).await;
        settle().await;
    }
    // Let every connect started for a dropped caller finish, then check the books.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = parts.budget().status();
    assert_eq!(
        status.held,
        server.open(),
        "every open connection holds one permit"
    );
    assert_eq!(status.waiting, 0);
    assert!(server.most() <= 2);
    let both = [
        a.get_timeout(Duration::from_secs(5)).await.unwrap(),
        b.get_timeout(Duration::from_secs(5)).await.unwrap(),
    ];
    assert_eq!([both[0].tenant, both[1].tenant], ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn a_connect_that_finds_no_room_in_time_fails_with_a_budget_error() {
    let limits = PartitionLimits::max(1)
        .budget_wait(Duration::from_millis(100))
        .acquire_timeout(Duration::from_millis(150));
    let (_server, _parts, [a, b]) = tenants(Budget::new(1).unwrap(), ["a", "b"], limits);
    let _held = a.get().await.unwrap();
    // `a`'s connection is recalled, but never returned: `b` cannot be served.
    let err = b.get().await.unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("the shared budget of 1 connections had none to spare within 100ms"),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_room_of_a_closed_connection_comes_back_after_the_close_grace() {
    let budget = Budget::new(1)
        .unwrap()
        .close_grace(Duration::from_millis(50))
        .unwrap();
    assert!(
        budget.clone().close_grace(Duration::ZERO).is_err(),
        "already shared"
    );
    let (server, parts, [a]) = tenants(budget, ["a"], PartitionLimits::max(1));
    drop(a.get().await.unwrap());
    assert!(a.close_and_wait(Duration::from_secs(1)).await);
    assert_eq!(server.open(), 0);
    assert_eq!(
        parts.budget().status().held,
        1,
        "the session may still be closing"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(parts.budget().status().held, 0);
}

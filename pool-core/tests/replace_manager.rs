//! `Pool::replace_manager`: new connections come from the new manager, connections in use
//! finish first and are closed when they come back, connects under way with the old manager
//! are never pooled, and a failing old manager's backoff does not delay the new one.

mod common;

use std::time::Duration;

use common::{Behave, Mock, Op};
use pool_core::{CloseReason, Pool, Replaceable};
use tokio::time::Instant;

/// Waits (in tokio time) until no connect is in flight, then checks that every connection the
/// old manager made is gone and the pool's counts add up.
async fn assert_only_new(pool: &Pool<Replaceable<Mock>>, old: &Mock, new: &Mock) {
    for _ in 0..1000 {
        if pool.status().connecting == 0 && old.live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = pool.status();
    assert_eq!(status.connecting, 0, "{status:?}");
    assert_eq!(old.live(), 0, "a connection of the old manager is left");
    assert_eq!(new.live(), status.size, "{status:?}");
    assert_eq!(status.size, status.idle + status.in_use, "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn idle_connections_go_now_and_busy_ones_when_they_come_back() {
    let (old, new) = (Mock::new(), Mock::new());
    let pool = Pool::builder(Replaceable::new(old.clone()))
        .max_size(3)
        .build_lazy()
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.get().await.unwrap());
    }
    let mut busy = held.pop().unwrap();
    drop(held);
    assert_eq!(pool.status().idle, 2);

    pool.replace_manager(new.clone());
    assert_eq!(
        pool.status().idle,
        0,
        "idle connections of the old manager closed"
    );
    assert_eq!(old.live(), 1, "the busy one is still open");
    // Its holder finishes with it: it is still the caller's.
    busy.dirty = true;
    drop(busy);
    assert_eq!(old.live(), 0, "closed on return");
    assert_eq!(pool.stats().closes.get(CloseReason::Retired), 3);

    let conn = pool.get().await.unwrap();
    assert_eq!(new.connects_ok(), 1, "made by the new manager");
    assert_eq!(old.connects_ok(), 3);
    drop(conn);
    assert_only_new(&pool, &old, &new).await;
}

#[tokio::test(start_paused = true)]
async fn a_connect_under_way_with_the_old_manager_is_not_kept() {
    let (old, new) = (Mock::new(), Mock::new());
    let pool = Pool::builder(Replaceable::new(old.clone()))
        .max_size(1)
        .acquire_timeout(Duration::from_secs(30))
        .build_lazy()
        .unwrap();
    old.set(Op::Connect, Behave::Slow(Duration::from_secs(2)));
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move {
            let conn = pool.get().await.unwrap();
            conn.id
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(old.connects_attempted(), 1, "the old manager is connecting");

    pool.replace_manager(new.clone());
    let id = waiter.await.unwrap();
    assert_eq!(old.connects_ok(), 1, "the old connect finished...");
    assert_eq!(
        pool.stats().closes.get(CloseReason::Retired),
        1,
        "...and was closed, not handed out"
    );
    assert_eq!(new.connects_ok(), 1);
    assert_eq!(id, 1, "the first connection of the new manager");
    assert_only_new(&pool, &old, &new).await;
}

#[tokio::test(start_paused = true)]
async fn the_new_manager_is_tried_at_once_after_the_old_one_failed() {
    let (old, new) = (Mock::new(), Mock::new());
    let pool = Pool::builder(Replaceable::new(old.clone()))
        .max_size(1)
        .connect_backoff(Duration::from_secs(20))
        .connect_backoff_max(Duration::from_secs(20))
        .acquire_timeout(Duration::from_secs(60))
        .build_lazy()
        .unwrap();
    // A wrong password, say: every connect of the old manager fails.
    old.set(Op::Connect, Behave::Transient);
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(old.connects_attempted(), 1, "backing off for 10-20 s");

    let replaced = Instant::now();
    pool.replace_manager(new.clone());
    waiter.await.unwrap().expect("served by the new manager");
    assert_eq!(replaced.elapsed(), Duration::ZERO, "no backoff left over");
    assert_eq!(new.connects_ok(), 1);
    assert_only_new(&pool, &old, &new).await;
}

#[tokio::test(start_paused = true)]
async fn checks_and_resets_use_the_manager_in_force() {
    let (old, new) = (Mock::new(), Mock::new());
    let pool = Pool::builder(Replaceable::new(old.clone()))
        .max_size(1)
        .skip_check_within(Duration::ZERO)
        .build_lazy()
        .unwrap();
    drop(pool.get().await.unwrap());
    pool.replace_manager(new.clone());
    let before = (old.checks(), old.resets());
    for _ in 0..3 {
        drop(pool.get().await.unwrap());
    }
    assert_eq!(
        (old.checks(), old.resets()),
        before,
        "the old manager is not asked"
    );
    assert!(new.checks() >= 2, "checked by the new manager");
    assert!(new.resets() >= 2, "reset by the new manager");
    assert!(
        std::sync::Arc::ptr_eq(&pool.manager().current(), &pool.manager().current()),
        "one manager in force"
    );
    assert_only_new(&pool, &old, &new).await;
}

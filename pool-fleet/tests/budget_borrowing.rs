//! An idle partition's share is lent, and taken back when it needs it: from idle connections
//! at once, from busy ones as they are returned.

mod common;

use std::time::Duration;

use common::{settle, tenants, Server, Tenant};
use pool_fleet::{Budget, PartitionLimits, Partitions};

#[tokio::test(start_paused = true)]
async fn an_idle_partitions_share_is_lent_and_taken_back_from_idle_connections() {
    let (server, _parts, [a, b]) =
        tenants(Budget::new(4).unwrap(), ["a", "b"], PartitionLimits::max(4));

    // `a` alone borrows the whole budget, `b`'s share too.
    let held: Vec<_> = futures_all(&a, 4).await;
    assert_eq!(server.open(), 4);
    drop(held);
    settle().await;
    assert_eq!(a.status().idle, 4, "returned connections stay open");

    // `b` needs one: one of `a`'s idle connections is closed for it.
    let conn = tokio::time::timeout(Duration::from_secs(5), b.get())
        .await
        .expect("b is served")
        .unwrap();
    assert_eq!(conn.tenant, "b");
    assert_eq!(server.open(), 4);
    assert_eq!(a.status().size, 3);
    assert!(server.most() <= 4);
}

#[tokio::test(start_paused = true)]
async fn a_busy_borrower_gives_back_the_share_as_its_connections_come_back() {
    let (server, parts, [a, b]) =
        tenants(Budget::new(4).unwrap(), ["a", "b"], PartitionLimits::max(4));
    let mut held = futures_all(&a, 4).await;

    // Two of `b`'s callers wait: nothing is idle, so two of `a`'s connections are recalled.
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.get().await })
        })
        .collect();
    settle().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(waiting.iter().all(|w| !w.is_finished()));
    assert_eq!(parts.budget().status().recalling, 2);

    // Returned, they are closed instead of reused, and their room goes to `b`.
    held.truncate(2);
    let mut held_b = Vec::new();
    for w in waiting {
        let conn = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .expect("b is served")
            .unwrap()
            .unwrap();
        assert_eq!(conn.tenant, "b");
        held_b.push(conn);
    }
    assert_eq!(a.status().size, 2);
    assert_eq!(parts.budget().status().recalling, 0);
    assert!(server.most() <= 4);

    // `a` wants a third while `b` uses its two: at its share, `a` takes nothing from `b`.
    let more = a.get_timeout(Duration::from_millis(100)).await;
    assert!(more.is_err(), "a is at its share and b uses the rest");
    assert_eq!(b.status().size, 2);

    // Once `b` is done with them, its idle connections make room for `a`.
    drop(held_b);
    let third = tokio::time::timeout(Duration::from_secs(5), a.get())
        .await
        .expect("a is served from b's idle room")
        .unwrap();
    assert_eq!(third.tenant, "a");
    assert!(server.most() <= 4);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_flooding_partition_gets_no_more_than_its_limit() {
    let server = Server::new();
    let parts = Partitions::new(Budget::new(10).unwrap());
    let noisy = parts
        .add(
            "noisy",
            Tenant::new("noisy", &server),
            PartitionLimits::max(3),
        )
        .unwrap();
    let quiet = parts
        .add(
            "quiet",
            Tenant::new("quiet", &server),
            PartitionLimits::max(3),
        )
        .unwrap();
    let flood: Vec<_> = (0..50)
        .map(|_| {
            let noisy = noisy.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let _conn = noisy.get().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            })
        })
        .collect();
    let mut most = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        most = most.max(noisy.status().size);
        let conn = quiet.get_timeout(Duration::from_secs(1)).await.unwrap();
        assert_eq!(conn.tenant, "quiet");
    }
    for f in flood {
        f.await.unwrap();
    }
    assert!(most <= 3, "the noisy partition held {most} connections");
    assert!(server.most() <= 6);
}

#[tokio::test(start_paused = true)]
async fn guarantees_beyond_the_budget_are_refused() {
    let server = Server::new();
    let parts = Partitions::new(Budget::new(4).unwrap());
    parts
        .add(
            "a",
            Tenant::new("a", &server),
            PartitionLimits::max(4).min_connections(3),
        )
        .unwrap();
    let err = parts
        .add(
            "b",
            Tenant::new("b", &server),
            PartitionLimits::max(4).min_connections(2),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `min_connections`: 2 more would reserve 5 of a budget of 4 connections"
    );
    let err = parts
        .add("c", Tenant::new("c", &server), PartitionLimits::max(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `max_connections`: must be greater than zero"
    );
    assert!(parts
        .add("a", Tenant::new("a", &server), PartitionLimits::max(1))
        .is_err());
    assert!(Budget::new(0).is_err());
}

#[tokio::test(start_paused = true)]
async fn a_guaranteed_minimum_is_taken_back_from_a_partition_within_its_share() {
    let (server, parts, [a]) = tenants(Budget::new(4).unwrap(), ["a"], PartitionLimits::max(4));
    let b = parts
        .add(
            "b",
            Tenant::new("b", &server),
            PartitionLimits::max(4).min_connections(3),
        )
        .unwrap();
    let held_a = futures_all(&a, 4).await;
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.get().await.map(|c| c.tenant) })
        })
        .collect();
    settle().await;
    drop(held_a);
    for w in waiting {
        assert_eq!(w.await.unwrap().unwrap(), "b");
    }
    assert_eq!(b.status().size, 3);
    assert_eq!(a.status().size, 1);
}

/// `n` connections of `pool`, all checked out at once.
async fn futures_all<M: pool_core::Manager>(
    pool: &pool_core::Pool<M>,
    n: usize,
) -> Vec<pool_core::PooledConnection<M>> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.get().await.unwrap());
    }
    held
}

#[tokio::test(start_paused = true)]
async fn a_recalled_connection_that_goes_idle_unseen_is_still_given_back() {
    let (_server, _parts, [a, b]) =
        tenants(Budget::new(2).unwrap(), ["a", "b"], PartitionLimits::max(2));
    let _busy = a.get().await.unwrap();
    // A second caller of `a` leaves while its connect runs: the connection, once open, goes
    // idle without passing any point where the budget looks.
    let gave_up = a.get_timeout(Duration::from_millis(1)).await;
    assert!(gave_up.is_err());
    // `b` arrives before that connection is open: the recall finds nothing idle yet.
    let conn = tokio::time::timeout(Duration::from_secs(5), b.get())
        .await
        .expect("b is served once a's new connection is idle")
        .unwrap();
    assert_eq!(conn.tenant, "b");
    assert_eq!(a.status().size, 1);
}

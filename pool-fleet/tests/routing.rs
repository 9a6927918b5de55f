//! The router: by key, by each strategy, with a preferred partition, fallbacks and sticky
//! sessions.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Server, Tenant};
use pool_fleet::{
    AcquireError, Budget, Fallback, PartitionLimits, Partitions, Route, Router, StickySession,
    Strategy,
};

fn partitions(server: &Arc<Server>) -> Partitions<&'static str, Tenant> {
    let parts = Partitions::new(Budget::new(9).unwrap());
    for name in ["a", "b", "c"] {
        let limits = PartitionLimits::max(2).acquire_timeout(Duration::from_millis(300));
        parts.add(name, Tenant::new(name, server), limits).unwrap();
    }
    parts
}

#[tokio::test(start_paused = true)]
async fn by_key_reaches_that_partition_only() {
    let server = Server::new();
    let router = Router::new(partitions(&server), Strategy::RoundRobin);
    for key in ["c", "a", "b"] {
        let (served, conn) = router.get(Route::key(key)).await.unwrap();
        assert_eq!((served, conn.tenant), (key, key));
    }
    let err = router.get(Route::key("z")).await.unwrap_err();
    assert!(matches!(err, AcquireError::UnknownPartition));
    // Saturated, it makes the caller wait out its timeout rather than send it elsewhere.
    let _held = [
        router.get(Route::key("a")).await.unwrap(),
        router.get(Route::key("a")).await.unwrap(),
    ];
    let err = router.get(Route::key("a")).await.unwrap_err();
    assert!(
        matches!(err, AcquireError::Pool(pool_core::Error::Timeout(_))),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn round_robin_takes_each_partition_in_turn() {
    let server = Server::new();
    let router = Router::new(partitions(&server), Strategy::RoundRobin);
    let mut order = Vec::new();
    for _ in 0..6 {
        order.push(router.get(Route::any()).await.unwrap().0);
    }
    assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn least_connections_avoids_the_busy_partitions() {
    let server = Server::new();
    let router = Router::new(partitions(&server), Strategy::LeastConnections);
    let busy_a = [
        router.get(Route::key("a")).await.unwrap(),
        router.get(Route::key("a")).await.unwrap(),
    ];
    let busy_b = router.get(Route::key("b")).await.unwrap();
    assert_eq!(router.get(Route::any()).await.unwrap().0, "c");
    drop(busy_a);
    assert_eq!(router.get(Route::any()).await.unwrap().0, "a");
    drop(busy_b);
}

#[tokio::test(start_paused = true)]
async fn random_and_custom_pick_among_the_partitions() {
    let server = Server::new();
    let random = Router::new(partitions(&server), Strategy::Random);
    let mut seen = BTreeSet::new();
    for _ in 0..100 {
        seen.insert(random.get(Route::any()).await.unwrap().0);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);

    let last = Strategy::Custom(Arc::new(|candidates: &[pool_fleet::Candidate<&str>]| {
        Some(candidates.len() - 1)
    }));
    let custom = Router::new(partitions(&server), last);
    assert_eq!(custom.get(Route::any()).await.unwrap().0, "c");
    assert_eq!(custom.pick(&["c"]), Some("b"));
    let none = Router::new(
        partitions(&server),
        Strategy::Custom(Arc::new(|_: &[_]| None)),
    );
    assert!(matches!(
        none.get(Route::any()).await,
        Err(AcquireError::NoRoute)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_saturated_preferred_partition_falls_back() {
    let server = Server::new();
    let router = Router::new(partitions(&server), Strategy::RoundRobin)
        .preferred_wait(Duration::from_millis(20));
    let _held = [
        router.get(Route::key("b")).await.unwrap(),
        router.get(Route::key("b")).await.unwrap(),
    ];
    let (key, _) = router.get(Route::prefer("b", Fallback::Any)).await.unwrap();
    assert_ne!(key, "b");
    let (key, _) = router
        .get(Route::prefer("b", Fallback::To(vec!["c", "a"])))
        .await
        .unwrap();
    assert_eq!(key, "c");
    let (key, _) = router.get(Route::prefer("a", Fallback::Any)).await.unwrap();
    assert_eq!(key, "a", "a free preferred partition is used");
    let err = router
        .get(Route::prefer("b", Fallback::To(vec!["b"])))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AcquireError::Pool(pool_core::Error::Timeout(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_sticky_session_stays_until_its_partition_goes() {
    let server = Server::new();
    let parts = partitions(&server);
    let router = Router::new(parts.clone(), Strategy::RoundRobin);
    let session = StickySession::new();
    let (first, _) = router.get(Route::any().sticky(&session)).await.unwrap();
    for _ in 0..5 {
        let (again, _) = router.get(Route::any().sticky(&session)).await.unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(session.pinned(), Some(first));
    // Its partition removed, the session moves and sticks to the new one.
    assert!(parts.remove(&first));
    let (moved, _) = router.get(Route::any().sticky(&session)).await.unwrap();
    assert_ne!(moved, first);
    assert_eq!(session.pinned(), Some(moved));
    session.unpin();
    assert_eq!(session.pinned(), None);
}

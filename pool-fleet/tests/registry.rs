//! The registry makes each pool once, however many callers ask at once, and a caller that
//! gives up or a load that fails does not leave the name stuck.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Server, Tenant};
use pool_core::Pool;
use pool_fleet::{PoolRegistry, PoolState, RegistryError};

#[tokio::test(start_paused = true)]
async fn callers_asking_for_a_new_name_at_once_share_one_load() {
    let loads = Arc::new(AtomicUsize::new(0));
    let server = Server::new();
    let registry = {
        let (loads, server) = (Arc::clone(&loads), Arc::clone(&server));
        PoolRegistry::new(move |_name: String| {
            let (loads, server) = (Arc::clone(&loads), Arc::clone(&server));
            async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Pool::builder(Tenant::new("orders", &server)).build_lazy()
            }
        })
    };
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.get("orders").await.unwrap() })
        })
        .collect();
    let mut pools = Vec::new();
    for caller in callers {
        pools.push(caller.await.unwrap());
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // One pool: a connection returned through one handle is idle in all.
    drop(pools[0].get().await.unwrap());
    assert!(pools.iter().all(|p| p.status().idle == 1));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_or_failed_load_does_not_wedge_the_name() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let server = Server::new();
    let registry = {
        let (attempts, server) = (Arc::clone(&attempts), Arc::clone(&server));
        PoolRegistry::new(move |_name: String| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst);
            let server = Arc::clone(&server);
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if attempt == 1 {
                    return Err(std::io::Error::other("the configuration store is down"));
                }
                Ok(Pool::builder(Tenant::new("billing", &server))
                    .build_lazy()
                    .unwrap())
            }
        })
    };
    // The first caller gives up halfway through the load.
    let gave_up = tokio::time::timeout(Duration::from_millis(10), registry.get("billing")).await;
    assert!(gave_up.is_err());
    assert_eq!(
        registry.list(),
        [("billing".to_owned(), PoolState::Loading)]
    );
    // The second load fails, and says so.
    let err = registry.get("billing").await.unwrap_err();
    assert!(matches!(err, RegistryError::Load { .. }));
    assert_eq!(err.to_string(), "could not make the pool \"billing\"");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(cause, "the configuration store is down");
    assert!(matches!(
        &registry.list()[0].1,
        PoolState::Failed { error } if error == "could not make the pool \"billing\": the configuration store is down"
    ));
    // The third succeeds.
    let pool = registry.get("billing").await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert!(matches!(registry.list()[0].1, PoolState::Open(_)));
    assert_eq!(registry.report()[0].name, "billing");
    registry.close_all();
    assert!(pool.is_closed());
    assert!(matches!(
        registry.get("billing").await,
        Err(RegistryError::Closed)
    ));
    assert_eq!(registry.list()[0].1, PoolState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_configured_registry_refuses_names_it_does_not_know() {
    let server = Server::new();
    let registry = PoolRegistry::from_configs([("small", 2usize), ("large", 20)], move |size| {
        Pool::builder(Tenant::new("any", &server))
            .max_size(*size)
            .build_lazy()
    });
    assert_eq!(registry.get("large").await.unwrap().status().max_size, 20);
    let err = registry.get("medium").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no pool is configured under the name \"medium\""
    );
    assert_eq!(registry.names(), ["large"]);
}

#[tokio::test(start_paused = true)]
async fn an_environment_registry_reads_the_prefix_of_each_name_on_first_use() {
    let server = Server::new();
    let registry = PoolRegistry::from_env(
        [("orders", "POOL_FLEET_TEST_ORDERS")],
        move |prefix| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            let size: usize = std::env::var(format!("{prefix}_MAX_SIZE"))?.parse()?;
            Ok(Pool::builder(Tenant::new("orders", &server))
                .max_size(size)
                .build_lazy()?)
        },
    );
    // Read at first use, not when the registry was made.
    std::env::set_var("POOL_FLEET_TEST_ORDERS_MAX_SIZE", "3");
    assert_eq!(registry.get("orders").await.unwrap().status().max_size, 3);
    assert!(matches!(
        registry.get("billing").await,
        Err(RegistryError::Unknown { .. })
    ));
}

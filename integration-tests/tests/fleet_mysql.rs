//! Partitions sharing one budget, and a registry of pools, against a real MySQL or MariaDB:
//! the server's own view (`information_schema.processlist`) is what is counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration_tests::faults::Tenant;
use integration_tests::invariants::eventually;
use integration_tests::peak::{join_within, Peak};
use integration_tests::{server, Kind};
use pool_drivers::mysql::mysql_async::prelude::Queryable;
use pool_drivers::mysql::mysql_async::Conn;
use pool_drivers::mysql::{Config, Manager};
use pool_drivers::DriverConfig;
use pool_fleet::{Budget, PartitionLimits, Partitions, PoolRegistry};

/// The server's count of sessions of `users`.
async fn sessions(admin: &mut Conn, users: &[String]) -> i64 {
    admin
        .exec_first(
            "SELECT count(*) FROM information_schema.processlist WHERE FIND_IN_SET(user, ?)",
            (users.join(","),),
        )
        .await
        .unwrap()
        .unwrap()
}

const TENANTS: usize = 6;
const BUDGET: usize = 3;
const TASKS: usize = 4;
const ROUNDS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_each_their_own_user_share_a_budget_of_three_sessions() {
    let Some(server) = server(Kind::Mysql).await else {
        return;
    };
    // Each tenant a user of its own, removed when the test ends.
    let mut tenants = Vec::new();
    for _ in 0..TENANTS {
        tenants.push(Tenant::create(Kind::Mysql, &server, "fleet").await);
    }
    let names: Vec<String> = tenants.iter().map(|t| t.name().to_owned()).collect();
    let partitions = Partitions::new(Budget::new(BUDGET).unwrap());
    for tenant in &tenants {
        let config = Config::from_url(&tenant.url(tenant.server_addr())).unwrap();
        let limits = PartitionLimits::max(2);
        partitions
            .add(tenant.name().to_owned(), config.manager().unwrap(), limits)
            .unwrap();
    }
    let peak = {
        let admin = Arc::new(tokio::sync::Mutex::new(
            Conn::from_url(server.url()).await.unwrap(),
        ));
        let names = names.clone();
        Peak::start(move || {
            let (admin, names) = (Arc::clone(&admin), names.clone());
            async move { [sessions(&mut *admin.lock().await, &names).await] }
        })
    };
    let served = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for user in &names {
        for _ in 0..TASKS {
            let (partitions, user, served) =
                (partitions.clone(), user.clone(), Arc::clone(&served));
            tasks.push(tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let mut conn = partitions.get(&user).await.unwrap();
                    let me: Option<String> = conn
                        .query_first("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
                        .await
                        .unwrap();
                    assert_eq!(
                        me.as_deref(),
                        Some(user.as_str()),
                        "a session of another tenant"
                    );
                    served.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
    }
    join_within("every tenant's callers", Duration::from_secs(180), tasks).await;
    let ([most], samples) = peak.stop().await;
    eprintln!("fleet (mysql): {samples} samples; at most {most} sessions");
    assert!(samples > 5);
    assert!(
        (1..=BUDGET as i64).contains(&most),
        "the server saw {most} sessions"
    );
    assert_eq!(served.load(Ordering::SeqCst), TENANTS * TASKS * ROUNDS);
    for key in partitions.keys() {
        assert!(
            partitions
                .pool(&key)
                .unwrap()
                .close_and_wait(Duration::from_secs(10))
                .await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_of_mysql_pools_makes_each_once_and_closes_every_session() {
    let Some(server) = server(Kind::Mysql).await else {
        return;
    };
    let tenants = [
        Tenant::create(Kind::Mysql, &server, "fleet").await,
        Tenant::create(Kind::Mysql, &server, "fleet").await,
    ];
    let names: Vec<String> = tenants.iter().map(|t| t.name().to_owned()).collect();
    let urls: std::collections::HashMap<String, String> = tenants
        .iter()
        .map(|t| (t.name().to_owned(), t.url(t.server_addr())))
        .collect();
    let loads = Arc::new(AtomicUsize::new(0));
    let registry = {
        let loads = Arc::clone(&loads);
        PoolRegistry::<Manager>::new(move |name: String| {
            loads.fetch_add(1, Ordering::SeqCst);
            let url = urls[&name].clone();
            async move {
                let mut config = Config::from_url(&url)?;
                config.pool.max_size = 3;
                config.build_pool_lazy()
            }
        })
    };
    let callers: Vec<_> = (0..12)
        .map(|i| {
            let (registry, name) = (registry.clone(), names[i % 2].clone());
            tokio::spawn(async move {
                let mut conn = registry.get(&name).await.unwrap().get().await.unwrap();
                let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
                assert_eq!(one, Some(1));
            })
        })
        .collect();
    join_within("the first users", Duration::from_secs(60), callers).await;
    assert_eq!(loads.load(Ordering::SeqCst), 2, "one load per name");
    let admin = tokio::sync::Mutex::new(Conn::from_url(server.url()).await.unwrap());
    assert!(sessions(&mut *admin.lock().await, &names).await > 0);
    assert!(registry.close_all_and_wait(Duration::from_secs(10)).await);
    // The server drops a closed session a moment after the client does.
    eventually(
        "no session left after close_all",
        Duration::from_secs(5),
        || async {
            match sessions(&mut *admin.lock().await, &names).await {
                0 => Ok(()),
                left => Err(format!("{left} sessions left on the server")),
            }
        },
    )
    .await;
    admin.into_inner().disconnect().await.unwrap();
}

//! Partitions sharing one budget, and a registry of pools, against a real PostgreSQL: the
//! server's own view (`pg_stat_activity`) is what is counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration_tests::faults::Tenant;
use integration_tests::invariants::eventually;
use integration_tests::peak::{join_within, Peak};
use integration_tests::{server, unique_name, Kind};
use pool_drivers::postgres::{Config, Manager, Pool};
use pool_drivers::DriverConfig;
use pool_fleet::{Budget, PartitionLimits, Partitions, PoolRegistry};

/// A small pool of the server's own user, outside every budget, to look at the server with.
fn admin(url: &str) -> Pool {
    let mut config = Config::from_url(url).unwrap();
    config.pool.max_size = 1;
    config.build_pool_lazy().unwrap()
}

/// The server's count of sessions of `users`, and of those of `user`.
async fn sessions(admin: &Pool, users: &[String], user: &str) -> [i64; 2] {
    let row = admin
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE usename = $2) \
             FROM pg_stat_activity WHERE usename = ANY($1)",
            &[&users, &user],
        )
        .await
        .unwrap();
    [row.get(0), row.get(1)]
}

const TENANTS: usize = 20;
const BUDGET: usize = 10;
const TASKS: usize = 8;
const FLOOD_TASKS: usize = 40;
const ROUNDS: usize = 4;
const LIMIT: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_tenants_share_a_budget_of_ten_sessions() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let url = server.url();
    // Each tenant a role of its own, removed when the test ends.
    let mut tenants = Vec::new();
    for _ in 0..TENANTS {
        tenants.push(Tenant::create(Kind::Postgres, &server, "fleet").await);
    }
    let names: Vec<String> = tenants.iter().map(|t| t.name().to_owned()).collect();
    let partitions = Partitions::new(Budget::new(BUDGET).unwrap());
    for tenant in &tenants {
        // Every tenant's sessions carry a statement timeout, set as they open.
        let url = format!(
            "{}&options=-c%20statement_timeout%3D5s",
            tenant.url(tenant.server_addr())
        );
        let config = Config::from_url(&url).unwrap();
        let limits = PartitionLimits::max(LIMIT);
        partitions
            .add(tenant.name().to_owned(), config.manager().unwrap(), limits)
            .unwrap();
    }
    // The first tenant floods: five times the callers of the others.
    let flood = names[0].clone();

    // Counts what the server sees while the load runs.
    let peak = {
        let (admin, names, flood) = (admin(url), names.clone(), flood.clone());
        Peak::start(move || {
            let (admin, names, flood) = (admin.clone(), names.clone(), flood.clone());
            async move { sessions(&admin, &names, &flood).await }
        })
    };

    let served: Arc<Vec<AtomicUsize>> =
        Arc::new((0..TENANTS).map(|_| AtomicUsize::new(0)).collect());
    let mut tasks = Vec::new();
    for (i, role) in names.iter().enumerate() {
        let callers = if i == 0 { FLOOD_TASKS } else { TASKS };
        for _ in 0..callers {
            let (partitions, role, served) =
                (partitions.clone(), role.clone(), Arc::clone(&served));
            tasks.push(tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let conn = partitions.get(&role).await.unwrap();
                    let row = conn
                        .query_one(
                            "SELECT current_user::text, current_setting('statement_timeout') \
                             FROM pg_sleep(0.002)",
                            &[],
                        )
                        .await
                        .unwrap();
                    let (user, timeout): (String, String) = (row.get(0), row.get(1));
                    assert_eq!(user, role, "a session of another tenant");
                    assert_eq!(timeout, "5s");
                    served[i].fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
    }
    join_within("every tenant's callers", Duration::from_secs(180), tasks).await;
    let ([most_all, most_flood], samples) = peak.stop().await;
    eprintln!(
        "fleet: {samples} samples; at most {most_all} sessions in all, {most_flood} of the flooding tenant"
    );
    assert!(samples > 10, "the server was sampled while the load ran");
    assert!(
        most_all <= BUDGET as i64,
        "the server saw {most_all} sessions"
    );
    assert!(most_all > 0);
    assert!(
        most_flood <= LIMIT as i64,
        "the flooding tenant had {most_flood} sessions"
    );
    for (i, count) in served.iter().enumerate() {
        let callers = if i == 0 { FLOOD_TASKS } else { TASKS };
        assert_eq!(count.load(Ordering::SeqCst), callers * ROUNDS, "tenant {i}");
    }
    for key in partitions.keys() {
        assert!(
            partitions
                .pool(&key)
                .unwrap()
                .close_and_wait(Duration::from_secs(10))
                .await
        );
    }
    // The room of the closed sessions comes back once the budget's close grace is over.
    eventually("the budget emptied", Duration::from_secs(5), || async {
        match partitions.budget().status().held {
            0 => Ok(()),
            held => Err(format!("{held} held")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_makes_one_pool_for_concurrent_first_use_and_closes_every_session() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let url = server.url().to_owned();
    let app = unique_name("fleet_registry");
    let loads = Arc::new(AtomicUsize::new(0));
    let registry = {
        let (url, app, loads) = (url.clone(), app.clone(), Arc::clone(&loads));
        PoolRegistry::<Manager>::new(move |name: String| {
            let (url, app) = (url.clone(), app.clone());
            loads.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut config = Config::from_url(&url)?;
                config.postgres.application_name(format!("{app}_{name}"));
                config.pool.max_size = 4;
                config.build_pool_lazy()
            }
        })
    };
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let registry = registry.clone();
            let name = if i % 2 == 0 { "orders" } else { "billing" };
            tokio::spawn(async move {
                let pool = registry.get(name).await.unwrap();
                let conn = pool.get().await.unwrap();
                conn.query_one("SELECT 1", &[]).await.unwrap();
            })
        })
        .collect();
    join_within("the first users", Duration::from_secs(60), callers).await;
    assert_eq!(loads.load(Ordering::SeqCst), 2, "one load per name");
    let admin = admin(&url);
    let open = |admin: Pool, app: String| async move {
        let pattern = format!("{app}\\_%");
        admin
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1",
                &[&pattern],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert!(open(admin.clone(), app.clone()).await > 0);
    assert_eq!(registry.report().len(), 2);

    assert!(registry.close_all_and_wait(Duration::from_secs(10)).await);
    // The server drops a closed session a moment after the client does.
    eventually(
        "no session left after close_all",
        Duration::from_secs(5),
        || async {
            match open(admin.clone(), app.clone()).await {
                0 => Ok(()),
                left => Err(format!("{left} sessions left on the server")),
            }
        },
    )
    .await;
}

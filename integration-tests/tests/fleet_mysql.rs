//! Partitions sharing one budget, and a registry of pools, against a real MySQL or MariaDB:
//! the server's own view (`information_schema.processlist`) is what is counted.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::{server, unique_name, Kind};
use pool_drivers::mysql::mysql_async::prelude::Queryable;
use pool_drivers::mysql::mysql_async::Conn;
use pool_drivers::mysql::{Config, Manager};
use pool_fleet::{Budget, PartitionLimits, Partitions, PoolRegistry};

/// Users made for one test, dropped (their sessions killed first) when this is dropped, even
/// when the test fails.
struct Users {
    url: String,
    names: Vec<String>,
}

impl Users {
    async fn create(url: &str, n: usize) -> Users {
        let mut admin = Conn::from_url(url).await.unwrap();
        let mut users = Users {
            url: url.to_owned(),
            names: Vec::new(),
        };
        for _ in 0..n {
            let name = unique_name("fleet_user");
            admin
                .query_drop(format!(
                    "CREATE USER '{name}'@'%'; GRANT SELECT ON test.* TO '{name}'@'%'"
                ))
                .await
                .unwrap();
            users.names.push(name);
        }
        admin.disconnect().await.unwrap();
        users
    }

    /// The server's URL, logged in as `user`.
    ///
    /// `prefer_socket=false`: otherwise the driver, connected over TCP to this machine, opens
    /// a second session through the server's Unix socket and only then closes the first, so
    /// each connect would briefly hold two sessions.
    fn url_of(&self, user: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host = host_part.split(['/', '?']).next().unwrap_or(host_part);
        format!("{scheme}://{user}@{host}/test?prefer_socket=false")
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        let (url, names) = (self.url.clone(), std::mem::take(&mut self.names));
        // A runtime of its own on a thread of its own: this may run while the test's runtime
        // unwinds.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut admin = Conn::from_url(url).await.unwrap();
                for name in names {
                    let ids: Vec<u64> = admin
                        .exec(
                            "SELECT id FROM information_schema.processlist WHERE user = ?",
                            (&name,),
                        )
                        .await
                        .unwrap();
                    for id in ids {
                        let _ = admin.query_drop(format!("KILL {id}")).await;
                    }
                    admin
                        .query_drop(format!("DROP USER IF EXISTS '{name}'@'%'"))
                        .await
                        .unwrap();
                }
                let _ = admin.disconnect().await;
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("could not drop the test's users");
        }
    }
}

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
    let users = Users::create(server.url(), TENANTS).await;
    let partitions = Partitions::new(Budget::new(BUDGET).unwrap());
    for user in &users.names {
        let config = Config::from_url(&users.url_of(user)).unwrap();
        partitions
            .add(
                user.clone(),
                config.manager().unwrap(),
                PartitionLimits::max(2),
            )
            .unwrap();
    }
    let most = Arc::new(Mutex::new((0i64, 0usize)));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (url, names) = (server.url().to_owned(), users.names.clone());
        let (most, stop) = (Arc::clone(&most), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut admin = Conn::from_url(url).await.unwrap();
            while !stop.load(Ordering::SeqCst) {
                let now = sessions(&mut admin, &names).await;
                {
                    let mut most = most.lock().unwrap();
                    most.0 = most.0.max(now);
                    most.1 += 1;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            admin.disconnect().await.unwrap();
        })
    };
    let served = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for user in &users.names {
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
    let load = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(180), load)
        .await
        .expect("every tenant's callers finished");
    stop.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    let (most, samples) = *most.lock().unwrap();
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
    let users = Arc::new(Users::create(server.url(), 2).await);
    let loads = Arc::new(AtomicUsize::new(0));
    let registry = {
        let (users, loads) = (Arc::clone(&users), Arc::clone(&loads));
        PoolRegistry::<Manager>::new(move |name: String| {
            loads.fetch_add(1, Ordering::SeqCst);
            let url = users.url_of(&name);
            async move {
                let mut config = Config::from_url(&url)?;
                config.pool.max_size = 3;
                config.create_pool()
            }
        })
    };
    let callers: Vec<_> = (0..12)
        .map(|i| {
            let (registry, name) = (registry.clone(), users.names[i % 2].clone());
            tokio::spawn(async move {
                let mut conn = registry.get(&name).await.unwrap().get().await.unwrap();
                let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
                assert_eq!(one, Some(1));
            })
        })
        .collect();
    for caller in callers {
        tokio::time::timeout(Duration::from_secs(60), caller)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(loads.load(Ordering::SeqCst), 2, "one load per name");
    let mut admin = Conn::from_url(server.url()).await.unwrap();
    assert!(sessions(&mut admin, &users.names).await > 0);
    assert!(registry.close_all_and_wait(Duration::from_secs(10)).await);
    let mut left = i64::MAX;
    for _ in 0..100 {
        left = sessions(&mut admin, &users.names).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "sessions left on the server after close_all");
    admin.disconnect().await.unwrap();
}

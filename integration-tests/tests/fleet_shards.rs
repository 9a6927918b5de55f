//! A shard router over three real PostgreSQL databases, made for the test and dropped after:
//! keys land where the hash says and stay there, and rows written through the router are
//! found again through it.

use std::time::Duration;

use integration_tests::faults::blocking;
use integration_tests::{server, unique_name, Kind};
use pool_drivers::postgres::{Config, Pool};
use pool_drivers::DriverConfig;
use pool_fleet::ShardRouter;

const SHARDS: usize = 3;
const KEYS: i64 = 10_000;

/// Databases made for one test, dropped (their sessions ended) when this is dropped, even
/// when the test fails.
struct Databases {
    url: String,
    names: Vec<String>,
}

impl Databases {
    async fn create(url: &str, n: usize) -> Databases {
        let admin = admin(url);
        let conn = admin.get().await.unwrap();
        let mut databases = Databases {
            url: url.to_owned(),
            names: Vec::new(),
        };
        for _ in 0..n {
            let name = unique_name("fleet_shard");
            conn.batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            databases.names.push(name);
        }
        databases
    }

    /// The server's URL with each database in turn.
    fn urls(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|db| with_database(&self.url, db))
            .collect()
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        let (url, names) = (self.url.clone(), std::mem::take(&mut self.names));
        blocking(async move {
            let admin = admin(&url);
            let conn = admin.get().await.unwrap();
            for name in names {
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .unwrap();
            }
        });
    }
}

fn admin(url: &str) -> Pool {
    let mut config = Config::from_url(url).unwrap();
    config.pool.max_size = 1;
    config.build_pool_lazy().unwrap()
}

/// `url` naming database `db` instead of its own.
fn with_database(url: &str, db: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let path = url[authority..]
        .find('/')
        .map_or(url.len(), |i| authority + i);
    let query = url[path..].find('?').map_or("", |i| &url[path + i..]);
    format!("{}/{db}{query}", &url[..path])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keys_land_where_the_hash_says_and_are_found_again() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let databases = Databases::create(server.url(), SHARDS).await;
    let urls = databases.urls();
    let router =
        ShardRouter::hashed_from_urls(&urls, |url| Config::from_url(url)?.build_pool_lazy())
            .unwrap();
    let run = async {
        for (index, shard) in router.shards().iter().enumerate() {
            shard
                .get()
                .await
                .unwrap()
                .batch_execute(&format!(
                    "CREATE TABLE items (key BIGINT PRIMARY KEY, shard INT NOT NULL DEFAULT {index})"
                ))
                .await
                .unwrap();
        }
        // Written through the router, one batch per shard.
        let mut by_shard: Vec<Vec<i64>> = vec![Vec::new(); SHARDS];
        for key in 0..KEYS {
            by_shard[router.index_of(&key)].push(key);
        }
        for keys in &by_shard {
            router
                .shard(&keys[0])
                .get()
                .await
                .unwrap()
                .execute(
                    "INSERT INTO items (key) SELECT unnest($1::BIGINT[])",
                    &[keys],
                )
                .await
                .unwrap();
        }
        // Each database holds exactly the keys the hash gave it, spread about evenly.
        for (index, shard) in router.shards().iter().enumerate() {
            let row = shard
                .get()
                .await
                .unwrap()
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE shard <> $1) FROM items",
                    &[&(index as i32)],
                )
                .await
                .unwrap();
            let (count, misplaced): (i64, i64) = (row.get(0), row.get(1));
            assert_eq!(count, by_shard[index].len() as i64, "shard {index}");
            assert_eq!(misplaced, 0);
            assert!(
                (2_500..4_200).contains(&count),
                "shard {index} holds {count} of {KEYS} keys"
            );
        }
        // Found again through the router: every key on its shard, and a router made afresh
        // from the same URLs places every key the same.
        let again =
            ShardRouter::hashed_from_urls(&urls, |url| Config::from_url(url)?.build_pool_lazy())
                .unwrap();
        for key in (0..KEYS).step_by(37) {
            assert_eq!(again.index_of(&key), router.index_of(&key));
            let found: Option<i32> = again
                .shard(&key)
                .get()
                .await
                .unwrap()
                .query_opt("SELECT shard FROM items WHERE key = $1", &[&key])
                .await
                .unwrap()
                .map(|row| row.get(0));
            assert_eq!(found, Some(router.index_of(&key) as i32), "key {key}");
        }
        // A fourth shard is added explicitly, as a new router: the keys that move all go to
        // it, about a quarter of them, and none moves between the first three.
        let grown = router.with_shard(admin(server.url())).unwrap();
        let mut moved = 0;
        for key in 0..KEYS {
            if let Some((from, to)) = router.moves(&key, &grown) {
                assert_eq!(to, SHARDS, "key {key} moved from {from} to an old shard");
                moved += 1;
            }
        }
        assert!((1_800..3_200).contains(&moved), "{moved} keys moved");
        for shard in router.shards().iter().chain(again.shards()) {
            assert!(shard.close_and_wait(Duration::from_secs(10)).await);
        }
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the test finished in time");
}

/// A read/write split pair of pools for one database, as a shard. The type's path is the
/// current one; it is named here only.
fn read_write_shard(url: &str) -> pool_drivers::postgres::Pools {
    pool_drivers::postgres::DatabaseConfig::from_urls(url, &[], None)
        .unwrap()
        .build_pools_lazy()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_write_pair_of_pools_can_be_a_shard() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let databases = Databases::create(server.url(), SHARDS).await;
    let urls = databases.urls();
    let router =
        ShardRouter::hashed(urls.iter().map(|url| read_write_shard(url)).collect()).unwrap();
    let run = async {
        for shard in router.shards() {
            shard
                .write()
                .await
                .unwrap()
                .batch_execute("CREATE TABLE notes (owner TEXT PRIMARY KEY, body TEXT)")
                .await
                .unwrap();
        }
        let owners: Vec<String> = (0..60).map(|i| format!("user-{i}")).collect();
        for owner in &owners {
            router
                .shard(owner.as_str())
                .write()
                .await
                .unwrap()
                .execute("INSERT INTO notes VALUES ($1, 'note of ' || $1)", &[owner])
                .await
                .unwrap();
        }
        for owner in &owners {
            let body: String = router
                .shard(owner.as_str())
                .read()
                .await
                .unwrap()
                .query_one("SELECT body FROM notes WHERE owner = $1", &[owner])
                .await
                .unwrap()
                .get(0);
            assert_eq!(body, format!("note of {owner}"));
        }
        for shard in router.shards() {
            shard
                .write_pool()
                .pool()
                .close_and_wait(Duration::from_secs(10))
                .await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the test finished in time");
}

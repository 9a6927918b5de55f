//! Replica lag limits against the real streaming replica: with its replay paused and the
//! primary writing, the replica leaves read rotation (reads go to the primary); once replay
//! resumes and it catches up, it comes back.

use std::time::Duration;

use integration_tests::invariants::eventually;
use integration_tests::{server, unique_name, Kind};
use pool_drivers::postgres::tokio_postgres::{self, NoTls};
use pool_drivers::postgres::DatabaseConfig;
use pool_drivers::roles::{LagLimit, Replication, Source};

/// Pauses WAL replay on the replica; resumes it when dropped, whatever happened in between, so
/// that a failing test never leaves a shared replica paused.
struct ReplayPaused {
    url: String,
    resumed: bool,
}

impl ReplayPaused {
    async fn new(url: &str) -> ReplayPaused {
        run(url, "SELECT pg_wal_replay_pause()").await;
        ReplayPaused {
            url: url.to_owned(),
            resumed: false,
        }
    }

    async fn resume(mut self) {
        run(&self.url, "SELECT pg_wal_replay_resume()").await;
        self.resumed = true;
    }
}

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        if self.resumed {
            return;
        }
        // Possibly during a panic, inside the test's runtime: a thread with a runtime of its
        // own, waited for, so replay has resumed before the test ends.
        let url = self.url.clone();
        let resumed = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to resume replay on")
                .block_on(run(&url, "SELECT pg_wal_replay_resume()"));
        })
        .join();
        if resumed.is_err() {
            eprintln!("could not resume WAL replay on the replica: run SELECT pg_wal_replay_resume() there");
        }
    }
}

/// Runs `sql` on a connection of its own.
async fn run(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = driver.await;
}

#[tokio::test]
async fn a_replica_behind_the_limit_leaves_read_rotation_and_rejoins_once_caught_up() {
    let Some(primary) = server(Kind::Postgres).await else {
        return;
    };
    let Some(replica) = server(Kind::PostgresReplica).await else {
        return;
    };
    let mut config = DatabaseConfig::from_urls(primary.url(), &[replica.url()], None).unwrap();
    config.replica_timeout = Duration::from_secs(2);
    config.lag_limit = Some(LagLimit::bytes(64 * 1024).every(Duration::from_millis(100)));
    let pools = config.build_pools_lazy().unwrap();
    let table = unique_name("lag");
    let replica_url = replica.url().to_owned();

    // A task of its own, so that the table is dropped even when an assertion fails.
    let test = tokio::spawn({
        let (pools, table) = (pools.clone(), table.clone());
        async move {
            pools
                .write()
                .await
                .unwrap()
                .batch_execute(&format!("CREATE TABLE {table} (id INT, pad TEXT)"))
                .await
                .unwrap();
            eventually(
                "the replica serves reads",
                Duration::from_secs(10),
                || async {
                    match pools.read().await.unwrap().source() {
                        Source::Replica(0) => Ok(()),
                        other => Err(format!("read from {other:?}")),
                    }
                },
            )
            .await;

            let paused = ReplayPaused::new(&replica_url).await;
            // About 1 MB of WAL the replica receives but does not replay.
            pools
                .write()
                .await
                .unwrap()
                .batch_execute(&format!(
                "INSERT INTO {table} SELECT g, repeat('x', 200) FROM generate_series(1, 4000) g"
            ))
                .await
                .unwrap();
            eventually(
                "reads move to the primary",
                Duration::from_secs(10),
                || async {
                    let source = pools.read().await.unwrap().source();
                    if pools.read_pool().is_lagging(0) && source == Source::Primary {
                        Ok(())
                    } else {
                        Err(format!("read from {source:?}"))
                    }
                },
            )
            .await;
            let replica_pool = pools.read_pool().replicas().next().unwrap();
            let mut conn = replica_pool.get().await.unwrap();
            let lag = replica_pool.manager().replay_lag(&mut conn).await.unwrap();
            drop(conn);
            assert!(lag.bytes.unwrap() > 64 * 1024, "{lag:?}");
            assert!(lag.time.unwrap() > Duration::ZERO, "{lag:?}");
            // Reads that must not see stale data do not reach it meanwhile.
            let stale: i64 = pools
                .read()
                .await
                .unwrap()
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(stale, 4000, "a read was served by the paused replica");

            paused.resume().await;
            eventually(
                "the replica is back in rotation",
                Duration::from_secs(20),
                || async {
                    let source = pools.read().await.unwrap().source();
                    if !pools.read_pool().is_lagging(0) && source == Source::Replica(0) {
                        Ok(())
                    } else {
                        Err(format!("read from {source:?}"))
                    }
                },
            )
            .await;
            let mut conn = replica_pool.get().await.unwrap();
            let lag = replica_pool.manager().replay_lag(&mut conn).await.unwrap();
            assert!(lag.bytes.unwrap() <= 64 * 1024, "{lag:?}");
        }
    });
    let outcome = tokio::time::timeout(Duration::from_secs(60), test).await;
    if let Ok(conn) = pools.write().await {
        let _ = conn
            .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await;
    }
    if let Err(panic) = outcome.expect("the test took over a minute") {
        std::panic::resume_unwind(panic.into_panic());
    }
}

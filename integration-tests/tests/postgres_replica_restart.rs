//! The real replica stopped and started again: reads fall back to the primary while it is
//! down and return to it once it is back. A test binary of its own, so no other test loses the
//! replica meanwhile.
//!
//! Needs `POSTGRES_REPLICA_CLUSTER` (`<version> <cluster>`, as `pg_ctlcluster` takes them),
//! which `.ci/services` exports.

use std::process::Command;
use std::time::Duration;

use integration_tests::invariants::eventually;
use integration_tests::{server, Kind};
use pool_drivers::postgres::DatabaseConfig;
use pool_drivers::roles::Source;

/// Runs `pg_ctlcluster <cluster> <action>`.
fn pg_ctlcluster(cluster: &str, action: &str) {
    let mut args: Vec<&str> = vec!["--skip-systemctl-redirect"];
    args.extend(cluster.split_whitespace());
    args.push(action);
    if action == "stop" {
        args.extend(["-m", "fast"]);
    }
    let status = Command::new("pg_ctlcluster")
        .args(&args)
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster {args:?} failed");
}

/// Starts the replica again however the test ends.
struct Restart<'a>(&'a str);

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        pg_ctlcluster(self.0, "start");
    }
}

#[tokio::test]
async fn reads_fall_back_while_the_replica_is_stopped_and_return_after_it_restarts() {
    let (Some(primary), Some(replica)) = (
        server(Kind::Postgres).await,
        server(Kind::PostgresReplica).await,
    ) else {
        return;
    };
    let Ok(cluster) = std::env::var("POSTGRES_REPLICA_CLUSTER") else {
        let missing = "POSTGRES_REPLICA_CLUSTER is not set, so the replica cannot be restarted";
        assert!(std::env::var_os("CI").is_none(), "{missing}");
        integration_tests::skip(missing);
        return;
    };
    let mut config = DatabaseConfig::from_urls(primary.url(), &[replica.url()], None).unwrap();
    config.replica_timeout = Duration::from_secs(2);
    config.replicas[0].pool.connect_timeout = Duration::from_secs(1);
    let pools = config.build_pools_lazy().unwrap();
    assert_eq!(pools.read().await.unwrap().source(), Source::Replica(0));

    let restart = Restart(&cluster);
    pg_ctlcluster(&cluster, "stop");
    // Down for a moment, as an outage is: the idle connection is older than the checkout
    // check's skip window, so its check finds the server gone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let conn = pools.read().await.expect("the primary serves the read");
    assert_eq!(conn.source(), Source::Primary);
    let n: i32 = conn.query_one("SELECT 7", &[]).await.unwrap().get(0);
    assert_eq!(n, 7);
    drop(conn);
    assert!(!pools.read_pool().is_healthy(0));
    assert_eq!(pools.read().await.unwrap().source(), Source::Primary);

    drop(restart);
    eventually("the replica rejoining", Duration::from_secs(30), || async {
        if pools.read_pool().is_healthy(0) {
            Ok(())
        } else {
            Err("still out of rotation".to_owned())
        }
    })
    .await;
    let conn = pools.read().await.unwrap();
    assert_eq!(conn.source(), Source::Replica(0));
    let in_recovery: bool = conn
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery);
}

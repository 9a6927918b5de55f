//! Replica lag limits: a replica past the limit leaves read rotation and rejoins once it has
//! caught up; with every replica lagging, reads take the fallback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pool_core::{Manager, Pool};
use pool_roles::{
    Balance, DatabasePools, Fallback, Lag, LagLimit, ReadPool, Replication, Source, WritePool,
};

/// A server whose replay lag, in bytes, a test sets.
#[derive(Clone, Default)]
struct Behind {
    bytes: Arc<AtomicU64>,
}

impl Behind {
    fn set(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::SeqCst);
    }
}

impl Manager for Behind {
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    async fn check(&self, _: &mut ()) -> Result<(), std::io::Error> {
        Ok(())
    }
}

impl Replication for Behind {
    async fn write_position(&self, _: &mut ()) -> Result<u64, std::io::Error> {
        Ok(0)
    }

    async fn replay_position(&self, _: &mut ()) -> Result<u64, std::io::Error> {
        Ok(0)
    }

    async fn replay_lag(&self, _: &mut ()) -> Result<Lag, std::io::Error> {
        Ok(Lag {
            bytes: Some(self.bytes.load(Ordering::SeqCst)),
            time: None,
        })
    }
}

fn pool(server: &Behind) -> Pool<Behind> {
    Pool::builder(server.clone()).build_lazy().unwrap()
}

fn pools(replicas: &[Behind]) -> DatabasePools<Behind> {
    let read = ReadPool::configured(
        replicas.iter().map(pool).collect(),
        Balance::RoundRobin,
        Fallback::Primary,
        Duration::from_millis(500),
    )
    .with_lag_limit(LagLimit::bytes(1000).every(Duration::from_millis(100)));
    DatabasePools::new(WritePool::new(pool(&Behind::default())), read)
}

/// Waits (in paused time) for the watch's next round or two.
async fn a_few_checks() {
    tokio::time::sleep(Duration::from_millis(350)).await;
}

#[tokio::test(start_paused = true)]
async fn a_lagging_replica_leaves_rotation_and_rejoins_once_caught_up() {
    let replicas = [Behind::default(), Behind::default()];
    let pools = pools(&replicas);
    // The first read starts the watch.
    assert!(matches!(
        pools.read().await.unwrap().source(),
        Source::Replica(_)
    ));

    replicas[0].set(5000);
    a_few_checks().await;
    assert!(pools.read_pool().is_lagging(0));
    assert_eq!(pools.read_pool().healthy(), 1);
    for _ in 0..4 {
        assert_eq!(pools.read().await.unwrap().source(), Source::Replica(1));
    }

    // Within the bound again (a lag at the bound is within it).
    replicas[0].set(1000);
    a_few_checks().await;
    assert!(!pools.read_pool().is_lagging(0));
    let mut sources = Vec::new();
    for _ in 0..4 {
        sources.push(pools.read().await.unwrap().source());
    }
    assert!(sources.contains(&Source::Replica(0)), "{sources:?}");
}

#[tokio::test(start_paused = true)]
async fn with_every_replica_lagging_reads_go_to_the_primary() {
    let replicas = [Behind::default()];
    let pools = pools(&replicas);
    assert_eq!(pools.read().await.unwrap().source(), Source::Replica(0));
    replicas[0].set(u64::MAX);
    a_few_checks().await;
    assert_eq!(pools.read().await.unwrap().source(), Source::Primary);
    replicas[0].set(0);
    a_few_checks().await;
    assert_eq!(pools.read().await.unwrap().source(), Source::Replica(0));
}

#[test]
fn a_limit_counts_only_the_measures_it_bounds() {
    let limit = LagLimit::bytes(10).with_time(Duration::from_secs(1));
    let lag = |bytes, time| Lag { bytes, time };
    assert!(!limit.exceeded_by(&lag(Some(10), Some(Duration::from_secs(1)))));
    assert!(limit.exceeded_by(&lag(Some(11), None)));
    assert!(limit.exceeded_by(&lag(None, Some(Duration::from_millis(1001)))));
    assert!(!limit.exceeded_by(&lag(None, None)));
    assert!(!LagLimit::default().exceeded_by(&lag(Some(u64::MAX), Some(Duration::MAX))));
}

//! Typed role pools: balancing over replicas, a replica taken out of rotation and brought back,
//! the fallback to the primary, and read-your-writes by window and by replication position.

// The scriptable manager of pool-core's behaviour tests, shared rather than copied.
#[path = "../../pool-core/tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Behave, Mock, Op};
use pool_core::{Manager, Pool};
use pool_roles::{
    Balance, DatabasePools, Fallback, ReadPool, Replication, Session, Source, WritePool,
};
use pool_roles::{Error, Lag};

fn pool(mock: &Mock) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(2)
        .build_lazy()
        .unwrap()
}

struct Cluster {
    primary: Mock,
    replicas: Vec<Mock>,
    pools: DatabasePools<Mock>,
}

fn cluster(replicas: usize, balance: Balance, fallback: Fallback) -> Cluster {
    let primary = Mock::new();
    let replicas: Vec<Mock> = (0..replicas).map(|_| Mock::new()).collect();
    let read = ReadPool::configured(
        replicas.iter().map(pool).collect(),
        balance,
        fallback,
        Duration::from_millis(500),
    );
    let pools = DatabasePools::new(WritePool::new(pool(&primary)), read);
    Cluster {
        primary,
        replicas,
        pools,
    }
}

async fn source(pools: &DatabasePools<Mock>) -> Source {
    pools.read().await.expect("a read connection").source()
}

#[tokio::test(start_paused = true)]
async fn round_robin_takes_each_replica_in_turn() {
    let c = cluster(3, Balance::RoundRobin, Fallback::Primary);
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(source(&c.pools).await);
    }
    let expected: Vec<Source> = (0..6).map(|i| Source::Replica(i % 3)).collect();
    assert_eq!(seen, expected);
    assert_eq!(
        c.primary.connects_attempted(),
        0,
        "reads never touched the primary"
    );
}

#[tokio::test(start_paused = true)]
async fn least_connections_picks_the_least_busy_replica() {
    let c = cluster(2, Balance::LeastConnections, Fallback::Primary);
    let first = c.pools.read().await.unwrap();
    let busy = first.source();
    let second = c.pools.read().await.unwrap();
    assert_ne!(second.source(), busy, "the busy replica is passed over");
}

#[tokio::test(start_paused = true)]
async fn random_balancing_uses_every_replica() {
    let c = cluster(3, Balance::Random, Fallback::Primary);
    let mut used = [false; 3];
    for _ in 0..60 {
        if let Source::Replica(i) = source(&c.pools).await {
            used[i] = true;
        }
    }
    assert_eq!(used, [true; 3]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_replica_is_skipped_then_rejoins_once_it_answers() {
    let c = cluster(2, Balance::RoundRobin, Fallback::Primary);
    c.replicas[0].set(Op::Connect, Behave::Transient);

    // Its first read tries it, marks it down and goes on to the other replica.
    assert_eq!(source(&c.pools).await, Source::Replica(1));
    assert!(!c.pools.read_pool().is_healthy(0));
    for _ in 0..4 {
        assert_eq!(source(&c.pools).await, Source::Replica(1));
    }

    c.replicas[0].set_all_ok();
    tokio::time::sleep(Duration::from_secs(1)).await; // the background probe's turn
    assert!(c.pools.read_pool().is_healthy(0), "back in rotation");
    let sources: Vec<Source> = [source(&c.pools).await, source(&c.pools).await].into();
    assert!(sources.contains(&Source::Replica(0)), "{sources:?}");
}

#[tokio::test(start_paused = true)]
async fn with_every_replica_down_reads_fall_back_to_the_primary_or_fail() {
    let c = cluster(2, Balance::RoundRobin, Fallback::Primary);
    for replica in &c.replicas {
        replica.set(Op::Connect, Behave::Transient);
    }
    assert_eq!(source(&c.pools).await, Source::Primary);
    assert_eq!(c.pools.read_pool().healthy(), 0);
    assert_eq!(source(&c.pools).await, Source::Primary);

    let c = cluster(1, Balance::RoundRobin, Fallback::Fail);
    c.replicas[0].set(Op::Connect, Behave::Permanent);
    let err = c.pools.read().await.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::NoReplica { replicas: 1 }), "{err:?}");
    assert!(err.to_string().contains("no healthy replica"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_never_answers_is_taken_out_of_rotation() {
    let c = cluster(1, Balance::RoundRobin, Fallback::Primary);
    c.replicas[0].set(Op::Connect, Behave::Hang);
    assert_eq!(source(&c.pools).await, Source::Primary);
    assert!(!c.pools.read_pool().is_healthy(0));
    // No more waiting on it: the next read goes straight to the primary.
    let started = tokio::time::Instant::now();
    assert_eq!(source(&c.pools).await, Source::Primary);
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn reads_after_a_write_go_to_the_primary_for_the_window() {
    let c = cluster(1, Balance::RoundRobin, Fallback::Primary);
    let pools = c.pools.clone().read_your_writes(Duration::from_secs(2));
    let mut session = Session::new();
    let other = Session::new();

    drop(pools.write_for(&mut session).await.unwrap());
    assert_eq!(
        pools.read_for(&session).await.unwrap().source(),
        Source::Primary
    );
    assert_eq!(
        pools.read_for(&other).await.unwrap().source(),
        Source::Replica(0),
        "other callers still read from replicas"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        pools.read_for(&session).await.unwrap().source(),
        Source::Replica(0)
    );
}

/// Servers that report replication positions: the primary's grows with each write, the
/// replica's follows when a test says so.
#[derive(Clone)]
struct Positions {
    position: Arc<AtomicU64>,
}

impl Manager for Positions {
    type Connection = ();
    type Error = std::io::Error;

    async fn connect(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    async fn check(&self, _: &mut ()) -> Result<(), std::io::Error> {
        Ok(())
    }
}

impl Replication for Positions {
    async fn write_position(&self, _: &mut ()) -> Result<u64, std::io::Error> {
        Ok(self.position.load(Ordering::SeqCst))
    }

    async fn replay_position(&self, _: &mut ()) -> Result<u64, std::io::Error> {
        Ok(self.position.load(Ordering::SeqCst))
    }

    async fn replay_lag(&self, _: &mut ()) -> Result<Lag, std::io::Error> {
        Ok(Lag::NONE)
    }
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_replayed_the_write_serves_it_else_the_primary_does() {
    let primary = Positions {
        position: Arc::new(AtomicU64::new(100)),
    };
    let replica = Positions {
        position: Arc::new(AtomicU64::new(90)),
    };
    let pools = DatabasePools::new(
        WritePool::new(Pool::builder(primary.clone()).build_lazy().unwrap()),
        ReadPool::new(vec![Pool::builder(replica.clone()).build_lazy().unwrap()]),
    )
    .read_your_writes(Duration::from_secs(10))
    .wait_for_replay(Duration::from_millis(200));

    let mut session = Session::new();
    let mut conn = pools.write_for(&mut session).await.unwrap();
    pools.record_write(&mut session, &mut conn).await.unwrap();
    drop(conn);
    assert_eq!(session.position(), Some(100));

    // Behind, and it does not catch up within the limit: the primary serves.
    let started = tokio::time::Instant::now();
    assert_eq!(
        pools.read_after(&session).await.unwrap().source(),
        Source::Primary
    );
    assert!(started.elapsed() >= Duration::from_millis(200));

    // It catches up while the read waits: the replica serves.
    let catch_up = {
        let position = Arc::clone(&replica.position);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            position.store(100, Ordering::SeqCst);
        })
    };
    assert_eq!(
        pools.read_after(&session).await.unwrap().source(),
        Source::Replica(0)
    );
    catch_up.await.unwrap();
}

//! More busy partitions than connections: the connections take turns, no partition starves,
//! and the budget is never exceeded.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Server, Tenant};
use pool_fleet::{Budget, PartitionLimits, Partitions};

const TENANTS: [&str; 6] = ["t0", "t1", "t2", "t3", "t4", "t5"];

#[tokio::test(start_paused = true)]
async fn every_partition_is_served_when_partitions_outnumber_connections() {
    let server = Server::new();
    let parts = Partitions::new(Budget::new(3).unwrap());
    let served: Arc<Vec<AtomicUsize>> =
        Arc::new(TENANTS.iter().map(|_| AtomicUsize::new(0)).collect());
    let mut tasks = Vec::new();
    for (i, name) in TENANTS.into_iter().enumerate() {
        let pool = parts
            .add(name, Tenant::new(name, &server), PartitionLimits::max(3))
            .unwrap();
        for _ in 0..4 {
            let (pool, served) = (pool.clone(), Arc::clone(&served));
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    let conn = pool.get().await.unwrap();
                    assert_eq!(conn.tenant, name, "a connection of another partition");
                    served[i].fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }));
        }
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every task finished: no partition starved");
    for (i, name) in TENANTS.into_iter().enumerate() {
        assert_eq!(served[i].load(Ordering::SeqCst), 40, "{name}");
    }
    assert!(
        server.most() <= 3,
        "{} connections open at once",
        server.most()
    );
    // Connects started for the last callers finish for their pools.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = parts.budget().status();
    assert_eq!(
        status.held,
        server.open(),
        "every open connection holds a permit"
    );
    assert_eq!(status.waiting, 0);
}

#[tokio::test(start_paused = true)]
async fn a_partition_that_comes_late_is_served_while_the_others_stay_busy() {
    let server = Server::new();
    let parts = Partitions::new(Budget::new(4).unwrap());
    let busy: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            parts
                .add(name, Tenant::new(name, &server), PartitionLimits::max(4))
                .unwrap()
        })
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for pool in &busy {
        for _ in 0..6 {
            let (pool, stop) = (pool.clone(), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let _conn = pool.get().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let late = parts
        .add(
            "late",
            Tenant::new("late", &server),
            PartitionLimits::max(4),
        )
        .unwrap();
    for _ in 0..20 {
        let conn = tokio::time::timeout(Duration::from_secs(5), late.get())
            .await
            .expect("the late partition is served")
            .unwrap();
        assert_eq!(conn.tenant, "late");
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(server.most() <= 4);
}

//! The Redis Cluster driver against a three-node cluster this test starts on loopback ports
//! (with the local `redis-server` and `redis-cli`) and stops afterwards.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::unique_name;
use pool_drivers::redis::cluster::Config;
use pool_drivers::redis::redis::{self, AsyncCommands};
use pool_drivers::DriverConfig;

/// Three cluster nodes; killed and their directory removed on drop.
struct Cluster {
    ports: Vec<u16>,
    nodes: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn free_port(taken: &[u16]) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let Some(bus) = port.checked_add(10000) else {
            continue;
        };
        if taken.contains(&port) || TcpListener::bind(("127.0.0.1", bus)).is_err() {
            continue;
        }
        return port;
    }
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn answers(url: &str, query: &str, expect: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    let mut cmd = redis::cmd(query.split(' ').next().unwrap_or_default());
    for arg in query.split(' ').skip(1) {
        cmd.arg(arg);
    }
    cmd.query_async::<String>(&mut conn)
        .await
        .is_ok_and(|reply| reply.contains(expect))
}

/// Starts the cluster, or returns `None` (with a loud line) when Redis is not installed.
async fn start() -> Option<Cluster> {
    if !installed("redis-server") || !installed("redis-cli") {
        let missing = "no redis-server/redis-cli to start a cluster with";
        if std::env::var_os("CI").is_some() {
            panic!("{missing}; CI is set, so this is a failure");
        }
        integration_tests::skip(missing);
        return None;
    }
    let dir = std::env::temp_dir().join(unique_name("pool_redis_cluster"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ports = Vec::new();
    for _ in 0..3 {
        ports.push(free_port(&ports));
    }
    let mut cluster = Cluster {
        ports: ports.clone(),
        nodes: Vec::new(),
        dir: dir.clone(),
    };
    for port in &ports {
        let node = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        cluster.nodes.push(node);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in &ports {
        while !answers(&format!("redis://127.0.0.1:{port}/"), "PING", "PONG").await {
            assert!(Instant::now() < deadline, "node {port} did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(created.success(), "redis-cli --cluster create failed");
    for port in &ports {
        let url = format!("redis://127.0.0.1:{port}/");
        while !answers(&url, "CLUSTER INFO", "cluster_state:ok").await {
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Some(cluster)
}

#[tokio::test]
async fn a_cluster_pool_routes_commands_and_retires_dirty_connections() {
    let Some(cluster) = start().await else {
        return;
    };
    let mut config = Config::from_urls(
        cluster
            .ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}")),
    )
    .unwrap();
    config.pool.max_size = 2;
    let pool = config.build_pool_lazy().unwrap();

    // Keys spread over the slots of all three nodes.
    let keys: Vec<String> = (0..12).map(|i| unique_name(&format!("k{i}"))).collect();
    let tasks: Vec<_> = keys
        .iter()
        .cloned()
        .map(|key| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.get().await.unwrap();
                let () = conn.set(&key, "v").await.unwrap();
                let value: String = conn.get(&key).await.unwrap();
                assert_eq!(value, "v");
                let _: i64 = conn.del(&key).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(pool.status().size <= 2);

    // A transaction left open: the connection is closed on return, not reset.
    let mut conn = pool.get().await.unwrap();
    let open = pool.status().size;
    redis::cmd("MULTI").exec_async(&mut *conn).await.unwrap();
    assert!(conn.is_broken());
    drop(conn);
    assert_eq!(
        pool.status().size,
        open - 1,
        "the dirty connection was closed"
    );
    let mut conn = pool.get().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut *conn).await.unwrap();
    assert_eq!(pong, "PONG");
    assert!(!conn.is_broken());
}

#[tokio::test]
async fn an_unknown_cluster_host_fails_fast() {
    let mut config = Config::from_url("redis://no-such-host.invalid:7000").unwrap();
    config.pool.acquire_timeout = Some(Duration::from_secs(30));
    let pool = config.build_pool_lazy().unwrap();
    let started = Instant::now();
    let err = pool.get().await.expect_err("no such host");
    assert!(
        matches!(
            err.backend(),
            Some(pool_drivers::redis::Error::UnknownHost { .. })
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

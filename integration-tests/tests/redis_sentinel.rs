//! Redis Sentinel: a master, a replica and three Sentinels (quorum 2) started on free loopback
//! ports for the test, a pool that follows `SENTINEL FAILOVER` to the new master, with every
//! write acknowledged by a replica (`WAIT 1`) found on the new master afterwards, and the
//! callers' error window measured.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::failover::{error_window, Writers};
use integration_tests::invariants::eventually;
use integration_tests::{skip, unique_name};
use pool_drivers::redis::redis::{self, AsyncCommands};
use pool_drivers::redis::sentinel::SentinelConfig;
use pool_drivers::DriverConfig;

const SERVICE: &str = "suite";

/// The servers of one test: killed, and their directory removed, when dropped.
struct Servers {
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Servers {
    fn spawn(&mut self, program: &str, args: &[&str]) {
        let child = Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        self.children.push(child);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn client(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn ask(port: u16, cmd: &redis::Cmd) -> Result<redis::Value, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    cmd.query_async(&mut conn).await.map_err(|e| e.to_string())
}

async fn role(port: u16) -> Result<String, String> {
    match ask(port, &redis::cmd("ROLE")).await? {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::BulkString(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            other => Err(format!("{other:?}")),
        },
        other => Err(format!("{other:?}")),
    }
}

/// The master's port as `sentinel` says.
async fn master_port(sentinel: u16) -> Result<u16, String> {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("get-master-addr-by-name").arg(SERVICE);
    let reply = ask(sentinel, &cmd).await?;
    let (_, port): (String, u16) = redis::from_redis_value(reply).map_err(|e| e.to_string())?;
    Ok(port)
}

/// The port of the server `conn` is connected to.
async fn port(conn: &mut impl redis::aio::ConnectionLike) -> Result<u16, String> {
    let (_, port): (String, u16) = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(port)
}

/// Whether a write on the server at `port` is acknowledged by a replica.
async fn acknowledges(port: u16) -> Result<(), String> {
    let mut conn = client(port).await;
    let (): () = conn.set("probe", 1).await.map_err(|e| e.to_string())?;
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(200)
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if acked >= 1 {
        Ok(())
    } else {
        Err("no replica acknowledged".to_owned())
    }
}

/// The key of write `id`.
fn key(id: i32) -> String {
    format!("write:{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_follows_a_sentinel_failover_to_the_new_master() {
    if !installed("redis-server") || !installed("redis-sentinel") {
        let why = "redis-server and redis-sentinel are needed (apt-get install redis-sentinel)";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        skip(why);
        return;
    }
    let dir = std::env::temp_dir().join(unique_name("sentinel"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut servers = Servers {
        dir: dir.clone(),
        children: Vec::new(),
    };
    let (master, replica) = (free_port(), free_port());
    let common = [
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ];
    let master_arg = master.to_string();
    let mut args = vec!["--port", &master_arg];
    args.extend(common);
    servers.spawn("redis-server", &args);
    let replica_arg = replica.to_string();
    let mut args = vec![
        "--port",
        &replica_arg,
        "--replicaof",
        "127.0.0.1",
        &master_arg,
    ];
    args.extend(common);
    servers.spawn("redis-server", &args);
    let sentinels = [free_port(), free_port(), free_port()];
    for port in sentinels {
        let file = dir.join(format!("sentinel-{port}.conf"));
        std::fs::write(
            &file,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\n\
                 sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds {SERVICE} 1000\n\
                 sentinel failover-timeout {SERVICE} 10000\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        servers.spawn("redis-sentinel", &[file.to_str().unwrap()]);
    }

    let test = async {
        // The replica streams, and the Sentinel told to fail over knows it and its peers.
        eventually(
            "the replica and the sentinels are ready",
            Duration::from_secs(30),
            || async {
                let mut replicas = redis::cmd("SENTINEL");
                replicas.arg("replicas").arg(SERVICE);
                let known: Vec<std::collections::HashMap<String, String>> =
                    redis::from_redis_value(ask(sentinels[0], &replicas).await?)
                        .map_err(|e| e.to_string())?;
                let mut peers = redis::cmd("SENTINEL");
                peers.arg("sentinels").arg(SERVICE);
                let peers: Vec<redis::Value> =
                    redis::from_redis_value(ask(sentinels[0], &peers).await?)
                        .map_err(|e| e.to_string())?;
                let linked = known
                    .iter()
                    .any(|r| r.get("master-link-status").map(String::as_str) == Some("ok"));
                if linked && peers.len() == 2 {
                    Ok(())
                } else {
                    Err(format!("replicas {known:?}, {} peers", peers.len()))
                }
            },
        )
        .await;

        let url = format!(
            "redis+sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/{SERVICE}",
            sentinels[0], sentinels[1], sentinels[2]
        );
        let mut config = SentinelConfig::from_url(&url).unwrap();
        config.pool.max_size = 4;
        config.pool.acquire_timeout = Some(Duration::from_secs(10));
        let pool = config.build_pool_lazy().unwrap();

        let served_by = |pool: pool_drivers::redis::sentinel::Pool| async move {
            let mut conn = pool.get().await.map_err(|e| format!("{e:#}"))?;
            port(&mut *conn).await
        };
        assert_eq!(served_by(pool.clone()).await.unwrap(), master);
        eventually(
            "the replica acknowledges writes",
            Duration::from_secs(30),
            || async { acknowledges(master).await },
        )
        .await;

        // Writers: each write is a SET then `WAIT 1` for a replica's acknowledgement.
        let writers = Writers::start(3, {
            let pool = pool.clone();
            move |id: i32| {
                let pool = pool.clone();
                async move {
                    let mut conn = pool.get().await.map_err(|e| format!("{e:#}"))?;
                    let (): () = conn.set(key(id), id).await.map_err(|e| e.to_string())?;
                    let acked: i64 = redis::cmd("WAIT")
                        .arg(1)
                        .arg(200)
                        .query_async(&mut *conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok((port(&mut *conn).await?, acked))
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;

        let failover_at = Instant::now();
        let mut failover = redis::cmd("SENTINEL");
        failover.arg("FAILOVER").arg(SERVICE);
        ask(sentinels[0], &failover).await.unwrap();
        eventually(
            "the failover completes",
            Duration::from_secs(30),
            || async {
                let now = master_port(sentinels[0]).await?;
                let old = role(master).await?;
                if now == replica && old == "slave" {
                    Ok(())
                } else {
                    Err(format!("master on {now}, the old one a {old}"))
                }
            },
        )
        .await;
        eventually(
            "the pool writes to the new master",
            Duration::from_secs(30),
            || async {
                match served_by(pool.clone()).await? {
                    port if port == replica => Ok(()),
                    port => Err(format!("served by {port}")),
                }
            },
        )
        .await;
        // The old master, demoted, replicates the new one, which writes can then wait for.
        eventually(
            "the old master replicates the new one",
            Duration::from_secs(30),
            || async { acknowledges(replica).await },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let writes = writers.stop().await;

        // Every write a replica acknowledged is on the new master, with its value.
        let mut new_master = client(replica).await;
        let mut acknowledged = 0;
        let mut unconfirmed = 0;
        for write in &writes {
            if let Ok((_, acked)) = &write.outcome {
                if *acked >= 1 {
                    acknowledged += 1;
                    let value: Option<i64> = new_master.get(key(write.id)).await.unwrap();
                    assert!(
                        value.is_some(),
                        "{} was acknowledged and lost",
                        key(write.id)
                    );
                } else {
                    unconfirmed += 1;
                }
            }
        }
        // Once the pool reached the new master, no write went to the old one.
        let first_on_new = writes
            .iter()
            .filter(|w| matches!(w.outcome, Ok((port, _)) if port == replica))
            .map(|w| w.at)
            .min()
            .expect("writes reached the new master");
        let late_on_old = writes
            .iter()
            .filter(|w| w.at > first_on_new)
            .filter(|w| matches!(w.outcome, Ok((port, _)) if port == master))
            .count();
        assert_eq!(late_on_old, 0, "writes reached the demoted master");
        let failed: Vec<_> = writes.iter().filter(|w| w.outcome.is_err()).collect();
        let window = error_window(&writes);
        let on_old = writes
            .iter()
            .filter(|w| matches!(w.outcome, Ok((port, _)) if port == master))
            .count();
        println!(
            "sentinel failover: {} writes, {acknowledged} acknowledged by a replica (all on the new master), \
             {unconfirmed} not acknowledged, {} failed within {window:?}; {on_old} on the old master; \
             first write on the new master {:?} after SENTINEL FAILOVER",
            writes.len(),
            failed.len(),
            first_on_new.duration_since(failover_at),
        );
        for write in failed.iter().take(5) {
            println!("  failed: {:?}", write.outcome);
        }
        assert!(acknowledged > 0);
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the failover test took over two minutes");
    drop(servers);
}

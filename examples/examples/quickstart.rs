//! The first thing to run: a small concurrent workload through a pool, and what the pool saw.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Needs no server: the default database is a SQLite file in the temporary directory (through
//! sqlx), removed at the end. Set `DATABASE_URL` to a `postgres://`, `mysql://` or `redis://`
//! URL to run the same workload against that server:
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example quickstart
//! ```

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use pool_drivers::DriverConfig;
use pool_drivers::{Manager, Pool};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

const TASKS: i32 = 8;
const REQUESTS_PER_TASK: i32 = 50;
const MAX_SIZE: usize = 4;

/// The pool settings every backend gets: fewer connections than tasks, so some tasks wait.
fn pool_settings(pool: &mut pool_drivers::Config) {
    pool.max_size = MAX_SIZE;
    pool.acquire_timeout = Some(Duration::from_secs(10));
}

/// `TASKS` tasks each borrow a connection `REQUESTS_PER_TASK` times, run `request` on it,
/// hold it for a moment of "application work" and give it back; then the pool's statistics
/// are printed.
async fn workload<M, F>(pool: Pool<M>, request: F) -> Result<(), BoxError>
where
    M: Manager,
    F: for<'a> Fn(&'a mut M::Connection, i32) -> BoxFuture<'a, Result<(), BoxError>>
        + Send
        + Sync
        + Clone
        + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let pool = pool.clone();
            let request = request.clone();
            tokio::spawn(async move {
                for i in 0..REQUESTS_PER_TASK {
                    let mut conn = pool.get().await?;
                    request(&mut conn, task * 1000 + i).await?;
                    // Work done while holding the connection...
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    drop(conn);
                    // ...and work that needs none: the connection serves someone else.
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();

    let stats = pool.stats();
    let status = pool.status();
    println!(
        "{} requests from {TASKS} tasks in {elapsed:.2?}",
        TASKS * REQUESTS_PER_TASK
    );
    println!(
        "connections opened: {} (max_size {MAX_SIZE}), failed connects: {}",
        stats.connects_ok, stats.connects_failed
    );
    println!(
        "acquires: {} served at once, {} after waiting, {} timed out",
        stats.acquires_direct, stats.acquires_waited, stats.acquires_timed_out
    );
    let wait = &stats.wait_time;
    println!(
        "wait for a connection: p50 {:?}, p95 {:?}, p99 {:?}, max {:?}",
        wait.p50(),
        wait.p95(),
        wait.p99(),
        wait.max()
    );
    println!(
        "now: {} open, {} idle, {} in use, {} waiting",
        status.size, status.idle, status.in_use, status.waiting
    );
    Ok(())
}

/// A SQLite file that is removed, with its journal, when the example ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn sqlite() -> Result<(), BoxError> {
    use pool_drivers::sqlx::sqlite::Config;
    use pool_drivers::sqlx::sqlx;

    let file = TempFile(
        std::env::temp_dir().join(format!("pool_quickstart_{}.sqlite", std::process::id())),
    );
    println!(
        "SQLite file {} (set DATABASE_URL to use a server)",
        file.0.display()
    );
    let mut config = Config::from_url(&format!("sqlite://{}?mode=rwc", file.0.display()))?;
    pool_settings(&mut config.pool);
    let pool = config.build_pool_lazy()?;
    workload(pool, |conn, n| {
        Box::pin(async move {
            let (echo,): (i32,) = sqlx::query_as("SELECT ?")
                .bind(n)
                .fetch_one(&mut *conn)
                .await?;
            assert_eq!(echo, n);
            Ok(())
        })
    })
    .await
}

async fn postgres(url: &str) -> Result<(), BoxError> {
    let mut config = pool_drivers::postgres::Config::from_url(url)?;
    pool_settings(&mut config.pool);
    workload(config.build_pool_lazy()?, |conn, n| {
        Box::pin(async move {
            let row = conn.query_one("SELECT $1::INT4", &[&n]).await?;
            assert_eq!(row.get::<_, i32>(0), n);
            Ok(())
        })
    })
    .await
}

async fn mysql(url: &str) -> Result<(), BoxError> {
    use pool_drivers::mysql::mysql_async::prelude::Queryable;

    let mut config = pool_drivers::mysql::Config::from_url(url)?;
    pool_settings(&mut config.pool);
    workload(config.build_pool_lazy()?, |conn, n| {
        Box::pin(async move {
            let echo: Option<i32> = conn.exec_first("SELECT ?", (n,)).await?;
            assert_eq!(echo, Some(n));
            Ok(())
        })
    })
    .await
}

async fn redis(url: &str) -> Result<(), BoxError> {
    use pool_drivers::redis::redis;

    let mut config = pool_drivers::redis::Config::from_url(url)?;
    pool_settings(&mut config.pool);
    let pool = config.build_pool_lazy()?;
    workload(pool.clone(), |conn, n| {
        Box::pin(async move {
            let echo: i32 = redis::cmd("ECHO").arg(n).query_async(conn).await?;
            assert_eq!(echo, n);
            Ok(())
        })
    })
    .await
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let Some(url) = url else {
        return sqlite().await;
    };
    // Only the scheme is printed: the URL may hold a password.
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    println!("{scheme} server from DATABASE_URL");
    match scheme {
        "postgres" | "postgresql" => postgres(&url).await,
        "mysql" | "mariadb" => mysql(&url).await,
        "redis" | "rediss" => redis(&url).await,
        _ => Err(format!(
            "DATABASE_URL must start with postgres://, mysql:// or redis://, found {scheme:?}"
        )
        .into()),
    }
}

//! A Redis pool: a few tasks share a small pool, and a `SELECT` by one borrower does not
//! follow the connection to the next.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example redis
//! ```

use pool_drivers::redis::redis::{self, AsyncCommands};
use pool_drivers::redis::Config;
use pool_drivers::DriverConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let mut config = Config::from_url(&url)?;
    config.pool.max_size = 4;
    println!("{config:?}");
    let pool = config.build_pool_lazy()?;
    let key = format!("pool_example_counter_{}", std::process::id());

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let mut conn = pool.get().await?;
                let n: i64 = conn.incr(&key, 1).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(n)
            })
        })
        .collect();
    for task in tasks {
        let n = task.await?.map_err(|e| e as Box<dyn std::error::Error>)?;
        println!("counter is now {n}");
    }

    let mut conn = pool.get().await?;
    redis::cmd("SELECT").arg(1).exec_async(&mut *conn).await?;
    drop(conn);
    let mut conn = pool.get().await?;
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut *conn)
        .await?;
    let db = info.split_whitespace().find(|f| f.starts_with("db="));
    println!("the next borrower is back in {}", db.unwrap_or("db=?"));
    let _: i64 = conn.del(&key).await?;
    drop(conn);

    println!("{:?}", pool.status());
    Ok(())
}

//! A PostgreSQL pool shared by concurrent tasks, with a cached prepared statement and a
//! transaction.
//!
//! `cargo run --example postgres` (uses `POSTGRES_URL`, else the local server at
//! `postgres://postgres@127.0.0.1:5432/test`).

use std::error::Error;

use pool_drivers::postgres::{Config, Pool};
use pool_drivers::DriverConfig;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test?application_name=pool-example";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let mut config = Config::from_url(&url)?;
    config.pool.max_size = 4;
    // Sessions come back without settings a caller changed.
    config.cleanup.reset_all = true;
    println!("{config:?}");
    let pool = config.build_pool_lazy()?;

    // Sixteen tasks share four connections.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { square(&pool, i).await })
        })
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await?.map_err(|e| e as Box<dyn Error>)?;
    }
    println!("sum of squares 0..16 = {sum}");

    // A transaction: committed here; one left open would be rolled back before reuse.
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let now: String = tx.query_one("SELECT now()::TEXT", &[]).await?.get(0);
    tx.commit().await?;
    println!("server time {now}");
    drop(conn);

    println!("{:?}", pool.status());
    Ok(())
}

async fn square(pool: &Pool, i: i32) -> Result<i64, Box<dyn Error + Send + Sync>> {
    let conn = pool.get().await?;
    // Prepared once per connection, then reused from the connection's cache.
    let statement = conn
        .prepare_cached("SELECT ($1::INT4 * $1::INT4)::INT8")
        .await?;
    Ok(conn.query_one(&statement, &[&i]).await?.get(0))
}

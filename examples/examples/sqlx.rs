//! Code written for sqlx, pooled by this crate: queries, a transaction, and what the pool does
//! with a transaction a task forgot to finish.
//!
//! `cargo run --example sqlx` uses an in-memory SQLite database; set `SQLITE_URL`
//! (e.g. `sqlite://app.db?mode=rwc`) to use a file. The same code works for PostgreSQL and MySQL
//! through `pool_drivers::sqlx::postgres` and `pool_drivers::sqlx::mysql` (features
//! `sqlx-postgres`, `sqlx-mysql`).

use std::time::Duration;

use pool_drivers::sqlx::sqlite::Config;
use pool_drivers::sqlx::sqlx::{self, Connection as _};
use pool_drivers::DriverConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::var("SQLITE_URL").unwrap_or_else(|_| "sqlite::memory:".to_owned());
    let mut config = Config::from_url(&url)?;
    config.pool.max_size = 4;
    // An in-memory database lives as long as one of its connections; the pool keeps idle
    // ones for `idle_timeout` (10 minutes), far longer than this example runs.
    config.pool.acquire_timeout = Some(Duration::from_secs(5));
    let pool = config.build_pool_lazy()?;

    let mut conn = pool.get().await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, balance INTEGER)")
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT OR REPLACE INTO accounts VALUES ('alice', 100), ('bob', 0)")
        .execute(&mut *conn)
        .await?;

    // A transaction committed as usual.
    let mut tx = conn.begin().await?;
    sqlx::query("UPDATE accounts SET balance = balance - 30 WHERE name = 'alice'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE accounts SET balance = balance + 30 WHERE name = 'bob'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    // A transaction begun and then abandoned, with the connection going back to the pool.
    // The pool's reset rolls it back before anyone else gets this connection.
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    sqlx::query("UPDATE accounts SET balance = 1000000 WHERE name = 'bob'")
        .execute(&mut *conn)
        .await?;
    drop(conn);

    // The next borrower gets the same connection (the only one so far), after the reset.
    let mut conn = pool.get().await?;
    let balances: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, balance FROM accounts ORDER BY name")
            .fetch_all(&mut *conn)
            .await?;
    println!("balances: {balances:?} (the abandoned update was rolled back)");
    drop(conn);

    // Many tasks reading at once, over at most four connections.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.get().await?;
                let (total,): (i64,) = sqlx::query_as("SELECT sum(balance) FROM accounts")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(total)
            })
        })
        .collect();
    for task in tasks {
        let total = task.await??;
        assert_eq!(total, 100, "the abandoned transaction leaked");
    }

    let stats = pool.stats();
    println!(
        "{} connections opened, {} acquires ({} waited), wait p99 {:?}",
        stats.connects_ok,
        stats.acquires_direct + stats.acquires_waited,
        stats.acquires_waited,
        stats.wait_time.p99()
    );
    Ok(())
}

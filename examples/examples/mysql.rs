//! A MySQL (or MariaDB) pool: a few tasks share a small pool, and a session variable set by
//! one borrower is gone for the next.
//!
//! ```text
//! MYSQL_URL=mysql://root@127.0.0.1:3306/test cargo run --example mysql
//! ```

use pool_drivers::mysql::mysql_async::prelude::Queryable;
use pool_drivers::mysql::Config;
use pool_drivers::DriverConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let mut config = Config::from_url(&url)?;
    config.pool.max_size = 4;
    println!("{config:?}");
    let pool = config.build_pool_lazy()?;

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.get().await?;
                let id: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await?;
                println!("task {i} ran on connection {}", id.unwrap_or_default());
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await?.map_err(|e| e as Box<dyn std::error::Error>)?;
    }

    let mut conn = pool.get().await?;
    conn.query_drop("SET @greeting = 'hello'").await?;
    drop(conn);
    let mut conn = pool.get().await?;
    let greeting: Option<Option<String>> = conn.query_first("SELECT @greeting").await?;
    println!("@greeting for the next borrower: {:?}", greeting.flatten());
    drop(conn);

    println!("{:?}", pool.status());
    Ok(())
}

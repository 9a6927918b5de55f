//! A web service with read/write splitting over a PostgreSQL primary and its replicas.
//!
//! ```text
//! PRIMARY_URL=postgres://postgres@127.0.0.1:5432/test \
//! REPLICA_URLS=postgres://postgres@127.0.0.1:5433/test \
//! cargo run --example web_service
//! curl -i -d 'hello' localhost:3000/notes
//! curl -i -H 'x-last-write: <from the answer above>' localhost:3000/notes/1
//! ```
//!
//! With the database unreachable, requests answer 503 after 30 s (the health-aware acquire's
//! default deadline).

use pool_drivers::postgres::DatabaseConfig;
use pool_drivers::Retry;
use pool_examples::web_service;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let primary = std::env::var("PRIMARY_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let replicas = std::env::var("REPLICA_URLS").unwrap_or_default();
    let replicas: Vec<&str> = replicas.split(',').filter(|u| !u.is_empty()).collect();
    let mut config = DatabaseConfig::from_urls(&primary, &replicas, None)?;
    config.read_your_writes = Some(std::time::Duration::from_secs(5));
    config.replay_wait = Some(std::time::Duration::from_millis(500));
    let pools = config.build_pools_lazy()?;
    web_service::create_table(&pools, "notes").await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        web_service::router(pools, "notes", Retry::default()),
    )
    .await?;
    Ok(())
}

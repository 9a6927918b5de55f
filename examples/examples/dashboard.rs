//! A pool under a load that rises and falls, watched on the live dashboard.
//!
//! `cargo run --example dashboard`, then open the address it prints. Uses PostgreSQL when
//! `DATABASE_URL` or `POSTGRES_URL` names a server, else a pool of in-memory resources.
//! `DASHBOARD_ADDR` chooses where the page is served (default `127.0.0.1:9100`).

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use pool_dashboard::Dashboard;
use pool_drivers::DriverConfig;
use pool_drivers::{Manager, Pool};

/// What a worker does with a connection for `millis` milliseconds.
trait Work: Manager {
    fn work(conn: &mut Self::Connection, millis: u64) -> impl Future<Output = ()> + Send;
}

impl Work for pool_drivers::postgres::Manager {
    async fn work(conn: &mut Self::Connection, millis: u64) {
        let seconds = millis as f64 / 1000.0;
        if let Err(e) = conn.execute("SELECT pg_sleep($1)", &[&seconds]).await {
            eprintln!("query failed: {e:#}");
        }
    }
}

/// Stands in for a database when none is given: opening takes a few milliseconds.
struct Memory;

impl Manager for Memory {
    type Connection = Vec<u8>;
    type Error = std::io::Error;

    async fn connect(&self) -> Result<Vec<u8>, std::io::Error> {
        tokio::time::sleep(Duration::from_millis(15)).await;
        Ok(Vec::new())
    }

    async fn check(&self, _: &mut Vec<u8>) -> Result<(), std::io::Error> {
        Ok(())
    }
}

impl Work for Memory {
    async fn work(_: &mut Vec<u8>, millis: u64) {
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr = std::env::var("DASHBOARD_ADDR").unwrap_or_else(|_| "127.0.0.1:9100".to_owned());
    let url = std::env::var("DATABASE_URL").or_else(|_| std::env::var("POSTGRES_URL"));
    match url {
        Ok(url) => {
            let mut config = pool_drivers::postgres::Config::from_url(&url)?;
            config.pool = settings(config.pool);
            serve(config.build_pool_lazy()?, &addr).await
        }
        Err(_) => {
            let config = settings(pool_drivers::Config::default());
            let pool = Pool::builder(Memory)
                .config(config)
                .name("in-memory")
                .build_lazy()?;
            serve(pool, &addr).await
        }
    }
}

/// Small enough for the load to fill it at its peaks, and a leak threshold the slow
/// worker crosses.
fn settings(mut pool: pool_drivers::Config) -> pool_drivers::Config {
    pool.max_size = 8;
    pool.min_idle = 2;
    pool.acquire_timeout = Some(Duration::from_secs(1));
    pool.leak_threshold = Some(Duration::from_secs(5));
    pool.idle_timeout = Some(Duration::from_secs(20));
    pool
}

async fn serve<M: Work>(pool: Pool<M>, addr: &str) -> Result<(), Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "dashboard of pool {:?}: http://{}/",
        pool.config().pool_name(),
        listener.local_addr()?
    );
    for worker in 0..24 {
        tokio::spawn(load(pool.clone(), worker));
    }
    tokio::spawn(hold_too_long(pool.clone()));
    let app = Dashboard::new().pool(&pool).router();
    axum::serve(listener, app).await?;
    Ok(())
}

/// One of 24 workers; how many are active follows a wave with a two-minute period, so the
/// pool fills, queues callers (and times some out) at the peaks and idles in the troughs.
async fn load<M: Work>(pool: Pool<M>, worker: u32) {
    let started = tokio::time::Instant::now();
    loop {
        let phase = started.elapsed().as_secs_f64() / 120.0 * std::f64::consts::TAU;
        let active = 12.0 * (1.0 - phase.cos());
        if f64::from(worker) < active {
            match pool.get().await {
                Ok(mut conn) => M::work(&mut conn, fastrand::u64(20..120)).await,
                Err(e) => eprintln!("worker {worker}: {e:#}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(10..60))).await;
    }
}

/// Now and then a caller keeps its connection far too long: a leak on the page.
async fn hold_too_long<M: Work>(pool: Pool<M>) {
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        if let Ok(conn) = pool.get().await {
            tokio::time::sleep(Duration::from_secs(12)).await;
            drop(conn);
        }
    }
}

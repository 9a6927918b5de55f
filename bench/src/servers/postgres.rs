//! The `postgres` suite: `SELECT 1` through pool-drivers, deadpool-postgres and bb8-postgres,
//! and with a new connection per request.

use std::sync::Arc;
use std::time::Duration;

use pool_drivers::postgres::tokio_postgres::{self, Client, NoTls};
use pool_drivers::postgres::SslMode;
use pool_drivers::DriverConfig;
use tokio::sync::Semaphore;

use super::{BoxError, Contender, Kind, Lane, Plan, Server};

/// The `application_name` of every session the suite's pools open, so the monitor can count
/// them in `pg_stat_activity` and tell them from other clients of the same server.
const APPLICATION: &str = "pool-bench";

/// The command: a simple-protocol query, one round trip and the same bytes for every pool
/// (the extended protocol would add a prepare whose caching differs between the drivers).
const QUERY: &str = "SELECT 1";

/// The PostgreSQL server, with a monitor session.
pub struct Postgres {
    url: String,
    /// Where the peers and the baseline connect: the URL's settings, with `APPLICATION`.
    config: tokio_postgres::Config,
    monitor: Client,
}

impl Server for Postgres {
    const NAME: &'static str = "postgres";
    const URL_VAR: &'static str = "POSTGRES_URL";
    const DEFAULT_URL: &'static str = "postgres://postgres@127.0.0.1:5432/test";
    const WORK: &'static str = "`SELECT 1` (simple query protocol)";

    async fn connect(url: &str) -> Result<Self, BoxError> {
        // Our driver's URL parser, so every column reads the URL the same way (it takes out
        // the TLS parameters, which the peers here would not honour: they run without TLS).
        let mut config = pool_drivers::postgres::Config::from_url(url)?.postgres;
        config.application_name(APPLICATION);
        let mut monitor = config.clone();
        monitor.application_name("pool-bench-monitor");
        monitor.connect_timeout(Duration::from_secs(3));
        let (client, connection) = monitor.connect(NoTls).await?;
        tokio::spawn(connection);
        Ok(Postgres {
            url: url.to_owned(),
            config,
            monitor: client,
        })
    }

    async fn open_sessions(&self, _: &[u64]) -> Result<usize, BoxError> {
        let row = self
            .monitor
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&APPLICATION],
            )
            .await?;
        Ok(usize::try_from(row.get::<_, i64>(0))?)
    }

    fn lanes() -> Vec<Lane<Self>> {
        vec![
            Lane::of::<Ours>(Kind::Ours),
            Lane::of::<DeadpoolPostgres>(Kind::Peer),
            Lane::of::<Bb8Postgres>(Kind::Peer),
            Lane::of::<PerRequest>(Kind::Baseline),
        ]
    }

    fn notes(plan: &Plan) -> Vec<String> {
        vec![
            format!(
                "{}: `max_size` {} and no TLS (as the peers), defaults otherwise. Per \
                 checkout: a round-trip check only for a connection unused for 500 ms (none under this load) and a `ROLLBACK` \
                 only for a session left in a transaction (none here), so no extra round trip.",
                Ours::NAME,
                plan.size
            ),
            format!(
                "{}: `max_size` {}, defaults otherwise: `RecyclingMethod::Fast`, which only \
                 asks `is_closed()`, so no extra round trip.",
                DeadpoolPostgres::NAME,
                plan.size
            ),
            format!(
                "{}: `max_size` {}, defaults otherwise: `test_on_check_out` is true, so an \
                 empty query (one more round trip) on every checkout.",
                Bb8Postgres::NAME,
                plan.size
            ),
            format!(
                "{}: tokio-postgres `connect`, the query, then close (awaited), at most {} at \
                 once (a semaphore); what every request would pay without a pool.",
                PerRequest::NAME,
                plan.size
            ),
        ]
    }
}

/// Our pool.
#[derive(Clone)]
pub struct Ours(pool_drivers::postgres::Pool);

impl Contender<Postgres> for Ours {
    const NAME: &'static str = "pool-drivers";
    type Held = pool_drivers::postgres::Connection;

    async fn checkout(&self) -> Result<Self::Held, BoxError> {
        Ok(self.0.get().await?)
    }

    async fn build(server: &Postgres, size: usize) -> Result<Self, BoxError> {
        let mut config = pool_drivers::postgres::Config::from_url(&server.url)?;
        config.postgres.application_name(APPLICATION);
        config.pool.max_size = size;
        // Equal work: the peers run without TLS here, so ours does too, even in a build where
        // pool-drivers has its `tls` feature and the server offers TLS (`prefer` would take it).
        config.ssl_mode = SslMode::Disable;
        Ok(Ours(config.build_pool_lazy()?))
    }

    async fn op(&self) -> Result<(), BoxError> {
        let conn = self.0.get().await?;
        conn.simple_query(QUERY).await?;
        Ok(())
    }

    async fn close(self) {
        self.0.close_and_wait(Duration::from_secs(5)).await;
    }
}

/// deadpool-postgres.
#[derive(Clone)]
pub struct DeadpoolPostgres(deadpool_postgres::Pool);

impl Contender<Postgres> for DeadpoolPostgres {
    const NAME: &'static str = "deadpool-postgres";
    type Held = deadpool_postgres::Object;

    async fn checkout(&self) -> Result<Self::Held, BoxError> {
        Ok(self.0.get().await?)
    }

    async fn build(server: &Postgres, size: usize) -> Result<Self, BoxError> {
        let manager = deadpool_postgres::Manager::new(server.config.clone(), NoTls);
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .build()?;
        Ok(DeadpoolPostgres(pool))
    }

    async fn op(&self) -> Result<(), BoxError> {
        let client = self.0.get().await?;
        client.simple_query(QUERY).await?;
        Ok(())
    }

    async fn close(self) {
        // Drops the idle connections; their clients' tasks then say goodbye to the server.
        self.0.close();
    }
}

/// bb8-postgres.
#[derive(Clone)]
pub struct Bb8Postgres(bb8::Pool<bb8_postgres::PostgresConnectionManager<NoTls>>);

impl Contender<Postgres> for Bb8Postgres {
    const NAME: &'static str = "bb8-postgres";
    type Held = bb8::PooledConnection<'static, bb8_postgres::PostgresConnectionManager<NoTls>>;

    async fn checkout(&self) -> Result<Self::Held, BoxError> {
        Ok(self.0.get_owned().await?)
    }

    async fn build(server: &Postgres, size: usize) -> Result<Self, BoxError> {
        let manager = bb8_postgres::PostgresConnectionManager::new(server.config.clone(), NoTls);
        let pool = bb8::Pool::builder()
            .max_size(u32::try_from(size)?)
            .build(manager)
            .await?;
        Ok(Bb8Postgres(pool))
    }

    async fn op(&self) -> Result<(), BoxError> {
        let client = self.0.get().await?;
        client.simple_query(QUERY).await?;
        Ok(())
    }

    async fn close(self) {
        // bb8 has no close: the connections go when the last handle does, which is this one
        // (the benchmark's tasks have ended).
        drop(self);
    }
}

/// No pool: a new session for every operation.
#[derive(Clone)]
pub struct PerRequest {
    config: Arc<tokio_postgres::Config>,
    /// At most `size` sessions at once, as in the pools.
    gate: Arc<Semaphore>,
}

impl Contender<Postgres> for PerRequest {
    const NAME: &'static str = "connect per request";
    /// Nothing to open ahead.
    type Held = ();

    async fn checkout(&self) -> Result<(), BoxError> {
        Ok(())
    }

    async fn build(server: &Postgres, size: usize) -> Result<Self, BoxError> {
        Ok(PerRequest {
            config: Arc::new(server.config.clone()),
            gate: Arc::new(Semaphore::new(size)),
        })
    }

    async fn op(&self) -> Result<(), BoxError> {
        let _permit = self.gate.acquire().await?;
        let (client, connection) = self.config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        client.simple_query(QUERY).await?;
        // Dropping the client makes its connection send Terminate and end.
        drop(client);
        driver.await??;
        Ok(())
    }

    async fn close(self) {}
}

//! The `redis` suite: `PING` through pool-drivers, deadpool-redis and bb8-redis, and with a new
//! connection per request.

use std::sync::Arc;
use std::time::Duration;

use pool_drivers::redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use pool_drivers::redis::redis::{self, Client};
use pool_drivers::DriverConfig;
use tokio::sync::Semaphore;

use super::{BoxError, Contender, Kind, Lane, Plan, Server};

/// The Redis server, with a monitor connection.
pub struct Redis {
    url: String,
    client: Client,
    monitor: MultiplexedConnection,
}

/// `PING`, checking the answer so that a confused connection shows as an error.
async fn ping(conn: &mut impl ConnectionLike) -> Result<(), BoxError> {
    let pong: String = redis::cmd("PING").query_async(conn).await?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(format!("PING answered {pong:?}").into())
    }
}

impl Server for Redis {
    const NAME: &'static str = "redis";
    const URL_VAR: &'static str = "REDIS_URL";
    const DEFAULT_URL: &'static str = "redis://127.0.0.1:6379/";
    const WORK: &'static str = "`PING`";

    async fn connect(url: &str) -> Result<Self, BoxError> {
        let client = Client::open(url)?;
        let monitor = client.get_multiplexed_async_connection().await?;
        Ok(Redis {
            url: url.to_owned(),
            client,
            monitor,
        })
    }

    /// Clients are not told apart by name (every redis-rs client reports the same library),
    /// so the pools' connections are found by their ids.
    async fn open_sessions(&self, ids: &[u64]) -> Result<usize, BoxError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("ID")
            .arg(ids)
            .query_async(&mut self.monitor.clone())
            .await?;
        Ok(list.lines().filter(|l| !l.trim().is_empty()).count())
    }

    fn lanes() -> Vec<Lane<Self>> {
        vec![
            Lane::of::<Ours>(Kind::Ours),
            Lane::of::<DeadpoolRedis>(Kind::Peer),
            Lane::of::<Bb8Redis>(Kind::Peer),
            Lane::of::<PerRequest>(Kind::Baseline),
        ]
    }

    fn notes(plan: &Plan) -> Vec<String> {
        vec![
            format!(
                "{}: `max_size` {}, defaults otherwise. Per checkout: a `PING` check only for \
                 a connection unused for 500 ms (none under this load) and a `RESET` only \
                 after session-changing commands (none here), so no extra round trip.",
                Ours::NAME,
                plan.size
            ),
            format!(
                "{}: `max_size` {}, defaults otherwise: its recycle runs `UNWATCH` + `PING` \
                 (pipelined, one round trip) on every checkout.",
                DeadpoolRedis::NAME,
                plan.size
            ),
            format!(
                "{}: `max_size` {}, defaults otherwise: `test_on_check_out` is true, so a \
                 `PING` (one round trip) on every checkout.",
                Bb8Redis::NAME,
                plan.size
            ),
            format!(
                "{}: redis-rs `get_multiplexed_async_connection`, the `PING`, then drop, at \
                 most {} at once (a semaphore).",
                PerRequest::NAME,
                plan.size
            ),
        ]
    }
}

/// The server-side ids of `size` connections held at once (`CLIENT ID`).
async fn hold_all<C, F>(size: usize, mut get: impl FnMut() -> F) -> Result<Vec<u64>, BoxError>
where
    C: std::ops::DerefMut,
    C::Target: ConnectionLike + Sized,
    F: std::future::Future<Output = Result<C, BoxError>>,
{
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(get().await?);
    }
    let mut ids = Vec::with_capacity(size);
    for conn in &mut held {
        let id: u64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut **conn)
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Our pool.
#[derive(Clone)]
pub struct Ours(pool_drivers::redis::Pool);

impl Contender<Redis> for Ours {
    const NAME: &'static str = "pool-drivers";
    type Held = pool_drivers::redis::Connection;

    async fn checkout(&self) -> Result<Self::Held, BoxError> {
        Ok(self.0.get().await?)
    }

    async fn build(server: &Redis, size: usize) -> Result<Self, BoxError> {
        let mut config = pool_drivers::redis::Config::from_url(&server.url)?;
        config.pool.max_size = size;
        Ok(Ours(config.build_pool_lazy()?))
    }

    async fn op(&self) -> Result<(), BoxError> {
        let mut conn = self.0.get().await?;
        ping(&mut *conn).await
    }

    async fn sessions(&self, size: usize) -> Result<Vec<u64>, BoxError> {
        hold_all(size, || async { Ok(self.0.get().await?) }).await
    }

    async fn close(self) {
        self.0.close_and_wait(Duration::from_secs(5)).await;
    }
}

/// deadpool-redis.
#[derive(Clone)]
pub struct DeadpoolRedis(deadpool_redis::Pool);

impl Contender<Redis> for DeadpoolRedis {
    const NAME: &'static str = "deadpool-redis";
    type Held = deadpool_redis::Connection;

    async fn checkout(&self) -> Result<Self::Held, BoxError> {
        Ok(self.0.get().await?)
    }

    async fn build(server: &Redis, size: usize) -> Result<Self, BoxError> {
        let mut config = deadpool_redis::Config::from_url(server.url.clone());
        config.pool = Some(deadpool_redis::PoolConfig::new(size));
        Ok(DeadpoolRedis(
            config.create_pool(Some(deadpool_redis::Runtime::Tokio1))?,
        ))
    }

    async fn op(&self) -> Result<(), BoxError> {
        let mut conn = self.0.get().await?;
        ping(&mut conn).await
    }

    async fn sessions(&self, size: usize) -> Result<Vec<u64>, BoxError> {
        hold_all(size, || async { Ok(self.0.get().await?) }).await
    }

    async fn close(self) {
        self.0.close();
    }
}

/// bb8-redis.
#[derive(Clone)]
pub struct Bb8Redis(bb8::Pool<bb8_redis::RedisConnectionManager>);

impl Contender<Redis> for Bb8Redis {
    const NAME: &'static str = "bb8-redis";
    type Held = bb8::PooledConnection<'static, bb8_redis::RedisConnectionManager>;

    async fn checkout(&self) -> Result<Self::Held, BoxError> {
        Ok(self.0.get_owned().await?)
    }

    async fn build(server: &Redis, size: usize) -> Result<Self, BoxError> {
        let manager = bb8_redis::RedisConnectionManager::new(server.url.as_str())?;
        let pool = bb8::Pool::builder()
            .max_size(u32::try_from(size)?)
            .build(manager)
            .await?;
        Ok(Bb8Redis(pool))
    }

    async fn op(&self) -> Result<(), BoxError> {
        let mut conn = self.0.get().await?;
        ping(&mut *conn).await
    }

    async fn sessions(&self, size: usize) -> Result<Vec<u64>, BoxError> {
        hold_all(size, || async { Ok(self.0.get().await?) }).await
    }

    async fn close(self) {
        // bb8 has no close: the connections go with the last handle, this one.
        drop(self);
    }
}

/// No pool: a new connection for every operation.
#[derive(Clone)]
pub struct PerRequest {
    client: Client,
    /// At most `size` connections at once, as in the pools.
    gate: Arc<Semaphore>,
}

impl Contender<Redis> for PerRequest {
    const NAME: &'static str = "connect per request";
    /// Nothing to open ahead.
    type Held = ();

    async fn checkout(&self) -> Result<(), BoxError> {
        Ok(())
    }

    async fn build(server: &Redis, size: usize) -> Result<Self, BoxError> {
        Ok(PerRequest {
            client: server.client.clone(),
            gate: Arc::new(Semaphore::new(size)),
        })
    }

    async fn op(&self) -> Result<(), BoxError> {
        let _permit = self.gate.acquire().await?;
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        ping(&mut conn).await
    }

    async fn close(self) {}
}

//! The `mysql` suite: `SELECT 1` through pool-drivers and mysql_async's own pool, and with a
//! new connection per request.

use std::sync::Arc;
use std::time::Duration;

use pool_drivers::mysql::mysql_async::prelude::Queryable;
use pool_drivers::mysql::mysql_async::{
    self, Conn, Opts, OptsBuilder, PoolConstraints, PoolOpts, DEFAULT_POOL_CONSTRAINTS,
};
use pool_drivers::DriverConfig;
use tokio::sync::{Mutex, Semaphore};

use super::{BoxError, Contender, Kind, Lane, Plan, Server};

/// The command, as a text-protocol query: one round trip, the same bytes for both pools.
const QUERY: &str = "SELECT 1";

/// The MySQL (or MariaDB) server, with a monitor session.
pub struct Mysql {
    url: String,
    opts: Opts,
    /// The monitor's session; a lock because a query needs it mutably.
    monitor: Mutex<Conn>,
}

impl Server for Mysql {
    const NAME: &'static str = "mysql";
    const URL_VAR: &'static str = "MYSQL_URL";
    const DEFAULT_URL: &'static str = "mysql://root@127.0.0.1:3306/test";
    const WORK: &'static str = "`SELECT 1` (text protocol)";

    async fn connect(url: &str) -> Result<Self, BoxError> {
        let opts = Opts::from_url(url)?;
        let monitor = Conn::new(opts.clone()).await?;
        Ok(Mysql {
            url: url.to_owned(),
            opts,
            monitor: Mutex::new(monitor),
        })
    }

    /// Every client logs in as the same user, so the pools' sessions are found by their
    /// connection ids.
    async fn open_sessions(&self, ids: &[u64]) -> Result<usize, BoxError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        let count: Option<u64> = self
            .monitor
            .lock()
            .await
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN ({})",
                list.join(",")
            ))
            .await?;
        Ok(usize::try_from(count.unwrap_or(0))?)
    }

    fn lanes() -> Vec<Lane<Self>> {
        vec![
            Lane::of::<Ours>(Kind::Ours),
            Lane::of::<MysqlAsyncPool>(Kind::Peer),
            Lane::of::<PerRequest>(Kind::Baseline),
        ]
    }

    fn notes(plan: &Plan) -> Vec<String> {
        vec![
            format!(
                "{}: `max_size` {}, defaults otherwise. Per checkout: `COM_RESET_CONNECTION` \
                 before a used connection is handed out again (one round trip, which the \
                 caller waits for), and a `COM_PING` check only for a connection unused for \
                 500 ms (none under this load).",
                Ours::NAME,
                plan.size
            ),
            format!(
                "{}: `PoolConstraints` min {} (its default, capped at the size), max {}, \
                 defaults otherwise: `reset_connection` is true, so `COM_RESET_CONNECTION` \
                 on every return, run by the pool's background recycler (the caller does not \
                 wait for it, but the connection is busy meanwhile).",
                MysqlAsyncPool::NAME,
                DEFAULT_POOL_CONSTRAINTS.min().min(plan.size),
                plan.size
            ),
            format!(
                "{}: mysql_async `Conn::new`, the query, then `disconnect` (awaited), at \
                 most {} at once (a semaphore).",
                PerRequest::NAME,
                plan.size
            ),
        ]
    }
}

/// Connection ids of `size` connections held at once.
async fn hold_all<C, F>(size: usize, mut get: impl FnMut() -> F) -> Result<Vec<u64>, BoxError>
where
    C: std::ops::Deref<Target = Conn>,
    F: std::future::Future<Output = Result<C, BoxError>>,
{
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(get().await?);
    }
    Ok(held.iter().map(|c| u64::from(c.id())).collect())
}

/// Our pool.
#[derive(Clone)]
pub struct Ours(pool_drivers::mysql::Pool);

impl Contender<Mysql> for Ours {
    const NAME: &'static str = "pool-drivers";
    type Held = pool_drivers::mysql::Connection;

    async fn checkout(&self) -> Result<Self::Held, BoxError> {
        Ok(self.0.get().await?)
    }

    async fn build(server: &Mysql, size: usize) -> Result<Self, BoxError> {
        let mut config = pool_drivers::mysql::Config::from_url(&server.url)?;
        config.pool.max_size = size;
        Ok(Ours(config.build_pool_lazy()?))
    }

    async fn op(&self) -> Result<(), BoxError> {
        let mut conn = self.0.get().await?;
        conn.query_drop(QUERY).await?;
        Ok(())
    }

    async fn sessions(&self, size: usize) -> Result<Vec<u64>, BoxError> {
        hold_all(size, || async { Ok(self.0.get().await?) }).await
    }

    async fn close(self) {
        self.0.close_and_wait(Duration::from_secs(5)).await;
    }
}

/// mysql_async's own pool.
#[derive(Clone)]
pub struct MysqlAsyncPool(mysql_async::Pool);

/// mysql_async's pooled connection, as `hold_all` wants it.
struct Held(Conn);

impl std::ops::Deref for Held {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.0
    }
}

impl Contender<Mysql> for MysqlAsyncPool {
    const NAME: &'static str = "mysql_async::Pool";
    type Held = Conn;

    async fn checkout(&self) -> Result<Conn, BoxError> {
        Ok(self.0.get_conn().await?)
    }

    async fn build(server: &Mysql, size: usize) -> Result<Self, BoxError> {
        let min = DEFAULT_POOL_CONSTRAINTS.min().min(size);
        let constraints = PoolConstraints::new(min, size).ok_or("invalid pool constraints")?;
        let opts = OptsBuilder::from_opts(server.opts.clone())
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        Ok(MysqlAsyncPool(mysql_async::Pool::new(opts)))
    }

    async fn op(&self) -> Result<(), BoxError> {
        let mut conn = self.0.get_conn().await?;
        conn.query_drop(QUERY).await?;
        Ok(())
    }

    async fn sessions(&self, size: usize) -> Result<Vec<u64>, BoxError> {
        hold_all(size, || async { Ok(Held(self.0.get_conn().await?)) }).await
    }

    async fn close(self) {
        // Waits until every connection has said goodbye.
        let _ = self.0.disconnect().await;
    }
}

/// No pool: a new session for every operation.
#[derive(Clone)]
pub struct PerRequest {
    opts: Opts,
    /// At most `size` sessions at once, as in the pools.
    gate: Arc<Semaphore>,
}

impl Contender<Mysql> for PerRequest {
    const NAME: &'static str = "connect per request";
    /// Nothing to open ahead.
    type Held = ();

    async fn checkout(&self) -> Result<(), BoxError> {
        Ok(())
    }

    async fn build(server: &Mysql, size: usize) -> Result<Self, BoxError> {
        Ok(PerRequest {
            opts: server.opts.clone(),
            gate: Arc::new(Semaphore::new(size)),
        })
    }

    async fn op(&self) -> Result<(), BoxError> {
        let _permit = self.gate.acquire().await?;
        let mut conn = Conn::new(self.opts.clone()).await?;
        conn.query_drop(QUERY).await?;
        conn.disconnect().await?;
        Ok(())
    }

    async fn close(self) {}
}

//! Read/write splitting for PostgreSQL: the primary, its replicas and an admin role built from
//! one [`DatabaseConfig`], and WAL positions for read-your-writes.

use std::time::Duration;

use pool_roles::{AdminPool, Balance, DatabasePools, Fallback, ReadPool, Replication, WritePool};

use super::config::Config;
use super::connection::PgConnection;
use super::error::Error;
use super::manager::Manager;
use crate::settings::{duration, pool_from_env, url_from_env, var};
use crate::{DriverConfig, InvalidConfig};

/// The pools of one PostgreSQL database by role.
pub type Pools = DatabasePools<Manager>;
/// What [`Pools`]' checkouts fail with.
pub type PoolsError = pool_roles::Error<Error>;

/// The settings of a primary, its replicas and an admin role, for [`Pools`].
///
/// Each role is a whole [`Config`], so each has its own URL (credentials) and pool sizes.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use pool_drivers::postgres::DatabaseConfig;
///
/// let pools = DatabaseConfig::from_urls(
///     "postgres://app@primary/app",
///     &["postgres://app@replica-1/app", "postgres://app@replica-2/app"],
///     Some("postgres://admin@primary/app"),
/// )?
/// .build_pools_lazy()?;
/// let conn = pools.read().await?;
/// let rows = conn.query("SELECT 1", &[]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
pub struct DatabaseConfig {
    /// The primary, for writes.
    pub primary: Config,
    /// The replicas, for reads; none means reads go to the primary.
    #[cfg_attr(feature = "serde", serde(default))]
    pub replicas: Vec<Config>,
    /// The admin role, for migrations and DDL; its pool is small (2 connections unless its
    /// pool settings say otherwise).
    #[cfg_attr(feature = "serde", serde(default))]
    pub admin: Option<Config>,
    /// How reads are spread. Default round-robin.
    #[cfg_attr(feature = "serde", serde(default))]
    pub balance: Balance,
    /// What reads do when no replica is healthy. Default: use the primary.
    #[cfg_attr(feature = "serde", serde(default))]
    pub fallback: Fallback,
    /// How long a read waits on one replica before trying the next. Default 5 s.
    #[cfg_attr(feature = "serde", serde(default = "default_replica_timeout"))]
    pub replica_timeout: Duration,
    /// After a caller's write, its reads go to the primary for this long. Default `None`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub read_your_writes: Option<Duration>,
    /// Within that window, a replica that has replayed the write's WAL position may serve the
    /// read, waited for at most this long. Default `None`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub replay_wait: Option<Duration>,
}

#[cfg_attr(not(feature = "serde"), allow(dead_code))]
fn default_replica_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Connections of the admin role, unless its own settings say otherwise.
const ADMIN_MAX_SIZE: usize = 2;

impl DatabaseConfig {
    /// The roles from their URLs, every other setting at its default.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming the URL that is malformed.
    pub fn from_urls(
        primary: &str,
        replicas: &[&str],
        admin: Option<&str>,
    ) -> Result<Self, InvalidConfig> {
        let admin = admin.map(Config::from_url).transpose()?.map(|mut admin| {
            admin.pool.max_size = ADMIN_MAX_SIZE;
            admin
        });
        Ok(DatabaseConfig {
            primary: Config::from_url(primary)?,
            replicas: replicas
                .iter()
                .map(|url| Config::from_url(url))
                .collect::<Result<_, _>>()?,
            admin,
            balance: Balance::default(),
            fallback: Fallback::default(),
            replica_timeout: default_replica_timeout(),
            read_your_writes: None,
            replay_wait: None,
        })
    }

    /// Reads each role's URL and pool settings, and the read-your-writes settings, from the
    /// variables under `prefix` listed in the README's
    /// [environment table](https://github.com/pool-suite/pool-suite#environment-variables).
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming the variable that is missing or malformed.
    pub fn from_env(prefix: &str) -> Result<Self, InvalidConfig> {
        let role = |name: &str| format!("{prefix}_{name}");
        let primary = url_from_env(&role("PRIMARY"))?;
        let replicas = var(&role("REPLICA_URLS"))?.unwrap_or_default();
        let replicas: Vec<&str> = replicas
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        let admin = var(&role("ADMIN_URL"))?;
        let mut config = DatabaseConfig::from_urls(&primary, &replicas, admin.as_deref())?;
        pool_from_env(&role("PRIMARY"), &mut config.primary.pool)?;
        for replica in &mut config.replicas {
            pool_from_env(&role("REPLICA"), &mut replica.pool)?;
        }
        if let Some(admin) = &mut config.admin {
            pool_from_env(&role("ADMIN"), &mut admin.pool)?;
        }
        config.read_your_writes = duration(&role("READ_YOUR_WRITES"))?.flatten();
        config.replay_wait = duration(&role("REPLAY_WAIT"))?.flatten();
        Ok(config)
    }

    /// The pools, opening connections on demand (as [`DriverConfig::build_pool_lazy`] for
    /// each role).
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] for a role whose settings cannot work.
    pub fn build_pools_lazy(&self) -> Result<Pools, InvalidConfig> {
        let write = WritePool::new(self.primary.build_pool_lazy()?);
        let replicas = self
            .replicas
            .iter()
            .map(Config::build_pool_lazy)
            .collect::<Result<_, _>>()?;
        let read =
            ReadPool::configured(replicas, self.balance, self.fallback, self.replica_timeout);
        let mut pools = DatabasePools::new(write, read);
        if let Some(admin) = &self.admin {
            // Named apart from the primary, which it usually shares `host:port/database` with.
            let mut admin = admin.clone();
            if admin.pool.name.is_none() {
                admin.pool.name = Some(format!("{} (admin)", admin.default_pool_name()));
            }
            pools = pools.with_admin(AdminPool::new(admin.build_pool_lazy()?));
        }
        if let Some(window) = self.read_your_writes {
            pools = pools.read_your_writes(window);
        }
        if let Some(limit) = self.replay_wait {
            pools = pools.wait_for_replay(limit);
        }
        Ok(pools)
    }
}

/// WAL positions as bytes since `0/0`: the primary's current insert position, and how far a
/// replica has replayed (on a primary, which replays nothing, its current position).
impl Replication for Manager {
    async fn write_position(&self, conn: &mut PgConnection) -> Result<u64, Error> {
        position(conn, "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8").await
    }

    async fn replay_position(&self, conn: &mut PgConnection) -> Result<u64, Error> {
        // COALESCE evaluates its second argument only on a primary, where it is allowed.
        position(
            conn,
            "SELECT (COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn()) - '0/0'::pg_lsn)::int8",
        )
        .await
    }
}

async fn position(conn: &PgConnection, query: &str) -> Result<u64, Error> {
    let row = conn.query_one(query, &[]).await.map_err(Error::Postgres)?;
    let bytes: i64 = row.get(0);
    Ok(u64::try_from(bytes).unwrap_or(0))
}

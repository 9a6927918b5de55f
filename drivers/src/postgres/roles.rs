//! Read/write splitting for PostgreSQL: the primary, its replicas and an admin role built from
//! one [`DatabaseConfig`], and WAL positions for read-your-writes.

use std::time::Duration;

use pool_roles::{
    AdminPool, Balance, DatabasePools, Fallback, Lag, LagLimit, ReadPool, Replication, WritePool,
};

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
    /// A replica lagging past this limit leaves read rotation until it catches up (see
    /// [`Replication::replay_lag`] for what is measured). Default `None`: lag is not watched.
    #[cfg_attr(feature = "serde", serde(default))]
    pub lag_limit: Option<LagLimit>,
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
            lag_limit: None,
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
        config.lag_limit = lag_limit_from_env(prefix)?;
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
        let mut read =
            ReadPool::configured(replicas, self.balance, self.fallback, self.replica_timeout);
        if let Some(limit) = self.lag_limit {
            read = read.with_lag_limit(limit);
        }
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

/// `{prefix}_MAX_LAG_BYTES`, `{prefix}_MAX_LAG` and `{prefix}_LAG_CHECK_INTERVAL`: a limit
/// when either bound is set.
fn lag_limit_from_env(prefix: &str) -> Result<Option<LagLimit>, InvalidConfig> {
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    let bytes_name = name("MAX_LAG_BYTES");
    let max_bytes = var(&bytes_name)?
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| InvalidConfig::new(bytes_name.clone(), "is not a number of bytes"))
        })
        .transpose()?;
    let max_time = duration(&name("MAX_LAG"))?.flatten();
    if max_bytes.is_none() && max_time.is_none() {
        return Ok(None);
    }
    let mut limit = LagLimit {
        max_bytes,
        max_time,
        ..LagLimit::default()
    };
    if let Some(interval) = duration(&name("LAG_CHECK_INTERVAL"))?.flatten() {
        if interval.is_zero() {
            return Err(InvalidConfig::new(
                name("LAG_CHECK_INTERVAL"),
                "must be longer than zero",
            ));
        }
        limit.check_interval = interval;
    }
    Ok(Some(limit))
}

/// WAL positions as bytes since `0/0`: the primary's current insert position, and how far a
/// replica has replayed (on a primary, which replays nothing, its current position). The lag
/// is WAL received but not replayed (bytes), and the age of the last replayed transaction
/// while WAL waits to be replayed (time).
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

    async fn replay_lag(&self, conn: &mut PgConnection) -> Result<Lag, Error> {
        // On a primary both are NULL. Received WAL can trail replayed WAL (WAL restored from
        // an archive), hence the floor at zero. The time counts only while WAL waits: with
        // everything replayed, an idle primary would otherwise make the replica look late.
        let row = conn
            .query_one(
                "SELECT GREATEST(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::int8, \
                 CASE WHEN pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn() \
                 THEN GREATEST(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::float8 \
                 ELSE 0 END",
                &[],
            )
            .await
            .map_err(Error::Postgres)?;
        let bytes: Option<i64> = row.get(0);
        let seconds: Option<f64> = row.get(1);
        let Some(bytes) = bytes else {
            return Ok(Lag::NONE);
        };
        Ok(Lag {
            bytes: Some(u64::try_from(bytes).unwrap_or(0)),
            time: seconds.and_then(|s| Duration::try_from_secs_f64(s).ok()),
        })
    }
}

async fn position(conn: &PgConnection, query: &str) -> Result<u64, Error> {
    let row = conn.query_one(query, &[]).await.map_err(Error::Postgres)?;
    let bytes: i64 = row.get(0);
    Ok(u64::try_from(bytes).unwrap_or(0))
}

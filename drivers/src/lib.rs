//! Ready connection pools built on [`pool_core`].
//!
//! This crate re-exports the whole of `pool-core`, so an application depends on one crate.
//! Each driver lives in its own module behind a feature flag of the same name, and re-exports
//! the driver crate it wraps:
//!
//! | feature | module | pooled connection |
//! |---|---|---|
//! | `postgres` | `postgres` | `PgConnection`: a `tokio_postgres::Client` with a prepared-statement cache |
//! | `mysql` | `mysql` | a `mysql_async::Conn` (MySQL and MariaDB) |
//! | `redis` | `redis` | `RedisConnection`: one Redis connection that tracks session state |
//! | `redis-cluster` | `redis::cluster` | a Redis Cluster connection |
//! | `tcp` | `tcp` | a `tokio::net::TcpStream` |
//! | `sqlx-postgres`, `sqlx-mysql`, `sqlx-sqlite` | `sqlx::postgres`, `sqlx::mysql`, `sqlx::sqlite` | one sqlx connection |
//!
//! Every module has the same shape: a `Config` (from a URL, from the environment, and
//! `serde::Deserialize` under `serde`; its `Debug` never shows a password) whose
//! `build_pool_lazy()` gives a ready pool, the `Manager` behind it, the aliases `Pool`,
//! `Connection` and `PoolError`, and a re-export of the driver crate.
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! # #[cfg(feature = "postgres")]
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = pool_drivers::postgres::Config::from_url("postgres://app@127.0.0.1/app")?.build_pool_lazy()?;
//! let conn = pool.get().await?;
//! let rows = conn.query("SELECT 1", &[]).await?;
//! # Ok(()) }
//! ```
//!
//! `roles` adds [`roles`](https://docs.rs/pool-roles) (typed read / write / admin pools over any
//! of these, and `postgres::DatabaseConfig`), `tls` adds TLS (rustls with the ring provider) to the PostgreSQL driver, `serde` derives `Deserialize` for
//! every configuration, and `full` turns everything on.

pub use pool_core::*;

/// Typed read / write / admin pools: the `pool-roles` crate, under the `roles` feature.
#[cfg(feature = "roles")]
pub use pool_roles as roles;

#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "tcp",
    feature = "_sqlx"
))]
#[macro_use]
mod aliases;
mod driver_config;
mod invalid_config;
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "tcp",
    feature = "_sqlx"
))]
mod settings;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
mod unknown_host;

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "_sqlx")]
pub mod sqlx;
#[cfg(feature = "tcp")]
pub mod tcp;

pub use driver_config::{BuildPoolError, DriverConfig};
pub use invalid_config::InvalidConfig;

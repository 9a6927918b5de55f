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
//! Every module has the same shape: a `Config` implementing `DriverConfig` (from a URL, from
//! the environment, and `serde::Deserialize` under `serde`; its `Debug` never shows a password)
//! whose `build_pool()` opens the initial connections before it returns and
//! `build_pool_lazy()` opens them on demand (the verbs of pool-core's `Builder`), the `Manager`
//! behind it, the aliases `Pool`, `Connection` and `PoolError`, and a re-export of the driver
//! crate.
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
//! `roles` adds the `roles` module (the `pool-roles` crate: typed read / write / admin pools
//! over any of these) and `postgres::DatabaseConfig`, `tls` adds TLS (rustls with the ring
//! provider) to the PostgreSQL driver, `serde` derives `Deserialize` for every configuration,
//! and `full` turns everything on.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(unreachable_pub, missing_debug_implementations)]

pub use pool_core::*;

/// Typed read / write / admin pools: the `pool-roles` crate, under the `roles` feature.
#[cfg(feature = "roles")]
#[cfg_attr(docsrs, doc(cfg(feature = "roles")))]
pub use pool_roles as roles;

/// Compiles the items given when any driver is: what the drivers share.
macro_rules! for_drivers {
    ($($item:item)*) => {
        $(
            #[cfg(any(
                feature = "postgres",
                feature = "mysql",
                feature = "redis",
                feature = "tcp",
                feature = "_sqlx"
            ))]
            $item
        )*
    };
}

for_drivers! {
    #[macro_use]
    mod aliases;
    mod driver_config;
    mod settings;
    pub use driver_config::{BuildPoolError, DriverConfig};
}
mod invalid_config;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
mod unknown_host;

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "_sqlx")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "sqlx-postgres",
        feature = "sqlx-mysql",
        feature = "sqlx-sqlite"
    )))
)]
pub mod sqlx;
#[cfg(feature = "tcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "tcp")))]
pub mod tcp;

pub use invalid_config::InvalidConfig;

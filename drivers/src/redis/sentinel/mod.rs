//! Redis behind Sentinel (feature `redis-sentinel`): a pool of connections to whichever
//! server the Sentinels currently name as the master of a service, or to its replicas.
//!
//! Each connect asks the Sentinels (`SENTINEL get-master-addr-by-name`, or
//! `SENTINEL replicas` for a replica pool), in turn, starting with the one that answered
//! last; connects to the server named; and checks with `ROLE` that it has the wanted role
//! before the connection is pooled. On checkout the pool sends `ROLE` instead of `PING`, so a
//! pooled connection whose server changed role is closed rather than handed out. After a
//! failover:
//!
//! - Sentinel closes the old master's client connections as it demotes it; the pool sees the
//!   sockets end and opens new connections, which ask the Sentinels again and reach the new
//!   master.
//! - A connection that a write finds demoted (the reply is `READONLY`) is closed when it goes
//!   back to the pool ([`RedisConnection::saw_read_only`](super::RedisConnection::saw_read_only)).
//! - While the Sentinels switch over, connects fail with transient errors
//!   ([`Error::WrongRole`](super::Error::WrongRole), [`Error::NoServer`](super::Error::NoServer)):
//!   the pool retries them within the caller's acquire timeout, so callers wait through the
//!   switch rather than fail, once their connection in use has failed.
//!
//! A master accepts writes until Sentinel demotes it, and a write acknowledged in that last
//! moment is lost when it resynchronises from the new master: send `WAIT 1 <ms>` after writes
//! that must survive a failover and treat a reply of 0 as not acknowledged.
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! use pool_drivers::redis::redis::AsyncCommands;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = pool_drivers::redis::sentinel::SentinelConfig::from_url(
//!     "redis+sentinel://:secret@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster/0",
//! )?
//! .build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! let _: () = conn.set("greeting", "hello").await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod discovery;
mod manager;

pub use config::{SentinelConfig, ServerRole};
pub use manager::SentinelManager;

driver_aliases!(
    SentinelManager,
    pool: "A pool of connections to the servers a set of Redis Sentinels names.",
    connection: "A connection checked out of a [`Pool`]; derefs to [`RedisConnection`](super::RedisConnection).",
);

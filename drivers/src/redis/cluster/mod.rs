//! Redis Cluster pools (feature `redis-cluster`).
//!
//! A pooled connection is a [`ClusterConnection`]: one
//! [`cluster_async::ClusterConnection`](::redis::cluster_async::ClusterConnection) (which keeps
//! a connection to every node and routes each command by its key), wrapped the same way as
//! [`RedisConnection`](super::RedisConnection) so the pool knows what was done with it.
//!
//! - **check** is `PING`.
//! - **reset** has nothing to do: a cluster connection has no database to return to, and a
//!   `MULTI` or `WATCH` lives on whichever node the command was routed to, where a later
//!   `RESET` could not be sent reliably. So a connection whose borrower left a transaction or
//!   watch open, or changed other session state, is closed on return instead of pooled.
//! - **has_broken** also says yes when a reply was never read (dropped future), after an
//!   I/O or protocol error, after commands such as `SUBSCRIBE` or `MONITOR`, and once the
//!   runtime the connection was opened on has shut down (the cluster client's task went with
//!   it). A node that closes its socket is the cluster client's to reconnect.
//! - **blocking commands** (`BLPOP`, `XREAD BLOCK`, `WAIT`, ...) need a server-side timeout
//!   shorter than any client-side one: a dropped request's sockets belong to the cluster
//!   client and are not closed at the moment the future is dropped (see
//!   [`ClusterConnection`]).
//!
//! # Examples
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! use pool_drivers::redis::redis::AsyncCommands;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = pool_drivers::redis::cluster::Config::from_url(
//!     "redis://127.0.0.1:7000,redis://127.0.0.1:7001,redis://127.0.0.1:7002",
//! )?;
//! let pool = config.build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! let _: () = conn.set("greeting", "hello").await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod connection;
mod manager;

pub use super::Error;
pub use config::Config;
pub use connection::ClusterConnection;
pub use manager::Manager;

driver_aliases!(
    Manager,
    pool: "A pool of Redis Cluster connections.",
    connection: "A connection checked out of a [`Pool`]; derefs to [`ClusterConnection`].",
);

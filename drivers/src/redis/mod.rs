//! Redis pools over single [`redis`] connections, Redis Cluster pools behind the
//! `redis-cluster` feature ([`cluster`]), and pools that follow a Sentinel-managed master (or
//! its replicas) behind the `redis-sentinel` feature (`sentinel`).
//!
//! A pooled connection is a [`RedisConnection`]: one socket to the server (a
//! [`MultiplexedConnection`](::redis::aio::MultiplexedConnection), the only async connection
//! redis 1.x offers, used by one borrower at a time) wrapped so the pool knows what was done
//! with it. It implements [`ConnectionLike`](::redis::aio::ConnectionLike), so
//! [`AsyncCommands`](::redis::AsyncCommands) methods work on the guard directly and
//! `cmd(..).query_async(&mut *conn)` works with a reborrow.
//!
//! - **check** is `PING`.
//! - **reset** costs nothing unless the borrower changed the session: after `MULTI` not ended
//!   by `EXEC`/`DISCARD`, a `WATCH` still in force, `SELECT`, `AUTH`, `HELLO`, `CLIENT ...`,
//!   `READONLY`/`READWRITE`, it sends `RESET` (Redis 6.2+) pipelined with the connection's own
//!   setup (`AUTH`/`HELLO`, `SELECT` of the configured database): one round trip. On an older
//!   server `RESET` fails, and the connection is closed and replaced instead.
//! - **has_broken** says yes when a reply was never read (the request's future was dropped or
//!   timed out), when the connection failed with an I/O or protocol error, after commands
//!   that leave a connection unusable for plain requests (`SUBSCRIBE`, `MONITOR`, `QUIT`,
//!   `CLIENT REPLY`, ...), and when the connection's I/O task has ended: the server closed the
//!   socket (`CLIENT KILL`, `timeout`, a restart) or the runtime the task ran on shut down.
//!   Such connections are closed, never handed out again, even within
//!   [`skip_check_within`](pool_core::Config::skip_check_within) of their last use.
//!
//! # Cancellation and blocking commands
//!
//! Dropping a request's future before its reply arrives (a `tokio::time::timeout` around it,
//! a `select!` that took another branch) shuts the connection's socket down at that moment,
//! from the future's `Drop`, and so does a request that ends without a reply from the server
//! (the configured response timeout, an I/O error). The server then drops the client and
//! whatever command it was still running for it, instead of finishing it for a reader that is
//! gone.
//!
//! That cannot undo what the server did before it saw the socket close. Give blocking commands
//! (`BLPOP`, `BRPOP`, `BLMOVE`, `BZPOPMIN`, `XREAD BLOCK`, `XREADGROUP BLOCK`, `WAIT`, ...) a
//! server-side timeout shorter than any client-side one, so they end with a reply the caller
//! reads: an element pushed in the instant between the caller giving up and the server seeing
//! the close would otherwise be popped for nobody.
//!
//! ```no_run
//! use std::time::Duration;
//! use pool_drivers::redis::redis::AsyncCommands;
//!
//! # async fn run(pool: pool_drivers::redis::Pool) -> Result<(), Box<dyn std::error::Error>> {
//! let mut conn = pool.get().await?;
//! // The server gives up after 1 s, before the caller's 2 s: no element is lost either way.
//! let popped: Option<(String, String)> =
//!     tokio::time::timeout(Duration::from_secs(2), conn.blpop("jobs", 1.0)).await??;
//! # let _ = popped;
//! # Ok(())
//! # }
//! ```
//!
//! # Examples
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! use pool_drivers::redis::redis::AsyncCommands;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = pool_drivers::redis::Config::from_url("redis://127.0.0.1:6379/")?.build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! let _: () = conn.set("greeting", "hello").await?;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "redis-cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
pub mod cluster;
mod config;
mod connection;
mod error;
mod manager;
#[cfg(feature = "redis-sentinel")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-sentinel")))]
pub mod sentinel;
mod session;
mod socket;

pub use ::redis;
pub use config::Config;
pub use connection::RedisConnection;
pub use error::Error;
pub use manager::Manager;

driver_aliases!(
    Manager,
    pool: "A pool of Redis connections.",
    connection: "A connection checked out of a [`Pool`]; derefs to [`RedisConnection`].",
);

//! PostgreSQL pools over [`tokio_postgres`].
//!
//! A pooled connection is a [`PgConnection`]: it derefs to a [`tokio_postgres::Client`] and adds a
//! per-connection prepared-statement cache ([`PgConnection::prepare_cached`]) and a
//! borrow-scoped [`CancelHandle`] ([`PgConnection::cancel_handle`]), the one way to cancel a
//! query on a pooled connection: the client's own `cancel_token()` is inert by design, so a
//! token kept past the borrow cannot cancel the next borrower's query.
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = pool_drivers::postgres::Config::from_url("postgres://postgres@127.0.0.1/test")?
//!     .build_pool_lazy()?;
//! let conn = pool.get().await?;
//! let rows = conn.query("SELECT 1::INT4", &[]).await?;
//! # Ok(()) }
//! ```
//!
//! What the pool does with a connection:
//!
//! - **check** (on checkout, see [`Check`]): an empty query, one round trip, or only a look at
//!   whether the socket is closed.
//! - **reset** (before a used connection is handed out again): waits for the reply of any
//!   request whose future was dropped mid-flight (until the request is
//!   [`Config::drain_timeout`] old, default 1 s; past that the connection is closed and its
//!   request cancelled), then rolls back any transaction left open or aborted and runs the
//!   configured [`Cleanup`], all in one simple-query round trip. When the last
//!   `ReadyForQuery` said the session was idle outside a transaction and no clean-up is
//!   configured, reset sends nothing at all.
//! - **broken on return**: a closed socket, a cancel sent through a [`CancelHandle`] during
//!   the borrow (it may reach the server late, so the session is not reused), an abandoned
//!   request already older than [`Config::drain_timeout`], or a result left part-read while its
//!   rows were arriving (the rest could be huge).
//!
//! The driver watches the message stream under the client to know what it needs (transaction
//! status, unanswered requests, the cancel key); for Unix-socket hosts or `hostaddr` without a
//! host name it cannot, and then reset always sends `ROLLBACK` (which waits behind an abandoned
//! request, within the pool's `reset_timeout`) and the client's `cancel_token()` stays live.

mod cancel;
mod config;
mod connection;
mod credentials;
mod error;
mod manager;
#[cfg(feature = "roles")]
mod roles;
mod statement_stats;
mod stream;
mod target;
#[cfg(feature = "tls")]
mod tls;

pub use tokio_postgres;

pub use cancel::{CancelError, CancelHandle};
pub use config::{
    Check, Cleanup, Config, SslMode, DEFAULT_APPLICATION_NAME, DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_STATEMENT_CACHE_CAPACITY,
};
pub use connection::PgConnection;
pub use credentials::{CredentialError, CredentialFuture, CredentialSource, Credentials};
pub use error::Error;
pub use manager::Manager;
#[cfg(feature = "roles")]
#[cfg_attr(docsrs, doc(cfg(feature = "roles")))]
pub use roles::{DatabaseConfig, Pools, PoolsError};
pub use statement_stats::StatementCacheStats;

driver_aliases!(
    Manager,
    pool: "A pool of PostgreSQL connections.",
    connection: "A connection checked out of a [`Pool`]; derefs to [`PgConnection`] and so to [`tokio_postgres::Client`].",
);

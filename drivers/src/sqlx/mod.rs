//! Pools of single sqlx connections (`PgConnection`, `MySqlConnection`, `SqliteConnection`),
//! so code written against sqlx gets this crate's pool: fast answers for permanent errors,
//! timeouts that say why, statistics, `min_idle`, lifetimes, resizing.
//!
//! The generic [`Config`], [`Manager`], [`Pool`] and [`Connection`] take the connection type as
//! a parameter; each database also has a module of plain aliases (`postgres`, `mysql`,
//! `sqlite`, behind the features `sqlx-postgres`, `sqlx-mysql`, `sqlx-sqlite`). A checked-out
//! connection derefs to the sqlx connection, so it is an executor as it is:
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! # #[cfg(feature = "sqlx-postgres")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use pool_drivers::sqlx::postgres::Config;
//!
//! let pool = Config::from_url("postgres://postgres@127.0.0.1/test")?.build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! let (one,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(&mut *conn).await?;
//! # Ok(()) }
//! ```
//!
//! # Check, reset and dropped futures
//!
//! - **check** is sqlx's [`ping`](::sqlx::Connection::ping).
//! - **reset** ends any transaction the previous borrower left open, whether it was begun with
//!   [`begin`](::sqlx::Connection::begin) or with a plain `BEGIN` statement. sqlx itself
//!   only *queues* the `ROLLBACK` of a dropped [`Transaction`](::sqlx::Transaction) and sends it
//!   with the next statement; reset is that next statement, so the rollback has happened before
//!   anyone else gets the connection. What reset sends for each database is described in its
//!   module. Other session state (settings, temporary tables) is left as it is.
//! - **has_broken** always says no: sqlx does not expose whether a future was dropped in the
//!   middle of a query. sqlx connections recover from that by themselves: the next statement
//!   first reads and discards the rest of the interrupted reply. That next statement is reset,
//!   bounded by the pool's `reset_timeout`, so a connection that cannot recover is closed
//!   instead of being handed out.

mod config;
#[cfg(feature = "sqlx-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-mysql")))]
pub mod mysql;
#[cfg(feature = "sqlx-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-postgres")))]
pub mod postgres;
#[cfg(feature = "sqlx-sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-sqlite")))]
pub mod sqlite;

use std::fmt;
use std::future::Future;
use std::io;

use pool_core::ErrorKind;

pub use config::Config;
/// The sqlx crate this module is built on, for the connection types, queries and executors.
pub use sqlx;

/// A pool of sqlx connections of type `C`.
pub type Pool<C> = pool_core::Pool<Manager<C>>;
/// A sqlx connection checked out of a [`Pool`]; derefs to `C`.
pub type Connection<C> = pool_core::PooledConnection<Manager<C>>;
/// The error of [`Pool::get`](pool_core::Pool::get) for a sqlx pool.
pub type PoolError = pool_core::Error<::sqlx::Error>;

mod sealed {
    pub trait Sealed {}
}

/// A sqlx connection type this crate can pool: `PgConnection`, `MySqlConnection` or
/// `SqliteConnection` (each with its feature).
///
/// Sealed: what `reset` sends and which errors are permanent is specific to each database.
pub trait SqlxConnection: ::sqlx::Connection + sealed::Sealed + 'static {
    /// The database's name, for messages.
    const NAME: &'static str;
    /// The URL schemes its URLs start with (`postgres://`, `sqlite:`).
    const SCHEMES: &'static [&'static str];

    /// Ends any transaction left open and anything a dropped future left half-done.
    #[doc(hidden)]
    fn end_transaction(&mut self) -> impl Future<Output = Result<(), ::sqlx::Error>> + Send;

    /// After `end_transaction`: returns the session to how it started, as far as sqlx lets
    /// the database do it (the full reset of [`Recycle::Checked`](pool_core::Recycle::Checked)).
    #[doc(hidden)]
    fn discard_session(&mut self) -> impl Future<Output = Result<(), ::sqlx::Error>> + Send;

    /// Whether a server error returned while connecting cannot be fixed by retrying.
    #[doc(hidden)]
    fn is_permanent(error: &dyn ::sqlx::error::DatabaseError) -> bool;
}

/// Opens, checks and resets sqlx connections of type `C` for a [`Pool`].
///
/// Made by [`Config::manager`](crate::DriverConfig::manager), or by [`Manager::new`] from connect options built in code:
///
/// ```
/// # #[cfg(feature = "sqlx-sqlite")] {
/// use pool_drivers::sqlx::sqlx::sqlite::SqliteConnectOptions;
/// use pool_drivers::sqlx::sqlite::{Manager, Pool};
///
/// let options = SqliteConnectOptions::new()
///     .filename("app.db")
///     .create_if_missing(true);
/// let builder = Pool::builder(Manager::new(options)).max_size(4);
/// # }
/// ```
pub struct Manager<C: SqlxConnection> {
    options: C::Options,
}

impl<C: SqlxConnection> Manager<C> {
    /// A manager that connects with `options`.
    pub fn new(options: C::Options) -> Self {
        Manager { options }
    }

    /// The options connections are opened with.
    pub fn options(&self) -> &C::Options {
        &self.options
    }
}

impl<C: SqlxConnection> fmt::Debug for Manager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // sqlx's connect options print their password, so they are left out.
        f.debug_struct("Manager")
            .field("database", &C::NAME)
            .finish_non_exhaustive()
    }
}

impl<C: SqlxConnection> pool_core::Manager for Manager<C> {
    type Connection = C;
    type Error = ::sqlx::Error;

    async fn connect(&self) -> Result<C, ::sqlx::Error> {
        C::connect_with(&self.options).await
    }

    async fn check(&self, conn: &mut C) -> Result<(), ::sqlx::Error> {
        conn.ping().await
    }

    async fn reset(&self, conn: &mut C) -> Result<(), ::sqlx::Error> {
        conn.end_transaction().await?;
        // sqlx counts the transactions it began; a count still above zero (a `Transaction`
        // that was forgotten rather than dropped) would make its next `begin` a savepoint.
        if conn.is_in_transaction() {
            return Err(::sqlx::Error::Protocol(
                "sqlx still counts an open transaction after the rollback".into(),
            ));
        }
        Ok(())
    }

    /// [`reset`](pool_core::Manager::reset), then what the database offers to return the
    /// session to how it started: on PostgreSQL, sqlx's statement cache is cleared (closing
    /// its statements on the server) and `DISCARD ALL` sent; on MySQL and SQLite nothing more,
    /// so there it is the same as `reset` (sqlx cannot send MySQL's `COM_RESET_CONNECTION`,
    /// and SQLite has no statement that resets a connection: its temporary tables, `PRAGMA`s
    /// and attached databases stay).
    async fn full_reset(&self, conn: &mut C) -> Result<(), ::sqlx::Error> {
        pool_core::Manager::reset(self, conn).await?;
        conn.discard_session().await
    }

    fn classify(&self, error: &::sqlx::Error) -> ErrorKind {
        classify::<C>(error)
    }
}

/// Which connect errors retrying cannot fix.
fn classify<C: SqlxConnection>(error: &::sqlx::Error) -> ErrorKind {
    use ::sqlx::Error as E;
    match error {
        // A bad option, TLS that cannot work, or a server that speaks another protocol
        // (a MySQL URL pointed at PostgreSQL) stays that way.
        E::Configuration(_) | E::Tls(_) | E::Protocol(_) => ErrorKind::Permanent,
        E::Database(e) if C::is_permanent(&**e) => ErrorKind::Permanent,
        E::Io(e) if is_unknown_host(e) => ErrorKind::Permanent,
        _ => ErrorKind::Transient,
    }
}

/// sqlx resolves host names through the standard library, whose resolver errors carry no
/// `ErrorKind` of their own; their message is the only mark.
fn is_unknown_host(error: &io::Error) -> bool {
    error
        .to_string()
        .starts_with("failed to lookup address information")
}

//! MySQL and MariaDB pools over [`mysql_async`] connections.
//!
//! A pooled connection is a plain [`mysql_async::Conn`] (the guard derefs to it), opened with
//! [`Conn::new`](mysql_async::Conn::new): `mysql_async`'s own pool is never used.
//!
//! - **check** is `COM_PING`, one round trip.
//! - **reset** is `COM_RESET_CONNECTION` (MySQL 5.7.3+, MariaDB 10.2.4+): it rolls back an open
//!   transaction and clears session variables, temporary tables, user locks and prepared
//!   statements. On older servers `COM_CHANGE_USER` with the same credentials does the same.
//! - **has_broken** says yes when a request's future was dropped mid-flight: `mysql_async`
//!   marks a connection disconnected for the length of every request, so a request that never
//!   finished leaves that mark behind and the connection is closed instead of pooled. It also
//!   says yes when a result was left unread (rows or further result sets of a `query_iter` or
//!   `exec_iter` not read to the end): otherwise the next borrower's reset would first read and
//!   discard every remaining row, however many millions there are.
//!
//! # Unread results
//!
//! Closing a connection means dropping its [`Conn`](mysql_async::Conn), and `mysql_async`
//! offers no way to close one without first reading what the server is still sending: its
//! `Drop` does that in a task of its own, then disconnects. No borrower waits for it, but that
//! task keeps a runtime thread busy and the server session open until the last row has
//! arrived. When only the first rows are wanted, say so in the query (`LIMIT`) rather than
//! dropping the rest.
//!
//! # Examples
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! use pool_drivers::mysql::mysql_async::prelude::Queryable;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = pool_drivers::mysql::Config::from_url("mysql://root@127.0.0.1:3306/test")?.build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! let one: Option<i64> = conn.query_first("SELECT 1").await?;
//! # assert_eq!(one, Some(1));
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod manager;

pub use config::Config;
pub use error::Error;
pub use manager::Manager;
pub use mysql_async;

driver_aliases!(
    Manager,
    pool: "A pool of MySQL connections.",
    connection: "A connection checked out of a [`Pool`]; derefs to [`mysql_async::Conn`].",
);

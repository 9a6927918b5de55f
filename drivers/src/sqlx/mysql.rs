//! sqlx's [`MySqlConnection`] pooled, for MySQL and MariaDB (feature `sqlx-mysql`).
//!
//! Reset sends `ROLLBACK`, which the server accepts silently when no transaction is open, so
//! no question needs asking first. (sqlx offers no way to send `COM_RESET_CONNECTION`, so
//! session variables, temporary tables and user locks are left as they are, even by the full
//! reset of [`Recycle::Checked`](pool_core::Recycle::Checked).)
//!
//! Connect errors that are permanent: access denied (1044, 1045, 1698), unknown database
//! (1049), host not allowed (1130), an authentication plugin the client does not support
//! (1251, 1524), a locked account (3118, 4151). Too many connections (1040, 1203, 1226) is
//! transient.
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = pool_drivers::sqlx::mysql::Config::from_url("mysql://root@127.0.0.1/test")?
//!     .build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! sqlx::query("SELECT 1").execute(&mut *conn).await?;
//! # Ok(()) }
//! ```

use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::Executor;

pub use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};

/// Settings of a pool of [`MySqlConnection`]s.
pub type Config = super::Config<MySqlConnection>;
/// Opens, checks and resets [`MySqlConnection`]s.
pub type Manager = super::Manager<MySqlConnection>;
driver_aliases!(
    Manager,
    pool: "A pool of [`MySqlConnection`]s.",
    connection: "A [`MySqlConnection`] checked out of a [`Pool`].",
);

const PERMANENT: &[u16] = &[1044, 1045, 1049, 1130, 1251, 1524, 1698, 3118, 4151];

impl super::sealed::Sealed for MySqlConnection {}

impl super::SqlxConnection for MySqlConnection {
    const NAME: &'static str = "MySQL";
    const SCHEMES: &'static [&'static str] = &["mysql://", "mariadb://"];

    async fn end_transaction(&mut self) -> Result<(), sqlx::Error> {
        Executor::execute(&mut *self, "ROLLBACK").await?;
        Ok(())
    }

    async fn discard_session(&mut self) -> Result<(), sqlx::Error> {
        // No SQL statement does what `COM_RESET_CONNECTION` does, and sqlx cannot send it.
        Ok(())
    }

    fn is_permanent(error: &dyn DatabaseError) -> bool {
        error
            .try_downcast_ref::<MySqlDatabaseError>()
            .is_some_and(|e| PERMANENT.contains(&e.number()))
    }
}

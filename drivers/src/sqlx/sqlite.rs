//! sqlx's [`SqliteConnection`] pooled (feature `sqlx-sqlite`).
//!
//! Reset sends `ROLLBACK` and accepts SQLite's "no transaction is active" answer: SQLite has
//! no SQL to ask whether a transaction is open, and the statement runs in-process, so the
//! failed attempt costs next to nothing.
//!
//! Connect errors that are permanent: a file that cannot be opened or created
//! (`SQLITE_CANTOPEN`), no permission (`SQLITE_PERM`, `SQLITE_READONLY`, `SQLITE_AUTH`), and
//! a file that is not a database or is corrupt (`SQLITE_NOTADB`, `SQLITE_CORRUPT`). A busy or
//! locked database is transient.
//!
//! An in-memory database (`sqlite::memory:`) is shared by all connections of one pool and
//! lives while at least one of them is open; set `min_idle` to 1 to keep it.
//!
//! ```
//! use pool_drivers::DriverConfig;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = pool_drivers::sqlx::sqlite::Config::from_url("sqlite::memory:")?.build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! let (n,): (i64,) = sqlx::query_as("SELECT 1 + 1").fetch_one(&mut *conn).await?;
//! assert_eq!(n, 2);
//! # Ok(()) }
//! ```

use sqlx::error::DatabaseError;
use sqlx::Executor;

pub use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// Settings of a pool of [`SqliteConnection`]s.
pub type Config = super::Config<SqliteConnection>;
/// Opens, checks and resets [`SqliteConnection`]s.
pub type Manager = super::Manager<SqliteConnection>;
driver_aliases!(
    Manager,
    pool: "A pool of [`SqliteConnection`]s.",
    connection: "A [`SqliteConnection`] checked out of a [`Pool`].",
);

/// Primary result codes (the low byte of the extended code) that retrying cannot fix.
const PERMANENT: &[i64] = &[
    3,  // SQLITE_PERM
    8,  // SQLITE_READONLY
    11, // SQLITE_CORRUPT
    14, // SQLITE_CANTOPEN
    23, // SQLITE_AUTH
    26, // SQLITE_NOTADB
];

impl super::sealed::Sealed for SqliteConnection {}

impl super::SqlxConnection for SqliteConnection {
    const NAME: &'static str = "SQLite";
    const SCHEMES: &'static [&'static str] = &["sqlite:"];

    async fn end_transaction(&mut self) -> Result<(), sqlx::Error> {
        match Executor::execute(&mut *self, "ROLLBACK").await {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn discard_session(&mut self) -> Result<(), sqlx::Error> {
        // SQLite has no statement that resets a connection.
        Ok(())
    }

    fn is_permanent(error: &dyn DatabaseError) -> bool {
        error
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|code| PERMANENT.contains(&(code & 0xff)))
    }
}

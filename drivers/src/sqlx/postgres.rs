//! sqlx's [`PgConnection`] pooled (feature `sqlx-postgres`).
//!
//! Reset asks the server whether a transaction block is open, with one query that neither
//! fails nor warns when none is (`SELECT 1 WHERE transaction_timestamp() <>
//! statement_timestamp()`: the two differ only inside a block begun by an earlier statement),
//! and sends `ROLLBACK` when one is, or when the transaction is aborted. Sending `ROLLBACK`
//! every time would make the server log a warning on every checkout.
//!
//! The full reset ([`Recycle::Checked`](pool_core::Recycle::Checked)) then clears sqlx's
//! statement cache and sends `DISCARD ALL`.
//!
//! Connect errors that are permanent: wrong password (`28P01`), unknown role or no `pg_hba`
//! entry (`28000`), unknown database (`3D000`), no `CONNECT` privilege (`42501`), a rejected
//! startup option (`22023`, `42704`, `08P01`). Too many connections (`53300`) and a server
//! starting up or shutting down (`57P03`, `57P01`) are transient.
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = pool_drivers::sqlx::postgres::Config::from_url("postgres://postgres@127.0.0.1/test")?
//!     .build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! sqlx::query("SELECT 1").execute(&mut *conn).await?;
//! # Ok(()) }
//! ```

use sqlx::error::DatabaseError;
use sqlx::Executor;

pub use sqlx::postgres::{PgConnectOptions, PgConnection};

/// Settings of a pool of [`PgConnection`]s.
pub type Config = super::Config<PgConnection>;
/// Opens, checks and resets [`PgConnection`]s.
pub type Manager = super::Manager<PgConnection>;
driver_aliases!(
    Manager,
    pool: "A pool of [`PgConnection`]s.",
    connection: "A [`PgConnection`] checked out of a [`Pool`].",
);

/// `in_failed_sql_transaction`: any statement but `ROLLBACK` fails in an aborted transaction.
const ABORTED: &str = "25P02";
const PERMANENT: &[&str] = &[
    "28P01", "28000", "3D000", "42501", "22023", "42704", "08P01",
];

impl super::sealed::Sealed for PgConnection {}

impl super::SqlxConnection for PgConnection {
    const NAME: &'static str = "PostgreSQL";
    const SCHEMES: &'static [&'static str] = &["postgres://", "postgresql://"];

    async fn end_transaction(&mut self) -> Result<(), sqlx::Error> {
        // Statements without arguments go over the simple protocol, so the reset leaves
        // nothing in sqlx's statement cache.
        let open = match Executor::fetch_optional(
            &mut *self,
            "SELECT 1 WHERE transaction_timestamp() <> statement_timestamp()",
        )
        .await
        {
            Ok(row) => row.is_some(),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(ABORTED) => true,
            Err(e) => return Err(e),
        };
        if open {
            Executor::execute(&mut *self, "ROLLBACK").await?;
        }
        Ok(())
    }

    async fn discard_session(&mut self) -> Result<(), sqlx::Error> {
        // The server forgets every prepared statement, so sqlx must too; clearing first closes
        // them in the ordinary way.
        sqlx::Connection::clear_cached_statements(self).await?;
        Executor::execute(&mut *self, "DISCARD ALL").await?;
        Ok(())
    }

    fn is_permanent(error: &dyn DatabaseError) -> bool {
        error.code().is_some_and(|code| PERMANENT.contains(&&*code))
    }
}

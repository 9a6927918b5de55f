//! [`Replication`]: how far a server's replication has got, for read-your-writes and replica
//! lag limits.

use std::future::Future;

use pool_core::Manager;

use crate::lag::Lag;

/// A manager whose servers can say how far replication has got, as a position that only grows
/// (PostgreSQL's WAL LSN). With it, [`DatabasePools::read_for`](crate::DatabasePools::read_for)
/// can send a caller's read to a replica that has already replayed the caller's last write,
/// and [`ReadPool::with_lag_limit`](crate::ReadPool::with_lag_limit) can stop reading from a
/// replica that has fallen behind.
pub trait Replication: Manager {
    /// On the primary: the position just after everything written so far.
    fn write_position(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// On a replica: the position replayed so far.
    fn replay_position(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// On a replica: how far behind its primary it is; on a primary, [`Lag::NONE`].
    ///
    /// # Cancel safety
    ///
    /// The lag watch drops this future after its check timeout; the connection is then left
    /// to the manager's handling of a request cut off mid-flight.
    fn replay_lag(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<Lag, Self::Error>> + Send;
}

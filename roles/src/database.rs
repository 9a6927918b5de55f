//! [`DatabasePools`]: the write, read and admin pools of one database, and read-your-writes.

use std::time::Duration;

use tokio::time::Instant;

use pool_core::Manager;

use crate::error::Error;
use crate::read::{ReadConnection, ReadPool, Source};
use crate::replication::Replication;
use crate::typed::{AdminPool, WriteConnection, WritePool};

/// The pools of one database by role. Cheap to clone into a web framework's state.
///
/// Reads fall back to the write pool (the primary) when no replica is healthy, unless the read
/// pool says otherwise.
pub struct DatabasePools<M: Manager> {
    write: WritePool<M>,
    read: ReadPool<M>,
    admin: Option<AdminPool<M>>,
    read_your_writes: Option<Duration>,
    replay_wait: Option<Duration>,
}

/// What one caller (a user, a request chain) last wrote, so that its next reads can see it.
///
/// A web service keeps one per user, e.g. in the session store; [`position`](Self::position)
/// and [`with_position`](Self::with_position) carry the replication position across requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Session {
    last_write: Option<Instant>,
    position: Option<u64>,
}

impl Session {
    /// A caller that has written nothing yet.
    pub fn new() -> Self {
        Session::default()
    }

    /// The replication position of the last write, if it was recorded.
    pub fn position(&self) -> Option<u64> {
        self.position
    }

    /// A caller whose last write, just now, ended at `position`.
    pub fn with_position(position: u64) -> Self {
        Session {
            last_write: Some(Instant::now()),
            position: Some(position),
        }
    }

    /// Notes a write now.
    pub fn wrote(&mut self) {
        self.last_write = Some(Instant::now());
    }
}

impl<M: Manager> Clone for DatabasePools<M> {
    fn clone(&self) -> Self {
        DatabasePools {
            write: self.write.clone(),
            read: self.read.clone(),
            admin: self.admin.clone(),
            read_your_writes: self.read_your_writes,
            replay_wait: self.replay_wait,
        }
    }
}

impl<M: Manager> std::fmt::Debug for DatabasePools<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabasePools")
            .field("write", &self.write)
            .field("read", &self.read)
            .field("admin", &self.admin)
            .field("read_your_writes", &self.read_your_writes)
            .field("replay_wait", &self.replay_wait)
            .finish()
    }
}

impl<M: Manager> DatabasePools<M> {
    /// Groups a write pool and a read pool; reads fall back to `write` unless `read` already
    /// has a primary.
    pub fn new(write: WritePool<M>, read: ReadPool<M>) -> Self {
        let read = read.with_primary(write.pool().clone());
        DatabasePools {
            write,
            read,
            admin: None,
            read_your_writes: None,
            replay_wait: None,
        }
    }

    /// Adds the admin pool.
    pub fn with_admin(mut self, admin: AdminPool<M>) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Sends a caller's reads to the primary for `window` after its last write
    /// ([`read_for`](Self::read_for)). Off by default.
    pub fn read_your_writes(mut self, window: Duration) -> Self {
        self.read_your_writes = Some(window);
        self
    }

    /// Within the read-your-writes window, lets a replica serve the read once it has replayed
    /// the caller's recorded write position, waiting at most `limit` for it
    /// ([`read_after`](Self::read_after)); otherwise the primary serves it.
    pub fn wait_for_replay(mut self, limit: Duration) -> Self {
        self.replay_wait = Some(limit);
        self
    }

    /// The primary's pool.
    pub fn write_pool(&self) -> &WritePool<M> {
        &self.write
    }

    /// The replicas' pool.
    pub fn read_pool(&self) -> &ReadPool<M> {
        &self.read
    }

    /// The admin pool, if one was added.
    pub fn admin_pool(&self) -> Option<&AdminPool<M>> {
        self.admin.as_ref()
    }

    /// A connection to the primary.
    ///
    /// # Errors
    ///
    /// As [`Pool::get`](pool_core::Pool::get), as [`Error::Pool`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    pub async fn write(&self) -> Result<WriteConnection<M>, Error<M::Error>> {
        Ok(self.write.get().await?)
    }

    /// A connection to the primary, noting the write in `session`.
    ///
    /// # Errors
    ///
    /// As [`Pool::get`](pool_core::Pool::get), as [`Error::Pool`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing; `session` is only changed once a connection is had.
    pub async fn write_for(
        &self,
        session: &mut Session,
    ) -> Result<WriteConnection<M>, Error<M::Error>> {
        let conn = self.write.get().await?;
        session.wrote();
        Ok(conn)
    }

    /// A connection for reads from a replica (see [`ReadPool::get`]).
    ///
    /// # Errors
    ///
    /// As [`ReadPool::get`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    pub async fn read(&self) -> Result<ReadConnection<M>, Error<M::Error>> {
        self.read.get().await
    }

    /// A connection for reads that sees `session`'s last write: from the primary within the
    /// read-your-writes window after it, else from a replica.
    ///
    /// # Errors
    ///
    /// As [`ReadPool::get`], or the primary's.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    pub async fn read_for(&self, session: &Session) -> Result<ReadConnection<M>, Error<M::Error>> {
        if self.within_window(session) {
            return self.primary_read().await;
        }
        self.read.get().await
    }

    fn within_window(&self, session: &Session) -> bool {
        match (session.last_write, self.read_your_writes) {
            (Some(at), Some(window)) => at.elapsed() < window,
            _ => false,
        }
    }

    async fn primary_read(&self) -> Result<ReadConnection<M>, Error<M::Error>> {
        let conn = self.write.pool().get().await?;
        Ok(ReadConnection::new(conn, Source::Primary))
    }
}

impl<M: Replication> DatabasePools<M> {
    /// Records in `session` the primary's position after the writes made on `conn`, so that
    /// [`read_after`](Self::read_after) can tell when a replica has them.
    ///
    /// # Errors
    ///
    /// The manager's error when the position cannot be read.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves `session` as it was.
    pub async fn record_write(
        &self,
        session: &mut Session,
        conn: &mut WriteConnection<M>,
    ) -> Result<(), M::Error> {
        let position = self.write.pool().manager().write_position(conn).await?;
        session.last_write = Some(Instant::now());
        session.position = Some(position);
        Ok(())
    }

    /// Like [`read_for`](Self::read_for), but within the window a replica that has replayed
    /// the session's recorded position may serve the read: it waits up to the
    /// [`wait_for_replay`](Self::wait_for_replay) limit for one to catch up, and reads from the
    /// primary if none does.
    ///
    /// # Errors
    ///
    /// As [`read_for`](Self::read_for).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing.
    pub async fn read_after(
        &self,
        session: &Session,
    ) -> Result<ReadConnection<M>, Error<M::Error>> {
        let (Some(position), Some(limit)) = (session.position, self.replay_wait) else {
            return self.read_for(session).await;
        };
        if !self.within_window(session) && self.read_your_writes.is_some() {
            return self.read.get().await;
        }
        let deadline = Instant::now() + limit;
        let mut conn = self.read.get().await?;
        let Source::Replica(index) = conn.source() else {
            return Ok(conn);
        };
        let Some(manager) = self.read.replica_pool(index).map(|p| p.manager()) else {
            return self.primary_read().await;
        };
        loop {
            match manager.replay_position(&mut conn).await {
                Ok(replayed) if replayed >= position => return Ok(conn),
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                _ => break,
            }
        }
        drop(conn);
        self.primary_read().await
    }
}

//! [`RedisConnection`]: one Redis connection that remembers what its borrower did with it.

use std::fmt;

use ::redis::aio::{ConnectionLike, MultiplexedConnection};
use ::redis::{Cmd, Pipeline, RedisFuture, Value};

use super::session::Session;
use super::socket::Driver;

/// One connection to a Redis server, as handed out by the pool.
///
/// Send commands through [`AsyncCommands`](::redis::AsyncCommands) methods on the guard
/// (`conn.get(key).await`), or with `cmd(..).query_async(&mut *conn)` and
/// `pipe().query_async(&mut *conn)`. Every request goes through this wrapper, which is how the
/// pool learns that a reply was never read or that the session was changed: the inner
/// connection is deliberately not reachable, since a request sent around the wrapper would
/// escape that bookkeeping.
///
/// # Cancel safety
///
/// Dropping a request's future before its reply arrives is allowed; the connection is then
/// closed when returned to the pool instead of being reused.
pub struct RedisConnection {
    inner: MultiplexedConnection,
    /// The task doing the socket's I/O, stopped with the connection.
    driver: Driver,
    /// The database the configuration selects, restored by `reset`.
    db: i64,
    pub(super) session: Session,
}

impl RedisConnection {
    pub(super) fn new(inner: MultiplexedConnection, driver: Driver, db: i64) -> Self {
        RedisConnection {
            inner,
            driver,
            db,
            session: Session::default(),
        }
    }

    /// The connection itself, for the manager's own setup commands, which must not count as
    /// the borrower's.
    pub(super) fn inner_mut(&mut self) -> &mut MultiplexedConnection {
        &mut self.inner
    }

    /// Whether this connection will be closed instead of pooled when returned: a reply was not
    /// read, it failed with an I/O or protocol error, it was switched to a mode (pub/sub,
    /// `MONITOR`, ...) that plain requests cannot use, or its socket is gone (the server
    /// closed it, or the runtime that drove it shut down).
    pub fn is_broken(&self) -> bool {
        self.session.is_broken() || self.driver.has_ended()
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.session.command(&mut self.inner, cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(
            self.session
                .pipeline(&mut self.inner, pipeline, offset, count),
        )
    }

    /// The configured database (a `SELECT` by the borrower lasts until the connection's next
    /// reset).
    fn get_db(&self) -> i64 {
        self.db
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("db", &self.db)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

//! [`RedisConnection`]: one Redis connection that remembers what its borrower did with it.

use std::fmt;

use ::redis::aio::{ConnectionLike, MultiplexedConnection};
use ::redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::session::{is_server_reply, Session};
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
/// Dropping a request's future before its reply arrives is allowed. The connection's socket is
/// shut down right then, so the server stops any command it was still running for it, and the
/// connection is closed when returned to the pool instead of being reused. A request that
/// fails without a reply from the server (an I/O error, the configured response timeout)
/// closes the socket the same way.
///
/// # Blocking commands
///
/// Give blocking commands (`BLPOP`, `BRPOP`, `BLMOVE`, `BZPOPMIN`, `XREAD BLOCK`,
/// `XREADGROUP BLOCK`, `WAIT`, ...) a server-side timeout shorter than any timeout the caller
/// puts around them. A caller that gives up first drops the request, and closing the socket
/// cannot undo what the server did in the meantime: an element pushed after the caller gave
/// up, but before the server saw the socket close, is popped for nobody and lost. With a
/// server-side timeout the command ends with a reply the caller reads.
pub struct RedisConnection {
    inner: MultiplexedConnection,
    /// The socket's I/O task and a handle to close the socket early; closes it on drop.
    driver: Driver,
    /// The database the configuration selects, restored by `reset`.
    db: i64,
    pub(super) session: Session,
    /// The server's address, when a Sentinel pool needs to compare it with the current
    /// master's.
    #[cfg_attr(not(feature = "redis-sentinel"), allow(dead_code))]
    pub(super) server: Option<(String, u16)>,
}

impl RedisConnection {
    pub(super) fn new(inner: MultiplexedConnection, driver: Driver, db: i64) -> Self {
        RedisConnection {
            inner,
            driver,
            db,
            session: Session::default(),
            server: None,
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

    /// Whether the server refused a write with `READONLY` during this connection's life: it
    /// is a replica, or a master that a failover demoted. A Sentinel pool closes such
    /// connections so that the next ones go to the current master.
    pub fn saw_read_only(&self) -> bool {
        self.session.saw_read_only()
    }
}

/// Closes the connection's socket unless the request it is created for gets its answer.
///
/// Lives inside the request's future, so dropping that future before the reply closes the
/// socket there and then, not when the guard goes back to the pool.
struct Unanswered<'a>(Option<&'a mut Driver>);

impl<'a> Unanswered<'a> {
    fn new(driver: &'a mut Driver) -> Self {
        Unanswered(Some(driver))
    }

    /// The request finished: the socket stays open if the server answered, even with an
    /// error, and is closed if the reply never came.
    fn finish<T>(mut self, result: &RedisResult<T>) {
        if let (Some(driver), Err(e)) = (self.0.take(), result) {
            if !is_server_reply(e) {
                driver.close();
            }
        }
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(driver) = self.0.take() {
            driver.close();
        }
    }
}

impl ConnectionLike for RedisConnection {
    /// Sends one command and reads its reply.
    ///
    /// Cancel safe in that dropping the future closes the connection's socket at once (see
    /// [Cancel safety](RedisConnection#cancel-safety)); a blocking command should carry its
    /// own server-side timeout (see [Blocking commands](RedisConnection#blocking-commands)).
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let RedisConnection {
            inner,
            driver,
            session,
            ..
        } = self;
        Box::pin(async move {
            let unanswered = Unanswered::new(driver);
            let result = session.command(inner, cmd).await;
            unanswered.finish(&result);
            result
        })
    }

    /// Sends a pipeline and reads `count` replies after the first `offset`; dropping the
    /// future closes the socket as for [`req_packed_command`](Self::req_packed_command).
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let RedisConnection {
            inner,
            driver,
            session,
            ..
        } = self;
        Box::pin(async move {
            let unanswered = Unanswered::new(driver);
            let result = session.pipeline(inner, pipeline, offset, count).await;
            unanswered.finish(&result);
            result
        })
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

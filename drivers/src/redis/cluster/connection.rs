//! [`ClusterConnection`]: one cluster connection that remembers what its borrower did with it.

use std::fmt;

use ::redis::aio::ConnectionLike;
use ::redis::cluster_async;
use ::redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::task::JoinHandle;

use crate::redis::session::Session;

/// One connection to a Redis Cluster, as handed out by the pool.
///
/// Send commands through [`AsyncCommands`](::redis::AsyncCommands) methods on the guard, or
/// with `cmd(..).query_async(&mut *conn)`. Every request goes through this wrapper, which is
/// how the pool learns that a reply was never read or that the session was changed.
///
/// # Cancel safety
///
/// Dropping a request's future before its reply arrives is allowed; the connection is then
/// closed when returned to the pool instead of being reused. Unlike a
/// [`RedisConnection`](crate::redis::RedisConnection), it cannot shut its sockets down at the
/// moment the future is dropped: the cluster client owns them, and closes them only once its
/// own task next runs. So give blocking commands (`BLPOP`, `XREAD BLOCK`, `WAIT`, ...) a
/// server-side timeout shorter than any client-side one, or an element pushed meanwhile can be
/// popped for nobody.
pub struct ClusterConnection {
    inner: cluster_async::ClusterConnection,
    pub(super) session: Session,
    /// A task that never ends by itself, on the runtime the connection was opened on (and the
    /// cluster client's own task with it): it ends when that runtime shuts down, which leaves
    /// the connection unable to send anything.
    runtime: JoinHandle<()>,
}

impl ClusterConnection {
    /// Wraps `inner`; must run on the runtime that opened it.
    pub(super) fn new(inner: cluster_async::ClusterConnection) -> Self {
        ClusterConnection {
            inner,
            session: Session::default(),
            runtime: tokio::spawn(std::future::pending()),
        }
    }

    /// Whether this connection will be closed instead of pooled when returned: a reply was not
    /// read, it failed with an I/O or protocol error, its session was changed (`MULTI`,
    /// `WATCH`, `CLIENT ...`, `SUBSCRIBE`, ...), or the runtime it was opened on shut down.
    pub fn is_broken(&self) -> bool {
        self.session.is_broken() || self.session.is_dirty() || self.runtime.is_finished()
    }
}

impl Drop for ClusterConnection {
    fn drop(&mut self) {
        self.runtime.abort();
    }
}

impl ConnectionLike for ClusterConnection {
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

    /// Always 0: a cluster has one database.
    fn get_db(&self) -> i64 {
        0
    }
}

impl fmt::Debug for ClusterConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConnection")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

//! Opening connections: one task per reserved connect, retrying transient failures with
//! backoff while someone still wants the connection.
//!
//! A connect runs in a task of its own rather than in the caller's future, so a caller that
//! gives up does not abort a connect that the next caller can use, and a caller is never made
//! to wait for a connect when a connection comes back first.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::ConnectError;
use crate::health::Health;
use crate::manager::{ErrorKind, Manager};
use crate::shared::Shared;

/// Frees the reserved connect slot however the task ends, including by a panic or by the
/// runtime shutting down.
struct Slot<M: Manager> {
    shared: Option<Arc<Shared<M>>>,
}

impl<M: Manager> Drop for Slot<M> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut st = shared.lock();
            st.ledger.end_connects(1);
            shared.settle(st, None);
        }
    }
}

/// Runs one reserved connect to its end: a connection handed to the oldest waiter (or made
/// idle), or a permanent error given to the waiters, or no one left who wants it; then the
/// next one, while the pool wants more.
pub(crate) async fn connect<M: Manager>(shared: Arc<Shared<M>>) {
    let mut slot = Slot {
        shared: Some(Arc::clone(&shared)),
    };
    loop {
        let (limit, generation) = {
            let st = shared.lock();
            // A closed pool wants nothing more; `slot` frees the reserved connect.
            if st.closed {
                return;
            }
            (st.config.connect_timeout, st.generation)
        };
        let begun = tokio::time::Instant::now();
        let error = match attempt(&shared, limit).await {
            Ok(conn) => {
                let took = begun.elapsed();
                let mut st = shared.lock();
                st.ledger.end_connects(1);
                st.stats.connect_time.record(took);
                shared.metrics.created(took);
                // The server is back: connects still sleeping in their backoff try again now
                // rather than when their pause ends, so a pool refills at once.
                if st.failures > 0 {
                    shared.retry_now.notify_waiters();
                }
                st.failures = 0;
                st.permanent_failure = false;
                st.retry_at = None;
                st.last_error = None;
                st.stats.connects_ok += 1;
                let mut live = shared.new_live(conn, &st);
                live.meta.generation = generation;
                let id = live.meta.id();
                let back = st.put_back(live, None).err();
                // While the pool wants more connections, this task opens the next one itself
                // rather than end and have a new task spawned for it: a pool filling up then
                // spawns a task per connect at once, not per connection, and a task's memory,
                // freed between connections that stay, would leave gaps among them (measured
                // by the `memory` suite: 51.8 bytes per idle connection with a task each, 48.0
                // without).
                let next = st.reserve_connects();
                if next == 0 {
                    // Counted back above, under the same lock as the hand-over.
                    slot.shared = None;
                }
                shared.settle(st, back);
                shared.health.connected();
                tracing::debug!(target: "pool_core::connect", id, "opened a connection");
                if next == 0 {
                    return;
                }
                shared.spawn_connects(next - 1);
                continue;
            }
            Err(error) => error,
        };
        let permanent = matches!(&error, ConnectError::Backend(e)
            if shared.manager.classify(e) == ErrorKind::Permanent);
        let error = Arc::new(error);
        tracing::warn!(target: "pool_core::connect", error = %error, permanent, "opening a connection failed");
        // Made before the state is read, so a recovery or close signalled after that still
        // wakes the pause below.
        let retry_now = shared.retry_now.notified();
        let pause = {
            let mut st = shared.lock();
            st.stats.connects_failed += 1;
            st.failures = st.failures.saturating_add(1);
            st.permanent_failure = permanent;
            st.last_error = Some(Arc::clone(&error));
            shared.health.worsen(if st.size() == 0 {
                Health::Unavailable
            } else {
                Health::Degraded
            });
            let pause = st.backoff();
            st.retry_at = Some(tokio::time::Instant::now() + pause);
            if permanent {
                st.fail_waiters(&error);
            }
            // This connect is one of `connecting`: go on only while it is still wanted.
            (!permanent && !st.closed && st.demand() >= st.ledger.connecting()).then_some(pause)
        };
        let Some(pause) = pause else { return };
        let _ = tokio::time::timeout(pause, retry_now).await;
    }
}

/// One connect, bounded by `limit`, with a panic turned into an error.
///
/// A new connection that [`Manager::has_broken`] already calls broken is a failed connect: handed
/// out, it would be closed at once and the caller would ask for another, round after round with
/// no pause; as a failure it goes through the backoff and its cause reaches the caller.
pub(crate) async fn attempt<M: Manager>(
    shared: &Shared<M>,
    limit: Duration,
) -> Result<M::Connection, ConnectError<M::Error>> {
    let connect = CatchUnwind(Box::pin(shared.manager.connect()));
    match tokio::time::timeout(limit, connect).await {
        Ok(Ok(Ok(mut conn))) => {
            let broken = catch_unwind(AssertUnwindSafe(|| shared.manager.has_broken(&mut conn)));
            if broken.unwrap_or(true) {
                Err(ConnectError::BrokenAtOnce)
            } else {
                Ok(conn)
            }
        }
        Ok(Ok(Err(e))) => Err(ConnectError::Backend(e)),
        Ok(Err(panic)) => Err(ConnectError::Panic(panic_message(&*panic))),
        Err(_) => Err(ConnectError::Timeout(limit)),
    }
}

/// Opens `n` connections at once for a pool being built, without retries.
pub(crate) async fn open_initial<M: Manager>(
    shared: &Arc<Shared<M>>,
    n: usize,
) -> Result<(), ConnectError<M::Error>> {
    let limit = shared.lock().config.connect_timeout;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                let begun = tokio::time::Instant::now();
                attempt(&shared, limit)
                    .await
                    .map(|conn| (conn, begun.elapsed()))
            })
        })
        .collect();
    let mut first_error = None;
    for task in tasks {
        let outcome = task
            .await
            .unwrap_or_else(|_| Err(ConnectError::Panic("the runtime is shutting down".into())));
        let mut st = shared.lock();
        match outcome {
            Ok((conn, took)) => {
                st.stats.connects_ok += 1;
                st.stats.connect_time.record(took);
                shared.metrics.created(took);
                let live = shared.new_live(conn, &st);
                st.ledger.make_idle(live);
            }
            Err(error) => {
                st.stats.connects_failed += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Turns a panic inside a future into an error, so a panicking manager is a failed connect
/// (or, in the background task, a failed keepalive check).
pub(crate) struct CatchUnwind<F>(pub(crate) Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

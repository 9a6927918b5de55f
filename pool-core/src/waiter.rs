//! A caller queued for a connection.
//!
//! The queue holds one [`Queued`] entry per caller; whoever frees a connection sends it to the
//! oldest caller still waiting, and the background task sends a timeout to callers whose
//! deadline passed (one timer for the whole queue, rather than one per caller). The caller's
//! side, [`Waiter`], is an RAII guard: if the caller gives up after a connection was sent to it,
//! dropping the guard passes that connection on, so a cancelled waiter never swallows a
//! wake-up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::connection::Live;
use crate::error::ConnectError;
use crate::manager::Manager;
use crate::shared::Shared;

/// What a queued caller is sent.
pub(crate) enum Grant<M: Manager> {
    /// A connection, already counted in `in_use` for the caller, and the wait already recorded
    /// in the stats.
    Conn {
        live: Live<M::Connection>,
        waited: Duration,
    },
    /// A permanent connect error.
    Failed(Arc<ConnectError<M::Error>>),
    /// The caller's deadline passed.
    TimedOut,
    /// The pool was closed.
    Closed,
}

/// A caller's place in the queue.
pub(crate) struct Queued<M: Manager> {
    pub(crate) tx: oneshot::Sender<Grant<M>>,
    /// When the caller's acquire started (its first time in the queue).
    pub(crate) since: Instant,
    pub(crate) deadline: Option<Instant>,
}

/// The caller's end of its place in the queue.
pub(crate) struct Waiter<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    rx: Option<oneshot::Receiver<Grant<M>>>,
}

impl<'a, M: Manager> Waiter<'a, M> {
    pub(crate) fn new(shared: &'a Arc<Shared<M>>, rx: oneshot::Receiver<Grant<M>>) -> Self {
        Waiter {
            shared,
            rx: Some(rx),
        }
    }
}

impl<M: Manager> Future for Waiter<'_, M> {
    type Output = Grant<M>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Grant<M>> {
        let rx = self
            .rx
            .as_mut()
            .expect("a Waiter is not polled after it finished");
        let grant = match Pin::new(rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(grant)) => grant,
            // Senders are only dropped unsent when the pool closes.
            Poll::Ready(Err(_)) => Grant::Closed,
        };
        self.rx = None;
        Poll::Ready(grant)
    }
}

impl<M: Manager> Drop for Waiter<'_, M> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        let mut st = self.shared.lock();
        // Grants are sent under this lock, so after `close` nothing can arrive, and what did
        // arrive is seen by `try_recv`.
        rx.close();
        match rx.try_recv() {
            Ok(Grant::Conn { live, waited }) => {
                // The caller never got it: the wait recorded for it did not end in a checkout.
                st.stats.acquires_waited -= 1;
                st.stats.wait_time.forget(waited);
                st.in_use -= 1;
                let back = st.put_back(live, None).err();
                self.shared.settle(st, back);
            }
            Ok(Grant::Failed(_) | Grant::TimedOut | Grant::Closed) => {}
            Err(_) => {
                st.waiting -= 1;
                st.abandoned += 1;
                // Purge senders of callers who gave up once they outnumber the live ones, so
                // rounds of timeouts without any release cannot grow the queue.
                if st.abandoned > 32 && st.abandoned > st.waiting {
                    st.waiters.retain(|w| !w.tx.is_closed());
                    st.abandoned = 0;
                }
            }
        }
    }
}

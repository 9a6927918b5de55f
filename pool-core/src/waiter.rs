//! [`Waiter`]: a queued caller's side of its place in the [`Queue`](crate::queue::Queue).
//!
//! The waiter is an RAII guard: a caller that gives up leaves nothing behind. A connection
//! already granted to it passes to the next caller, and if it had been woken to take an idle
//! connection, another caller is woken instead, so a cancelled waiter never swallows a wake-up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::manager::Manager;
use crate::place::QueuePlace;
use crate::queue::{Found, Grant, Key, Left};
use crate::shared::{Policy, Shared};

/// The caller's end of its place in the queue.
pub(crate) struct Waiter<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    key: Option<Key>,
    /// Where the caller asked to see its position, if it did.
    place: Option<&'a QueuePlace>,
}

impl<'a, M: Manager> Waiter<'a, M> {
    pub(crate) fn new(shared: &'a Arc<Shared<M>>, key: Key, place: Option<&'a QueuePlace>) -> Self {
        if let Some(place) = place {
            place.enter(Arc::downgrade(shared) as _, key);
        }
        Waiter {
            shared,
            key: Some(key),
            place,
        }
    }

    /// The caller no longer holds a place.
    fn left(&mut self) {
        self.key = None;
        if let Some(place) = self.place {
            place.clear();
        }
    }
}

/// The grant, with the checkout policy in force when it was collected (for the connection's
/// outlook).
impl<M: Manager> Future for Waiter<'_, M> {
    type Output = (Grant<M>, Policy);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(Grant<M>, Policy)> {
        let key = self.key.expect("a Waiter is not polled after it finished");
        let mut st = self.shared.lock();
        let grant = match st.queue.look(key, cx) {
            Found::Done(grant) => grant,
            Found::Waiting => return Poll::Pending,
            Found::Woken => match st.take_idle_for(key) {
                Some(live) => Grant::Conn(live),
                // Someone who had not queued took it first: wait on, in the same place.
                None => {
                    st.queue.park(key, cx);
                    return Poll::Pending;
                }
            },
        };
        self.shared.metrics.publish(&st);
        let policy = *st.policy();
        drop(st);
        self.left();
        Poll::Ready((grant, policy))
    }
}

impl<M: Manager> Drop for Waiter<'_, M> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut st = self.shared.lock();
        st.stats.acquires_cancelled += 1;
        let left = st.queue.give_up(key);
        self.shared.metrics.publish(&st);
        match left {
            Left::Grant(Grant::Conn(live)) => {
                // The caller never got it: it goes to the next caller, or back to the idle set.
                st.ledger.count_returned();
                let back = st.put_back(live, None).err();
                self.shared.settle(st, back);
            }
            Left::Woken => {
                st.send_for_idle();
                drop(st);
            }
            Left::Grant(Grant::Failed(_) | Grant::TimedOut | Grant::Closed) | Left::Nothing => {
                drop(st);
            }
        }
        self.left();
    }
}

//! [`Waiter`]: a queued caller's side of its place in the [`Queue`](crate::queue::Queue).
//!
//! The waiter is an RAII guard: a caller that gives up leaves nothing behind. A connection
//! already granted to it passes to the next caller, and if it had been woken to take an idle
//! connection, another caller is woken instead, so a cancelled waiter never swallows a wake-up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;

use crate::acquire::Outlook;
use crate::connection::Live;
use crate::manager::Manager;
use crate::place::QueuePlace;
use crate::queue::{Found, Grant, Key, Left};
use crate::recycle::Cleanup;
use crate::shared::Shared;

/// What a waiter collects: a connection, with its outlook and whether the caller's wait was
/// recorded in the stats as it was collected; or how else the wait ended (never
/// `Grant::Conn`).
pub(crate) type Collected<M> = Result<(Live<<M as Manager>::Connection>, Outlook, bool), Grant<M>>;

/// The caller's end of its place in the queue.
pub(crate) struct Waiter<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    key: Option<Key>,
    /// Where the caller asked to see its position, if it did.
    place: Option<&'a QueuePlace>,
    /// Whether the caller's waker is in its slot already and the waiter was not polled yet.
    registered: bool,
    /// Whether the caller's wait is still to be recorded (it is recorded once, though a
    /// connection it collected may be closed on its way out and the caller queue again).
    unrecorded: bool,
}

impl<'a, M: Manager> Waiter<'a, M> {
    /// The waiter of the caller queued under `key`. `registered`: the caller's waker went into
    /// its slot as it queued, in the poll that polls this waiter first; that poll then has
    /// nothing to look at (a grant made since has woken the caller, which will collect it at
    /// the next poll), so it does not lock. `unrecorded`: the caller's wait is not in the stats
    /// yet.
    pub(crate) fn new(
        shared: &'a Arc<Shared<M>>,
        key: Key,
        place: Option<&'a QueuePlace>,
        registered: bool,
        unrecorded: bool,
    ) -> Self {
        if let Some(place) = place {
            place.enter(Arc::downgrade(shared) as _, key);
        }
        Waiter {
            shared,
            key: Some(key),
            place,
            registered,
            unrecorded,
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

impl<M: Manager> Future for Waiter<'_, M> {
    /// When the caller's acquire started, and what it collected.
    type Output = (Instant, Collected<M>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(Instant, Collected<M>)> {
        let key = self.key.expect("a Waiter is not polled after it finished");
        if std::mem::take(&mut self.registered) {
            return Poll::Pending;
        }
        let now = self.shared.now();
        // Read before the lock, which other threads may be waiting for: most polls of a waiter
        // collect a connection, whose wait is then recorded under the lock.
        let polled = Instant::now();
        let mut st = self.shared.lock();
        let (since, priority) = st.queue.caller(key);
        let grant = match st.queue.look(key, cx) {
            Found::Done(grant) => grant,
            Found::Waiting => return Poll::Pending,
            Found::Woken => match st.take_idle_for(key, cx) {
                Some(live) => Grant::Conn(live),
                // Someone who had not queued took it first: wait on, in the same place.
                None => return Poll::Pending,
            },
        };
        let collected = match grant {
            Grant::Conn(live) => {
                let outlook = st.policy().outlook(&live.meta, now);
                // A connection that by the pool's own figures needs nothing before it goes out
                // is as good as served (only the manager's `has_broken`, asked after the lock,
                // can still turn it away): its wait is recorded now, under this lock, rather
                // than under one taken again for it. It is recorded once either way.
                let ready = self.unrecorded
                    && !outlook.expired
                    && !outlook.check
                    && live.meta.cleanup == Cleanup::None;
                let waited = ready.then(|| {
                    let waited = polled.saturating_duration_since(since);
                    st.record_waited(priority, waited, now);
                    waited
                });
                Ok((live, outlook, waited))
            }
            other => Err(other),
        };
        self.shared.metrics.publish(&st);
        drop(st);
        self.left();
        let collected = collected.map(|(live, outlook, waited)| {
            if let Some(waited) = waited {
                self.shared.metrics.waited(waited);
            }
            (live, outlook, waited.is_some())
        });
        Poll::Ready((since, collected))
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

//! A caller queued for a connection.
//!
//! The queue holds one [`Queued`] entry per caller; whoever frees a connection hands it to the
//! oldest caller still waiting, and the background task hands a timeout to callers whose
//! deadline passed (one timer for the whole queue, rather than one per caller). What is handed
//! over lands in the caller's slot in [`Slots`], which lives in the pool's state and is only
//! touched under its lock, a lock both sides take anyway. Slots are reused, so once the pool
//! has seen as many callers queue at once, queueing allocates nothing, and handing over costs
//! no atomics beyond the lock and the wake-up.
//!
//! The caller's side, [`Waiter`], is an RAII guard: if the caller gives up after a connection
//! was handed to it, dropping the guard passes that connection on, so a cancelled waiter never
//! swallows a wake-up.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

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
pub(crate) struct Queued {
    /// Where its grant goes, in [`Slots`].
    pub(crate) slot: usize,
    /// When the caller's acquire started (its first time in the queue).
    pub(crate) since: Instant,
    pub(crate) deadline: Option<Instant>,
}

/// Where a grant waits for its caller.
enum Slot<M: Manager> {
    /// Not in use.
    Free,
    /// Its caller waits, and is woken through this.
    Waiting(Waker),
    /// Handed over, not yet taken by its caller.
    Granted(Grant<M>),
    /// Its caller gave up; the slot is freed when its queue entry is met.
    Abandoned,
}

/// The grants of all queued callers, one slot each, kept for reuse.
pub(crate) struct Slots<M: Manager> {
    slots: Vec<Slot<M>>,
    free: Vec<usize>,
}

impl<M: Manager> Slots<M> {
    pub(crate) fn new() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// A slot for a caller about to queue, to be woken through `waker`.
    pub(crate) fn open(&mut self, waker: &Waker) -> usize {
        let slot = Slot::Waiting(waker.clone());
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }

    fn free(&mut self, i: usize) {
        self.slots[i] = Slot::Free;
        self.free.push(i);
        // After a burst of callers (10,000 queued at once, say) the memory goes back once
        // the queue is empty; no caller holds an index then.
        if self.free.len() == self.slots.len() && self.slots.len() > 64 {
            self.slots = Vec::new();
            self.free = Vec::new();
        }
    }

    /// Frees slot `i` if its caller gave up, and says whether it did.
    pub(crate) fn release_abandoned(&mut self, i: usize) -> bool {
        let abandoned = matches!(self.slots[i], Slot::Abandoned);
        if abandoned {
            self.free(i);
        }
        abandoned
    }

    /// Hands `grant` to the caller of slot `i`, which is still waiting, and wakes it.
    pub(crate) fn send(&mut self, i: usize, grant: Grant<M>) {
        match mem::replace(&mut self.slots[i], Slot::Granted(grant)) {
            Slot::Waiting(waker) => waker.wake(),
            _ => unreachable!("grants go only to callers still waiting"),
        }
    }

    /// The grant of slot `i` if it came (freeing the slot), else `waker` is kept to wake.
    fn poll(&mut self, i: usize, waker: &Waker) -> Option<Grant<M>> {
        match &mut self.slots[i] {
            Slot::Waiting(kept) => {
                if !kept.will_wake(waker) {
                    kept.clone_from(waker);
                }
                None
            }
            Slot::Granted(_) => match mem::replace(&mut self.slots[i], Slot::Free) {
                Slot::Granted(grant) => {
                    self.free(i);
                    Some(grant)
                }
                _ => unreachable!("matched just above"),
            },
            Slot::Free | Slot::Abandoned => unreachable!("a slot is polled only by its caller"),
        }
    }

    /// Marks slot `i` given up by its caller; returns what was handed to it meanwhile.
    fn abandon(&mut self, i: usize) -> Option<Grant<M>> {
        match mem::replace(&mut self.slots[i], Slot::Abandoned) {
            Slot::Waiting(_) => None,
            Slot::Granted(grant) => {
                self.free(i);
                Some(grant)
            }
            Slot::Free | Slot::Abandoned => unreachable!("a slot is given up only by its caller"),
        }
    }
}

/// The caller's end of its place in the queue.
pub(crate) struct Waiter<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    /// `None` once the grant was taken.
    slot: Option<usize>,
}

impl<'a, M: Manager> Waiter<'a, M> {
    pub(crate) fn new(shared: &'a Arc<Shared<M>>, slot: usize) -> Self {
        Waiter {
            shared,
            slot: Some(slot),
        }
    }
}

impl<M: Manager> Future for Waiter<'_, M> {
    type Output = Grant<M>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Grant<M>> {
        let slot = self.slot.expect("a Waiter is not polled after it finished");
        let grant = self.shared.lock().slots.poll(slot, cx.waker());
        match grant {
            Some(grant) => {
                self.slot = None;
                Poll::Ready(grant)
            }
            None => Poll::Pending,
        }
    }
}

impl<M: Manager> Drop for Waiter<'_, M> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let mut st = self.shared.lock();
        // Grants are handed over under this lock, so from here on nothing more can arrive.
        match st.slots.abandon(slot) {
            Some(Grant::Conn { live, waited }) => {
                // The caller never got it: the wait recorded for it did not end in a checkout.
                st.stats.acquires_waited -= 1;
                st.stats.wait_time.forget(waited);
                st.in_use -= 1;
                let back = st.put_back(live, None).err();
                self.shared.settle(st, back);
            }
            Some(Grant::Failed(_) | Grant::TimedOut | Grant::Closed) => {}
            None => {
                st.waiting -= 1;
                st.abandoned += 1;
                // Purge the entries of callers who gave up once they outnumber the live ones,
                // so rounds of timeouts without any release cannot grow the queue.
                if st.abandoned > 32 && st.abandoned > st.waiting {
                    st.purge_abandoned();
                }
            }
        }
    }
}

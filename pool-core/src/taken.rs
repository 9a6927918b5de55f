//! [`Taken`]: a connection the pool took out of the idle set whose fate is not settled yet.

use std::sync::Arc;

use crate::connection::Live;
use crate::manager::Manager;
use crate::shared::Shared;
use crate::stats::CloseReason;

/// Holds a connection counted in `in_use` while the pool works on it out of the lock: the reset
/// and check of a checkout, a keepalive check or clean-up, `Pool::retain`'s question. If the
/// future doing that is dropped, or the manager panics, the connection's state is unknown, so
/// the guard closes it and frees its slot.
pub(crate) struct Taken<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    live: Option<Live<M::Connection>>,
}

impl<'a, M: Manager> Taken<'a, M> {
    pub(crate) fn new(shared: &'a Arc<Shared<M>>, live: Live<M::Connection>) -> Self {
        Taken {
            shared,
            live: Some(live),
        }
    }

    pub(crate) fn live(&mut self) -> &mut Live<M::Connection> {
        self.live
            .as_mut()
            .expect("a Taken holds its connection until settled")
    }

    /// Closes the connection for `reason`.
    pub(crate) fn close(mut self, reason: CloseReason) {
        if let Some(live) = self.live.take() {
            self.shared.close_in_use(live, reason);
        }
    }

    /// The connection passed; the caller now accounts for it.
    pub(crate) fn keep(mut self) -> Live<M::Connection> {
        self.live
            .take()
            .expect("a Taken holds its connection until settled")
    }
}

impl<M: Manager> Drop for Taken<'_, M> {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            self.shared.close_in_use(live, CloseReason::Abandoned);
        }
    }
}

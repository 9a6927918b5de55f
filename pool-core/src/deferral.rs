//! Sparing queued callers wake-ups that find nothing.
//!
//! Under bounded fairness a connection returned while callers wait is made idle and one caller
//! is woken to take it. A task that returns a connection and asks for one again at once takes
//! it back first, and the caller woken for it finds nothing and waits on. On a multi-thread
//! runtime each such wake-up is a task switch, often across threads, that costs about as much
//! as the whole hand-off. So once woken callers have found their connection taken twice in a
//! row, a connection returned is made idle without waking anyone, and whoever asks next takes
//! it.
//!
//! Two things keep that from stranding a waiter:
//! - the waiters count as passed over, so the pool hands the next connection returned straight
//!   to a caller that has waited past the fairness bound (see [`Queue::owed`](crate::queue));
//! - the background task looks every [`LOOK`] while sends are deferred, and wakes a caller if a
//!   connection still sits idle, so a connection is never left idle next to a waiter for much
//!   longer than that.
//!
//! On a current-thread runtime a wake-up in vain is a poll on the same thread, cheaper than the
//! time-keeping deferral needs, so sends are deferred only while the background task runs on a
//! multi-thread runtime.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How often the background task looks for a connection left idle next to waiters while sends
/// are deferred.
pub(crate) const LOOK: Duration = Duration::from_millis(1);

/// Woken callers in a row that must find their connection taken before sends are deferred.
const MISSES: u8 = 2;

/// Whether sends to queued callers are deferred, and what the background task must do about it.
pub(crate) struct Deferral {
    /// Wakes the background task. Set only while it runs on a multi-thread runtime: deferral is
    /// on exactly then, as nothing else would look after a deferred send.
    watcher: Option<Arc<Notify>>,
    /// Callers woken in a row that found their connection taken.
    misses: u8,
    /// Whether a send was deferred since the background task last looked.
    deferred: bool,
    /// Whether the background task looks every `LOOK`.
    watched: bool,
}

impl Deferral {
    pub(crate) fn new() -> Self {
        Deferral {
            watcher: None,
            misses: 0,
            deferred: false,
            watched: false,
        }
    }

    /// Allows deferring: the background task, woken through `watcher`, runs on a multi-thread
    /// runtime.
    pub(crate) fn enable(&mut self, watcher: Arc<Notify>) {
        self.watcher = Some(watcher);
    }

    /// Stops deferring: the background task ended. Whoever calls this sends for the idle
    /// connections itself.
    pub(crate) fn disable(&mut self) {
        *self = Deferral::new();
    }

    /// A woken caller found its connection taken.
    #[inline]
    pub(crate) fn missed(&mut self) {
        self.misses = self.misses.saturating_add(1);
    }

    /// A woken caller found a connection.
    #[inline]
    pub(crate) fn found(&mut self) {
        self.misses = 0;
    }

    /// Whether a send for an idle connection is to be deferred. If so, it is recorded, and the
    /// background task is told to look every `LOOK` if it does not yet.
    #[inline]
    pub(crate) fn defer(&mut self) -> bool {
        let Some(watcher) = &self.watcher else {
            return false;
        };
        if self.misses < MISSES {
            return false;
        }
        self.deferred = true;
        if !self.watched {
            self.watched = true;
            watcher.notify_one();
        }
        true
    }

    /// For the background task's look: whether a send was deferred since the last one. The task
    /// goes on looking every `LOOK` for as long as that is so.
    pub(crate) fn look(&mut self) -> bool {
        let deferred = std::mem::take(&mut self.deferred);
        self.watched = deferred;
        deferred
    }

    /// Whether the background task is to look again within `LOOK`.
    pub(crate) fn watched(&self) -> bool {
        self.watched
    }
}

//! [`QueuePlace`]: where a caller stands in the queue, readable while it waits.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use crate::manager::Manager;
use crate::queue::Key;
use crate::shared::Shared;

/// Lets a caller, or anyone it shares this with (a handler serving a progress endpoint, say),
/// read its position in the queue while it waits.
///
/// Pass it to [`Pool::get_tracked`](crate::Pool::get_tracked); clones share the same place.
/// Reading the position takes the pool's lock once and counts the callers ahead, so it is
/// meant for occasional reads, not for a tight loop.
///
/// # Examples
///
/// ```
/// # use pool_core::{Manager, Pool, Priority, QueuePlace};
/// # async fn example<M: Manager>(pool: Pool<M>) -> Result<(), pool_core::Error<M::Error>> {
/// let place = QueuePlace::new();
/// let watcher = place.clone();
/// tokio::spawn(async move {
///     if let Some(ahead) = watcher.position() {
///         println!("{ahead} callers will be served before you");
///     }
/// });
/// let conn = pool.get_tracked(Priority::Normal, &place).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct QueuePlace {
    held: Arc<Mutex<Option<Held>>>,
}

/// A place taken in some pool's queue.
struct Held {
    queue: Weak<dyn Positions>,
    key: Key,
}

/// A pool's queue, whatever its manager.
pub(crate) trait Positions: Send + Sync {
    /// See [`QueuePlace::position`].
    fn position(&self, key: Key) -> Option<usize>;
}

impl<M: Manager> Positions for Shared<M> {
    fn position(&self, key: Key) -> Option<usize> {
        self.lock().queue.position(key)
    }
}

impl QueuePlace {
    /// A place not taken yet.
    pub fn new() -> Self {
        QueuePlace::default()
    }

    /// How many callers will be served before this one, in the order of priorities and
    /// arrival (0: it is next); `None` while it is not queued (before it queues, once it was
    /// served, or if it never had to queue). Callers that waited past
    /// [`Config::priority_boost_after`](crate::Config::priority_boost_after) may still be
    /// served ahead of the order counted here.
    pub fn position(&self) -> Option<usize> {
        // Read out first: the pool's lock is never taken under this one.
        let (queue, key) = {
            let held = self.lock();
            let held = held.as_ref()?;
            (held.queue.clone(), held.key)
        };
        queue.upgrade()?.position(key)
    }

    pub(crate) fn enter(&self, queue: Weak<dyn Positions>, key: Key) {
        *self.lock() = Some(Held { queue, key });
    }

    pub(crate) fn clear(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for QueuePlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuePlace")
            .field("position", &self.position())
            .finish()
    }
}

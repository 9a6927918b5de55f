//! The manager of a unit resource, shared by every pool (each pool's file implements its own
//! manager trait for it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Manages `()` connections: a connect takes `connect_delay` and is counted; checks and
/// recycling always succeed at once.
#[derive(Clone, Debug)]
pub struct Unit {
    connect_delay: Duration,
    opened: Arc<AtomicUsize>,
}

impl Unit {
    /// A manager whose connects take `connect_delay` and are counted in `opened`.
    pub fn new(connect_delay: Duration, opened: Arc<AtomicUsize>) -> Self {
        Unit {
            connect_delay,
            opened,
        }
    }

    /// Opens a connection: the shared body of every pool's connect.
    pub async fn connect(&self) {
        if !self.connect_delay.is_zero() {
            // Boxed, so that pools which keep their connect future inside their acquire future
            // (deadpool) do not grow it by a timer entry when connects are instant; the memory
            // suite measures that future.
            Box::pin(tokio::time::sleep(self.connect_delay)).await;
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
    }
}

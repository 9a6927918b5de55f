//! Writers that keep writing through a failover, and what they saw: which writes succeeded
//! where, which failed, and over how long a window callers saw errors.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// One write: its number (unique across writers), what it returned, and when it ended.
#[derive(Debug)]
pub struct Write<T> {
    /// `writer * 1_000_000 + n`: unique, and usable as a key.
    pub id: i32,
    /// What the write returned, or why it failed.
    pub outcome: Result<T, String>,
    /// When it ended.
    pub at: Instant,
}

/// Tasks that each write in a loop (a pause of 5 ms between writes) until stopped.
pub struct Writers<T> {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Write<T>>>>,
}

impl<T: Send + 'static> Writers<T> {
    /// Starts `count` writers, each calling `write` with the id of the write.
    pub fn start<F, Fut>(count: i32, write: F) -> Self
    where
        F: Fn(i32) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T, String>> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..count)
            .map(|w| {
                let (stop, write) = (Arc::clone(&stop), write.clone());
                tokio::spawn(async move {
                    let mut writes = Vec::new();
                    let mut id = w * 1_000_000;
                    while !stop.load(Ordering::Relaxed) {
                        id += 1;
                        let outcome = write(id).await;
                        writes.push(Write {
                            id,
                            outcome,
                            at: Instant::now(),
                        });
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    writes
                })
            })
            .collect();
        Writers { stop, tasks }
    }

    /// Stops the writers and returns every write.
    ///
    /// # Panics
    ///
    /// When a writer panicked.
    pub async fn stop(self) -> Vec<Write<T>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut writes = Vec::new();
        for task in self.tasks {
            writes.extend(task.await.expect("a writer panicked"));
        }
        writes
    }
}

/// From the first failed write to the last (zero when none failed).
pub fn error_window<T>(writes: &[Write<T>]) -> Duration {
    let failed = || writes.iter().filter(|w| w.outcome.is_err()).map(|w| w.at);
    match (failed().min(), failed().max()) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => Duration::ZERO,
    }
}

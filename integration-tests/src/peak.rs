//! [`Peak`]: the most of something a server shows while a load runs, sampled in a task of its
//! own.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Samples `N` figures over and over until stopped, keeping the largest of each.
pub struct Peak<const N: usize> {
    stop: Arc<AtomicBool>,
    task: JoinHandle<([i64; N], usize)>,
}

impl<const N: usize> Peak<N> {
    /// Starts sampling `measure` every 2 ms.
    pub fn start<F, Fut>(mut measure: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = [i64; N]> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let (mut most, mut samples) = ([i64::MIN; N], 0);
            while !stopped.load(Ordering::SeqCst) {
                for (most, now) in most.iter_mut().zip(measure().await) {
                    *most = (*most).max(now);
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (most, samples)
        });
        Peak { stop, task }
    }

    /// Stops sampling; the largest value of each figure and how many samples were taken.
    ///
    /// # Panics
    ///
    /// When a sample panicked.
    pub async fn stop(self) -> ([i64; N], usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the sampler ran to its end")
    }
}

/// Waits for every task, within `limit` in all.
///
/// # Panics
///
/// When a task panicked, or they are not all done within `limit`.
pub async fn join_within(what: &str, limit: Duration, tasks: Vec<JoinHandle<()>>) {
    let all = async {
        for task in tasks {
            task.await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        }
    };
    if tokio::time::timeout(limit, all).await.is_err() {
        panic!("{what} did not finish within {limit:?}");
    }
}

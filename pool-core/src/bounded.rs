//! Time bounds that cost nothing when the work is already done.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Runs `fut` for at most `limit()`; `None` if it did not finish in time.
///
/// The future is polled once before any timer exists (and before `limit` is asked), so work
/// that completes at once (a check skipped by the manager, a reset with nothing to do) never
/// arms a timer or reads the clock.
pub(crate) async fn bounded<F: Future>(
    fut: F,
    limit: impl FnOnce() -> Duration,
) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let first = poll_fn(|cx| {
        Poll::Ready(match fut.as_mut().poll(cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        })
    })
    .await;
    match first {
        Some(out) => Some(out),
        None => tokio::time::timeout(limit(), fut).await.ok(),
    }
}

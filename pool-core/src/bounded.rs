//! Time bounds that cost nothing when the work is already done.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Runs `fut` for at most `limit()`; `None` if it did not finish in time.
///
/// The future is polled once before any timer exists (and before `limit` is asked), so work
/// that completes at once (a check skipped by the manager, a reset with nothing to do) never
/// arms a timer or reads the clock. The timer is boxed: it is several times larger than the
/// rest of an acquire's state, and it is only made for work that has to wait on I/O anyway.
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
    if first.is_some() {
        return first;
    }
    let mut timer = Box::pin(tokio::time::sleep(limit()));
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

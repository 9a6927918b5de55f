//! Failing connects: the pool rides out a run of transient failures, answers permanent ones at
//! once, and says why when it times out (a backend error, a connect timeout, a panic).

mod common;

use std::time::Duration;

use common::{assert_quiet, error_text, hold, Behave, Mock, Op};
use pool_core::{ConnectError, Error, Pool, TimeoutStage};
use tokio::time::Instant;

/// Small backoff so a long run of failures fits well inside the acquire timeout.
fn pool(mock: &Mock, max_size: usize) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(max_size)
        .acquire_timeout(Duration::from_secs(30))
        .connect_backoff(Duration::from_millis(10))
        .connect_backoff_max(Duration::from_millis(100))
        .build_lazy()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn ten_times_max_size_transient_failures_in_a_row_then_the_pool_recovers() {
    const MAX: usize = 3;
    let mock = Mock::new();
    let pool = pool(&mock, MAX);
    mock.script(Op::Connect, [Behave::Transient; 10 * MAX]);

    // Each caller keeps its connection, so all MAX connects must get through.
    let callers: Vec<_> = (0..MAX)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(hold) })
        })
        .collect();
    let mut held = Vec::new();
    for caller in callers {
        held.push(
            caller
                .await
                .unwrap()
                .expect("each caller is served within its timeout, no restart needed"),
        );
    }

    let stats = pool.stats();
    assert_eq!(
        stats.connects_failed,
        (10 * MAX) as u64,
        "every failure was retried"
    );
    assert_eq!(stats.connects_ok, MAX as u64);
    assert_eq!(
        mock.connects_attempted(),
        11 * MAX,
        "no connect beyond what the callers needed"
    );
    drop(held);
    assert_eq!(assert_quiet(&pool, 0).await.size, MAX);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_comes_back_at_once_to_every_waiter() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    mock.set(Op::Connect, Behave::Permanent);

    let start = Instant::now();
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(|c| c.id) })
        })
        .collect();
    for caller in callers {
        let err = caller.await.unwrap().expect_err("connects cannot succeed");
        assert!(matches!(err, Error::Connect(_)), "{err:?}");
        assert!(err.backend().is_some_and(|e| e.permanent));
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "retrying a permanent error only delays the answer (acquire timeout is 30 s), took {:?}",
        start.elapsed()
    );
    assert!(
        mock.connects_attempted() <= 2,
        "a permanent error is not retried"
    );

    // Once the cause is fixed, the same pool serves again.
    mock.set(Op::Connect, Behave::Ok);
    drop(hold(pool.get().await.expect("serves once connects work")));
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_timeout_while_connects_keep_failing_carries_the_last_connect_error() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    mock.set(Op::Connect, Behave::Transient);

    let err = pool.get_timeout(Duration::from_secs(2)).await.unwrap_err();
    let Error::Timeout(timeout) = &err else {
        panic!("expected a timeout, got {err:?}")
    };
    assert_eq!(timeout.stage(), TimeoutStage::Waiting);
    assert!(matches!(
        timeout.last_connect_error(),
        Some(ConnectError::Backend(_))
    ));
    assert!(
        err.backend().is_some(),
        "the manager's own error is reachable"
    );
    assert!(err.to_string().contains("kept failing"), "{err}");

    // Walking `source()` reaches the manager's message, so a log shows the real cause.
    let wanted = error_text(Op::Connect, false);
    let mut chain = Vec::new();
    let mut cause: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = cause {
        chain.push(e.to_string());
        cause = e.source();
    }
    assert!(chain.iter().any(|m| m.contains(&wanted)), "{chain:?}");

    mock.set(Op::Connect, Behave::Ok);
    drop(pool.get().await.unwrap());
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_connect_that_never_finishes_shows_as_a_connect_timeout() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .connect_timeout(Duration::from_millis(200))
        .acquire_timeout(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    mock.set(Op::Connect, Behave::Hang);

    let err = pool.get().await.unwrap_err();
    let Error::Timeout(timeout) = &err else {
        panic!("expected a timeout, got {err:?}")
    };
    let last = timeout.last_connect_error();
    assert!(
        matches!(last, Some(ConnectError::Timeout(limit)) if *limit == Duration::from_millis(200)),
        "{last:?}"
    );
    assert!(
        err.backend().is_none(),
        "no manager error to show: the connect never answered"
    );

    mock.set(Op::Connect, Behave::Ok);
    drop(pool.get().await.unwrap());
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_connect_is_a_failed_connect_and_the_pool_serves_again() {
    let mock = Mock::new();
    let pool = pool(&mock, 2);
    mock.set(Op::Connect, Behave::Panic);

    let err = pool
        .get_timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    let Error::Timeout(timeout) = &err else {
        panic!("expected a timeout, got {err:?}")
    };
    match timeout.last_connect_error() {
        Some(ConnectError::Panic(message)) => {
            assert!(message.contains("mock connect panicked"), "{message}")
        }
        other => panic!("expected the panic as the last connect error, got {other:?}"),
    }
    assert!(pool.stats().connects_failed >= 1);

    mock.set(Op::Connect, Behave::Ok);
    drop(hold(pool.get().await.expect("the panic cost no slot")));
    assert_quiet(&pool, 0).await;
}

/// Runs `body` on a paused current-thread runtime in a thread of its own, failing (instead of
/// hanging the suite) if it does not finish within 20 s of real time.
fn within_real_time<T: Send + 'static>(
    body: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let _ = done.send(runtime.block_on(body()));
    });
    outcome
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the pool livelocked (or panicked) while connects backed off")
}

/// A transient failure is waited out: the next caller's connect starts once the backoff is
/// over, and the pool does not spin meanwhile (run on a thread of its own with a real-time
/// limit, so a livelock fails the test instead of hanging the suite).
#[test]
fn after_a_transient_failure_the_next_connect_waits_for_the_backoff() {
    let waited = within_real_time(|| {
        Box::pin(async {
            let mock = Mock::new();
            let pool = Pool::builder(mock.clone())
                .max_size(1)
                .connect_backoff(Duration::from_secs(2))
                .connect_backoff_max(Duration::from_secs(2))
                .build_lazy()
                .unwrap();
            mock.set(Op::Connect, Behave::Transient);
            let failed_at = Instant::now();
            let short = pool.get_timeout(Duration::from_millis(100)).await;
            assert!(short.unwrap_err().is_timeout());

            mock.set(Op::Connect, Behave::Ok);
            drop(
                pool.get()
                    .await
                    .expect("the connect after the backoff succeeds"),
            );
            assert_quiet(&pool, 0).await;
            failed_at.elapsed()
        })
    });
    // The backoff after one failure is between half and all of connect_backoff.
    assert!(
        waited >= Duration::from_secs(1) && waited <= Duration::from_secs(2),
        "waited {waited:?}"
    );
}

/// A permanent error (a wrong password) reaches every caller at once, each from a connect
/// attempt of its own, never as a timeout after the backoff: the backoff spares a server
/// transient storms only.
#[tokio::test(start_paused = true)]
async fn a_permanent_error_reaches_each_later_caller_at_once_not_after_the_backoff() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .acquire_timeout(Duration::from_secs(1))
        .connect_backoff(Duration::from_millis(500))
        .connect_backoff_max(Duration::from_secs(5))
        .build_lazy()
        .unwrap();
    mock.set(Op::Connect, Behave::Permanent);
    for caller in 0..5 {
        let start = Instant::now();
        let error = pool.get().await.unwrap_err();
        assert!(
            matches!(error, Error::Connect(_)),
            "caller {caller} got {error:#} instead of the connect error"
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "caller {caller} waited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mock.connects_attempted(), 5, "one attempt per caller");

    // The pool recovers as soon as the server accepts again.
    mock.set(Op::Connect, Behave::Ok);
    drop(pool.get().await.unwrap());
    assert_quiet(&pool, 0).await;
}

/// A manager whose `has_broken` keeps saying yes does not turn an acquire into a connect and
/// close storm: a connection broken as soon as it is opened is a failed connect, retried with
/// backoff, and the timeout names it.
#[tokio::test(start_paused = true)]
async fn a_manager_that_calls_every_connection_broken_meets_the_backoff_and_is_named() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .connect_backoff(Duration::from_millis(50))
        .connect_backoff_max(Duration::from_millis(400))
        .build_lazy()
        .unwrap();
    mock.set_broken(true);
    let error = pool.get_timeout(Duration::from_secs(1)).await.unwrap_err();
    let Error::Timeout(timeout) = &error else {
        panic!("expected a timeout, got {error:#}");
    };
    assert_eq!(
        timeout.stage(),
        TimeoutStage::Waiting,
        "neither a reset nor a check ran"
    );
    assert!(
        matches!(
            timeout.last_connect_error(),
            Some(ConnectError::BrokenAtOnce)
        ),
        "{error:#}"
    );
    assert!(
        format!("{error:#}").contains("has_broken"),
        "the cause is printed: {error:#}"
    );
    // 50, 100, 200, 400 ms (halved at worst by the jitter) fit about ten attempts in a second.
    let attempts = mock.connects_attempted();
    assert!(attempts <= 12, "{attempts} connects in one second");
    assert_eq!(pool.stats().connects_failed, attempts as u64);

    mock.set_broken(false);
    drop(pool.get().await.unwrap());
    assert_quiet(&pool, 0).await;
}

/// `{}` prints the pool's own layer; `{:#}` prints the whole chain down to the manager's error,
/// for a permanent connect error, a timeout while connects fail, and a failed build.
#[tokio::test(start_paused = true)]
async fn the_alternate_display_prints_the_cause_chain() {
    let mock = Mock::new();
    let pool = pool(&mock, 1);
    let cause = error_text(Op::Connect, true);

    mock.set(Op::Connect, Behave::Permanent);
    let error = pool.get().await.unwrap_err();
    assert_eq!(error.to_string(), "could not open a connection");
    assert_eq!(
        format!("{error:#}"),
        format!("could not open a connection: {cause}")
    );

    mock.set(Op::Connect, Behave::Transient);
    let error = pool
        .get_timeout(Duration::from_millis(200))
        .await
        .unwrap_err();
    let plain = error.to_string();
    assert!(!plain.contains("refused"), "one layer only: {plain}");
    let chain = format!("{error:#}");
    assert!(
        chain.starts_with(&plain) && chain.ends_with(&error_text(Op::Connect, false)),
        "{chain}"
    );

    mock.set(Op::Connect, Behave::Permanent);
    let build = Pool::builder(mock.clone()).initial_size(1).build().await;
    let error = build.unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        format!("could not open the initial connections: {cause}")
    );
}

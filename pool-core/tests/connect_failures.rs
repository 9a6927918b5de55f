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

/// After a failed connect a new caller must wait out the backoff and then get its connect;
/// while it waits the background task sleeps until then. (It used to wake itself in a loop:
/// a busy spin in real time, and a livelock under paused time, where the clock only moves
/// once every task is idle.)
///
/// Runs on a thread of its own with a real-time watchdog, so a livelock fails the test
/// instead of hanging the suite.
#[test]
fn after_a_failed_connect_the_next_caller_connects_once_the_backoff_is_over() {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let waited = runtime.block_on(async {
            let mock = Mock::new();
            let pool = Pool::builder(mock.clone())
                .max_size(1)
                .connect_backoff(Duration::from_secs(2))
                .connect_backoff_max(Duration::from_secs(2))
                .build_lazy()
                .unwrap();
            mock.set(Op::Connect, Behave::Permanent);
            assert!(matches!(pool.get().await, Err(Error::Connect(_))));

            mock.set(Op::Connect, Behave::Ok);
            let start = Instant::now();
            drop(
                pool.get()
                    .await
                    .expect("the connect after the backoff succeeds"),
            );
            assert_quiet(&pool, 0).await;
            start.elapsed()
        });
        let _ = done.send(waited);
    });
    let waited = outcome
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the pool livelocked (or panicked) while connects backed off");
    // The backoff after one failure is between half and all of connect_backoff.
    assert!(
        waited >= Duration::from_secs(1) && waited <= Duration::from_secs(2),
        "waited {waited:?}"
    );
}

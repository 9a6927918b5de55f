//! The pool's health and the retrying acquire: `ServiceUnavailable` once the server stayed
//! unreachable past the deadline, a quick return once it is back, and the start-up mode.

mod common;

use std::time::Duration;

use common::{assert_quiet, error_text, Behave, Mock, Op};
use pool_core::{Error, Health, Pool, Retry};
use tokio::time::Instant;

fn pool(mock: &Mock) -> Pool<Mock> {
    Pool::builder(mock.clone())
        .max_size(2)
        .acquire_timeout(Some(Duration::from_secs(10)))
        .build_lazy()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn gives_up_with_service_unavailable_carrying_attempts_and_the_cause() {
    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Transient);
    let pool = pool(&mock);
    let retry = Retry::default()
        .give_up_after(Some(Duration::from_secs(3)))
        .attempt_timeout(Duration::from_millis(500));

    let started = Instant::now();
    let err = pool.get_retrying(&retry).await.unwrap_err();
    let waited = started.elapsed();

    let Error::ServiceUnavailable { attempts, last, .. } = &err else {
        panic!("expected ServiceUnavailable, got {err:?}");
    };
    assert!(*attempts >= 3, "{attempts} attempts");
    assert!(last.last_connect_error().is_some(), "{last:?}");
    assert!(err.is_unavailable());
    assert_eq!(
        err.backend().map(ToString::to_string),
        Some(error_text(Op::Connect, false)),
        "the last connect error is reachable"
    );
    assert!(
        waited <= Duration::from_secs(3) + Duration::from_millis(50),
        "gave up after {waited:?}"
    );
    assert!(
        waited >= Duration::from_secs(2),
        "gave up early, after {waited:?}"
    );
    assert_eq!(pool.health(), Health::Unavailable);
    mock.set_all_ok();
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn the_default_gives_up_after_thirty_seconds() {
    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Transient);
    let pool = pool(&mock);

    let started = Instant::now();
    let err = pool.get_retrying(&Retry::default()).await.unwrap_err();
    let waited = started.elapsed();

    assert!(matches!(err, Error::ServiceUnavailable { .. }), "{err:?}");
    assert!(
        (Duration::from_secs(28)..=Duration::from_secs(30)).contains(&waited),
        "gave up after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_recovery_ends_the_pause_and_the_caller_is_served_at_once() {
    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Transient);
    let pool = pool(&mock);
    // Long pauses, so being served soon after the recovery proves the pause was cut short.
    let retry = Retry::default()
        .initial_delay(Duration::from_secs(20))
        .attempt_timeout(Duration::from_millis(100))
        .give_up_after(Some(Duration::from_secs(60)));

    let caller = tokio::spawn({
        let pool = pool.clone();
        async move {
            let conn = pool.get_retrying(&retry).await;
            (conn.map(drop), Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_ne!(pool.health(), Health::Healthy);
    mock.set_all_ok();
    let recovered_at = Instant::now();
    // Something else gets a connection through (as a health check or another caller would).
    drop(pool.get().await.unwrap());
    assert_eq!(pool.health(), Health::Healthy);

    let (served, at) = caller.await.unwrap();
    served.expect("served after the recovery");
    assert!(
        at.duration_since(recovered_at) < Duration::from_secs(2),
        "served {:?} after the recovery",
        at.duration_since(recovered_at)
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn until_the_first_success_it_retries_without_limit_then_bounds_again() {
    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Transient);
    let pool = pool(&mock);
    let retry = Retry::default()
        .give_up_after(Some(Duration::from_secs(5)))
        .until_first_success(true);

    let caller = tokio::spawn({
        let pool = pool.clone();
        let retry = retry.clone();
        async move { pool.get_retrying(&retry).await.map(drop) }
    });
    // Far past the give-up time, the starting service is still waiting.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!caller.is_finished());
    mock.set_all_ok();
    caller.await.unwrap().expect("served once the server is up");

    // Now that it has connected once, an outage is bounded again.
    mock.set(Op::Connect, Behave::Transient);
    pool.signal_recovery(); // drop the idle connection so a new one is needed
    let started = Instant::now();
    let err = pool.get_retrying(&retry).await.unwrap_err();
    assert!(matches!(err, Error::ServiceUnavailable { .. }), "{err:?}");
    assert!(started.elapsed() <= Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_returned_at_once() {
    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Permanent);
    let pool = pool(&mock);

    let started = Instant::now();
    let err = pool.get_retrying(&Retry::default()).await.unwrap_err();
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn health_follows_what_the_pool_sees() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .initial_size(2)
        .skip_check_within(Duration::ZERO)
        .build()
        .await
        .unwrap();
    assert_eq!(pool.health(), Health::Healthy);

    // A failed check and failing connects while a connection is still open: degraded.
    let held = pool.get().await.unwrap();
    mock.script(Op::Check, [Behave::Transient]);
    mock.set(Op::Connect, Behave::Transient);
    let err = pool
        .get_timeout(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(pool.health(), Health::Degraded);
    drop(held);

    // Every connection gone and connects failing: unavailable.
    pool.retain(|_, _| false);
    let err = pool
        .get_timeout(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(pool.health(), Health::Unavailable);

    mock.set_all_ok();
    drop(pool.get().await.unwrap());
    assert_eq!(pool.health(), Health::Healthy);
}

#[tokio::test(start_paused = true)]
async fn retrying_acquires_dropped_at_any_point_leave_nothing_behind() {
    let mock = Mock::new();
    mock.set(Op::Connect, Behave::Transient);
    let pool = pool(&mock);
    let retry = Retry::default().attempt_timeout(Duration::from_millis(300));
    // Dropped during an attempt, during a pause, and at the moment one turns into the other.
    for ms in [0, 1, 10, 150, 299, 300, 301, 420, 1_000, 2_500] {
        let dropped =
            tokio::time::timeout(Duration::from_millis(ms), pool.get_retrying(&retry)).await;
        assert!(dropped.is_err(), "nothing can be served yet");
    }
    mock.set_all_ok();
    drop(
        pool.get_retrying(&retry)
            .await
            .expect("served once connects work"),
    );
    assert_quiet(&pool, 0).await;
}

//! The background task's schedule: work by level, the adaptive interval, and the
//! `Maintenance` handle that stops, restarts and runs it.

mod common;

use std::time::Duration;

use common::{assert_quiet, closes, hold_n, poll_times, Behave, Mock, Op};
use pool_core::{CloseReason, Error, Pool, UpkeepLevel};

fn runs(pool: &Pool<Mock>, level: UpkeepLevel) -> u64 {
    pool.maintenance().runs()[level as usize]
}

#[tokio::test(start_paused = true)]
async fn urgent_work_runs_before_low_work_queued_earlier() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .min_idle(2)
        .maintenance_interval(Duration::from_secs(10))
        .build_lazy()
        .unwrap();
    drop(hold_n(&pool, 3).await);
    // Let the rounds that follow the opening settle; the next routine round is up to 10 s off.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let low = runs(&pool, UpkeepLevel::Low);

    pool.signal_recovery();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(runs(&pool, UpkeepLevel::Urgent), 1, "ran at once");
    assert_eq!(
        runs(&pool, UpkeepLevel::Low),
        low,
        "the routine round queued before it has not run yet"
    );
    let status = assert_quiet(&pool, 0).await;
    assert_eq!(status.idle, 2, "refilled to min_idle from the new server");
}

#[tokio::test(start_paused = true)]
async fn a_configuration_change_is_applied_to_idle_connections_at_once() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(3)
        .idle_timeout(Duration::from_secs(600))
        .maintenance_interval(Duration::from_secs(60))
        .build_lazy()
        .unwrap();
    drop(hold_n(&pool, 3).await);
    tokio::time::sleep(Duration::from_secs(130)).await;
    assert_eq!(pool.status().idle, 3);

    let mut config = pool.config();
    config.idle_timeout = Some(Duration::from_secs(100));
    pool.update_config(config).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(runs(&pool, UpkeepLevel::High), 1);
    assert_eq!(
        closes(&pool, CloseReason::IdleTimeout),
        3,
        "closed now, not at the next routine round a minute later"
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_checkout_check_has_every_idle_connection_checked_soon() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(4)
        .skip_check_within(Duration::from_millis(1))
        .maintenance_interval(Duration::from_secs(60))
        .maintenance_interval_min(Duration::from_millis(100))
        .build_lazy()
        .unwrap();
    drop(hold_n(&pool, 4).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let checks = mock.checks();

    // The first connection handed out fails its check: the caller gets the next one, and the
    // two left idle are checked within the floor interval, long before the routine round.
    mock.script(Op::Check, [Behave::Transient]);
    let conn = pool.get().await.unwrap();
    assert_eq!(mock.checks(), checks + 2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(runs(&pool, UpkeepLevel::Medium), 1);
    assert_eq!(mock.checks(), checks + 4, "both idle connections checked");
    drop(conn);
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn the_interval_shortens_while_rounds_find_work_and_lengthens_when_idle() {
    let mock = Mock::new();
    mock.track_state(true);
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .maintenance_interval(Duration::from_secs(8))
        .maintenance_interval_min(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    let maintenance = pool.maintenance();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        maintenance.interval(),
        Duration::from_secs(8),
        "idle: the ceiling"
    );

    // Connections returned dirty give rounds work.
    for _ in 0..3 {
        pool.get().await.unwrap().dirty = true;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        maintenance.interval() < Duration::from_secs(8),
        "{:?}",
        maintenance.interval()
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(maintenance.interval(), Duration::from_secs(8), "back up");
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn stopped_upkeep_keeps_deadlines_and_runs_when_asked() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .idle_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(2))
        .maintenance_interval(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    let maintenance = pool.maintenance();
    maintenance.stop();
    assert!(maintenance.is_stopped());
    drop(hold_n(&pool, 2).await);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        closes(&pool, CloseReason::IdleTimeout),
        0,
        "no routine round ran"
    );

    // A queued caller still times out at its deadline.
    let held = hold_n(&pool, 2).await;
    let started = tokio::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    drop(held);

    // Run now, while stopped: idle connections past their timeout go.
    tokio::time::sleep(Duration::from_secs(6)).await;
    maintenance.run_now().await;
    assert_eq!(closes(&pool, CloseReason::IdleTimeout), 2);

    // Started again, with a new interval.
    maintenance.restart(Duration::from_secs(3)).unwrap();
    assert!(!maintenance.is_stopped());
    assert_eq!(pool.config().maintenance_interval, Duration::from_secs(3));
    assert!(maintenance.restart(Duration::ZERO).is_err());
    drop(hold_n(&pool, 1).await);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        closes(&pool, CloseReason::IdleTimeout),
        3,
        "routine rounds again"
    );
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_dropped_run_now_still_runs_its_round() {
    let mock = Mock::new();
    mock.track_state(true);
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .idle_timeout(Duration::from_secs(5))
        .build_lazy()
        .unwrap();
    let maintenance = pool.maintenance();
    maintenance.stop();
    drop(hold_n(&pool, 2).await);
    tokio::time::sleep(Duration::from_secs(6)).await;
    for polls in 0..3 {
        let _ = poll_times(maintenance.run_now(), polls, Duration::ZERO).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(closes(&pool, CloseReason::IdleTimeout), 2);
    assert!(maintenance.is_stopped(), "running once does not start it");
    assert_quiet(&pool, 0).await;
}

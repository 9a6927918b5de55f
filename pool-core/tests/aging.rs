//! `AgingPolicy`: adaptive lifetimes shorten while connections fail and come back once
//! failures subside.

mod common;

use std::time::Duration;

use common::{assert_quiet, closes, Mock};
use pool_core::{AdaptiveAging, AgingPolicy, CloseReason, Pool};

/// Checks out and returns one connection `n` times; with `broken`, each comes back broken.
async fn cycle(pool: &Pool<Mock>, n: usize, broken: bool) {
    for _ in 0..n {
        let mut conn = pool.get().await.unwrap();
        conn.broken = broken;
    }
}

#[tokio::test(start_paused = true)]
async fn adaptive_aging_shortens_lifetimes_while_connections_fail_and_restores_them() {
    let mock = Mock::new();
    let aging = AdaptiveAging::default()
        .error_rate(0.2)
        .window(Duration::from_secs(10))
        .min_outcomes(5)
        .shortened_to(0.1);
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .max_lifetime(Duration::from_secs(100))
        .idle_timeout(None)
        .maintenance_interval(Duration::from_secs(1))
        .aging(AgingPolicy::Adaptive(aging))
        .build_lazy()
        .unwrap();

    // Healthy: a connection 20 s old lives on (its lifetime is 96-100 s).
    cycle(&pool, 10, false).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(closes(&pool, CloseReason::Expired), 0);
    assert_eq!(pool.stats().lifetimes_shortened, 0);

    // Failing: 5 broken returns of 15 outcomes in the window (33 % > 20 %).
    cycle(&pool, 5, true).await;
    assert_eq!(pool.stats().lifetimes_shortened, 1, "shortened once");
    // The lifetime is now about 10 s: a connection older than that is retired.
    cycle(&pool, 1, false).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        closes(&pool, CloseReason::Expired),
        1,
        "retired at a tenth of its lifetime"
    );

    // Failures subside: a window of successes brings the rate under half the bound.
    for _ in 0..3 {
        cycle(&pool, 20, false).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    let expired = closes(&pool, CloseReason::Expired);
    cycle(&pool, 1, false).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        closes(&pool, CloseReason::Expired),
        expired,
        "a 30 s old connection lives: the lifetime is back to 100 s"
    );
    assert_eq!(pool.stats().lifetimes_shortened, 1, "shortened only once");
    assert_quiet(&pool, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_fixed_policy_never_shortens_lifetimes() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone())
        .max_size(2)
        .max_lifetime(Duration::from_secs(100))
        .build_lazy()
        .unwrap();
    cycle(&pool, 50, true).await;
    cycle(&pool, 1, false).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(closes(&pool, CloseReason::Expired), 0);
    assert_eq!(pool.stats().lifetimes_shortened, 0);
    assert_quiet(&pool, 0).await;
}

#[test]
fn adaptive_aging_settings_are_validated() {
    for (aging, why) in [
        (AdaptiveAging::default().error_rate(0.0), "zero rate"),
        (AdaptiveAging::default().error_rate(f64::NAN), "NaN rate"),
        (
            AdaptiveAging::default().shortened_to(1.5),
            "share above one",
        ),
        (
            AdaptiveAging::default().window(Duration::ZERO),
            "zero window",
        ),
    ] {
        let err = Pool::builder(Mock::new())
            .aging(AgingPolicy::Adaptive(aging))
            .build_lazy()
            .unwrap_err();
        assert!(err.to_string().contains("`aging`"), "{why}: {err}");
    }
}

//! What the fault test binaries share: the per-server test macro, the scenarios' pool
//! settings, and the bodies of scenarios whose runs are split between the binaries (a
//! per-role fault runs beside other tests, the same fault made server-wide runs alone).
//!
//! Each binary uses a different part of this module, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use integration_tests::faults::backend::{pool, Backend};
use integration_tests::faults::load::{Load, Work};
use integration_tests::faults::{chain, Tenant};
use integration_tests::invariants::{assert_invariants, eventually, Acquires};
use pool_drivers::{CloseReason, Config, ErrorKind, Manager, Pool, PooledConnection};
use tokio::time::Instant;

/// Runs each scenario (an `async fn <scenario><B: Backend>()`) for each server kind, as the
/// tests `<scenario>::postgres`, `::mysql` and `::redis`.
macro_rules! for_each_server {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use integration_tests::faults::backend::{Mysql, Postgres, Redis};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario::<Postgres>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                super::$scenario::<Mysql>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$scenario::<Redis>().await;
            }
        }
    )*};
}
pub(crate) use for_each_server;

/// Settings shared by the scenarios: short limits, so a fault shows within a second or two,
/// and a background task that looks often.
pub fn config() -> Config {
    let mut config = Config::default();
    config.max_size = 4;
    config.acquire_timeout = Some(Duration::from_millis(1500));
    config.connect_timeout = Duration::from_millis(500);
    config.check_timeout = Duration::from_millis(300);
    config.reset_timeout = Duration::from_millis(300);
    config.connect_backoff_max = Duration::from_millis(300);
    config.maintenance_interval = Duration::from_millis(100);
    config
}

/// `n` connections checked out at once, each proven with an echo.
pub async fn hold<B: Backend, M>(
    pool: &Pool<M>,
    acquires: &Acquires,
    n: usize,
) -> Vec<PooledConnection<M>>
where
    M: Manager<Connection = B::Conn, Error = B::Error>,
{
    let mut held = Vec::new();
    for i in 0..n {
        let mut conn = acquires
            .get(pool)
            .await
            .unwrap_or_else(|e| panic!("connection {i} of {n}: {}", chain(&e)));
        let n = i64::try_from(i).unwrap();
        assert_eq!(B::echo(&mut conn, n).await.unwrap(), n);
        held.push(conn);
    }
    held
}

/// `n` acquires one after another, each proven with its own echo; `after` names what the
/// pool just went through, for the failure message.
pub async fn echo_in_turn<B: Backend, M>(pool: &Pool<M>, acquires: &Acquires, n: i64, after: &str)
where
    M: Manager<Connection = B::Conn, Error = B::Error>,
{
    for i in 0..n {
        let mut conn = acquires
            .get(pool)
            .await
            .unwrap_or_else(|e| panic!("acquire {i} after {after}: {}", chain(&e)));
        assert_eq!(B::echo(&mut conn, i).await.unwrap(), i);
    }
}

/// Waits, at most `within`, until the server counts no session of `tenant`; `what` names
/// them in the failure message.
pub async fn sessions_gone(tenant: &Tenant, what: &str, within: Duration) {
    eventually(what, within, || async {
        match tenant.sessions().await? {
            0 => Ok(()),
            n => Err(format!("{n} left")),
        }
    })
    .await;
}

/// Scenario 5, a server connection limit below `max_size`: 12 tasks loop acquire + echo for
/// three seconds on a pool of 6 that the server lets have fewer sessions. Work goes on over
/// the sessions the server allows: no step fails, no acquire outlives its deadline (so none
/// waited on a full server while a connection sat idle), connects were refused on the way,
/// and the refusal is one the pool retries rather than hands to callers.
///
/// `exact`: the tenant's own limit, which the pool must never exceed. A server-wide limit
/// (`None`) also counts everybody else's sessions (the admin session counting them among
/// them, which then may not even get in), so the pool must only have stayed below
/// `max_size`.
///
/// Returns the pool and its acquires for the invariants, which the caller checks once the
/// server has room again.
pub async fn limited_work<B: Backend>(
    tenant: &Tenant,
    exact: Option<usize>,
) -> (Pool<B::Manager>, Arc<Acquires>) {
    let acquires = Arc::new(Acquires::new());
    let mut config = config();
    config.max_size = 6;
    config.acquire_timeout = Some(Duration::from_secs(3));
    let pool = pool::<B>(tenant, tenant.server_addr(), config);
    let load = Load::start::<B, _>(&pool, 12, &acquires, Work::Echo);
    let until = Instant::now() + Duration::from_secs(3);
    let mut most = 0;
    while Instant::now() < until {
        let sessions = match tenant.sessions().await {
            Ok(n) => n,
            Err(e) if exact.is_some() => panic!("{e}"),
            Err(_) => 0,
        };
        most = most.max(sessions).max(pool.status().size);
        if let Some(limit) = exact {
            assert!(most <= limit, "{most} sessions with a limit of {limit}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let steps = load.stop().await;
    let failures: Vec<_> = steps.iter().filter_map(|s| s.failure.as_ref()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} steps failed, the first: {:#?}",
        failures.len(),
        steps.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(most < 6, "the limit never bound: {most} sessions");
    assert!(steps.len() > 100, "work went on: {} steps", steps.len());
    let stats = pool.stats();
    assert!(
        stats.connects_failed > 0,
        "the limit was never reached: {stats:?}"
    );
    let refused = match pool.manager().connect().await {
        Ok(_) => panic!("the server is full, yet a connect succeeded"),
        Err(e) => e,
    };
    assert_eq!(
        pool.manager().classify(&refused),
        ErrorKind::Transient,
        "{}",
        chain(&refused)
    );
    eprintln!(
        "{}: {} steps on at most {most} sessions; refusal: {}",
        B::KIND,
        steps.len(),
        chain(&refused)
    );
    (pool, acquires)
}

/// Scenario 6b, the server ending idle sessions on its own (the caller has set it to do so
/// after a second): the next acquires, which check the connections since they sat idle
/// longer than the skip window, see no error.
pub async fn server_idle_timeout<B: Backend>(tenant: &Tenant) {
    let acquires = Arc::new(Acquires::new());
    let mut config = config();
    config.max_size = 3;
    let pool = pool::<B>(tenant, tenant.server_addr(), config.clone());
    drop(hold::<B, _>(&pool, &acquires, 3).await);
    sessions_gone(
        tenant,
        "the server ending idle sessions",
        Duration::from_secs(5),
    )
    .await;
    echo_in_turn::<B, _>(&pool, &acquires, 6, "the idle timeout").await;
    let stats = pool.stats();
    let found = stats.checks_failed
        + stats.closes.get(CloseReason::Broken)
        + stats.closes.get(CloseReason::ResetFailed);
    assert!(found >= 1, "the dead connections were found: {stats:?}");
    // Keepalive checks from now on keep sessions from idling out, and find any that did.
    config.keepalive_interval = Some(Duration::from_millis(200));
    pool.update_config(config).unwrap();
    assert_invariants(&pool, &[tenant], &acquires).await;
}

//! Fault scenarios that stop a server or change a server-wide setting. Every test here holds
//! [`serial`] while it runs, so they never overlap, and restores the server through an RAII
//! guard ([`Outage`], [`RedisConfig`], [`MysqlGlobal`]) however it ends: started again and
//! answering (for PostgreSQL, with the replica streaming again), settings put back. Other
//! test binaries never see any of it: Cargo runs binaries one at a time.
//!
//! Restarts need this machine's servers and the commands of DESIGN.md "Services"; without
//! them a test is skipped with a loud message (a failure when `CI` is set).

mod fault_shared;

use std::sync::Arc;
use std::time::Duration;

use fault_shared::{config, for_each_server};
use integration_tests::faults::backend::{pool, Backend, Mysql, Redis};
use integration_tests::faults::load::{Failure, Load, Work};
use integration_tests::faults::server::{cannot_restart, serial, MysqlGlobal, Outage, RedisConfig};
use integration_tests::faults::{chain, Tenant};
use integration_tests::invariants::{assert_invariants, eventually, server_agrees, Acquires};
use integration_tests::{server, Kind, Server};
use pool_drivers::mysql::mysql_async::prelude::Queryable;
use pool_drivers::DriverConfig;
use pool_drivers::{redis, ErrorKind, Manager as _};
use tokio::time::Instant;

for_each_server!(restart_under_load, built_while_down);

/// The server to restart, or `None` when this machine cannot restart it (said loudly; with
/// `CI` set, a failure).
async fn restartable(kind: Kind) -> Option<Server> {
    let server = server(kind).await?;
    if let Some(why) = cannot_restart(kind) {
        assert!(
            std::env::var_os("CI").is_none(),
            "{why}; CI is set, so this is a failure"
        );
        integration_tests::skip(&why);
        return None;
    }
    Some(server)
}

/// How long after the server answers again the pool may still fail ("within a few seconds").
const RECOVERY: Duration = Duration::from_secs(3);

/// Most connect attempts per second while the server is down: backoff (here up to 1 s, with
/// at most 4 connects at once) keeps it to a few; a busy loop would make thousands.
const MAX_ATTEMPTS_PER_SECOND: f64 = 20.0;

/// Scenario 1: A server restart under load: 32 tasks loop acquire + echo on a pool of 8 while
/// the server is stopped for a second and a half and started again. Steps fail only while it is
/// down or within [`RECOVERY`] of its return; then every step succeeds. A failure while it is
/// down carries its real cause: an acquire error with the connect error behind it, or the
/// driver's error for a request cut off. No acquire started after the return is served a
/// connection opened before the stop, and connect attempts stay bounded while it is down.
async fn restart_under_load<B: Backend>() {
    let Some(server) = restartable(B::KIND).await else {
        return;
    };
    let _serial = serial().await;
    let tenant = Tenant::create(B::KIND, &server, "restart").await;
    let acquires = Arc::new(Acquires::new());
    let mut config = config();
    config.max_size = 8;
    config.acquire_timeout = Some(Duration::from_secs(2));
    config.connect_timeout = Duration::from_secs(1);
    config.connect_backoff_max = Duration::from_secs(1);
    let pool = pool::<B>(&tenant, tenant.server_addr(), config);
    let load = Load::start::<B, _>(&pool, 32, &acquires, Work::Echo);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stopping = Instant::now();
    let mut outage = Outage::begin(B::KIND, &[&tenant]).await;
    let (down, before) = (Instant::now(), pool.stats());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (starting, after) = (Instant::now(), pool.stats());
    outage.end().await;
    let up = Instant::now();
    tokio::time::sleep(RECOVERY + Duration::from_secs(2)).await;
    let steps = load.stop().await;

    let attempts =
        (after.connects_ok + after.connects_failed) - (before.connects_ok + before.connects_failed);
    #[allow(clippy::cast_precision_loss)]
    let rate = attempts as f64 / (starting - down).as_secs_f64();
    assert!(
        rate <= MAX_ATTEMPTS_PER_SECOND,
        "{attempts} connect attempts in {:?} while down",
        starting - down
    );
    for step in &steps {
        let Some(failure) = &step.failure else {
            continue;
        };
        assert!(
            step.ended >= stopping,
            "a step failed before the stop: {failure:?}"
        );
        assert!(
            step.started < up + RECOVERY,
            "a step failed {:?} after the server answered again: {failure:?}",
            step.started - up
        );
        match failure {
            // Once a connect succeeds the pool forgets the last connect error, while its
            // other connects may still sleep out their backoff: a caller that times out in
            // that ramp-up learns only that the pool was busy. Until connects sleeping in
            // backoff are woken by a sibling's success, that is accepted once the server is
            // being started again: it answers before the start command returns, so the first
            // connect can succeed before `up`.
            Failure::Acquire { error, has_cause } => assert!(
                *has_cause || step.ended >= starting,
                "an acquire failed without its cause while the server was down: {error}"
            ),
            Failure::Request(error) => assert!(!error.is_empty()),
            Failure::WrongAnswer { .. } | Failure::Stuck => panic!("{failure:?}"),
        }
    }
    let stale = steps
        .iter()
        .filter(|s| s.started >= up && s.conn_created.is_some_and(|c| c < stopping))
        .count();
    assert_eq!(
        stale, 0,
        "connections from before the restart handed out after it"
    );
    let last_failure = steps.iter().rev().find(|s| s.failure.is_some());
    let after_recovery = steps.iter().filter(|s| s.started >= up + RECOVERY).count();
    assert!(
        after_recovery >= 32,
        "only {after_recovery} steps after the recovery"
    );
    let failed = steps.iter().filter(|s| s.failure.is_some()).count();
    eprintln!(
        "{}: {} steps, {failed} failed; last failure {:?} after the server answered; \
         {attempts} connect attempts in {:?} down; longest acquire {:?}",
        B::KIND,
        steps.len(),
        last_failure.map(|s| s.ended.saturating_duration_since(up)),
        starting - down,
        acquires.longest(),
    );
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 2: A pool built (lazily, with `min_idle` 2) while its server is down: each acquire
/// fails by its deadline with the refusal as its cause, connect attempts stay bounded, and the pool
/// serves as soon as the server is up (and refills to `min_idle`).
async fn built_while_down<B: Backend>() {
    let Some(server) = restartable(B::KIND).await else {
        return;
    };
    let _serial = serial().await;
    let tenant = Tenant::create(B::KIND, &server, "down").await;
    let mut outage = Outage::begin(B::KIND, &[&tenant]).await;
    let acquires = Arc::new(Acquires::new());
    let mut config = config();
    config.min_idle = 2;
    config.acquire_timeout = Some(Duration::from_secs(1));
    let built = Instant::now();
    let pool = pool::<B>(&tenant, tenant.server_addr(), config);
    for _ in 0..3 {
        let err = match acquires.get(&pool).await {
            Ok(_) => panic!("served while the server is down"),
            Err(e) => e,
        };
        assert!(err.is_unavailable(), "{}", chain(&err));
        let text = chain(&err);
        assert!(
            text.to_lowercase().contains("refused"),
            "the cause is the refusal: {text}"
        );
    }
    let stats = pool.stats();
    #[allow(clippy::cast_precision_loss)]
    let rate = stats.connects_failed as f64 / built.elapsed().as_secs_f64();
    assert!(
        rate <= MAX_ATTEMPTS_PER_SECOND,
        "{stats:?} in {:?}",
        built.elapsed()
    );
    assert_eq!(stats.connects_ok, 0);

    outage.end().await;
    let up = Instant::now();
    let mut conn = acquires
        .get_timeout(&pool, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("not served once the server is up: {}", chain(&e)));
    assert_eq!(B::echo(&mut conn, 1).await.unwrap(), 1);
    eprintln!(
        "{}: served {:?} after the server answered",
        B::KIND,
        up.elapsed()
    );
    drop(conn);
    eventually("min_idle opened", Duration::from_secs(3), || async {
        let idle = pool.status().idle;
        if idle < 2 {
            return Err(format!("{idle} idle"));
        }
        server_agrees(&pool, &[&tenant]).await
    })
    .await;
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 5 for MySQL: the server-wide `max_connections` set to leave this pool of 6 about two
/// sessions (the server takes no less than 10, so sessions held open by the test make up the
/// rest; the pool gets fewer while the test's admin session counts them). The per-user
/// `MAX_USER_CONNECTIONS` cannot be used: MariaDB 10.11 stops counting a user's sessions once
/// they send `COM_RESET_CONNECTION`, which the pool's reset does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_below_max_size_mysql() {
    use pool_drivers::mysql::mysql_async::Conn;

    let Some(server) = server(Kind::Mysql).await else {
        return;
    };
    let _serial = serial().await;
    let tenant = Tenant::create(Kind::Mysql, &server, "limit").await;
    let mut fillers = vec![Conn::from_url(server.url()).await.unwrap()];
    let connected: Option<(String, usize)> = fillers[0]
        .query_first("SHOW STATUS LIKE 'Threads_connected'")
        .await
        .unwrap();
    // Everybody connected now, the guard's own session and two for the pool; the server takes
    // no less than 10, so sessions held by the test make up the difference.
    let wanted = connected.unwrap().1 + 1 + 2;
    let _limit = MysqlGlobal::set(&tenant, "max_connections", &wanted.max(10).to_string()).await;
    for _ in wanted..10 {
        fillers.push(Conn::from_url(server.url()).await.unwrap());
    }
    let (pool, acquires) = fault_shared::limited_work::<Mysql>(&tenant, None).await;
    for filler in fillers {
        filler.disconnect().await.unwrap();
    }
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 5 for Redis: `maxclients` (server-wide) set to let this pool of 6 have two sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_below_max_size_redis() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let _serial = serial().await;
    let tenant = Tenant::create(Kind::Redis, &server, "limit").await;
    let mut limit = RedisConfig::set(&tenant, "maxclients", "10000");
    let room = limit.connected_clients() + 2;
    limit.apply(&room.to_string()).unwrap();
    let (pool, acquires) = fault_shared::limited_work::<Redis>(&tenant, None).await;
    drop(limit);
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// A server at its `maxclients` limit answers a new client with `-ERR max number of clients
/// reached` and closes the socket. The connect error carries that reply, not the "broken pipe"
/// or "connection reset" of the read that follows, and is worth retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_at_maxclients_is_named_and_worth_retrying() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    // Every new client of the server is refused for a moment: no other test may connect then.
    let _serial = serial().await;
    let tenant = Tenant::create(Kind::Redis, &server, "maxclients").await;
    // Both handshakes: RESP2 (`CLIENT SETINFO` first) and RESP3 (`HELLO` first).
    let managers = [
        server.url().to_owned(),
        format!("{}?protocol=resp3", tenant.url(tenant.server_addr())),
    ]
    .map(|url| redis::Config::from_url(&url).unwrap().manager().unwrap());
    let errors = {
        // Sessions already open stay (the guard's own included), every new one is refused;
        // the server is shared, so the limit is put back right after the two connects.
        let _limit = RedisConfig::set(&tenant, "maxclients", "1");
        let mut errors = Vec::new();
        for manager in &managers {
            errors.push(manager.connect().await.err());
        }
        errors
    };
    for (manager, error) in managers.iter().zip(errors) {
        match error {
            Some(error @ redis::Error::TooManyConnections { .. }) => {
                let text = error.to_string();
                assert!(text.contains("ERR max number of clients reached"), "{text}");
                assert_eq!(manager.classify(&error), ErrorKind::Transient);
            }
            other => panic!("expected TooManyConnections, got {other:?}"),
        }
        manager
            .connect()
            .await
            .expect("a connect once the limit is back");
    }
}

/// Scenario 6b for MySQL: the server-wide `wait_timeout` at one second for new sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_idle_timeout_mysql() {
    let Some(server) = server(Kind::Mysql).await else {
        return;
    };
    let _serial = serial().await;
    let tenant = Tenant::create(Kind::Mysql, &server, "idle").await;
    let _timeout = MysqlGlobal::set(&tenant, "wait_timeout", "1").await;
    fault_shared::server_idle_timeout::<Mysql>(&tenant).await;
}

/// Scenario 6b for Redis: the server-wide `timeout` at one second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_idle_timeout_redis() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let _serial = serial().await;
    let tenant = Tenant::create(Kind::Redis, &server, "idle").await;
    let _timeout = RedisConfig::set(&tenant, "timeout", "1");
    fault_shared::server_idle_timeout::<Redis>(&tenant).await;
}

//! Fault scenarios against the real servers that break only what belongs to the test itself:
//! its own fault proxy, its own server-side user (killed, limited, timed out per role), its own
//! pool. They run side by side; the scenarios that stop a server or change a server-wide
//! setting are in `fault_restart.rs`, one at a time.
//!
//! Each scenario is written once, generic over [`Backend`], and run for PostgreSQL, MySQL
//! and Redis (`<scenario>::postgres`, `::mysql`, `::redis`); where a run is elsewhere or does
//! not apply, the scenario's comment says why. Every scenario ends with
//! [`assert_invariants`]: counts add up, the server counts as many sessions as the pool holds,
//! no session is inside a transaction, every acquire ended by its deadline.

mod fault_shared;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fault_shared::{config, echo_in_turn, for_each_server, hold, sessions_gone};
use integration_tests::faults::backend::{pool, Backend, Mysql, Postgres, Redis};
use integration_tests::faults::load::{Failure, Load, Rng, Work};
use integration_tests::faults::server::PgRoleSetting;
use integration_tests::faults::{chain, Tenant};
use integration_tests::invariants::{assert_invariants, eventually, server_agrees, Acquires};
use integration_tests::proxy::{Fault, Proxy};
use integration_tests::{server, Kind};
use pool_drivers::{CloseReason, ConnectError, Error, Pool, Replaceable, Stats};
use tokio::time::Instant;

for_each_server!(
    black_holed_connections,
    slow_connects,
    killed_idle_connections,
    panic_inside_a_transaction,
    cancellation_storm,
    close_with_waiters_queued,
    manager_replaced_at_run_time,
);

/// Scenario 3: Established connections black-holed by the proxy: an acquire (checks on, for every
/// connection: `skip_check_within` is zero) ends by its deadline; dropping connections held across
/// the fault, one with a request that never got its answer, costs no capacity; once traffic passes
/// again the pool serves at once and can hold `max_size` connections.
async fn black_holed_connections<B: Backend>() {
    let Some(server) = server(B::KIND).await else {
        return;
    };
    let tenant = Tenant::create(B::KIND, &server, "hole").await;
    let proxy = Proxy::start(tenant.server_addr()).await;
    let acquires = Acquires::new();
    let mut config = config();
    config.skip_check_within = Duration::ZERO;
    let pool = pool::<B>(&tenant, proxy.addr(), config);
    drop(hold::<B, _>(&pool, &acquires, 4).await);
    let mut held = hold::<B, _>(&pool, &acquires, 2).await;

    proxy.set(Fault::BlackHole);
    // A request that never gets its answer: the future is dropped, its connection is in an
    // unknown state.
    let unanswered = tokio::time::timeout(Duration::from_millis(300), B::echo(&mut held[0], 7));
    assert!(unanswered.await.is_err(), "the black hole answered");
    for _ in 0..2 {
        let err = match acquires.get(&pool).await {
            Ok(_) => panic!("a connection was handed out through a black hole"),
            Err(e) => e,
        };
        assert!(err.is_timeout(), "{}", chain(&err));
    }
    drop(held);
    let status = pool.status();
    assert_eq!(status.in_use, 0, "{status:?}");
    assert!(
        status.size + status.connecting <= status.max_size,
        "{status:?}"
    );
    assert!(
        pool.stats().closes.get(CloseReason::Broken) >= 1,
        "the connection with the unanswered request was closed, not pooled"
    );

    proxy.set(Fault::Pass);
    let since = Instant::now();
    let mut conn = acquires
        .get(&pool)
        .await
        .unwrap_or_else(|e| panic!("not served once traffic passes: {}", chain(&e)));
    assert_eq!(B::echo(&mut conn, 8).await.unwrap(), 8);
    eprintln!(
        "{}: served {:?} after traffic passed again",
        B::KIND,
        since.elapsed()
    );
    drop(conn);
    drop(hold::<B, _>(&pool, &acquires, 4).await);
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 4: Slow connects: the proxy delays every chunk past the connect timeout, so no
/// handshake can finish. Acquires end by their deadline with the connect timeout as the cause, no
/// slot stays reserved once nobody waits, and the pool serves `max_size` connections once the
/// latency drops.
async fn slow_connects<B: Backend>() {
    let Some(server) = server(B::KIND).await else {
        return;
    };
    let tenant = Tenant::create(B::KIND, &server, "slow").await;
    let proxy = Proxy::start(tenant.server_addr()).await;
    proxy.set(Fault::Latency(Duration::from_millis(700)));
    let acquires = Arc::new(Acquires::new());
    let mut config = config();
    config.max_size = 3;
    config.connect_timeout = Duration::from_millis(400);
    let pool = pool::<B>(&tenant, proxy.addr(), config);

    let attempts: Vec<_> = (0..3)
        .map(|_| {
            let (pool, acquires) = (pool.clone(), Arc::clone(&acquires));
            tokio::spawn(async move { acquires.get(&pool).await.map(drop) })
        })
        .collect();
    for attempt in attempts {
        let err = attempt.await.unwrap().expect_err("no handshake can finish");
        let Error::Timeout(timeout) = &err else {
            panic!("expected a timeout: {}", chain(&err));
        };
        assert!(
            matches!(
                timeout.last_connect_error(),
                Some(ConnectError::Timeout(limit)) if *limit == Duration::from_millis(400)
            ),
            "the cause is the connect timeout: {}",
            chain(&err)
        );
    }
    eventually(
        "no connect left once nobody waits",
        Duration::from_secs(3),
        || async {
            let status = pool.status();
            if status.connecting == 0 && status.size == 0 {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
    .await;
    assert!(pool.stats().connects_failed > 0);

    proxy.set(Fault::Latency(Duration::from_millis(5)));
    drop(hold::<B, _>(&pool, &acquires, 3).await);
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 5: A server connection limit below `max_size`: PostgreSQL's per-role `ALTER ROLE ...
/// CONNECTION LIMIT 2` on a pool of 6 (see `limited_work`). MySQL's per-user `MAX_USER_CONNECTIONS`
/// cannot be used: MariaDB 10.11 stops counting a user's sessions once they send
/// `COM_RESET_CONNECTION` (which the pool's reset does), so its run uses the server-wide
/// `max_connections`, and Redis's the server-wide `maxclients`, both in `fault_restart.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_below_max_size_postgres() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let tenant = Tenant::create(Kind::Postgres, &server, "limit").await;
    tenant.set_connection_limit(Some(2)).await.unwrap();
    let (pool, acquires) = fault_shared::limited_work::<Postgres>(&tenant, Some(2)).await;
    tenant.set_connection_limit(None).await.unwrap();
    drop(hold::<Postgres, _>(&pool, &acquires, 6).await);
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 6: Every idle connection killed by the server (`pg_terminate_backend`, `KILL`, `CLIENT
/// KILL`). With checks on the next acquires see no error: `skip_check_within` is zero here, since
/// the connections were opened moments before the kill and a check skipped for a connection used
/// within the window is the documented trade. Then, with keepalive checks on and no traffic at all,
/// the pool notices the second kill on its own and refills to `min_idle` with new sessions.
async fn killed_idle_connections<B: Backend>() {
    let Some(server) = server(B::KIND).await else {
        return;
    };
    let tenant = Tenant::create(B::KIND, &server, "killed").await;
    let acquires = Arc::new(Acquires::new());
    let mut config = config();
    config.min_idle = 3;
    config.skip_check_within = Duration::ZERO;
    let pool = pool::<B>(&tenant, tenant.server_addr(), config.clone());
    let filled = || async {
        let idle = pool.status().idle;
        if idle < 3 {
            return Err(format!("{idle} idle"));
        }
        server_agrees(&pool, &[&tenant]).await
    };
    eventually("min_idle opened", Duration::from_secs(5), filled).await;

    assert_eq!(tenant.kill_sessions().await.unwrap(), 3);
    sessions_gone(&tenant, "the sessions gone", Duration::from_secs(2)).await;
    echo_in_turn::<B, _>(&pool, &acquires, 6, "the kill").await;
    drop(hold::<B, _>(&pool, &acquires, 4).await);

    config.keepalive_interval = Some(Duration::from_millis(200));
    pool.update_config(config).unwrap();
    eventually("min_idle opened again", Duration::from_secs(5), filled).await;
    let before = pool.stats();
    // Read first: once killed, the background task may close them before `status` is read.
    let size = pool.status().size;
    assert_eq!(tenant.kill_sessions().await.unwrap(), size);
    eventually(
        "refilled without traffic",
        Duration::from_secs(5),
        || async {
            let stats = pool.stats();
            let replaced = stats.connects_ok - before.connects_ok;
            if replaced < 3 {
                return Err(format!("{replaced} new connections"));
            }
            filled().await
        },
    )
    .await;
    // Noticed by a keepalive check, or, for connections killed before the background task had
    // cleaned them after their return, by that reset.
    let noticed = |stats: &Stats| stats.checks_failed + stats.closes.get(CloseReason::ResetFailed);
    assert!(noticed(&pool.stats()) > noticed(&before));
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 6b: The server ends idle sessions on its own (PostgreSQL `idle_session_timeout`, set
/// for the test's role only): the next acquires, checked since the connections sat idle longer than
/// the skip window, see no error. MySQL's `wait_timeout` and Redis's `timeout` are server-wide, so
/// their runs are in `fault_restart.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_idle_timeout_postgres() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let tenant = Tenant::create(Kind::Postgres, &server, "idle").await;
    let _timeout = PgRoleSetting::set(&tenant, "idle_session_timeout", "1s").await;
    fault_shared::server_idle_timeout::<Postgres>(&tenant).await;
}

/// Scenario 7: A task panics while it holds a connection inside a transaction that has written (and
/// so, on PostgreSQL and MySQL, holds a row lock): the connection is closed, not pooled, so the
/// server ends the transaction; nothing it wrote is visible; the next borrower's queries succeed
/// and its own transaction is not blocked by a leftover lock.
async fn panic_inside_a_transaction<B: Backend>() {
    let Some(server) = server(B::KIND).await else {
        return;
    };
    let tenant = Tenant::create(B::KIND, &server, "panic").await;
    let acquires = Arc::new(Acquires::new());
    let mut config = config();
    config.max_size = 1;
    let pool = pool::<B>(&tenant, tenant.server_addr(), config);
    let task = tokio::spawn({
        let (pool, name) = (pool.clone(), tenant.name().to_owned());
        async move {
            let mut conn = pool.get().await.unwrap();
            B::begin_and_write(&mut conn, &name).await.unwrap();
            panic!("deliberate panic while holding a connection inside a transaction");
        }
    });
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(pool.stats().closes.get(CloseReason::Abandoned), 1);
    eventually(
        "the transaction ended on the server",
        Duration::from_secs(1),
        || async {
            match tenant.sessions_in_transaction().await? {
                0 => Ok(()),
                n => Err(format!("{n} inside a transaction")),
            }
        },
    )
    .await;

    let mut conn = acquires.get(&pool).await.unwrap();
    assert_eq!(B::echo(&mut conn, 1).await.unwrap(), 1);
    tokio::time::timeout(
        Duration::from_secs(2),
        B::transfer(&mut conn, tenant.name(), 5),
    )
    .await
    .expect("blocked by a lock of the panicked transaction")
    .unwrap();
    drop(conn);
    assert_eq!(
        tenant.totals().await.unwrap(),
        [-5, 5, 0],
        "the panicked transaction's write is gone"
    );
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Drops its inner future after it has been polled `polls` times: a cut at an exact await
/// point, whatever the timing.
struct CutAfterPolls<F> {
    inner: Pin<Box<F>>,
    polls: u32,
}

impl<F: Future> Future for CutAfterPolls<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        self.inner.as_mut().poll(cx).map(Some)
    }
}

/// Scenario 8: A cancellation storm: 1,000 acquire-and-query futures, 50 at a time, each dropped at
/// a random point (after a random number of polls, after a random time, or by aborting its task).
/// Afterwards the invariants hold and 200 concurrent queries each get their own answer.
async fn cancellation_storm<B: Backend>() {
    let Some(server) = server(B::KIND).await else {
        return;
    };
    let tenant = Tenant::create(B::KIND, &server, "storm").await;
    let acquires = Arc::new(Acquires::new());
    let pool = pool::<B>(&tenant, tenant.server_addr(), config());
    let mut rng = Rng::new(u64::from(std::process::id()));
    let (mut finished, mut cut) = (0, 0);
    for batch in 0..20 {
        let mut tasks = Vec::new();
        for i in 0..50 {
            let n = batch * 50 + i;
            let (pool, acquires) = (pool.clone(), Arc::clone(&acquires));
            let work = async move {
                let mut conn = acquires.get(&pool).await.map_err(|e| chain(&e))?;
                let got = B::echo(&mut conn, n).await?;
                Ok::<_, String>(got)
            };
            let (how, amount) = (rng.below(3), rng.below(40));
            let task = match how {
                0 => tokio::spawn(async move {
                    CutAfterPolls {
                        inner: Box::pin(work),
                        polls: u32::try_from(amount).unwrap() + 1,
                    }
                    .await
                }),
                1 => tokio::spawn(async move {
                    tokio::time::timeout(Duration::from_micros(amount * 100), work)
                        .await
                        .ok()
                }),
                _ => {
                    let task = tokio::spawn(async move { Some(work.await) });
                    let abort = task.abort_handle();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_micros(amount * 100)).await;
                        abort.abort();
                    });
                    task
                }
            };
            tasks.push((n, task));
        }
        for (n, task) in tasks {
            match task.await {
                Ok(Some(Ok(got))) => {
                    assert_eq!(got, n, "a reply meant for another request");
                    finished += 1;
                }
                Ok(Some(Err(e))) => panic!("a future that was not cut failed: {e}"),
                Ok(None) => cut += 1,
                Err(e) if e.is_cancelled() => cut += 1,
                Err(e) => panic!("a storm task panicked: {e}"),
            }
        }
    }
    assert!(finished > 0 && cut > 0, "{finished} finished, {cut} cut");

    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let (pool, acquires) = (pool.clone(), Arc::clone(&acquires));
            tokio::spawn(async move {
                let mut conn = acquires.get(&pool).await.map_err(|e| chain(&e))?;
                B::echo(&mut conn, n).await.map(|got| (n, got))
            })
        })
        .collect();
    for task in tasks {
        let (n, got) = task.await.unwrap().unwrap();
        assert_eq!(got, n, "a reply meant for another request");
    }
    let closes = pool.stats().closes;
    eprintln!(
        "{}: {finished} finished, {cut} cut; closed broken {}, abandoned {}, reset failed {}",
        B::KIND,
        closes.get(CloseReason::Broken),
        closes.get(CloseReason::Abandoned),
        closes.get(CloseReason::ResetFailed)
    );
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 9: `close()` under load with callers queued: the queued callers get `Closed` at once
/// (not at their 30 s deadline), the two holders finish their work on the connections they hold,
/// and every server session of the pool is gone within a second of their return.
async fn close_with_waiters_queued<B: Backend>() {
    let Some(server) = server(B::KIND).await else {
        return;
    };
    let tenant = Tenant::create(B::KIND, &server, "close").await;
    let acquires = Arc::new(Acquires::new());
    let mut config = config();
    config.max_size = 2;
    config.acquire_timeout = Some(Duration::from_secs(30));
    let pool = pool::<B>(&tenant, tenant.server_addr(), config);
    let release = Arc::new(tokio::sync::Notify::new());
    let held = Arc::new(tokio::sync::Barrier::new(3));
    let holders: Vec<_> = (0..2)
        .map(|i| {
            let (pool, release, held) = (pool.clone(), Arc::clone(&release), Arc::clone(&held));
            tokio::spawn(async move {
                let mut conn = pool.get().await.unwrap();
                let released = release.notified();
                held.wait().await;
                released.await;
                B::echo(&mut conn, i).await
            })
        })
        .collect();
    held.wait().await;
    let waiters: Vec<_> = (0..6)
        .map(|_| {
            let (pool, acquires) = (pool.clone(), Arc::clone(&acquires));
            tokio::spawn(async move {
                let result = acquires.get(&pool).await.map(drop);
                (result, Instant::now())
            })
        })
        .collect();
    eventually("six callers queued", Duration::from_secs(2), || async {
        match pool.status().waiting {
            6 => Ok(()),
            n => Err(format!("{n} queued")),
        }
    })
    .await;

    let closed = Instant::now();
    pool.close();
    for waiter in waiters {
        let (result, ended) = waiter.await.unwrap();
        assert!(matches!(result, Err(Error::Closed)), "{result:?}");
        let after = ended - closed;
        assert!(
            after < Duration::from_secs(1),
            "a queued caller learned of the close after {after:?}"
        );
    }
    assert!(matches!(pool.get().await, Err(Error::Closed)));
    release.notify_waiters();
    for (i, holder) in holders.into_iter().enumerate() {
        let i = i64::try_from(i).unwrap();
        assert_eq!(
            holder.await.unwrap().unwrap(),
            i,
            "a holder finished its work"
        );
    }
    assert!(pool.close_and_wait(Duration::from_secs(1)).await);
    sessions_gone(&tenant, "the pool's sessions gone", Duration::from_secs(1)).await;
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

/// Scenario 10: Credentials and address changed at run time. `update_config` covers the pool's own
/// settings only; where to connect and as whom belong to the manager, so the pool is built over
/// `Replaceable` and given a new manager with `replace_manager` (user B through proxy B instead of
/// user A through proxy A) under load, seven times back and forth. A connection held across a
/// change finishes a whole transaction first; each connection is of the manager in force when it
/// was opened; an acquire that starts after a change is never served an older connection; no
/// session ever mixes the two configurations; and proxy A sees no connection after the last change.
async fn manager_replaced_at_run_time<B: Backend>() {
    let Some(server) = server(B::KIND).await else {
        return;
    };
    let a = Tenant::create(B::KIND, &server, "repl_a").await;
    let b = Tenant::create(B::KIND, &server, "repl_b").await;
    let (proxy_a, proxy_b) = (
        Proxy::start(a.server_addr()).await,
        Proxy::start(b.server_addr()).await,
    );
    let acquires = Arc::new(Acquires::new());
    let built = Instant::now();
    let pool = Pool::builder(Replaceable::new(B::manager(&a, proxy_a.addr())))
        .config(config())
        .build_lazy()
        .unwrap();
    let load = Load::start::<B, _>(&pool, 6, &acquires, Work::WhoAmI);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut held = acquires.get(&pool).await.unwrap();
    // (start, end, user) of each change, the first manager's from the beginning.
    let mut changes = vec![(built, built, a.name())];
    let mut replace = |to: &'static str| {
        let tenant = if to == "a" { &a } else { &b };
        let proxy = if to == "a" { &proxy_a } else { &proxy_b };
        let start = Instant::now();
        pool.replace_manager(B::manager(tenant, proxy.addr()));
        changes.push((start, Instant::now(), tenant.name()));
    };
    replace("b");
    tokio::time::timeout(Duration::from_secs(2), B::transfer(&mut held, a.name(), 7))
        .await
        .expect("the held connection still works")
        .unwrap();
    assert_eq!(B::whoami(&mut held).await.unwrap(), a.name());
    drop(held);
    for to in ["a", "b", "a", "b", "a", "b"] {
        tokio::time::sleep(Duration::from_millis(250)).await;
        for tenant in [&a, &b] {
            let foreign = tenant.foreign_sessions().await.unwrap();
            assert!(foreign.is_empty(), "half-applied sessions: {foreign:?}");
        }
        replace(to);
    }
    let last_change = changes.last().unwrap().1;
    sessions_gone(&a, "user A's sessions gone", Duration::from_secs(1)).await;
    let accepted_a = proxy_a.accepted();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let steps = load.stop().await;
    assert_eq!(
        proxy_a.accepted(),
        accepted_a,
        "a connection to the old address after the change"
    );

    assert!(
        steps.iter().all(|s| s.failure.is_none()),
        "{:?}",
        steps.iter().find(|s| s.failure.is_some())
    );
    for step in &steps {
        let created = step.conn_created.unwrap();
        let user = step.user.as_deref().unwrap();
        // The change in force when the connection was opened: its user; opened while the
        // next change ran, that one's user too.
        let i = changes.iter().rposition(|c| c.0 <= created).unwrap();
        let mut expected = vec![changes[i].2];
        if created < changes[i].1 {
            expected.push(changes[i - 1].2);
        }
        assert!(
            expected.contains(&user),
            "a connection opened at {created:?} is {user}, expected one of {expected:?}"
        );
        // An acquire that started after a change had returned is served only connections
        // opened after that change began.
        if let Some(change) = changes.iter().rev().find(|c| c.1 <= step.started) {
            assert!(
                created >= change.0,
                "an acquire after a change was served an older connection"
            );
        }
    }
    assert!(
        steps.iter().any(|s| s.started > last_change),
        "no work after the last change"
    );
    let [x, y, _] = a.totals().await.unwrap();
    assert_eq!(
        (x, y),
        (-7, 7),
        "the held connection's transaction committed"
    );
    for tenant in [&a, &b] {
        assert!(tenant.foreign_sessions().await.unwrap().is_empty());
    }
    assert!(!steps
        .iter()
        .any(|s| matches!(s.failure, Some(Failure::WrongAnswer { .. }))));
    assert_invariants(&pool, &[&a, &b], &acquires).await;
}

/// A connection given back in the ordinary way (no panic, no request in flight) while inside
/// a transaction that wrote: a handler that returned early between `BEGIN` and `COMMIT`, or,
/// on MySQL, dropped a `mysql_async` `Transaction` (which rolls back lazily, on the
/// connection's next use). The invariant says no session of the pool stays inside a
/// transaction: the background task resets a returned connection within one maintenance
/// interval (100 ms here), so it does not sit idle holding its row lock until its next
/// checkout.
async fn returned_inside_a_transaction<B: Backend>() {
    let Some(server) = server(B::KIND).await else {
        return;
    };
    let tenant = Tenant::create(B::KIND, &server, "left").await;
    let acquires = Arc::new(Acquires::new());
    let pool = pool::<B>(&tenant, tenant.server_addr(), config());
    let mut conn = acquires.get(&pool).await.unwrap();
    B::begin_and_write(&mut conn, tenant.name()).await.unwrap();
    drop(conn);
    assert_eq!(pool.status().size, 1, "pooled, not closed");
    assert_invariants(&pool, &[&tenant], &acquires).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_inside_a_transaction_postgres() {
    returned_inside_a_transaction::<Postgres>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_inside_a_transaction_mysql() {
    returned_inside_a_transaction::<Mysql>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_inside_a_transaction_redis() {
    returned_inside_a_transaction::<Redis>().await;
}

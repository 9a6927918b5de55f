//! Read/write splitting against a real primary and its streaming replica: writes seen through
//! replicas, read-your-writes by window and by WAL position, a replica that goes away and comes
//! back, and the health-aware acquire against servers that are unreachable.

use std::time::{Duration, Instant};

use integration_tests::invariants::eventually;
use integration_tests::proxy::{Fault, Proxy};
use integration_tests::{server, unique_name, Kind, Server};
use pool_drivers::postgres::tokio_postgres;
use pool_drivers::postgres::{Config, DatabaseConfig, Pools};
use pool_drivers::roles::{Session, Source};
use pool_drivers::DriverConfig;
use pool_drivers::{Error, Retry};

/// The primary and the replica, or `None` (the test is skipped) when either is missing.
async fn servers() -> Option<(Server, Server)> {
    let primary = server(Kind::Postgres).await?;
    let replica = server(Kind::PostgresReplica).await?;
    Some((primary, replica))
}

fn pools(primary: &str, replica: &str) -> Pools {
    let mut config = DatabaseConfig::from_urls(primary, &[replica], None).unwrap();
    config.replica_timeout = Duration::from_secs(2);
    config.build_pools_lazy().unwrap()
}

/// A table on the primary, dropped when the guard is.
struct Table {
    name: String,
    pools: Pools,
}

impl Table {
    async fn new(pools: &Pools) -> Table {
        let name = unique_name("roles");
        pools
            .write()
            .await
            .unwrap()
            .batch_execute(&format!("CREATE TABLE {name} (id INT PRIMARY KEY)"))
            .await
            .unwrap();
        Table {
            name,
            pools: pools.clone(),
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        let (pools, name) = (self.pools.clone(), self.name.clone());
        // Dropped at the end of a test, inside its runtime: a task of its own finishes it.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Ok(conn) = pools.write().await {
                    let _ = conn
                        .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                        .await;
                }
            });
        }
    }
}

async fn count(conn: &tokio_postgres::Client, table: &str, id: i32) -> i64 {
    conn.query_one(
        &format!("SELECT count(*) FROM {table} WHERE id = $1"),
        &[&id],
    )
    .await
    .unwrap()
    .get(0)
}

/// `count` on a replica, which may not have replayed the table's creation yet: 0 until it has.
async fn count_replayed(conn: &tokio_postgres::Client, table: &str, id: i32) -> i64 {
    let query = format!("SELECT count(*) FROM {table} WHERE id = $1");
    match conn.query_one(&query, &[&id]).await {
        Ok(row) => row.get(0),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => 0,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_write_through_the_primary_becomes_visible_through_a_replica() {
    let Some((primary, replica)) = servers().await else {
        return;
    };
    let pools = pools(primary.url(), replica.url());
    let table = Table::new(&pools).await;
    pools
        .write()
        .await
        .unwrap()
        .execute(&format!("INSERT INTO {} VALUES (1)", table.name), &[])
        .await
        .unwrap();

    let started = Instant::now();
    loop {
        let conn = pools.read().await.unwrap();
        assert_eq!(conn.source(), Source::Replica(0));
        let in_recovery: bool = conn
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(in_recovery, "reads are served by the replica");
        if count_replayed(&conn, &table.name, 1).await == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the replica never replayed the write"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_callers_reads_see_its_own_write() {
    let Some((primary, replica)) = servers().await else {
        return;
    };
    let window = pools(primary.url(), replica.url()).read_your_writes(Duration::from_secs(5));
    let table = Table::new(&window).await;

    // By window: the primary serves this session's reads; others still use the replica.
    let mut session = Session::new();
    window
        .write_for(&mut session)
        .await
        .unwrap()
        .execute(&format!("INSERT INTO {} VALUES (2)", table.name), &[])
        .await
        .unwrap();
    let conn = window.read_for(&session).await.unwrap();
    assert_eq!(conn.source(), Source::Primary);
    assert_eq!(count(&conn, &table.name, 2).await, 1);
    assert_eq!(
        window.read_for(&Session::new()).await.unwrap().source(),
        Source::Replica(0)
    );

    // By WAL position: a replica serves once it has replayed the write, and then sees it.
    let by_position = window.clone().wait_for_replay(Duration::from_secs(5));
    for id in 3..8 {
        let mut session = Session::new();
        let mut conn = by_position.write_for(&mut session).await.unwrap();
        conn.execute(&format!("INSERT INTO {} VALUES ($1)", table.name), &[&id])
            .await
            .unwrap();
        by_position
            .record_write(&mut session, &mut conn)
            .await
            .unwrap();
        drop(conn);
        assert!(session.position().is_some_and(|p| p > 0));
        let conn = by_position.read_after(&session).await.unwrap();
        assert_eq!(
            count(&conn, &table.name, id).await,
            1,
            "the read from {:?} sees the write",
            conn.source()
        );
    }
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_while_the_replica_is_gone() {
    let Some((primary, replica)) = servers().await else {
        return;
    };
    let replica_addr = address(replica.url());
    let proxy = Proxy::start(replica_addr).await;
    let through_proxy = replica
        .url()
        .replace(&replica_addr.to_string(), &proxy.addr().to_string());
    let pools = pools(primary.url(), &through_proxy);
    assert_eq!(pools.read().await.unwrap().source(), Source::Replica(0));

    // The replica goes away: connections cut, new ones refused.
    proxy.set(Fault::Reset);
    proxy.cut_all();
    pools
        .read_pool()
        .replicas()
        .next()
        .unwrap()
        .signal_recovery();
    let started = Instant::now();
    let conn = pools.read().await.unwrap();
    assert_eq!(conn.source(), Source::Primary);
    let n: i32 = conn.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!pools.read_pool().is_healthy(0));

    // It comes back: the background probe returns it to rotation.
    proxy.set(Fault::Pass);
    eventually("the replica rejoining", Duration::from_secs(10), || async {
        if pools.read_pool().is_healthy(0) {
            Ok(())
        } else {
            Err("still out of rotation".to_owned())
        }
    })
    .await;
    assert_eq!(pools.read().await.unwrap().source(), Source::Replica(0));
}

/// `host:port` of a URL, as a socket address.
fn address(url: &str) -> std::net::SocketAddr {
    let config = Config::from_url(url).unwrap();
    let host = match &config.postgres.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => panic!("a TCP host"),
    };
    let host = if host == "localhost" {
        "127.0.0.1".into()
    } else {
        host
    };
    format!("{host}:{}", config.postgres.get_ports()[0])
        .parse()
        .unwrap()
}

/// A pool for `url` whose connects give up after 500 ms.
fn unreachable_pool(url: &str) -> pool_drivers::postgres::Pool {
    let mut config = Config::from_url(url).unwrap();
    config.pool.connect_timeout = Duration::from_millis(500);
    config.build_pool_lazy().unwrap()
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_unreachable_server_gives_service_unavailable_by_the_deadline() {
    let short = Retry::default()
        .give_up_after(Some(Duration::from_secs(2)))
        .attempt_timeout(Duration::from_millis(300));

    // A closed port: refused at once, every attempt.
    let pool = unreachable_pool(&format!(
        "postgres://postgres@127.0.0.1:{}/test",
        closed_port().await
    ));
    let started = Instant::now();
    let err = pool.get_retrying(&short).await.map(drop).unwrap_err();
    let took = started.elapsed();
    let Error::ServiceUnavailable { attempts, .. } = &err else {
        panic!("expected ServiceUnavailable, got {err:?}");
    };
    assert!(*attempts >= 2, "{attempts} attempts");
    assert!(took <= Duration::from_millis(2_300), "took {took:?}");
    let cause = err.backend().map(ToString::to_string).unwrap_or_default();
    assert!(!cause.is_empty(), "the refusal is carried: {err:?}");

    // A port that accepts but never answers: each connect times out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let pool = unreachable_pool(&format!("postgres://postgres@127.0.0.1:{port}/test"));
    let started = Instant::now();
    let err = pool.get_retrying(&short).await.map(drop).unwrap_err();
    assert!(matches!(err, Error::ServiceUnavailable { .. }), "{err:?}");
    assert!(
        started.elapsed() <= Duration::from_millis(2_300),
        "took {:?}",
        started.elapsed()
    );
    held.abort();
}

#[tokio::test]
async fn the_health_aware_acquire_succeeds_again_once_the_server_is_back() {
    let Some(primary) = server(Kind::Postgres).await else {
        return;
    };
    let proxy = Proxy::start(address(primary.url())).await;
    proxy.set(Fault::BlackHole);
    let url = format!(
        "postgres://postgres@{}/test?application_name={}",
        proxy.addr(),
        unique_name("back")
    );
    let pool = unreachable_pool(&url);

    let short = Retry::default().give_up_after(Some(Duration::from_secs(1)));
    let err = pool.get_retrying(&short).await.map(drop).unwrap_err();
    assert!(matches!(err, Error::ServiceUnavailable { .. }), "{err:?}");

    // Back while a caller is retrying: it is served well before its deadline.
    let retrying = tokio::spawn({
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            let retry = Retry::default().give_up_after(Some(Duration::from_secs(20)));
            let conn = pool.get_retrying(&retry).await.map(drop);
            (conn, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.set(Fault::Pass);
    let (served, took) = retrying.await.unwrap();
    served.expect("served once the server answers");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(pool.health(), pool_drivers::Health::Healthy);
}

#[tokio::test]
async fn by_default_the_health_aware_acquire_gives_up_after_thirty_seconds() {
    let pool = unreachable_pool(&format!(
        "postgres://postgres@127.0.0.1:{}/test",
        closed_port().await
    ));
    let started = Instant::now();
    let err = pool
        .get_retrying(&Retry::default())
        .await
        .map(drop)
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::ServiceUnavailable { .. }), "{err:?}");
    assert!(
        (Duration::from_secs(27)..=Duration::from_millis(30_500)).contains(&took),
        "gave up after {took:?}"
    );
}

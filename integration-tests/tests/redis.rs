//! The Redis driver against a real Redis server.

use std::time::{Duration, Instant};

use integration_tests::redis_client::{client_id, client_info};
use integration_tests::{server, unique_name, Kind};
use pool_drivers::redis::redis::{self, AsyncCommands};
use pool_drivers::redis::{Config, Error, Pool, PoolError};
use pool_drivers::DriverConfig;

/// A pool of at most `max_size` connections to `url`.
fn pool(url: &str, max_size: usize) -> Pool {
    let mut config = Config::from_url(url).expect("the test URL parses");
    config.pool.max_size = max_size;
    config
        .build_pool_lazy()
        .expect("a valid pool configuration")
}

/// A connection outside any pool, for setting up and inspecting.
async fn admin(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("an admin connection")
}

/// `url` (`redis://host:port/...`) with `login@` before the host and `path` after it.
fn with_login(url: &str, login: &str, path: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host_part.split(['/', '?']).next().unwrap_or(host_part);
    format!("{scheme}://{login}{host}/{path}")
}

#[tokio::test]
async fn get_use_and_return() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let key = unique_name("pool_redis_basic");
    let pool = pool(server.url(), 2);
    let mut conn = pool.get().await.unwrap();
    let () = conn.set(&key, "hello").await.unwrap();
    let value: String = conn.get(&key).await.unwrap();
    assert_eq!(value, "hello");
    let id = client_id(&mut conn).await;
    drop(conn);
    assert_eq!(pool.status().idle, 1);

    let mut conn = pool.get().await.unwrap();
    assert_eq!(client_id(&mut conn).await, id, "the connection is reused");
    let removed: i64 = conn.del(&key).await.unwrap();
    assert_eq!(removed, 1);
}

#[tokio::test]
async fn many_tasks_share_few_connections() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let key = unique_name("pool_redis_counter");
    let pool = pool(server.url(), 4);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let pool = pool.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let mut conn = pool.get().await.unwrap();
                let _: i64 = conn.incr(&key, 1).await.unwrap();
                client_id(&mut conn).await
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert!(ids.len() <= 4, "{} connections for max_size 4", ids.len());
    let mut conn = pool.get().await.unwrap();
    let total: i64 = conn.get(&key).await.unwrap();
    assert_eq!(total, 64);
    let _: i64 = conn.del(&key).await.unwrap();
}

#[tokio::test]
async fn a_connection_killed_by_the_server_is_replaced() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let pool = pool(server.url(), 1);
    let mut conn = pool.get().await.unwrap();
    let id = client_id(&mut conn).await;
    drop(conn);

    let mut admin = admin(server.url()).await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // Past `skip_check_within`, so the checkout runs its check.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let mut conn = pool.get().await.expect("a fresh connection, no error");
    let pong: String = redis::cmd("PING").query_async(&mut *conn).await.unwrap();
    assert_eq!(pong, "PONG");
    assert_ne!(
        client_id(&mut conn).await,
        id,
        "the killed connection was replaced"
    );
}

#[tokio::test]
async fn multi_and_watch_are_gone_for_the_next_borrower() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let watched = unique_name("pool_redis_watched");
    let queued = unique_name("pool_redis_queued");
    let pool = pool(server.url(), 1);

    let mut conn = pool.get().await.unwrap();
    let id = client_id(&mut conn).await;
    redis::cmd("WATCH")
        .arg(&watched)
        .exec_async(&mut *conn)
        .await
        .unwrap();
    redis::cmd("MULTI").exec_async(&mut *conn).await.unwrap();
    let reply: String = redis::cmd("SET")
        .arg(&queued)
        .arg("from-the-first-borrower")
        .query_async(&mut *conn)
        .await
        .unwrap();
    assert_eq!(reply, "QUEUED");
    drop(conn);

    // Someone else touches the watched key: a WATCH left behind would abort the next EXEC.
    let mut admin = admin(server.url()).await;
    let () = admin.set(&watched, "changed").await.unwrap();

    let mut conn = pool.get().await.unwrap();
    assert_eq!(client_id(&mut conn).await, id, "reset, not replaced");
    assert_eq!(
        client_info(&mut conn, "multi").await,
        "-1",
        "not inside MULTI"
    );
    let exists: bool = admin.exists(&queued).await.unwrap();
    assert!(!exists, "the queued command was discarded, never run");

    let (value,): (String,) = redis::pipe()
        .atomic()
        .set(&queued, "second")
        .ignore()
        .get(&queued)
        .query_async(&mut *conn)
        .await
        .expect("EXEC runs: no stale WATCH aborts it");
    assert_eq!(value, "second");

    let _: i64 = admin.del(&[&watched, &queued]).await.unwrap();
}

#[tokio::test]
async fn the_configured_database_is_restored() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    // A database other than 0, and different across runs, though nothing here depends on
    // what else is in it.
    let db = 1 + i64::from(std::process::id() % 15);
    let url = with_login(server.url(), "", &db.to_string());
    let key = unique_name("pool_redis_db");
    let pool = pool(&url, 1);

    let mut conn = pool.get().await.unwrap();
    assert_eq!(client_info(&mut conn, "db").await, db.to_string());
    let () = conn.set(&key, "in the configured db").await.unwrap();
    redis::cmd("SELECT")
        .arg(0)
        .exec_async(&mut *conn)
        .await
        .unwrap();
    assert_eq!(client_info(&mut conn, "db").await, "0");
    drop(conn);

    let mut conn = pool.get().await.unwrap();
    assert_eq!(client_info(&mut conn, "db").await, db.to_string());
    let value: String = conn.get(&key).await.unwrap();
    assert_eq!(value, "in the configured db");
    let _: i64 = conn.del(&key).await.unwrap();
}

#[tokio::test]
async fn a_reply_not_read_is_never_reused() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let list = unique_name("pool_redis_blpop");
    let pool = pool(server.url(), 1);
    let mut conn = pool.get().await.unwrap();
    let id = client_id(&mut conn).await;
    let blpop = redis::cmd("BLPOP").arg(&list).arg(5).to_owned();
    let blocked = blpop.query_async::<Option<(String, String)>>(&mut *conn);
    assert!(tokio::time::timeout(Duration::from_millis(200), blocked)
        .await
        .is_err());
    assert!(conn.is_broken());
    drop(conn);

    let started = Instant::now();
    let mut conn = pool.get().await.unwrap();
    assert_ne!(client_id(&mut conn).await, id, "the connection was closed");
    // Had it been reused, this element would feed the abandoned BLPOP instead.
    let _: i64 = conn.rpush(&list, "x").await.unwrap();
    let len: i64 = conn.llen(&list).await.unwrap();
    assert_eq!(len, 1);
    let _: i64 = conn.del(&list).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A pool of one connection whose checkout check is skipped for the length of a test, so
/// only `has_broken` can notice a dead connection.
fn unchecked_pool(url: &str) -> Pool {
    let mut config = Config::from_url(url).expect("the test URL parses");
    config.pool.max_size = 1;
    config.pool.skip_check_within = Duration::from_secs(600);
    config
        .build_pool_lazy()
        .expect("a valid pool configuration")
}

async fn kill_client(admin: &mut redis::aio::MultiplexedConnection, id: i64) {
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);
}

#[tokio::test]
async fn a_connection_killed_within_the_skip_window_is_not_handed_out() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let pool = unchecked_pool(server.url());
    let mut admin = admin(server.url()).await;

    // Killed while checked out, then returned.
    let mut conn = pool.get().await.unwrap();
    let id = client_id(&mut conn).await;
    kill_client(&mut admin, id).await;
    // Time for the connection's I/O task to read the end of the stream.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(conn);

    let mut conn = pool.get().await.expect("a fresh connection, no error");
    let pong: String = redis::cmd("PING").query_async(&mut *conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let second = client_id(&mut conn).await;
    assert_ne!(second, id, "the killed connection was replaced");
    drop(conn);

    // Killed while idle in the pool.
    kill_client(&mut admin, second).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut conn = pool.get().await.expect("a fresh connection, no error");
    let pong: String = redis::cmd("PING").query_async(&mut *conn).await.unwrap();
    assert_eq!(pong, "PONG");
    assert_ne!(client_id(&mut conn).await, second);
    assert_eq!(
        pool.stats().closes.get(pool_drivers::CloseReason::Broken),
        2
    );
}

#[test]
fn a_connection_whose_runtime_shut_down_is_not_handed_out() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opened = first.block_on(async {
        let server = server(Kind::Redis).await?;
        let pool = unchecked_pool(server.url());
        let mut conn = pool.get().await.unwrap();
        let id = client_id(&mut conn).await;
        drop(conn);
        Some((server, pool, id))
    });
    let Some((server, pool, id)) = opened else {
        return;
    };
    // Takes the connection's I/O task with it.
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async move {
        let mut conn = pool.get().await.expect("a fresh connection, no error");
        let pong: String = redis::cmd("PING").query_async(&mut *conn).await.unwrap();
        assert_eq!(pong, "PONG");
        assert_ne!(client_id(&mut conn).await, id);
        drop(conn);
        drop(server);
    });
}

#[tokio::test]
async fn a_cancelled_blocking_pop_does_not_take_a_later_push() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let list = unique_name("pool_redis_cancelled_blpop");
    let pool = pool(server.url(), 1);
    let mut admin = admin(server.url()).await;

    let mut conn = pool.get().await.unwrap();
    // No server-side timeout: what the module docs advise against, and what a client-side
    // timeout alone has to survive.
    let blpop = redis::cmd("BLPOP").arg(&list).arg(0).to_owned();
    let blocked = blpop.query_async::<Option<(String, String)>>(&mut *conn);
    assert!(tokio::time::timeout(Duration::from_millis(100), blocked)
        .await
        .is_err());
    // Pushed at once, while the guard is still held: the socket must already be closed, or
    // the abandoned BLPOP pops this element for nobody.
    let _: i64 = admin.lpush(&list, "value").await.unwrap();
    let len: i64 = admin.llen(&list).await.unwrap();
    assert_eq!(len, 1, "the cancelled BLPOP took the element");
    assert!(conn.is_broken());
    drop(conn);
    let _: i64 = admin.del(&list).await.unwrap();
}

#[tokio::test]
async fn a_blocking_pop_past_the_response_timeout_does_not_take_a_later_push() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let list = unique_name("pool_redis_timed_out_blpop");
    let mut config = Config::from_url(server.url()).unwrap();
    config.pool.max_size = 1;
    config.response_timeout = Some(Duration::from_millis(100));
    let pool = config.build_pool_lazy().unwrap();
    let mut admin = admin(server.url()).await;

    let mut conn = pool.get().await.unwrap();
    let blpop = redis::cmd("BLPOP").arg(&list).arg(0).to_owned();
    let err = blpop
        .query_async::<Option<(String, String)>>(&mut *conn)
        .await
        .expect_err("the response timeout ends the request");
    assert!(err.is_timeout(), "{err}");
    let _: i64 = admin.lpush(&list, "value").await.unwrap();
    let len: i64 = admin.llen(&list).await.unwrap();
    assert_eq!(len, 1, "the timed-out BLPOP took the element");
    assert!(conn.is_broken());
    drop(conn);
    let _: i64 = admin.del(&list).await.unwrap();
}

#[tokio::test]
async fn subscribing_retires_the_connection() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let pool = pool(server.url(), 1);
    let mut conn = pool.get().await.unwrap();
    let id = client_id(&mut conn).await;
    let channel = unique_name("pool_redis_channel");
    let subscribe = redis::cmd("SUBSCRIBE").arg(&channel).to_owned();
    // Whatever the driver makes of the confirmation, the connection is now in pub/sub mode.
    let _ = tokio::time::timeout(Duration::from_secs(2), subscribe.exec_async(&mut *conn)).await;
    assert!(conn.is_broken());
    drop(conn);
    let mut conn = pool.get().await.unwrap();
    assert_ne!(client_id(&mut conn).await, id);
}

/// Runs `get` on a pool for `url` and returns its error and how long it took.
async fn get_error(url: &str, acquire_timeout: Duration) -> (PoolError, Duration) {
    let mut config = Config::from_url(url).unwrap();
    config.pool.acquire_timeout = Some(acquire_timeout);
    let pool = config.build_pool_lazy().unwrap();
    let started = Instant::now();
    let err = pool.get().await.expect_err("the connect must fail");
    (err, started.elapsed())
}

#[tokio::test]
async fn a_malformed_url_is_rejected_at_once() {
    let err = Config::from_url("redis//127.0.0.1:6379").unwrap_err();
    assert_eq!(err.setting(), "url");
    assert!(err.problem().contains("scheme"), "{err}");
}

#[tokio::test]
async fn an_unknown_host_fails_fast() {
    let (err, took) = get_error(
        "redis://no-such-host.invalid:6379/",
        Duration::from_secs(30),
    )
    .await;
    assert!(matches!(err, PoolError::Connect(_)), "{err:?}");
    match err.backend() {
        Some(Error::UnknownHost { host, .. }) => assert_eq!(host, "no-such-host.invalid"),
        other => panic!("expected UnknownHost, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn a_refused_port_times_out_naming_the_refusal() {
    let (err, took) = get_error("redis://127.0.0.1:1/", Duration::from_millis(800)).await;
    assert!(err.is_timeout(), "{err:?}");
    match err.backend() {
        Some(Error::Redis(e)) => assert!(e.is_connection_refusal(), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn a_wrong_password_fails_fast_with_the_servers_message() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let user = unique_name("pool_user");
    let mut admin = admin(server.url()).await;
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(">right-password")
        .arg("~*")
        .arg("+@all")
        .exec_async(&mut admin)
        .await
        .unwrap();

    let url = with_login(server.url(), &format!("{user}:wrong-password@"), "");
    let (err, took) = get_error(&url, Duration::from_secs(30)).await;
    assert!(matches!(err, PoolError::Connect(_)), "{err:?}");
    match err.backend() {
        Some(e @ Error::Authentication { message }) => {
            assert!(message.contains("WRONGPASS"), "{message}");
            assert!(!e.to_string().contains("wrong-password"), "{e}");
        }
        other => panic!("expected Authentication, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // The right password works, which shows the manager's own AUTH is right.
    let url = with_login(server.url(), &format!("{user}:right-password@"), "");
    let pool = pool(&url, 1);
    let mut conn = pool.get().await.unwrap();
    assert_eq!(client_info(&mut conn, "user").await, user);
    drop(conn);
    drop(pool);

    redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .exec_async(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_database_fails_fast_with_the_servers_message() {
    let Some(server) = server(Kind::Redis).await else {
        return;
    };
    let url = with_login(server.url(), "", "9999");
    let (err, took) = get_error(&url, Duration::from_secs(30)).await;
    match err.backend() {
        Some(Error::UnknownDatabase { db, message }) => {
            assert_eq!(*db, 9999);
            assert!(message.contains("out of range"), "{message}");
        }
        other => panic!("expected UnknownDatabase, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn debug_never_shows_the_password() {
    let config = Config::from_url("redis://app:top-secret@127.0.0.1:6379/0").unwrap();
    let text = format!("{config:?} {:?}", config.manager().unwrap());
    assert!(!text.contains("top-secret"), "{text}");
}

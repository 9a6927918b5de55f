//! The PostgreSQL driver against a real server: checkout, concurrency, killed backends,
//! transactions left behind, dropped futures (drained and reused, or closed when the reply does
//! not come in time), the statement cache and bad input.

use std::time::{Duration, Instant};

use integration_tests::faults::chain;
use integration_tests::{server, unique_name, Kind};
use pool_drivers::postgres::{Cleanup, Config, Error, Pool, PoolError, DEFAULT_DRAIN_TIMEOUT};
use pool_drivers::CloseReason;
use pool_drivers::DriverConfig;

/// The URL with `params` added to its query string.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// A config whose sessions carry an `application_name` no other test uses.
fn config(url: &str, app: &str) -> Config {
    let mut config = Config::from_url(&with_params(url, &format!("application_name={app}")))
        .expect("the server URL parses");
    config.pool.max_size = 2;
    config.pool.acquire_timeout = Some(Duration::from_secs(10));
    config
}

async fn pid(pool: &Pool) -> i32 {
    let conn = pool.get().await.expect("a connection");
    conn.query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0)
}

#[tokio::test]
async fn get_use_return() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let pool = config(server.url(), &unique_name("get"))
        .build_pool_lazy()
        .unwrap();
    {
        let conn = pool.get().await.unwrap();
        let n: i32 = conn.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
        assert_eq!(n, 42);
    }
    let status = pool.status();
    assert_eq!((status.size, status.idle), (1, 1), "{status:?}");
    // The same session comes back.
    let first = pid(&pool).await;
    assert_eq!(pid(&pool).await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_few_connections() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = config(server.url(), &unique_name("many"));
    config.pool.max_size = 4;
    let pool = config.build_pool_lazy().unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.get().await?;
                let row = conn.query_one("SELECT $1::INT4 * 2", &[&i]).await.unwrap();
                Ok::<i32, PoolError>(row.get(0))
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let doubled = task.await.unwrap().unwrap();
        assert_eq!(doubled, i32::try_from(i).unwrap() * 2);
    }
    assert!(pool.status().size <= 4, "{:?}", pool.status());
}

#[tokio::test]
async fn a_backend_killed_by_the_server_is_replaced_unseen() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let app = unique_name("killed");
    let mut config = config(server.url(), &app);
    config.pool.max_size = 1;
    config.pool.skip_check_within = Duration::from_millis(1);
    let pool = config.build_pool_lazy().unwrap();
    let admin = config_admin(server.url());

    let before = pid(&pool).await;
    let admin_conn = admin.get().await.unwrap();
    let killed: i64 = admin_conn
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    wait_until_gone(&admin, before).await;

    // The check finds the dead session and the pool opens another: no error for the caller.
    let conn = pool.get().await.expect("a fresh connection");
    let after: i32 = conn
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(after, before);
}

fn config_admin(url: &str) -> Pool {
    config(url, &unique_name("admin"))
        .build_pool_lazy()
        .unwrap()
}

async fn wait_until_gone(admin: &Pool, pid: i32) {
    let conn = admin.get().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = conn
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "backend {pid} did not go away");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn transactions_left_open_or_aborted_are_gone_for_the_next_borrower() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let table = unique_name("left_open");
    let mut config = config(server.url(), &unique_name("tx"));
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    let first = pid(&pool).await;
    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute(&format!("CREATE TABLE {table} (x INT4)"))
            .await
            .unwrap();
        // Returned inside a transaction that wrote a row.
        conn.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)"))
            .await
            .unwrap();
    }
    {
        let conn = pool.get().await.unwrap();
        let row = conn
            .query_one(
                &format!(
                    "SELECT pg_backend_pid(), pg_current_xact_id_if_assigned()::TEXT, \
                     (SELECT count(*) FROM {table})"
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), first, "the same session was reused");
        assert_eq!(
            row.get::<_, Option<String>>(1),
            None,
            "no transaction is open"
        );
        assert_eq!(row.get::<_, i64>(2), 0, "the insert was rolled back");
        // Returned inside an aborted transaction.
        conn.batch_execute("BEGIN").await.unwrap();
        let err = conn.batch_execute("SELECT 1/0").await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&pool_drivers::postgres::tokio_postgres::error::SqlState::DIVISION_BY_ZERO)
        );
    }
    {
        let conn = pool.get().await.unwrap();
        let row = conn
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), first, "the same session was reused");
        conn.batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn cleanup_clears_session_state() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = config(server.url(), &unique_name("cleanup"));
    config.pool.max_size = 1;
    config.cleanup.reset_all = true;
    config.cleanup.unlisten = true;
    config.cleanup.unlock_advisory_locks = true;
    config.cleanup.discard_temp = true;
    let pool = config.build_pool_lazy().unwrap();
    let key = i64::from(std::process::id()) * 1000 + 7;
    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute("SET statement_timeout = '12345ms'; LISTEN cleanup_test; CREATE TEMP TABLE scratch (x INT4)")
            .await
            .unwrap();
        conn.execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .unwrap();
    }
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT current_setting('statement_timeout'), \
             (SELECT count(*) FROM pg_listening_channels()), \
             (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), \
             to_regclass('pg_temp.scratch') IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_ne!(row.get::<_, String>(0), "12345ms");
    assert_eq!(row.get::<_, i64>(1), 0);
    assert_eq!(row.get::<_, i64>(2), 0);
    assert!(row.get::<_, bool>(3));
}

#[tokio::test]
async fn application_name_is_visible_to_the_server() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let app = unique_name("visible");
    let pool = config(server.url(), &app).build_pool_lazy().unwrap();
    let conn = pool.get().await.unwrap();
    let admin = config_admin(server.url());
    let seen: i64 = admin
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 1);
    drop(conn);

    // Without one in the URL, sessions still carry a name.
    let plain = Config::from_url(server.url())
        .unwrap()
        .build_pool_lazy()
        .unwrap();
    let name: String = plain
        .get()
        .await
        .unwrap()
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, pool_drivers::postgres::DEFAULT_APPLICATION_NAME);
}

/// What the server holds for `sql`: how many statements, and when the first was prepared.
async fn on_server(
    conn: &pool_drivers::postgres::PgConnection,
    sql: &str,
) -> (i64, Option<String>) {
    let row = conn
        .query_one(
            "SELECT count(*), min(prepare_time)::TEXT FROM pg_prepared_statements \
             WHERE statement = $1",
            &[&sql],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn prepared_statements_are_cached_across_resets() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = config(server.url(), &unique_name("cache"));
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    let sql = "SELECT $1::INT4 + 1";
    let prepared_at = {
        let conn = pool.get().await.unwrap();
        conn.prepare_cached(sql).await.unwrap();
        conn.prepare_cached(sql).await.unwrap();
        assert_eq!(conn.statement_cache_len(), 1);
        let (count, prepared_at) = on_server(&conn, sql).await;
        assert_eq!(count, 1, "the second call reused the statement");
        // Leave a transaction open so reset has to roll back.
        conn.batch_execute("BEGIN").await.unwrap();
        prepared_at
    };
    let conn = pool.get().await.unwrap();
    let again = conn.prepare_cached(sql).await.unwrap();
    assert_eq!(
        on_server(&conn, sql).await,
        (1, prepared_at),
        "the cache survived reset"
    );
    let n: i32 = conn.query_one(&again, &[&1i32]).await.unwrap().get(0);
    assert_eq!(n, 2);
}

#[tokio::test]
async fn statement_cache_hits_and_misses_are_counted_and_the_pool_is_named_after_its_server() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = config(server.url(), &unique_name("hits"));
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    {
        let conn = pool.get().await.unwrap();
        for _ in 0..3 {
            conn.prepare_cached("SELECT $1::INT4").await.unwrap();
        }
        conn.prepare_cached("SELECT $1::INT8").await.unwrap();
    }
    let stats = pool.manager().statement_cache_stats();
    assert_eq!((stats.hits, stats.misses), (2, 2));
    assert_eq!(stats.hit_rate(), 0.5);

    // `host:port/database` of the URL, unless a name is given.
    let pg = &config.postgres;
    let expected = format!(
        "{}:{}/{}",
        server
            .url()
            .split('@')
            .next_back()
            .unwrap()
            .split(':')
            .next()
            .unwrap(),
        pg.get_ports().first().copied().unwrap_or(5432),
        pg.get_dbname().unwrap()
    );
    assert_eq!(pool.config().name.as_deref(), Some(expected.as_str()));
    config.pool.name = Some("orders".into());
    assert_eq!(
        config.build_pool_lazy().unwrap().config().pool_name(),
        "orders"
    );
}

#[tokio::test]
async fn discard_all_cleanup_empties_the_statement_cache() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = config(server.url(), &unique_name("discard"));
    config.pool.max_size = 1;
    config.cleanup = Cleanup::everything();
    let pool = config.build_pool_lazy().unwrap();
    let sql = "SELECT $1::TEXT || '!'";
    let old_pid = {
        let conn = pool.get().await.unwrap();
        conn.prepare_cached(sql).await.unwrap();
        assert_eq!(conn.statement_cache_len(), 1);
        conn.query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get::<_, i32>(0)
    };
    let conn = pool.get().await.unwrap();
    let row = conn
        .query_one(
            "SELECT pg_backend_pid(), (SELECT count(*) FROM pg_prepared_statements)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), old_pid, "the same session was reset");
    assert_eq!(conn.statement_cache_len(), 0, "the cache was cleared");
    // Preparing again works, and so do queries needing type lookups.
    let statement = conn.prepare_cached(sql).await.unwrap();
    let shout: String = conn.query_one(&statement, &[&"hey"]).await.unwrap().get(0);
    assert_eq!(shout, "hey!");
}

/// What the server says `pid` is doing (`pg_stat_activity.state`), asked from another session.
async fn state_of(admin: &Pool, pid: i32) -> Option<String> {
    admin
        .get()
        .await
        .unwrap()
        .query_opt("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .await
        .unwrap()
        .map(|row| row.get(0))
}

/// (e) A query dropped mid-flight, inside a transaction that wrote a row, does not cost the
/// connection: reset waits for its reply and rolls back, and the next borrower gets the same
/// backend, idle (not "idle in transaction"), without the row. Two pipelined requests dropped
/// at once, a finished `COPY ... FROM STDIN` and one abandoned halfway keep it as well.
#[tokio::test]
async fn a_dropped_query_is_drained_and_its_connection_reused() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let table = unique_name("drained");
    let mut config = config(server.url(), &unique_name("drained"));
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    let admin = config_admin(server.url());
    admin
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("CREATE TABLE {table} (x INT4)"))
        .await
        .unwrap();
    let first = pid(&pool).await;

    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)"))
            .await
            .unwrap();
        let slow = conn.query("SELECT pg_sleep(0.2)", &[]);
        assert!(tokio::time::timeout(Duration::from_millis(20), slow)
            .await
            .is_err());
    }
    {
        let conn = pool.get().await.unwrap();
        let row = conn
            .query_one(
                &format!(
                    "SELECT pg_backend_pid(), pg_current_xact_id_if_assigned()::TEXT, \
                     (SELECT count(*) FROM {table})"
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), first, "the same backend was reused");
        assert_eq!(row.get::<_, Option<String>>(1), None, "no transaction");
        assert_eq!(row.get::<_, i64>(2), 0, "the insert was rolled back");
        assert_eq!(state_of(&admin, first).await.as_deref(), Some("idle"));

        // Two requests in flight at once, dropped together.
        let (a, b) = (
            conn.query("SELECT pg_sleep(0.1)", &[]),
            conn.query("SELECT pg_sleep(0.1)", &[]),
        );
        let both = async { tokio::join!(a, b) };
        assert!(tokio::time::timeout(Duration::from_millis(20), both)
            .await
            .is_err());
    }
    {
        let conn = pool.get().await.unwrap();
        assert_eq!(pid_of(&conn).await, first);
        assert_eq!(state_of(&admin, first).await.as_deref(), Some("idle"));

        // A COPY FROM STDIN that finishes: the server skips the Sync sent with it.
        // (No rows: sending data needs `futures::SinkExt`, which this crate does not use.)
        let sink = conn
            .copy_in::<_, &[u8]>(&format!("COPY {table} FROM STDIN"))
            .await
            .unwrap();
        let mut sink = std::pin::pin!(sink);
        assert_eq!(sink.as_mut().finish().await.unwrap(), 0);
    }
    {
        let conn = pool.get().await.unwrap();
        assert_eq!(pid_of(&conn).await, first);
        // One abandoned halfway: tokio_postgres sends CopyFail when the sink is dropped.
        let sink = conn
            .copy_in::<_, &[u8]>(&format!("COPY {table} FROM STDIN"))
            .await
            .unwrap();
        drop(sink);
    }
    {
        let conn = pool.get().await.unwrap();
        assert_eq!(pid_of(&conn).await, first);
        let rows: i64 = conn
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 0);
        assert_eq!(state_of(&admin, first).await.as_deref(), Some("idle"));
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.connects_ok, stats.closes.total()),
        (1, 0),
        "{stats:?}"
    );
    admin
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

async fn pid_of(conn: &pool_drivers::postgres::PgConnection) -> i32 {
    conn.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// (e) A dropped query whose reply does not come within the drain bound costs its connection,
/// whether the bound runs out while reset waits (the query was dropped young) or had already
/// run out when the connection came back (dropped old): the pool closes it, the abandoned query
/// is cancelled and its transaction's write never commits; the next borrower gets a new
/// backend and is not cancelled.
#[tokio::test]
async fn a_dropped_query_that_does_not_drain_in_time_closes_its_connection() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let table = unique_name("dropped");
    let mut config = config(server.url(), &unique_name("dropped"));
    config.pool.max_size = 1;
    assert_eq!(config.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
    let pool = config.build_pool_lazy().unwrap();
    let admin = config_admin(server.url());
    admin
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("CREATE TABLE {table} (x INT4)"))
        .await
        .unwrap();

    // Dropped after 20 ms: reset waits until the query is 1 s old (the default bound), then
    // gives up. Dropped after 1.1 s: closed on return.
    let cases = [(20, CloseReason::ResetFailed), (1100, CloseReason::Broken)];
    for (dropped_after, closed_as) in cases {
        let old_pid = {
            let conn = pool.get().await.unwrap();
            let pid = pid_of(&conn).await;
            conn.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)"))
                .await
                .unwrap();
            let slow = conn.query("SELECT pg_sleep(30)", &[]);
            assert!(
                tokio::time::timeout(Duration::from_millis(dropped_after), slow)
                    .await
                    .is_err()
            );
            pid
        };
        let conn = pool.get().await.unwrap();
        let row = conn
            .query_one("SELECT pg_backend_pid(), pg_sleep(0.3)::TEXT", &[])
            .await
            .expect("the next borrower's query is not cancelled");
        assert_ne!(
            row.get::<_, i32>(0),
            old_pid,
            "the connection whose reply did not come was closed"
        );
        drop(conn);
        assert_eq!(
            pool.stats().closes.get(closed_as),
            1,
            "dropped after {dropped_after} ms: {:?}",
            pool.stats().closes
        );

        // The abandoned session is cancelled and gone, and its insert never committed.
        wait_until_gone(&admin, old_pid).await;
        let rows: i64 = admin
            .get()
            .await
            .unwrap()
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 0);
    }
    admin
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// A result dropped while its rows were streaming in is not drained on the next caller's time:
/// the connection is closed and its query cancelled. On return, if rows had arrived; on a
/// loaded machine none may have come within the 300 ms, and then the drain bound ends it as a
/// failed reset instead.
#[tokio::test]
async fn a_result_dropped_while_its_rows_stream_in_closes_its_connection() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = config(server.url(), &unique_name("streaming"));
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    let admin = config_admin(server.url());
    let old_pid = {
        let conn = pool.get().await.unwrap();
        let pid = pid_of(&conn).await;
        // Tens of millions of rows: far more than arrive before the timeout.
        let huge = conn.query("SELECT generate_series(1, 50000000)", &[]);
        assert!(tokio::time::timeout(Duration::from_millis(300), huge)
            .await
            .is_err());
        pid
    };
    assert_ne!(pid(&pool).await, old_pid);
    let closes = pool.stats().closes;
    assert_eq!(
        closes.get(CloseReason::Broken) + closes.get(CloseReason::ResetFailed),
        1,
        "{closes:?}"
    );
    wait_until_gone(&admin, old_pid).await;
}

/// Not a test: measures how many connects 1,000 dropped requests cost a 16-connection pool.
/// Each of 1,000 tasks borrows a connection and drops a `pg_sleep(0.05)` after 10 ms.
///
/// `cargo test -p integration-tests --all-features --test postgres -- --ignored --nocapture connects_per`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run it with --ignored --nocapture"]
async fn connects_per_1000_dropped_requests() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = config(server.url(), &unique_name("churn"));
    config.pool.max_size = 16;
    config.pool.acquire_timeout = Some(Duration::from_secs(60));
    let pool = config.build_pool_lazy().unwrap();
    drop(
        futures_all(16, |_| {
            let pool = pool.clone();
            async move { pool.get().await.unwrap() }
        })
        .await,
    );
    let before = pool.stats();
    let dropped = futures_all(1000, |_| {
        let pool = pool.clone();
        async move {
            let conn = pool.get().await.unwrap();
            let slow = conn.query("SELECT pg_sleep(0.05)", &[]);
            tokio::time::timeout(Duration::from_millis(10), slow)
                .await
                .is_err()
        }
    })
    .await
    .into_iter()
    .filter(|&d| d)
    .count();
    let after = pool.stats();
    let connects = after.connects_ok - before.connects_ok;
    println!(
        "{dropped} requests dropped, {connects} connects: {:.1} connects per 1,000 dropped \
         requests (closed broken {}, reset failed {})",
        connects as f64 * 1000.0 / dropped as f64,
        after.closes.get(CloseReason::Broken),
        after.closes.get(CloseReason::ResetFailed),
    );
}

/// Runs `n` tasks made by `task` at once and collects their results in order.
async fn futures_all<T, F>(n: usize, task: impl Fn(usize) -> F) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(task(i))).collect();
    let mut out = Vec::with_capacity(n);
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_dropped_statement_does_not_cost_the_connection() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = config(server.url(), &unique_name("stmt"));
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    let first = pid(&pool).await;
    {
        let conn = pool.get().await.unwrap();
        let statement = conn.prepare("SELECT 1").await.unwrap();
        conn.query(&statement, &[]).await.unwrap();
        // Dropping it sends Close + Sync, possibly still unanswered when the guard returns.
    }
    assert_eq!(pid(&pool).await, first);
}

#[tokio::test]
async fn bad_input_gets_a_typed_error_quickly() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let url = server.url();

    // Malformed URLs never reach the network.
    let err = Config::from_url("postgres://postgres@127.0.0.1:notaport/test").unwrap_err();
    assert_eq!(err.setting(), "url");
    assert!(err.problem().contains("port"), "{err}");

    let started = Instant::now();
    let pool = Config::from_url("postgres://postgres@no-such-host.invalid/test")
        .unwrap()
        .build_pool_lazy()
        .unwrap();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, PoolError::Connect(_)), "{err:?}");
    match err.backend() {
        Some(Error::UnknownHost { host, .. }) => assert_eq!(host, "no-such-host.invalid"),
        other => panic!("expected UnknownHost, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    let role = unique_name("no_such_role");
    let started = Instant::now();
    let pool = Config::from_url(&url.replacen("://postgres@", &format!("://{role}@"), 1))
        .unwrap()
        .build_pool_lazy()
        .unwrap();
    let err = pool.get().await.unwrap_err();
    let backend = err.backend().expect("the driver's error");
    assert!(
        matches!(backend, Error::Authentication { user, .. } if *user == role),
        "{backend:?}"
    );
    assert_eq!(backend.code().map(|c| c.code()), Some("28000"));
    assert!(backend.server_message().unwrap().contains(&role));
    assert!(chain(&err).contains(&role), "{}", chain(&err));
    assert!(started.elapsed() < Duration::from_secs(5));

    let database = unique_name("no_such_db");
    let started = Instant::now();
    let mut config = config(url, &unique_name("baddb"));
    config.postgres.dbname(&database);
    let err = config.build_pool_lazy().unwrap().get().await.unwrap_err();
    let backend = err.backend().expect("the driver's error");
    assert!(
        matches!(backend, Error::UnknownDatabase { database: d, .. } if *d == database),
        "{backend:?}"
    );
    assert_eq!(backend.code().map(|c| c.code()), Some("3D000"));
    assert!(chain(&err).contains(&format!("database \"{database}\" does not exist")));
    assert!(started.elapsed() < Duration::from_secs(5));

    // build_pool fails fast too.
    config.pool.initial_size = 1;
    let started = Instant::now();
    let err = config.build_pool().await.unwrap_err();
    assert!(chain(&err).contains(&database), "{}", chain(&err));
    assert!(started.elapsed() < Duration::from_secs(5));

    // A refused port may come back, so it is retried until the acquire timeout, which then
    // names the refusal.
    let mut config = Config::from_url("postgres://postgres@127.0.0.1:1/test").unwrap();
    config.pool.acquire_timeout = Some(Duration::from_millis(500));
    let started = Instant::now();
    let err = config.build_pool_lazy().unwrap().get().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let backend = err.backend().expect("the last connect error");
    assert!(matches!(backend, Error::Postgres(_)), "{backend:?}");
    assert_eq!(
        pool_drivers::Manager::classify(
            &Config::from_url(url).unwrap().manager().unwrap(),
            backend
        ),
        pool_drivers::ErrorKind::Transient
    );
    assert!(chain(backend).contains("refused"), "{}", chain(backend));
    assert!(started.elapsed() < Duration::from_secs(3));
}

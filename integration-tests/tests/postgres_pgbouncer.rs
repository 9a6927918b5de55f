//! The PostgreSQL driver behind PgBouncer in transaction pooling mode (`PGBOUNCER_URL`: a
//! PgBouncer with `pool_mode = transaction` and a small server pool in front of the local
//! server, as `.ci/services` starts it). With `pgbouncer` on, many tasks running parameterized
//! and prepared queries, transactions with `SET LOCAL`, dropped futures and cancels never meet
//! a missing or duplicate prepared statement; with it off, the same queries do, which shows the
//! setting is what makes the difference.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration_tests::{unique_name, url_from_env};
use pool_drivers::postgres::tokio_postgres::error::SqlState;
use pool_drivers::postgres::tokio_postgres::types::{ToSql, Type};
use pool_drivers::postgres::tokio_postgres::{self, NoTls};
use pool_drivers::postgres::{Config, Pool};
use pool_drivers::DriverConfig;

/// Tasks sharing one pool of [`POOL_SIZE`], in front of PgBouncer's server pool of 4.
const TASKS: usize = 32;
const POOL_SIZE: usize = 8;
/// Rounds each task runs in the pgbouncer-mode test.
const ROUNDS: usize = 40;

fn pgbouncer_url() -> Option<String> {
    url_from_env(
        "PGBOUNCER_URL",
        "PgBouncer in transaction pooling mode in front of PostgreSQL",
    )
}

/// A pool over PgBouncer with `pgbouncer` set as given, sessions named after the test.
fn pool(url: &str, pgbouncer: bool) -> Pool {
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{url}{sep}application_name={}&pgbouncer={pgbouncer}",
        unique_name("pgbouncer")
    );
    let mut config = Config::from_url(&url).expect("PGBOUNCER_URL parses");
    assert_eq!(config.pgbouncer, pgbouncer);
    config.pool.max_size = POOL_SIZE;
    config.pool.acquire_timeout = Some(Duration::from_secs(20));
    config.build_pool_lazy().expect("the pool builds")
}

/// An error about a prepared statement that the server connection does not have, or already
/// has: what transaction pooling does to statements that outlive their request.
fn is_statement_error(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        *code == SqlState::INVALID_SQL_STATEMENT_NAME
            || *code == SqlState::DUPLICATE_PSTATEMENT
            || *code == SqlState::UNDEFINED_PSTATEMENT
    }) || error.to_string().contains("prepared statement")
}

/// Asks PgBouncer (its admin console, database `pgbouncer`) to replace its server connections
/// once they are free, so statements a test left on them go with them.
async fn reconnect_server_side(url: &str) {
    let mut config: tokio_postgres::Config = url.parse().expect("PGBOUNCER_URL parses");
    config.dbname("pgbouncer");
    let (client, connection) = config.connect(NoTls).await.expect("the admin console");
    let driver = tokio::spawn(connection);
    client
        .simple_query("RECONNECT test")
        .await
        .expect("RECONNECT");
    drop(client);
    let _ = driver.await;
}

/// Drops the test's table, then closes the pool.
async fn drop_table(pool: &Pool, table: &str) {
    let conn = pool.get().await.expect("a connection");
    conn.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("the table is dropped");
    drop(conn);
    pool.close();
}

/// One round of a task's work: each kind of use a web service makes of a connection.
async fn round(
    pool: &Pool,
    task: usize,
    round: usize,
    counts: &Counts,
) -> Result<(), tokio_postgres::Error> {
    let n = i64::try_from(task * 1000 + round).unwrap();
    let mut conn = pool.get().await.expect("a connection");
    match round % 6 {
        // A parameterized query: prepare, bind and close in three requests.
        0 => {
            let row = conn.query_one("SELECT $1::INT8 + 1", &[&n]).await?;
            assert_eq!(row.get::<_, i64>(0), n + 1);
        }
        // A cached statement, used again across requests and checkouts.
        1 => {
            let statement = conn.prepare_cached("SELECT $1::INT8 * 2").await?;
            for k in 0..3 {
                let row = conn.query_one(&statement, &[&(n + k)]).await?;
                assert_eq!(row.get::<_, i64>(0), (n + k) * 2);
            }
        }
        // A transaction with a `SET LOCAL` and a `SET`, and statements inside it.
        2 => {
            let tx = conn.transaction().await?;
            tx.batch_execute("SET LOCAL statement_timeout = '10s'")
                .await?;
            tx.execute("SET application_name = 'in_transaction'", &[])
                .await?;
            let row = tx
                .query_one(
                    "SELECT current_setting('statement_timeout'), $1::TEXT",
                    &[&"x"],
                )
                .await?;
            assert_eq!(row.get::<_, String>(0), "10s");
            tx.commit().await?;
        }
        // A query with its types given: one request with the unnamed statement anyway.
        3 => {
            let row = conn
                .query_typed("SELECT $1 || 'y'", &[(&"x", Type::TEXT)])
                .await?;
            assert_eq!(row[0].get::<_, String>(0), "xy");
        }
        // A future dropped mid-query: the pool waits for the reply before reuse.
        4 => {
            let params: [&(dyn ToSql + Sync); 1] = [&n];
            let slow = conn.query_one("SELECT pg_sleep(0.05), $1::INT8", &params);
            if tokio::time::timeout(Duration::from_millis(10), slow)
                .await
                .is_err()
            {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        // A query cancelled through the borrow's cancel handle. PgBouncer passes a cancel on
        // only while the query runs on a server connection (it may wait for one first), so
        // the cancel is repeated until the query ends. The canceller is stopped between two
        // requests rather than aborted, so no cancel connection is left half-way when the
        // test ends (PgBouncer 1.18 fails on one cut off before it was passed on).
        _ => {
            let handle = conn.cancel_handle();
            let (stop, mut stopped) = tokio::sync::watch::channel(false);
            let canceller = tokio::spawn(async move {
                while !*stopped.borrow_and_update() {
                    handle.cancel().await.expect("the cancel went out");
                    let _ =
                        tokio::time::timeout(Duration::from_millis(20), stopped.changed()).await;
                }
            });
            let outcome = conn.query_one("SELECT pg_sleep(5), $1::INT8", &[&n]).await;
            let _ = stop.send(true);
            canceller.await.expect("the canceller ran");
            match outcome {
                Err(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {
                    counts.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                other => panic!("expected the query to be cancelled, got {other:?}"),
            }
        }
    }
    drop(conn);
    Ok(())
}

#[derive(Default)]
struct Counts {
    dropped: AtomicUsize,
    cancelled: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_pgbouncer_mode_no_statement_is_ever_missing_or_duplicate() {
    let Some(url) = pgbouncer_url() else { return };
    let pool = pool(&url, true);
    let counts = Arc::new(Counts::default());
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let pool = pool.clone();
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for r in 0..ROUNDS {
                    if let Err(e) = round(&pool, task, r, &counts).await {
                        errors.push(format!("{e:#}"));
                    }
                }
                errors
            })
        })
        .collect();
    let all = async {
        let mut errors = Vec::new();
        for task in tasks {
            errors.extend(task.await.expect("no task panicked"));
        }
        errors
    };
    let errors = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("the load ends within 2 minutes");
    assert!(errors.is_empty(), "errors under load: {errors:#?}");
    println!(
        "pgbouncer mode: {} rounds, {} cancelled, {} futures dropped mid-query, no error",
        TASKS * ROUNDS,
        counts.cancelled.load(Ordering::Relaxed),
        counts.dropped.load(Ordering::Relaxed)
    );
    let cancel_rounds = TASKS * (0..ROUNDS).filter(|r| r % 6 == 5).count();
    assert_eq!(
        counts.cancelled.load(Ordering::Relaxed),
        cancel_rounds,
        "every cancel round was cancelled"
    );
    // Most 10 ms timeouts cut a 50 ms query off; some may come late on a loaded machine.
    assert!(
        counts.dropped.load(Ordering::Relaxed) > 0,
        "no query future was dropped mid-flight"
    );
    pool.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pgbouncer_mode_statements_go_missing_behind_pgbouncer() {
    let Some(url) = pgbouncer_url() else { return };
    let pool = pool(&url, false);
    let seen = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let pool = pool.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                // Until some task meets the failure, or a bound.
                for r in 0..500 {
                    if seen.load(Ordering::Relaxed) > 0 {
                        break;
                    }
                    let n = i64::try_from(task * 1000 + r).unwrap();
                    let conn = pool.get().await.expect("a connection");
                    match conn.query_one("SELECT $1::INT8 + 1", &[&n]).await {
                        Ok(row) => assert_eq!(row.get::<_, i64>(0), n + 1),
                        Err(e) if is_statement_error(&e) => {
                            seen.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("an unexpected error: {e:#}"),
                    }
                }
            })
        })
        .collect();
    let all = async {
        for task in tasks {
            task.await.expect("no task panicked");
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("the load ends within 2 minutes");
    println!(
        "default mode behind PgBouncer: {} statement errors",
        seen.load(Ordering::Relaxed)
    );
    pool.close();
    // The statements this left on PgBouncer's server connections go with them.
    reconnect_server_side(&url).await;
    assert!(
        seen.load(Ordering::Relaxed) > 0,
        "named statements never went missing behind PgBouncer in transaction mode"
    );
}

#[test]
fn pgbouncer_mode_refuses_what_cannot_work() {
    let problem = |url: &str| Config::from_url(url).unwrap_err().to_string();
    assert!(problem("postgres://u@h/db?pgbouncer=maybe").contains("true or false"));
    assert!(problem("postgres://u@/db?host=/run/postgresql&pgbouncer=true").contains("TCP"));
    let mut config = Config::from_url("postgres://u@h/db?pgbouncer=1").unwrap();
    assert!(config.pgbouncer);
    config.cleanup.reset_all = true;
    let err = config.manager().unwrap_err();
    assert_eq!(err.setting(), "cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_the_query_through_pgbouncer() {
    let Some(url) = pgbouncer_url() else { return };
    let pool = pool(&url, true);
    let conn = pool.get().await.expect("a connection");
    let handle = conn.cancel_handle();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.cancel().await
    });
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        conn.query_one("SELECT pg_sleep(10)", &[]),
    )
    .await
    .expect("the query ends");
    canceller
        .await
        .expect("the canceller ran")
        .expect("the cancel went out");
    let error = outcome.expect_err("the query was cancelled");
    assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error:#}");
    drop(conn);
    pool.close();
}

/// `COPY ... TO STDOUT` works in PgBouncer mode, from many tasks, with queries between.
/// (`COPY ... FROM STDIN` is not tested: `tokio_postgres` sends it over the extended protocol
/// with a `Sync` the server skips, and PgBouncer 1.18 then loses track of the session in
/// either mode; see the README.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_out_works_in_pgbouncer_mode() {
    use futures_util::StreamExt;

    let Some(url) = pgbouncer_url() else { return };
    let pool = pool(&url, true);
    let table = unique_name("pgbouncer_copy");
    let admin = pool.get().await.expect("a connection");
    admin
        .batch_execute(&format!(
            "CREATE TABLE {table} AS SELECT n::INT8 FROM generate_series(1, 100) AS n"
        ))
        .await
        .expect("the table is created");
    drop(admin);
    let work = async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let pool = pool.clone();
                let table = table.clone();
                tokio::spawn(async move {
                    for round in 0..5_i64 {
                        let conn = pool.get().await.expect("a connection");
                        let limit = i64::try_from(task).unwrap() + round + 1;
                        let stream = conn
                            .copy_out(&format!(
                                "COPY (SELECT n FROM {table} WHERE n <= {limit}) TO STDOUT"
                            ))
                            .await
                            .expect("COPY TO starts");
                        let chunks: Vec<_> = stream.collect().await;
                        let lines: usize = chunks
                            .into_iter()
                            .map(|chunk| {
                                chunk.expect("copy data").split(|b| *b == b'\n').count() - 1
                            })
                            .sum();
                        assert_eq!(lines, usize::try_from(limit).unwrap());
                        // A parameterized query right after, on whatever server it reaches.
                        let row = conn
                            .query_one(
                                &format!("SELECT count(*) FROM {table} WHERE n <= $1"),
                                &[&limit],
                            )
                            .await
                            .expect("a query after COPY");
                        assert_eq!(row.get::<_, i64>(0), limit);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("no task panicked");
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), work).await;
    drop_table(&pool, &table).await;
    outcome.expect("the copies end within a minute");
}

/// The statement rewriting of PgBouncer mode keeps an extended-protocol `COPY ... FROM STDIN`
/// (whose `Sync` the server skips) in step with the replies, shown on the server directly
/// (`POSTGRES_URL`): copies and parameterized queries in turn on one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_mode_keeps_copy_from_stdin_in_step() {
    use futures_util::SinkExt;

    let Some(url) = url_from_env("POSTGRES_URL", "PostgreSQL") else {
        return;
    };
    let pool = pool(&url, true);
    let table = unique_name("pgbouncer_copy_in");
    let conn = pool.get().await.expect("a connection");
    conn.batch_execute(&format!("CREATE TABLE {table} (n INT8 NOT NULL)"))
        .await
        .expect("the table is created");
    let work = async {
        for round in 1..=3_i64 {
            let sink = conn
                .copy_in(&format!("COPY {table} (n) FROM STDIN"))
                .await
                .expect("COPY FROM starts");
            let mut sink = std::pin::pin!(sink);
            for k in 0..10 {
                sink.send(bytes::Bytes::from(format!("{k}\n")))
                    .await
                    .expect("copy data");
            }
            assert_eq!(sink.finish().await.expect("COPY FROM ends"), 10);
            let row = conn
                .query_one(
                    &format!("SELECT count(*) FROM {table} WHERE n >= $1"),
                    &[&0_i64],
                )
                .await
                .expect("a query after COPY");
            assert_eq!(row.get::<_, i64>(0), 10 * round);
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), work).await;
    drop(conn);
    drop_table(&pool, &table).await;
    outcome.expect("the copies end within 30 s");
}

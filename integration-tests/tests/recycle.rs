//! The recycling strategies on each driver against the real servers: `Recycle::Checked` leaves
//! the next borrower of the same server session none of the state the last one left, and
//! statements keep working; `Recycle::Replace` hands out a new server session and the old one
//! ends on the server; a PostgreSQL session killed while held is caught by the check on return
//! and never handed out.

use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use integration_tests::invariants::eventually;
use integration_tests::proxy::{Fault, Proxy};
use integration_tests::{server, unique_name, Kind};
use pool_drivers::mysql::mysql_async::prelude::Queryable;
use pool_drivers::redis::redis::{self, AsyncCommands};
use pool_drivers::sqlx::sqlx::{self, Connection as _};
use pool_drivers::DriverConfig;
use pool_drivers::{CloseReason, Manager, Pool, Recycle};

/// How long any one of these tests may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs a test body, failing it rather than letting it hang.
async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("the test ran to its end within its time limit")
}

/// The `host:port` of a `scheme://[login@]host:port/...` URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    host.rsplit_once('@').map_or(host, |(_, host)| host)
}

/// The `host:port` of `url` resolved, with `default_port` when the URL names none.
async fn address(url: &str, default_port: u16) -> SocketAddr {
    let authority = authority(url);
    let target = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    let mut addresses = tokio::net::lookup_host(target.as_str())
        .await
        .expect("the server's host resolves");
    addresses.next().expect("an address for the server's host")
}

/// `Recycle::Replace` on any driver (`pool` recycles that way): the next borrower gets another
/// server session, the one returned ends on the server, and the pool counts it as recycled.
/// `id` names a connection's server session; `exists` asks the server, over another
/// connection, whether a session is still there.
async fn replace_ends_the_old_session<M, Id>(
    pool: &Pool<M>,
    id: impl AsyncFn(&mut M::Connection) -> Id,
    exists: impl AsyncFn(Id) -> bool,
) where
    M: Manager,
    Id: Copy + PartialEq + Debug,
{
    let mut conn = pool.get().await.expect("a connection");
    let first = id(&mut conn).await;
    drop(conn);
    let mut conn = pool.get().await.expect("a new connection");
    let second = id(&mut conn).await;
    assert_ne!(second, first, "a new server session");
    assert_eq!(pool.stats().closes.get(CloseReason::Recycled), 1);
    eventually(
        "the old session ending",
        Duration::from_secs(10),
        || async {
            if exists(first).await {
                Err(format!("the server still has session {first:?}"))
            } else {
                Ok(())
            }
        },
    )
    .await;
    assert!(exists(second).await, "the new session is on the server");
}

mod postgres {
    use super::*;
    use pool_drivers::postgres::tokio_postgres::error::SqlState;
    use pool_drivers::postgres::{Config, PgConnection, Pool};

    /// A pool of one connection whose sessions carry `app` as their `application_name`.
    fn config(url: &str, app: &str, recycle: Recycle) -> Config {
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut config = Config::from_url(&format!("{url}{sep}application_name={app}"))
            .expect("the server URL parses");
        config.pool.max_size = 1;
        config.pool.acquire_timeout = Some(Duration::from_secs(10));
        config.pool.recycle = recycle;
        config
    }

    async fn pid(conn: &PgConnection) -> i32 {
        conn.query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("the backend's pid")
            .get(0)
    }

    async fn setting(conn: &PgConnection, name: &str) -> String {
        conn.query_one("SELECT current_setting($1)", &[&name])
            .await
            .expect("a setting")
            .get(0)
    }

    /// Whether the server still has a session with `pid`, asked through `admin`.
    async fn session_exists(admin: &Pool, pid: i32) -> bool {
        let conn = admin.get().await.expect("an admin connection");
        conn.query_one(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
    }

    /// Waits until the server, asked through `admin`, no longer has a session with `pid`.
    async fn session_ended(admin: &Pool, pid: i32) {
        eventually("the session ending", Duration::from_secs(10), || async {
            if session_exists(admin, pid).await {
                Err(format!("the server still has session {pid}"))
            } else {
                Ok(())
            }
        })
        .await;
    }

    #[tokio::test]
    async fn checked_discards_what_the_borrower_left_in_the_same_session() {
        let Some(server) = server(Kind::Postgres).await else {
            return;
        };
        bounded(async {
            let app = unique_name("recycle_checked");
            let pool = config(server.url(), &app, Recycle::Checked)
                .build_pool_lazy()
                .unwrap();
            const SUM: &str = "SELECT $1::INT4 + 1";

            let conn = pool.get().await.unwrap();
            let first = pid(&conn).await;
            let work_mem = setting(&conn, "work_mem").await;
            let statement = conn.prepare_cached(SUM).await.unwrap();
            let n: i32 = conn.query_one(&statement, &[&1]).await.unwrap().get(0);
            assert_eq!(n, 2);
            // Settings, a temporary table and a prepared statement, committed; then an open
            // transaction (in a batch of their own: a `BEGIN` in the same batch would take
            // the statements before it into its transaction, and the rollback alone would
            // undo them).
            conn.batch_execute(
                "SET application_name = 'changed'; SET work_mem = '7MB'; \
                 CREATE TEMP TABLE leftover (x INT4); PREPARE leftover_plan AS SELECT 1",
            )
            .await
            .unwrap();
            conn.batch_execute("BEGIN; INSERT INTO leftover VALUES (1)")
                .await
                .unwrap();
            assert_eq!(setting(&conn, "work_mem").await, "7MB");
            drop(conn);

            let conn = pool.get().await.unwrap();
            assert_eq!(pid(&conn).await, first, "the same server session");
            assert_eq!(setting(&conn, "application_name").await, app);
            assert_eq!(setting(&conn, "work_mem").await, work_mem);
            let gone: bool = conn
                .query_one("SELECT to_regclass('pg_temp.leftover') IS NULL", &[])
                .await
                .unwrap()
                .get(0);
            assert!(gone, "the temporary table is dropped");
            let plans: i64 = conn
                .query_one(
                    "SELECT count(*) FROM pg_prepared_statements WHERE name = 'leftover_plan'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(plans, 0, "the prepared statement is deallocated");
            let outside = conn
                .batch_execute("SAVEPOINT probe")
                .await
                .expect_err("no transaction is open");
            assert_eq!(
                outside.code(),
                Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION),
                "{outside}"
            );
            // The server forgot the cached statement, and so did the cache: preparing again
            // works, where running the stale one would fail.
            assert_eq!(conn.statement_cache_len(), 0);
            let statement = conn.prepare_cached(SUM).await.unwrap();
            let n: i32 = conn.query_one(&statement, &[&2]).await.unwrap().get(0);
            assert_eq!(n, 3);
            let n: i32 = conn.query_one(SUM, &[&3]).await.unwrap().get(0);
            assert_eq!(n, 4);
            assert_eq!(pool.stats().closes.get(CloseReason::ResetFailed), 0);
        })
        .await;
    }

    #[tokio::test]
    async fn replace_hands_out_a_new_session_and_ends_the_old_one() {
        let Some(server) = server(Kind::Postgres).await else {
            return;
        };
        bounded(async {
            let app = unique_name("recycle_replace");
            let pool = config(server.url(), &app, Recycle::Replace)
                .build_pool_lazy()
                .unwrap();
            let admin = Config::from_url(server.url())
                .unwrap()
                .build_pool_lazy()
                .unwrap();

            replace_ends_the_old_session(
                &pool,
                async |conn: &mut PgConnection| pid(conn).await,
                async |pid| session_exists(&admin, pid).await,
            )
            .await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_session_killed_while_held_fails_the_check_on_return() {
        let Some(server) = server(Kind::Postgres).await else {
            return;
        };
        bounded(async {
            // The proxy keeps the kill from the client, as a network that drops the server's
            // goodbye would: the connection looks fine when it comes back, and only the check
            // on return finds out.
            let upstream = address(server.url(), 5432).await;
            let proxy = Proxy::start(upstream).await;
            let url = server
                .url()
                .replacen(authority(server.url()), &proxy.addr().to_string(), 1);
            let app = unique_name("recycle_check_on_return");
            let mut config = config(&url, &app, Recycle::Fast);
            config.pool.check_on_return = true;
            config.pool.check_timeout = Duration::from_millis(500);
            let pool = config.build_pool_lazy().unwrap();
            let admin = Config::from_url(server.url())
                .unwrap()
                .build_pool_lazy()
                .unwrap();

            let conn = pool.get().await.unwrap();
            let first = pid(&conn).await;
            // The query's statement is closed after it returned; once this reply is in, so is
            // that one's, and the session is idle with nothing to reset.
            conn.batch_execute("").await.unwrap();
            proxy.set(Fault::BlackHole);
            let killed: bool = admin
                .get()
                .await
                .unwrap()
                .query_one("SELECT pg_terminate_backend($1)", &[&first])
                .await
                .unwrap()
                .get(0);
            assert!(killed);
            session_ended(&admin, first).await;
            assert!(!conn.is_closed(), "the client has not heard of the kill");
            drop(conn);

            eventually(
                "the check on return failing",
                Duration::from_secs(10),
                || async {
                    match pool.stats().closes.get(CloseReason::CheckFailed) {
                        1 => Ok(()),
                        n => Err(format!(
                            "{n} connections failed their check; closes: {:?}",
                            pool.stats().closes
                        )),
                    }
                },
            )
            .await;
            proxy.set(Fault::Pass);
            let conn = pool.get().await.expect("a new connection, no error");
            assert_ne!(
                pid(&conn).await,
                first,
                "the killed session is never handed out"
            );
            let stats = pool.stats();
            assert_eq!(stats.closes.get(CloseReason::Broken), 0);
            assert_eq!(stats.closes.get(CloseReason::ResetFailed), 0);
            assert_eq!(stats.closes.get(CloseReason::CheckFailed), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn checked_on_sqlx_discards_the_session_and_its_statements() {
        let Some(server) = server(Kind::Postgres).await else {
            return;
        };
        bounded(async {
            use pool_drivers::sqlx::postgres;

            let mut config = postgres::Config::from_url(server.url()).unwrap();
            config.pool.max_size = 1;
            config.pool.acquire_timeout = Some(Duration::from_secs(10));
            config.pool.recycle = Recycle::Checked;
            let pool = config.build_pool_lazy().unwrap();
            const SUM: &str = "SELECT $1::INT4 + 1";
            const WORK_MEM: &str = "SELECT current_setting('work_mem')";

            let mut conn = pool.get().await.unwrap();
            let (first,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let (work_mem,): (String,) = sqlx::query_as(WORK_MEM)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let (n,): (i32,) = sqlx::query_as(SUM)
                .bind(1)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(n, 2);
            assert!(conn.cached_statements_size() > 0);
            sqlx::raw_sql("SET work_mem = '7MB'; CREATE TEMP TABLE leftover (x INT4)")
                .execute(&mut *conn)
                .await
                .unwrap();
            drop(conn);

            let mut conn = pool.get().await.unwrap();
            let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(pid, first, "the same server session");
            let (now,): (String,) = sqlx::query_as(WORK_MEM)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(now, work_mem);
            let (gone,): (bool,) = sqlx::query_as("SELECT to_regclass('pg_temp.leftover') IS NULL")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert!(gone, "the temporary table is dropped");
            let (n,): (i32,) = sqlx::query_as(SUM)
                .bind(2)
                .fetch_one(&mut *conn)
                .await
                .expect("the statement is prepared again");
            assert_eq!(n, 3);
            assert_eq!(pool.stats().closes.get(CloseReason::ResetFailed), 0);
        })
        .await;
    }
}

mod mysql {
    use super::*;
    use pool_drivers::mysql::mysql_async::Conn;
    use pool_drivers::mysql::{Config, Pool};

    /// A pool of one connection.
    fn pool(url: &str, recycle: Recycle) -> Pool {
        let mut config = Config::from_url(url).expect("the server URL parses");
        config.pool.max_size = 1;
        config.pool.acquire_timeout = Some(Duration::from_secs(10));
        config.pool.recycle = recycle;
        config.build_pool_lazy().unwrap()
    }

    async fn connection_id(conn: &mut Conn) -> u64 {
        let id: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.unwrap();
        id.expect("a connection id")
    }

    #[tokio::test]
    async fn checked_discards_what_the_borrower_left_in_the_same_session() {
        let Some(server) = server(Kind::Mysql).await else {
            return;
        };
        bounded(async {
            let pool = pool(server.url(), Recycle::Checked);
            let table = unique_name("leftover");
            let plan = unique_name("leftover_plan");

            let mut conn = pool.get().await.unwrap();
            let first = connection_id(&mut conn).await;
            let database: Option<Option<String>> =
                conn.query_first("SELECT DATABASE()").await.unwrap();
            let n: Option<i64> = conn.exec_first("SELECT ? + 1", (1,)).await.unwrap();
            assert_eq!(n, Some(2));
            conn.query_drop("SET @leftover = 1").await.unwrap();
            conn.query_drop(format!("CREATE TEMPORARY TABLE {table} (x INT)"))
                .await
                .unwrap();
            conn.query_drop(format!("PREPARE {plan} FROM 'SELECT 1'"))
                .await
                .unwrap();
            conn.query_drop("START TRANSACTION").await.unwrap();
            conn.query_drop(format!("INSERT INTO {table} VALUES (1)"))
                .await
                .unwrap();
            conn.query_drop("USE information_schema").await.unwrap();
            drop(conn);

            let mut conn = pool.get().await.unwrap();
            assert_eq!(
                connection_id(&mut conn).await,
                first,
                "the same server session"
            );
            let variable: Option<Option<i64>> = conn.query_first("SELECT @leftover").await.unwrap();
            assert_eq!(variable, Some(None), "the session variable is unset");
            let now: Option<Option<String>> = conn.query_first("SELECT DATABASE()").await.unwrap();
            assert_eq!(now, database, "the configured database is selected again");
            let err = conn
                .query_drop(format!("SELECT COUNT(*) FROM {table}"))
                .await
                .expect_err("the temporary table is dropped");
            assert!(err.to_string().contains("1146"), "{err}");
            let err = conn
                .query_drop(format!("EXECUTE {plan}"))
                .await
                .expect_err("the prepared statement is deallocated");
            assert!(err.to_string().contains("1243"), "{err}");
            // The driver's statement cache was cleared with the server's statements.
            let n: Option<i64> = conn.exec_first("SELECT ? + 1", (2,)).await.unwrap();
            assert_eq!(n, Some(3));
            assert_eq!(pool.stats().closes.get(CloseReason::ResetFailed), 0);
        })
        .await;
    }

    #[tokio::test]
    async fn replace_hands_out_a_new_session_and_ends_the_old_one() {
        let Some(server) = server(Kind::Mysql).await else {
            return;
        };
        bounded(async {
            let pool = pool(server.url(), Recycle::Replace);
            let admin = &self::pool(server.url(), Recycle::Fast);
            replace_ends_the_old_session(&pool, connection_id, async |id: u64| {
                let mut conn = admin.get().await.unwrap();
                let n: Option<i64> = conn
                    .exec_first(
                        "SELECT COUNT(*) FROM information_schema.processlist WHERE id = ?",
                        (id,),
                    )
                    .await
                    .unwrap();
                n.unwrap_or(0) > 0
            })
            .await;
        })
        .await;
    }
}

mod redis_tests {
    use super::*;
    use integration_tests::redis_client::{client_id, client_info};
    use pool_drivers::redis::{Config, Pool};

    /// The database the pools of these tests select.
    const DB: i64 = 2;

    /// A pool of one connection to database [`DB`].
    fn pool(url: &str, recycle: Recycle) -> Pool {
        let scheme = url.split_once("://").map_or("redis", |(scheme, _)| scheme);
        let login = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split(['/', '?']).next())
            .and_then(|host| host.rsplit_once('@'))
            .map_or(String::new(), |(login, _)| format!("{login}@"));
        let url = format!("{scheme}://{login}{}/{DB}", authority(url));
        let mut config = Config::from_url(&url).expect("the server URL parses");
        config.pool.max_size = 1;
        config.pool.acquire_timeout = Some(Duration::from_secs(10));
        config.pool.recycle = recycle;
        config.build_pool_lazy().unwrap()
    }

    #[tokio::test]
    async fn checked_discards_what_the_borrower_left_in_the_same_session() {
        let Some(server) = server(Kind::Redis).await else {
            return;
        };
        bounded(async {
            let pool = pool(server.url(), Recycle::Checked);
            let key = unique_name("pool_recycle_checked");

            let mut conn = pool.get().await.unwrap();
            let first = client_id(&mut conn).await;
            assert_eq!(client_info(&mut conn, "db").await, DB.to_string());
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg("leftover")
                .exec_async(&mut *conn)
                .await
                .unwrap();
            redis::cmd("SELECT")
                .arg(5)
                .exec_async(&mut *conn)
                .await
                .unwrap();
            assert_eq!(client_info(&mut conn, "db").await, "5");
            drop(conn);

            let mut conn = pool.get().await.unwrap();
            assert_eq!(client_id(&mut conn).await, first, "the same server session");
            assert_eq!(client_info(&mut conn, "db").await, DB.to_string());
            assert_eq!(client_info(&mut conn, "name").await, "");
            let () = conn.set(&key, "after").await.unwrap();
            let value: String = conn.get(&key).await.unwrap();
            assert_eq!(value, "after");
            let removed: i64 = conn.del(&key).await.unwrap();
            assert_eq!(removed, 1);
            assert_eq!(pool.stats().closes.get(CloseReason::ResetFailed), 0);
        })
        .await;
    }

    #[tokio::test]
    async fn replace_hands_out_a_new_session_and_ends_the_old_one() {
        let Some(server) = server(Kind::Redis).await else {
            return;
        };
        bounded(async {
            let pool = pool(server.url(), Recycle::Replace);
            let admin = &self::pool(server.url(), Recycle::Fast);
            replace_ends_the_old_session(&pool, client_id, async |id: i64| {
                let mut conn = admin.get().await.unwrap();
                let list: String = redis::cmd("CLIENT")
                    .arg("LIST")
                    .arg("ID")
                    .arg(id)
                    .query_async(&mut *conn)
                    .await
                    .unwrap();
                !list.trim().is_empty()
            })
            .await;
        })
        .await;
    }
}

//! The sqlx drivers: SQLite in a temporary file or in memory (always runs), PostgreSQL and
//! MySQL against the servers `integration_tests::server` finds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use integration_tests::{server, unique_name, Kind};
use pool_drivers::sqlx::sqlx::{self, Connection as _, Executor as _};
use pool_drivers::sqlx::{mysql, postgres, sqlite, SqlxConnection};
use pool_drivers::DriverConfig;
use pool_drivers::{ErrorKind, Manager as _};

/// A SQLite file in the temporary directory, removed (with its journal files) on drop.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new() -> TempDb {
        let path = std::env::temp_dir().join(format!("{}.sqlite", unique_name("pool_sqlx")));
        TempDb { path }
    }

    fn config(&self) -> sqlite::Config {
        let mut config =
            sqlite::Config::from_url(&format!("sqlite://{}?mode=rwc", self.path.display()))
                .unwrap();
        config.pool.acquire_timeout = Some(Duration::from_secs(10));
        config
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `url` with another user name (and no password).
fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

/// `url` with a password for its user.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.rsplit_once('@').unwrap();
    let user = user.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

/// `url` naming another database.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = authority.split('/').next().unwrap();
    format!("{scheme}://{authority}/{database}{query}")
}

/// Asserts that `config` fails at once with a permanent server error whose code is `code` and
/// whose message mentions `mentions`.
async fn assert_permanent<C: SqlxConnection>(
    mut config: pool_drivers::sqlx::Config<C>,
    code: &str,
    mentions: &str,
) {
    config.pool.acquire_timeout = Some(Duration::from_secs(20));
    let pool = config.build_pool_lazy().unwrap();
    let started = Instant::now();
    let err = pool.get().await.err().expect("the connect must fail");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}: {err:?}",
        started.elapsed()
    );
    assert!(!err.is_timeout(), "{err:?}");
    let backend = err.backend().expect("the server's error");
    assert_eq!(pool.manager().classify(backend), ErrorKind::Permanent);
    let sqlx::Error::Database(db) = backend else {
        panic!("expected a database error, got {backend:?}");
    };
    assert_eq!(db.code().as_deref(), Some(code), "{db:?}");
    let message = backend.to_string();
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

// ---------------------------------------------------------------- SQLite

#[tokio::test]
async fn sqlite_get_use_return() {
    let db = TempDb::new();
    let pool = db.config().build_pool_lazy().unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .await
            .unwrap();
        sqlx::query("INSERT INTO notes (body) VALUES (?)")
            .bind("first")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    let (body,): (String,) = sqlx::query_as("SELECT body FROM notes")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(body, "first");
    drop(conn);
    assert_eq!(pool.stats().connects_ok, 1);
    assert_eq!(pool.status().idle, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_tasks_share_few_connections() {
    let db = TempDb::new();
    let mut config = db.config();
    config.pool.max_size = 3;
    let pool = config.build_pool_lazy().unwrap();
    pool.get()
        .await
        .unwrap()
        .execute("CREATE TABLE hits (task INTEGER NOT NULL, n INTEGER NOT NULL)")
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|task| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for n in 0..10 {
                    let mut conn = pool.get().await?;
                    sqlx::query("INSERT INTO hits (task, n) VALUES (?, ?)")
                        .bind(task)
                        .bind(n)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM hits")
        .fetch_one(&mut *pool.get().await.unwrap())
        .await
        .unwrap();
    assert_eq!(count, 200);
    assert!(pool.stats().connects_ok <= 3, "{:?}", pool.stats());
}

/// With one connection, the next borrower gets the same one: whatever transaction was left
/// open must be gone.
#[tokio::test]
async fn sqlite_a_transaction_left_open_is_gone_for_the_next_borrower() {
    let db = TempDb::new();
    let mut config = db.config();
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    pool.get()
        .await
        .unwrap()
        .execute("CREATE TABLE t (x INTEGER)")
        .await
        .unwrap();

    // A sqlx transaction dropped without commit: sqlx only queues the rollback.
    {
        let mut conn = pool.get().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (1)").await.unwrap();
        drop(tx);
    }
    // A transaction begun with plain SQL, which sqlx does not count.
    {
        let mut conn = pool.get().await.unwrap();
        conn.execute("BEGIN").await.unwrap();
        conn.execute("INSERT INTO t VALUES (2)").await.unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    assert!(!conn.is_in_transaction());
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(count, 0);
    // The connection can begin a transaction of its own (not a savepoint in someone else's).
    let mut tx = conn.begin().await.unwrap();
    tx.execute("INSERT INTO t VALUES (3)").await.unwrap();
    tx.commit().await.unwrap();
    drop(conn);

    // No lock is left behind either: another pool writes at once.
    let options = db
        .config()
        .manager()
        .unwrap()
        .options()
        .clone()
        .busy_timeout(Duration::ZERO);
    let other = sqlite::Pool::builder(sqlite::Manager::new(options))
        .build_lazy()
        .unwrap();
    other
        .get()
        .await
        .unwrap()
        .execute("INSERT INTO t VALUES (4)")
        .await
        .unwrap();
    assert_eq!(pool.stats().connects_ok, 1);
}

#[tokio::test]
async fn sqlite_in_memory_is_shared_by_the_pool() {
    let mut config = sqlite::Config::from_url("sqlite::memory:").unwrap();
    config.pool.max_size = 2;
    let pool = config.build_pool_lazy().unwrap();
    let mut first = pool.get().await.unwrap();
    first.execute("CREATE TABLE m (x INTEGER)").await.unwrap();
    first.execute("INSERT INTO m VALUES (42)").await.unwrap();
    // A second connection, open while the first is held, sees the same database.
    let mut second = pool.get().await.unwrap();
    let (x,): (i64,) = sqlx::query_as("SELECT x FROM m")
        .fetch_one(&mut *second)
        .await
        .unwrap();
    assert_eq!(x, 42);
    assert_eq!(pool.stats().connects_ok, 2);
}

#[tokio::test]
async fn sqlite_a_file_that_cannot_be_opened_is_reported_at_once() {
    let missing = std::env::temp_dir()
        .join(unique_name("no_such_dir"))
        .join("db.sqlite");
    let config = sqlite::Config::from_url(&format!("sqlite://{}", missing.display())).unwrap();
    // SQLITE_CANTOPEN
    assert_permanent(config, "14", "unable to open database file").await;
}

#[tokio::test]
async fn sqlite_check_and_build_pool() {
    let db = TempDb::new();
    let mut config = db.config();
    config.pool.initial_size = 2;
    let pool = config.build_pool().await.unwrap();
    assert_eq!(pool.status().idle, 2);
    let manager = pool.manager();
    let mut conn = manager.connect().await.unwrap();
    manager.check(&mut conn).await.unwrap();
    manager.reset(&mut conn).await.unwrap();
    assert!(!manager.has_broken(&mut conn));
}

#[test]
fn bad_urls_are_named() {
    let err = sqlite::Config::from_url("postgres://postgres@127.0.0.1/test").unwrap_err();
    assert_eq!(err.setting(), "url");
    assert!(err.problem().contains("expected a SQLite URL"), "{err}");
    let err = sqlite::Config::from_url("sqlite::memory:?mode=sideways").unwrap_err();
    assert!(err.problem().contains("is not a valid SQLite URL"), "{err}");
    let err = postgres::Config::from_url("mysql://root@127.0.0.1/test").unwrap_err();
    assert!(err.problem().contains("expected a PostgreSQL URL"), "{err}");
    let err = postgres::Config::from_url("postgres://u:secret@127.0.0.1:99999/test").unwrap_err();
    assert!(
        err.problem().contains("is not a valid PostgreSQL URL"),
        "{err}"
    );
    assert!(!err.to_string().contains("secret"), "{err}");
    let err = mysql::Config::from_url("mysql://root@127.0.0.1:port/test").unwrap_err();
    assert!(err.problem().contains("is not a valid MySQL URL"), "{err}");
}

#[test]
fn debug_hides_the_password() {
    let config = postgres::Config::from_url("postgres://app:s3cret@127.0.0.1/test").unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("app:***@127.0.0.1"), "{debug}");
    let manager = config.manager().unwrap();
    assert!(!format!("{manager:?}").contains("s3cret"));
    let config = mysql::Config::from_url("mysql://root:s3cret@127.0.0.1/test").unwrap();
    assert!(!format!("{config:?}").contains("s3cret"));
}

// ------------------------------------------------------- PostgreSQL and MySQL

/// Runs the same checks against a server database (a macro: sqlx's query API is hard to use
/// generically over the database).
macro_rules! server_get_use_and_rollback {
    ($config:ty, $url:expr, $table:expr) => {{
        let (url, table): (&str, &str) = ($url, $table);
        let mut config = <$config>::from_url(url).unwrap();
        config.pool.max_size = 1;
        config.pool.acquire_timeout = Some(Duration::from_secs(10));
        let pool = config.build_pool_lazy().unwrap();
        let count = format!("SELECT count(*) FROM {table}");
        {
            let mut conn = pool.get().await.unwrap();
            conn.execute(&*format!("CREATE TABLE {table} (x INTEGER)"))
                .await
                .unwrap();
            let (one,): (i64,) = sqlx::query_as(&count).fetch_one(&mut *conn).await.unwrap();
            assert_eq!(one, 0);
        }
        // A sqlx transaction dropped without commit.
        {
            let mut conn = pool.get().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            tx.execute(&*format!("INSERT INTO {table} VALUES (1)"))
                .await
                .unwrap();
        }
        // A transaction begun with plain SQL.
        {
            let mut conn = pool.get().await.unwrap();
            conn.execute("BEGIN").await.unwrap();
            conn.execute(&*format!("INSERT INTO {table} VALUES (2)"))
                .await
                .unwrap();
        }
        // A transaction that failed (PostgreSQL refuses everything but ROLLBACK after this).
        {
            let mut conn = pool.get().await.unwrap();
            conn.execute("BEGIN").await.unwrap();
            conn.execute(&*format!("INSERT INTO {table} VALUES (3)"))
                .await
                .unwrap();
            assert!(conn
                .execute("SELECT * FROM no_such_table_at_all")
                .await
                .is_err());
        }
        let mut conn = pool.get().await.unwrap();
        assert!(!conn.is_in_transaction());
        let (rows,): (i64,) = sqlx::query_as(&count).fetch_one(&mut *conn).await.unwrap();
        assert_eq!(rows, 0, "a transaction survived into the next checkout");
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&*format!("INSERT INTO {table} VALUES (4)"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let (rows,): (i64,) = sqlx::query_as(&count).fetch_one(&mut *conn).await.unwrap();
        assert_eq!(rows, 1);
        conn.execute(&*format!("DROP TABLE {table}")).await.unwrap();
        drop(conn);
        let stats = pool.stats();
        assert_eq!(stats.connects_ok, 1, "{stats:?}");
        assert_eq!(stats.closes.total(), 0, "{stats:?}");
    }};
}

#[tokio::test]
async fn postgres_get_use_and_rollback() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    server_get_use_and_rollback!(postgres::Config, server.url(), &unique_name("sqlx_pg"));
}

#[tokio::test]
async fn mysql_get_use_and_rollback() {
    let Some(server) = server(Kind::Mysql).await else {
        return;
    };
    server_get_use_and_rollback!(mysql::Config, server.url(), &unique_name("sqlx_my"));
}

#[tokio::test]
async fn postgres_a_query_dropped_midway_leaves_a_usable_connection() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let mut config = postgres::Config::from_url(server.url()).unwrap();
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        let slow = sqlx::query("SELECT pg_sleep(1)").execute(&mut *conn);
        assert!(tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err());
    }
    // The reset reads the rest of the interrupted reply before anything else.
    let mut conn = pool.get().await.unwrap();
    let (n,): (i32,) = sqlx::query_as("SELECT 7")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 7);
}

#[tokio::test]
async fn mysql_a_query_dropped_midway_leaves_a_usable_connection() {
    let Some(server) = server(Kind::Mysql).await else {
        return;
    };
    let mut config = mysql::Config::from_url(server.url()).unwrap();
    config.pool.max_size = 1;
    let pool = config.build_pool_lazy().unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        let slow = sqlx::query("SELECT SLEEP(1)").execute(&mut *conn);
        assert!(tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err());
    }
    let mut conn = pool.get().await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT 7")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 7);
}

#[tokio::test]
async fn postgres_bad_inputs_are_reported_at_once() {
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    let user = unique_name("no_such_role");
    let config = postgres::Config::from_url(&with_user(server.url(), &user)).unwrap();
    // invalid_authorization_specification: the role does not exist (with trust auth a wrong
    // password cannot be told apart from a right one, so the unknown role stands for both).
    assert_permanent(config, "28000", &user).await;

    let database = unique_name("no_such_db");
    let config = postgres::Config::from_url(&with_database(server.url(), &database)).unwrap();
    assert_permanent(config, "3D000", &database).await;
}

#[tokio::test]
async fn mysql_bad_inputs_are_reported_at_once() {
    let Some(server) = server(Kind::Mysql).await else {
        return;
    };
    let config = mysql::Config::from_url(&with_password(server.url(), "certainly-wrong")).unwrap();
    // ER_ACCESS_DENIED_ERROR, SQLSTATE 28000
    assert_permanent(config, "28000", "Access denied").await;

    let user = unique_name("no_such_user");
    let config = mysql::Config::from_url(&with_user(server.url(), &user)).unwrap();
    assert_permanent(config, "28000", &user).await;

    let database = unique_name("no_such_db");
    let config = mysql::Config::from_url(&with_database(server.url(), &database)).unwrap();
    // ER_BAD_DB_ERROR, SQLSTATE 42000
    assert_permanent(config, "42000", &database).await;
}

#[tokio::test]
async fn an_unknown_host_is_reported_at_once() {
    for url in [
        "postgres://postgres@no-such-host.invalid/test",
        "mysql://root@no-such-host.invalid/test",
    ] {
        let started = Instant::now();
        let err = if url.starts_with("postgres") {
            let pool = postgres::Config::from_url(url)
                .unwrap()
                .build_pool_lazy()
                .unwrap();
            let err = pool.get().await.err().unwrap();
            assert_eq!(
                pool.manager().classify(err.backend().unwrap()),
                ErrorKind::Permanent
            );
            err
        } else {
            let pool = mysql::Config::from_url(url)
                .unwrap()
                .build_pool_lazy()
                .unwrap();
            let err = pool.get().await.err().unwrap();
            assert_eq!(
                pool.manager().classify(err.backend().unwrap()),
                ErrorKind::Permanent
            );
            err
        };
        assert!(started.elapsed() < Duration::from_secs(5), "{url}: {err:?}");
        let backend = err.backend().unwrap();
        assert!(matches!(backend, sqlx::Error::Io(_)), "{url}: {backend:?}");
        assert!(
            backend.to_string().contains("lookup address"),
            "{url}: {backend}"
        );
    }
}

#[tokio::test]
async fn a_refused_port_ends_at_the_deadline_with_the_refusal() {
    for url in [
        "postgres://postgres@127.0.0.1:1/test",
        "mysql://root@127.0.0.1:1/test",
    ] {
        let started = Instant::now();
        let err = if url.starts_with("postgres") {
            let mut config = postgres::Config::from_url(url).unwrap();
            config.pool.acquire_timeout = Some(Duration::from_millis(500));
            config.build_pool_lazy().unwrap().get().await.err().unwrap()
        } else {
            let mut config = mysql::Config::from_url(url).unwrap();
            config.pool.acquire_timeout = Some(Duration::from_millis(500));
            config.build_pool_lazy().unwrap().get().await.err().unwrap()
        };
        assert!(started.elapsed() < Duration::from_secs(3), "{url}");
        assert!(err.is_timeout(), "{url}: {err:?}");
        match err.backend() {
            Some(sqlx::Error::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{url}")
            }
            other => panic!("{url}: expected the refusal, got {other:?}"),
        }
    }
}

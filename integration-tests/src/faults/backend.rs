//! The same small workload on every kind of server, so each scenario is written once and run
//! against PostgreSQL, MySQL and Redis.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use pool_drivers::mysql::mysql_async::prelude::Queryable;
use pool_drivers::mysql::mysql_async::{self, TxOpts};
use pool_drivers::redis::redis;
use pool_drivers::DriverConfig;
use pool_drivers::{Config, Manager, Pool};

use super::{chain, Tenant};
use crate::Kind;

/// A boxed future, as trait methods return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One kind of server: how to make its driver's manager for a [`Tenant`], and the requests
/// the scenarios send. Errors are the driver's own, rendered with their whole source chain.
pub trait Backend: Send + Sync + 'static {
    /// The server kind.
    const KIND: Kind;
    /// The driver's manager.
    type Manager: Manager<Connection = Self::Conn, Error = Self::Error>;
    /// The driver's connection.
    type Conn: Send + 'static;
    /// The driver's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The manager that connects as `tenant` to `addr` (its server, or a proxy before it).
    fn manager(tenant: &Tenant, addr: SocketAddr) -> Self::Manager;

    /// One round trip carrying `n`; returns what the server sent back, which must be `n` (a
    /// different number is a reply meant for another request).
    fn echo(conn: &mut Self::Conn, n: i64) -> BoxFuture<'_, Result<i64, String>>;

    /// Moves `amount` from `a` to `b` in one transaction: a `BEGIN`/`COMMIT` (PostgreSQL,
    /// MySQL) or `MULTI`/`EXEC` (Redis) holding two writes.
    fn transfer<'a>(
        conn: &'a mut Self::Conn,
        tenant: &'a str,
        amount: i64,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// One write outside any transaction: counts `c` up by one.
    fn write<'a>(conn: &'a mut Self::Conn, tenant: &'a str) -> BoxFuture<'a, Result<(), String>>;

    /// Opens a transaction, writes to `a` in it (taking its row lock where the server has
    /// one) and returns with the transaction still open.
    fn begin_and_write<'a>(
        conn: &'a mut Self::Conn,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// The user the server says this session belongs to.
    fn whoami(conn: &mut Self::Conn) -> BoxFuture<'_, Result<String, String>>;
}

/// A lazily built pool of `B`'s driver for `tenant`, connecting to `addr`, with `config`.
///
/// # Panics
///
/// For an invalid `config`.
pub fn pool<B: Backend>(tenant: &Tenant, addr: SocketAddr, config: Config) -> Pool<B::Manager> {
    Pool::builder(B::manager(tenant, addr))
        .config(config)
        .build_lazy()
        .expect("a valid pool configuration")
}

/// PostgreSQL through `pool_drivers::postgres`.
#[derive(Debug)]
pub struct Postgres;

impl Backend for Postgres {
    const KIND: Kind = Kind::Postgres;
    type Manager = pool_drivers::postgres::Manager;
    type Conn = pool_drivers::postgres::PgConnection;
    type Error = pool_drivers::postgres::Error;

    fn manager(tenant: &Tenant, addr: SocketAddr) -> Self::Manager {
        pool_drivers::postgres::Config::from_url(&tenant.url(addr))
            .and_then(|c| c.manager())
            .expect("a valid tenant URL")
    }

    fn echo(conn: &mut Self::Conn, n: i64) -> BoxFuture<'_, Result<i64, String>> {
        Box::pin(async move {
            let row = conn
                .query_one("SELECT $1::INT8", &[&n])
                .await
                .map_err(|e| chain(&e))?;
            Ok(row.get(0))
        })
    }

    fn transfer<'a>(
        conn: &'a mut Self::Conn,
        tenant: &'a str,
        amount: i64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let tx = conn.transaction().await.map_err(|e| chain(&e))?;
            for (id, delta) in [(1i64, -amount), (2, amount)] {
                tx.execute(
                    &format!("UPDATE \"{tenant}\" SET v = v + $1 WHERE id = $2"),
                    &[&delta, &id],
                )
                .await
                .map_err(|e| chain(&e))?;
            }
            tx.commit().await.map_err(|e| chain(&e))
        })
    }

    fn write<'a>(conn: &'a mut Self::Conn, tenant: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            conn.execute(
                &format!("UPDATE \"{tenant}\" SET v = v + 1 WHERE id = 3"),
                &[],
            )
            .await
            .map(drop)
            .map_err(|e| chain(&e))
        })
    }

    fn begin_and_write<'a>(
        conn: &'a mut Self::Conn,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            conn.batch_execute(&format!(
                "BEGIN; UPDATE \"{tenant}\" SET v = v + 1000 WHERE id = 1"
            ))
            .await
            .map_err(|e| chain(&e))
        })
    }

    fn whoami(conn: &mut Self::Conn) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let row = conn
                .query_one("SELECT current_user::TEXT", &[])
                .await
                .map_err(|e| chain(&e))?;
            Ok(row.get(0))
        })
    }
}

/// MySQL or MariaDB through `pool_drivers::mysql`.
#[derive(Debug)]
pub struct Mysql;

impl Backend for Mysql {
    const KIND: Kind = Kind::Mysql;
    type Manager = pool_drivers::mysql::Manager;
    type Conn = mysql_async::Conn;
    type Error = pool_drivers::mysql::Error;

    fn manager(tenant: &Tenant, addr: SocketAddr) -> Self::Manager {
        pool_drivers::mysql::Config::from_url(&tenant.url(addr))
            .and_then(|c| c.manager())
            .expect("a valid tenant URL")
    }

    fn echo(conn: &mut Self::Conn, n: i64) -> BoxFuture<'_, Result<i64, String>> {
        Box::pin(async move {
            let got: Option<i64> = conn
                .exec_first("SELECT ?", (n,))
                .await
                .map_err(|e| chain(&e))?;
            got.ok_or_else(|| "no row".to_owned())
        })
    }

    fn transfer<'a>(
        conn: &'a mut Self::Conn,
        _tenant: &'a str,
        amount: i64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut tx = conn
                .start_transaction(TxOpts::default())
                .await
                .map_err(|e| chain(&e))?;
            for (id, delta) in [(1i64, -amount), (2, amount)] {
                tx.exec_drop("UPDATE t SET v = v + ? WHERE id = ?", (delta, id))
                    .await
                    .map_err(|e| chain(&e))?;
            }
            tx.commit().await.map_err(|e| chain(&e))
        })
    }

    fn write<'a>(conn: &'a mut Self::Conn, _tenant: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            conn.query_drop("UPDATE t SET v = v + 1 WHERE id = 3")
                .await
                .map_err(|e| chain(&e))
        })
    }

    fn begin_and_write<'a>(
        conn: &'a mut Self::Conn,
        _tenant: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            conn.query_drop("START TRANSACTION")
                .await
                .map_err(|e| chain(&e))?;
            conn.query_drop("UPDATE t SET v = v + 1000 WHERE id = 1")
                .await
                .map_err(|e| chain(&e))
        })
    }

    fn whoami(conn: &mut Self::Conn) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let user: Option<String> = conn
                .query_first("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
                .await
                .map_err(|e| chain(&e))?;
            user.ok_or_else(|| "no row".to_owned())
        })
    }
}

/// Redis through `pool_drivers::redis`.
#[derive(Debug)]
pub struct Redis;

impl Backend for Redis {
    const KIND: Kind = Kind::Redis;
    type Manager = pool_drivers::redis::Manager;
    type Conn = pool_drivers::redis::RedisConnection;
    type Error = pool_drivers::redis::Error;

    fn manager(tenant: &Tenant, addr: SocketAddr) -> Self::Manager {
        pool_drivers::redis::Config::from_url(&tenant.url(addr))
            .and_then(|c| c.manager())
            .expect("a valid tenant URL")
    }

    fn echo(conn: &mut Self::Conn, n: i64) -> BoxFuture<'_, Result<i64, String>> {
        Box::pin(async move {
            let got: String = redis::cmd("ECHO")
                .arg(n)
                .query_async(conn)
                .await
                .map_err(|e| chain(&e))?;
            got.parse().map_err(|_| format!("ECHO answered {got:?}"))
        })
    }

    fn transfer<'a>(
        conn: &'a mut Self::Conn,
        tenant: &'a str,
        amount: i64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            redis::pipe()
                .atomic()
                .cmd("DECRBY")
                .arg(format!("{tenant}:a"))
                .arg(amount)
                .ignore()
                .cmd("INCRBY")
                .arg(format!("{tenant}:b"))
                .arg(amount)
                .ignore()
                .exec_async(conn)
                .await
                .map_err(|e| chain(&e))
        })
    }

    fn write<'a>(conn: &'a mut Self::Conn, tenant: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            redis::cmd("INCR")
                .arg(format!("{tenant}:c"))
                .exec_async(conn)
                .await
                .map_err(|e| chain(&e))
        })
    }

    fn begin_and_write<'a>(
        conn: &'a mut Self::Conn,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            redis::cmd("MULTI")
                .exec_async(&mut *conn)
                .await
                .map_err(|e| chain(&e))?;
            // Queued, not run: it runs only if `EXEC` comes.
            redis::cmd("INCRBY")
                .arg(format!("{tenant}:a"))
                .arg(1000)
                .exec_async(conn)
                .await
                .map_err(|e| chain(&e))
        })
    }

    fn whoami(conn: &mut Self::Conn) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            redis::cmd("ACL")
                .arg("WHOAMI")
                .query_async(conn)
                .await
                .map_err(|e| chain(&e))
        })
    }
}

//! Tools for breaking real things under a pool: a server-side identity per test whose
//! sessions can be counted, killed and limited ([`Tenant`]), server restarts and server
//! settings changed for a while ([`server`]), the same workload on every kind of server
//! ([`backend`]), and load with a log of what happened ([`load`]).
//!
//! # How a pool's sessions are found on the server
//!
//! Every test pool logs in as a user of its own, made by [`Tenant::create`] and removed when
//! the tenant is dropped, so the server's own bookkeeping tells its sessions apart from
//! everyone else's, other pools of the same test included:
//!
//! - PostgreSQL: a role, whose sessions also carry the role's name as `application_name`
//!   (`pg_stat_activity`); killed with `pg_terminate_backend` by `application_name`; limited
//!   with `ALTER ROLE ... CONNECTION LIMIT`.
//! - MySQL/MariaDB: a user with a database of its own (`information_schema.PROCESSLIST`,
//!   `USER` and `DB`); killed with `KILL`; limited with `MAX_USER_CONNECTIONS`, which
//!   MariaDB 10.11 stops enforcing once the user's sessions send `COM_RESET_CONNECTION` (the
//!   pool's reset), so the tests limit the whole server instead ([`server::MysqlGlobal`]).
//! - Redis: an ACL user and a database index (`CLIENT LIST`, `user=` and `db=`); killed with
//!   `CLIENT KILL USER`. Redis has no per-user connection limit, so the limit is the
//!   server-wide `maxclients` ([`server::RedisConfig`]).
//!
//! Admin work goes over connections of its own straight to the server (never through a test's
//! fault proxy), as the server's superuser from the URL the tests are given.

pub mod backend;
pub mod load;
mod resp;
pub mod server;

use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pool_drivers::mysql::mysql_async::prelude::Queryable;
use pool_drivers::mysql::mysql_async::Conn;
use pool_drivers::postgres::tokio_postgres::{self, NoTls};

use crate::{Kind, Server};
use resp::Resp;

/// How long one admin request may take before the test fails.
const ADMIN_LIMIT: Duration = Duration::from_secs(10);

/// The parts of a server URL the tools need.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    pub(crate) password: Option<String>,
    pub(crate) database: String,
}

impl Endpoint {
    /// Reads `scheme://[user[:password]@]host[:port][/database][?...]`.
    pub(crate) fn parse(kind: Kind, url: &str) -> Endpoint {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (authority, path) = rest
            .split_once(['/', '?'])
            .map_or((rest, ""), |(a, p)| (a, p));
        let (userinfo, host_port) = authority.rsplit_once('@').unwrap_or(("", authority));
        let password = userinfo
            .split_once(':')
            .map(|(_, p)| p.to_owned())
            .filter(|p| !p.is_empty());
        let default_port = match kind {
            Kind::Postgres | Kind::PostgresReplica => 5432,
            Kind::Mysql => 3306,
            Kind::Redis => 6379,
        };
        let with_port = if host_port.ends_with(']') || !host_port.contains(':') {
            format!("{host_port}:{default_port}")
        } else {
            host_port.to_owned()
        };
        let addr = with_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("{kind}: cannot resolve {with_port}"));
        let database = path.split('?').next().unwrap_or_default().to_owned();
        Endpoint {
            addr,
            password,
            database,
        }
    }
}

/// Runs `work` to its end on a runtime of its own in a thread of its own: for `Drop` code,
/// which cannot await and may run inside (or while unwinding out of) a test's runtime.
pub fn blocking<F>(work: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for clean-up")
            .block_on(work)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Bounds an admin request, naming it when it takes too long.
pub(crate) async fn bounded<T>(
    what: &str,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(ADMIN_LIMIT, work)
        .await
        .unwrap_or_else(|_| Err(format!("{what}: no answer within {ADMIN_LIMIT:?}")))
}

/// A superuser connection to PostgreSQL.
pub(crate) async fn pg_admin(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("admin connection to PostgreSQL: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// A superuser connection to MySQL.
pub(crate) async fn mysql_admin(url: &str) -> Result<Conn, String> {
    Conn::from_url(url)
        .await
        .map_err(|e| format!("admin connection to MySQL: {e}"))
}

/// The one number `sql` gives with `name` as its only parameter, asked of PostgreSQL as a
/// superuser.
async fn pg_count(admin_url: &str, sql: &str, name: &str) -> Result<i64, String> {
    let admin = pg_admin(admin_url).await?;
    let row = admin
        .query_one(sql, &[&name])
        .await
        .map_err(|e| chain(&e))?;
    Ok(row.get::<_, i64>(0))
}

/// The ids of the MySQL sessions of user `name`.
async fn mysql_session_ids(admin: &mut Conn, name: &str) -> Result<Vec<u64>, String> {
    admin
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?",
            (name,),
        )
        .await
        .map_err(|e| chain(&e))
}

/// The server thread (session) ids of the InnoDB transactions that `SHOW ENGINE INNODB STATUS`
/// lists as active. Each transaction there starts with a `---TRANSACTION ...` line, `ACTIVE`
/// unless it is `not started`, and names its session in a later `MySQL thread id N, ...`
/// (MariaDB: `MariaDB thread id N, ...`) line.
fn active_transaction_threads(status: &str) -> Vec<u64> {
    let mut threads = Vec::new();
    let mut in_active = false;
    for line in status.lines() {
        if let Some(header) = line.strip_prefix("---TRANSACTION ") {
            in_active = header.contains(", ACTIVE");
        } else if in_active {
            let id = ["MySQL thread id ", "MariaDB thread id "]
                .iter()
                .find_map(|prefix| line.strip_prefix(prefix))
                .and_then(|rest| rest.split(',').next())
                .and_then(|id| id.trim().parse().ok());
            if let Some(id) = id {
                threads.push(id);
                in_active = false;
            }
        }
    }
    threads
}

/// Every message in an error's source chain, joined: the real cause is in there somewhere.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let part = e.to_string();
        // Some layers repeat their source (`#[error(transparent)]`): say it once.
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

/// A user of its own on one server, for one test's pools: their sessions can be counted,
/// killed and limited without touching anyone else's. Removed from the server (sessions
/// ended, data dropped) when dropped.
pub struct Tenant {
    kind: Kind,
    name: String,
    password: String,
    admin_url: String,
    server: Endpoint,
    /// PostgreSQL: the database of the admin URL. MySQL: the tenant's own database.
    database: String,
    /// Redis: the database index the tenant's pools select.
    redis_db: u8,
    /// Redis: the admin connection, kept open so admin work needs no new client slot.
    redis: Option<Mutex<Resp>>,
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// Creates a user named after `prefix` (made unique) on `server`, with what the workloads
    /// of [`backend`] need: PostgreSQL a role and a table it owns, MySQL a user and its own
    /// database with a table, Redis an ACL user (its keys start with its name).
    ///
    /// # Panics
    ///
    /// When the server refuses; the tests cannot go on without it.
    pub async fn create(kind: Kind, server: &Server, prefix: &str) -> Tenant {
        use std::sync::atomic::{AtomicU8, Ordering};
        static NEXT_DB: AtomicU8 = AtomicU8::new(0);
        assert!(
            kind != Kind::PostgresReplica,
            "tenants live on the primary; the replica follows it"
        );
        let name = crate::unique_name(prefix).to_lowercase();
        let endpoint = Endpoint::parse(kind, server.url());
        let database = match kind {
            Kind::Mysql => name.clone(),
            _ => endpoint.database.clone(),
        };
        let tenant = Tenant {
            kind,
            password: format!("pw_{name}"),
            admin_url: server.url().to_owned(),
            redis: (kind == Kind::Redis).then(|| {
                let mut resp = Resp::new(endpoint.addr, endpoint.password.clone());
                resp.connect()
                    .unwrap_or_else(|e| panic!("admin connection to Redis: {e}"));
                Mutex::new(resp)
            }),
            server: endpoint,
            database,
            redis_db: NEXT_DB.fetch_add(1, Ordering::Relaxed) % 15 + 1,
            name,
        };
        tenant
            .set_up()
            .await
            .unwrap_or_else(|e| panic!("creating the {kind} tenant {}: {e}", tenant.name));
        tenant
    }

    async fn set_up(&self) -> Result<(), String> {
        let (name, pw) = (&self.name, &self.password);
        match self.kind {
            Kind::Postgres => {
                let admin = pg_admin(&self.admin_url).await?;
                admin
                    .batch_execute(&format!(
                        "CREATE ROLE \"{name}\" LOGIN PASSWORD '{pw}';
                         CREATE TABLE \"{name}\" (id INT8 PRIMARY KEY, v INT8 NOT NULL);
                         INSERT INTO \"{name}\" VALUES (1, 0), (2, 0), (3, 0);
                         ALTER TABLE \"{name}\" OWNER TO \"{name}\";"
                    ))
                    .await
                    .map_err(|e| chain(&e))
            }
            Kind::Mysql => {
                let mut admin = mysql_admin(&self.admin_url).await?;
                for statement in [
                    format!("CREATE DATABASE `{name}`"),
                    format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{pw}'"),
                    format!("GRANT ALL ON `{name}`.* TO '{name}'@'%'"),
                    format!(
                        "CREATE TABLE `{name}`.t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL) \
                         ENGINE=InnoDB"
                    ),
                    format!("INSERT INTO `{name}`.t VALUES (1, 0), (2, 0), (3, 0)"),
                ] {
                    admin.query_drop(statement).await.map_err(|e| chain(&e))?;
                }
                admin.disconnect().await.map_err(|e| chain(&e))
            }
            Kind::Redis => {
                let rule = self.redis_acl_rule();
                let mut args = vec!["ACL", "SETUSER"];
                args.extend(rule.iter().map(String::as_str));
                self.redis_call(&args)?.text().map(drop)
            }
            Kind::PostgresReplica => unreachable!("refused in create"),
        }
    }

    /// The server kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The user name, which is also the PostgreSQL `application_name`, the PostgreSQL table,
    /// the MySQL database and the prefix of the Redis keys.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the server itself listens (a fault proxy forwards here).
    pub fn server_addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The Redis database index this tenant's pools select.
    pub fn redis_db(&self) -> u8 {
        self.redis_db
    }

    /// The URL a pool of this tenant connects with, to `addr` (the server, or a proxy in
    /// front of it).
    pub fn url(&self, addr: SocketAddr) -> String {
        let (name, pw) = (&self.name, &self.password);
        match self.kind {
            Kind::Postgres | Kind::PostgresReplica => format!(
                "postgres://{name}:{pw}@{addr}/{}?application_name={name}&sslmode=disable",
                self.database
            ),
            // Without `prefer_socket=false` the driver would leave a loopback TCP address
            // (and so the proxy) for the server's Unix socket.
            Kind::Mysql => format!("mysql://{name}:{pw}@{addr}/{name}?prefer_socket=false"),
            Kind::Redis => format!("redis://{name}:{pw}@{addr}/{}", self.redis_db),
        }
    }

    /// The ACL rule that makes this Redis user (`ACL SETUSER <rule>`, or `--user <rule>` when
    /// the server starts).
    pub fn redis_acl_rule(&self) -> Vec<String> {
        [
            self.name.clone(),
            "on".into(),
            format!(">{}", self.password),
            "~*".into(),
            "&*".into(),
            "+@all".into(),
        ]
        .into()
    }

    fn redis_call(&self, args: &[&str]) -> Result<resp::Reply, String> {
        let resp = self.redis.as_ref().expect("a Redis tenant");
        let reply = resp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .call(args)
            .map_err(|e| format!("Redis admin {args:?}: {e}"))?;
        match reply {
            resp::Reply::Error(e) => Err(format!("Redis admin {:?}: {e}", args[0])),
            reply => Ok(reply),
        }
    }

    /// `CLIENT LIST` entries of this tenant's sessions, as `field=value` maps.
    fn redis_clients(&self) -> Result<Vec<Vec<(String, String)>>, String> {
        let list = self.redis_call(&["CLIENT", "LIST"])?.text()?;
        let user = format!("user={}", self.name);
        Ok(list
            .lines()
            .filter(|line| line.split_whitespace().any(|f| f == user))
            .map(|line| {
                line.split_whitespace()
                    .filter_map(|f| f.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .collect())
    }

    /// How many sessions of this tenant the server has now.
    ///
    /// # Errors
    ///
    /// When the server cannot be asked (it is down, say).
    pub async fn sessions(&self) -> Result<usize, String> {
        let name = self.name.clone();
        let count = match self.kind {
            Kind::Postgres | Kind::PostgresReplica => {
                let sql = "SELECT count(*) FROM pg_stat_activity WHERE usename = $1";
                bounded("counting sessions", pg_count(&self.admin_url, sql, &name)).await?
            }
            Kind::Mysql => {
                bounded("counting sessions", async {
                    let mut admin = mysql_admin(&self.admin_url).await?;
                    let n: Option<i64> = admin
                        .exec_first(
                            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?",
                            (name,),
                        )
                        .await
                        .map_err(|e| chain(&e))?;
                    let _ = admin.disconnect().await;
                    Ok(n.unwrap_or(0))
                })
                .await?
            }
            Kind::Redis => i64::try_from(self.redis_clients()?.len()).unwrap_or(i64::MAX),
        };
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// The server's view of this tenant's sessions that are not what a pool of this tenant
    /// makes: a PostgreSQL session of the role with another `application_name`, a MySQL
    /// session of the user in another database, a Redis session of the user in another
    /// database. A connection made from a half-applied configuration would show here.
    ///
    /// # Errors
    ///
    /// When the server cannot be asked.
    pub async fn foreign_sessions(&self) -> Result<Vec<String>, String> {
        let name = self.name.clone();
        match self.kind {
            Kind::Postgres | Kind::PostgresReplica => {
                bounded("listing sessions", async {
                    let admin = pg_admin(&self.admin_url).await?;
                    let rows = admin
                        .query(
                            "SELECT coalesce(application_name, '') FROM pg_stat_activity \
                             WHERE (usename = $1) <> (application_name = $1)",
                            &[&name],
                        )
                        .await
                        .map_err(|e| chain(&e))?;
                    Ok(rows
                        .iter()
                        .map(|r| format!("application_name={}", r.get::<_, String>(0)))
                        .collect())
                })
                .await
            }
            Kind::Mysql => {
                bounded("listing sessions", async {
                    let mut admin = mysql_admin(&self.admin_url).await?;
                    let rows: Vec<(String, Option<String>)> = admin
                        .exec(
                            "SELECT USER, DB FROM information_schema.PROCESSLIST \
                             WHERE (USER = ?) <> (DB <=> ?) AND COMMAND <> 'Connect'",
                            (name.clone(), name),
                        )
                        .await
                        .map_err(|e| chain(&e))?;
                    let _ = admin.disconnect().await;
                    Ok(rows
                        .into_iter()
                        .map(|(user, db)| format!("user={user} db={db:?}"))
                        .collect())
                })
                .await
            }
            Kind::Redis => {
                let db = self.redis_db.to_string();
                Ok(self
                    .redis_clients()?
                    .into_iter()
                    .filter(|fields| {
                        // A session still inside its set-up (`AUTH`, then `SELECT`) is not
                        // foreign yet.
                        let field = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v);
                        field("db") != Some(&db)
                            && !field("cmd").is_some_and(|c| c == "auth" || c == "select")
                    })
                    .map(|fields| format!("{fields:?}"))
                    .collect())
            }
        }
    }

    /// Ends every session of this tenant from the server side; returns how many there were.
    ///
    /// # Errors
    ///
    /// When the server cannot be asked.
    pub async fn kill_sessions(&self) -> Result<usize, String> {
        let name = self.name.clone();
        let killed = match self.kind {
            Kind::Postgres | Kind::PostgresReplica => {
                let sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                           WHERE application_name = $1";
                bounded(
                    "terminating sessions",
                    pg_count(&self.admin_url, sql, &name),
                )
                .await?
            }
            Kind::Mysql => {
                bounded("killing sessions", async {
                    let mut admin = mysql_admin(&self.admin_url).await?;
                    let ids = mysql_session_ids(&mut admin, &name).await?;
                    let mut killed = 0;
                    for id in ids {
                        // A session that ended meanwhile is not an error.
                        if admin.query_drop(format!("KILL {id}")).await.is_ok() {
                            killed += 1;
                        }
                    }
                    let _ = admin.disconnect().await;
                    Ok(killed)
                })
                .await?
            }
            Kind::Redis => self.redis_call(&["CLIENT", "KILL", "USER", &name])?.int()?,
        };
        Ok(usize::try_from(killed).unwrap_or(0))
    }

    /// How many sessions of this tenant are inside a transaction: PostgreSQL `idle in
    /// transaction` (or aborted), MySQL/MariaDB an open InnoDB transaction, Redis a `MULTI`
    /// not yet ended.
    ///
    /// # Errors
    ///
    /// When the server cannot be asked.
    pub async fn sessions_in_transaction(&self) -> Result<usize, String> {
        let name = self.name.clone();
        let count = match self.kind {
            Kind::Postgres | Kind::PostgresReplica => {
                let sql = "SELECT count(*) FROM pg_stat_activity \
                           WHERE usename = $1 AND state LIKE 'idle in transaction%'";
                bounded(
                    "counting transactions",
                    pg_count(&self.admin_url, sql, &name),
                )
                .await?
            }
            Kind::Mysql => {
                bounded("counting transactions", async {
                    let mut admin = mysql_admin(&self.admin_url).await?;
                    let ids = mysql_session_ids(&mut admin, &name).await?;
                    // Not `information_schema.INNODB_TRX`: InnoDB fills it from a snapshot that
                    // it refreshes only when nobody has read it for 0.1 s, so a poll every
                    // 20 ms (and every other test's poll) keeps showing a transaction that
                    // ended long ago. The monitor output is built afresh on each call.
                    let status: Option<(String, String, String)> = admin
                        .query_first("SHOW ENGINE INNODB STATUS")
                        .await
                        .map_err(|e| chain(&e))?;
                    let _ = admin.disconnect().await;
                    let (_, _, text) = status.ok_or("SHOW ENGINE INNODB STATUS gave no row")?;
                    let active = active_transaction_threads(&text);
                    let open = ids.iter().filter(|id| active.contains(id)).count();
                    Ok(i64::try_from(open).unwrap_or(i64::MAX))
                })
                .await?
            }
            Kind::Redis => {
                let in_multi = self
                    .redis_clients()?
                    .iter()
                    .filter(|fields| fields.iter().any(|(k, v)| k == "flags" && v.contains('x')))
                    .count();
                i64::try_from(in_multi).unwrap_or(i64::MAX)
            }
        };
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Lets this tenant hold at most `limit` sessions at once (`None`: no limit of its own).
    /// PostgreSQL and MySQL only: Redis has no per-user limit (see
    /// [`server::RedisConfig`]). Sessions already open stay. MariaDB 10.11 stops counting
    /// sessions that sent `COM_RESET_CONNECTION`, so there the limit holds only until a
    /// pooled connection is reused.
    ///
    /// # Errors
    ///
    /// When the server cannot be asked.
    ///
    /// # Panics
    ///
    /// For Redis.
    pub async fn set_connection_limit(&self, limit: Option<usize>) -> Result<(), String> {
        let name = &self.name;
        match self.kind {
            Kind::Postgres | Kind::PostgresReplica => {
                let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
                bounded("setting the connection limit", async {
                    pg_admin(&self.admin_url)
                        .await?
                        .batch_execute(&format!("ALTER ROLE \"{name}\" CONNECTION LIMIT {limit}"))
                        .await
                        .map_err(|e| chain(&e))
                })
                .await
            }
            Kind::Mysql => {
                let limit = limit.unwrap_or(0);
                bounded("setting the connection limit", async {
                    let mut admin = mysql_admin(&self.admin_url).await?;
                    admin
                        .query_drop(format!(
                            "ALTER USER '{name}'@'%' WITH MAX_USER_CONNECTIONS {limit}"
                        ))
                        .await
                        .map_err(|e| chain(&e))?;
                    let _ = admin.disconnect().await;
                    Ok(())
                })
                .await
            }
            Kind::Redis => panic!("Redis has no per-user connection limit; use maxclients"),
        }
    }

    /// The values the workloads change, read on the server: `a` and `b`, between which
    /// `transfer` moves amounts (their sum stays zero unless a transaction was applied in
    /// part), and `c`, which `write` counts up.
    ///
    /// # Errors
    ///
    /// When the server cannot be asked.
    pub async fn totals(&self) -> Result<[i64; 3], String> {
        let name = self.name.clone();
        match self.kind {
            Kind::Postgres | Kind::PostgresReplica => {
                bounded("reading totals", async {
                    let admin = pg_admin(&self.admin_url).await?;
                    let rows = admin
                        .query(&format!("SELECT v FROM \"{name}\" ORDER BY id"), &[])
                        .await
                        .map_err(|e| chain(&e))?;
                    Ok([rows[0].get(0), rows[1].get(0), rows[2].get(0)])
                })
                .await
            }
            Kind::Mysql => {
                bounded("reading totals", async {
                    let mut admin = mysql_admin(&self.admin_url).await?;
                    let values: Vec<i64> = admin
                        .query(format!("SELECT v FROM `{name}`.t ORDER BY id"))
                        .await
                        .map_err(|e| chain(&e))?;
                    let _ = admin.disconnect().await;
                    Ok([values[0], values[1], values[2]])
                })
                .await
            }
            Kind::Redis => {
                let db = self.redis_db.to_string();
                self.redis_call(&["SELECT", &db])?;
                let values: Vec<Result<resp::Reply, String>> = ["a", "b", "c"]
                    .iter()
                    .map(|key| self.redis_call(&["GET", &format!("{name}:{key}")]))
                    .collect();
                self.redis_call(&["SELECT", "0"])?;
                let mut totals = [0; 3];
                for (total, value) in totals.iter_mut().zip(values) {
                    *total = match value? {
                        resp::Reply::Bulk(None) => 0,
                        reply => reply.int()?,
                    };
                }
                Ok(totals)
            }
        }
    }

    /// Removes the tenant: ends its sessions, drops its data and the user.
    async fn tear_down(kind: Kind, name: String, admin_url: String) -> Result<(), String> {
        match kind {
            Kind::Postgres | Kind::PostgresReplica => {
                let admin = pg_admin(&admin_url).await?;
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                        &[&name],
                    )
                    .await
                    .map_err(|e| chain(&e))?;
                admin
                    .batch_execute(&format!("DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\";"))
                    .await
                    .map_err(|e| chain(&e))
            }
            Kind::Mysql => {
                let mut admin = mysql_admin(&admin_url).await?;
                for id in mysql_session_ids(&mut admin, &name).await? {
                    let _ = admin.query_drop(format!("KILL {id}")).await;
                }
                admin
                    .query_drop(format!("DROP USER IF EXISTS '{name}'@'%'"))
                    .await
                    .map_err(|e| chain(&e))?;
                admin
                    .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                    .await
                    .map_err(|e| chain(&e))?;
                let _ = admin.disconnect().await;
                Ok(())
            }
            Kind::Redis => unreachable!("Redis tenants are removed without a runtime"),
        }
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        let result = if self.kind == Kind::Redis {
            // Deleting the user also disconnects its sessions.
            let db = self.redis_db.to_string();
            let keys = ["a", "b", "c"].map(|key| format!("{}:{key}", self.name));
            self.redis_call(&["SELECT", &db])
                .and_then(|_| self.redis_call(&["DEL", &keys[0], &keys[1], &keys[2]]))
                .and_then(|_| self.redis_call(&["SELECT", "0"]))
                .and_then(|_| self.redis_call(&["ACL", "DELUSER", &self.name]))
                .map(drop)
        } else {
            let (kind, name, url) = (self.kind, self.name.clone(), self.admin_url.clone());
            blocking(async move {
                bounded("removing a tenant", Tenant::tear_down(kind, name, url)).await
            })
        };
        if let Err(e) = result {
            // Not a panic: this may run while a failed test unwinds, and a leftover user of
            // a unique name harms no one.
            eprintln!(
                "could not remove the {} tenant {}: {e}",
                self.kind, self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::active_transaction_threads;

    #[test]
    fn reads_active_transactions_from_the_monitor() {
        let status = "\
------------
TRANSACTIONS
------------
Trx id counter 50600
---TRANSACTION (0x7fc0e00b7b80), not started
0 lock struct(s), heap size 1128, 0 row lock(s)
---TRANSACTION 50542, ACTIVE 3 sec
2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 1
MariaDB thread id 2378, OS thread handle 1316, query id 49640 127.0.0.1 app
---TRANSACTION 50543, ACTIVE 1 sec
MySQL thread id 17, OS thread handle 99, query id 5 localhost root
--------
FILE I/O
--------
";
        assert_eq!(active_transaction_threads(status), vec![2378, 17]);
    }
}

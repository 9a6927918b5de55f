//! Faults of a whole server: stopping and starting it ([`Outage`]) and changing its settings
//! for a while ([`RedisConfig`], [`MysqlGlobal`], [`PgRoleSetting`]). Each is an RAII guard:
//! however the test ends, a panic included, the server is started again (and answers) or the
//! setting is put back before the guard is gone.
//!
//! These touch the whole server, so a test binary that uses them must run such tests one at
//! a time ([`serial`]) and must not share a binary with tests that expect the server to stay
//! up. Cargo runs test binaries one after another, so other binaries never see the outage.

use std::process::Command;
use std::time::{Duration, Instant};

use pool_drivers::mysql::mysql_async::prelude::Queryable;

use super::resp::{Reply, Resp};
use super::{blocking, bounded, chain, mysql_admin, pg_admin, Endpoint, Tenant};
use crate::Kind;

/// How long a server may take to stop or to answer again before the test fails.
const SERVER_LIMIT: Duration = Duration::from_secs(60);

/// Takes the lock that tests which stop a server or change a server-wide setting hold while
/// they run, so they never overlap within one test binary.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Why this machine cannot stop and start the server of `kind`, if it cannot: the commands of
/// DESIGN.md "Services" must be there, and the tests' URL must name this machine's server.
pub fn cannot_restart(kind: Kind) -> Option<String> {
    let needed: &[&str] = match kind {
        Kind::Postgres => &["pg_ctlcluster", "pg_isready"],
        Kind::Mysql => &["mariadb-admin", "start-stop-daemon"],
        Kind::Redis => &["redis-server", "redis-cli"],
        Kind::PostgresReplica => return Some("the replica is not restarted here".into()),
    };
    for command in needed {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {command}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "`{command}` is not installed, so {kind} cannot be restarted"
            ));
        }
    }
    if std::env::var_os(kind.variable()).is_none() {
        return Some(format!(
            "{} is not set: no local {kind} to restart",
            kind.variable()
        ));
    }
    if kind == Kind::Postgres && pg_version().is_none() {
        return Some("no cluster under /etc/postgresql".into());
    }
    None
}

/// The PostgreSQL version whose `main` cluster serves the tests (as `.ci/services` starts it).
fn pg_version() -> Option<String> {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    versions.sort();
    versions.into_iter().next()
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Polls `up` (blocking) until it says `want` or `SERVER_LIMIT` passes.
fn wait_for(what: &str, want: bool, mut up: impl FnMut() -> bool) -> Result<(), String> {
    let started = Instant::now();
    while up() != want {
        if started.elapsed() > SERVER_LIMIT {
            return Err(format!(
                "{what}: still not {} after {SERVER_LIMIT:?}",
                if want { "up" } else { "down" }
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether the server of `kind` answers a query now (blocking).
fn answers(kind: Kind) -> bool {
    let url = std::env::var(kind.variable()).unwrap_or_default();
    match kind {
        Kind::Postgres | Kind::PostgresReplica => blocking(async move {
            let Ok(admin) = pg_admin(&url).await else {
                return false;
            };
            admin.simple_query("SELECT 1").await.is_ok()
        }),
        Kind::Mysql => blocking(async move {
            let Ok(mut admin) = mysql_admin(&url).await else {
                return false;
            };
            let ok = admin.query_drop("SELECT 1").await.is_ok();
            let _ = admin.disconnect().await;
            ok
        }),
        Kind::Redis => {
            let endpoint = Endpoint::parse(kind, &url);
            Resp::new(endpoint.addr, endpoint.password)
                .call(&["PING"])
                .is_ok_and(|r| r == Reply::Status("PONG".into()))
        }
    }
}

/// Whether the replica is in recovery and streaming from the primary again (blocking).
fn replica_streaming(url: String) -> bool {
    blocking(async move {
        let Ok(admin) = pg_admin(&url).await else {
            return false;
        };
        admin
            .query_one(
                "SELECT pg_is_in_recovery() AND EXISTS \
                 (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')",
                &[],
            )
            .await
            .is_ok_and(|row| row.get::<_, bool>(0))
    })
}

/// A server stopped by a test. It is started again, and answers, when [`Outage::end`] is
/// called or the guard is dropped, whichever comes first.
pub struct Outage {
    kind: Kind,
    down: bool,
    /// Redis keeps ACL users in memory only: these are defined again at start.
    redis_users: Vec<Vec<String>>,
}

impl Outage {
    /// Stops the server of `kind` and waits until it no longer answers. A Redis server starts
    /// again with the ACL users of `keep` (they would be lost otherwise); PostgreSQL and MySQL
    /// keep their users on disk.
    ///
    /// # Panics
    ///
    /// When the server cannot be stopped (see [`cannot_restart`]).
    pub async fn begin(kind: Kind, keep: &[&Tenant]) -> Outage {
        // Made first: whatever state a failed stop leaves, the guard starts the server again.
        let outage = Outage {
            kind,
            down: true,
            redis_users: keep.iter().map(|t| t.redis_acl_rule()).collect(),
        };
        tokio::task::spawn_blocking(move || stop(kind))
            .await
            .expect("the stop did not panic")
            .unwrap_or_else(|e| panic!("stopping {kind}: {e}"));
        outage
    }

    /// Starts the server again and waits until it answers.
    ///
    /// # Panics
    ///
    /// When it does not come back.
    pub async fn end(&mut self) {
        if !self.down {
            return;
        }
        self.down = false;
        let (kind, users) = (self.kind, self.redis_users.clone());
        tokio::task::spawn_blocking(move || start(kind, &users))
            .await
            .expect("the start did not panic")
            .unwrap_or_else(|e| panic!("starting {kind} again: {e}"));
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if !self.down {
            return;
        }
        self.down = false;
        if let Err(e) = start(self.kind, &self.redis_users) {
            eprintln!("\n!!!!! {} DID NOT COME BACK: {e} !!!!!\n", self.kind);
            if !std::thread::panicking() {
                panic!("starting {} again: {e}", self.kind);
            }
        }
    }
}

fn stop(kind: Kind) -> Result<(), String> {
    let url = std::env::var(kind.variable()).unwrap_or_default();
    let endpoint = Endpoint::parse(kind, &url);
    let port = endpoint.addr.port().to_string();
    let host = endpoint.addr.ip().to_string();
    match kind {
        Kind::Postgres => {
            let version = pg_version().ok_or("no PostgreSQL cluster")?;
            run(
                "pg_ctlcluster",
                &[
                    "--skip-systemctl-redirect",
                    &version,
                    "main",
                    "stop",
                    "-m",
                    "fast",
                ],
            )?;
        }
        Kind::Mysql => {
            run(
                "mariadb-admin",
                &[
                    "--protocol=tcp",
                    "-h",
                    &host,
                    "-P",
                    &port,
                    "-u",
                    "root",
                    "shutdown",
                ],
            )?;
            // The port closes before the process is gone, and a start while it is still
            // there does nothing ("already running").
            wait_for("mariadbd", false, || {
                Command::new("start-stop-daemon")
                    .args(["--status", "--exec", "/usr/sbin/mariadbd"])
                    .status()
                    .is_ok_and(|s| s.success())
            })?;
        }
        Kind::Redis => {
            // The reply never comes: the server is gone.
            let _ = run(
                "redis-cli",
                &["-h", &host, "-p", &port, "shutdown", "nosave"],
            );
        }
        Kind::PostgresReplica => return Err("the replica is not stopped here".into()),
    }
    wait_for(&kind.to_string(), false, || answers(kind))
}

fn start(kind: Kind, redis_users: &[Vec<String>]) -> Result<(), String> {
    let url = std::env::var(kind.variable()).unwrap_or_default();
    let port = Endpoint::parse(kind, &url).addr.port().to_string();
    match kind {
        Kind::Postgres => {
            let version = pg_version().ok_or("no PostgreSQL cluster")?;
            run(
                "pg_ctlcluster",
                &["--skip-systemctl-redirect", &version, "main", "start"],
            )?;
        }
        Kind::Mysql => run(
            "start-stop-daemon",
            &[
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/mariadbd",
            ],
        )?,
        Kind::Redis => {
            let mut args: Vec<String> = [
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "-::1",
                "--port",
                &port,
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .map(String::from)
            .into();
            for rule in redis_users {
                args.push("--user".into());
                args.extend(rule.iter().cloned());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run("redis-server", &args)?;
        }
        Kind::PostgresReplica => return Err("the replica is not started here".into()),
    }
    wait_for(&kind.to_string(), true, || answers(kind))?;
    if kind == Kind::Postgres {
        // Stopping the primary cut the replica's stream; later tests read from the replica,
        // so wait until it follows the primary again.
        if let Ok(replica) = std::env::var(Kind::PostgresReplica.variable()) {
            wait_for("the PostgreSQL replica", true, || {
                replica_streaming(replica.clone())
            })?;
        }
    }
    Ok(())
}

/// A Redis setting changed with `CONFIG SET` for as long as the guard lives. The admin
/// connection is opened before the change, so putting it back works even when the change
/// (`maxclients`) refuses every new client.
pub struct RedisConfig {
    resp: Resp,
    key: String,
    old: String,
}

impl RedisConfig {
    /// Sets `key` to `value` on the server of `tenant` (a Redis tenant).
    ///
    /// # Panics
    ///
    /// When the server refuses.
    pub fn set(tenant: &Tenant, key: &str, value: &str) -> RedisConfig {
        // The tenant's own server: not always the one `REDIS_URL` names (a container).
        let endpoint = Endpoint::parse(Kind::Redis, &tenant.admin_url);
        let mut resp = Resp::new(endpoint.addr, endpoint.password);
        let old = match resp.call(&["CONFIG", "GET", key]) {
            Ok(Reply::Array(Some(pair))) if pair.len() == 2 => {
                pair[1].text().expect("a config value")
            }
            other => panic!("CONFIG GET {key}: {other:?}"),
        };
        let mut guard = RedisConfig {
            resp,
            key: key.to_owned(),
            old,
        };
        guard.apply(value).unwrap_or_else(|e| panic!("{e}"));
        guard
    }

    /// Sets the value again (the guard still puts back the original).
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub fn apply(&mut self, value: &str) -> Result<(), String> {
        match self.resp.call(&["CONFIG", "SET", &self.key, value]) {
            Ok(Reply::Status(_)) => Ok(()),
            other => Err(format!("CONFIG SET {} {value}: {other:?}", self.key)),
        }
    }

    /// Clients connected to the server now, this guard's own included.
    ///
    /// # Panics
    ///
    /// When the server cannot be asked.
    pub fn connected_clients(&mut self) -> usize {
        let info = self
            .resp
            .call(&["INFO", "clients"])
            .and_then(|r| r.text().map_err(std::io::Error::other))
            .expect("INFO clients");
        info.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("connected_clients in INFO")
    }
}

impl Drop for RedisConfig {
    fn drop(&mut self) {
        let old = self.old.clone();
        if let Err(e) = self.apply(&old) {
            eprintln!(
                "\n!!!!! could not put Redis {} back to {old}: {e} !!!!!\n",
                self.key
            );
            if !std::thread::panicking() {
                panic!("putting Redis {} back: {e}", self.key);
            }
        }
    }
}

/// A MySQL global variable changed for as long as the guard lives (new sessions take it up).
///
/// The admin session that changes it stays open, on a thread and runtime of its own, until the
/// guard puts the old value back through it: a changed `max_connections` may leave no room
/// for a new session, and a `Drop` cannot await.
pub struct MysqlGlobal {
    name: String,
    restore: Option<std::sync::mpsc::Sender<()>>,
    keeper: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl MysqlGlobal {
    /// Sets the global variable `name` to `value` on the server of `tenant` (a MySQL tenant).
    ///
    /// # Panics
    ///
    /// When the server refuses.
    pub async fn set(tenant: &Tenant, name: &str, value: &str) -> MysqlGlobal {
        // The tenant's own server: not always the one `MYSQL_URL` names (a container).
        let url = tenant.admin_url.clone();
        let (changed_tx, changed_rx) = tokio::sync::oneshot::channel();
        let (restore, restore_rx) = std::sync::mpsc::channel::<()>();
        let (var, value) = (name.to_owned(), value.to_owned());
        let keeper = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the admin session")
                .block_on(keep_global(url, var, value, changed_tx, restore_rx))
        });
        let mut guard = MysqlGlobal {
            name: name.to_owned(),
            restore: Some(restore),
            keeper: Some(keeper),
        };
        if let Ok(Err(e)) | Err(e) = changed_rx.await.map_err(|_| "the keeper ended".to_owned()) {
            guard.restore = None;
            let keeper = guard.keeper.take().expect("the keeper");
            let _ = keeper.join();
            panic!("setting MySQL {name}: {e}");
        }
        guard
    }
}

/// Changes `name` to `value` over an admin session kept open until `restore` says (or its
/// sender is gone), then puts the old value back over the same session.
async fn keep_global(
    url: String,
    name: String,
    value: String,
    changed: tokio::sync::oneshot::Sender<Result<(), String>>,
    restore: std::sync::mpsc::Receiver<()>,
) -> Result<(), String> {
    let change = async {
        let mut admin = mysql_admin(&url).await?;
        // This session must outlive whatever the change is (`wait_timeout`, say).
        admin
            .query_drop("SET SESSION wait_timeout = 28800")
            .await
            .map_err(|e| chain(&e))?;
        let old: Option<String> = admin
            .query_first(format!("SELECT CAST(@@GLOBAL.{name} AS CHAR)"))
            .await
            .map_err(|e| chain(&e))?;
        let old = old.ok_or_else(|| format!("no global {name}"))?;
        admin
            .query_drop(format!("SET GLOBAL {name} = {value}"))
            .await
            .map_err(|e| chain(&e))?;
        Ok((admin, old))
    };
    let (mut admin, old) = match bounded("changing a global", change).await {
        Ok(kept) => {
            let _ = changed.send(Ok(()));
            kept
        }
        Err(e) => {
            let _ = changed.send(Err(e.clone()));
            return Err(e);
        }
    };
    let _ = tokio::task::spawn_blocking(move || restore.recv()).await;
    let statement = format!("SET GLOBAL {name} = {old}");
    if admin.query_drop(statement.as_str()).await.is_ok() {
        let _ = admin.disconnect().await;
        return Ok(());
    }
    // The session was lost (the server restarted, say): a new one, while there is time.
    let started = Instant::now();
    loop {
        let attempt = async {
            let mut admin = mysql_admin(&url).await?;
            admin
                .query_drop(statement.as_str())
                .await
                .map_err(|e| chain(&e))?;
            let _ = admin.disconnect().await;
            Ok::<_, String>(())
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() > SERVER_LIMIT => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

impl Drop for MysqlGlobal {
    fn drop(&mut self) {
        drop(self.restore.take());
        let Some(keeper) = self.keeper.take() else {
            return;
        };
        let result = keeper
            .join()
            .unwrap_or_else(|_| Err("the keeper panicked".into()));
        if let Err(e) = result {
            eprintln!(
                "\n!!!!! could not put MySQL {} back: {e} !!!!!\n",
                self.name
            );
            if !std::thread::panicking() {
                panic!("putting MySQL {} back: {e}", self.name);
            }
        }
    }
}

/// A setting of one PostgreSQL role (`ALTER ROLE ... SET`), which its new sessions take up.
/// Touches only the tenant's role, so it is safe beside other tests; put back when dropped.
pub struct PgRoleSetting {
    url: String,
    role: String,
    name: String,
}

impl PgRoleSetting {
    /// Sets `name` to `value` for the tenant's new sessions.
    ///
    /// # Panics
    ///
    /// When the server refuses.
    pub async fn set(tenant: &Tenant, name: &str, value: &str) -> PgRoleSetting {
        // The tenant's own server, which is not the one named by `POSTGRES_URL` when the test
        // runs against a container.
        let url = tenant.admin_url.clone();
        let role = tenant.name().to_owned();
        bounded("setting a role setting", async {
            pg_admin(&url)
                .await?
                .batch_execute(&format!("ALTER ROLE \"{role}\" SET {name} = '{value}'"))
                .await
                .map_err(|e| chain(&e))
        })
        .await
        .unwrap_or_else(|e| panic!("ALTER ROLE {role} SET {name}: {e}"));
        PgRoleSetting {
            url,
            role,
            name: name.to_owned(),
        }
    }
}

impl Drop for PgRoleSetting {
    fn drop(&mut self) {
        let (url, statement) = (
            self.url.clone(),
            format!("ALTER ROLE \"{}\" RESET {}", self.role, self.name),
        );
        let result = blocking(async move {
            bounded("resetting a role setting", async {
                pg_admin(&url)
                    .await?
                    .batch_execute(&statement)
                    .await
                    .map_err(|e| chain(&e))
            })
            .await
        });
        if let Err(e) = result {
            // The role is the test's own and goes away with its tenant.
            eprintln!("could not reset {} of {}: {e}", self.name, self.role);
        }
    }
}

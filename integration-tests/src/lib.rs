//! Tests of the pool suite against real servers.
//!
//! Every test finds its server through [`server`]: the URL in an environment variable
//! (`POSTGRES_URL`, `MYSQL_URL`, `REDIS_URL`, `POSTGRES_REPLICA_URL`); else a throw-away
//! container started by testcontainers when a Docker engine answers; else the test is skipped
//! ([`skip`]): a line on the terminal as it happens, and a summary of every skip when its test
//! binary ends. With `CI` set, a missing server fails the test instead.

mod docker;
pub mod failover;
pub mod faults;
pub mod invariants;
pub mod peak;
pub mod proxy;
pub mod redis_client;
mod skips;

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use testcontainers::core::wait::LogWaitStrategy;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};

pub use skips::skip;

/// A server the tests know how to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL, the primary.
    Postgres,
    /// A PostgreSQL streaming replica of [`Kind::Postgres`]. Found by URL when
    /// `POSTGRES_REPLICA_URL` is set. Otherwise, when the primary is a container too, a container
    /// that streams from the primary container the same test started last (on its thread), or
    /// from one of its own when there is none.
    PostgresReplica,
    /// MySQL or MariaDB.
    Mysql,
    /// Redis.
    Redis,
}

impl Kind {
    /// The environment variable that names this server.
    pub fn variable(self) -> &'static str {
        match self {
            Kind::Postgres => "POSTGRES_URL",
            Kind::PostgresReplica => "POSTGRES_REPLICA_URL",
            Kind::Mysql => "MYSQL_URL",
            Kind::Redis => "REDIS_URL",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Postgres => "PostgreSQL",
            Kind::PostgresReplica => "a PostgreSQL replica",
            Kind::Mysql => "MySQL",
            Kind::Redis => "Redis",
        })
    }
}

/// A server a test may use. Keep it alive for the whole test: a container it started is removed
/// when it is dropped.
pub struct Server {
    url: String,
    /// Its own container first, then the primary a replica streams from.
    _containers: Vec<Arc<Container>>,
}

impl Server {
    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

type Container = ContainerAsync<GenericImage>;

/// Finds a server of `kind`, or says loudly why the calling test is skipped.
///
/// Returns `None` when no server can be found and `CI` is not set; the caller returns early.
///
/// # Panics
///
/// When `CI` is set and no server can be found, or a container fails to start.
pub async fn server(kind: Kind) -> Option<Server> {
    if let Ok(url) = std::env::var(kind.variable()) {
        check_loopback(kind, &url);
        return Some(Server {
            url,
            _containers: Vec::new(),
        });
    }
    let why = if kind == Kind::PostgresReplica && std::env::var_os("POSTGRES_URL").is_some() {
        "POSTGRES_URL is set, and a replica container can only stream from a primary container"
            .to_owned()
    } else {
        match docker::usable().await {
            Ok(()) => return Some(container(kind).await),
            Err(why) => why,
        }
    };
    skip_or_fail(&format!(
        "no {kind}: set {} (see the README), or let testcontainers start one: {why}",
        kind.variable()
    ));
    None
}

/// The URL in `variable`, of a server no container stands in for (`what` says what it is,
/// for the message): else, as [`server`], the calling test is skipped loudly, or fails when
/// `CI` is set.
///
/// Returns `None` when the variable is unset and `CI` is not set; the caller returns early.
///
/// # Panics
///
/// When `CI` is set and the variable is not, or when it names no loopback address.
pub fn url_from_env(variable: &str, what: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) => {
            check_loopback_variable(variable, &url);
            Some(url)
        }
        Err(_) => {
            skip_or_fail(&format!("no {what}: set {variable} (see the README)"));
            None
        }
    }
}

/// Skips the calling test because `why` (something it needs is missing), or fails it when
/// `CI` is set.
///
/// # Panics
///
/// When `CI` is set.
pub fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI is set, so this is a failure");
    }
    skip(why);
}

/// The port a primary container also publishes for a replica started later (which shares its
/// network namespace, so the two talk over the container's loopback).
const REPLICA_PORT: u16 = 5433;

thread_local! {
    /// The primary container the test on this thread started last, for a replica to stream from.
    static PRIMARY: RefCell<Weak<Container>> = const { RefCell::new(Weak::new()) };
}

/// Starts a container of `kind` with the official image and waits until it serves.
///
/// The images are the official ones (`postgres:15`, `mariadb:10.11`, `redis:7`); CI builds
/// local stand-ins with the same names (`.ci/images/build`). Readiness is the line each server
/// logs once it accepts connections on its port; the PostgreSQL and MariaDB entrypoints first run
/// a server for initialisation, whose line goes to standard output (PostgreSQL) or names port 0
/// (MariaDB), so it is not taken for the real one.
///
/// # Panics
///
/// When the container does not start or does not become ready within two minutes.
async fn container(kind: Kind) -> Server {
    let (container, url) = match kind {
        Kind::Postgres => {
            let primary = start(
                kind,
                GenericImage::new("postgres", "15")
                    .with_exposed_port(REPLICA_PORT.tcp())
                    .with_wait_for(on_stderr("database system is ready to accept connections"))
                    .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
                    .with_env_var("POSTGRES_DB", "test")
                    // A throw-away server: nothing is worth an fsync.
                    .with_env_var("POSTGRES_INITDB_ARGS", "--no-sync")
                    .with_cmd(["postgres", "-c", "fsync=off"]),
            )
            .await;
            PRIMARY.with(|p| *p.borrow_mut() = Arc::downgrade(&primary));
            let url = local_url("postgres://postgres@{}/test", kind, &primary, 5432).await;
            (primary, url)
        }
        Kind::PostgresReplica => return replica().await,
        Kind::Mysql => {
            let container = start(
                kind,
                GenericImage::new("mariadb", "10.11")
                    .with_wait_for(on_stderr("port: 3306"))
                    .with_env_var("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1")
                    .with_env_var("MARIADB_DATABASE", "test"),
            )
            .await;
            // Without `prefer_socket=false`, mysql_async would leave the loopback address for
            // the Unix socket the server names, which on a machine with a MariaDB of its own is
            // that server's, not the container's.
            let url = local_url(
                "mysql://root@{}/test?prefer_socket=false",
                kind,
                &container,
                3306,
            )
            .await;
            (container, url)
        }
        Kind::Redis => {
            let container = start(
                kind,
                GenericImage::new("redis", "7")
                    .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
                    .with_cmd(["redis-server", "--save", "", "--appendonly", "no"]),
            )
            .await;
            let url = local_url("redis://{}/", kind, &container, 6379).await;
            (container, url)
        }
    };
    Server {
        url,
        _containers: vec![container],
    }
}

/// A replica container streaming from the primary container this test started (or from a new
/// one): cloned with `pg_basebackup -R` inside the primary's network namespace, where it
/// listens on [`REPLICA_PORT`], which the primary publishes.
async fn replica() -> Server {
    let primary = match PRIMARY.with(|p| p.borrow().upgrade()) {
        Some(primary) => primary,
        None => Box::pin(container(Kind::Postgres))
            .await
            ._containers
            .remove(0),
    };
    let namespace = format!("container:{}", primary.id());
    let replica = start(
        Kind::PostgresReplica,
        GenericImage::new("postgres", "15")
            .with_wait_for(on_stderr(
                "database system is ready to accept read-only connections",
            ))
            .with_wait_for(on_stderr("started streaming WAL from primary"))
            .with_user("postgres")
            .with_env_var("PGDATA", "/var/lib/postgresql/data/replica")
            .with_cmd([
                "bash".to_owned(),
                "-c".to_owned(),
                format!(
                    "pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D \"$PGDATA\" -R -X stream \
                     && exec postgres -p {REPLICA_PORT} -c fsync=off"
                ),
            ])
            .with_host_config_modifier(move |host| {
                host.network_mode = Some(namespace.clone());
                host.publish_all_ports = Some(false);
                host.port_bindings = None;
            }),
    )
    .await;
    let url = local_url(
        "postgres://postgres@{}/test",
        Kind::PostgresReplica,
        &primary,
        REPLICA_PORT,
    )
    .await;
    Server {
        url,
        _containers: vec![replica, primary],
    }
}

fn on_stderr(message: &str) -> WaitFor {
    WaitFor::log(LogWaitStrategy::stderr(message))
}

async fn start(kind: Kind, image: impl Into<ContainerRequest<GenericImage>>) -> Arc<Container> {
    let request: ContainerRequest<GenericImage> = image.into();
    let container = request
        .with_startup_timeout(Duration::from_secs(120))
        .start()
        .await
        .unwrap_or_else(|e| panic!("could not start a container for {kind}: {e}"));
    Arc::new(container)
}

/// `template` with `{}` replaced by the loopback address where `container` publishes `port`.
async fn local_url(template: &str, kind: Kind, container: &Container, port: u16) -> String {
    let host_port = container
        .get_host_port_ipv4(port)
        .await
        .unwrap_or_else(|e| panic!("the container for {kind} publishes no port {port}: {e}"));
    template.replace("{}", &format!("127.0.0.1:{host_port}"))
}

/// Tests only ever talk to this machine.
fn check_loopback(kind: Kind, url: &str) {
    check_loopback_variable(kind.variable(), url);
}

/// Refuses a URL in `variable` that names no loopback address.
fn check_loopback_variable(variable: &str, url: &str) {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(
            || host_port.split(':').next().unwrap_or_default(),
            |(h, _)| h,
        );
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    assert!(
        loopback,
        "{variable} must name a loopback address, found host {host:?}"
    );
}

/// A name no other test or test run uses, for tables, keys and `application_name`s.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_pass() {
        check_loopback(Kind::Postgres, "postgres://postgres@127.0.0.1:5432/test");
        check_loopback(Kind::Redis, "redis://localhost/");
        check_loopback(Kind::Mysql, "mysql://root:pw@[::1]:3306/test");
    }

    #[test]
    #[should_panic(expected = "loopback")]
    fn remote_urls_are_refused() {
        check_loopback(Kind::Postgres, "postgres://postgres@db.example.com/test");
    }
}

//! Tests of the pool suite against real servers.
//!
//! Every test finds its server through [`server`]: the URL in an environment variable
//! (`POSTGRES_URL`, `MYSQL_URL`, `REDIS_URL`, `POSTGRES_REPLICA_URL`); else a throw-away
//! container when a Docker engine answers; else the test is skipped with a loud line saying
//! what is missing. With `CI` set, a missing server fails the test instead.

mod docker;
pub mod faults;
pub mod invariants;
pub mod proxy;

use std::fmt;

use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// A server the tests know how to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL, the primary.
    Postgres,
    /// A PostgreSQL streaming replica of [`Kind::Postgres`]. Only found by URL: a container
    /// would not replicate from the primary the other tests use.
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

    fn image(self) -> Option<(GenericImage, u16, &'static str, WaitFor)> {
        let ready = |message, times| {
            WaitFor::log(
                testcontainers::core::wait::LogWaitStrategy::stderr(message).with_times(times),
            )
        };
        match self {
            // The entrypoint starts a temporary server for initialisation first, so the second
            // "ready" line is the real one.
            Kind::Postgres => Some((
                GenericImage::new("postgres", "15"),
                5432,
                "postgres://postgres@{host}:{port}/test",
                ready("database system is ready to accept connections", 2),
            )),
            Kind::Mysql => Some((
                GenericImage::new("mariadb", "10.11"),
                3306,
                "mysql://root@{host}:{port}/test",
                ready("port: 3306", 1),
            )),
            Kind::Redis => Some((
                GenericImage::new("redis", "7"),
                6379,
                "redis://{host}:{port}/",
                WaitFor::message_on_stdout("Ready to accept connections"),
            )),
            Kind::PostgresReplica => None,
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
    _container: Option<ContainerAsync<GenericImage>>,
}

impl Server {
    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

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
            _container: None,
        });
    }
    if let Some((image, port, url, ready)) = kind.image() {
        if docker::answers().await {
            let container = image
                .with_wait_for(ready)
                .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
                .with_env_var("POSTGRES_DB", "test")
                .with_env_var("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1")
                .with_env_var("MARIADB_DATABASE", "test")
                .start()
                .await
                .unwrap_or_else(|e| panic!("could not start a {kind} container: {e}"));
            let host_port = container
                .get_host_port_ipv4(port)
                .await
                .unwrap_or_else(|e| panic!("the {kind} container exposes no port: {e}"));
            let url = url
                .replace("{host}", "127.0.0.1")
                .replace("{port}", &host_port.to_string());
            return Some(Server {
                url,
                _container: Some(container),
            });
        }
    }
    let missing = format!(
        "no {kind}: set {} (see the README) or start a Docker engine",
        kind.variable()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{missing}; CI is set, so this is a failure");
    }
    eprintln!("\n!!!!! SKIPPED: {missing} !!!!!\n");
    None
}

/// Tests only ever talk to this machine.
fn check_loopback(kind: Kind, url: &str) {
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
        "{} must name a loopback address, found host {host:?}",
        kind.variable()
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

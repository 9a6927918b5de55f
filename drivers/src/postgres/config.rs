//! [`Config`]: where to connect, how to check and clean connections, and the pool settings.

use std::fmt;
#[cfg(feature = "tls")]
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::Host;

use super::{CredentialSource, Manager};
use crate::settings::{
    check_url, parse_flag, pool_from_env, quoted, unless_secret, url_from_env, var, UrlGrammar,
};
use crate::{DriverConfig, InvalidConfig};

/// The `application_name` sessions get when the URL names none, so pooled sessions can be
/// told apart in `pg_stat_activity`.
pub const DEFAULT_APPLICATION_NAME: &str = "pool-drivers";

/// How many prepared statements each connection caches by default.
pub const DEFAULT_STATEMENT_CACHE_CAPACITY: usize = 256;

/// How old, by default, a request whose future was dropped may get before the pool stops
/// waiting for its reply and closes the connection: 1 s. Long enough for the short queries a
/// timed-out web request leaves behind, short enough that a connection stuck on a long one is
/// soon replaced.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether and how to encrypt, as libpq's `sslmode` (the URL parameter of the same name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it, without checking its certificate (as libpq). Without
    /// the `tls` feature, connections stay plain. The default.
    #[default]
    Prefer,
    /// Insist on TLS; check the certificate only when `sslrootcert` is given (as libpq).
    /// Needs the `tls` feature.
    Require,
    /// Insist on TLS and on a certificate chain that leads to a trusted root (`sslrootcert`,
    /// else the system's trust store). Needs the `tls` feature.
    VerifyCa,
    /// As [`VerifyCa`](Self::VerifyCa), and the certificate must name the host connected to.
    /// Needs the `tls` feature.
    VerifyFull,
}

impl SslMode {
    fn needs_tls(self) -> bool {
        !matches!(self, SslMode::Disable | SslMode::Prefer)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

impl FromStr for SslMode {
    type Err = InvalidConfig;

    fn from_str(s: &str) -> Result<Self, InvalidConfig> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(InvalidConfig::new(
                "sslmode",
                format!(
                    "expected disable, prefer, require, verify-ca or verify-full, found {other:?}"
                ),
            )),
        }
    }
}

/// What the pool does to validate a connection on checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Check {
    /// Send an empty query and wait for the answer: one round trip, catches a backend that
    /// was terminated or a server that went away. The default.
    #[default]
    RoundTrip,
    /// Only look whether the client already knows its socket is closed: free, but a dead
    /// peer is found by the caller's first query instead.
    IsClosed,
}

/// Session state that reset clears, on top of the `ROLLBACK` of an open or aborted
/// transaction, which always happens. Everything is off by default.
///
/// The statements run in the same simple-query batch as the `ROLLBACK`, so turning them on
/// costs no extra round trip, but it does make reset send something after every use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct Cleanup {
    /// `RESET ALL`: settings changed with `SET`.
    pub reset_all: bool,
    /// `UNLISTEN *`: channels the session listens on.
    pub unlisten: bool,
    /// `SELECT pg_advisory_unlock_all()`: session-level advisory locks.
    pub unlock_advisory_locks: bool,
    /// `DISCARD TEMP`: temporary tables.
    pub discard_temp: bool,
    /// Everything `DISCARD ALL` does (all of the above, plus `DEALLOCATE ALL`, `CLOSE ALL`,
    /// `SET SESSION AUTHORIZATION DEFAULT`, `DISCARD PLANS`, `DISCARD SEQUENCES`). Prepared
    /// statements are gone afterwards, so the connection's statement cache is emptied too.
    pub discard_all: bool,
}

impl Cleanup {
    /// Everything: the effect of `DISCARD ALL`.
    pub fn everything() -> Self {
        Cleanup {
            discard_all: true,
            ..Cleanup::default()
        }
    }

    /// The statements to run, in order.
    pub(crate) fn statements(&self) -> Vec<&'static str> {
        if self.discard_all {
            // DISCARD ALL itself refuses to run inside a multi-statement batch, so its parts
            // are spelled out.
            return vec![
                "CLOSE ALL",
                "SET SESSION AUTHORIZATION DEFAULT",
                "RESET ALL",
                "DEALLOCATE ALL",
                "UNLISTEN *",
                "SELECT pg_advisory_unlock_all()",
                "DISCARD PLANS",
                "DISCARD SEQUENCES",
                "DISCARD TEMP",
            ];
        }
        [
            (self.reset_all, "RESET ALL"),
            (self.unlisten, "UNLISTEN *"),
            (
                self.unlock_advisory_locks,
                "SELECT pg_advisory_unlock_all()",
            ),
            (self.discard_temp, "DISCARD TEMP"),
        ]
        .into_iter()
        .filter_map(|(on, sql)| on.then_some(sql))
        .collect()
    }
}

/// Settings of a PostgreSQL pool.
///
/// Built from a URL ([`from_url`](Self::from_url)), the environment
/// ([`from_env`](Self::from_env)) or, with the `serde` feature, deserialized from
/// `{ url, check, cleanup, statement_cache_capacity, drain_timeout, pgbouncer, pool }` (only `url` is
/// required; `drain_timeout` as `{ secs, nanos }`, like the pool's durations). `Debug`
/// never shows the password.
///
/// # Examples
///
/// ```
/// use pool_drivers::DriverConfig;
/// use pool_drivers::postgres::{Check, Config};
///
/// let mut config = Config::from_url("postgres://app:secret@127.0.0.1/orders?application_name=orders-api")?;
/// config.check = Check::IsClosed;
/// config.cleanup.reset_all = true;
/// config.pool.max_size = 4;
/// assert!(!format!("{config:?}").contains("secret"));
/// # Ok::<(), pool_drivers::InvalidConfig>(())
/// ```
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "ConfigFile"))]
#[non_exhaustive]
pub struct Config {
    /// Where and as whom to connect. Its TLS settings are ignored: [`ssl_mode`](Self::ssl_mode)
    /// rules.
    pub postgres: tokio_postgres::Config,
    /// Whether and how to encrypt. Default [`SslMode::Prefer`], or the URL's `sslmode`.
    pub ssl_mode: SslMode,
    /// PEM file of the certificates to trust (the URL's `sslrootcert`). Default `None`: the
    /// system's trust store.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub ssl_root_cert: Option<PathBuf>,
    /// How checkout validates a connection. Default [`Check::RoundTrip`].
    pub check: Check,
    /// What reset clears besides the transaction. Default: nothing.
    pub cleanup: Cleanup,
    /// Most prepared statements each connection caches; the least recently used one goes
    /// first. `0` turns the cache off. Default 256.
    pub statement_cache_capacity: usize,
    /// How long after it was sent the reply of a request the last borrower abandoned (its
    /// future was dropped mid-flight: a timeout, a `select!`, a client that hung up) is waited
    /// for, so the connection can be reused instead of reopened. A connection returned with
    /// such a request already older than this is closed at once; otherwise reset waits for
    /// the reply until the request is this old (before the connection is handed out again,
    /// or in the pool's background upkeep if that comes first), and closes the connection if
    /// it has not come. A closed connection's request is cancelled. Never more than
    /// [`pool.reset_timeout`](pool_core::Config::reset_timeout); zero closes every connection
    /// returned with a request in flight. Default [`DEFAULT_DRAIN_TIMEOUT`] (1 s).
    pub drain_timeout: Duration,
    /// PgBouncer mode, for a pooler in transaction mode (PgBouncer's `pool_mode =
    /// transaction`, or any pooler that hands each transaction to another server
    /// connection): the server only ever sees the unnamed statement. Every statement
    /// `tokio_postgres` prepares (for `query`, `prepare`, [`prepare_cached`], its own type
    /// lookups) is kept client side and parsed again in the same request as each use, so no
    /// request depends on the server connection an earlier one reached: never "prepared
    /// statement ... does not exist" or "already exists". The server parses each execution
    /// anew. Reset only rolls back (a [`Cleanup`] is refused: behind the pooler it would clean
    /// whichever server connection it reached). Needs a TCP host by name (the driver must see
    /// the stream). The URL's `pgbouncer=true`, or `{PREFIX}_PGBOUNCER` for
    /// [`from_env`](DriverConfig::from_env). Default `false`.
    ///
    /// [`prepare_cached`]: super::PgConnection::prepare_cached
    pub pgbouncer: bool,
    /// Where each connect gets its password (or token), and optionally its role and expiry:
    /// asked before every connect, in place of the URL's password. Default `None`: the URL's.
    /// Set it with [`with_credentials`](Self::with_credentials). Not read from a URL, the
    /// environment or serde.
    pub credentials: Option<Arc<dyn CredentialSource>>,
    /// With [`credentials`](Self::credentials) that say when they expire: how long before
    /// that a connection opened with them is retired (closed when it is returned, or instead
    /// of being handed out from idle), so no session outlives the credential it logged in
    /// with. Make it longer than a borrow lasts: a connection in use is retired only once it
    /// comes back.
    /// PostgreSQL itself keeps a session whose password changed or expired, so this is for
    /// policies that want none left. Default `None`: connections live their normal life.
    pub retire_before_expiry: Option<Duration>,
    /// The pool's own settings.
    pub pool: pool_core::Config,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pg = &self.postgres;
        let hosts: Vec<String> = pg
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let mut d = f.debug_struct("Config");
        d.field("hosts", &hosts)
            .field("hostaddrs", &pg.get_hostaddrs())
            .field("ports", &pg.get_ports())
            .field("user", &pg.get_user())
            .field("password", &pg.get_password().map(|_| "***"))
            .field("dbname", &pg.get_dbname())
            .field("application_name", &pg.get_application_name())
            .field("ssl_mode", &self.ssl_mode);
        #[cfg(feature = "tls")]
        d.field("ssl_root_cert", &self.ssl_root_cert);
        d.field("check", &self.check)
            .field("cleanup", &self.cleanup)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .field("drain_timeout", &self.drain_timeout)
            .field("pgbouncer", &self.pgbouncer)
            .field("credentials", &self.credentials.as_ref().map(|_| "source"))
            .field("retire_before_expiry", &self.retire_before_expiry)
            .field("pool", &self.pool)
            .finish()
    }
}

impl Config {
    /// These settings, with each connect's credentials from `source` (see
    /// [`credentials`](Self::credentials)).
    pub fn with_credentials(mut self, source: impl CredentialSource) -> Self {
        self.credentials = Some(Arc::new(source));
        self
    }

    /// These settings, with connections retired `margin` before their credentials expire
    /// (see [`retire_before_expiry`](Self::retire_before_expiry)).
    pub fn with_retire_before_expiry(mut self, margin: Duration) -> Self {
        self.retire_before_expiry = Some(margin);
        self
    }

    fn validate_credentials(&self) -> Result<(), InvalidConfig> {
        if self.retire_before_expiry.is_some() && self.credentials.is_none() {
            return Err(InvalidConfig::new(
                "retire_before_expiry",
                "needs a credential source that says when credentials expire \
                 (Config::with_credentials)",
            ));
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), InvalidConfig> {
        #[cfg(not(feature = "tls"))]
        if self.ssl_mode.needs_tls() {
            return Err(tls_needed("sslmode"));
        }
        #[cfg(unix)]
        let unix = self
            .postgres
            .get_hosts()
            .iter()
            .any(|h| matches!(h, Host::Unix(_)));
        #[cfg(not(unix))]
        let unix = false;
        if unix && self.postgres.get_hosts().len() > 1 && self.ssl_mode.needs_tls() {
            return Err(InvalidConfig::new(
                "sslmode",
                format!(
                    "sslmode={} cannot apply to a host list that mixes Unix sockets and TCP",
                    self.ssl_mode
                ),
            ));
        }
        if self.postgres.get_hosts().is_empty() && self.ssl_mode.needs_tls() {
            return Err(InvalidConfig::new(
                "sslmode",
                format!(
                    "sslmode={} needs a host name to check the certificate against; \
                     give `host` along with `hostaddr`",
                    self.ssl_mode
                ),
            ));
        }
        Ok(())
    }

    /// What PgBouncer mode cannot work with: a host whose stream the driver cannot see, and a
    /// clean-up of session state.
    fn validate_pgbouncer(&self) -> Result<(), InvalidConfig> {
        if !self.pgbouncer {
            return Ok(());
        }
        let hosts = self.postgres.get_hosts();
        #[cfg(unix)]
        let tcp = !hosts.is_empty() && hosts.iter().all(|h| matches!(h, Host::Tcp(_)));
        #[cfg(not(unix))]
        let tcp = !hosts.is_empty();
        if !tcp {
            return Err(InvalidConfig::new(
                "pgbouncer",
                "needs TCP hosts given by name (`host`), not Unix sockets or `hostaddr` alone: \
                 the driver rewrites statements on the stream it sees",
            ));
        }
        if self.cleanup != Cleanup::default() {
            return Err(InvalidConfig::new(
                "cleanup",
                "cannot be used with pgbouncer: behind a pooler in transaction mode the \
                 clean-up would run on whichever server connection it reached, not where the \
                 session state was made",
            ));
        }
        Ok(())
    }
}

impl DriverConfig for Config {
    type Manager = Manager;

    /// Reads a URL such as `postgres://user:password@host:5432/db?application_name=app`.
    ///
    /// Every libpq parameter `tokio_postgres` knows is accepted; `sslmode` also takes
    /// `verify-ca` and `verify-full`, and `sslrootcert` names a PEM file (with the `tls`
    /// feature). Sessions are named [`DEFAULT_APPLICATION_NAME`] unless the URL gives an
    /// `application_name`.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming what is wrong: another scheme, no host, no user, a parameter
    /// that is unknown or malformed, a TLS mode the build cannot honour. The URL itself is
    /// never part of the message.
    fn from_url(url: &str) -> Result<Self, InvalidConfig> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(InvalidConfig::new(
                "url",
                "must start with postgres:// or postgresql://",
            ));
        }
        // Refuse what tokio_postgres would cut elsewhere than the position-based redaction
        // does (an `@` in the password, a user name holding `/` or `?`), so that no piece of a
        // password can come out as a host, a user or a database name in `Debug` or an error.
        check_url(url, "url", UrlGrammar::TokioPostgres)?;
        // The query starts at the first `?` after the user information, whose password may
        // hold a `?` of its own.
        let host_start = url.find('@').map_or("postgres://".len(), |at| at + 1);
        let (base, query) = match url[host_start..].find('?') {
            Some(i) => (&url[..host_start + i], &url[host_start + i + 1..]),
            None => (url, ""),
        };
        let mut ssl_mode = SslMode::default();
        let mut pgbouncer = false;
        #[cfg(feature = "tls")]
        let mut ssl_root_cert = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    let value = percent_decode("sslmode", value)?;
                    ssl_mode = value.parse().map_err(|_| {
                        let found = quoted(url, &value)
                            .map_or_else(String::new, |v| format!(", found {v}"));
                        InvalidConfig::new(
                            "sslmode",
                            format!(
                                "expected disable, prefer, require, verify-ca or verify-full{found}"
                            ),
                        )
                    })?;
                }
                "pgbouncer" => {
                    let value = percent_decode("pgbouncer", value)?;
                    pgbouncer = parse_flag(&value).ok_or_else(|| {
                        let found = quoted(url, &value)
                            .map_or_else(String::new, |v| format!(", found {v}"));
                        InvalidConfig::new("pgbouncer", format!("expected true or false{found}"))
                    })?;
                }
                "sslrootcert" => {
                    let path = percent_decode("sslrootcert", value)?;
                    #[cfg(feature = "tls")]
                    {
                        ssl_root_cert = Some(PathBuf::from(path));
                    }
                    #[cfg(not(feature = "tls"))]
                    {
                        let _ = path;
                        return Err(tls_needed("sslrootcert"));
                    }
                }
                _ => kept.push(pair),
            }
        }
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut postgres: tokio_postgres::Config = rebuilt.parse().map_err(|e| {
            // tokio_postgres names the offending option in the cause, which is shown unless
            // it holds a piece of the password (an option's name cut out of a mistyped URL).
            let cause =
                std::error::Error::source(&e).map_or_else(String::new, |c| format!(": {c}"));
            let problem = unless_secret(
                url,
                format!("is not a valid PostgreSQL URL{cause}"),
                "is not a valid PostgreSQL URL",
            );
            InvalidConfig::new("url", problem)
        })?;
        if postgres.get_hosts().is_empty() && postgres.get_hostaddrs().is_empty() {
            return Err(InvalidConfig::new(
                "url",
                "names no host (postgres://user@HOST/database)",
            ));
        }
        if postgres.get_user().is_none() {
            return Err(InvalidConfig::new(
                "url",
                "names no user (postgres://USER@host/database)",
            ));
        }
        if postgres.get_application_name().is_none() {
            postgres.application_name(DEFAULT_APPLICATION_NAME);
        }
        let config = Config {
            postgres,
            ssl_mode,
            #[cfg(feature = "tls")]
            ssl_root_cert,
            check: Check::default(),
            cleanup: Cleanup::default(),
            statement_cache_capacity: DEFAULT_STATEMENT_CACHE_CAPACITY,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            pgbouncer,
            credentials: None,
            retire_before_expiry: None,
            pool: pool_core::Config::default(),
        };
        config.validate_tls()?;
        config.validate_pgbouncer()?;
        Ok(config)
    }

    /// As every driver's (`{prefix}_URL` and the pool settings), and `{prefix}_PGBOUNCER`
    /// (`true` or `false`), which overrides the URL's `pgbouncer`.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming the variable that is missing or malformed.
    fn from_env(prefix: &str) -> Result<Self, InvalidConfig> {
        let variable = format!("{prefix}_URL");
        let mut config =
            Self::from_url(&url_from_env(prefix)?).map_err(|e| e.read_from(&variable))?;
        pool_from_env(prefix, &mut config.pool)?;
        let variable = format!("{prefix}_PGBOUNCER");
        if let Some(value) = var(&variable)? {
            config.pgbouncer = parse_flag(&value).ok_or_else(|| {
                InvalidConfig::new(
                    &variable,
                    format!("expected true or false, found {value:?}"),
                )
            })?;
            config.validate_pgbouncer()?;
        }
        Ok(config)
    }

    fn pool_config(&self) -> &pool_core::Config {
        &self.pool
    }

    fn pool_config_mut(&mut self) -> &mut pool_core::Config {
        &mut self.pool
    }

    /// The [`Manager`] for these settings.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] when the TLS settings cannot work (a mode this build cannot honour,
    /// an unreadable `sslrootcert`).
    fn manager(&self) -> Result<Manager, InvalidConfig> {
        self.validate_tls()?;
        self.validate_pgbouncer()?;
        self.validate_credentials()?;
        Manager::new(self)
    }

    fn default_pool_name(&self) -> String {
        let pg = &self.postgres;
        let host = match pg.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            #[cfg(unix)]
            Some(Host::Unix(path)) => path.display().to_string(),
            None => pg
                .get_hostaddrs()
                .first()
                .map_or_else(|| "localhost".to_owned(), ToString::to_string),
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let database = pg.get_dbname().or(pg.get_user()).unwrap_or("postgres");
        format!("{host}:{port}/{database}")
    }
}

#[cfg(not(feature = "tls"))]
fn tls_needed(setting: &str) -> InvalidConfig {
    InvalidConfig::new(
        setting,
        "needs TLS, which this build lacks (enable the `tls` feature of pool-drivers)",
    )
}

fn percent_decode(setting: &str, value: &str) -> Result<String, InvalidConfig> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| InvalidConfig::new(setting, "has a malformed %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| InvalidConfig::new(setting, "is not valid UTF-8"))
}

/// The serialized form of [`Config`].
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    url: String,
    #[serde(default)]
    check: Check,
    #[serde(default)]
    cleanup: Cleanup,
    #[serde(default = "default_capacity")]
    statement_cache_capacity: usize,
    #[serde(default = "default_drain_timeout")]
    drain_timeout: Duration,
    #[serde(default)]
    pgbouncer: Option<bool>,
    #[serde(default)]
    pool: pool_core::Config,
}

#[cfg(feature = "serde")]
fn default_capacity() -> usize {
    DEFAULT_STATEMENT_CACHE_CAPACITY
}

#[cfg(feature = "serde")]
fn default_drain_timeout() -> Duration {
    DEFAULT_DRAIN_TIMEOUT
}

#[cfg(feature = "serde")]
impl TryFrom<ConfigFile> for Config {
    type Error = InvalidConfig;

    fn try_from(file: ConfigFile) -> Result<Self, InvalidConfig> {
        let mut config = Config::from_url(&file.url)?;
        config.check = file.check;
        config.cleanup = file.cleanup;
        config.statement_cache_capacity = file.statement_cache_capacity;
        config.drain_timeout = file.drain_timeout;
        if let Some(pgbouncer) = file.pgbouncer {
            config.pgbouncer = pgbouncer;
        }
        config.pool = file.pool;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_url() {
        let config =
            Config::from_url("postgresql://app:pw@db.local:6543/orders?connect_timeout=3").unwrap();
        assert_eq!(config.postgres.get_user(), Some("app"));
        assert_eq!(config.postgres.get_dbname(), Some("orders"));
        assert_eq!(config.postgres.get_ports(), [6543]);
        assert_eq!(
            config.postgres.get_application_name(),
            Some(DEFAULT_APPLICATION_NAME)
        );
        assert_eq!(config.ssl_mode, SslMode::Prefer);

        let named = Config::from_url("postgres://app@h/db?application_name=orders&sslmode=disable")
            .unwrap();
        assert_eq!(named.postgres.get_application_name(), Some("orders"));
        assert_eq!(named.ssl_mode, SslMode::Disable);
    }

    #[test]
    fn debug_hides_the_password() {
        let config = Config::from_url("postgres://app:hunter2@h/db").unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn malformed_urls_are_named() {
        let problem = |url: &str| Config::from_url(url).unwrap_err().to_string();
        assert!(problem("mysql://root@h/db").contains("postgres://"));
        assert!(problem("postgres://app@h:notaport/db").contains("port"));
        assert!(problem("postgres://app@h/db?frobnicate=1").contains("frobnicate"));
        assert!(problem("postgres:///db").contains("no host"));
        assert!(problem("postgres://h/db").contains("no user"));
        assert!(problem("postgres://u@h/db?sslmode=sometimes").contains("sometimes"));
        assert!(!problem("postgres://u:hunter2@h:x/db").contains("hunter2"));
    }

    #[test]
    fn passwords_holding_delimiters() {
        // tokio_postgres reads up to the first `@`, so `/`, `?` and `#` may stay unencoded...
        let config = Config::from_url("postgres://app:a/b?c#d@h/db?sslmode=disable").unwrap();
        assert_eq!(config.postgres.get_password(), Some(&b"a/b?c#d"[..]));
        assert_eq!(config.postgres.get_hosts().len(), 1);
        assert_eq!(config.ssl_mode, SslMode::Disable);
        // ...but a second `@` would make the rest of the password the host: refused.
        let err = Config::from_url("postgres://app:hunter@2@h/db").unwrap_err();
        assert!(err.problem().contains("more than one `@`"), "{err}");
        assert!(!format!("{err:?}").contains("2@h"), "{err:?}");
        // So is a password parameter where tokio_postgres would read it as the database.
        let err = Config::from_url("postgres://app@h/db&password=hunter2").unwrap_err();
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_modes_need_the_feature() {
        let err = Config::from_url("postgres://u@h/db?sslmode=require").unwrap_err();
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }

    #[test]
    fn cleanup_statements() {
        assert!(Cleanup::default().statements().is_empty());
        let some = Cleanup {
            reset_all: true,
            discard_temp: true,
            ..Cleanup::default()
        };
        assert_eq!(some.statements(), ["RESET ALL", "DISCARD TEMP"]);
        assert!(Cleanup::everything()
            .statements()
            .contains(&"DEALLOCATE ALL"));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserializes() {
        use serde::de::value::{Error as DeError, MapDeserializer};
        use serde::Deserialize;

        let map = [
            ("url", "postgres://app:pw@h/db?sslmode=disable"),
            ("check", "is_closed"),
        ];
        let config =
            Config::deserialize(MapDeserializer::<_, DeError>::new(map.into_iter())).unwrap();
        assert_eq!(config.check, Check::IsClosed);
        assert_eq!(config.ssl_mode, SslMode::Disable);
        assert_eq!(
            config.statement_cache_capacity,
            DEFAULT_STATEMENT_CACHE_CAPACITY
        );
        assert_eq!(config.drain_timeout, DEFAULT_DRAIN_TIMEOUT);

        let bad = [("url", "postgres://h/db")];
        let err =
            Config::deserialize(MapDeserializer::<_, DeError>::new(bad.into_iter())).unwrap_err();
        assert!(err.to_string().contains("no user"), "{err}");
    }
}

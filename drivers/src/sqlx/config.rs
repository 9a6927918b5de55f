//! [`Config`]: a sqlx URL and the pool settings.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use super::{Manager, Pool, SqlxConnection};
use crate::settings::{
    check_url, pool_from_env, quoted, redact_url, unless_secret, url_from_env, UrlGrammar,
};
use crate::InvalidConfig;

/// Settings of a pool of sqlx connections of type `C`: the URL sqlx parses, and the pool
/// settings.
///
/// Usually named through a database's alias, e.g. `pool_drivers::sqlx::postgres::Config`.
/// `Debug` hides the URL's password (and any parameter named like a password).
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(bound = ""))]
pub struct Config<C: SqlxConnection> {
    /// The URL sqlx connects with, in sqlx's own format: `postgres://user:password@host/db`,
    /// `mysql://user@host/db`, `sqlite://path/to/file.db`, `sqlite::memory:`. Its query
    /// parameters are sqlx's (`sslmode`, `mode`, ...).
    pub url: String,
    /// Pool settings.
    #[cfg_attr(feature = "serde", serde(default))]
    pub pool: pool_core::Config,
    #[cfg_attr(feature = "serde", serde(skip))]
    connection: PhantomData<fn() -> C>,
}

impl<C: SqlxConnection> Clone for Config<C> {
    fn clone(&self) -> Self {
        Config {
            url: self.url.clone(),
            pool: self.pool.clone(),
            connection: PhantomData,
        }
    }
}

impl<C: SqlxConnection> fmt::Debug for Config<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &C::NAME)
            .field("url", &redact_url(&self.url))
            .field("pool", &self.pool)
            .finish()
    }
}

impl<C: SqlxConnection> Config<C> {
    /// Settings for `url` with the default pool settings. The URL is checked by
    /// [`Config::manager`]; use [`Config::from_url`] to check it at once.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            pool: pool_core::Config::default(),
            connection: PhantomData,
        }
    }

    /// Settings for `url`, which must parse as a URL of this database.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] for `url` naming the problem: another database's scheme, or what
    /// sqlx could not parse.
    pub fn from_url(url: &str) -> Result<Self, InvalidConfig> {
        let config = Config::new(url);
        config.options()?;
        Ok(config)
    }

    /// Reads `{prefix}_URL` and the pool settings `{prefix}_MAX_SIZE`, `{prefix}_MIN_IDLE`,
    /// `{prefix}_INITIAL_SIZE`, `{prefix}_ACQUIRE_TIMEOUT`, `{prefix}_CONNECT_TIMEOUT`,
    /// `{prefix}_MAX_LIFETIME`, `{prefix}_IDLE_TIMEOUT`.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming the variable that is missing or malformed.
    pub fn from_env(prefix: &str) -> Result<Self, InvalidConfig> {
        let name = format!("{prefix}_URL");
        let mut config = Config::from_url(&url_from_env(prefix)?)
            .map_err(|e| InvalidConfig::new(&name, e.problem()))?;
        pool_from_env(prefix, &mut config.pool)?;
        Ok(config)
    }

    fn options(&self) -> Result<C::Options, InvalidConfig> {
        let url = self.url.as_str();
        let scheme_ok = C::SCHEMES.iter().any(|s| {
            url.get(..s.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(s))
        });
        if !scheme_ok {
            // Only a scheme is quoted: before a mistyped `://` may stand a user and password.
            let found = crate::settings::scheme(url)
                .and_then(|scheme| quoted(url, scheme))
                .unwrap_or_else(|| "no scheme".to_owned());
            return Err(InvalidConfig::new(
                "url",
                format!(
                    "expected a {} URL starting with {}, found {found}",
                    C::NAME,
                    C::SCHEMES.join(" or ")
                ),
            ));
        }
        // SQLite's URL is a file name, which may hold an `@`; the others are read by the `url`
        // crate, which must cut them where `redact_url` does.
        let network = C::SCHEMES.iter().all(|s| s.ends_with("://"));
        if network {
            check_url(url, "url", UrlGrammar::Whatwg)?;
        }
        // Of the parameters named like a password, sqlx reads only PostgreSQL's `password`;
        // it ignores the others, and sqlx-postgres logs each parameter it does not know with
        // its value. Refuse them before they get there.
        let reads_password = C::SCHEMES.contains(&"postgres://");
        let stray = crate::settings::secret_parameters(url)
            .any(|name| !(reads_password && name == "password"));
        if stray {
            let instead = if reads_password {
                "spell it `password`, or put the password in the user information"
            } else {
                "put the password in the user information"
            };
            return Err(InvalidConfig::new(
                "url",
                format!(
                    "has a parameter named like a password that sqlx does not read for {}; {instead}",
                    C::NAME
                ),
            ));
        }
        // sqlx's parse errors usually name the part that failed (a port, an option), but may
        // quote a value; such a message is replaced.
        <C::Options as FromStr>::from_str(url).map_err(|e| {
            let fallback = format!("is not a valid {} URL", C::NAME);
            InvalidConfig::new(
                "url",
                unless_secret(url, format!("{fallback}: {}", inner_message(&e)), &fallback),
            )
        })
    }

    /// The manager for these settings.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] when the URL cannot be parsed.
    pub fn manager(&self) -> Result<Manager<C>, InvalidConfig> {
        Ok(Manager::new(self.options()?))
    }
    /// The pool settings, named `host:port/database` after the URL unless
    /// [`pool.name`](pool_core::Config::name) is set.
    fn named_pool(&self) -> pool_core::Config {
        crate::settings::named(&self.pool, || crate::settings::name_from_url(&self.url))
    }

    /// A pool that opens connections when they are first needed (and keeps `min_idle` open in
    /// the background). Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] when the URL or a pool setting cannot work.
    pub fn create_pool(&self) -> Result<Pool<C>, InvalidConfig> {
        crate::settings::lazy_pool(self.manager()?, &self.named_pool())
    }

    /// A pool with `pool.initial_size` connections already open, so a wrong password or a
    /// missing database is reported here rather than on the first
    /// [`get`](pool_core::Pool::get).
    ///
    /// # Errors
    ///
    /// [`pool_core::BuildError::Config`] when a pool setting cannot work;
    /// [`pool_core::BuildError::Connect`] when an initial connection cannot be opened, or with
    /// [`sqlx::Error::Configuration`](::sqlx::Error::Configuration) when the URL cannot be
    /// parsed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connections opened so far; nothing else is left behind.
    pub async fn build_pool(&self) -> Result<Pool<C>, pool_core::BuildError<::sqlx::Error>> {
        crate::settings::open_pool(self.manager(), &self.named_pool(), |e| {
            ::sqlx::Error::Configuration(Box::new(e))
        })
        .await
    }
}

/// sqlx wraps parse errors as "error with configuration: ..."; the inner part is the news.
fn inner_message(error: &::sqlx::Error) -> String {
    match error {
        ::sqlx::Error::Configuration(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

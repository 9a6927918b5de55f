//! [`Config`]: a sqlx URL and the pool settings.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use super::{Manager, SqlxConnection};
use crate::settings::{check_url, quoted, redact_url, unless_secret, UrlGrammar};
use crate::{DriverConfig, InvalidConfig};

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
}

impl<C: SqlxConnection> DriverConfig for Config<C> {
    type Manager = Manager<C>;

    /// Settings for `url`, which must parse as a URL of this database.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] for `url` naming the problem: another database's scheme, or what
    /// sqlx could not parse.
    fn from_url(url: &str) -> Result<Self, InvalidConfig> {
        let config = Config::new(url);
        config.options()?;
        Ok(config)
    }

    fn pool_config(&self) -> &pool_core::Config {
        &self.pool
    }

    fn pool_config_mut(&mut self) -> &mut pool_core::Config {
        &mut self.pool
    }

    /// The manager for these settings.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] when the URL cannot be parsed.
    fn manager(&self) -> Result<Manager<C>, InvalidConfig> {
        Ok(Manager::new(self.options()?))
    }

    fn default_pool_name(&self) -> String {
        crate::settings::name_from_url(&self.url)
    }
}

/// sqlx wraps parse errors as "error with configuration: ..."; the inner part is the news.
fn inner_message(error: &::sqlx::Error) -> String {
    match error {
        ::sqlx::Error::Configuration(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

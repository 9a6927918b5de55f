//! [`Config`]: where the MySQL server is and how the pool behaves.

use std::fmt;

use mysql_async::{Opts, UrlError};

use super::Manager;
use crate::settings::{check_url, quoted, redact_url, unless_secret, UrlGrammar};
use crate::{DriverConfig, InvalidConfig};

/// Settings of a MySQL (or MariaDB) pool: a connection URL and the pool's own settings.
///
/// The URL is `mysql://user:password@host:port/database?options`, with the options
/// [`mysql_async::Opts`] knows (`prefer_socket=false`, `stmt_cache_size=64`, ...). A `/`, `?`
/// or `#` in the password must be percent-encoded (`%2F`, `%3F`, `%23`). `Debug` hides the
/// password.
///
/// # Examples
///
/// ```
/// use pool_drivers::DriverConfig;
/// let config = pool_drivers::mysql::Config::from_url("mysql://app:s3cret@127.0.0.1:3306/app")?;
/// assert!(!format!("{config:?}").contains("s3cret"));
/// let pool = config.build_pool_lazy()?;
/// # Ok::<(), pool_drivers::InvalidConfig>(())
/// ```
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// `mysql://user:password@host:port/database?options`.
    pub url: String,
    /// The pool's settings.
    #[cfg_attr(feature = "serde", serde(default))]
    pub pool: pool_core::Config,
}

impl Config {}

impl DriverConfig for Config {
    type Manager = Manager;

    /// A configuration for `url` with the default pool settings.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming what is wrong with the URL (its scheme, an unknown option, a
    /// value that does not parse). The message never contains the password.
    fn from_url(url: &str) -> Result<Self, InvalidConfig> {
        parse(url, "url")?;
        Ok(Config {
            url: url.to_owned(),
            pool: pool_core::Config::default(),
        })
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
    /// [`InvalidConfig`] when the URL is malformed (possible for a deserialized `Config`).
    fn manager(&self) -> Result<Manager, InvalidConfig> {
        Ok(Manager::new(parse(&self.url, "url")?))
    }

    fn default_pool_name(&self) -> String {
        crate::settings::name_from_url(&self.url)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("pool", &self.pool)
            .finish()
    }
}

/// Parses `url`, naming `setting` in the error.
///
/// A URL the parser would cut elsewhere than [`redact_url`] is refused first, so no piece of
/// the password reaches what the [`Manager`]'s `Debug` shows; the messages quote only what
/// cannot be a password, and keep the parser's error as the cause only when it quotes nothing.
fn parse(url: &str, setting: &str) -> Result<Opts, InvalidConfig> {
    check_url(url, setting, UrlGrammar::Whatwg)?;
    Opts::from_url(url).map_err(|e| {
        let named = |what: &str, name: &str| match quoted(url, name) {
            Some(name) => format!("{what} {name}"),
            None => what.to_owned(),
        };
        let problem = match &e {
            UrlError::UnsupportedScheme { scheme } => format!(
                "{} is not supported; expected mysql://",
                named("the scheme", scheme)
            ),
            UrlError::Parse(parse) => {
                format!("is not a URL ({parse}); expected mysql://user:password@host:port/database")
            }
            UrlError::UnknownParameter { param } => named("has an unknown option", param),
            UrlError::InvalidParamValue { param, .. } => {
                named("has an invalid value for the option", param)
            }
            UrlError::FeatureRequired { feature, param } => format!(
                "{} needs the `{feature}` feature of mysql_async, which is off",
                named("the option", param)
            ),
            other => unless_secret(
                url,
                format!("is not a valid MySQL URL ({other})"),
                "is not a valid MySQL URL",
            ),
        };
        let invalid = InvalidConfig::new(setting, problem);
        match e {
            // A `url::ParseError` is a fixed text; the other errors quote the URL's parts.
            UrlError::Parse(_) => invalid.with_source(e),
            _ => invalid,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_hidden() {
        let config = Config::from_url("mysql://app:hunter2@127.0.0.1:3306/app").unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("mysql://app:***@127.0.0.1:3306/app"),
            "{debug}"
        );
    }

    #[test]
    fn malformed_urls_are_named() {
        let err = Config::from_url("postgres://127.0.0.1/test").unwrap_err();
        assert_eq!(err.setting(), "url");
        assert!(err.problem().contains("`postgres`"), "{err}");

        let err = Config::from_url("127.0.0.1:3306").unwrap_err();
        assert!(err.problem().contains("mysql://"), "{err}");

        let err = Config::from_url("mysql://root@127.0.0.1/test?no_such_option=1").unwrap_err();
        assert!(err.problem().contains("no_such_option"), "{err}");

        let err = Config::from_url("mysql://root:pw@127.0.0.1:notaport/test").unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");

        // A generated password holding `/` or `#` would be cut by the URL parser, which would
        // then read part of it as the port or the database: refused, without echoing it.
        let err = Config::from_url("mysql://app:12/hunter2@127.0.0.1/test").unwrap_err();
        assert!(err.problem().contains("percent-encode"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        let err = Config::from_url("mysql://root@h/test?hunter2=1").unwrap_err();
        assert!(
            err.problem().contains("`hunter2`"),
            "an option's name is shown: {err}"
        );
        let err = Config::from_url("mysql://root:hunter2@h/test?hunter2=1").unwrap_err();
        assert!(
            !format!("{err:?}").contains("hunter2"),
            "unless it is the password: {err:?}"
        );
    }

    #[test]
    fn env_names_the_variable() {
        let prefix = "POOL_DRIVERS_MYSQL_UNIT_TEST";
        std::env::set_var(format!("{prefix}_URL"), "mysql://root@127.0.0.1:3306/test");
        std::env::set_var(format!("{prefix}_MAX_SIZE"), "3");
        let config = Config::from_env(prefix).unwrap();
        assert_eq!(config.pool.max_size, 3);

        std::env::set_var(format!("{prefix}_URL"), "nope://x");
        let err = Config::from_env(prefix).unwrap_err();
        assert_eq!(err.setting(), format!("{prefix}_URL"));
        std::env::remove_var(format!("{prefix}_URL"));
        std::env::remove_var(format!("{prefix}_MAX_SIZE"));
        assert!(Config::from_env(prefix).is_err());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserializes_without_pool_settings() {
        let config: Config = serde::Deserialize::deserialize(serde::de::value::MapDeserializer::<
            _,
            serde::de::value::Error,
        >::new(
            [("url", "mysql://root@127.0.0.1/test")].into_iter(),
        ))
        .unwrap();
        assert_eq!(config.pool, pool_core::Config::default());
    }
}

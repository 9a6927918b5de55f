//! [`Config`]: where the Redis server is and how the pool behaves.

use std::fmt;
use std::time::Duration;

use ::redis::{ConnectionInfo, IntoConnectionInfo};

use super::Manager;
use crate::settings::{check_url, quoted, redact_url, unless_secret, UrlGrammar};
use crate::{DriverConfig, InvalidConfig};

/// Settings of a Redis pool: a connection URL, a reply timeout and the pool's own settings.
///
/// The URL is `redis://[[user]:password@]host[:port][/db][?protocol=resp3]` (or
/// `redis+unix:///path/to/socket?db=1&pass=...`). A `/`, `?`, `#` in the password, or an `@` in
/// the query, must be percent-encoded (`%2F`, `%3F`, `%23`, `%40`). `Debug` hides the
/// password.
///
/// # Examples
///
/// ```
/// use pool_drivers::DriverConfig;
/// let config = pool_drivers::redis::Config::from_url("redis://:s3cret@127.0.0.1:6379/2")?;
/// assert!(!format!("{config:?}").contains("s3cret"));
/// let pool = config.build_pool_lazy()?;
/// # Ok::<(), pool_drivers::InvalidConfig>(())
/// ```
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// `redis://[[user]:password@]host[:port][/db]`.
    pub url: String,
    /// How long a request waits for its reply before failing (the connection is then closed,
    /// since the late reply would confuse the next borrower). Default `None`: requests wait
    /// as long as the server takes, so blocking commands such as `BLPOP` work; bound a call
    /// with `tokio::time::timeout` where needed.
    #[cfg_attr(feature = "serde", serde(default))]
    pub response_timeout: Option<Duration>,
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
    /// [`InvalidConfig`] naming what is wrong with the URL (no or an unknown scheme, a port or
    /// database that is not a number, ...). The message never contains the password.
    fn from_url(url: &str) -> Result<Self, InvalidConfig> {
        parse(url, "url")?;
        Ok(Config {
            url: url.to_owned(),
            response_timeout: None,
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
        Manager::new(parse(&self.url, "url")?, self.response_timeout)
    }

    fn default_pool_name(&self) -> String {
        crate::settings::name_from_url(&self.url)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("response_timeout", &self.response_timeout)
            .field("pool", &self.pool)
            .finish()
    }
}

const SCHEMES: [&str; 7] = [
    "redis",
    "rediss",
    "valkey",
    "valkeys",
    "redis+unix",
    "valkey+unix",
    "unix",
];

/// Parses `url`, naming `setting` in the error.
///
/// A URL the parser would cut elsewhere than [`redact_url`] is refused first, so no piece of
/// the password reaches what the [`Manager`]'s `Debug` shows. The driver's error is not kept
/// as the cause: its detail can quote a value of the URL.
pub(super) fn parse(url: &str, setting: &str) -> Result<ConnectionInfo, InvalidConfig> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(InvalidConfig::new(
            setting,
            "has no scheme; expected redis://host:port/db",
        ));
    };
    if !SCHEMES.contains(&scheme) {
        // Whatever comes before `://` is quoted only if it is a scheme: after a mistyped
        // start, it may be a user name and password.
        let problem = match crate::settings::scheme(url).filter(|s| *s == scheme) {
            Some(scheme) => match quoted(url, scheme) {
                Some(scheme) => format!("the scheme {scheme} is not supported; expected redis://"),
                None => "its scheme is not supported; expected redis://".to_owned(),
            },
            None => "does not start with a scheme; expected redis://".to_owned(),
        };
        return Err(InvalidConfig::new(setting, problem));
    }
    check_url(url, setting, UrlGrammar::Whatwg)?;
    url.into_connection_info().map_err(|e| {
        // The driver's messages are fixed texts ("Invalid database number", ...) followed by
        // the error kind and a detail that may quote the URL; keep the text.
        let text = e.to_string();
        let text = text.split(" - ").next().unwrap_or_default();
        let problem = if text == "Redis URL did not parse" {
            "is not a valid URL (check the host and port)".to_owned()
        } else {
            unless_secret(
                url,
                format!("is not a valid Redis URL: {text}"),
                "is not a valid Redis URL",
            )
        };
        InvalidConfig::new(setting, problem)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_hidden() {
        let config = Config::from_url("redis://user:hunter2@127.0.0.1:6379/3").unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("redis://user:***@127.0.0.1:6379/3"),
            "{debug}"
        );
        let manager = config.manager().unwrap();
        assert!(!format!("{manager:?}").contains("hunter2"));
    }

    #[test]
    fn malformed_urls_are_named() {
        let err = Config::from_url("127.0.0.1:6379").unwrap_err();
        assert_eq!(err.setting(), "url");
        assert!(err.problem().contains("no scheme"), "{err}");

        let err = Config::from_url("http://127.0.0.1:6379").unwrap_err();
        assert!(err.problem().contains("`http`"), "{err}");

        let err = Config::from_url("redis://127.0.0.1:6379/notanumber").unwrap_err();
        assert!(err.problem().contains("database"), "{err}");

        let err = Config::from_url("redis://:pw@127.0.0.1:99999/0").unwrap_err();
        assert!(err.problem().contains("not a valid URL"), "{err}");
        assert!(!err.to_string().contains("pw"), "{err}");

        // What stands before `://` is quoted only when it is a scheme.
        let err = Config::from_url("r/app:hunter2@redis://127.0.0.1").unwrap_err();
        assert!(
            err.problem().contains("does not start with a scheme"),
            "{err}"
        );
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        // A password with `#` would leave `hunter2@...` as the fragment: refused.
        let err = Config::from_url("redis://:12#hunter2@127.0.0.1/0").unwrap_err();
        assert!(err.problem().contains("percent-encode"), "{err}");
        let config = Config::from_url("redis://:12%23hunter2@127.0.0.1/0").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        let config = Config::from_url("redis+unix:///tmp/r.sock?db=1&pass=hunter2").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", config.manager().unwrap()).contains("hunter2"));
    }

    #[test]
    fn env_names_the_variable() {
        let prefix = "POOL_DRIVERS_REDIS_UNIT_TEST";
        std::env::set_var(format!("{prefix}_URL"), "redis://127.0.0.1:6379/1");
        std::env::set_var(format!("{prefix}_ACQUIRE_TIMEOUT"), "2s");
        let config = Config::from_env(prefix).unwrap();
        assert_eq!(config.pool.acquire_timeout, Some(Duration::from_secs(2)));

        std::env::set_var(format!("{prefix}_URL"), "nope");
        let err = Config::from_env(prefix).unwrap_err();
        assert_eq!(err.setting(), format!("{prefix}_URL"));
        std::env::remove_var(format!("{prefix}_URL"));
        std::env::remove_var(format!("{prefix}_ACQUIRE_TIMEOUT"));
    }
}

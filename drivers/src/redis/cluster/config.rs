//! [`Config`]: which cluster nodes to start from and how the pool behaves.

use std::fmt;
use std::time::Duration;

use super::Manager;
use crate::redis::config::parse;
use crate::settings::redact_url;
use crate::{DriverConfig, InvalidConfig};

/// Settings of a Redis Cluster pool: the URLs of some of its nodes (the others are found
/// from them), a reply timeout and the pool's own settings. `Debug` hides the passwords. In a
/// comma-separated list, a `,` in a password must be written `%2C`.
///
/// # Examples
///
/// ```
/// use pool_drivers::DriverConfig;
/// use pool_drivers::redis::cluster::Config;
///
/// let config = Config::from_urls(["redis://:pw@127.0.0.1:7000", "redis://:pw@127.0.0.1:7001"])?;
/// assert!(!format!("{config:?}").contains("pw@"));
/// assert_eq!(Config::from_url("redis://127.0.0.1:7000,redis://127.0.0.1:7001")?.urls.len(), 2);
/// # Ok::<(), pool_drivers::InvalidConfig>(())
/// ```
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// `redis://[[user]:password@]host:port` of one or more nodes; all with the same
    /// credentials.
    pub urls: Vec<String>,
    /// How long a request waits for its reply before failing (the connection is then
    /// closed). Default `None`: no limit.
    #[cfg_attr(feature = "serde", serde(default))]
    pub response_timeout: Option<Duration>,
    /// The pool's settings.
    #[cfg_attr(feature = "serde", serde(default))]
    pub pool: pool_core::Config,
}

impl Config {
    /// A configuration for these node URLs.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming what is wrong with a URL, or that there is none.
    pub fn from_urls<I>(urls: I) -> Result<Self, InvalidConfig>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let urls: Vec<String> = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        check(&urls, "urls")?;
        Ok(Config {
            urls,
            response_timeout: None,
            pool: pool_core::Config::default(),
        })
    }
}

impl DriverConfig for Config {
    type Manager = Manager;

    /// A configuration for the comma-separated node URLs in `urls`.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming what is wrong with a URL, or that there is none.
    fn from_url(urls: &str) -> Result<Self, InvalidConfig> {
        Self::from_urls(urls.split(',').map(str::trim).filter(|u| !u.is_empty()))
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
    /// [`InvalidConfig`] when a URL is malformed or the nodes' credentials differ.
    fn manager(&self) -> Result<Manager, InvalidConfig> {
        let infos = check(&self.urls, "urls")?;
        Manager::new(infos, self.response_timeout)
    }

    fn default_pool_name(&self) -> String {
        self.urls
            .first()
            .map_or_else(String::new, |url| crate::settings::name_from_url(url))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("Config")
            .field("urls", &urls)
            .field("response_timeout", &self.response_timeout)
            .field("pool", &self.pool)
            .finish()
    }
}

fn check(urls: &[String], setting: &str) -> Result<Vec<::redis::ConnectionInfo>, InvalidConfig> {
    if urls.is_empty() {
        return Err(InvalidConfig::new(setting, "names no cluster node"));
    }
    urls.iter().map(|url| parse(url, setting)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_secrets() {
        let config =
            Config::from_url("redis://:hunter2@127.0.0.1:7000, redis://:hunter2@127.0.0.1:7001")
                .unwrap();
        assert_eq!(config.urls.len(), 2);
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", config.manager().unwrap()).contains("hunter2"));

        let err = Config::from_url(" , ").unwrap_err();
        assert!(err.problem().contains("no cluster node"), "{err}");
        let err = Config::from_urls(["redis://127.0.0.1:7000", "127.0.0.1:7001"]).unwrap_err();
        assert!(err.problem().contains("no scheme"), "{err}");
    }

    #[test]
    fn differing_credentials_are_refused() {
        let config =
            Config::from_urls(["redis://:a@127.0.0.1:7000", "redis://:b@127.0.0.1:7001"]).unwrap();
        let err = config.manager().unwrap_err();
        assert_eq!(err.setting(), "urls");
        assert!(!err.to_string().contains(":a@"), "{err}");
    }
}

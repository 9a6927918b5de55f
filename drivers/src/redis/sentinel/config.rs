//! [`SentinelConfig`]: which Sentinels to ask, for which service and role, and how the pool
//! behaves.

use std::fmt;
use std::time::Duration;

use ::redis::ConnectionInfo;

use super::SentinelManager;
use crate::redis::config::parse;
use crate::settings::redact_url;
use crate::{DriverConfig, InvalidConfig};

/// Which server of a service a [`SentinelConfig`] pool connects to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum ServerRole {
    /// The current master: reads and writes.
    #[default]
    Master,
    /// A healthy replica (each connect takes the next one the Sentinels list): reads only.
    Replica,
}

/// Settings of a Redis pool behind Sentinel: the Sentinels, the service (master) name, the
/// role wanted, and the settings of the data servers' connections.
///
/// The URL is
/// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?role=replica]`:
/// the Sentinels' addresses (port 26379 unless given), then the service name. The user,
/// password, database and `protocol` are those of the master and replicas; Sentinels are asked
/// without credentials. `Debug` hides the password.
///
/// # Examples
///
/// ```
/// use pool_drivers::DriverConfig;
/// use pool_drivers::redis::sentinel::{SentinelConfig, ServerRole};
///
/// let config = SentinelConfig::from_url(
///     "redis+sentinel://:s3cret@10.0.0.1,10.0.0.2:26380/cache/2?role=replica",
/// )?;
/// assert_eq!(config.sentinels(), ["10.0.0.1:26379", "10.0.0.2:26380"]);
/// assert_eq!(config.service(), "cache");
/// assert_eq!(config.role(), ServerRole::Replica);
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), pool_drivers::InvalidConfig>(())
/// ```
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[non_exhaustive]
pub struct SentinelConfig {
    /// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?role=replica]`.
    pub url: String,
    /// How long a request to a data server waits for its reply, as
    /// [`redis::Config::response_timeout`](crate::redis::Config::response_timeout).
    /// Default `None`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub response_timeout: Option<Duration>,
    /// How long asking one Sentinel may take (connect and reply) before the next one is
    /// asked. Default 1 s.
    #[cfg_attr(feature = "serde", serde(default = "default_sentinel_timeout"))]
    pub sentinel_timeout: Duration,
    /// How often a master pool asks the Sentinels whether the master changed; its pooled
    /// connections to a former master are closed once they say so. Default 1 s.
    #[cfg_attr(feature = "serde", serde(default = "default_master_refresh"))]
    pub master_refresh: Duration,
    /// The pool's settings.
    #[cfg_attr(feature = "serde", serde(default))]
    pub pool: pool_core::Config,
}

fn default_sentinel_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_master_refresh() -> Duration {
    Duration::from_secs(1)
}

/// What a Sentinel URL says.
pub(super) struct Parsed {
    pub(super) sentinels: Vec<(String, u16)>,
    pub(super) service: String,
    pub(super) role: ServerRole,
    /// The data servers' connection settings; its address is replaced by each server's.
    pub(super) node: ConnectionInfo,
}

impl SentinelConfig {
    /// The Sentinels' addresses, as `host:port`.
    pub fn sentinels(&self) -> Vec<String> {
        self.parsed()
            .map(|p| {
                p.sentinels
                    .iter()
                    .map(|(host, port)| format!("{host}:{port}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The service (master) name the Sentinels monitor.
    pub fn service(&self) -> String {
        self.parsed().map(|p| p.service).unwrap_or_default()
    }

    /// The role of the servers the pool connects to.
    pub fn role(&self) -> ServerRole {
        self.parsed().map(|p| p.role).unwrap_or_default()
    }

    pub(super) fn parsed(&self) -> Result<Parsed, InvalidConfig> {
        parse_sentinel_url(&self.url)
    }
}

impl DriverConfig for SentinelConfig {
    type Manager = SentinelManager;

    /// A configuration for `url` with the default pool settings.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming what is wrong: another scheme, no Sentinel, a port that is
    /// not a number, no service name, an unknown `role`, or what
    /// [`redis::Config::from_url`](crate::redis::Config) refuses in the credentials or the
    /// database. The message never contains the password.
    fn from_url(url: &str) -> Result<Self, InvalidConfig> {
        parse_sentinel_url(url)?;
        Ok(SentinelConfig {
            url: url.to_owned(),
            response_timeout: None,
            sentinel_timeout: default_sentinel_timeout(),
            master_refresh: default_master_refresh(),
            pool: pool_core::Config::default(),
        })
    }

    fn pool_config(&self) -> &pool_core::Config {
        &self.pool
    }

    fn pool_config_mut(&mut self) -> &mut pool_core::Config {
        &mut self.pool
    }

    /// `sentinel:service` for a master pool, `sentinel:service/replica` for a replica pool.
    fn default_pool_name(&self) -> String {
        match self.role() {
            ServerRole::Master => format!("sentinel:{}", self.service()),
            ServerRole::Replica => format!("sentinel:{}/replica", self.service()),
        }
    }

    /// The [`SentinelManager`] for these settings.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] when the URL is malformed (possible for a deserialized config) or
    /// the Sentinel timeout is zero.
    fn manager(&self) -> Result<SentinelManager, InvalidConfig> {
        for (setting, value) in [
            ("sentinel_timeout", self.sentinel_timeout),
            ("master_refresh", self.master_refresh),
        ] {
            if value.is_zero() {
                return Err(InvalidConfig::new(setting, "must be longer than zero"));
            }
        }
        SentinelManager::new(
            self.parsed()?,
            self.response_timeout,
            self.sentinel_timeout,
            self.master_refresh,
        )
    }
}

impl fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelConfig")
            .field("url", &redact_url(&self.url))
            .field("response_timeout", &self.response_timeout)
            .field("sentinel_timeout", &self.sentinel_timeout)
            .field("master_refresh", &self.master_refresh)
            .field("pool", &self.pool)
            .finish()
    }
}

const SCHEME: &str = "redis+sentinel://";
const DEFAULT_SENTINEL_PORT: u16 = 26379;

fn parse_sentinel_url(url: &str) -> Result<Parsed, InvalidConfig> {
    let Some(rest) = url.strip_prefix(SCHEME) else {
        return Err(InvalidConfig::new(
            "url",
            "must start with redis+sentinel://",
        ));
    };
    // The user information ends at the last `@` before the path (a `/`, `?` or `#` in the
    // password must be percent-encoded, as for redis://).
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let sentinels = hosts
        .split(',')
        .map(sentinel_address)
        .collect::<Result<Vec<_>, _>>()?;
    let (path, query) = after.split_once('?').unwrap_or((after, ""));
    let mut segments = path.trim_start_matches('/').split('/');
    let service = segments.next().unwrap_or_default();
    if service.is_empty() {
        return Err(InvalidConfig::new(
            "url",
            "names no service (redis+sentinel://host:26379/SERVICE)",
        ));
    }
    let db = segments.next().filter(|db| !db.is_empty());
    if segments.next().is_some() {
        return Err(InvalidConfig::new(
            "url",
            "has a path past the database (redis+sentinel://host:26379/service/db)",
        ));
    }
    let mut role = ServerRole::Master;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("role", "master")) => role = ServerRole::Master,
            Some(("role", "replica")) => role = ServerRole::Replica,
            Some(("role", _)) | None if pair.starts_with("role") => {
                return Err(InvalidConfig::new("url", "role must be master or replica"))
            }
            _ => kept.push(pair),
        }
    }
    // The data servers' settings, checked by the redis:// parser, at the first Sentinel's
    // address (replaced before any connect).
    let (host, port) = &sentinels[0];
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let mut node = String::from("redis://");
    if let Some(userinfo) = userinfo {
        node.push_str(userinfo);
        node.push('@');
    }
    node.push_str(&format!("{host}:{port}/{}", db.unwrap_or("0")));
    if !kept.is_empty() {
        node.push('?');
        node.push_str(&kept.join("&"));
    }
    let node = parse(&node, "url")?;
    Ok(Parsed {
        sentinels,
        service: service.to_owned(),
        role,
        node,
    })
}

/// `host[:port]` or `[v6][:port]`.
fn sentinel_address(text: &str) -> Result<(String, u16), InvalidConfig> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => (text, None),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(InvalidConfig::new(
            "url",
            "names an empty Sentinel host (redis+sentinel://host:26379,host:26379/service)",
        ));
    }
    let port = match port {
        None => DEFAULT_SENTINEL_PORT,
        Some(port) => port
            .parse()
            .map_err(|_| InvalidConfig::new("url", "has a Sentinel port that is not a number"))?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinels_service_and_role_are_read() {
        let parsed =
            parse_sentinel_url("redis+sentinel://u:pw@a,b:1,[::1]:2/svc/3?role=replica").unwrap();
        assert_eq!(
            parsed.sentinels,
            [
                ("a".to_owned(), 26379),
                ("b".to_owned(), 1),
                ("::1".to_owned(), 2)
            ]
        );
        assert_eq!(parsed.service, "svc");
        assert_eq!(parsed.role, ServerRole::Replica);
        assert_eq!(parsed.node.redis_settings().db(), 3);
        assert_eq!(parsed.node.redis_settings().password(), Some("pw"));
    }

    #[test]
    fn bad_urls_are_named_without_the_password() {
        for (url, problem) in [
            ("redis://a/svc", "redis+sentinel://"),
            ("redis+sentinel://a:26379", "no service"),
            ("redis+sentinel://a:x/svc", "port"),
            ("redis+sentinel://:hunter2@a,/svc", "empty Sentinel host"),
            ("redis+sentinel://a/svc?role=boss", "role"),
            ("redis+sentinel://:hunter2@a/svc/notanumber", "database"),
            ("redis+sentinel://a/svc/1/2", "past the database"),
        ] {
            let err = SentinelConfig::from_url(url).unwrap_err();
            assert!(err.to_string().contains(problem), "{url}: {err}");
            assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        }
        let config = SentinelConfig::from_url("redis+sentinel://:hunter2@a/svc").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", config.manager().unwrap()).contains("hunter2"));
    }
}

//! [`Config`]: where to connect, the socket options, the hooks, and the pool settings.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::{BoxError, Manager};
use crate::settings::{parse_duration, parse_flag, quoted, scheme};
use crate::{DriverConfig, InvalidConfig};

/// A boxed future that may borrow the stream, as the hooks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A hook run on a stream: the handshake after connecting, or the health probe in checks.
pub(crate) type Hook =
    Arc<dyn for<'a> Fn(&'a mut TcpStream) -> BoxFuture<'a, Result<(), BoxError>> + Send + Sync>;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a TCP pool.
///
/// Built from a URL such as `tcp://127.0.0.1:6000?connect_timeout=2s&keepalive=60s`, from the
/// environment, from serde (`host` and `port` are required, the rest have defaults), or with
/// [`Config::new`]. The handshake and probe hooks are code, so they are set with
/// [`Config::handshake`] and [`Config::probe`], never read from data.
///
/// # Examples
///
/// ```no_run
/// use pool_drivers::DriverConfig;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let pool = pool_drivers::tcp::Config::from_url("tcp://127.0.0.1:7000")?.build_pool_lazy()?;
/// let mut conn = pool.get().await?;
/// conn.write_all(b"ping\n").await?;
/// let mut reply = [0; 5];
/// conn.read_exact(&mut reply).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
pub struct Config {
    /// Host name or IP address. Every address it resolves to is tried in turn.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Bound on the TCP connect to one address, before the handshake. Default 5 s.
    /// (The pool's `connect_timeout` bounds the whole connect, handshake included.)
    #[cfg_attr(feature = "serde", serde(default = "default_connect_timeout"))]
    pub connect_timeout: Duration,
    /// Set `TCP_NODELAY`, so small requests are sent at once instead of being held back by
    /// Nagle's algorithm. Default `true`.
    #[cfg_attr(feature = "serde", serde(default = "default_nodelay"))]
    pub nodelay: bool,
    /// Turn on TCP keepalive, probing after the connection has been silent this long, so a
    /// peer that vanished without closing is noticed even while the connection is idle.
    /// Default `None` (the operating system's default, normally off).
    #[cfg_attr(feature = "serde", serde(default))]
    pub keepalive: Option<Duration>,
    /// Pool settings.
    #[cfg_attr(feature = "serde", serde(default))]
    pub pool: pool_core::Config,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) handshake: Option<Hook>,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) probe: Option<Hook>,
}

#[cfg(feature = "serde")]
fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}

#[cfg(feature = "serde")]
fn default_nodelay() -> bool {
    true
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // There is no password in a TCP address; the hooks are shown only as present or not.
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("connect_timeout", &self.connect_timeout)
            .field("nodelay", &self.nodelay)
            .field("keepalive", &self.keepalive)
            .field("handshake", &self.handshake.as_ref().map(|_| "<hook>"))
            .field("probe", &self.probe.as_ref().map(|_| "<hook>"))
            .field("pool", &self.pool)
            .finish()
    }
}

impl Config {
    /// Settings for `host:port` with every other setting at its default.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Config {
            host: host.into(),
            port,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            nodelay: true,
            keepalive: None,
            pool: pool_core::Config::default(),
            handshake: None,
            probe: None,
        }
    }

    /// Runs `hook` on every new connection before the pool hands it out: a greeting, a login,
    /// a protocol version exchange. An error fails that connect; wrap it in
    /// [`Permanent`](super::Permanent) when retrying cannot help.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    ///
    /// let config = pool_drivers::tcp::Config::new("127.0.0.1", 7000).handshake(|stream| {
    ///     Box::pin(async move {
    ///         stream.write_all(b"HELLO 1\n").await?;
    ///         Ok(())
    ///     })
    /// });
    /// ```
    pub fn handshake<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a mut TcpStream) -> BoxFuture<'a, Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.handshake = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` in every check (on checkout of a connection idle longer than the pool's
    /// `skip_check_within`, and in the background keepalive), after the check that the peer has
    /// not closed: a request the server answers cheaply. It must read the whole reply, or the
    /// next check finds the rest and discards the connection. An error closes the connection.
    pub fn probe<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a mut TcpStream) -> BoxFuture<'a, Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.probe = Some(Arc::new(hook));
        self
    }
}

impl DriverConfig for Config {
    type Manager = Manager;

    /// Parses `tcp://host:port`, optionally followed by `?connect_timeout=2s`,
    /// `nodelay=false` and `keepalive=60s` (durations are written `250ms`, `2s`, `5m`;
    /// `keepalive=none` leaves it off). An IPv6 address goes in brackets: `tcp://[::1]:7000`.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming the part of the URL that is wrong: another scheme, no port, a
    /// port out of range, a path or user name (TCP has neither), an unknown parameter or a bad
    /// value.
    fn from_url(url: &str) -> Result<Self, InvalidConfig> {
        let bad = |problem: String| InvalidConfig::new("url", problem);
        // The messages quote a part of the URL only where `quoted` finds no password in it:
        // a mistyped URL may carry one anywhere.
        let found =
            |text: &str| quoted(url, text).map_or_else(String::new, |q| format!(", found {q}"));
        let rest = url.strip_prefix("tcp://").ok_or_else(|| {
            let scheme = scheme(url)
                .filter(|s| *s != "tcp")
                .and_then(|s| quoted(url, s));
            bad(match scheme {
                Some(scheme) => format!("expected tcp://host:port, found the scheme {scheme}"),
                None => "expected tcp://host:port".to_owned(),
            })
        })?;
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        // A trailing slash is harmless; anything after it would be a path, which TCP has not.
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains(['/', '#']) {
            return Err(bad("a tcp:// URL has no path".into()));
        }
        if authority.contains('@') {
            return Err(bad("a tcp:// URL has no user name or password".into()));
        }
        let (host, port) = split_host_port(authority, &found).map_err(bad)?;
        let mut config = Config::new(host, port);
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "connect_timeout" => {
                    config.connect_timeout = parse_duration(value)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| bad(duration_problem(key, &found(value))))?;
                }
                "keepalive" => {
                    config.keepalive = if matches!(value, "none" | "off" | "false") {
                        None
                    } else {
                        Some(
                            parse_duration(value)
                                .filter(|d| !d.is_zero())
                                .ok_or_else(|| bad(duration_problem(key, &found(value))))?,
                        )
                    };
                }
                "nodelay" => {
                    config.nodelay = parse_flag(value).ok_or_else(|| {
                        bad(format!("`nodelay` must be true or false{}", found(value)))
                    })?;
                }
                _ => {
                    let name = quoted(url, key).map_or_else(String::new, |k| format!(" {k}"));
                    return Err(bad(format!(
                        "unknown parameter{name} (known: connect_timeout, nodelay, keepalive)"
                    )));
                }
            }
        }
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
    /// [`InvalidConfig`] for an empty host, port 0 or a zero connect timeout.
    fn manager(&self) -> Result<Manager, InvalidConfig> {
        if self.host.is_empty() {
            return Err(InvalidConfig::new("host", "is empty"));
        }
        if self.port == 0 {
            return Err(InvalidConfig::new("port", "must not be 0"));
        }
        if self.connect_timeout.is_zero() {
            return Err(InvalidConfig::new(
                "connect_timeout",
                "must be greater than zero",
            ));
        }
        if self.keepalive.is_some_and(|d| d.is_zero()) {
            return Err(InvalidConfig::new("keepalive", "must be greater than zero"));
        }
        Ok(Manager::new(self.clone()))
    }

    fn default_pool_name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Splits `host:port`, with an IPv6 host in brackets. `found` quotes a bad port, if it may.
fn split_host_port(
    authority: &str,
    found: &dyn Fn(&str) -> String,
) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "an IPv6 address in [ ] is missing its `]`".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "the port is missing (tcp://host:port)".to_string())?;
        (host, port)
    } else {
        authority
            .rsplit_once(':')
            .ok_or_else(|| "the port is missing (tcp://host:port)".to_string())?
    };
    if host.is_empty() {
        return Err("the host is missing (tcp://host:port)".into());
    }
    if host.contains(':') && !authority.starts_with('[') {
        return Err("an IPv6 address must be written in brackets: tcp://[::1]:port".into());
    }
    let port = match port.parse::<u16>() {
        Ok(0) | Err(_) => {
            return Err(format!(
                "the port must be a number from 1 to 65535{}",
                found(port)
            ))
        }
        Ok(port) => port,
    };
    Ok((host.to_owned(), port))
}

/// `found` is empty, or `, found` and the value quoted.
fn duration_problem(key: &str, found: &str) -> String {
    format!("`{key}` must be a duration such as 250ms, 2s or 5m{found}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = Config::from_url("tcp://127.0.0.1:7000").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.nodelay),
            ("127.0.0.1", 7000, true)
        );
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let c = Config::from_url("tcp://[::1]:9/?connect_timeout=250ms&nodelay=false&keepalive=1m")
            .unwrap();
        assert_eq!((c.host.as_str(), c.port, c.nodelay), ("::1", 9, false));
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.keepalive, Some(Duration::from_secs(60)));
        let c = Config::from_url("tcp://localhost:1?keepalive=none").unwrap();
        assert_eq!(c.keepalive, None);
    }

    #[test]
    fn bad_urls_name_the_problem() {
        let cases = [
            (
                "http://127.0.0.1:80",
                "expected tcp://host:port, found the scheme `http`",
            ),
            ("tcp:/u:secret@h:80", "expected tcp://host:port"),
            ("tcp://u:12/secret@h:80", "no path"),
            ("tcp://h:80?token=secret", "unknown parameter `token`"),
            ("tcp://127.0.0.1", "port is missing"),
            ("tcp://127.0.0.1:", "port must be a number"),
            ("tcp://127.0.0.1:0", "port must be a number"),
            ("tcp://127.0.0.1:70000", "port must be a number"),
            ("tcp://:80", "host is missing"),
            ("tcp://::1:80", "brackets"),
            ("tcp://[::1:80", "`]`"),
            ("tcp://u:secret@h:80", "no user name"),
            ("tcp://h:80/db", "no path"),
            ("tcp://h:80?colour=blue", "unknown parameter `colour`"),
            (
                "tcp://h:80?connect_timeout=soon",
                "`connect_timeout` must be a duration",
            ),
            (
                "tcp://h:80?connect_timeout=0s",
                "`connect_timeout` must be a duration",
            ),
            (
                "tcp://h:80?nodelay=perhaps",
                "`nodelay` must be true or false",
            ),
        ];
        for (url, expected) in cases {
            let err = Config::from_url(url).unwrap_err();
            assert_eq!(err.setting(), "url", "{url}");
            assert!(
                err.problem().contains(expected),
                "{url}: {:?} does not mention {expected:?}",
                err.problem()
            );
            assert!(!format!("{err:?}").contains("secret"), "{url}: {err:?}");
        }
    }

    #[test]
    fn debug_shows_hooks_as_present() {
        let c = Config::new("h", 1).probe(|_| Box::pin(async { Ok(()) }));
        let debug = format!("{c:?}");
        assert!(debug.contains("probe: Some(\"<hook>\")"), "{debug}");
        assert!(debug.contains("handshake: None"), "{debug}");
    }

    #[test]
    fn manager_rejects_unusable_settings() {
        assert_eq!(Config::new("", 1).manager().unwrap_err().setting(), "host");
        assert_eq!(Config::new("h", 0).manager().unwrap_err().setting(), "port");
        let mut c = Config::new("h", 1);
        c.connect_timeout = Duration::ZERO;
        assert_eq!(c.manager().unwrap_err().setting(), "connect_timeout");
    }
}

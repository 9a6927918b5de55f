//! Asking the Sentinels where the servers of a service are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::redis::{AsyncConnectionConfig, Client, Cmd, ConnectionAddr, RedisResult};

use crate::redis::Error;
use crate::InvalidConfig;

/// The Sentinels of one service, asked in turn starting with the one that answered last (so
/// a Sentinel that is down costs a timeout once, not on every connect).
pub(super) struct Sentinels {
    clients: Vec<(String, Client)>,
    service: String,
    preferred: AtomicUsize,
    config: AsyncConnectionConfig,
}

/// A server's address as the Sentinels give it.
pub(super) type Address = (String, u16);

impl Sentinels {
    pub(super) fn new(
        addresses: &[(String, u16)],
        service: String,
        timeout: Duration,
    ) -> Result<Self, InvalidConfig> {
        let clients = addresses
            .iter()
            .map(|(host, port)| {
                Client::open(ConnectionAddr::Tcp(host.clone(), *port))
                    .map(|client| (format!("{host}:{port}"), client))
                    .map_err(|e| {
                        InvalidConfig::new("url", "names a Sentinel that cannot be connected to")
                            .with_source(e)
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Sentinels {
            clients,
            service,
            preferred: AtomicUsize::new(0),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
        })
    }

    pub(super) fn service(&self) -> &str {
        &self.service
    }

    /// The current master, as the first Sentinel that knows the service says.
    pub(super) async fn master(&self) -> Result<Address, Error> {
        let mut cmd = ::redis::cmd("SENTINEL");
        cmd.arg("get-master-addr-by-name").arg(&self.service);
        let (host, port): (String, String) = self.ask(&cmd).await?;
        let port = port.parse().map_err(|_| Error::NoServer {
            service: self.service.clone(),
            role: "master",
        })?;
        Ok((host, port))
    }

    /// The replicas that the first Sentinel knowing the service deems healthy: not down in
    /// its view or the quorum's, connected, and with a working link to the master.
    pub(super) async fn replicas(&self) -> Result<Vec<Address>, Error> {
        let mut cmd = ::redis::cmd("SENTINEL");
        cmd.arg("replicas").arg(&self.service);
        let replicas: Vec<HashMap<String, String>> = self.ask(&cmd).await?;
        Ok(replicas
            .iter()
            .filter(|replica| {
                let flags = replica.get("flags").map_or("", String::as_str);
                !flags
                    .split(',')
                    .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"))
                    && replica.get("master-link-status").map(String::as_str) == Some("ok")
            })
            .filter_map(|replica| {
                let port = replica.get("port")?.parse().ok()?;
                Some((replica.get("ip")?.clone(), port))
            })
            .collect())
    }

    fn unknown(&self) -> Error {
        Error::UnknownService {
            service: self.service.clone(),
        }
    }

    /// Sends `cmd` to each Sentinel in turn until one that monitors the service answers.
    /// One that does not answers with nothing (or refuses `SENTINEL replicas`): when no
    /// Sentinel knows the service, [`Error::UnknownService`]; when none answered at all,
    /// [`Error::NoSentinel`].
    async fn ask<T: ::redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let n = self.clients.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut answered = false;
        let mut last = String::new();
        for k in 0..n {
            let i = (first + k) % n;
            let (address, client) = &self.clients[i];
            match self.query::<Option<T>>(client, cmd).await {
                Ok(Some(reply)) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(reply);
                }
                Ok(None) => answered = true,
                Err(e) if e.to_string().contains("No such master") => answered = true,
                Err(e) => last = format!("{address}: {e}"),
            }
        }
        if answered {
            Err(self.unknown())
        } else {
            Err(Error::NoSentinel { sentinels: n, last })
        }
    }

    async fn query<T: ::redis::FromRedisValue>(
        &self,
        client: &Client,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        cmd.query_async(&mut conn).await
    }
}

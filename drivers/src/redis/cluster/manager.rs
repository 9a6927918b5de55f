//! [`Manager`]: opens and checks Redis Cluster connections for the pool.

use std::fmt;
use std::time::Duration;

use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::{ConnectionAddr, ConnectionInfo};
use pool_core::ErrorKind;

use super::connection::ClusterConnection;
use super::Error;
use crate::unknown_host::unresolved_host;
use crate::InvalidConfig;

/// Opens [`ClusterConnection`]s to one cluster.
///
/// Made by [`Config::manager`](crate::DriverConfig::manager).
pub struct Manager {
    client: ClusterClient,
    /// Host and port of each initial node, for telling unknown hosts from network failures.
    nodes: Vec<(String, u16)>,
}

impl Manager {
    pub(super) fn new(
        infos: Vec<ConnectionInfo>,
        response_timeout: Option<Duration>,
    ) -> Result<Self, InvalidConfig> {
        let nodes = infos
            .iter()
            .filter_map(|info| match info.addr() {
                ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                    Some((host.clone(), *port))
                }
                _ => None,
            })
            .collect();
        let mut builder = ClusterClientBuilder::new(infos);
        if let Some(timeout) = response_timeout {
            builder = builder.response_timeout(timeout);
        }
        let client = builder.build().map_err(|e| {
            let text = e.to_string();
            let text = text.split(" - ").next().unwrap_or_default().to_owned();
            InvalidConfig::new("urls", format!("cannot be used together: {text}")).with_source(e)
        })?;
        Ok(Manager { client, nodes })
    }

    /// Turns a failed connect into the most precise [`Error`].
    async fn connect_error(&self, error: ::redis::RedisError) -> Error {
        let server_said_no = matches!(
            error.kind(),
            ::redis::ErrorKind::Server(_) | ::redis::ErrorKind::AuthenticationFailed
        );
        if !server_said_no && !error.is_connection_refusal() && !self.nodes.is_empty() {
            // Only on this failure path: if no initial node's name resolves, say so (a
            // permanent error) rather than report a transient I/O failure.
            // Collected first: a closure borrowing into the future would not be `Send`.
            let nodes: Vec<(&str, u16)> =
                self.nodes.iter().map(|(h, p)| (h.as_str(), *p)).collect();
            if let Some((host, source)) = unresolved_host(nodes).await {
                return Error::UnknownHost { host, source };
            }
        }
        Error::from_connect(error)
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl pool_core::Manager for Manager {
    type Connection = ClusterConnection;
    type Error = Error;

    async fn connect(&self) -> Result<ClusterConnection, Error> {
        match self.client.get_async_connection().await {
            Ok(inner) => Ok(ClusterConnection::new(inner)),
            Err(e) => Err(self.connect_error(e).await),
        }
    }

    /// `PING`.
    async fn check(&self, conn: &mut ClusterConnection) -> Result<(), Error> {
        ::redis::cmd("PING").exec_async(conn).await?;
        Ok(())
    }

    /// Nothing: connections whose session was changed are closed on return instead.
    async fn reset(&self, _conn: &mut ClusterConnection) -> Result<(), Error> {
        Ok(())
    }

    fn has_broken(&self, conn: &mut ClusterConnection) -> bool {
        conn.is_broken()
    }

    fn classify(&self, error: &Error) -> ErrorKind {
        error.kind()
    }
}

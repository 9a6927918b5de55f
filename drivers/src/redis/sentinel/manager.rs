//! [`SentinelManager`]: connects to the server the Sentinels name, and checks its role.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::redis::{ConnectionAddr, ConnectionInfo, Value};
use pool_core::ErrorKind;

use super::config::{Parsed, ServerRole};
use super::discovery::{Address, Sentinels};
use crate::redis::{Error, Manager, RedisConnection};
use crate::InvalidConfig;

/// Opens [`RedisConnection`]s to the server of the wanted role that the Sentinels name, and
/// closes pooled ones whose server no longer has that role. Made by
/// [`SentinelConfig::manager`](super::SentinelConfig).
pub struct SentinelManager {
    sentinels: Arc<Sentinels>,
    /// The master as last asked, kept fresh by a background task (started by the first
    /// connect) so that pooled connections to a former master are closed as soon as the
    /// Sentinels switch, not only once the old master is demoted.
    master: Arc<Mutex<Option<Address>>>,
    watching: std::sync::Once,
    refresh: Duration,
    role: ServerRole,
    /// The data servers' connection settings (credentials, database, protocol).
    node: ConnectionInfo,
    response_timeout: Option<Duration>,
    /// One single-server manager per address seen, which opens and resets the connections.
    servers: Mutex<HashMap<Address, Arc<Manager>>>,
    /// The manager that resets connections: every server's session settings are the same.
    template: Manager,
    /// Which healthy replica the next replica connect takes.
    next_replica: AtomicUsize,
}

impl SentinelManager {
    pub(super) fn new(
        parsed: Parsed,
        response_timeout: Option<Duration>,
        sentinel_timeout: Duration,
        refresh: Duration,
    ) -> Result<Self, InvalidConfig> {
        Ok(SentinelManager {
            sentinels: Arc::new(Sentinels::new(
                &parsed.sentinels,
                parsed.service,
                sentinel_timeout,
            )?),
            master: Arc::new(Mutex::new(None)),
            watching: std::sync::Once::new(),
            refresh,
            role: parsed.role,
            template: Manager::new(parsed.node.clone(), response_timeout)?,
            node: parsed.node,
            response_timeout,
            servers: Mutex::new(HashMap::new()),
            next_replica: AtomicUsize::new(0),
        })
    }

    /// The service (master) name.
    pub fn service(&self) -> &str {
        self.sentinels.service()
    }

    /// The role of the servers this manager connects to.
    pub fn role(&self) -> ServerRole {
        self.role
    }

    /// The server to connect to now, as the Sentinels say.
    async fn target(&self) -> Result<Address, Error> {
        match self.role {
            ServerRole::Master => {
                let master = self.sentinels.master().await?;
                *self.master.lock().unwrap_or_else(PoisonError::into_inner) = Some(master.clone());
                self.watch_master();
                Ok(master)
            }
            ServerRole::Replica => {
                let replicas = self.sentinels.replicas().await?;
                if replicas.is_empty() {
                    return Err(Error::NoServer {
                        service: self.service().to_owned(),
                        role: "replica",
                    });
                }
                let i = self.next_replica.fetch_add(1, Ordering::Relaxed) % replicas.len();
                Ok(replicas[i].clone())
            }
        }
    }

    /// Starts asking the Sentinels for the master every `refresh`, until this manager is
    /// dropped.
    fn watch_master(&self) {
        self.watching.call_once(|| {
            let (sentinels, master) = (Arc::downgrade(&self.sentinels), Arc::downgrade(&self.master));
            let refresh = self.refresh;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(refresh).await;
                    let (Some(sentinels), Some(master)) = (sentinels.upgrade(), master.upgrade())
                    else {
                        return;
                    };
                    if let Ok(now) = sentinels.master().await {
                        let mut known = master.lock().unwrap_or_else(PoisonError::into_inner);
                        if known.as_ref() != Some(&now) {
                            tracing::info!(target: "pool_drivers::redis", service = sentinels.service(), master = ?now, "the Sentinels name a new master");
                            *known = Some(now);
                        }
                    }
                }
            });
        });
    }

    /// Whether `conn` is to a server other than the master the Sentinels name now.
    fn former_master(&self, conn: &RedisConnection) -> bool {
        let master = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        matches!((&*master, &conn.server), (Some(now), Some(server)) if now != server)
    }

    fn server(&self, address: &Address) -> Result<Arc<Manager>, Error> {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = servers.get(address) {
            return Ok(Arc::clone(server));
        }
        let info = self
            .node
            .clone()
            .set_addr(ConnectionAddr::Tcp(address.0.clone(), address.1));
        let server =
            Arc::new(
                Manager::new(info, self.response_timeout).map_err(|_| Error::NoServer {
                    service: self.service().to_owned(),
                    role: self.expected(),
                })?,
            );
        servers.insert(address.clone(), Arc::clone(&server));
        Ok(server)
    }

    fn expected(&self) -> &'static str {
        match self.role {
            ServerRole::Master => "master",
            ServerRole::Replica => "slave",
        }
    }

    /// `ROLE`, sent past the borrower's bookkeeping, must name the wanted role.
    async fn verify_role(&self, conn: &mut RedisConnection) -> Result<(), Error> {
        let reply: Value = ::redis::cmd("ROLE").query_async(conn.inner_mut()).await?;
        let found = match &reply {
            Value::Array(items) => match items.first() {
                Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                Some(Value::SimpleString(text)) => text.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if found == self.expected() {
            Ok(())
        } else {
            Err(Error::WrongRole {
                expected: self.expected(),
                found,
            })
        }
    }
}

impl fmt::Debug for SentinelManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelManager")
            .field("service", &self.service())
            .field("role", &self.role)
            .field("server", &self.template)
            .finish_non_exhaustive()
    }
}

impl pool_core::Manager for SentinelManager {
    type Connection = RedisConnection;
    type Error = Error;

    /// Asks the Sentinels for the server, connects, and checks its `ROLE`.
    async fn connect(&self) -> Result<RedisConnection, Error> {
        let address = self.target().await?;
        let server = self.server(&address)?;
        let mut conn = server.connect().await?;
        conn.server = Some(address);
        self.verify_role(&mut conn).await?;
        Ok(conn)
    }

    /// `ROLE` (one round trip, as `PING`): the server must still have the wanted role.
    async fn check(&self, conn: &mut RedisConnection) -> Result<(), Error> {
        self.verify_role(conn).await
    }

    async fn reset(&self, conn: &mut RedisConnection) -> Result<(), Error> {
        self.template.reset(conn).await
    }

    fn needs_reset(&self, conn: &mut RedisConnection) -> bool {
        self.template.needs_reset(conn)
    }

    /// As a single server's, and also, for a master pool, when a write was refused with
    /// `READONLY` (the server was demoted) or when the Sentinels now name another master: the
    /// next connection goes to the new master.
    fn has_broken(&self, conn: &mut RedisConnection) -> bool {
        conn.is_broken()
            || (self.role == ServerRole::Master
                && (conn.saw_read_only() || self.former_master(conn)))
    }

    fn classify(&self, error: &Error) -> ErrorKind {
        error.kind()
    }
}

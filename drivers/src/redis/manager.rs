//! [`Manager`]: opens, checks and resets Redis connections for the pool.

use std::fmt;
use std::time::Duration;

use ::redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, Pipeline, RedisConnectionInfo,
    Value,
};
use pool_core::ErrorKind;

use super::connection::RedisConnection;
use super::error::server_message;
use super::socket::{self, Failed};
use super::Error;
use crate::unknown_host::unresolved_host;
use crate::InvalidConfig;

/// Opens [`RedisConnection`]s to one server and keeps them clean between borrowers.
///
/// Made by [`Config::manager`](crate::DriverConfig::manager).
pub struct Manager {
    /// Connects without credentials or database when the connection speaks RESP2: the
    /// manager authenticates and selects itself, so a refusal comes back with the server's
    /// own words.
    client: Client,
    connection_config: AsyncConnectionConfig,
    /// The session every connection is restored to.
    session: RedisConnectionInfo,
    /// Whether `connect` must send the session setup itself (RESP2).
    setup_on_connect: bool,
    /// Host and port, for telling an unknown host from a network failure.
    tcp: Option<(String, u16)>,
}

impl Manager {
    pub(super) fn new(
        info: ConnectionInfo,
        response_timeout: Option<Duration>,
    ) -> Result<Self, InvalidConfig> {
        let session = info.redis_settings().clone();
        // With RESP3 the handshake (`HELLO 3 AUTH ...`) must come first, so the driver does it;
        // with RESP2 the manager sends `AUTH` and `SELECT` itself.
        let setup_on_connect = !session.protocol().supports_resp3();
        let connect_info = if setup_on_connect {
            let plain = RedisConnectionInfo::default().set_protocol(session.protocol());
            info.clone().set_redis_settings(plain)
        } else {
            info.clone()
        };
        let tcp = match info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                Some((host.clone(), *port))
            }
            _ => None,
        };
        let client = Client::open(connect_info).map_err(|e| {
            InvalidConfig::new("url", "cannot be used to connect to Redis").with_source(e)
        })?;
        let connection_config = AsyncConnectionConfig::new()
            // The pool bounds every connect with its own connect timeout.
            .set_connection_timeout(None)
            .set_response_timeout(response_timeout);
        Ok(Manager {
            client,
            connection_config,
            session,
            setup_on_connect,
            tcp,
        })
    }

    /// The database connections are restored to.
    pub fn database(&self) -> i64 {
        self.session.db()
    }

    /// Appends the commands that put a fresh (or `RESET`) connection into the configured
    /// session; returns the positions of the authenticating and the selecting command.
    fn push_setup(&self, pipe: &mut Pipeline) -> (Option<usize>, Option<usize>) {
        let s = &self.session;
        let auth = if s.protocol().supports_resp3() {
            pipe.cmd("HELLO").arg(3);
            if let Some(password) = s.password() {
                pipe.arg("AUTH")
                    .arg(s.username().unwrap_or("default"))
                    .arg(password);
            }
            Some(pipe.len() - 1)
        } else if let Some(password) = s.password() {
            pipe.cmd("AUTH");
            if let Some(user) = s.username() {
                pipe.arg(user);
            }
            pipe.arg(password);
            Some(pipe.len() - 1)
        } else {
            None
        };
        let select = (s.db() != 0).then(|| {
            pipe.cmd("SELECT").arg(s.db());
            pipe.len() - 1
        });
        (auth, select)
    }

    /// Sends `RESET` (when `reset`) and the session setup in one round trip.
    async fn restore(&self, conn: &mut RedisConnection, reset: bool) -> Result<(), Error> {
        let mut pipe = ::redis::pipe();
        if reset {
            pipe.cmd("RESET");
        }
        let (auth, select) = self.push_setup(&mut pipe);
        if pipe.is_empty() {
            return Ok(());
        }
        pipe.ignore_errors();
        // Sent past the session bookkeeping, which would otherwise count this setup as the
        // borrower's doing; a failure here closes the connection anyway.
        conn.session.before(std::iter::empty());
        let result: Result<Vec<Value>, _> = pipe.query_async(conn.inner_mut()).await;
        conn.session.after(std::iter::empty(), &result);
        for (i, value) in result?.iter().enumerate() {
            let Value::ServerError(e) = value else {
                continue;
            };
            let message = server_message(e);
            return Err(if Some(i) == auth {
                Error::Authentication { message }
            } else if Some(i) == select {
                Error::UnknownDatabase {
                    db: self.session.db(),
                    message,
                }
            } else {
                Error::ResetFailed { message }
            });
        }
        conn.session.mark_clean();
        Ok(())
    }

    /// Turns a failed connect into the most precise [`Error`].
    async fn connect_error(&self, error: ::redis::RedisError) -> Error {
        if error.is_io_error() && !error.is_connection_refusal() {
            // A failed name lookup is an uncategorised I/O error, which would read as
            // transient. Only on this failure path, look the name up again to tell "no such
            // host" (permanent) from a network problem.
            if let Some((host, port)) = &self.tcp {
                if let Some((host, source)) = unresolved_host([(host.as_str(), *port)]).await {
                    return Error::UnknownHost { host, source };
                }
            }
        }
        Error::from_connect(error)
    }
}

/// Whether a server's error line is the refusal of a server at its `maxclients` limit.
fn is_max_clients(message: &str) -> bool {
    message.starts_with("ERR max number of clients reached")
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the driver's own Debug, which would print the password.
        f.debug_struct("Manager")
            .field("addr", &self.tcp)
            .field("user", &self.session.username())
            .field("database", &self.session.db())
            .field("protocol", &self.session.protocol())
            .finish_non_exhaustive()
    }
}

impl pool_core::Manager for Manager {
    type Connection = RedisConnection;
    type Error = Error;

    async fn connect(&self) -> Result<RedisConnection, Error> {
        let (inner, driver) = match socket::connect(&self.client, &self.connection_config).await {
            Ok(opened) => opened,
            Err(Failed {
                refusal: Some(message),
                ..
            }) if is_max_clients(&message) => {
                return Err(Error::TooManyConnections { message });
            }
            Err(Failed { error, .. }) => return Err(self.connect_error(error).await),
        };
        let mut conn = RedisConnection::new(inner, driver, self.session.db());
        if self.setup_on_connect {
            self.restore(&mut conn, false).await?;
        }
        Ok(conn)
    }

    /// `PING`.
    async fn check(&self, conn: &mut RedisConnection) -> Result<(), Error> {
        ::redis::cmd("PING").exec_async(conn).await?;
        Ok(())
    }

    /// Nothing, unless the borrower changed the session; then `RESET` and the connection's
    /// setup (`AUTH`/`HELLO`, `SELECT`), pipelined.
    async fn reset(&self, conn: &mut RedisConnection) -> Result<(), Error> {
        if conn.session.is_dirty() {
            self.restore(conn, true).await?;
        }
        Ok(())
    }

    /// `RESET` and the connection's setup (`AUTH`/`HELLO`, `SELECT` of the configured
    /// database), pipelined in one round trip, whatever the borrower did: `RESET` discards
    /// `MULTI` and `WATCH`, the selected database, the client name, client tracking,
    /// `CLIENT REPLY` and `NO-EVICT` modes, the protocol version and the authenticated user,
    /// and the setup brings back what the configuration asks for. Needs Redis 6.2 or later,
    /// like [`reset`](pool_core::Manager::reset); an older server refuses `RESET`, and the
    /// connection is closed.
    async fn full_reset(&self, conn: &mut RedisConnection) -> Result<(), Error> {
        self.restore(conn, true).await
    }

    /// Only a borrower that changed the session leaves anything to reset.
    fn needs_reset(&self, conn: &mut RedisConnection) -> bool {
        conn.session.is_dirty()
    }

    fn has_broken(&self, conn: &mut RedisConnection) -> bool {
        conn.is_broken()
    }

    fn classify(&self, error: &Error) -> ErrorKind {
        error.kind()
    }
}

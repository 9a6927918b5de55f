//! Pools of plain TCP connections ([`tokio::net::TcpStream`]), for protocols that have no
//! driver of their own.
//!
//! A connection is opened with a connect timeout, `TCP_NODELAY` and optional TCP keepalive,
//! then an optional handshake hook runs on it ([`Config::handshake`]).
//!
//! # What the pool checks
//!
//! The pool looks at the socket without reading from it (a non-blocking `peek` of one byte),
//! so no application data is ever consumed:
//!
//! - **nothing to read**: the connection is healthy as far as TCP can tell;
//! - **end of file**: the peer closed it, so it is discarded ([`Error::Closed`]);
//! - **a socket error** (reset by the peer): discarded ([`Error::Broken`]);
//! - **bytes waiting**: on a connection nobody is using this is almost always the reply to a
//!   request whose reader went away (its future was dropped mid-request), and the next
//!   borrower would read it as the reply to its own request. Such a connection is discarded
//!   ([`Error::UnreadData`]). A protocol whose server speaks first after the handshake should
//!   read that greeting in the handshake hook.
//!
//! This look happens when a connection is returned
//! ([`has_broken`](pool_core::Manager::has_broken)), when it is next checked out
//! ([`reset`](pool_core::Manager::reset)), and in checks, which then also run the optional
//! probe hook ([`Config::probe`]) for a round trip that proves the server still answers.
//!
//! A request still unanswered when its connection is returned cannot be seen (no reply has
//! arrived yet); if the reply arrives before the next checkout, that checkout discards the
//! connection. Protocols where this matters should use a probe, or drop connections whose
//! request was cancelled with [`PooledConnection::take`](pool_core::PooledConnection::take).
//!
//! # Examples
//!
//! ```no_run
//! use pool_drivers::DriverConfig;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use pool_drivers::tcp::{AsyncReadExt, AsyncWriteExt, Config};
//!
//! let pool = Config::from_url("tcp://127.0.0.1:7000?keepalive=60s")?.build_pool_lazy()?;
//! let mut conn = pool.get().await?;
//! conn.write_all(b"PING\n").await?;
//! let mut reply = [0; 5];
//! conn.read_exact(&mut reply).await?;
//! # Ok(()) }
//! ```

mod config;
mod error;

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use pool_core::ErrorKind;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::ReadBuf;

pub use config::{BoxFuture, Config};
pub use error::{BoxError, Error, Permanent};
/// The extension traits needed to read and write a pooled stream.
pub use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// The pooled connection type.
pub use tokio::net::TcpStream;

driver_aliases!(
    Manager,
    pool: "A pool of TCP connections.",
    connection: "A TCP connection checked out of a [`Pool`]; derefs to [`TcpStream`].",
);

/// Opens and checks TCP connections for a [`Pool`]. Made by [`Config::manager`](crate::DriverConfig::manager).
pub struct Manager {
    config: Arc<Config>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .finish_non_exhaustive()
    }
}

impl Manager {
    fn new(config: Config) -> Self {
        Manager {
            config: Arc::new(config),
        }
    }

    /// Resolves the host and connects to its addresses in turn, each bounded by the connect
    /// timeout; the error of the last address is the one returned.
    async fn open(&self) -> Result<TcpStream, Error> {
        let config = &*self.config;
        let addrs = tokio::net::lookup_host((config.host.as_str(), config.port))
            .await
            .map_err(|source| Error::UnknownHost {
                host: config.host.clone(),
                source,
            })?;
        let mut last = None;
        for addr in addrs {
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(source)) => last = Some(Error::Connect { addr, source }),
                Err(_) => {
                    last = Some(Error::ConnectTimeout {
                        addr,
                        timeout: config.connect_timeout,
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::NoAddress {
            host: config.host.clone(),
        }))
    }

    fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(self.config.nodelay)?;
        if let Some(idle) = self.config.keepalive {
            SockRef::from(stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(())
    }
}

/// What a non-consuming look at the socket found.
enum Peer {
    /// Nothing to read: healthy as far as TCP can tell.
    Quiet,
    Closed,
    UnreadData,
    Failed(io::Error),
}

/// Peeks at one byte without waiting and without consuming it.
///
/// The no-op waker is enough: nobody waits on an idle connection, and the next real read
/// registers its own waker.
fn look(stream: &TcpStream) -> Peer {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_peek(&mut cx, &mut buf) {
        Poll::Pending => Peer::Quiet,
        Poll::Ready(Ok(0)) => Peer::Closed,
        Poll::Ready(Ok(_)) => Peer::UnreadData,
        Poll::Ready(Err(e)) => Peer::Failed(e),
    }
}

fn quiet(stream: &TcpStream) -> Result<(), Error> {
    match look(stream) {
        Peer::Quiet => Ok(()),
        Peer::Closed => Err(Error::Closed),
        Peer::UnreadData => Err(Error::UnreadData),
        Peer::Failed(e) => Err(Error::Broken(e)),
    }
}

impl pool_core::Manager for Manager {
    type Connection = TcpStream;
    type Error = Error;

    async fn connect(&self) -> Result<TcpStream, Error> {
        let mut stream = self.open().await?;
        self.configure(&stream).map_err(Error::Socket)?;
        if let Some(handshake) = &self.config.handshake {
            handshake(&mut stream).await.map_err(Error::Handshake)?;
        }
        Ok(stream)
    }

    async fn check(&self, conn: &mut TcpStream) -> Result<(), Error> {
        quiet(conn)?;
        if let Some(probe) = &self.config.probe {
            probe(conn).await.map_err(Error::Probe)?;
        }
        Ok(())
    }

    /// A TCP stream has no session state to clean; this only makes sure the previous borrower
    /// left no unread reply behind and the peer has not closed.
    async fn reset(&self, conn: &mut TcpStream) -> Result<(), Error> {
        quiet(conn)
    }

    fn has_broken(&self, conn: &mut TcpStream) -> bool {
        !matches!(look(conn), Peer::Quiet)
    }

    fn classify(&self, error: &Error) -> ErrorKind {
        error.kind()
    }
}

//! [`Connector`] and [`Handshake`]: TLS negotiation on a new socket, as the `sslmode` says,
//! which hands the result to a [`PgStream`].

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
#[cfg(feature = "tls")]
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

use super::io::{Inner, PgStream};
#[cfg(feature = "tls")]
use super::tags::ssl;
use super::tracker::{BackendKey, Tracker};
use crate::postgres::config::SslMode;

/// The server answered an `SSLRequest` with "no" while the `sslmode` demands TLS.
#[derive(Debug)]
pub(crate) struct TlsRefused(pub(crate) SslMode);

impl fmt::Display for TlsRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server does not accept TLS connections, and sslmode={} requires TLS",
            self.0
        )
    }
}

impl StdError for TlsRefused {}

/// Makes the per-connection [`Handshake`]s `tokio_postgres` asks for, and keeps the tracker of
/// the latest one so the manager can pick it up once the connect succeeded.
#[derive(Clone)]
pub(crate) struct Connector {
    mode: SslMode,
    /// TLS without an `SSLRequest` first (`sslnegotiation=direct`, PostgreSQL 17).
    direct_tls: bool,
    #[cfg(feature = "tls")]
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    latest: Arc<Mutex<Option<Arc<Tracker>>>>,
    /// Set on a connector for cancel requests: the session whose real key they carry.
    cancel: Option<BackendKey>,
    /// Sessions send only unnamed statements (PgBouncer mode, see `unnamed`).
    unnamed_statements: bool,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("mode", &self.mode)
            .field("direct_tls", &self.direct_tls)
            .field("cancel", &self.cancel)
            .field("unnamed_statements", &self.unnamed_statements)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(
        mode: SslMode,
        direct_tls: bool,
        unnamed_statements: bool,
        #[cfg(feature = "tls")] tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    ) -> Self {
        Connector {
            mode,
            direct_tls,
            #[cfg(feature = "tls")]
            tls,
            latest: Arc::default(),
            cancel: None,
            unnamed_statements,
        }
    }

    /// A copy with its own tracker slot, for one connect.
    pub(crate) fn fresh(&self) -> Self {
        Connector {
            latest: Arc::default(),
            ..self.clone()
        }
    }

    /// A copy for `tokio_postgres`'s `CancelToken::cancel_query`: it negotiates TLS as the
    /// sessions do, and puts `key`'s real secret into the cancel request the token writes
    /// (which quotes the made-up one). It refuses to send anything else.
    pub(crate) fn for_cancel(&self, key: BackendKey) -> Self {
        Connector {
            latest: Arc::default(),
            cancel: Some(key),
            ..self.clone()
        }
    }

    /// The tracker of the last handshake made.
    pub(crate) fn take_tracker(&self) -> Option<Arc<Tracker>> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl MakeTlsConnect<Socket> for Connector {
    type Stream = PgStream;
    type TlsConnect = Handshake;
    type Error = std::convert::Infallible;

    fn make_tls_connect(&mut self, host: &str) -> Result<Handshake, Self::Error> {
        let tracker = Arc::new(Tracker::default());
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&tracker));
        Ok(Handshake {
            mode: self.mode,
            direct_tls: self.direct_tls,
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
            host: host.to_owned(),
            tracker,
            cancel: self.cancel,
            unnamed_statements: self.unnamed_statements,
        })
    }
}

/// Negotiates TLS on one new socket, as the `sslmode` says.
pub(crate) struct Handshake {
    mode: SslMode,
    direct_tls: bool,
    #[cfg(feature = "tls")]
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    host: String,
    tracker: Arc<Tracker>,
    cancel: Option<BackendKey>,
    unnamed_statements: bool,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl TlsConnect<Socket> for Handshake {
    type Stream = PgStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<PgStream, BoxError>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let inner = self.negotiate(socket).await?;
            Ok(PgStream::new(
                inner,
                self.tracker,
                self.cancel,
                self.unnamed_statements,
            ))
        })
    }
}

impl Handshake {
    #[cfg(not(feature = "tls"))]
    async fn negotiate(&self, socket: Socket) -> Result<Inner, BoxError> {
        // Without the `tls` feature the configuration only admits `disable` and `prefer`, and
        // `prefer` cannot be honoured, so the socket stays plain.
        let _ = (self.mode, self.direct_tls);
        Ok(Inner::Plain(socket))
    }

    #[cfg(feature = "tls")]
    async fn negotiate(&self, mut socket: Socket) -> Result<Inner, BoxError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let Some(tls) = self.tls.clone().filter(|_| self.mode != SslMode::Disable) else {
            return Ok(Inner::Plain(socket));
        };
        if !self.direct_tls {
            socket.write_all(&ssl::REQUEST).await?;
            let mut answer = [0u8];
            socket.read_exact(&mut answer).await?;
            match answer[0] {
                ssl::ACCEPTED => {}
                ssl::REFUSED if self.mode == SslMode::Prefer => return Ok(Inner::Plain(socket)),
                ssl::REFUSED => return Err(Box::new(TlsRefused(self.mode))),
                other => {
                    return Err(Box::new(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected answer {other:#04x} to the TLS request"),
                    )))
                }
            }
        }
        let mut tls = tls;
        let handshake = MakeTlsConnect::<Socket>::make_tls_connect(&mut tls, &self.host)?;
        let stream = handshake.connect(socket).await?;
        Ok(Inner::Tls(Box::new(stream)))
    }
}

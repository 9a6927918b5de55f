//! [`Error`]: why opening or checking a TCP connection failed, and [`Permanent`], the marker a
//! handshake uses to say that retrying cannot help.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use pool_core::ErrorKind;

/// The error type hooks return: any error, boxed, so `?` works on whatever the hook calls.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why opening, resetting or checking a TCP connection failed.
///
/// `Display` says what this driver was doing; the operating system's or the hook's own error is
/// the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host name could not be resolved (unknown host, or no DNS answer). Permanent.
    #[error("could not resolve host `{host}`")]
    UnknownHost {
        /// The host name from the configuration.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The host name resolved to no address at all. Permanent.
    #[error("host `{host}` resolved to no address")]
    NoAddress {
        /// The host name from the configuration.
        host: String,
    },
    /// The TCP connect to `addr` failed (refused, unreachable, reset). Transient.
    #[error("could not connect to {addr}")]
    Connect {
        /// The address of the last attempt.
        addr: SocketAddr,
        /// The operating system's error, e.g. `ConnectionRefused`.
        #[source]
        source: io::Error,
    },
    /// The TCP connect to `addr` did not finish within [`Config::connect_timeout`]. Transient.
    ///
    /// [`Config::connect_timeout`]: super::Config::connect_timeout
    #[error("connecting to {addr} took longer than {timeout:?}")]
    ConnectTimeout {
        /// The address of the last attempt.
        addr: SocketAddr,
        /// The configured limit.
        timeout: Duration,
    },
    /// Setting `TCP_NODELAY` or keepalive on a new socket failed. Transient.
    #[error("could not set the socket options")]
    Socket(#[source] io::Error),
    /// The handshake hook failed. Transient, unless the hook's error is a [`Permanent`].
    #[error("the handshake failed")]
    Handshake(#[source] BoxError),
    /// The health probe hook failed.
    #[error("the health probe failed")]
    Probe(#[source] BoxError),
    /// The peer closed the connection (a read would return end of file).
    #[error("the peer closed the connection")]
    Closed,
    /// Bytes from the peer were waiting while the connection sat in the pool: most likely the
    /// reply to a request whose reader went away, which the next borrower must not read.
    #[error("unread data from the peer was waiting on an idle connection")]
    UnreadData,
    /// The socket reported an error (reset by the peer, for instance).
    #[error("the connection is broken")]
    Broken(#[source] io::Error),
}

impl Error {
    /// Whether retrying can help: see [`pool_core::Manager::classify`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            // A name that does not resolve now will not resolve in 50 ms either; the caller
            // should hear about the typo at once. This includes a DNS server that does not
            // answer, which we cannot tell apart portably from the resolver's error.
            Error::UnknownHost { .. } | Error::NoAddress { .. } => ErrorKind::Permanent,
            Error::Handshake(e) if e.is::<Permanent>() => ErrorKind::Permanent,
            _ => ErrorKind::Transient,
        }
    }
}

/// Wraps a handshake error that retrying cannot fix (rejected credentials, an unsupported
/// protocol version), so the pool hands it to the caller at once instead of retrying until the
/// acquire timeout.
///
/// # Examples
///
/// ```
/// use pool_drivers::tcp::{BoxError, Permanent};
///
/// fn reject(reply: &str) -> Result<(), BoxError> {
///     Err(Permanent::new(format!("server refused our token: {reply}")).into())
/// }
/// # assert!(reject("no").is_err());
/// ```
#[derive(Debug)]
pub struct Permanent(BoxError);

impl Permanent {
    /// Marks `error` as permanent.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Permanent(error.into())
    }

    /// The wrapped error.
    pub fn into_inner(self) -> BoxError {
        self.0
    }
}

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The marker adds no words of its own; the wrapped error is what the user needs to see.
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Permanent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

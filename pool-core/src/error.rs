//! Errors returned by the pool. Each `Display` describes its own layer; the cause is reachable
//! through [`std::error::Error::source`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why one attempt to open a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError<E> {
    /// The manager's `connect` returned an error.
    #[error(transparent)]
    Backend(E),
    /// The manager's `connect` did not finish within the connect timeout.
    #[error("opening a connection took longer than the connect timeout of {0:?}")]
    Timeout(Duration),
    /// The manager's `connect` panicked.
    #[error("opening a connection panicked: {0}")]
    Panic(String),
}

impl<E> ConnectError<E> {
    /// The manager's own error, if that is what this is.
    pub fn backend(&self) -> Option<&E> {
        match self {
            ConnectError::Backend(e) => Some(e),
            _ => None,
        }
    }
}

/// An acquire failed.
///
/// `E` is the [`Manager::Error`](crate::Manager::Error) of the pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// Opening a connection failed with an error the manager classified as
    /// [`Permanent`](crate::ErrorKind::Permanent), so the pool did not wait for a retry.
    #[error("could not open a connection")]
    Connect(#[source] Arc<ConnectError<E>>),
    /// No connection became available before the deadline; says what the pool was doing.
    #[error(transparent)]
    Timeout(TimeoutError<E>),
    /// The pool was closed with [`Pool::close`](crate::Pool::close).
    #[error("the pool is closed")]
    Closed,
    /// Too many callers were already waiting ([`Config::max_waiters`](crate::Config::max_waiters)).
    #[error("too many callers waiting for a connection (limit {max_waiters})")]
    Rejected {
        /// The configured limit.
        max_waiters: usize,
    },
    /// [`Pool::try_get`](crate::Pool::try_get) found no idle connection.
    #[error("no idle connection (try_get does not wait)")]
    NoIdle,
    /// A [`ReadPool`](crate::roles::ReadPool) had no healthy replica and was told not to
    /// fall back to the primary.
    #[error("no healthy replica among {replicas}, and falling back to the primary is off")]
    NoReplica {
        /// How many replicas the read pool has.
        replicas: usize,
    },
    /// [`Pool::get_retrying`](crate::Pool::get_retrying) gave up: the server stayed
    /// unreachable. A web handler answers 503 to this.
    #[error("service unavailable: no connection after {attempts} attempts in {waited:?}")]
    ServiceUnavailable {
        /// How many acquires were tried.
        attempts: u32,
        /// How long it tried in all.
        waited: Duration,
        /// The last attempt's timeout, with the last connect error in it.
        #[source]
        last: Box<TimeoutError<E>>,
    },
}

impl<E> Error<E> {
    /// The manager's error behind this one: the permanent connect error, or the last failed
    /// connect attempt before a timeout.
    pub fn backend(&self) -> Option<&E> {
        match self {
            Error::Connect(e) => e.backend(),
            Error::Timeout(t) => t.last_connect_error().and_then(ConnectError::backend),
            Error::ServiceUnavailable { last, .. } => {
                last.last_connect_error().and_then(ConnectError::backend)
            }
            _ => None,
        }
    }

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// True when the server could not be reached: [`Error::ServiceUnavailable`], or a
    /// timeout while connects were failing. What a web handler answers with 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::ServiceUnavailable { .. } => true,
            Error::Timeout(t) => t.last_connect_error().is_some(),
            _ => false,
        }
    }
}

/// What an acquire was waiting for when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutStage {
    /// Waiting in the queue for a connection to be returned or opened.
    Waiting,
    /// Resetting or checking a connection on checkout.
    Preparing,
}

/// Details of an acquire that timed out.
#[derive(Debug)]
pub struct TimeoutError<E> {
    pub(crate) waited: Duration,
    pub(crate) stage: TimeoutStage,
    pub(crate) in_use: usize,
    pub(crate) max_size: usize,
    pub(crate) waiting: usize,
    pub(crate) last_error: Option<Arc<ConnectError<E>>>,
}

impl<E> TimeoutError<E> {
    /// How long the caller waited in all.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// What the caller was waiting for.
    pub fn stage(&self) -> TimeoutStage {
        self.stage
    }

    /// The error of the most recent failed connect, when connects were failing at the time.
    pub fn last_connect_error(&self) -> Option<&ConnectError<E>> {
        self.last_error.as_deref()
    }
}

impl<E> fmt::Display for TimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?} ", self.waited)?;
        match self.stage {
            TimeoutStage::Waiting => f.write_str("waiting for a connection")?,
            TimeoutStage::Preparing => f.write_str("resetting or checking a connection")?,
        }
        if self.last_error.is_some() {
            f.write_str(" while opening connections kept failing")
        } else {
            write!(
                f,
                " ({} of {} in use, {} others waiting)",
                self.in_use, self.max_size, self.waiting
            )
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TimeoutError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.last_error
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A configuration value that cannot work, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pool configuration: `{field}` {problem}")]
pub struct ConfigError {
    /// The offending field of [`Config`](crate::Config).
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Building a pool failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError<E> {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// One of the [`initial_size`](crate::Config::initial_size) connections could not be opened.
    #[error("could not open the initial connections")]
    Connect(#[source] ConnectError<E>),
}

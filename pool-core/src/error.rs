//! Errors returned by the pool. Each `Display` describes its own layer; the cause is reachable
//! through [`std::error::Error::source`], and the alternate form (`{:#}`) prints the whole chain.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Writes an error's own message and, in the alternate form (`{:#}`), the message of every error
/// in its [`source`](StdError::source) chain after it, joined by `": "`.
///
/// Plain `{}` keeps to one layer, so a caller that prints the chain itself (as `anyhow` and
/// `tracing` subscribers do) does not see a cause twice; `{:#}` is for the many who log with one
/// format string and would otherwise never read the server's reason.
fn write_layers(
    f: &mut fmt::Formatter<'_>,
    own: impl fmt::Display,
    source: Option<&(dyn StdError + 'static)>,
) -> fmt::Result {
    // `write!` with a fresh format string: the alternate flag is not passed on to the layers.
    write!(f, "{own}")?;
    if f.alternate() {
        let mut next = source;
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
    }
    Ok(())
}

/// Why one attempt to open a connection failed.
///
/// `{}` prints this layer only; `{:#}` adds every cause below it.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError<E> {
    /// The manager's `connect` returned an error. Displayed as that error (its message is
    /// this layer's message).
    Backend(E),
    /// The manager's `connect` did not finish within the connect timeout.
    Timeout(Duration),
    /// The manager's `connect` panicked.
    Panic(String),
    /// The new connection was reported broken by
    /// [`Manager::has_broken`](crate::Manager::has_broken) before its first use, so it was
    /// closed and counted as a failed connect (retried with backoff like any other).
    BrokenAtOnce,
}

impl<E: StdError + 'static> fmt::Display for ConnectError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Backend(e) => write_layers(f, e, e.source()),
            ConnectError::Timeout(limit) => write!(
                f,
                "opening a connection took longer than the connect timeout of {limit:?}"
            ),
            ConnectError::Panic(message) => write!(f, "opening a connection panicked: {message}"),
            ConnectError::BrokenAtOnce => f.write_str(
                "a new connection was reported broken (Manager::has_broken) before its first use",
            ),
        }
    }
}

impl<E: StdError + 'static> StdError for ConnectError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            // The manager's error stands for this layer, so its causes come next.
            ConnectError::Backend(e) => e.source(),
            _ => None,
        }
    }
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
///
/// `Display` describes this layer only ("could not open a connection"); the cause, such as the
/// server's "password authentication failed", is its [`source`](StdError::source). Log with the
/// alternate form, `{:#}`, to print the whole chain on one line:
///
/// ```
/// # use pool_core::{ConnectError, Error};
/// # use std::sync::Arc;
/// let refused = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "password authentication failed");
/// let error: Error<std::io::Error> = Error::Connect(Arc::new(ConnectError::Backend(refused)));
/// assert_eq!(error.to_string(), "could not open a connection");
/// assert_eq!(format!("{error:#}"), "could not open a connection: password authentication failed");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// Opening a connection failed with an error the manager classified as
    /// [`Permanent`](crate::ErrorKind::Permanent), so the pool did not wait for a retry.
    Connect(Arc<ConnectError<E>>),
    /// No connection became available before the deadline; says what the pool was doing.
    Timeout(TimeoutError<E>),
    /// The pool was closed with [`Pool::close`](crate::Pool::close).
    Closed,
    /// Too many callers were already waiting ([`Config::max_waiters`](crate::Config::max_waiters),
    /// or [`Config::max_waiters_by_priority`](crate::Config::max_waiters_by_priority) for the
    /// caller's priority).
    Rejected {
        /// The configured limit that was reached.
        max_waiters: usize,
    },
    /// [`Pool::try_get`](crate::Pool::try_get) found no idle connection.
    NoIdle,
    /// The calling task holds a connection of this pool and asked for another that can never
    /// come: the pool is full and every connection is held by a task waiting for one. Only
    /// with [`SelfDeadlock::Fail`](crate::SelfDeadlock::Fail).
    SelfDeadlock {
        /// Where the task checked out the connection it holds.
        held_at: &'static std::panic::Location<'static>,
        /// Where it asked for another.
        asked_at: &'static std::panic::Location<'static>,
    },
    /// [`Pool::get_retrying`](crate::Pool::get_retrying) gave up: the server stayed
    /// unreachable. A web handler answers 503 to this.
    ServiceUnavailable {
        /// How many acquires were tried.
        attempts: u32,
        /// How long it tried in all.
        waited: Duration,
        /// The last attempt's timeout, with the last connect error in it.
        last: Box<TimeoutError<E>>,
    },
}

impl<E: StdError + 'static> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.source();
        match self {
            Error::Connect(_) => write_layers(f, "could not open a connection", source),
            // The timeout is this layer: its own message, then its causes.
            Error::Timeout(timeout) => write_layers(f, timeout, source),
            Error::Closed => f.write_str("the pool is closed"),
            Error::Rejected { max_waiters } => write!(
                f,
                "too many callers waiting for a connection (limit {max_waiters})"
            ),
            Error::NoIdle => f.write_str("no idle connection (try_get does not wait)"),
            Error::SelfDeadlock { held_at, asked_at } => write!(
                f,
                "self-deadlock: this task holds a connection checked out at {held_at} and asked \
                 for another at {asked_at}, but every connection is held by a task waiting for one"
            ),
            Error::ServiceUnavailable {
                attempts, waited, ..
            } => write_layers(
                f,
                format_args!(
                    "service unavailable: no connection after {attempts} attempts in {waited:?}"
                ),
                source,
            ),
        }
    }
}

impl<E: StdError + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Connect(cause) => Some(&**cause),
            Error::Timeout(timeout) => timeout.source(),
            Error::ServiceUnavailable { last, .. } => Some(&**last),
            _ => None,
        }
    }
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

impl<E: StdError + 'static> fmt::Display for TimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_layers(f, Layer(self), self.source())
    }
}

/// A [`TimeoutError`]'s own message, without its causes.
struct Layer<'a, E>(&'a TimeoutError<E>);

impl<E> fmt::Display for Layer<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(f, "timed out after {:?} ", t.waited)?;
        match t.stage {
            TimeoutStage::Waiting => f.write_str("waiting for a connection")?,
            TimeoutStage::Preparing => f.write_str("resetting or checking a connection")?,
        }
        if t.last_error.is_some() {
            f.write_str(" while opening connections kept failing")
        } else {
            write!(
                f,
                " ({} of {} in use, {} others waiting)",
                t.in_use, t.max_size, t.waiting
            )
        }
    }
}

impl<E: StdError + 'static> StdError for TimeoutError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.last_error
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
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

/// Why [`Pool::add`](crate::Pool::add) refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddRefusal {
    /// Open and opening connections already reach `max_size`.
    Full,
    /// [`Manager::has_broken`](crate::Manager::has_broken) said the connection is broken.
    Broken,
    /// The pool is closed.
    Closed,
}

/// A connection [`Pool::add`](crate::Pool::add) refused, handed back with the reason.
pub struct AddError<C> {
    conn: C,
    refusal: AddRefusal,
}

impl<C> AddError<C> {
    pub(crate) fn new(conn: C, refusal: AddRefusal) -> Self {
        AddError { conn, refusal }
    }

    /// Why it was refused.
    pub fn refusal(&self) -> AddRefusal {
        self.refusal
    }

    /// The connection, back to the caller.
    pub fn into_connection(self) -> C {
        self.conn
    }
}

// Not derived: the connection need not be `Debug`, and may hold what should not be printed.
impl<C> fmt::Debug for AddError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddError")
            .field("refusal", &self.refusal)
            .finish_non_exhaustive()
    }
}

impl<C> fmt::Display for AddError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.refusal {
            AddRefusal::Full => "the pool has no room for another connection",
            AddRefusal::Broken => "the connection is broken",
            AddRefusal::Closed => "the pool is closed",
        })
    }
}

impl<C> StdError for AddError<C> {}

/// Building a pool failed. `{:#}` prints the cause too.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError<E> {
    /// The configuration is invalid.
    Config(ConfigError),
    /// One of the [`initial_size`](crate::Config::initial_size) connections could not be opened.
    Connect(ConnectError<E>),
}

impl<E> From<ConfigError> for BuildError<E> {
    fn from(error: ConfigError) -> Self {
        BuildError::Config(error)
    }
}

impl<E: StdError + 'static> fmt::Display for BuildError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(error) => fmt::Display::fmt(error, f),
            BuildError::Connect(_) => {
                write_layers(f, "could not open the initial connections", self.source())
            }
        }
    }
}

impl<E: StdError + 'static> StdError for BuildError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            BuildError::Config(error) => error.source(),
            BuildError::Connect(cause) => Some(cause),
        }
    }
}

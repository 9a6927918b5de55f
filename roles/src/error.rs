//! [`Error`]: what a role pool's checkout can fail with, the pool's own errors and the one
//! failure only read/write splitting has.

use std::error::Error as StdError;
use std::fmt;

/// Why a checkout from a [`ReadPool`](crate::ReadPool) or [`DatabasePools`](crate::DatabasePools)
/// failed.
///
/// `Display` says what this layer saw; the pool's error and its causes are reachable through
/// `source()` (and `{:#}` of the pool's error prints them).
///
/// ```
/// use pool_roles::Error;
///
/// let error: Error<std::io::Error> = Error::NoReplica { replicas: 2 };
/// assert_eq!(
///     error.to_string(),
///     "no healthy replica among 2, and falling back to the primary is off"
/// );
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The pool underneath failed (a timeout, a permanent connect error, a closed pool...).
    Pool(pool_core::Error<E>),
    /// A [`ReadPool`](crate::ReadPool) had no healthy replica and was told not to fall back to
    /// the primary.
    NoReplica {
        /// How many replicas the read pool has.
        replicas: usize,
    },
}

impl<E> Error<E> {
    /// The pool's error, unless this one is the read pool's own.
    pub fn pool_error(&self) -> Option<&pool_core::Error<E>> {
        match self {
            Error::Pool(e) => Some(e),
            Error::NoReplica { .. } => None,
        }
    }

    /// The manager's error behind this one, as [`pool_core::Error::backend`].
    pub fn backend(&self) -> Option<&E> {
        self.pool_error().and_then(pool_core::Error::backend)
    }

    /// True for a pool's [`pool_core::Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.pool_error().is_some_and(pool_core::Error::is_timeout)
    }

    /// As [`pool_core::Error::is_unavailable`]; false for [`Error::NoReplica`], which is a
    /// setting's choice rather than an unreachable server.
    pub fn is_unavailable(&self) -> bool {
        self.pool_error()
            .is_some_and(pool_core::Error::is_unavailable)
    }
}

impl<E> From<pool_core::Error<E>> for Error<E> {
    fn from(error: pool_core::Error<E>) -> Self {
        Error::Pool(error)
    }
}

impl<E: StdError + 'static> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The pool's error is this layer: a read pool adds nothing to what it says.
            Error::Pool(e) => fmt::Display::fmt(e, f),
            Error::NoReplica { replicas } => write!(
                f,
                "no healthy replica among {replicas}, and falling back to the primary is off"
            ),
        }
    }
}

impl<E: StdError + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Pool(e) => e.source(),
            Error::NoReplica { .. } => None,
        }
    }
}

//! [`Replaceable`]: a manager that can be swapped while its pool runs, for credentials or an
//! address that change at run time ([`Pool::replace_manager`]).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::manager::{ErrorKind, Manager};
use crate::pool::Pool;

/// Wraps a [`Manager`] so the pool's connections can be made by another one from now on, with
/// [`Pool::replace_manager`]: new credentials, a new address, any new connect settings.
///
/// The connections are the inner manager's own (`Connection` and `Error` are the same types),
/// so code that uses them does not change. Each call is passed on to the manager in force when
/// it starts; the managers are swapped whole, so a connect sees either the old settings or
/// the new ones, never a mix.
///
/// A pool that never replaces its manager does not need this: the plain manager costs
/// nothing extra, while this one takes a short lock for every call.
///
/// # Examples
///
/// ```
/// use pool_core::{Manager, Pool, Replaceable};
///
/// /// Connections that remember which server "address" they were opened for.
/// struct Address(&'static str);
///
/// impl Manager for Address {
///     type Connection = &'static str;
///     type Error = std::io::Error;
///
///     async fn connect(&self) -> Result<&'static str, std::io::Error> {
///         Ok(self.0)
///     }
///
///     async fn check(&self, _: &mut &'static str) -> Result<(), std::io::Error> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(Replaceable::new(Address("db-1"))).build().await?;
/// assert_eq!(*pool.get().await?, "db-1");
/// pool.replace_manager(Address("db-2"));
/// assert_eq!(*pool.get().await?, "db-2", "the idle db-1 connection was closed");
/// # Ok(())
/// # }
/// ```
pub struct Replaceable<M> {
    current: Mutex<Arc<M>>,
}

impl<M> Replaceable<M> {
    /// Starts with `manager`.
    pub fn new(manager: M) -> Self {
        Replaceable {
            current: Mutex::new(Arc::new(manager)),
        }
    }

    /// The manager in force now.
    pub fn current(&self) -> Arc<M> {
        // Only an `Arc` is cloned or stored under the lock: no user code runs there, so a
        // poisoned lock still holds a whole value.
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Swaps the manager; calls already started finish with the old one. Use
    /// [`Pool::replace_manager`], which also retires the old manager's connections.
    fn set(&self, manager: M) {
        let old = std::mem::replace(
            &mut *self.current.lock().unwrap_or_else(PoisonError::into_inner),
            Arc::new(manager),
        );
        // Dropped after the lock is released: dropping a manager is user code.
        drop(old);
    }
}

impl<M: fmt::Debug> fmt::Debug for Replaceable<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replaceable")
            .field("current", &self.current())
            .finish()
    }
}

// Every method is passed on, those with defaults included, so the inner manager's own
// answers apply; a method added to `Manager` must be passed on here too.
impl<M: Manager> Manager for Replaceable<M> {
    type Connection = M::Connection;
    type Error = M::Error;

    fn connect(&self) -> impl Future<Output = Result<M::Connection, M::Error>> + Send {
        // Taken when the connect starts, so the whole attempt uses one manager.
        let manager = self.current();
        async move { manager.connect().await }
    }

    fn check(&self, conn: &mut M::Connection) -> impl Future<Output = Result<(), M::Error>> + Send {
        let manager = self.current();
        async move { manager.check(conn).await }
    }

    fn reset(&self, conn: &mut M::Connection) -> impl Future<Output = Result<(), M::Error>> + Send {
        let manager = self.current();
        async move { manager.reset(conn).await }
    }

    fn needs_reset(&self, conn: &mut M::Connection) -> bool {
        self.current().needs_reset(conn)
    }

    fn has_broken(&self, conn: &mut M::Connection) -> bool {
        self.current().has_broken(conn)
    }

    fn classify(&self, error: &M::Error) -> ErrorKind {
        self.current().classify(error)
    }
}

impl<M: Manager> Pool<Replaceable<M>> {
    /// Makes every connection from now on with `manager` (new credentials, a new address):
    /// idle connections are closed now, connections in use are closed when they come back
    /// (their holders finish their work first), connects already under way are closed when
    /// they finish instead of being pooled, and the connect backoff starts over, so the next
    /// acquire connects with the new settings at once.
    ///
    /// A connection that is being checked out at that very moment counts as in use: it is
    /// handed out (its reset and check may already be the new manager's) and closed when it
    /// comes back. The pool's configuration ([`Pool::update_config`]) is separate and stays
    /// as it is.
    ///
    /// Takes effect before it returns; it never waits, so there is nothing to cancel.
    pub fn replace_manager(&self, manager: M) {
        // The swap comes first: a connect that read the pool's generation before the bump
        // below may have picked up either manager, and is retired either way; a connect that
        // reads the new generation can only see the new manager.
        self.manager().set(manager);
        self.signal_recovery();
    }
}

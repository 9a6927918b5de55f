//! [`PartitionManager`]: wraps a partition's [`Manager`] so that every connection it opens first
//! takes room in the shared [`Budget`](crate::Budget), and carries that room until it is closed.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use pool_core::{ErrorKind, Manager};

use crate::budget::{Budget, BudgetPermit, LedgerId};
use crate::error::PartitionError;

/// The manager of a partition's pool: the wrapped manager, with each connect first waiting
/// (fairly, see [`Budget`]) for room in the shared budget.
pub struct PartitionManager<M> {
    inner: M,
    budget: Budget,
    ledger: LedgerId,
    budget_wait: Duration,
}

impl<M> fmt::Debug for PartitionManager<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionManager")
            .field("budget_wait", &self.budget_wait)
            .finish_non_exhaustive()
    }
}

impl<M> PartitionManager<M> {
    pub(crate) fn new(inner: M, budget: Budget, ledger: LedgerId, budget_wait: Duration) -> Self {
        PartitionManager {
            inner,
            budget,
            ledger,
            budget_wait,
        }
    }

    /// The wrapped manager.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

/// A connection of a partition: the wrapped connection (it derefs to it) and its room in the
/// shared budget, given back when the connection is closed.
pub struct PartitionConnection<C> {
    conn: C,
    permit: BudgetPermit,
    /// How many times the pool asked [`Manager::has_broken`] about it: as it was opened, then
    /// each time it was handed out and each time it came back, in turn. A recall is honoured
    /// only as the connection comes back (the third look, the fifth, ...): at the opening a
    /// `true` would count as a failed connect, and at a hand-out it would take the connection
    /// from the caller it was opened or kept for, so partitions taking turns could each lose
    /// their connection before using it.
    looks: u32,
}

impl<C> PartitionConnection<C> {
    /// The wrapped connection.
    pub fn get_ref(&self) -> &C {
        &self.conn
    }

    /// The wrapped connection, mutably.
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C> Deref for PartitionConnection<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> DerefMut for PartitionConnection<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C: fmt::Debug> fmt::Debug for PartitionConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionConnection")
            .field("conn", &self.conn)
            .field("permit", &self.permit)
            .finish()
    }
}

impl<C> PartitionConnection<C> {
    /// Whether the budget recalled this connection's room; if so, the pool must close it.
    pub(crate) fn recalled(&self) -> bool {
        self.permit.take_recall()
    }
}

impl<M: Manager> Manager for PartitionManager<M> {
    type Connection = PartitionConnection<M::Connection>;
    type Error = PartitionError<M::Error>;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let permit = tokio::time::timeout(self.budget_wait, self.budget.acquire(self.ledger))
            .await
            .map_err(|_| PartitionError::BudgetExhausted {
                capacity: self.budget.capacity(),
                waited: self.budget_wait,
            })?;
        // A failed connect drops the permit: the room goes back at once.
        let conn = self
            .inner
            .connect()
            .await
            .map_err(PartitionError::Backend)?;
        Ok(PartitionConnection {
            conn,
            permit,
            looks: 0,
        })
    }

    async fn check(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.inner
            .check(&mut conn.conn)
            .await
            .map_err(PartitionError::Backend)
    }

    async fn reset(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.inner
            .reset(&mut conn.conn)
            .await
            .map_err(PartitionError::Backend)
    }

    fn needs_reset(&self, conn: &mut Self::Connection) -> bool {
        self.inner.needs_reset(&mut conn.conn)
    }

    /// Broken for the wrapped manager, or recalled by the budget: a connection returned while
    /// its partition owes the budget room is closed, which gives the room to the partition
    /// that needs it.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        if self.inner.has_broken(&mut conn.conn) {
            return true;
        }
        conn.looks = conn.looks.saturating_add(1);
        let returned = conn.looks >= 3 && conn.looks % 2 == 1;
        returned && conn.recalled()
    }

    fn classify(&self, error: &Self::Error) -> ErrorKind {
        match error {
            PartitionError::BudgetExhausted { .. } => ErrorKind::Transient,
            PartitionError::Backend(e) => self.inner.classify(e),
        }
    }
}

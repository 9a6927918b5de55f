//! The ledger: where each of a pool's connections is.
//!
//! A connection is idle (kept here), in use (counted here while a caller, a reset or check, a
//! keepalive or a hand-off to a waiter holds it), or in hand: taken out of one place by code
//! holding the pool's lock, which puts it in another (idle, in use, or closed) before the lock
//! is released. Connects under way are counted apart: they are not connections yet. The counts
//! change only through the operations below, each named for the move it makes, so the pool's
//! size is always `idle + in use` and no connection is counted twice.

use crate::config::IdleOrder;
use crate::connection::Live;
use crate::idle::IdleList;

pub(crate) struct Ledger<C> {
    idle: IdleList<C>,
    in_use: usize,
    connecting: usize,
}

impl<C> Ledger<C> {
    pub(crate) fn new() -> Self {
        Ledger {
            idle: IdleList::new(),
            in_use: 0,
            connecting: 0,
        }
    }

    /// Open connections: idle or in use.
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.idle.len() + self.in_use
    }

    /// Idle connections.
    #[inline]
    pub(crate) fn idle(&self) -> usize {
        self.idle.len()
    }

    /// Connections in use.
    #[inline]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }

    /// Connects under way.
    #[inline]
    pub(crate) fn connecting(&self) -> usize {
        self.connecting
    }

    /// Idle to in use: the next idle connection in `order`.
    #[inline]
    pub(crate) fn check_out(&mut self, order: IdleOrder) -> Option<Live<C>> {
        let live = match order {
            IdleOrder::Fifo => self.idle.pop_oldest(),
            IdleOrder::Lifo => self.idle.pop_newest(),
        }?;
        self.in_use += 1;
        Some(live)
    }

    /// Every idle connection to in use, for code that looks at each without the lock.
    pub(crate) fn check_out_all(&mut self) -> IdleList<C> {
        let idle = std::mem::take(&mut self.idle);
        self.in_use += idle.len();
        idle
    }

    /// In hand to idle.
    #[inline]
    pub(crate) fn make_idle(&mut self, live: Live<C>) {
        self.idle.push(live);
    }

    /// In hand to in use: a connection handed to a waiter, or kept for a check.
    #[inline]
    pub(crate) fn count_in_use(&mut self) {
        self.in_use += 1;
    }

    /// In use to in hand: a connection returned, or given up by whoever held it.
    #[inline]
    pub(crate) fn count_returned(&mut self) {
        debug_assert!(self.in_use > 0, "a connection returned that was not in use");
        self.in_use -= 1;
    }

    /// Idle to in hand: the `n` longest idle connections.
    pub(crate) fn take_idle(&mut self, n: usize) -> IdleList<C> {
        self.idle.split_oldest(n)
    }

    /// Idle to in hand: all of them.
    pub(crate) fn take_all_idle(&mut self) -> IdleList<C> {
        std::mem::take(&mut self.idle)
    }

    /// Reserves `n` connects.
    #[inline]
    pub(crate) fn begin_connects(&mut self, n: usize) {
        self.connecting += n;
    }

    /// Ends `n` connects: each opened a connection (now in hand), failed, or never started.
    #[inline]
    pub(crate) fn end_connects(&mut self, n: usize) {
        debug_assert!(self.connecting >= n, "more connects ended than began");
        self.connecting -= n;
    }
}

//! A pooled connection: the resource with what the pool knows about it, and the guard handed
//! to callers.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::{Clock, Nanos};
use crate::manager::Manager;
use crate::recycle::Cleanup;
use crate::shared::Shared;

/// Facts about one connection, kept by the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionMetrics {
    /// A number unique within the pool.
    pub id: u64,
    /// When it was opened.
    pub created: Instant,
    /// When it was last handed out or returned (or opened, if never used): for a connection
    /// checked out now, when it was handed out.
    pub last_used: Instant,
    /// When it last passed a check (or was opened).
    pub last_checked: Instant,
    /// How many times it was handed out.
    pub uses: u64,
}

impl ConnectionMetrics {
    /// How long ago it was opened.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }
}

/// What the pool keeps about a connection, in 32 bytes. Times are in the clock's unit, so the
/// hot path does integer arithmetic only.
#[derive(Clone, Copy)]
pub(crate) struct Meta {
    created: Nanos,
    /// When it was last handed out or returned: while it is idle, when its last user let it
    /// go; while it is out, when its user got it.
    pub(crate) last_used: Nanos,
    /// When it last passed a check, in ticks of 2^`TICK_SHIFT` ns after `created`, saturating
    /// (after 52 days; only a connection without a lifetime lives that long, and it is then
    /// checked by keepalive as if its last check were that old).
    checked_after: u32,
    /// Unique within the pool until 2^32 connections have been opened.
    id: u32,
    /// Times handed out, saturating.
    uses: u32,
    /// The pool generation it was opened in; older ones are closed when seen. The count wraps
    /// after 2^16 recoveries, harmlessly: no connection outlives that many.
    pub(crate) generation: u16,
    /// The share of `max_lifetime` taken off this connection's life, in 256ths, so a pool does
    /// not expire all at once. A share rather than a duration, so that it scales with the
    /// lifetime in force (which `AgingPolicy::Adaptive` may shorten).
    lifetime_share: u8,
    /// What it needs before its next user gets it.
    pub(crate) cleanup: Cleanup,
}

/// The tick of `Meta::checked_after`: 2^20 ns, about a millisecond, so that 32 bits span 52
/// days.
const TICK_SHIFT: u32 = 20;

// With the connection it makes a boxed entry: 32 bytes keep a small connection's entry in a
// 48-byte allocation.
const _: () = assert!(std::mem::size_of::<Meta>() == 32);

impl Meta {
    /// `lifetime_spread`: the most that may be taken off `max_lifetime` for this connection, in
    /// 256ths.
    pub(crate) fn new(id: u64, now: Nanos, generation: u16, lifetime_spread: u8) -> Self {
        Meta {
            created: now,
            last_used: now,
            checked_after: 0,
            id: id as u32,
            uses: 0,
            generation,
            lifetime_share: fastrand::u8(0..=lifetime_spread),
            cleanup: Cleanup::None,
        }
    }

    /// A number unique within the pool (until 2^32 connections were opened).
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        u64::from(self.id)
    }

    /// When it was opened.
    #[inline]
    pub(crate) fn created(&self) -> Nanos {
        self.created
    }

    /// When it last passed a check (or was opened).
    #[inline]
    pub(crate) fn last_checked(&self) -> Nanos {
        self.created + (u64::from(self.checked_after) << TICK_SHIFT)
    }

    /// It passed a check at `now`.
    #[inline]
    pub(crate) fn checked(&mut self, now: Nanos) {
        let after = now.saturating_sub(self.created) >> TICK_SHIFT;
        self.checked_after = u32::try_from(after).unwrap_or(u32::MAX);
    }

    /// How many times it was handed out.
    #[inline]
    pub(crate) fn uses(&self) -> u64 {
        u64::from(self.uses)
    }

    /// It is handed out once more.
    #[inline]
    pub(crate) fn count_use(&mut self) {
        self.uses = self.uses.saturating_add(1);
    }

    /// When it was last known good: used by a caller or checked.
    #[inline]
    pub(crate) fn last_active(&self) -> Nanos {
        self.last_used.max(self.last_checked())
    }

    /// Whether it outlived `max_lifetime` (in nanoseconds; `u64::MAX` for none), less its
    /// share.
    #[inline]
    pub(crate) fn expired(&self, now: Nanos, max_lifetime: Nanos) -> bool {
        now.saturating_sub(self.created)
            .saturating_add(self.lifetime_cut(max_lifetime))
            >= max_lifetime
    }

    /// What is taken off `max_lifetime` for this connection.
    #[inline]
    pub(crate) fn lifetime_cut(&self, max_lifetime: Nanos) -> Nanos {
        (max_lifetime >> 8) * Nanos::from(self.lifetime_share)
    }

    pub(crate) fn public(&self, clock: &Clock) -> ConnectionMetrics {
        ConnectionMetrics {
            id: self.id(),
            created: clock.instant(self.created),
            last_used: clock.instant(self.last_used),
            last_checked: clock.instant(self.last_checked()),
            uses: self.uses(),
        }
    }
}

/// A connection together with what the pool knows about it, boxed once when it is opened:
/// handing it from the idle set to a caller and back then moves one pointer, however large the
/// connection is. Kept inline in a buffer instead, the entry would save the allocation, but
/// every acquire and release would move it through the acquire future, the guard and the idle
/// set (measured: 79 ns against 59 per uncontended acquire + release, 539 instructions against
/// 441); the idle set links the boxes through `Entry::next` so that it costs no more memory.
pub(crate) struct Live<C>(Box<Entry<C>>);

/// What a [`Live`] points to.
pub(crate) struct Entry<C> {
    pub(crate) conn: C,
    pub(crate) meta: Meta,
    /// The next entry in the idle set while this one is idle (see `IdleList`); `None` always
    /// outside it.
    pub(crate) next: Option<Live<C>>,
}

impl<C> Live<C> {
    pub(crate) fn new(conn: C, meta: Meta) -> Self {
        Live(Box::new(Entry {
            conn,
            meta,
            next: None,
        }))
    }

    /// The connection, leaving the pool's bookkeeping behind.
    pub(crate) fn into_conn(self) -> C {
        self.0.conn
    }
}

impl<C> Deref for Live<C> {
    type Target = Entry<C>;

    fn deref(&self) -> &Entry<C> {
        &self.0
    }
}

impl<C> DerefMut for Live<C> {
    fn deref_mut(&mut self) -> &mut Entry<C> {
        &mut self.0
    }
}

/// A connection checked out of a [`Pool`](crate::Pool).
///
/// Derefs to the connection. Dropping it returns the connection to the pool synchronously: no
/// task is spawned and no runtime is needed. On the way back the pool asks
/// [`Manager::has_broken`](crate::Manager::has_broken) and closes connections that are broken,
/// expired, used `max_uses` times or returned while the thread panics; others go straight to
/// the longest waiting caller, or to the idle set. [`Manager::reset`](crate::Manager::reset) runs
/// before the connection is handed out again.
pub struct PooledConnection<M: Manager> {
    live: Option<Live<M::Connection>>,
    shared: Arc<Shared<M>>,
}

impl<M: Manager> PooledConnection<M> {
    pub(crate) fn new(live: Live<M::Connection>, shared: Arc<Shared<M>>) -> Self {
        PooledConnection {
            live: Some(live),
            shared,
        }
    }

    fn live(&self) -> &Live<M::Connection> {
        self.live
            .as_ref()
            .expect("a PooledConnection holds its connection until dropped")
    }

    /// What the pool knows about this connection (as of the checkout).
    pub fn metrics(&self) -> ConnectionMetrics {
        self.live().meta.public(&self.shared.clock)
    }

    /// Detaches the connection from the pool, which frees its slot for a new one.
    pub fn take(mut this: Self) -> M::Connection {
        let live = this.live.take().expect("taken once");
        this.shared.detach(live.meta.id());
        live.into_conn()
    }
}

impl<M: Manager> Deref for PooledConnection<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.live().conn
    }
}

impl<M: Manager> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .live
            .as_mut()
            .expect("a PooledConnection holds its connection until dropped")
            .conn
    }
}

impl<M: Manager> Drop for PooledConnection<M> {
    #[inline]
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            self.shared.release(live);
        }
    }
}

impl<M: Manager> fmt::Debug for PooledConnection<M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("conn", &self.live().conn)
            .field("metrics", &self.metrics())
            .finish()
    }
}

//! [`Budget`]: one maximum of open connections shared by several partitions, handed out fairly.
//!
//! Every open connection of a partition holds a [`BudgetPermit`], taken before the connection
//! is opened and given back when it is closed, so the budget's capacity bounds what the server
//! sees, whatever the partitions do.
//!
//! Who gets a permit: each partition that is *active* (holds permits or waits for one) is
//! entitled to a share of the capacity, found by water-filling: its `min_connections` first,
//! the rest spread evenly, none above its `max_connections`. An idle partition's share is free
//! for the others to borrow. A free permit goes to the waiting partition furthest below its
//! share, the oldest waiter first among equals. When nothing is free and a partition waits
//! below its share (or holds nothing at all), the budget *recalls* a permit from the partition
//! furthest above its share: one of that partition's idle connections is closed at once, or,
//! if it has none idle, the next of its connections to come back is closed instead of being
//! reused. The freed permit goes to the partition that needed it. A partition holding nothing
//! always counts as below its share, so with more busy partitions than connections, the
//! connections rotate among them and none starves.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use crate::error::LimitError;

/// A shared maximum of open connections, for [`Partitions`](crate::Partitions).
///
/// Cheap to clone: clones share one budget.
#[derive(Clone)]
pub struct Budget {
    shared: Arc<Shared>,
}

/// A partition's place in a [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LedgerId(usize);

/// Closes idle connections of a partition that the budget recalled; implemented by the
/// partition, which owns the pool.
pub(crate) trait Reclaim: Send + Sync {
    /// Closes idle connections while the partition owes recalled permits.
    fn reclaim_idle(&self);
}

struct Shared {
    state: Mutex<State>,
    /// How long a closed connection's permit is kept before it comes back.
    close_grace: std::time::Duration,
}

struct State {
    capacity: usize,
    /// Permits held in all.
    held: usize,
    ledgers: Vec<Ledger>,
    /// Connects waiting for a permit, oldest first, and granted ones not yet collected.
    queue: VecDeque<Waiter>,
    next_ticket: u64,
    /// Waiters no recall covers while the budget is exhausted: each may take the room of an
    /// idle connection of a partition with no unmet demand of its own.
    claims: usize,
    /// Whether the sweeper runs.
    sweeping: bool,
}

/// One partition's account.
struct Ledger {
    min: usize,
    max: usize,
    held: usize,
    /// Waiters not yet granted.
    waiting: usize,
    /// Permits recalled and not yet picked: the next returned or idle connection closes.
    recalled: usize,
    /// Recalled permits picked, whose connection is closing.
    closing: usize,
    /// Permits of closed connections waiting out the close grace (recalled ones are counted
    /// in `closing` instead).
    lingering: usize,
    reclaim: Option<Weak<dyn Reclaim>>,
}

impl Ledger {
    /// Whether the partition may lend an idle connection's room to a claim: it holds
    /// connections not already being given back, and waits for none.
    fn lends(&self) -> bool {
        self.waiting == 0 && self.held > self.recalled + self.closing + self.lingering
    }

    /// Adds this partition's reclaim hook to `hooks`, once.
    fn hook_into(&self, hooks: &mut Vec<Arc<dyn Reclaim>>) {
        if let Some(hook) = self.reclaim.as_ref().and_then(Weak::upgrade) {
            if !hooks.iter().any(|h| Arc::ptr_eq(h, &hook)) {
                hooks.push(hook);
            }
        }
    }
}

struct Waiter {
    ticket: u64,
    ledger: usize,
    granted: bool,
    waker: Option<Waker>,
}

/// How the budget stands, from [`Budget::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetStatus {
    /// The most connections open at once across all partitions.
    pub capacity: usize,
    /// Connections open (or being opened) now across all partitions.
    pub held: usize,
    /// Connects waiting for room.
    pub waiting: usize,
    /// Connections recalled from partitions above their share and not yet closed.
    pub recalling: usize,
}

/// One partition's part of the budget, from [`Partitions::status`](crate::Partitions::status).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Share {
    /// Connections it holds now (open or being opened).
    pub held: usize,
    /// Its connects waiting for room.
    pub waiting: usize,
    /// What it is entitled to now, given which partitions are active (fractional: with more
    /// busy partitions than connections, connections take turns).
    pub entitled: f64,
    /// Its connections recalled and not yet closed.
    pub recalling: usize,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("status", &self.status())
            .finish()
    }
}

impl Budget {
    /// A budget of at most `capacity` open connections.
    ///
    /// # Errors
    ///
    /// A [`LimitError`] if `capacity` is zero.
    pub fn new(capacity: usize) -> Result<Self, LimitError> {
        if capacity == 0 {
            return Err(LimitError::new("capacity", "must be greater than zero"));
        }
        Ok(Budget {
            shared: Arc::new(Shared {
                close_grace: DEFAULT_CLOSE_GRACE,
                state: Mutex::new(State {
                    capacity,
                    held: 0,
                    ledgers: Vec::new(),
                    queue: VecDeque::new(),
                    next_ticket: 0,
                    claims: 0,
                    sweeping: false,
                }),
            }),
        })
    }

    /// Sets how long the room of a closed connection stays taken before it comes back.
    ///
    /// Drivers close a session in the background (the socket is shut and the server ends the
    /// session a moment after the connection is dropped), so a budget that gave the room back
    /// at once would let the server briefly see a new session beside the old one. The grace
    /// covers that moment: with it, the server sees at most the capacity, as long as closing a
    /// session takes less than the grace. Zero gives the room back at once (the budget then
    /// bounds the connections the application holds, not the sessions the server lists).
    /// Default 50 ms. Needs a tokio runtime where connections are closed; outside one, the
    /// room comes back at once.
    ///
    /// Set it before the budget is shared with partitions.
    ///
    /// # Errors
    ///
    /// A [`LimitError`] if the budget is already shared (cloned or given to partitions).
    pub fn close_grace(mut self, grace: std::time::Duration) -> Result<Self, LimitError> {
        let shared = Arc::get_mut(&mut self.shared).ok_or_else(|| {
            LimitError::new("close_grace", "must be set before the budget is shared")
        })?;
        shared.close_grace = grace;
        Ok(self)
    }

    /// The most connections open at once.
    pub fn capacity(&self) -> usize {
        self.shared.lock().capacity
    }

    /// How the budget stands now.
    pub fn status(&self) -> BudgetStatus {
        let st = self.shared.lock();
        BudgetStatus {
            capacity: st.capacity,
            held: st.held,
            waiting: st.ledgers.iter().map(|l| l.waiting).sum(),
            recalling: st.ledgers.iter().map(|l| l.recalled + l.closing).sum(),
        }
    }

    /// Whether two handles share one budget.
    pub fn same_as(&self, other: &Budget) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Opens an account for a partition of at least `min` and at most `max` connections.
    pub(crate) fn open_ledger(&self, min: usize, max: usize) -> Result<LedgerId, LimitError> {
        let mut st = self.shared.lock();
        st.check_limits(min, max)?;
        st.ledgers.push(Ledger {
            min,
            max,
            held: 0,
            waiting: 0,
            recalled: 0,
            closing: 0,
            lingering: 0,
            reclaim: None,
        });
        Ok(LedgerId(st.ledgers.len() - 1))
    }

    /// Whether a partition of at least `min` and at most `max` connections would fit.
    pub(crate) fn check_limits(&self, min: usize, max: usize) -> Result<(), LimitError> {
        self.shared.lock().check_limits(min, max)
    }

    /// Names who closes the partition's idle connections when the budget recalls them.
    pub(crate) fn set_reclaim(&self, id: LedgerId, reclaim: Weak<dyn Reclaim>) {
        self.shared.lock().ledgers[id.0].reclaim = Some(reclaim);
    }

    /// Closes an account: its reservation and its entitlement go to the others. Its permits
    /// still in use come back as their connections close.
    pub(crate) fn close_ledger(&self, id: LedgerId) {
        let actions = {
            let mut st = self.shared.lock();
            let ledger = &mut st.ledgers[id.0];
            ledger.min = 0;
            ledger.reclaim = None;
            st.rebalance()
        };
        self.shared.act(actions);
    }

    /// The partition's part of the budget.
    pub(crate) fn share(&self, id: LedgerId) -> Share {
        let st = self.shared.lock();
        let entitled = st.entitlements()[id.0];
        let l = &st.ledgers[id.0];
        Share {
            held: l.held,
            waiting: l.waiting,
            entitled,
            recalling: l.recalled + l.closing,
        }
    }

    /// Waits for a permit for the partition `id`.
    ///
    /// Dropping the future gives up its place; a permit already granted to it goes to the
    /// next waiter.
    pub(crate) fn acquire(&self, id: LedgerId) -> Acquire {
        Acquire {
            shared: Arc::clone(&self.shared),
            ledger: id.0,
            ticket: None,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code that can panic runs under this lock but arithmetic on counts that are kept
        // consistent, so a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the budget must do once its lock is released.
#[must_use]
#[derive(Default)]
struct Actions {
    /// Partitions whose idle connections are to be looked at: they close connections, whose
    /// permits come back to the budget, so they run outside the lock.
    hooks: Vec<Arc<dyn Reclaim>>,
    /// Start the sweeper.
    sweep: bool,
}

/// How often the sweeper looks for idle connections to close while the budget wants some back:
/// a connection that goes idle (opened for a caller who left, say) does so without the budget
/// seeing it.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

impl Shared {
    fn act(self: &Arc<Self>, actions: Actions) {
        for hook in actions.hooks {
            hook.reclaim_idle();
        }
        if actions.sweep {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(sweep(Arc::downgrade(self)));
                }
                // Outside a runtime the next event of the budget tries again.
                Err(_) => self.lock().sweeping = false,
            }
        }
    }
}

/// Closes idle connections the budget wants back while it wants any: those of partitions that
/// owe a recalled permit, and, while claims are open, those of partitions with no unmet demand.
/// Ends when nothing is wanted back or the budget is gone.
async fn sweep(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let hooks = {
            let mut st = shared.lock();
            if !st.wants_back() {
                st.sweeping = false;
                return;
            }
            let mut hooks = Vec::new();
            for ledger in &st.ledgers {
                if ledger.recalled > 0 || (st.claims > 0 && ledger.lends()) {
                    ledger.hook_into(&mut hooks);
                }
            }
            hooks
        };
        for hook in hooks {
            hook.reclaim_idle();
        }
    }
}

/// How long a closed connection's room stays taken, by default: enough for a server on the
/// same network to end the session.
const DEFAULT_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// Above this, a share counts as exceeded (shares are fractions).
const EPSILON: f64 = 1e-9;

impl State {
    /// Whether some partition owes a recalled permit or a claim is open.
    fn wants_back(&self) -> bool {
        self.claims > 0 || self.ledgers.iter().any(|l| l.recalled > 0)
    }

    fn check_limits(&self, min: usize, max: usize) -> Result<(), LimitError> {
        if max == 0 {
            return Err(LimitError::new(
                "max_connections",
                "must be greater than zero",
            ));
        }
        if min > max {
            return Err(LimitError::new(
                "min_connections",
                "must not exceed max_connections",
            ));
        }
        let reserved: usize = self.ledgers.iter().map(|l| l.min).sum();
        if reserved + min > self.capacity {
            return Err(LimitError::new(
                "min_connections",
                format!(
                    "{min} more would reserve {} of a budget of {} connections",
                    reserved + min,
                    self.capacity
                ),
            ));
        }
        Ok(())
    }

    /// What each partition is entitled to now: water-filling of the capacity over the active
    /// partitions, each between its min and max. Zero for inactive ones.
    fn entitlements(&self) -> Vec<f64> {
        let active: Vec<(usize, f64, f64)> = self
            .ledgers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.held > 0 || l.waiting > 0)
            .map(|(i, l)| (i, l.min as f64, l.max as f64))
            .collect();
        let capacity = self.capacity as f64;
        let fill = |level: f64| -> f64 {
            active
                .iter()
                .map(|&(_, min, max)| level.clamp(min, max))
                .sum()
        };
        let level = if fill(capacity) <= capacity {
            capacity
        } else {
            // `fill` grows with the level; halve the interval until the level that fills the
            // capacity is found to well below one connection.
            let (mut low, mut high) = (0.0, capacity);
            for _ in 0..50 {
                let mid = (low + high) / 2.0;
                if fill(mid) > capacity {
                    high = mid;
                } else {
                    low = mid;
                }
            }
            low
        };
        let mut entitled = vec![0.0; self.ledgers.len()];
        for (i, min, max) in active {
            entitled[i] = level.clamp(min, max);
        }
        entitled
    }

    /// Grants free permits, then recalls permits for partitions that wait below their share.
    /// Returns the hooks that close recalled idle connections, to be run after the lock is
    /// released.
    fn rebalance(&mut self) -> Actions {
        let entitled = self.entitlements();
        self.grant_free(&entitled);
        let wanted: usize = self
            .ledgers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.waiting > 0)
            .map(|(i, l)| {
                let gap = (entitled[i] - l.held as f64).floor().max(0.0) as usize;
                // A partition holding nothing always wants one, even when its share is less
                // than a connection: that is how connections take turns.
                let want = if l.held == 0 { gap.max(1) } else { gap };
                want.min(l.waiting).min(l.max.saturating_sub(l.held))
            })
            .sum();
        let mut outstanding: usize = self.ledgers.iter().map(|l| l.recalled + l.closing).sum();
        // Recalls nobody needs any more are withdrawn (those already closing cannot be).
        for ledger in &mut self.ledgers {
            let withdraw = outstanding.saturating_sub(wanted).min(ledger.recalled);
            ledger.recalled -= withdraw;
            outstanding -= withdraw;
        }
        let mut hooks = Vec::new();
        while outstanding < wanted {
            let excess = |(i, l): (usize, &Ledger)| {
                let keeps = l.held.saturating_sub(l.recalled + l.closing + l.lingering);
                (i, keeps as f64 - entitled[i])
            };
            let victim = self
                .ledgers
                .iter()
                .enumerate()
                .map(excess)
                .filter(|&(_, over)| over > EPSILON)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((victim, _)) = victim else { break };
            self.ledgers[victim].recalled += 1;
            outstanding += 1;
            self.ledgers[victim].hook_into(&mut hooks);
        }
        // Waiters still uncovered while nothing is free: idle connections of partitions with
        // no unmet demand are closed for them, those idle now by the hooks, those that become
        // idle later as they are returned.
        let waiting: usize = self.ledgers.iter().map(|l| l.waiting).sum();
        let claims = if self.held >= self.capacity {
            waiting.saturating_sub(outstanding)
        } else {
            0
        };
        let grew = claims > self.claims;
        self.claims = claims;
        if grew {
            for ledger in &self.ledgers {
                if ledger.lends() {
                    ledger.hook_into(&mut hooks);
                }
            }
        }
        let sweep = self.wants_back() && !self.sweeping;
        self.sweeping |= sweep;
        Actions { hooks, sweep }
    }

    /// Hands out free permits: to the waiting partition furthest below its share, the oldest
    /// waiter first among equals; never beyond a partition's max.
    fn grant_free(&mut self, entitled: &[f64]) {
        while self.held < self.capacity {
            let mut best: Option<(usize, f64)> = None;
            for (at, waiter) in self.queue.iter().enumerate() {
                let ledger = &self.ledgers[waiter.ledger];
                if waiter.granted || ledger.held >= ledger.max {
                    continue;
                }
                let below = entitled[waiter.ledger] - ledger.held as f64;
                if best.is_none_or(|(_, b)| below > b + EPSILON) {
                    best = Some((at, below));
                }
            }
            let Some((at, _)) = best else { return };
            let waiter = &mut self.queue[at];
            waiter.granted = true;
            let ledger = &mut self.ledgers[waiter.ledger];
            ledger.held += 1;
            ledger.waiting -= 1;
            self.held += 1;
            if let Some(waker) = waiter.waker.take() {
                waker.wake();
            }
        }
    }

    fn position(&self, ticket: u64) -> Option<usize> {
        self.queue.iter().position(|w| w.ticket == ticket)
    }
}

/// A permit of a [`Budget`]: room for one open connection. Lives inside the connection and
/// goes back to the budget when the connection is closed (dropped).
pub struct BudgetPermit {
    shared: Arc<Shared>,
    ledger: usize,
    /// Whether this connection was picked to give back a recalled permit.
    recalled: AtomicBool,
    /// Whether its connection is closed and it waits out the close grace.
    lingering: bool,
}

impl fmt::Debug for BudgetPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetPermit")
            .field("recalled", &self.recalled.load(Ordering::Relaxed))
            .finish()
    }
}

impl BudgetPermit {
    /// Whether the budget wants this permit back: its partition owes a recalled permit, or
    /// another partition waits while nothing is free and this one has no unmet demand. If so,
    /// the permit is marked and the caller must close its connection.
    pub(crate) fn take_recall(&self) -> bool {
        if self.recalled.load(Ordering::Relaxed) {
            return true;
        }
        let mut st = self.shared.lock();
        if st.ledgers[self.ledger].recalled > 0 {
            st.ledgers[self.ledger].recalled -= 1;
        } else if st.claims > 0 && st.ledgers[self.ledger].waiting == 0 {
            st.claims -= 1;
        } else {
            return false;
        }
        st.ledgers[self.ledger].closing += 1;
        self.recalled.store(true, Ordering::Relaxed);
        true
    }
}

impl Drop for BudgetPermit {
    fn drop(&mut self) {
        let grace = self.shared.close_grace;
        if !self.lingering && !grace.is_zero() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let lingering = BudgetPermit {
                    shared: Arc::clone(&self.shared),
                    ledger: self.ledger,
                    recalled: AtomicBool::new(*self.recalled.get_mut()),
                    lingering: true,
                };
                // This one is done; the copy gives the room back once the grace is over.
                if !*self.recalled.get_mut() {
                    self.shared.lock().ledgers[self.ledger].lingering += 1;
                }
                *self.recalled.get_mut() = false;
                self.lingering = true;
                handle.spawn(async move {
                    tokio::time::sleep(grace).await;
                    drop(lingering);
                });
                return;
            }
        }
        let actions = {
            let mut st = self.shared.lock();
            st.held -= 1;
            let ledger = &mut st.ledgers[self.ledger];
            ledger.held -= 1;
            if *self.recalled.get_mut() {
                ledger.closing -= 1;
            } else if self.lingering {
                ledger.lingering -= 1;
            }
            // A connection that closed for another reason may leave a recall with nothing to
            // take it from.
            ledger.recalled = ledger
                .recalled
                .min(ledger.held - ledger.closing - ledger.lingering);
            st.rebalance()
        };
        self.shared.act(actions);
    }
}

/// The future of [`Budget::acquire`].
pub(crate) struct Acquire {
    shared: Arc<Shared>,
    ledger: usize,
    /// Its place in the queue, once it queued; `None` again once it has its permit.
    ticket: Option<u64>,
}

impl Future for Acquire {
    type Output = BudgetPermit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<BudgetPermit> {
        let this = &mut *self;
        let mut actions = Actions::default();
        let granted = {
            let mut st = this.shared.lock();
            let ticket = match this.ticket {
                Some(ticket) => ticket,
                None => {
                    // Queued even when a permit is free: the permit goes to whoever is
                    // furthest below its share, which may be another partition.
                    let ticket = st.next_ticket;
                    st.next_ticket += 1;
                    st.queue.push_back(Waiter {
                        ticket,
                        ledger: this.ledger,
                        granted: false,
                        waker: None,
                    });
                    st.ledgers[this.ledger].waiting += 1;
                    this.ticket = Some(ticket);
                    actions = st.rebalance();
                    ticket
                }
            };
            let Some(at) = st.position(ticket) else {
                unreachable!("a queued waiter stays in the queue until it collects its permit")
            };
            if st.queue[at].granted {
                st.queue.remove(at);
                this.ticket = None;
                true
            } else {
                st.queue[at].waker = Some(cx.waker().clone());
                false
            }
        };
        this.shared.act(actions);
        if granted {
            Poll::Ready(BudgetPermit {
                shared: Arc::clone(&this.shared),
                ledger: this.ledger,
                recalled: AtomicBool::new(false),
                lingering: false,
            })
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let actions = {
            let mut st = self.shared.lock();
            let Some(at) = st.position(ticket) else {
                return;
            };
            let waiter = st.queue.remove(at).expect("found just now");
            let ledger = &mut st.ledgers[self.ledger];
            if waiter.granted {
                // Granted but never collected: the permit goes back and on to the next waiter.
                ledger.held -= 1;
                st.held -= 1;
            } else {
                ledger.waiting -= 1;
            }
            st.rebalance()
        };
        self.shared.act(actions);
    }
}

//! The callers waiting for a connection, in the order they are served.
//!
//! Each queued caller has a slot here, reused by later callers, so queueing allocates nothing
//! once the queue has grown to its working size. A slot holds the caller's waker and, once the
//! caller's wait is settled, its [`Grant`]. Keys into the slots are kept in one arrival-order
//! list per [`Priority`]; a caller that leaves early leaves a dead key behind, skipped when met
//! and purged when dead keys pile up.
//!
//! Callers are served in two ways (see [`Fairness`](crate::Fairness)): a connection is handed
//! straight to the next caller in order ([`Queue::grant_next`], [`Queue::grant`]), or it is
//! made idle and one caller is woken to come and take it ([`Queue::wake_one`]), competing with
//! callers that have not queued. The pool keeps one promise about woken callers: while a
//! connection is idle and someone waits, some caller is on its way (`woken > 0`), so nobody
//! waits next to an idle connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::time::Instant;

use crate::connection::Live;
use crate::error::ConnectError;
use crate::manager::Manager;
use crate::priority::Priority;

/// How a queued caller's wait ended.
pub(crate) enum Grant<M: Manager> {
    /// A connection, already counted in `in_use` for the caller.
    Conn(Live<M::Connection>),
    /// A permanent connect error.
    Failed(Arc<ConnectError<M::Error>>),
    /// The caller's deadline passed.
    TimedOut,
    /// The pool was closed.
    Closed,
}

/// Names one caller's slot for as long as the caller holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    /// The slot's generation when the caller took it: a slot taken again by a later caller has
    /// another, so a key left behind never names the wrong caller.
    generation: u32,
}

/// Where a slot's caller stands.
enum Stand<M: Manager> {
    /// No caller holds the slot.
    Vacant,
    /// Queued. `woken`: sent to take an idle connection, and not yet back.
    Waiting { woken: bool },
    /// Settled, not yet collected by the caller.
    Done(Grant<M>),
}

struct Slot<M: Manager> {
    generation: u32,
    stand: Stand<M>,
    waker: Option<Waker>,
    /// When the caller's acquire started.
    since: Instant,
    deadline: Option<Instant>,
    priority: Priority,
    /// The tokio task the caller runs in, for self-deadlock detection.
    task: Option<tokio::task::Id>,
}

/// What a queued caller finds when it looks at its slot.
pub(crate) enum Found<M: Manager> {
    /// Its wait is settled.
    Done(Grant<M>),
    /// It was woken to take an idle connection: it should try now, and call
    /// [`Queue::leave`] if it got one, or [`Queue::park`] if not.
    Woken,
    /// Still queued; its waker is registered.
    Waiting,
}

/// What a caller giving up left behind.
pub(crate) enum Left<M: Manager> {
    /// A grant it never collected (a connection to pass on, say).
    Grant(Grant<M>),
    /// It had been woken to take an idle connection: someone else must go instead.
    Woken,
    /// Nothing.
    Nothing,
}

/// The queued callers.
pub(crate) struct Queue<M: Manager> {
    slots: Vec<Slot<M>>,
    vacant: Vec<u32>,
    /// Keys in arrival order, one list per priority (indexed by `Priority as usize`).
    levels: [VecDeque<Key>; 4],
    /// Callers queued and not settled.
    waiting: usize,
    per_level: [usize; 4],
    /// Callers woken to take an idle connection that have not looked yet.
    woken: usize,
    /// Whether a caller woken to take an idle connection found it taken by a caller that had
    /// not queued, since the pool last found nobody it owed a connection to (see
    /// [`Queue::owed`]).
    passed_over: bool,
    /// No queued caller's deadline is earlier than this (it may be earlier than every one).
    next_deadline: Option<Instant>,
}

impl<M: Manager> Queue<M> {
    pub(crate) fn new() -> Self {
        Queue {
            slots: Vec::new(),
            vacant: Vec::new(),
            levels: Default::default(),
            waiting: 0,
            per_level: [0; 4],
            woken: 0,
            passed_over: false,
            next_deadline: None,
        }
    }

    /// Callers queued and not settled.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.waiting
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// Callers of `priority` queued.
    pub(crate) fn len_of(&self, priority: Priority) -> usize {
        self.per_level[priority as usize]
    }

    /// Callers woken to take an idle connection that have not looked yet.
    pub(crate) fn woken(&self) -> usize {
        self.woken
    }

    /// Whether a caller of `priority` may take an idle connection ahead of the queue: nobody of
    /// a higher priority waits.
    #[inline]
    pub(crate) fn may_overtake(&self, priority: Priority) -> bool {
        self.per_level[priority as usize + 1..]
            .iter()
            .all(|&n| n == 0)
    }

    /// Whether a caller running in `task` is queued.
    pub(crate) fn has_task(&self, task: tokio::task::Id) -> bool {
        self.slots
            .iter()
            .any(|slot| slot.task == Some(task) && matches!(slot.stand, Stand::Waiting { .. }))
    }

    /// The earliest deadline of a queued caller, or earlier.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.next_deadline
    }

    /// Queues a caller, with its waker if it has one at hand. Returns its key, and whether its
    /// deadline is the earliest now known.
    pub(crate) fn push(
        &mut self,
        priority: Priority,
        since: Instant,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
    ) -> (Key, bool) {
        self.purge();
        let index = self.vacant.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                generation: 0,
                stand: Stand::Vacant,
                waker: None,
                since,
                deadline: None,
                priority,
                task: None,
            });
            u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 queued callers")
        });
        let slot = &mut self.slots[index as usize];
        slot.stand = Stand::Waiting { woken: false };
        slot.waker = waker.cloned();
        slot.since = since;
        slot.deadline = deadline;
        slot.priority = priority;
        slot.task = tokio::task::try_id();
        let key = Key {
            index,
            generation: slot.generation,
        };
        self.levels[priority as usize].push_back(key);
        self.waiting += 1;
        self.per_level[priority as usize] += 1;
        let earliest = deadline.is_some_and(|at| self.next_deadline.is_none_or(|next| at < next));
        if earliest {
            self.next_deadline = deadline;
        }
        (key, earliest)
    }

    /// When the acquire of the caller `key` names started, and at what priority it asks.
    pub(crate) fn caller(&self, key: Key) -> (Instant, Priority) {
        let slot = &self.slots[key.index as usize];
        (slot.since, slot.priority)
    }

    fn slot(&self, key: Key) -> Option<&Slot<M>> {
        self.slots
            .get(key.index as usize)
            .filter(|slot| slot.generation == key.generation)
    }

    fn slot_mut(&mut self, key: Key) -> &mut Slot<M> {
        let slot = &mut self.slots[key.index as usize];
        debug_assert_eq!(slot.generation, key.generation, "a key outlived its slot");
        slot
    }

    /// Whether `key` names a caller still waiting.
    fn is_waiting(&self, key: Key) -> bool {
        self.slot(key)
            .is_some_and(|slot| matches!(slot.stand, Stand::Waiting { .. }))
    }

    /// The first caller still waiting at `level`, dropping dead keys in front of it.
    fn front(&mut self, level: usize) -> Option<Key> {
        while let Some(&key) = self.levels[level].front() {
            if self.is_waiting(key) {
                return Some(key);
            }
            self.levels[level].pop_front();
        }
        None
    }

    /// The caller to serve next: a caller waiting longer than the boost first (oldest first),
    /// else the highest priority, first come first served. `boost`: the boost, with the time to
    /// judge it at.
    fn next(&mut self, boost: Option<(Duration, Instant)>) -> Option<Key> {
        let mut best: Option<(Rank, Key)> = None;
        for level in (0..self.levels.len()).rev() {
            let Some(key) = self.front(level) else {
                continue;
            };
            let since = self.slots[key.index as usize].since;
            let boosted =
                boost.is_some_and(|(b, now)| since.checked_add(b).is_some_and(|at| at <= now));
            let rank = (
                boosted,
                if boosted { 0 } else { level },
                std::cmp::Reverse(since),
            );
            if best.is_none_or(|(best, _)| rank > best) {
                best = Some((rank, key));
            }
        }
        best.map(|(_, key)| key)
    }

    /// Whether the pool owes the caller to serve next a connection, to be handed to it
    /// directly rather than made idle for whoever comes first; if so, that caller's key (for
    /// [`Queue::grant`]).
    ///
    /// It owes one to a caller that has waited `bound` or longer while callers were passed
    /// over lately (a caller that merely has not run yet is not owed one: it will find an idle
    /// connection when it runs), and to a caller of a lower priority boosted past the others.
    /// The clock is read only when one of those can be the case. Once nobody is owed one,
    /// passing over is forgotten until it happens again.
    pub(crate) fn owed(&mut self, bound: Duration, boost: Option<Duration>) -> Option<Key> {
        let boost = boost.filter(|_| self.mixed());
        if !self.passed_over && boost.is_none() {
            return None;
        }
        let now = Instant::now();
        let key = self.next(boost.map(|b| (b, now)))?;
        let waited = now.saturating_duration_since(self.slots[key.index as usize].since);
        let due = self.passed_over && waited >= bound;
        let boosted = boost.is_some_and(|b| waited >= b);
        self.passed_over = due;
        (due || boosted).then_some(key)
    }

    /// Whether callers of more than one priority wait: only then can the boost change who is
    /// served next, so only then is the clock read for it.
    fn mixed(&self) -> bool {
        self.per_level.iter().filter(|&&n| n > 0).count() > 1
    }

    /// Settles the wait of the caller `key` names, still waiting, with `grant`.
    pub(crate) fn grant(&mut self, key: Key, grant: Grant<M>) {
        self.settle(key, grant);
    }

    /// Settles the wait of the caller to serve next with `grant`; hands `grant` back if
    /// nobody waits.
    pub(crate) fn grant_next(
        &mut self,
        grant: Grant<M>,
        boost: Option<Duration>,
    ) -> Result<(), Grant<M>> {
        let boost = boost.filter(|_| self.mixed()).map(|b| (b, Instant::now()));
        let Some(key) = self.next(boost) else {
            return Err(grant);
        };
        self.settle(key, grant);
        Ok(())
    }

    /// Settles one waiting caller's wait and wakes it.
    fn settle(&mut self, key: Key, grant: Grant<M>) {
        let slot = &mut self.slots[key.index as usize];
        let Stand::Waiting { woken } = slot.stand else {
            unreachable!("only a waiting caller is settled");
        };
        slot.stand = Stand::Done(grant);
        let priority = slot.priority as usize;
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
        if woken {
            self.woken -= 1;
        }
        self.waiting -= 1;
        self.per_level[priority] -= 1;
    }

    /// Wakes the first waiting caller, in order, not woken already, to take an idle connection.
    pub(crate) fn wake_one(&mut self) {
        for level in (0..self.levels.len()).rev() {
            for i in 0..self.levels[level].len() {
                let key = self.levels[level][i];
                let Some(slot) = self
                    .slots
                    .get_mut(key.index as usize)
                    .filter(|slot| slot.generation == key.generation)
                else {
                    continue;
                };
                if let Stand::Waiting { woken: false } = slot.stand {
                    slot.stand = Stand::Waiting { woken: true };
                    if let Some(waker) = slot.waker.take() {
                        waker.wake();
                    }
                    self.woken += 1;
                    return;
                }
            }
        }
    }

    /// Looks at the caller's slot for it: collects a settled wait, or registers its waker.
    pub(crate) fn look(&mut self, key: Key, cx: &mut Context<'_>) -> Found<M> {
        let slot = self.slot_mut(key);
        match slot.stand {
            Stand::Done(_) => {
                let Stand::Done(grant) = std::mem::replace(&mut slot.stand, Stand::Vacant) else {
                    unreachable!()
                };
                self.vacate(key);
                Found::Done(grant)
            }
            Stand::Waiting { woken: true } => {
                slot.stand = Stand::Waiting { woken: false };
                self.woken -= 1;
                Found::Woken
            }
            Stand::Waiting { woken: false } => {
                register(&mut slot.waker, cx);
                Found::Waiting
            }
            Stand::Vacant => unreachable!("a caller looks at its slot until it leaves it"),
        }
    }

    /// A woken caller found no idle connection (a caller that had not queued took it first):
    /// it waits on in its place, marked as passed over.
    pub(crate) fn park(&mut self, key: Key, cx: &mut Context<'_>) {
        register(&mut self.slot_mut(key).waker, cx);
        self.pass_over();
    }

    /// Counts the waiting callers as passed over: a connection they could have been woken for
    /// was left for whoever comes first.
    pub(crate) fn pass_over(&mut self) {
        self.passed_over = true;
    }

    /// A waiting caller took an idle connection itself: its place is freed.
    pub(crate) fn leave(&mut self, key: Key) {
        let priority = self.slot_mut(key).priority as usize;
        self.waiting -= 1;
        self.per_level[priority] -= 1;
        self.vacate(key);
    }

    /// A caller gave up; says what it left behind.
    pub(crate) fn give_up(&mut self, key: Key) -> Left<M> {
        let woken = match self.slot_mut(key).stand {
            Stand::Waiting { woken } => woken,
            Stand::Done(_) => {
                let slot = self.slot_mut(key);
                let Stand::Done(grant) = std::mem::replace(&mut slot.stand, Stand::Vacant) else {
                    unreachable!()
                };
                self.vacate(key);
                return Left::Grant(grant);
            }
            Stand::Vacant => unreachable!("a caller gives up its own slot once"),
        };
        if woken {
            self.woken -= 1;
        }
        self.leave(key);
        if woken {
            Left::Woken
        } else {
            Left::Nothing
        }
    }

    fn vacate(&mut self, key: Key) {
        let slot = &mut self.slots[key.index as usize];
        slot.stand = Stand::Vacant;
        slot.waker = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.vacant.push(key.index);
    }

    /// Drops the dead keys once they outnumber the live ones, so rounds of callers giving up
    /// cannot grow the lists without bound.
    fn purge(&mut self) {
        let keys: usize = self.levels.iter().map(VecDeque::len).sum();
        if keys <= 32 || keys <= 2 * self.waiting {
            return;
        }
        let slots = &self.slots;
        for level in &mut self.levels {
            level.retain(|key| {
                slots[key.index as usize].generation == key.generation
                    && matches!(slots[key.index as usize].stand, Stand::Waiting { .. })
            });
        }
    }

    /// Times out every caller whose deadline is `now` or earlier and works out the next
    /// deadline. Returns whether one of them had been woken (someone else must go instead).
    pub(crate) fn expire(&mut self, now: Instant) -> bool {
        if self.next_deadline.is_none_or(|at| at > now) {
            return false;
        }
        let mut next: Option<Instant> = None;
        let mut was_woken = false;
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            let (Stand::Waiting { woken }, Some(deadline)) = (&slot.stand, slot.deadline) else {
                continue;
            };
            if deadline <= now {
                was_woken |= *woken;
                self.settle(self.key_of(index), Grant::TimedOut);
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        self.next_deadline = next;
        was_woken
    }

    /// Settles every waiting caller's wait with what `grant` makes.
    pub(crate) fn settle_all(&mut self, mut grant: impl FnMut() -> Grant<M>) {
        for index in 0..self.slots.len() {
            if let Stand::Waiting { .. } = self.slots[index].stand {
                self.settle(self.key_of(index), grant());
            }
        }
    }

    /// The key of whoever holds the slot at `index` now.
    fn key_of(&self, index: usize) -> Key {
        Key {
            index: index as u32,
            generation: self.slots[index].generation,
        }
    }

    /// How many callers would be served before the one holding `key`, in the order of
    /// priorities and arrival (not counting the boost of long waiters); `None` once it is no
    /// longer waiting.
    pub(crate) fn position(&self, key: Key) -> Option<usize> {
        let level = self.slot(key)?.priority as usize;
        if !self.is_waiting(key) {
            return None;
        }
        let above: usize = self.per_level[level + 1..].iter().sum();
        let ahead = self.levels[level]
            .iter()
            .take_while(|&&k| k != key)
            .filter(|&&k| self.is_waiting(k))
            .count();
        Some(above + ahead)
    }
}

/// Where a caller stands in the order of service, highest first: boosted (waited past the
/// boost), then its priority (ignored once boosted), then the earlier arrival.
type Rank = (bool, usize, std::cmp::Reverse<Instant>);

/// Keeps the latest waker of a caller, cloning only when it changed.
fn register(slot: &mut Option<Waker>, cx: &mut Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

//! The background task: closes expired and long-idle connections, refills to `min_idle`,
//! resets returned connections that sit idle, checks long-idle connections (keepalive) and
//! reports leaks.
//!
//! It holds only a weak reference between rounds, so it ends once every handle of the pool
//! (pools and checked-out connections) is gone, or once a closed pool has no connection left.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::RuntimeFlavor;
use tokio::time::Instant;

use crate::bounded::bounded;
use crate::clock::{nanos, Nanos, RESOLUTION};
use crate::connection::Live;
use crate::connector::CatchUnwind;
use crate::leak;
use crate::manager::Manager;
use crate::recycle::Cleanup;
use crate::shared::{Shared, State};
use crate::stats::CloseReason;
use crate::taken::Taken;
use crate::upkeep::UpkeepLevel;

/// How long a connection returned with session state to undo (an open transaction, say) may sit
/// idle before the background task cleans it. A connection returned in a burst of use is
/// usually taken again within moments by a caller who resets it anyway; one that sits longer
/// would hold its locks until someone needs it, so it is cleaned then, all such connections at
/// once.
pub(crate) const TEND_AFTER: Duration = RESOLUTION;

/// Starts the background task if it is not running and a runtime is at hand. Returns whether it
/// runs.
pub(crate) fn ensure_started<M: Manager>(shared: &Arc<Shared<M>>) -> bool {
    if shared.maintenance_started.load(Ordering::Acquire) {
        return true;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    if !shared.maintenance_started.swap(true, Ordering::AcqRel) {
        handle.spawn(run(Arc::downgrade(shared), Arc::clone(&shared.wake)));
    }
    true
}

/// Marks the background task stopped when it ends, also when its runtime shuts down and drops
/// it: the next acquire then starts it again on the caller's runtime, so queued callers'
/// deadlines and the clock never depend on a runtime that is gone.
struct Running<M: Manager>(Weak<Shared<M>>);

impl<M: Manager> Drop for Running<M> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            let mut st = shared.lock();
            st.sleeping_until = None;
            // Nobody looks after deferred sends any more.
            st.deferral.disable();
            st.send_for_idle();
            drop(st);
            // Nobody marks the cached clock stale any more: drop it, so the next reader reads
            // the real clock and starts this task again.
            shared.clock.stop();
            shared.maintenance_started.store(false, Ordering::Release);
        }
    }
}

async fn run<M: Manager>(pool: Weak<Shared<M>>, wake: Arc<tokio::sync::Notify>) {
    let _running = Running(pool.clone());
    let multi_thread =
        tokio::runtime::Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread;
    if let Some(shared) = pool.upgrade().filter(|_| multi_thread) {
        shared.lock().deferral.enable(Arc::clone(&wake));
    }
    // Rounds run when their work is due (see `Schedule`: routine work every interval, which
    // adapts; work after failures, configuration changes and recovery sooner); connects that
    // wait for their moment (`wake_at`) start then, stopped or not; in between, while the pool
    // is busy, the clock is marked stale every `clock::RESOLUTION`. Every time it wakes, it
    // times out queued callers whose deadline passed, and it sleeps no later than the next
    // deadline.
    loop {
        let next = {
            let Some(shared) = pool.upgrade() else { return };
            if shared.is_drained() {
                return;
            }
            let now = Instant::now();
            let (levels, connects) = {
                let mut st = shared.lock();
                st.sleeping_until = None;
                st.look_at_waiters(now);
                // Cleaning returned connections and retiring the rest of the expired ones are
                // routine work with a moment of their own.
                for at in [st.tend_at, st.retire_at].into_iter().flatten() {
                    st.schedule.request(UpkeepLevel::Low, at);
                }
                let connects = if st.wake_at.is_some_and(|at| at <= now) {
                    st.wake_at = None;
                    st.reserve_connects()
                } else {
                    0
                };
                (st.schedule.take_due(now), connects)
            };
            shared.spawn_connects(connects);
            if !levels.is_empty() {
                // Resets and keepalive checks may take up to their timeouts; meanwhile the clock
                // must not stand still and queued callers' deadlines must still be kept, also
                // those of callers who queue during the round (they wake this task).
                let mut upkeep = std::pin::pin!(round(&shared, &levels));
                let busy = loop {
                    let (next_deadline, look) = {
                        let st = shared.lock();
                        (st.queue.next_deadline(), st.next_look())
                    };
                    let tick = Instant::now() + RESOLUTION;
                    let at = [next_deadline, look]
                        .into_iter()
                        .flatten()
                        .fold(tick, Instant::min);
                    let woken = std::pin::pin!(wake.notified());
                    match tokio::time::timeout_at(at, first_of(upkeep.as_mut(), woken)).await {
                        Ok(Some(busy)) => break busy,
                        Ok(None) => {}
                        Err(_) => {
                            shared.clock.tick();
                        }
                    }
                    let mut st = shared.lock();
                    st.look_at_waiters(Instant::now());
                };
                let mut st = shared.lock();
                let (floor, ceiling) = (st.upkeep_floor(), st.config.maintenance_interval);
                st.schedule.ended(busy, floor, ceiling);
                drop(st);
                shared.round_ended.notify_waiters();
            }
            let ticking = shared.clock.tick();
            let mut st = shared.lock();
            let mut next = [
                st.wake_at,
                st.queue.next_deadline(),
                st.schedule.next_due(),
                st.next_look(),
            ]
            .into_iter()
            .flatten()
            .min()
            // Nothing due (upkeep stopped, no connect or caller waiting): look again now
            // and then, as woken tasks do.
            .unwrap_or_else(|| Instant::now() + st.config.maintenance_interval);
            if ticking {
                next = next.min(Instant::now() + RESOLUTION);
            }
            st.sleeping_until = Some(next);
            next
        };
        let _ = tokio::time::timeout_at(next, wake.notified()).await;
    }
}

/// One round of upkeep for the `levels` due, highest first; returns whether it found work
/// (closed, cleaned or checked a connection, or left some for later).
async fn round<M: Manager>(shared: &Arc<Shared<M>>, levels: &[UpkeepLevel]) -> bool {
    let now = shared.clock.precise();
    // After a failed acquisition every idle connection is checked, not only the long-idle ones.
    let check_all = levels.contains(&UpkeepLevel::Medium);
    let mut closing: Vec<(Live<M::Connection>, CloseReason)> = Vec::new();
    // Idle connections taken out for a reset and/or a keepalive check, counted in use meanwhile.
    let mut to_tend: Vec<(Live<M::Connection>, bool)> = Vec::new();
    let mut leaks = Vec::new();
    let (check_timeout, reset_timeout);
    let busy;
    {
        let mut st = shared.lock();
        for level in levels {
            tracing::trace!(target: "pool_core::upkeep", level = level.as_str(), "upkeep round");
        }
        st.tend_at = None;
        st.retire_at = None;
        check_timeout = st.config.check_timeout;
        reset_timeout = st.config.reset_timeout;
        let min_idle = st.config.min_idle;
        let max_lifetime = st.policy().max_lifetime;
        let idle_timeout = st.config.idle_timeout.map(nanos);
        let keepalive = st.config.keepalive_interval.map(nanos);
        let generation = st.generation;
        let tend_after = nanos(TEND_AFTER);
        let mut excess = st.size().saturating_sub(st.config.max_size);
        // Connections opened together expire close together, and this round would close every
        // one that expired since the last: retire at most a tenth of the pool per round and come
        // back soon for the rest, so a pool never loses most of its connections at once.
        let mut retirements_left = (st.size() / 10).max(1);
        let mut retire_later = false;
        // The earliest moment a connection returned dirty, too recently to clean now, will have
        // sat idle for `TEND_AFTER`.
        let mut tend_next: Option<Nanos> = None;
        let mut idle_left = st.ledger.idle();
        let idle = st.ledger.take_all_idle();
        for live in idle {
            let meta = &live.meta;
            let mut reason = if meta.generation != generation || excess > 0 {
                excess = excess.saturating_sub(1);
                Some(CloseReason::Retired)
            } else if meta.expired(now, max_lifetime) {
                Some(CloseReason::Expired)
            } else if idle_left > min_idle
                && idle_timeout.is_some_and(|t| now.saturating_sub(meta.last_used) >= t)
            {
                Some(CloseReason::IdleTimeout)
            } else {
                None
            };
            if reason == Some(CloseReason::Expired) {
                if retirements_left == 0 {
                    retire_later = true;
                    reason = None;
                } else {
                    retirements_left -= 1;
                }
            }
            match reason {
                Some(reason) => {
                    idle_left -= 1;
                    st.stats.closes.add(reason);
                    closing.push((live, reason));
                }
                None => {
                    let check = check_all
                        || keepalive.is_some_and(|k| now.saturating_sub(meta.last_active()) >= k);
                    // A returned connection is cleaned here rather than left to its next
                    // checkout, so an open transaction (and the locks it holds) does not sit in
                    // the pool until someone needs the connection.
                    let dirty = meta.cleanup != Cleanup::None;
                    let tend_at = meta.last_used.saturating_add(tend_after);
                    let clean = dirty && tend_at <= now;
                    if dirty && !clean {
                        tend_next = Some(tend_next.map_or(tend_at, |t| t.min(tend_at)));
                    }
                    if check || clean {
                        st.ledger.count_in_use();
                        to_tend.push((live, check));
                    } else {
                        st.ledger.make_idle(live);
                    }
                }
            }
        }
        if let Some(at) = tend_next {
            st.tend_at = Some(shared.clock.instant(at));
        }
        if retire_later {
            let gap = (st.config.maintenance_interval / 10).max(RESOLUTION);
            st.retire_at = Some(Instant::now() + gap);
        }
        if let Some(limits) = st.config.soft_limits {
            let (in_use, max_size) = (st.ledger.in_use(), st.config.max_size);
            let State {
                episodes, stats, ..
            } = &mut *st;
            episodes.busy(&limits, in_use, max_size, now, &mut stats.warnings);
        }
        busy = !closing.is_empty() || !to_tend.is_empty() || retire_later;
        if let Some(threshold) = st.config.leak_threshold.map(nanos) {
            for record in st.leaks.values_mut() {
                if !record.warned && now.saturating_sub(record.since) >= threshold {
                    record.warned = true;
                    leaks.push(*record);
                }
            }
        }
        // Not `settle`: when connects must wait (backoff, connect rate) it sets `wake_at` and
        // wakes this very task, which reads `wake_at` after the round anyway; taking that
        // wake-up would spin the task until `wake_at`. Nothing here can drain a closed pool
        // (it has no idle connections), so there is nobody else to notify.
        let connects = st.reserve_connects();
        drop(st);
        shared.spawn_connects(connects);
    }
    for (live, reason) in closing {
        tracing::debug!(target: "pool_core::close", id = live.meta.id(), reason = reason.as_str(), "closing idle connection");
        drop(live);
    }
    for record in &leaks {
        leak::suspected(record, now);
    }
    // All at once: each runs on its own connection, so the number of connections bounds them,
    // and a pool of connections returned inside transactions is rolled back in about one round
    // trip rather than one round trip per connection.
    let tending = to_tend
        .into_iter()
        .map(|(live, check)| tend(shared, live, check, reset_timeout, check_timeout));
    join_all(tending).await;
    busy
}

/// Resets (if it needs it) and checks (if `check`) one connection counted in use (idle, or
/// just returned), then gives it back, or closes it if either fails.
pub(crate) async fn tend<M: Manager>(
    shared: &Arc<Shared<M>>,
    live: Live<M::Connection>,
    check: bool,
    reset_timeout: Duration,
    check_timeout: Duration,
) {
    let mut taken = Taken::new(shared, live);
    // Manager code that panics counts as a failure: unwinding out of here would lose the
    // connections still being tended (counted in use, never given back) and end this task.
    let live = taken.live();
    let cleanup = live.meta.cleanup;
    let needed = match cleanup {
        Cleanup::None => false,
        Cleanup::Full => true,
        Cleanup::Reset => catch_unwind(AssertUnwindSafe(|| {
            shared.manager.needs_reset(&mut live.conn)
        }))
        .unwrap_or(true),
    };
    if needed {
        let conn = &mut live.conn;
        let reset = if cleanup == Cleanup::Full {
            bounded(
                CatchUnwind(Box::pin(shared.manager.full_reset(conn))),
                || reset_timeout,
            )
            .await
        } else {
            bounded(CatchUnwind(Box::pin(shared.manager.reset(conn))), || {
                reset_timeout
            })
            .await
        };
        if !matches!(reset, Some(Ok(Ok(())))) {
            taken.close(CloseReason::ResetFailed);
            return;
        }
    }
    taken.live().meta.cleanup = Cleanup::None;
    if check {
        let check = CatchUnwind(Box::pin(shared.manager.check(&mut taken.live().conn)));
        if !matches!(bounded(check, || check_timeout).await, Some(Ok(Ok(())))) {
            taken.close(CloseReason::CheckFailed);
            return;
        }
        let now = shared.now();
        taken.live().meta.checked(now);
    }
    shared.restore(taken.keep());
}

/// Polls both until one finishes: `Some` with `work`'s output if it did, `None` if `signal`
/// did.
async fn first_of<T>(
    mut work: Pin<&mut impl Future<Output = T>>,
    mut signal: Pin<&mut impl Future<Output = ()>>,
) -> Option<T> {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = work.as_mut().poll(cx) {
            Poll::Ready(Some(done))
        } else if signal.as_mut().poll(cx).is_ready() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Runs every future to its end, concurrently, in the calling task.
async fn join_all<F: Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    let mut running: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        running.retain_mut(|future| future.as_mut().poll(cx).is_pending());
        if running.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

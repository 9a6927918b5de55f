//! The background task: closes expired and long-idle connections, refills to `min_idle`,
//! resets returned connections that sit idle, checks long-idle connections (keepalive) and
//! reports leaks.
//!
//! It holds only a weak reference between rounds, so it ends once every handle of the pool
//! (pools and checked-out connections) is gone, or once a closed pool has no connection left.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use tokio::time::Instant;

use crate::bounded::bounded;
use crate::checkout::Checkout;
use crate::clock::{nanos, RESOLUTION};
use crate::connection::Live;
use crate::connector::CatchUnwind;
use crate::leak;
use crate::manager::Manager;
use crate::shared::Shared;
use crate::stats::CloseReason;

/// Starts the background task if it is not running and a runtime is at hand.
pub(crate) fn ensure_started<M: Manager>(shared: &Arc<Shared<M>>) {
    if shared
        .maintenance_started
        .load(std::sync::atomic::Ordering::Acquire)
    {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !shared
        .maintenance_started
        .swap(true, std::sync::atomic::Ordering::AcqRel)
    {
        handle.spawn(run(Arc::downgrade(shared), Arc::clone(&shared.wake)));
    }
}

/// Marks the background task stopped when it ends, also when its runtime shuts down and drops
/// it: the next acquire then starts it again on the caller's runtime, so queued callers'
/// deadlines and the clock never depend on a runtime that is gone.
struct Running<M: Manager>(Weak<Shared<M>>);

impl<M: Manager> Drop for Running<M> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.lock().sleeping_until = None;
            shared
                .maintenance_started
                .store(false, std::sync::atomic::Ordering::Release);
        }
    }
}

async fn run<M: Manager>(pool: Weak<Shared<M>>, wake: Arc<tokio::sync::Notify>) {
    let _running = Running(pool.clone());
    // Upkeep runs every `maintenance_interval`, when connects wait for their moment
    // (`wake_at`) and when woken; in between, while the pool is busy, the clock is marked
    // stale every `clock::RESOLUTION`. Every time it wakes, it times out queued callers whose
    // deadline passed, and it sleeps no later than the next deadline.
    let mut upkeep_due = true;
    let mut upkeep_at = Instant::now();
    loop {
        let next = {
            let Some(shared) = pool.upgrade() else { return };
            if shared.is_drained() {
                return;
            }
            let now = Instant::now();
            let wake_at = {
                let mut st = shared.lock();
                st.sleeping_until = None;
                st.expire_waiters(now);
                st.wake_at
            };
            if upkeep_due || now >= upkeep_at || wake_at.is_some_and(|at| at <= now) {
                // Keepalive checks may take up to `check_timeout` each; the clock must not
                // stand still for everyone else meanwhile.
                let mut upkeep = std::pin::pin!(round(&shared));
                while tokio::time::timeout(RESOLUTION, upkeep.as_mut())
                    .await
                    .is_err()
                {
                    shared.clock.tick();
                }
                upkeep_at = Instant::now() + shared.lock().config.maintenance_interval;
            }
            let ticking = shared.clock.tick();
            let mut st = shared.lock();
            let mut next = [st.wake_at, st.next_deadline]
                .into_iter()
                .flatten()
                .fold(upkeep_at, Instant::min);
            if ticking {
                next = next.min(Instant::now() + RESOLUTION);
            }
            st.sleeping_until = Some(next);
            next
        };
        upkeep_due = tokio::time::timeout_at(next, wake.notified()).await.is_ok();
    }
}

/// One round of upkeep.
async fn round<M: Manager>(shared: &Arc<Shared<M>>) {
    let now = shared.clock.precise();
    let mut closing: Vec<(Live<M::Connection>, CloseReason)> = Vec::new();
    // Idle connections taken out for a reset and/or a keepalive check, counted in use meanwhile.
    let mut to_tend: Vec<(Live<M::Connection>, bool)> = Vec::new();
    let mut leaks = Vec::new();
    let (check_timeout, reset_timeout);
    {
        let mut st = shared.lock();
        st.wake_at = None;
        check_timeout = st.config.check_timeout;
        reset_timeout = st.config.reset_timeout;
        let min_idle = st.config.min_idle;
        let max_lifetime = st.config.max_lifetime.map_or(u64::MAX, nanos);
        let idle_timeout = st.config.idle_timeout.map(nanos);
        let keepalive = st.config.keepalive_interval.map(nanos);
        let generation = st.generation;
        let mut excess = st.size().saturating_sub(st.config.max_size);
        let mut idle_left = st.idle.len();
        let idle = std::mem::take(&mut st.idle);
        for live in idle {
            let meta = &live.meta;
            let reason = if meta.generation != generation || excess > 0 {
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
            match reason {
                Some(reason) => {
                    idle_left -= 1;
                    st.stats.closes.add(reason);
                    closing.push((live, reason));
                }
                None => {
                    let check =
                        keepalive.is_some_and(|k| now.saturating_sub(meta.last_active()) >= k);
                    // A returned connection is cleaned here rather than left to its next
                    // checkout, so an open transaction (and the locks it holds) does not sit in
                    // the pool until someone needs the connection.
                    if check || meta.dirty {
                        st.in_use += 1;
                        to_tend.push((live, check));
                    } else {
                        st.idle.push_back(live);
                    }
                }
            }
        }
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
        tracing::debug!(target: "pool_core::close", id = live.meta.id, reason = reason.as_str(), "closing idle connection");
        drop(live);
    }
    for record in &leaks {
        leak::suspected(record, now);
    }
    for (live, check) in to_tend {
        let mut checkout = Checkout::new(shared, live);
        // Manager code that panics counts as a failure: unwinding out of here would lose the
        // connections still waiting in `to_tend` (counted in use, never given back) and end
        // this task.
        let live = checkout.live();
        if live.meta.dirty {
            let needed = catch_unwind(AssertUnwindSafe(|| {
                shared.manager.needs_reset(&mut live.conn)
            }))
            .unwrap_or(true);
            if needed {
                let reset = CatchUnwind(Box::pin(shared.manager.reset(&mut live.conn)));
                if !matches!(bounded(reset, || reset_timeout).await, Some(Ok(Ok(())))) {
                    checkout.close(CloseReason::ResetFailed);
                    continue;
                }
            }
            checkout.live().meta.dirty = false;
        }
        if check {
            let check = CatchUnwind(Box::pin(shared.manager.check(&mut checkout.live().conn)));
            if !matches!(bounded(check, || check_timeout).await, Some(Ok(Ok(())))) {
                checkout.close(CloseReason::CheckFailed);
                continue;
            }
            checkout.live().meta.last_checked = shared.clock.now();
        }
        shared.restore(checkout.keep());
    }
}

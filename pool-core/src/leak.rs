//! Leak detection: connections held longer than `leak_threshold` are reported once, naming
//! where they were checked out, and noted again when they come back.

use std::panic::Location;
use std::time::Duration;

use crate::clock::Nanos;

/// A connection held longer than the leak threshold, as [`Pool::leaks`](crate::Pool::leaks)
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leak {
    /// The connection's number (as in [`ConnectionMetrics::id`](crate::ConnectionMetrics::id)).
    pub id: u64,
    /// Where it was checked out.
    pub checked_out_at: &'static Location<'static>,
    /// How long it has been out.
    pub held: Duration,
}

/// The checkouts among `records` held for `threshold` or longer at `now`, longest held first.
pub(crate) fn over<'a>(
    records: impl Iterator<Item = &'a LeakRecord>,
    threshold: Nanos,
    now: Nanos,
) -> Vec<Leak> {
    let mut leaks: Vec<Leak> = records
        .filter(|r| now.saturating_sub(r.since) >= threshold)
        .map(|r| Leak {
            id: r.id,
            checked_out_at: r.caller,
            held: Duration::from_nanos(now.saturating_sub(r.since)),
        })
        .collect();
    leaks.sort_by(|a, b| b.held.cmp(&a.held).then(a.id.cmp(&b.id)));
    leaks
}

/// A checkout the pool keeps track of (with a leak threshold or self-deadlock detection on):
/// which connection, since when, where and by which task.
#[derive(Clone, Copy)]
pub(crate) struct LeakRecord {
    pub(crate) id: u64,
    pub(crate) since: Nanos,
    pub(crate) caller: &'static Location<'static>,
    /// The tokio task that checked it out, if it was checked out in one.
    pub(crate) task: Option<tokio::task::Id>,
    pub(crate) warned: bool,
}

/// Reports a connection held past the threshold.
pub(crate) fn suspected(record: &LeakRecord, now: Nanos) {
    tracing::warn!(
        target: "pool_core::leak",
        id = record.id,
        held_ms = now.saturating_sub(record.since) / 1_000_000,
        checked_out_at = %record.caller,
        "connection held longer than the leak threshold; checked out at {}",
        record.caller,
    );
}

/// Notes that a connection reported as leaked came back after all.
pub(crate) fn returned(record: &LeakRecord, now: Nanos) {
    if record.warned {
        tracing::info!(
            target: "pool_core::leak",
            id = record.id,
            held_ms = now.saturating_sub(record.since) / 1_000_000,
            checked_out_at = %record.caller,
            "connection reported as leaked was returned",
        );
    }
}

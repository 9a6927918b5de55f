//! Leak detection: connections held longer than `leak_threshold` are reported once, naming
//! where they were checked out, and noted again when they come back.

use std::panic::Location;

use crate::clock::Nanos;

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

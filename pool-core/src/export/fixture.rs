//! A fixed snapshot for the exports' golden tests.

use std::panic::Location;
use std::time::Duration;

use super::Snapshot;
use crate::health::Health;
use crate::leak::Leak;
use crate::priority::Priority;
use crate::stats::{CloseReason, Stats, Status};

/// A pool named `orders` with known figures: three acquires served directly, two after
/// waiting 2 ms and 40 ms, one timed out; two connects; one leak.
pub(crate) fn snapshot() -> Snapshot {
    let mut stats = Stats {
        connects_ok: 2,
        connects_failed: 1,
        acquires_direct: 3,
        acquires_timed_out: 1,
        acquires_cancelled: 1,
        wakes_deferred: 2,
        uptime: Duration::from_secs(100),
        max_size: 4,
        ..Stats::default()
    };
    stats.record_waited(Priority::Normal, Duration::from_millis(2));
    stats.record_waited(Priority::High, Duration::from_millis(40));
    stats.closes.add(CloseReason::Expired);
    stats.closes.add(CloseReason::Broken);
    stats.connect_time.record(Duration::from_millis(8));
    stats.connect_time.record(Duration::from_millis(12));
    for held in [10, 20, 30, 140] {
        stats.record_use(held * 1000, 9);
    }
    Snapshot {
        name: "orders".to_owned(),
        taken_at_unix_ms: 1_700_000_000_000,
        health: Health::Healthy,
        status: Status {
            size: 2,
            idle: 1,
            in_use: 1,
            connecting: 0,
            waiting: 1,
            max_size: 4,
        },
        min_idle: 1,
        stats: stats.settled(),
        leaks: vec![Leak {
            id: 7,
            checked_out_at: Location::caller(),
            held: Duration::from_millis(61_500),
        }],
    }
}

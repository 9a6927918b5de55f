//! CSV export (feature `csv`), through the `csv` crate: one row per snapshot.

use super::Snapshot;
use crate::stats::{CloseReason, WaitHistogram};

/// The columns, in order. New columns are only ever added at the end.
pub const CSV_COLUMNS: [&str; 45] = [
    "name",
    "taken_at_unix_ms",
    "health",
    "size",
    "idle",
    "in_use",
    "connecting",
    "waiting",
    "max_size",
    "min_idle",
    "connects_ok",
    "connects_failed",
    "connections_added",
    "checks_failed",
    "acquires_direct",
    "acquires_waited",
    "acquires_timed_out",
    "acquires_rejected",
    "acquires_cancelled",
    "wait_p50_seconds",
    "wait_p95_seconds",
    "wait_p99_seconds",
    "wait_max_seconds",
    "use_mean_seconds",
    "use_p99_seconds",
    "connect_mean_seconds",
    "utilisation",
    "reuse_rate",
    "leaks",
    "closed_total",
    "closed_broken",
    "closed_check_failed",
    "closed_reset_failed",
    "closed_expired",
    "closed_idle_timeout",
    "closed_max_uses",
    "closed_retired",
    "closed_retain",
    "closed_abandoned",
    "closed_pool_closed",
    "closed_recycled",
    "warnings_busy",
    "warnings_slow_waits",
    "warnings_overdue",
    "lifetimes_shortened",
];

/// The close reasons of the `closed_*` columns, in their order.
const CLOSE_REASONS: [CloseReason; 11] = [
    CloseReason::Broken,
    CloseReason::CheckFailed,
    CloseReason::ResetFailed,
    CloseReason::Expired,
    CloseReason::IdleTimeout,
    CloseReason::MaxUses,
    CloseReason::Retired,
    CloseReason::Retain,
    CloseReason::Abandoned,
    CloseReason::PoolClosed,
    CloseReason::Recycled,
];

/// A header row and one row per snapshot, columns as [`CSV_COLUMNS`]; durations in seconds.
///
/// # Errors
///
/// A `csv` error, which writing to memory cannot cause; it is passed on rather than hidden
/// behind a panic.
pub fn to_csv(snapshots: &[Snapshot]) -> Result<String, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_COLUMNS)?;
    for snapshot in snapshots {
        out.write_record(row(snapshot))?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("the rows are built from UTF-8 strings"))
}

/// One snapshot's values, in the order of [`CSV_COLUMNS`].
fn row(s: &Snapshot) -> Vec<String> {
    let secs = |h: &WaitHistogram, q: f64| h.quantile(q).as_secs_f64().to_string();
    let st = &s.stats;
    let mut row = vec![
        s.name.clone(),
        s.taken_at_unix_ms.to_string(),
        s.health.as_str().to_owned(),
        s.status.size.to_string(),
        s.status.idle.to_string(),
        s.status.in_use.to_string(),
        s.status.connecting.to_string(),
        s.status.waiting.to_string(),
        s.status.max_size.to_string(),
        s.min_idle.to_string(),
        st.connects_ok.to_string(),
        st.connects_failed.to_string(),
        st.connections_added.to_string(),
        st.checks_failed.to_string(),
        st.acquires_direct.to_string(),
        st.acquires_waited.to_string(),
        st.acquires_timed_out.to_string(),
        st.acquires_rejected.to_string(),
        st.acquires_cancelled.to_string(),
        secs(&st.wait_time, 0.50),
        secs(&st.wait_time, 0.95),
        secs(&st.wait_time, 0.99),
        st.wait_time.max().as_secs_f64().to_string(),
        st.use_time.mean().as_secs_f64().to_string(),
        secs(&st.use_time, 0.99),
        st.connect_time.mean().as_secs_f64().to_string(),
        st.utilisation().to_string(),
        st.reuse_rate().to_string(),
        s.leaks.len().to_string(),
        st.closes.total().to_string(),
    ];
    row.extend(CLOSE_REASONS.iter().map(|&r| st.closes.get(r).to_string()));
    row.extend(
        [
            st.warnings.busy,
            st.warnings.slow_waits,
            st.warnings.overdue,
            st.lifetimes_shortened,
        ]
        .map(|n| n.to_string()),
    );
    debug_assert_eq!(row.len(), CSV_COLUMNS.len());
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::fixture;

    #[test]
    fn golden() {
        let mut other = fixture::snapshot();
        other.name = "reports, nightly".to_owned();
        let csv = to_csv(&[fixture::snapshot(), other]).unwrap();
        assert_eq!(csv, include_str!("golden/snapshots.csv"));
    }

    #[test]
    fn every_close_reason_has_its_column() {
        for reason in CloseReason::ALL {
            assert!(CLOSE_REASONS.contains(&reason), "no column for {reason:?}");
        }
        let first = CSV_COLUMNS
            .iter()
            .position(|&c| c == "closed_broken")
            .unwrap();
        for (i, reason) in CLOSE_REASONS.iter().enumerate() {
            assert_eq!(
                CSV_COLUMNS[first + i],
                format!("closed_{}", reason.as_str())
            );
        }
    }
}

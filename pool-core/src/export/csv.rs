//! CSV export (feature `csv`), through the `csv` crate: one row per snapshot.

use super::Snapshot;
use crate::stats::{CloseReason, WaitHistogram};

/// The columns before the close reasons, in order.
const FIXED_COLUMNS: [&str; 35] = [
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
    "wakes_deferred",
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
    "warnings_busy",
    "warnings_slow_waits",
    "warnings_overdue",
    "lifetimes_shortened",
    "closed_total",
];

/// The columns, in order: the figures, then `closed_<reason>` for every
/// [`CloseReason`](crate::CloseReason) in declaration order. The order is stable: a new
/// figure or close reason is a new last column.
pub fn csv_columns() -> Vec<String> {
    FIXED_COLUMNS
        .iter()
        .map(|&c| c.to_owned())
        .chain(
            CloseReason::ALL
                .iter()
                .map(|r| format!("closed_{}", r.as_str())),
        )
        .collect()
}

/// A header row and one row per snapshot, columns as [`csv_columns`] says; durations in
/// seconds.
///
/// # Errors
///
/// A `csv` error, which writing to memory cannot cause; it is passed on rather than hidden
/// behind a panic.
pub fn to_csv(snapshots: &[Snapshot]) -> Result<String, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(csv_columns())?;
    for snapshot in snapshots {
        out.write_record(row(snapshot))?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("the rows are built from UTF-8 strings"))
}

/// One snapshot's values, in the order of [`csv_columns`].
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
        st.wakes_deferred.to_string(),
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
        st.warnings.busy.to_string(),
        st.warnings.slow_waits.to_string(),
        st.warnings.overdue.to_string(),
        st.lifetimes_shortened.to_string(),
        st.closes.total().to_string(),
    ];
    row.extend(
        CloseReason::ALL
            .iter()
            .map(|&r| st.closes.get(r).to_string()),
    );
    debug_assert_eq!(row.len(), FIXED_COLUMNS.len() + CloseReason::ALL.len());
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
    fn the_close_reasons_come_last() {
        let columns = csv_columns();
        assert_eq!(columns.len(), FIXED_COLUMNS.len() + CloseReason::ALL.len());
        assert_eq!(columns[FIXED_COLUMNS.len()], "closed_broken");
        assert_eq!(columns.last().unwrap(), "closed_recycled");
    }
}

//! JSON export (feature `json`), through `serde_json`.

use super::Snapshot;

/// The snapshots as a JSON array, one object per pool (see the `Serialize` impls for the
/// shape: durations in seconds, histograms as their summaries).
///
/// # Errors
///
/// A `serde_json` error, which the pool's types cannot cause; it is passed on rather than
/// hidden behind a panic.
pub fn to_json(snapshots: &[Snapshot]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(snapshots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::fixture;

    #[test]
    fn golden() {
        let snapshot = fixture::snapshot();
        let site = snapshot.leaks[0].checked_out_at.to_string();
        let json = to_json(&[snapshot]).unwrap();
        let expected = include_str!("golden/snapshot.json").replace("{site}", &site);
        assert_eq!(json, expected.trim_end());
    }
}

//! `serde::Serialize` for the pool's figures (feature `serde`): durations as seconds
//! (`f64`), histograms as their summary, close reasons and health as their short names.

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use super::Snapshot;
use crate::connection::ConnectionMetrics;
use crate::health::Health;
use crate::leak::Leak;
use crate::stats::{CloseReason, Closes, PriorityStats, Stats, Status, WaitHistogram};
use crate::warnings::Warnings;

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for CloseReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Closes {
    /// A map from each reason's short name to its count, in a fixed order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(CloseReason::ALL.len()))?;
        for (reason, n) in self.iter() {
            map.serialize_entry(reason.as_str(), &n)?;
        }
        map.end()
    }
}

impl Serialize for WaitHistogram {
    /// The summary: count, sum, mean, p50, p95, p99 and max, durations in seconds.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut h = s.serialize_struct("Histogram", 7)?;
        h.serialize_field("count", &self.count())?;
        h.serialize_field("sum_seconds", &self.sum().as_secs_f64())?;
        h.serialize_field("mean_seconds", &self.mean().as_secs_f64())?;
        h.serialize_field("p50_seconds", &self.p50().as_secs_f64())?;
        h.serialize_field("p95_seconds", &self.p95().as_secs_f64())?;
        h.serialize_field("p99_seconds", &self.p99().as_secs_f64())?;
        h.serialize_field("max_seconds", &self.max().as_secs_f64())?;
        h.end()
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Status", 6)?;
        st.serialize_field("size", &self.size)?;
        st.serialize_field("idle", &self.idle)?;
        st.serialize_field("in_use", &self.in_use)?;
        st.serialize_field("connecting", &self.connecting)?;
        st.serialize_field("waiting", &self.waiting)?;
        st.serialize_field("max_size", &self.max_size)?;
        st.end()
    }
}

impl Serialize for Warnings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut w = s.serialize_struct("Warnings", 3)?;
        w.serialize_field("busy", &self.busy)?;
        w.serialize_field("slow_waits", &self.slow_waits)?;
        w.serialize_field("overdue", &self.overdue)?;
        w.end()
    }
}

impl Serialize for PriorityStats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut p = s.serialize_struct("PriorityStats", 4)?;
        p.serialize_field("direct", &self.direct)?;
        p.serialize_field("waited", &self.waited)?;
        p.serialize_field("timed_out", &self.timed_out)?;
        p.serialize_field("wait_time", &self.wait_time)?;
        p.end()
    }
}

/// The acquires by priority, keyed by the priority's name.
struct ByPriority<'a>(&'a [PriorityStats; 4]);

impl Serialize for ByPriority<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(4))?;
        for priority in crate::priority::Priority::ALL {
            map.serialize_entry(&priority, &self.0[priority as usize])?;
        }
        map.end()
    }
}

impl Serialize for Stats {
    /// Every counter, the histograms' summaries, and the derived `utilisation` and
    /// `reuse_rate`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Stats", 22)?;
        st.serialize_field("connects_ok", &self.connects_ok)?;
        st.serialize_field("connects_failed", &self.connects_failed)?;
        st.serialize_field("connections_added", &self.connections_added)?;
        st.serialize_field("checks_failed", &self.checks_failed)?;
        st.serialize_field("warnings", &self.warnings)?;
        st.serialize_field("lifetimes_shortened", &self.lifetimes_shortened)?;
        st.serialize_field("closes", &self.closes)?;
        st.serialize_field("acquires_direct", &self.acquires_direct)?;
        st.serialize_field("acquires_waited", &self.acquires_waited)?;
        st.serialize_field("acquires_timed_out", &self.acquires_timed_out)?;
        st.serialize_field("acquires_rejected", &self.acquires_rejected)?;
        st.serialize_field("acquires_cancelled", &self.acquires_cancelled)?;
        st.serialize_field("wakes_deferred", &self.wakes_deferred)?;
        st.serialize_field("wait_time", &self.wait_time)?;
        st.serialize_field("use_time", &self.use_time)?;
        st.serialize_field("connect_time", &self.connect_time)?;
        st.serialize_field("priorities", &ByPriority(&self.priorities))?;
        st.serialize_field("acquires_by_hour", &self.acquires_by_hour)?;
        st.serialize_field("uptime_seconds", &self.uptime.as_secs_f64())?;
        st.serialize_field("max_size", &self.max_size)?;
        st.serialize_field("utilisation", &self.utilisation())?;
        st.serialize_field("reuse_rate", &self.reuse_rate())?;
        st.end()
    }
}

impl Serialize for Leak {
    /// `id`, `checked_out_at` (`file:line:column`) and `held_seconds`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut l = s.serialize_struct("Leak", 3)?;
        l.serialize_field("id", &self.id)?;
        l.serialize_field("checked_out_at", &self.checked_out_at.to_string())?;
        l.serialize_field("held_seconds", &self.held.as_secs_f64())?;
        l.end()
    }
}

impl Serialize for ConnectionMetrics {
    /// `id`, `uses`, and how long ago it was opened, last used and last checked, in seconds
    /// (instants mean nothing outside the process).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut c = s.serialize_struct("ConnectionMetrics", 5)?;
        c.serialize_field("id", &self.id)?;
        c.serialize_field("uses", &self.uses)?;
        c.serialize_field("age_seconds", &self.age().as_secs_f64())?;
        c.serialize_field(
            "since_used_seconds",
            &self.last_used.elapsed().as_secs_f64(),
        )?;
        c.serialize_field(
            "since_checked_seconds",
            &self.last_checked.elapsed().as_secs_f64(),
        )?;
        c.end()
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut snap = s.serialize_struct("Snapshot", 7)?;
        snap.serialize_field("name", &self.name)?;
        snap.serialize_field("taken_at_unix_ms", &self.taken_at_unix_ms)?;
        snap.serialize_field("health", &self.health)?;
        snap.serialize_field("status", &self.status)?;
        snap.serialize_field("min_idle", &self.min_idle)?;
        snap.serialize_field("stats", &self.stats)?;
        snap.serialize_field("leaks", &self.leaks)?;
        snap.end()
    }
}

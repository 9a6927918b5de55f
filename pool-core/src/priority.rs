//! [`Priority`]: the order in which queued callers are served.

/// How urgently a caller wants a connection, for [`Pool::get_with`](crate::Pool::get_with).
///
/// Queued callers are served highest priority first, first come first served within a
/// priority. A caller never takes an idle connection ahead of a queued caller of a higher
/// priority. So that a steady stream of urgent callers cannot starve the others, a caller that
/// has waited longer than [`Config::priority_boost_after`](crate::Config::priority_boost_after)
/// is served as if it were [`Critical`](Priority::Critical), oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Priority {
    /// Background work that can wait: reports, batch jobs.
    Low = 0,
    /// Ordinary requests: what [`Pool::get`](crate::Pool::get) uses.
    #[default]
    Normal = 1,
    /// Requests a user is waiting on, ahead of ordinary traffic.
    High = 2,
    /// Health checks, admin and recovery work: served before everything else.
    Critical = 3,
}

impl Priority {
    /// Every priority, lowest first; a priority's index in this list is `as usize`.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// Its name in lower case, as used in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

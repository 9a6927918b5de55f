//! [`Recycle`]: what happens to a connection when it comes back.

use std::time::Duration;

use crate::clock::{nanos, Nanos};
use crate::connection::Meta;

/// How a returned connection is made ready for its next user.
///
/// The work is never done in the returning caller's `drop`: a reset runs when the connection is
/// next handed out, or in the background about 10 ms after its return if it sits idle that long;
/// a replacement is opened in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Recycle {
    /// [`Manager::reset`](crate::Manager::reset), unless
    /// [`Manager::needs_reset`](crate::Manager::needs_reset) says the caller changed nothing.
    #[default]
    Fast,
    /// [`Manager::full_reset`](crate::Manager::full_reset) every time, whatever the caller did
    /// (PostgreSQL `DISCARD ALL`, MySQL's reset-connection, Redis `RESET`).
    Checked,
    /// Closed, and a new connection opened in its place (closed as
    /// [`CloseReason::Recycled`](crate::CloseReason::Recycled)).
    Replace,
    /// Chosen per connection from its age, uses and what the caller did, as
    /// [`AdaptiveRecycle`] says.
    Adaptive(AdaptiveRecycle),
}

/// The rules of [`Recycle::Adaptive`], tried in this order: a connection that reached
/// `replace_after_age` or `replace_after_uses` is replaced; one held at least `full_reset_after`
/// that needs a reset gets the full one; the others are recycled as [`Recycle::Fast`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct AdaptiveRecycle {
    /// Replace connections at least this old. Default `None`.
    pub replace_after_age: Option<Duration>,
    /// Replace connections handed out at least this many times. Default `None`.
    pub replace_after_uses: Option<u64>,
    /// A connection held at least this long (a long session) that needs a reset gets
    /// [`Manager::full_reset`](crate::Manager::full_reset). Default 1 s.
    pub full_reset_after: Duration,
}

impl Default for AdaptiveRecycle {
    fn default() -> Self {
        AdaptiveRecycle {
            replace_after_age: None,
            replace_after_uses: None,
            full_reset_after: Duration::from_secs(1),
        }
    }
}

impl AdaptiveRecycle {
    /// Sets the age at which connections are replaced.
    pub fn replace_after_age(mut self, age: impl Into<Option<Duration>>) -> Self {
        self.replace_after_age = age.into();
        self
    }

    /// Sets the use count at which connections are replaced.
    pub fn replace_after_uses(mut self, uses: impl Into<Option<u64>>) -> Self {
        self.replace_after_uses = uses.into();
        self
    }

    /// Sets how long a connection must be held to get the full reset.
    pub fn full_reset_after(mut self, held: Duration) -> Self {
        self.full_reset_after = held;
        self
    }
}

/// What a returned connection needs before it is handed out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cleanup {
    /// Nothing.
    None,
    /// `Manager::reset`, unless `Manager::needs_reset` says otherwise.
    Reset,
    /// `Manager::full_reset`, always.
    Full,
}

/// What to do with a returned connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep(Cleanup),
    Replace,
}

impl Recycle {
    /// The verdict for a connection handed out at `handed_out` and returned at `now`;
    /// `needs_reset` is the manager's answer for it.
    pub(crate) fn verdict(
        &self,
        meta: &Meta,
        handed_out: Nanos,
        now: Nanos,
        needs_reset: bool,
    ) -> Verdict {
        match self {
            Recycle::Fast => Verdict::Keep(Cleanup::Reset),
            Recycle::Checked => Verdict::Keep(Cleanup::Full),
            Recycle::Replace => Verdict::Replace,
            Recycle::Adaptive(rules) => {
                let old = rules
                    .replace_after_age
                    .is_some_and(|age| now.saturating_sub(meta.created()) >= nanos(age));
                let worn = rules.replace_after_uses.is_some_and(|n| meta.uses() >= n);
                if old || worn {
                    Verdict::Replace
                } else if now.saturating_sub(handed_out) >= nanos(rules.full_reset_after)
                    && needs_reset
                {
                    Verdict::Keep(Cleanup::Full)
                } else {
                    Verdict::Keep(Cleanup::Reset)
                }
            }
        }
    }
}

//! [`AgingPolicy`]: how long a connection lives, and how that changes while connections fail.

use std::time::Duration;

use crate::clock::{nanos, Nanos};

/// How connections age out of the pool.
///
/// Every policy closes a connection once it reaches [`Config::max_lifetime`](crate::Config::max_lifetime)
/// (less a random part, so connections opened together do not expire together) or has been handed
/// out [`Config::max_uses`](crate::Config::max_uses) times, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum AgingPolicy {
    /// The lifetime and use count as configured, always.
    #[default]
    Fixed,
    /// The lifetime is shortened while the connections of the pool keep failing, so a degrading
    /// server's connections are replaced sooner, and restored once failures subside.
    Adaptive(AdaptiveAging),
}

/// The settings of [`AgingPolicy::Adaptive`].
///
/// A failure is a connection closed because it broke, failed its check or failed its reset; a
/// success is a connection returned in working order. The rate is failures over both, counted
/// over the last one to two `window`s.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct AdaptiveAging {
    /// Above this share of failures the lifetime is shortened. Default 0.05 (5 %).
    pub error_rate: f64,
    /// The lifetime is restored once the rate falls to half of `error_rate` or below.
    /// Default 60 s.
    pub window: Duration,
    /// Fewer outcomes than this in the window say nothing either way. Default 20.
    pub min_outcomes: u32,
    /// The lifetime while shortened, as a share of `max_lifetime`. Default 0.1.
    pub shortened_to: f64,
}

impl Default for AdaptiveAging {
    fn default() -> Self {
        AdaptiveAging {
            error_rate: 0.05,
            window: Duration::from_secs(60),
            min_outcomes: 20,
            shortened_to: 0.1,
        }
    }
}

impl AdaptiveAging {
    /// Sets the failure share above which lifetimes are shortened.
    pub fn error_rate(mut self, rate: f64) -> Self {
        self.error_rate = rate;
        self
    }

    /// Sets the window the failure share is counted over.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets how many outcomes the window needs before the share counts.
    pub fn min_outcomes(mut self, n: u32) -> Self {
        self.min_outcomes = n;
        self
    }

    /// Sets the lifetime while shortened, as a share of `max_lifetime`.
    pub fn shortened_to(mut self, share: f64) -> Self {
        self.shortened_to = share;
        self
    }
}

/// Recent outcomes of connections, in two buckets of one window each: the rate reads the
/// current bucket and the one before, so it neither forgets everything at a bucket's start nor
/// remembers a burst for ever.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    bucket_start: Nanos,
    current: (u64, u64),
    previous: (u64, u64),
    /// Whether lifetimes are shortened now.
    pub(crate) shortened: bool,
}

impl Outcomes {
    /// Records one outcome at `now`; returns whether lifetimes are now to be shortened or
    /// restored (`Some(shortened)`), when that changed.
    pub(crate) fn record(
        &mut self,
        failed: bool,
        now: Nanos,
        policy: &AdaptiveAging,
    ) -> Option<bool> {
        let window = nanos(policy.window).max(1);
        let since = now.saturating_sub(self.bucket_start);
        if since >= window {
            self.previous = if since >= 2 * window {
                (0, 0)
            } else {
                self.current
            };
            self.current = (0, 0);
            self.bucket_start = now;
        }
        self.current.0 += 1;
        self.current.1 += u64::from(failed);
        let outcomes = self.current.0 + self.previous.0;
        if outcomes < u64::from(policy.min_outcomes) {
            return None;
        }
        let rate = (self.current.1 + self.previous.1) as f64 / outcomes as f64;
        let shortened = if self.shortened {
            rate > policy.error_rate / 2.0
        } else {
            rate > policy.error_rate
        };
        (shortened != std::mem::replace(&mut self.shortened, shortened)).then_some(shortened)
    }

    /// The failure share the window holds now, if it holds enough outcomes to say.
    pub(crate) fn rate(&self, policy: &AdaptiveAging) -> Option<f64> {
        let outcomes = self.current.0 + self.previous.0;
        (outcomes >= u64::from(policy.min_outcomes).max(1))
            .then(|| (self.current.1 + self.previous.1) as f64 / outcomes as f64)
    }
}

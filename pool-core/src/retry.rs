//! [`Retry`]: how [`Pool::get_retrying`](crate::Pool::get_retrying) keeps trying while the
//! server is unreachable, and when it gives up.

use std::time::Duration;

/// How a retrying acquire ([`Pool::get_retrying`](crate::Pool::get_retrying)) spaces its
/// attempts and when it gives up with [`Error::ServiceUnavailable`](crate::Error).
///
/// Between attempts it pauses `initial_delay`, then `multiplier` times longer each time up to
/// `max_delay`, each pause shortened by a random part of up to a quarter so that many callers
/// do not retry in step. A pause ends early when the pool recovers.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pool_core::Retry;
///
/// // Answer within 5 s, and wait as long as it takes while the service starts.
/// let retry = Retry::default()
///     .give_up_after(Some(Duration::from_secs(5)))
///     .until_first_success(true);
/// assert_eq!(retry.initial_delay, Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct Retry {
    /// The first pause. Default 50 ms.
    pub initial_delay: Duration,
    /// How much longer each pause is than the one before. Default 2.
    pub multiplier: f64,
    /// The longest pause. Default 2 s.
    pub max_delay: Duration,
    /// The longest one attempt waits for a connection (it also never waits past the pool's
    /// own acquire timeout or the give-up moment). Default 5 s.
    pub attempt_timeout: Duration,
    /// When to give up, counted from the call; `None` never gives up. Default 30 s.
    pub give_up_after: Option<Duration>,
    /// Until the pool has opened its first connection, retry without limit (for services that
    /// start before their database), then give up after `give_up_after` as usual.
    /// Default `false`.
    pub until_first_success: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial_delay: Duration::from_millis(50),
            multiplier: 2.0,
            max_delay: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
            give_up_after: Some(Duration::from_secs(30)),
            until_first_success: false,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl Retry {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`Retry::initial_delay`].
    initial_delay: Duration;
    /// Sets [`Retry::multiplier`] (values below 1 count as 1).
    multiplier: f64;
    /// Sets [`Retry::max_delay`].
    max_delay: Duration;
    /// Sets [`Retry::attempt_timeout`].
    attempt_timeout: Duration;
    /// Sets [`Retry::give_up_after`].
    give_up_after: Option<Duration>;
    /// Sets [`Retry::until_first_success`].
    until_first_success: bool;
}

impl Retry {
    /// The pause after `delay`, and the one to use next time.
    pub(crate) fn pause(&self, delay: Duration) -> (Duration, Duration) {
        let delay = delay.min(self.max_delay);
        let jittered = delay.mul_f64(1.0 - fastrand::f64() / 4.0);
        let factor = if self.multiplier > 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let next =
            Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(Duration::MAX);
        (jittered, next.min(self.max_delay))
    }
}

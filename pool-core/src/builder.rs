//! [`Builder`]: configures and builds a [`Pool`].

use std::sync::Arc;
use std::time::Duration;

use crate::aging::AgingPolicy;
use crate::config::{Config, Fairness, IdleOrder, SelfDeadlock};
use crate::error::BuildError;
use crate::maintenance;
use crate::manager::Manager;
use crate::pool::Pool;
use crate::recycle::Recycle;
use crate::shared::Shared;
use crate::warnings::SoftLimits;

/// Configures a [`Pool`]. Setters never panic; [`build`](Self::build) and
/// [`build_lazy`](Self::build_lazy) validate everything at once and name the field at fault.
///
/// # Examples
///
/// ```
/// # use pool_core::{Manager, Pool};
/// # struct Counter;
/// # impl Manager for Counter {
/// #     type Connection = u64;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(0) }
/// #     async fn check(&self, _: &mut u64) -> Result<(), std::io::Error> { Ok(()) }
/// # }
/// use std::time::Duration;
///
/// let err = Pool::builder(Counter).max_size(2).min_idle(3).build_lazy().unwrap_err();
/// assert_eq!(err.to_string(), "invalid pool configuration: `min_idle` must not exceed max_size");
///
/// let pool = Pool::builder(Counter)
///     .max_size(16)
///     .acquire_timeout(Duration::from_secs(2))
///     .build_lazy()
///     .unwrap();
/// assert_eq!(pool.status().max_size, 16);
/// ```
#[must_use = "a builder does nothing until built"]
pub struct Builder<M: Manager> {
    manager: M,
    config: Config,
}

/// Shows the configuration; the manager is left out, as it need not be `Debug`.
impl<M: Manager> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    )*};
}

macro_rules! optional_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<Option<$ty>>) -> Self {
            self.config.$name = value.into();
            self
        }
    )*};
}

impl<M: Manager> Builder<M> {
    /// A builder with the default [`Config`].
    pub fn new(manager: M) -> Self {
        Builder {
            manager,
            config: Config::default(),
        }
    }

    /// Sets [`Config::name`].
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Some(name.into());
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    setters! {
        /// Sets [`Config::max_size`].
        max_size: usize;
        /// Sets [`Config::min_idle`].
        min_idle: usize;
        /// Sets [`Config::initial_size`].
        initial_size: usize;
        /// Sets [`Config::connect_timeout`].
        connect_timeout: Duration;
        /// Sets [`Config::check_timeout`].
        check_timeout: Duration;
        /// Sets [`Config::reset_timeout`].
        reset_timeout: Duration;
        /// Sets [`Config::check_on_checkout`].
        check_on_checkout: bool;
        /// Sets [`Config::skip_check_within`].
        skip_check_within: Duration;
        /// Sets [`Config::idle_order`].
        idle_order: IdleOrder;
        /// Sets [`Config::fairness`].
        fairness: Fairness;
        /// Sets [`Config::self_deadlock`].
        self_deadlock: SelfDeadlock;
        /// Sets [`Config::max_waiters_by_priority`].
        max_waiters_by_priority: [Option<usize>; 4];
        /// Sets [`Config::max_concurrent_connects`].
        max_concurrent_connects: usize;
        /// Sets [`Config::connect_backoff`].
        connect_backoff: Duration;
        /// Sets [`Config::connect_backoff_max`].
        connect_backoff_max: Duration;
        /// Sets [`Config::maintenance_interval`].
        maintenance_interval: Duration;
        /// Sets [`Config::maintenance_interval_min`].
        maintenance_interval_min: Duration;
        /// Sets [`Config::aging`].
        aging: AgingPolicy;
        /// Sets [`Config::recycle`].
        recycle: Recycle;
        /// Sets [`Config::check_on_return`].
        check_on_return: bool;
    }

    optional_setters! {
        /// Sets [`Config::acquire_timeout`]; `None` waits forever.
        acquire_timeout: Duration;
        /// Sets [`Config::max_lifetime`]; `None` keeps connections forever.
        max_lifetime: Duration;
        /// Sets [`Config::idle_timeout`]; `None` keeps idle connections forever.
        idle_timeout: Duration;
        /// Sets [`Config::max_uses`]; `None` for no limit.
        max_uses: u64;
        /// Sets [`Config::max_waiters`]; `None` for no limit.
        max_waiters: usize;
        /// Sets [`Config::connect_rate`] in connections per second; `None` for no limit.
        connect_rate: u32;
        /// Sets [`Config::keepalive_interval`]; `None` turns keepalive checks off.
        keepalive_interval: Duration;
        /// Sets [`Config::leak_threshold`]; `None` turns leak detection off.
        leak_threshold: Duration;
        /// Sets [`Config::priority_boost_after`]; `None` turns the boost off.
        priority_boost_after: Duration;
        /// Sets [`Config::soft_limits`]; `None` turns the warnings off.
        soft_limits: SoftLimits;
    }

    /// Builds the pool and opens [`Config::initial_size`] connections before returning.
    ///
    /// # Errors
    ///
    /// [`BuildError::Config`] for an invalid configuration; [`BuildError::Connect`] with the
    /// first failure if an initial connection cannot be opened (no retry: fail fast).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connections it had opened.
    pub async fn build(self) -> Result<Pool<M>, BuildError<M::Error>> {
        self.config.validate()?;
        let initial = self.config.initial_size;
        let shared = Arc::new(Shared::new(self.manager, self.config, 0));
        let opened = crate::connector::open_initial(&shared, initial).await;
        match opened {
            Ok(()) => {
                if initial > 0 {
                    shared.health.connected();
                }
                maintenance::ensure_started(&shared);
                Ok(Pool { shared })
            }
            Err(error) => Err(BuildError::Connect(error)),
        }
    }

    /// Builds the pool without connecting: the [`Config::initial_size`] connections are opened
    /// in the background, and failures show up on acquire. Works outside a runtime (the
    /// background work then starts with the first acquire).
    ///
    /// # Errors
    ///
    /// [`BuildError::Config`] for an invalid configuration; never a connect error.
    pub fn build_lazy(self) -> Result<Pool<M>, BuildError<M::Error>> {
        self.config.validate()?;
        let initial = self.config.initial_size;
        let shared = Arc::new(Shared::new(self.manager, self.config, initial));
        maintenance::ensure_started(&shared);
        Ok(Pool { shared })
    }
}

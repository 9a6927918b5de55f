//! [`DriverConfig`]: the one shape of every driver's `Config`, and [`BuildPoolError`], what
//! building a pool with connections open fails with.

use std::error::Error as StdError;
use std::future::Future;

use pool_core::{ConnectError, Manager, Pool};

use crate::settings::{pool_from_env, url_from_env};
use crate::InvalidConfig;

/// What every driver's `Config` is: settings read from a URL or the environment, that make a
/// [`Manager`] and a [`Pool`] of it.
///
/// A driver implements the required methods; the others are provided, so they behave
/// the same for every driver. The verbs are the core's: [`build_pool`](Self::build_pool) opens
/// connections before it returns, as [`Builder::build`](pool_core::Builder::build) does, and
/// [`build_pool_lazy`](Self::build_pool_lazy) opens them on demand, as
/// [`Builder::build_lazy`](pool_core::Builder::build_lazy) does.
///
/// The environment variables [`from_env`](Self::from_env) reads are listed in the README's
/// [environment table](https://github.com/pool-suite/pool-suite#environment-variables).
///
/// # Examples
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use pool_drivers::DriverConfig;
///
/// let pool = pool_drivers::postgres::Config::from_env("DATABASE")?.build_pool().await?;
/// # Ok(()) }
/// ```
pub trait DriverConfig: Sized + Sync {
    /// The manager these settings make.
    type Manager: Manager;

    /// Reads the settings from a URL (for a Redis Cluster, a comma-separated list of them),
    /// every other setting at its default.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming what is wrong with the URL; the URL itself is never quoted.
    fn from_url(url: &str) -> Result<Self, InvalidConfig>;

    /// The pool settings.
    fn pool_config(&self) -> &pool_core::Config;

    /// The pool settings, to change.
    fn pool_config_mut(&mut self) -> &mut pool_core::Config;

    /// The manager for these settings, checking what [`from_url`](Self::from_url) could not
    /// (a deserialized or hand-built `Config`).
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] for settings that cannot work.
    fn manager(&self) -> Result<Self::Manager, InvalidConfig>;

    /// The name a pool of these settings gets unless [`pool.name`](pool_core::Config::name)
    /// is set: `host:port/database` (or what stands for it), never a password.
    fn default_pool_name(&self) -> String;

    /// The pool settings, named [`default_pool_name`](Self::default_pool_name) unless
    /// [`pool.name`](pool_core::Config::name) is set: what both builds use.
    fn named_pool_config(&self) -> pool_core::Config {
        crate::settings::named(self.pool_config(), || self.default_pool_name())
    }

    /// Reads `{prefix}_URL` (as [`from_url`](Self::from_url)) and the pool settings under
    /// `prefix`: the variables of the README's
    /// [environment table](https://github.com/pool-suite/pool-suite#environment-variables).
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] naming the variable that is missing or malformed.
    fn from_env(prefix: &str) -> Result<Self, InvalidConfig> {
        let variable = format!("{prefix}_URL");
        let mut config =
            Self::from_url(&url_from_env(prefix)?).map_err(|e| e.read_from(&variable))?;
        pool_from_env(prefix, config.pool_config_mut())?;
        Ok(config)
    }

    /// A pool that opens connections when they are first needed (and
    /// [`initial_size`](pool_core::Config::initial_size) of them in the background). Works
    /// outside a runtime, as [`Builder::build_lazy`](pool_core::Builder::build_lazy).
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`] for settings that cannot work; never a connect error.
    fn build_pool_lazy(&self) -> Result<Pool<Self::Manager>, InvalidConfig> {
        Ok(Pool::builder(self.manager()?)
            .config(self.named_pool_config())
            .build_lazy()?)
    }

    /// A pool with [`initial_size`](pool_core::Config::initial_size) connections open, so a
    /// wrong password or an unreachable server is reported here rather than on the first
    /// [`get`](pool_core::Pool::get). Every setting is checked before anything connects.
    ///
    /// # Errors
    ///
    /// [`BuildPoolError::Config`] for settings that cannot work (the driver's or the pool's),
    /// found before any connect; [`BuildPoolError::Connect`] with the first connect error
    /// (no retry: fail fast).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connections it had opened; nothing else is left behind.
    fn build_pool(
        &self,
    ) -> impl Future<
        Output = Result<Pool<Self::Manager>, BuildPoolError<<Self::Manager as Manager>::Error>>,
    > + Send {
        let manager = self.manager();
        let pool = self.named_pool_config();
        async move {
            let builder = Pool::builder(manager.map_err(BuildPoolError::Config)?).config(pool);
            builder.build().await.map_err(BuildPoolError::from_build)
        }
    }
}

/// Why [`DriverConfig::build_pool`] could not give a pool.
///
/// `Display` says which; the cause is the [`source`](StdError::source) (`{:#}` prints both).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildPoolError<E: StdError + 'static> {
    /// The settings cannot work: the driver's (a malformed URL, a TLS mode this build cannot
    /// honour) or the pool's (sizes that contradict each other). Nothing was connected.
    #[error(transparent)]
    Config(InvalidConfig),
    /// An initial connection could not be opened.
    #[error("could not open the initial connections")]
    Connect(#[source] ConnectError<E>),
}

impl<E: StdError + 'static> BuildPoolError<E> {
    /// The manager's error behind a failed connect.
    pub fn backend(&self) -> Option<&E> {
        match self {
            BuildPoolError::Connect(e) => e.backend(),
            BuildPoolError::Config(_) => None,
        }
    }

    /// The core's build error in the drivers' terms: its configuration errors become
    /// [`InvalidConfig`], like the drivers' own.
    fn from_build(error: pool_core::BuildError<E>) -> Self {
        match error {
            pool_core::BuildError::Connect(e) => BuildPoolError::Connect(e),
            pool_core::BuildError::Config(e) => BuildPoolError::Config(e.into()),
            // A kind of build error added to the core later: not a connect, so a setting.
            other => BuildPoolError::Config(InvalidConfig::new(
                "pool",
                format!("could not be built: {other}"),
            )),
        }
    }
}

//! [`InvalidConfig`]: a driver's settings could not be turned into a pool.

use std::error::Error as StdError;
use std::fmt;

/// A driver configuration was rejected before any connection was attempted: a malformed URL, a
/// missing or unreadable environment variable, or a pool setting out of range.
///
/// The message names the setting and the problem; it never contains a password. A message
/// about a URL quotes a part of it (a scheme, an option's name) only when that part holds no
/// piece of a password, found by position whatever the URL's shape, and never the URL itself.
#[derive(Debug)]
pub struct InvalidConfig {
    setting: String,
    problem: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl InvalidConfig {
    /// A setting and what is wrong with it.
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        InvalidConfig {
            setting: setting.into(),
            problem: problem.into(),
            source: None,
        }
    }

    /// Adds the parser's own error as the cause.
    ///
    /// Only pass errors whose `Display` and `Debug` cannot contain a secret: `Debug` of an
    /// `InvalidConfig` shows its cause's. URL parsers' errors often quote what they read (an
    /// option's name or value), which a malformed URL can fill with a piece of its password.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The rejected setting: `url`, an environment variable's name, or a pool field.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

// Only the drivers' shared code reads settings from the environment.
for_drivers! {
    impl InvalidConfig {
        /// The same problem, found in a URL read from the environment variable `variable`: an
        /// error about the whole URL (`url`, `urls`) names the variable instead.
        pub(crate) fn read_from(mut self, variable: &str) -> Self {
            if matches!(self.setting.as_str(), "url" | "urls") {
                variable.clone_into(&mut self.setting);
            }
            self
        }
    }
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.setting, self.problem)
    }
}

impl StdError for InvalidConfig {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<pool_core::ConfigError> for InvalidConfig {
    fn from(e: pool_core::ConfigError) -> Self {
        InvalidConfig::new(e.field, e.problem)
    }
}

impl<E> From<pool_core::BuildError<E>> for InvalidConfig
where
    E: StdError + Send + Sync + 'static,
{
    /// For lazily built pools, which only fail on their configuration.
    fn from(e: pool_core::BuildError<E>) -> Self {
        match e {
            pool_core::BuildError::Config(e) => e.into(),
            other => InvalidConfig::new("pool", "could not be built").with_source(other),
        }
    }
}

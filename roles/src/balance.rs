//! How a [`ReadPool`](crate::ReadPool) spreads reads over its replicas, and what it does when
//! none is healthy.

/// Which healthy replica serves the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Balance {
    /// Each in turn.
    #[default]
    RoundRobin,
    /// The one with the fewest connections in use.
    LeastConnections,
    /// Any, at random.
    Random,
}

/// What a read does when no replica is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Fallback {
    /// Read from the primary.
    #[default]
    Primary,
    /// Fail with [`Error::NoReplica`](crate::Error::NoReplica).
    Fail,
}

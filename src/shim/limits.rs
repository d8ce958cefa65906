//! Resource limits of one shim, as the 9P server has
//! ([`Limits`](crate::styx::server::Limits)): so that many or idle clients cannot make it hold
//! unbounded descriptors and memory.

use std::time::Duration;

/// The limits a shim enforces. Set them with [`Builder::limits`](super::Builder::limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimLimits {
    /// Most connections the shim serves at once, over its three ports together; further ones
    /// wait in the listen backlog until one ends. Default 1,024 (the 9P server's default).
    pub max_connections: usize,
    /// A connection to the find port that sends nothing for this long before its query line
    /// is complete is closed. Once the query is in, the reply is written however long it takes.
    /// `None`: never. Default 5 minutes. The new and event ports have no idle timeout: their
    /// connections are meant to stay open and quiet.
    pub find_idle_timeout: Option<Duration>,
}

impl ShimLimits {
    /// The default [`ShimLimits::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// The default [`ShimLimits::find_idle_timeout`].
    pub const DEFAULT_FIND_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
}

impl Default for ShimLimits {
    fn default() -> Self {
        ShimLimits {
            max_connections: ShimLimits::DEFAULT_MAX_CONNECTIONS,
            find_idle_timeout: Some(ShimLimits::DEFAULT_FIND_IDLE_TIMEOUT),
        }
    }
}

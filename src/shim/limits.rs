//! Resource limits of one shim, as the 9P server has
//! ([`Limits`](crate::styx::server::Limits)): so that many or idle clients cannot make it hold
//! unbounded descriptors and memory.

use std::time::Duration;

/// The limits a shim enforces. Set them with [`Builder::limits`](super::Builder::limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimLimits {
    /// Most connections the shim serves at once on each of its three ports (each port has a
    /// cap of its own, so that one port's clients cannot shut out another's); further ones
    /// wait in the listen backlog until one ends, and the log says so. Default 1,024 (the 9P
    /// server's default).
    pub max_connections: usize,
    /// A connection to the find port whose query line is not complete this long after it was
    /// accepted is closed: a deadline, so a client that trickles a byte now and then is closed
    /// too. Once the query is in, the reply is written however long it takes. `None`: never.
    /// Default 5 minutes.
    pub find_deadline: Option<Duration>,
    /// A connection to the new port whose first line (the registration) is not complete this
    /// long after it was accepted is closed. After it, the connection may stay open and quiet
    /// for ever: that is the registration. `None`: never. Default 1 minute.
    pub new_deadline: Option<Duration>,
    /// A find-port client that has not taken its whole reply this long after the query came in
    /// is closed, so that a reader that never reads does not keep its answer. `None`: never.
    /// Default 1 minute.
    pub reply_deadline: Option<Duration>,
    /// Most bytes of find replies the shim has in hand and not yet sent, over all find
    /// connections at once, each reply counted in full (readers of one answer share one copy,
    /// so memory is lower). A find whose reply would go past it is closed at once instead of
    /// answered, and logged. Default 512 MiB.
    pub reply_budget: usize,
}

impl ShimLimits {
    /// The default [`ShimLimits::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// The default [`ShimLimits::find_deadline`].
    pub const DEFAULT_FIND_DEADLINE: Duration = Duration::from_secs(5 * 60);
    /// The default [`ShimLimits::new_deadline`].
    pub const DEFAULT_NEW_DEADLINE: Duration = Duration::from_secs(60);
    /// The default [`ShimLimits::reply_deadline`].
    pub const DEFAULT_REPLY_DEADLINE: Duration = Duration::from_secs(60);
    /// The default [`ShimLimits::reply_budget`].
    pub const DEFAULT_REPLY_BUDGET: usize = 512 << 20;
}

impl Default for ShimLimits {
    fn default() -> Self {
        ShimLimits {
            max_connections: ShimLimits::DEFAULT_MAX_CONNECTIONS,
            find_deadline: Some(ShimLimits::DEFAULT_FIND_DEADLINE),
            new_deadline: Some(ShimLimits::DEFAULT_NEW_DEADLINE),
            reply_deadline: Some(ShimLimits::DEFAULT_REPLY_DEADLINE),
            reply_budget: ShimLimits::DEFAULT_REPLY_BUDGET,
        }
    }
}

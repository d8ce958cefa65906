//! Resource limits of a server, so that a hostile peer cannot make it use unbounded memory.

use std::time::Duration;

/// Limits enforced by [`super::serve_connection`] (and, for `max_connections`, the accept loop).
///
/// Memory per connection is bounded by about `msize × 2 × max_outstanding` for requests
/// (running and queued; with the defaults 32 MiB, which a peer must first send, in requests that
/// wait: a registry's only waiting requests are `event` and feed reads, of a few dozen bytes),
/// 256 KiB plus one reply of replies not yet taken by the peer, and the fid table (`max_fids`
/// states).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message we accept or send; the negotiated msize is min(client's, this). Default
    /// [`LARGE_MSIZE`](crate::styx::LARGE_MSIZE), 65,560: 64 KiB of data a message. A client
    /// gets what it offers up to this, so Inferno's clients, offering 8216, get 8216, exactly
    /// as Inferno's own servers answer them.
    pub msize: u32,
    /// Most fids one connection may hold; attach/walk beyond it fail with "too many fids".
    /// Inferno's registry has no such cap; the default, 65,536, lets one connection hold that
    /// many registrations (each an open fid, a few hundred bytes) while bounding what one
    /// connection can make the server keep.
    pub max_fids: usize,
    /// Most requests of one connection being handled at once. Up to as many more wait in a
    /// queue; beyond that a request gets the Rerror `too many outstanding requests` at once
    /// (and the log says so). The connection is always read, so a Tflush always gets through,
    /// and a Tclunk is never refused (it waits, however many there are: each names a distinct
    /// tag), so that a client letting go of many registrations at once leaves none behind. A
    /// Tstat, which never waits, starts whatever the count: a client's heartbeat is answered
    /// however many reads it holds parked.
    pub max_outstanding: usize,
    /// Most connections an accept loop serves at once (the registry server's listeners
    /// together). At the registry's cap a newcomer closes the oldest connection that has not
    /// attached; with none, it waits in the listen backlog.
    pub max_connections: usize,
    /// A connection that has not done its Tversion and Tattach this long after it began is
    /// closed, so that silent sockets cannot hold connection slots. `None`: never. Default 30 s.
    pub handshake_timeout: Option<Duration>,
    /// A connection with no request outstanding that sends nothing for this long is closed.
    /// `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Once the first byte of a message has arrived, the rest must arrive within this; and a
    /// peer that takes none of our queued replies for this long is cut off (it would otherwise
    /// hold its requests' memory for ever).
    pub message_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            msize: super::super::msg::LARGE_MSIZE,
            max_fids: 65_536,
            max_outstanding: 256,
            max_connections: 1024,
            handshake_timeout: Some(Duration::from_secs(30)),
            idle_timeout: None,
            message_timeout: Duration::from_secs(30),
        }
    }
}

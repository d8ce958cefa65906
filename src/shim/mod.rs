//! The TCP shim of Inferno::RegMgr::TCP (registry4.md §8, seed 000): three plain TCP ports in
//! front of a registry, for clients that cannot speak 9P.
//!
//! * **new** (6701): the first line `name [attr val]...` registers a service (a write to `new`),
//!   every later line `attr val ...` updates it, and closing the connection unregisters it. A
//!   registration that fails, or a lost registry connection, closes the connection.
//! * **find** (6702): one query line `[attr val]...` (empty: every service); the reply is the
//!   matching service lines, then the server closes. A connection that sends nothing for
//!   [`ShimLimits::find_idle_timeout`] (5 minutes) before its query is complete is closed.
//! * **event** (6703): `READY\n` once the registry's `event` file is open (so no later change is
//!   missed), then one `%8.8d\n` line per coalesced change; the client closes to stop.
//!
//! [`server`] serves the ports on top of the registries(2) client API ([`crate::client::Registry`]),
//! so the same code fronts an in-process registry ([`Upstream::Local`], used by `registry serve`)
//! and a remote one over 9P ([`Upstream::Remote`], `registry shim --registry ADDR`, the role of
//! Inferno's `listen` script), or one that requires infpk1 ([`Upstream::RemoteWithKey`],
//! `registry shim --registry ADDR -k KEYFILE`). At most [`ShimLimits::max_connections`]
//! (1,024) connections are served at once, over the three ports; further ones wait in the
//! listen backlog. The client
//! side is [`Registry::connect_shim`](crate::client::Registry::connect_shim).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use registries::registry::Server;
//! use registries::shim::{ShimPorts, Upstream, start};
//! let running = Server::builder().listen_str("tcp!127.0.0.1!0")?.start().await?;
//! let shim = start(Upstream::Local(running.registry().clone()), "127.0.0.1", ShimPorts::EPHEMERAL)
//!     .await?;
//! println!("find port: {}", shim.local_addrs().find);
//! # Ok(()) }
//! ```

pub mod limits;
pub mod lines;
pub mod server;
pub mod upstream;

pub use limits::ShimLimits;
pub use server::{
    RunningShim, ShimAddrs, ShimConfig, ShimError, serve_beside, serve_beside_with, start,
    start_as, start_with,
};
pub use upstream::{RemoteKey, Upstream};

use std::fmt;
use std::str::FromStr;

/// Longest line the server accepts on the new and find ports (a registration, an update or a
/// query). Longer lines close the connection: they could not be one 9P write anyway.
pub const MAX_LINE: usize = 64 * 1024;

/// Longest event line a client accepts before its newline (the Perl client's 1 KiB).
pub const MAX_EVENT_LINE: usize = 1024;

/// Largest find reply our shim client reads (the Perl client stops at 1 MiB; we allow more).
pub const MAX_FIND_REPLY: usize = 16 * 1024 * 1024;

/// The line the event port sends once it is watching.
pub const READY: &str = "READY\n";

/// The three shim ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimPorts {
    /// Registration port (default 6701).
    pub new: u16,
    /// Query port (default 6702).
    pub find: u16,
    /// Change notification port (default 6703).
    pub event: u16,
}

impl ShimPorts {
    /// 6701, 6702, 6703, as Inferno::RegMgr::TCP expects.
    pub const DEFAULT: ShimPorts = ShimPorts {
        new: 6701,
        find: 6702,
        event: 6703,
    };

    /// Port 0 three times: let the system choose (tests, and `registry serve` on port 0).
    pub const EPHEMERAL: ShimPorts = ShimPorts {
        new: 0,
        find: 0,
        event: 0,
    };
}

impl Default for ShimPorts {
    fn default() -> Self {
        ShimPorts::DEFAULT
    }
}

impl fmt::Display for ShimPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{}", self.new, self.find, self.event)
    }
}

/// Parses `NEW,FIND,EVENT`, e.g. `6701,6702,6703`.
impl FromStr for ShimPorts {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ports: Vec<&str> = s.split(',').map(str::trim).collect();
        let [new, find, event] = ports[..] else {
            return Err(format!("expected NEW,FIND,EVENT ports, got {s:?}"));
        };
        let p = |v: &str| v.parse::<u16>().map_err(|e| format!("bad port {v:?}: {e}"));
        Ok(ShimPorts {
            new: p(new)?,
            find: p(find)?,
            event: p(event)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_and_print() {
        let p: ShimPorts = "1,2,3".parse().unwrap();
        assert_eq!(
            p,
            ShimPorts {
                new: 1,
                find: 2,
                event: 3
            }
        );
        assert_eq!(p.to_string(), "1,2,3");
        assert!("1,2".parse::<ShimPorts>().is_err());
        assert!("1,2,x".parse::<ShimPorts>().is_err());
        assert!("1,2,70000".parse::<ShimPorts>().is_err());
    }
}

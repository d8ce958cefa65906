//! The TCP shim of Inferno::RegMgr::TCP (spec/registry.md §8): three plain TCP ports in
//! front of a registry, for clients that cannot speak 9P.
//!
//! * **new** (6701): the first line `name [attr val]...` registers a service (a write to `new`),
//!   every later line `attr val ...` updates it, and closing the connection unregisters it. A
//!   registration that fails, or a lost registry connection, closes the connection.
//! * **find** (6702): one query line `[attr val]...` (empty: every service); the reply is the
//!   matching service lines, then the server closes. A connection that sends nothing for
//!   [`ShimLimits::find_deadline`] (5 minutes) of being accepted without a complete query is
//!   closed.
//! * **event** (6703): `READY\n` once the registry's `event` file is open (so no later change is
//!   missed), then one `%8.8d\n` line per coalesced change; the client closes to stop.
//!
//! [`Builder`] starts a shim that serves the ports in front of any [`Backend`]: a registry in this
//! process ([`Local`], used by `registry serve`), or one elsewhere reached over 9P
//! (`relay::Remote` with the `client` feature, `registry shim --registry ADDR [-k KEYFILE]`, the
//! role of Inferno's `listen` script). At most [`ShimLimits::max_connections`]
//! (1,024) connections are served at once on each port; further ones wait in the
//! listen backlog. The client
//! side is `Registry::connect_shim` (feature `client`).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use registries::registry::Server;
//! use registries::shim::{Builder, Local, ShimPorts};
//! let running = Server::builder().listen_str("tcp!127.0.0.1!0")?.start().await?;
//! let shim = Builder::new(Local::new(running.server().clone()))
//!     .ports(ShimPorts::EPHEMERAL)
//!     .start()
//!     .await?;
//! println!("find port: {}", shim.local_addrs().find);
//! # Ok(()) }
//! ```

mod backend;
mod limits;
mod server;

pub use crate::wire::ShimPorts;
pub use backend::{Backend, BackendError, Changes, Local, Registration};
pub use limits::ShimLimits;
pub use server::{Builder, RunningShim, ShimAddrs, ShimError};

//! The registries(2) client: find, register and watch services in an Inferno registry.
//!
//! The types and operations are Limbo's, made async: [`Attributes`], [`Service`] (with
//! [`Service::attach`]), [`Attached`], [`Registered`] and [`Registry`] (`new`, `connect`,
//! `services`, `find`, `register`, `unregister`), plus [`Registry::events`] (the `event` file as a
//! stream of change counts) and [`Monitor`] (services added, changed and removed for a filter).
//! Every operation sends what Inferno's registries(2) sends (spec/vectors/limbo-registries-9p.md):
//! `%q` quoting, ` persist 1` appended, `find` opened read-write then read from offset 0,
//! `unregister` as a remove, `index` opened once and re-read.
//!
//! # Mounting
//!
//! Inferno's `Registry.connect` mounts the registry at `/mnt/registry` and then opens files there.
//! A Rust process has no such name space, so this module keeps a tiny one per process
//! ([`namespace`]): [`Registry::connect`] mounts its 9P connection at `/mnt/registry` in that
//! table, and [`Registry::new`] looks its directory up there first; a directory not in the table is
//! read through the host file system, for a registry the operating system has mounted (for
//! example with Linux v9fs). [`Registry::connect_stream`] speaks 9P over any stream without
//! mounting it, and [`Registry::mount`] mounts a connection anywhere.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), registries::client::Error> {
//! use registries::client::{Attributes, Registry};
//! let reg = Registry::connect(None, None, None).await?;
//! let attrs = Attributes::new([("proto", "styx")]);
//! let _held = reg.register("tcp!myhost!7001", &attrs, false).await?;
//! for svc in reg.find(&[("proto", "styx")]).await? {
//!     println!("{svc}");
//! }
//! # Ok(()) }
//! ```

mod attributes;
mod conn;
mod dialer;
#[cfg(feature = "tower")]
mod discover;
mod error;
mod events;
mod feed;
mod heartbeat;
mod host;
mod monitor;
pub mod namespace;
mod registered;
mod registry;
mod service;
mod shim_backend;
mod styx_backend;
mod transport;

pub use attributes::Attributes;
pub use conn::{BoxConn, Conn, dial, dial_with_key};
pub use dialer::{Dialer, NoneAnswered};
#[cfg(feature = "tower")]
pub use discover::Discovery;
pub use error::{Error, Result};
pub use events::Events;
pub use feed::{ChangeEvent, ChangeKind, Changes, Revision};
pub use heartbeat::DEFAULT_HEARTBEAT;
pub(crate) use monitor::diff;
pub use monitor::{Change, Monitor, Position};
pub use registered::Registered;
pub use registry::{DEFAULT_DIR, Registry};
pub use service::{Attached, Service};

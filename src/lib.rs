//! # registries
//!
//! Inferno's service registry, outside Inferno: find services, advertise them, watch for changes
//! and attach to what you find, over the real wire protocols, against a real Inferno registry or
//! against the registry(4) server in this crate.
//!
//! ## Where to start
//!
//! * A client: [`Registry::connect`] (or [`Registry::open`] with a dial string), then
//!   [`Registry::find`], [`Registry::register`] (keep the [`Registered`] to stay registered),
//!   [`Registry::monitor`] for a [`Monitor`] of [`Change`]s, and [`Service::attach`] to dial what
//!   you found ([`Attached`]). Errors are [`Error`]; the registry's own refusals are typed
//!   ([`wire::Diagnostic`]).
//! * Registrations that survive registry restarts: [`Manager`].
//! * A server: [`Server::builder`] ([`ServerBuilder`]) listens on dial strings and returns a
//!   [`RunningServer`]; [`shim::Builder`] puts the TCP shim (ports 6701–6703) in front of it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use registries::{Attributes, Registry, Server};
//! let running = Server::builder().listen_str("tcp!127.0.0.1!0")?.start().await?;
//! let reg = Registry::open(&running.local_addrs()[0].to_string()).await?;
//! let _held = reg.register("tcp!myhost!7001", &Attributes::new([("proto", "styx")]), false).await?;
//! for svc in reg.find(&[("proto", "styx")]).await? {
//!     println!("{svc}");
//! }
//! # Ok(()) }
//! ```
//!
//! ## Modules
//!
//! * [`client`]: registries(2) in full (events, the per-process name space, transports).
//! * [`manager`]: Inferno::RegMgr parity: registrations, lookups and monitors kept alive.
//! * [`registry`]: the registry(4) server.
//! * [`shim`]: the TCP shim server (its client is [`Registry::connect_shim`]); [`relay`] puts it
//!   in front of a registry elsewhere.
//! * [`styx`]: our 9P2000 codec, client and server framework, usable on its own.
//! * [`auth`]: Inferno's infpk1 authentication, key files and the ssl record layer.
//! * [`net`]: Inferno dial strings, dialling, listening and the one accept loop.
//! * [`wire`]: the registry's text and rules (`%q` quoting, service lines, names, diagnostics).
//!
//! The layers and the one-way arrows between them are drawn in `ARCHITECTURE.md`.

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub(crate) mod etcd;
pub mod manager;
pub mod metrics;
pub mod net;
pub mod registry;
pub mod relay;
pub mod shim;
pub mod styx;
pub mod wire;

pub use client::{Attached, Attributes, Change, Error, Monitor, Registered, Registry, Service};
pub use manager::Manager;
pub use registry::{RunningServer, Server, ServerBuilder};

/// The README's Rust example, compiled as a doctest so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

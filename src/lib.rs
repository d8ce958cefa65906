//! # registries
//!
//! Inferno's service registry, outside Inferno: find services, advertise them, watch for changes
//! and attach to what you find, over the real wire protocols, against a real Inferno registry or
//! against the registry(4) server in this crate.
//!
//! ## Cargo features
//!
//! `client` (the default) is registries(2) and the `manager`; `server` the registry(4) server
//! and the shim; `etcd` keeps a server's catalog in etcd; `http` gives a server its HTTP side;
//! `metrics` counts Prometheus figures; `json` is the JSON of services; `full` is all of them.
//! A program that only finds and registers compiles none of the server, HTTP, gRPC or metrics
//! crates.

// The guide names the client and the server: it is shown where both are built (docs.rs builds
// every feature).
#![cfg_attr(all(feature = "client", feature = "server"), doc = include_str!("guide.md"))]
#![deny(missing_docs)]

pub mod auth;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "etcd")]
pub(crate) mod etcd;
#[cfg(feature = "client")]
pub mod manager;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(not(feature = "metrics"))]
#[path = "metrics_off.rs"]
pub mod metrics;
pub mod net;
#[cfg(feature = "server")]
pub mod registry;
#[cfg(all(feature = "server", feature = "client"))]
pub mod relay;
#[cfg(feature = "server")]
pub mod shim;
pub mod styx;
pub mod wire;

#[cfg(feature = "client")]
pub use client::{
    Attached, Attributes, Change, Dialer, Error, Monitor, Registered, Registry, Service,
};
#[cfg(feature = "client")]
pub use manager::Manager;
#[cfg(feature = "server")]
pub use registry::{RunningServer, Server, ServerBuilder};

/// A program that serves and is a client returns one error type: the server's errors convert
/// into the client's ([`client::Error::Other`]). Here, above both sides, since neither uses the
/// other.
#[cfg(all(feature = "client", feature = "server"))]
impl From<registry::ServerError> for client::Error {
    fn from(e: registry::ServerError) -> client::Error {
        client::Error::Other(Box::new(e))
    }
}

/// The README's Rust example, compiled as a doctest so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "full"))]
pub struct ReadmeDoctests;

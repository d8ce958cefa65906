//! # registries
//!
//! Inferno's service registry, outside Inferno.
//!
//! * [`client`]: the registries(2) types and operations (`Attributes`, `Service`, `Attached`,
//!   `Registered`, `Registry`) as async Rust.
//! * [`registry`]: a registry(4) server with Inferno's exact semantics.
//! * [`styx`]: our 9P2000 (Styx) codec, client and server framework.
//! * [`auth`]: Inferno's infpk1 authentication, key files and the ssl record layer.
//! * [`manager`]: keeps registrations, lookups and monitors alive across registry restarts
//!   (Inferno::RegMgr parity).
//! * [`shim`]: the TCP shim of ports 6701/6702/6703 (Inferno::RegMgr::TCP), server and client.
//! * [`wire`]: the registry's text and rules (`%q` quoting, service lines, names, diagnostics).
//! * [`net`]: Inferno dial strings (`tcp!host!port`, `net!host!service`, `unix!/path`), dialling,
//!   listening and the one accept loop.

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod manager;
pub mod net;
pub mod registry;
pub mod shim;
pub mod styx;
pub mod wire;

/// The README's Rust example, compiled as a doctest so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

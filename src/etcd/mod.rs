//! A small etcd v3 client: what `registry serve --etcd` needs (prefix reads, transactions, one
//! watch, one lease) over the gRPC stubs of `registries-etcd-rpc`.
//!
//! Why not the `etcd-client` crate: its build script needs a system `protoc`, and the default
//! build of this project needs nothing but the Rust toolchain; `registries-etcd-rpc` compiles the
//! few messages we use with a protoc shipped in a crates.io package instead.
//!
//! Failover is explicit rather than left to a load balancer: one lazily connected channel per
//! endpoint, a current one, and on a transport error, a timeout or etcd's `Unavailable` (no
//! leader, leader changed) the call moves to the next endpoint and tries again, until its
//! deadline. A dead member therefore costs one attempt, and a member that comes back is used
//! again when the others fail.

mod client;
mod error;

pub(crate) use client::{Etcd, EtcdOptions};
pub(crate) use error::EtcdError;
pub(crate) use registries_etcd_rpc as rpc;
pub(crate) use registries_etcd_rpc::prefix_end;

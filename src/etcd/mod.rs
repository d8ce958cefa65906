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

/// The end of the key range holding every key that starts with `prefix` (etcd's "prefix end":
/// the prefix with its last byte below 0xff incremented, the rest dropped).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte 0xff (or empty): to the end of the key space.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/registries/"), b"/registries0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }
}

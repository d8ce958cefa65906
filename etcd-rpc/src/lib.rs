//! The part of etcd's v3 API that `registry serve --etcd` uses: the KV, Watch and Lease services
//! and the messages they take, as gRPC clients (tonic) over protobuf (prost).
//!
//! `proto/etcd.proto` declares only those messages and only the fields we use; protobuf skips
//! unknown fields, so the subset talks to any etcd 3.4 or later. Its package is etcd's
//! `etcdserverpb`, which names the gRPC paths; `KeyValue` and `Event` (etcd's `mvccpb`) live in
//! the same package here, which changes nothing on the wire.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("etcdserverpb");

/// The end of the key range holding every key that starts with `prefix` (etcd's "prefix end":
/// the prefix with its last byte below 0xff incremented and the rest dropped), as a range or
/// watch request's `range_end` takes it.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
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

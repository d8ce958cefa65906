//! The part of etcd's v3 API that `registry serve --etcd` uses: the KV, Watch and Lease services
//! and the messages they take, as gRPC clients (tonic) over protobuf (prost).
//!
//! `proto/etcd.proto` declares only those messages and only the fields we use; protobuf skips
//! unknown fields, so the subset talks to any etcd 3.4 or later. Its package is etcd's
//! `etcdserverpb`, which names the gRPC paths; `KeyValue` and `Event` (etcd's `mvccpb`) live in
//! the same package here, which changes nothing on the wire.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("etcdserverpb");

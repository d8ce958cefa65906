//! Fuzzes the record a service is stored as in etcd (`registry serve --etcd`, spec/etcd.md): any
//! value under the prefix decodes or is refused without a panic, and a decoded record encodes to
//! a value that decodes to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| registries::registry::fuzz_etcd_record(data));

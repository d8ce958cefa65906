//! Fuzzes the key-text parsers (spec/infpk1.md §2, §3): public and secret keys, certificates,
//! whole key files and the big-integer decoders. Nothing may panic, and whatever parses
//! must survive a write/parse round trip unchanged (for inputs short enough that no number
//! reaches Inferno's 768-byte decode limit, where Inferno itself loses bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use registries::auth::{AuthInfo, Certificate, PublicKey, SecretKey, bigtext};

fuzz_target!(|data: &[u8]| {
    if data.len() > 1000 {
        let _ = PublicKey::parse(data);
        let _ = SecretKey::parse(data);
        let _ = Certificate::parse(data);
        let _ = AuthInfo::from_bytes(data);
        let _ = bigtext::decode_dh(data);
        return;
    }
    if let Ok(pk) = PublicKey::parse(data) {
        assert_eq!(PublicKey::parse(pk.to_text().as_bytes()).ok(), Some(pk));
    }
    if let Ok(sk) = SecretKey::parse(data) {
        assert_eq!(SecretKey::parse(sk.to_text().as_bytes()).ok(), Some(sk));
    }
    if let Ok(c) = Certificate::parse(data) {
        assert_eq!(Certificate::parse(c.to_text().as_bytes()).ok(), Some(c));
    }
    if let Ok(info) = AuthInfo::from_bytes(data) {
        let bytes = info.to_bytes();
        assert_eq!(AuthInfo::from_bytes(&bytes).ok(), Some(info));
    }
    if let Some(v) = bigtext::decode_field(data) {
        assert_eq!(
            bigtext::decode_field(bigtext::encode(&v).as_bytes()),
            Some(v)
        );
    }
    let _ = bigtext::decode_dh(data);
});

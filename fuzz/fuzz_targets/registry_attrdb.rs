//! Fuzzes the attrdb(6) parser behind `registry serve -f`: any text parses or gives an error,
//! never a panic, and the lenient parser agrees with the strict one on valid input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registries::registry::attrdb;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (lenient, errors) = attrdb::parse_lenient(text);
    if let Ok(strict) = attrdb::parse(text) {
        assert!(errors.is_empty());
        assert_eq!(strict.len(), lenient.len());
    }
    let _ = attrdb::static_services(&lenient);
});

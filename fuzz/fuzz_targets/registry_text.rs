//! Fuzzes the registry text format (spec/registry.md §1): any input splits into words without a
//! panic, and a parsed service line formats to text that parses back to the same line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registries::wire::{ServiceLine, parse_pairs, parse_services, unquote};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = unquote(text);
    let _ = parse_pairs(text);
    let _ = parse_services(text);
    if let Ok(line) = ServiceLine::parse(text) {
        let again = ServiceLine::parse(&line.format()).expect("formatted line parses");
        assert_eq!(again, line);
    }
});

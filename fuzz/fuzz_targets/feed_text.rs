//! Fuzzes the change feed's text (spec/feed.md): any input parses as a request and as a record
//! without a panic, and a parsed request formats to text that parses back to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registries::wire::{FeedRecord, FeedRequest, parse_compacted};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(req) = FeedRequest::parse(text) {
        let again = FeedRequest::parse(&req.format()).expect("formatted request parses");
        assert_eq!(again, req);
    }
    let _ = FeedRecord::parse(text);
    let _ = parse_compacted(text);
});

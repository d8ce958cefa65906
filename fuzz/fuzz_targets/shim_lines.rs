//! Fuzzes the shim's record reader (bytes from ports 6701/6702): any input splits into records
//! or a too-long error, never a panic; no record exceeds the limit; and the records, each with
//! its newline back, are the input again.
#![no_main]

use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use registries::wire::RecordReader;

const LIMIT: usize = 64;

fuzz_target!(|data: &[u8]| {
    let mut reader = RecordReader::new(data, LIMIT);
    let mut rebuilt = Vec::with_capacity(data.len() + 1);
    loop {
        let next = reader.next_record().now_or_never();
        match next.expect("reading a slice never waits") {
            Ok(Some(record)) => {
                assert!(record.len() <= LIMIT, "record over the limit");
                rebuilt.extend_from_slice(&record);
                rebuilt.push(b'\n');
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    assert!(rebuilt == data || rebuilt.strip_suffix(b"\n") == Some(data));
});

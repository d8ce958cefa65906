//! Fuzzes the server's connection logic (`ServerCore`) with raw bytes from a peer, delivered in
//! pieces of a fuzzed size: it never panics, its output is whole R-messages, and no tag gets more
//! replies than requests (a flushed request is never answered after its Rflush).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    registries::styx::server::fuzz_feed(rest, usize::from(step) + 1);
});

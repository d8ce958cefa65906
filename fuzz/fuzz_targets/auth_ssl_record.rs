//! Fuzzes the ssl record layer (spec/infpk1.md §6): arbitrary bytes as incoming records for every
//! algorithm, and arbitrary data through a sender and receiver pair. Nothing may panic; a
//! sealed record must always open to the same data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registries::auth::ssl::{Opener, Sealer, SslConfig};

const ALGS: &[&str] = &[
    "clear",
    "sha1",
    "md5",
    "md4",
    "rc4",
    "rc4_128",
    "rc4_256",
    "des_56_cbc",
    "des_56_ecb",
    "des_40_cbc",
    "des_40_ecb",
    "ideacbc",
    "ideaecb",
    "sha1/rc4_256",
    "md5 des_56_cbc",
    "sha1 ideacbc",
    "md4 des_40_ecb",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&slen, rest)) = rest.split_first() else {
        return;
    };
    let alg = ALGS[usize::from(sel) % ALGS.len()];
    let slen = usize::from(slen % 130).max(24).min(rest.len());
    let (secret, input) = rest.split_at(slen);
    if secret.len() < 24 {
        return;
    }
    let Ok(cfg) = SslConfig::parse(alg) else {
        return;
    };

    // Incoming bytes as a stream of records, until the first error (which kills the stream).
    let mut opener = Opener::new(&cfg, secret).unwrap();
    let mut buf = input;
    while let Some(size) = Opener::record_size(buf) {
        let Some(rec) = buf.get(..size) else { break };
        if opener.open(rec).is_err() {
            break;
        }
        buf = &buf[size..];
    }

    // The same bytes as data, through a sender and a receiver.
    let mut sealer = Sealer::new(&cfg, secret).unwrap();
    let mut opener = Opener::new(&cfg, secret).unwrap();
    let mut off = 0;
    while off < input.len() {
        let m = sealer.next_chunk(input.len() - off);
        let mut rec = Vec::new();
        sealer.seal(&input[off..off + m], &mut rec).unwrap();
        assert_eq!(Opener::record_size(&rec), Some(rec.len()));
        assert_eq!(opener.open(&rec).unwrap(), &input[off..off + m]);
        off += m;
    }
});

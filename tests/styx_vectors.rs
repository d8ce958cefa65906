//! Every message of the real Inferno traffic in spec/vectors/limbo-registries-9p.jsonl must
//! decode and re-encode byte-identically.

use registries::styx::{Body, Msg};

/// The value of `"key": "..."` in one JSON line (the vectors' hex and type fields are plain).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\": \"");
    let start = line.find(&pat)? + pat.len();
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn limbo_traffic_round_trips_byte_exact() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/spec/vectors/limbo-registries-9p.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let hex = field(line, "hex").expect("hex field");
        let ty = field(line, "type").expect("type field");
        let bytes = unhex(hex);
        let msg = Msg::decode_slice(&bytes, 1 << 20).unwrap_or_else(|e| panic!("{ty} {hex}: {e}"));
        assert_eq!(msg.body.name(), ty, "{hex}");
        let again = msg.to_bytes().unwrap();
        assert_eq!(again.as_ref(), &bytes[..], "{ty} re-encodes differently");
        if let Body::Rerror { ename } = &msg.body {
            assert!(!ename.is_empty());
        }
        n += 1;
    }
    assert!(n >= 50, "only {n} vectors");
}

//! Big integers as text (spec/infpk1.md §3.1): Inferno's canonical base64 writer and its two
//! lenient readers (`base64tobig` for key fields, `strtomp(…, 64)` for DH values).

use base64::Engine as _;
use num_bigint::BigUint;

/// The largest number of bytes `base64tobig` decodes; longer values are cut short (§3.1.2).
const DECODE_LIMIT: usize = 768;

/// Canonical text of `v` (§3.1.1): minimal big-endian bytes, a `00` in front when the top bit
/// is set, standard base64 with padding.
pub fn encode(v: &BigUint) -> String {
    let mut bytes = v.to_bytes_be();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The value of one base64 alphabet character, or `None` for anything else.
fn sixbits(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Inferno's `dec64`: skips every non-alphabet character; a final group of 2 or 3 characters
/// gives 1 or 2 bytes, a lone one gives nothing. Stops at `limit` bytes.
pub fn dec64(text: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4 + 1);
    let mut acc: u32 = 0;
    let mut n = 0;
    for v in text.iter().filter_map(|&c| sixbits(c)) {
        acc = (acc << 6) | v;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out.truncate(limit);
    out
}

/// Decodes one key or certificate field (`base64tobig`, §3.1.2): the text up to the first LF;
/// an empty line is an error (`None`).
// Not nom: the first line, base64-decoded.
pub fn decode_field(line: &[u8]) -> Option<BigUint> {
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        return None;
    }
    Some(BigUint::from_bytes_be(&dec64(line, DECODE_LIMIT)))
}

/// Decodes a DH value as `strtomp(s, 64)` does (§3.1.3): leading blanks skipped, then the
/// longest run of alphabet characters. Negative or empty values are errors (`None`).
// Not nom: blanks, signs and a run of base64 characters, in `strtomp`'s order and with its
// leniency (trailing text ignored).
pub fn decode_dh(text: &[u8]) -> Option<BigUint> {
    let mut rest = text;
    while let [b' ' | b'\t', tail @ ..] = rest {
        rest = tail;
    }
    let mut negative = false;
    while let [b'-', tail @ ..] = rest {
        negative = !negative;
        rest = tail;
    }
    let run = rest.iter().take_while(|&&c| sixbits(c).is_some()).count();
    if negative || run == 0 {
        return None;
    }
    let digits = rest.get(..run)?;
    Some(BigUint::from_bytes_be(&dec64(digits, DECODE_LIMIT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_examples() {
        let cases: [(u64, &str); 7] = [
            (0, "AA=="),
            (1, "AQ=="),
            (127, "fw=="),
            (128, "AIA="),
            (255, "AP8="),
            (256, "AQA="),
            (65537, "AQAB"),
        ];
        for (v, t) in cases {
            assert_eq!(encode(&BigUint::from(v)), t, "{v}");
            assert_eq!(decode_field(t.as_bytes()), Some(BigUint::from(v)));
            assert_eq!(decode_dh(t.as_bytes()), Some(BigUint::from(v)));
        }
        assert_eq!(encode(&BigUint::from(u64::MAX)), "AP//////////");
    }

    #[test]
    fn lenient_decoding() {
        // Non-alphabet characters are skipped by dec64, including '=' and CR.
        assert_eq!(decode_field(b"A Q\r=B"), Some(BigUint::from(256u32)));
        assert_eq!(dec64(b"AQAB", 768), vec![1, 0, 1]);
        assert_eq!(dec64(b"A", 768), Vec::<u8>::new());
        assert_eq!(decode_field(b""), None);
        assert_eq!(decode_field(b"\nAQAB"), None);
        assert_eq!(decode_field(b"AQAB\nxx"), Some(BigUint::from(65537u32)));
        assert_eq!(decode_dh(b"  AQAB=junk"), Some(BigUint::from(65537u32)));
        assert_eq!(decode_dh(b"-AQAB"), None);
        assert_eq!(decode_dh(b"--AQAB"), Some(BigUint::from(65537u32)));
        assert_eq!(decode_dh(b"=AQAB"), None);
    }

    proptest::proptest! {
        #[test]
        fn encode_decode_round_trip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let v = BigUint::from_bytes_be(&bytes);
            let t = encode(&v);
            proptest::prop_assert_eq!(decode_field(t.as_bytes()), Some(v.clone()));
            proptest::prop_assert_eq!(decode_dh(t.as_bytes()), Some(v));
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode_field(&bytes);
            let _ = decode_dh(&bytes);
        }
    }
}

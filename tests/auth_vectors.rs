//! infpk1 test vectors: key files written by a real Inferno (spec/vectors/keys), the checks of
//! spec/infpk1.md Appendix B, and the ssl records of §6.8.

use num_bigint::BigUint;
use registries::auth::ssl::{Opener, SslConfig};
use registries::auth::{AuthInfo, HashAlg, PkAlg, Signature, pkhash, verify};
use std::path::PathBuf;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/vectors")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(vectors().join(name)).unwrap()).unwrap()
}

/// One row of keys/README.md: (file, alg, owner, signer, expiry, signer pkhash, own pk hash).
type KeyRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u32,
    &'static str,
    Option<&'static str>,
);

/// The README's tables.
const KEYS: &[KeyRow] = &[
    (
        "set1/signer1.signerkey",
        "rsa",
        "signer1",
        "signer1",
        0,
        "88030b18c47820ad976212efe64fe5e7dfb0e7e3",
        None,
    ),
    (
        "set1/alice.keyfile",
        "rsa",
        "alice",
        "signer1",
        0,
        "88030b18c47820ad976212efe64fe5e7dfb0e7e3",
        Some("0e6b15cef060935cd77aef6084436d3c732e392a"),
    ),
    (
        "set1/bob.keyfile",
        "rsa",
        "bob",
        "signer1",
        0,
        "88030b18c47820ad976212efe64fe5e7dfb0e7e3",
        Some("24eb020a8c11568302cf538c0277d2e5abba48ae"),
    ),
    (
        "set1/server.keyfile",
        "rsa",
        "server",
        "signer1",
        0,
        "88030b18c47820ad976212efe64fe5e7dfb0e7e3",
        Some("1477be146f467c6330e112ec53defc65f0bda787"),
    ),
    (
        "set1/wrongsigner.signerkey",
        "rsa",
        "wrongsigner",
        "wrongsigner",
        0,
        "5e3f38a1b878e072dde39d0ba07fba646eb3d45a",
        None,
    ),
    (
        "set1/mallory.keyfile",
        "rsa",
        "mallory",
        "wrongsigner",
        0,
        "5e3f38a1b878e072dde39d0ba07fba646eb3d45a",
        Some("7bbc3954cd06d6d9b8dfba008e5a9afb17edf16b"),
    ),
    (
        "set1/fakealice.keyfile",
        "rsa",
        "alice",
        "wrongsigner",
        0,
        "5e3f38a1b878e072dde39d0ba07fba646eb3d45a",
        Some("045d54e0a587063cd6482d3a017aa2a14c6fce75"),
    ),
    (
        "set2/mysigner.signerkey",
        "rsa",
        "mysigner",
        "mysigner",
        0,
        "d9d058bfe434c7d659bb34d8f0c52f77458829af",
        None,
    ),
    (
        "set2/alice",
        "rsa",
        "alice",
        "mysigner",
        0,
        "d9d058bfe434c7d659bb34d8f0c52f77458829af",
        None,
    ),
    (
        "set2/srvbob",
        "rsa",
        "srvbob",
        "mysigner",
        0,
        "d9d058bfe434c7d659bb34d8f0c52f77458829af",
        None,
    ),
    (
        "set2/carol",
        "rsa",
        "carol",
        "mysigner",
        1893533606,
        "d9d058bfe434c7d659bb34d8f0c52f77458829af",
        None,
    ),
    (
        "set2/othersigner.signerkey",
        "rsa",
        "othersigner",
        "othersigner",
        0,
        "0c7b473aff0e41431a0406fe2cd0d47a9e11a04d",
        None,
    ),
    (
        "set2/mallory",
        "rsa",
        "mallory",
        "othersigner",
        0,
        "0c7b473aff0e41431a0406fe2cd0d47a9e11a04d",
        None,
    ),
    (
        "set2/egsigner.signerkey",
        "elgamal",
        "egsigner",
        "egsigner",
        0,
        "50ca7620bbe5117aa298934e17b666cfdcbe68a7",
        None,
    ),
    (
        "set2/egalice",
        "elgamal",
        "egalice",
        "egsigner",
        0,
        "50ca7620bbe5117aa298934e17b666cfdcbe68a7",
        None,
    ),
    (
        "set2/egbob",
        "elgamal",
        "egbob",
        "egsigner",
        0,
        "50ca7620bbe5117aa298934e17b666cfdcbe68a7",
        None,
    ),
];

#[test]
fn every_vector_key_file_loads_and_verifies() {
    for &(file, alg, owner, signer, exp, spkhash, own) in KEYS {
        let path = vectors().join("keys").join(file);
        let bytes = std::fs::read(&path).unwrap();
        let info = AuthInfo::from_bytes(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(info.mypk.alg.name(), alg, "{file}");
        assert_eq!(info.mypk.owner, owner, "{file}");
        assert_eq!(info.cert.signer, signer, "{file}");
        assert_eq!(info.spk.owner, signer, "{file}");
        assert_eq!(info.cert.exp, exp, "{file}");
        assert_eq!(pkhash(&info.spk), spkhash, "{file}");
        if let Some(own) = own {
            assert_eq!(pkhash(&info.mypk), own, "{file}");
        }
        // The certificate is the signer's signature over the user's pk text.
        assert!(
            verify(&info.spk, &info.cert, info.mypk.to_text().as_bytes()),
            "{file}: cert does not verify"
        );
        if file.ends_with(".signerkey") {
            assert_eq!(info.spk, info.mypk, "{file}: signer key is self-signed");
        }
    }
}

#[test]
fn canonical_rewrite_is_byte_for_byte() {
    for &(file, ..) in KEYS {
        let bytes = std::fs::read(vectors().join("keys").join(file)).unwrap();
        let info = AuthInfo::from_bytes(&bytes).unwrap();
        let again = info.to_bytes();
        if file.ends_with(".signerkey") {
            // createsignerkey writes through Oldauth, whose RSA c2 field may lack the forced
            // leading zero (§2); everything else must match, and our output must be a
            // fixed point.
            assert_eq!(AuthInfo::from_bytes(&again).unwrap(), info, "{file}");
            assert_eq!(
                AuthInfo::from_bytes(&again).unwrap().to_bytes(),
                again,
                "{file}"
            );
        } else {
            assert_eq!(again, bytes, "{file}");
        }
    }
}

#[test]
fn appendix_b_checks() {
    let v = json("appendix-b.json");
    let bytes = std::fs::read(vectors().join(v["file"].as_str().unwrap())).unwrap();
    assert_eq!(bytes.len() as u64, v["file_len"].as_u64().unwrap());
    // 1. It parses.
    let info = AuthInfo::from_bytes(&bytes).unwrap();
    // 2. pktostr(spk) and certtostr(cert) rebuild messages 1 and 2.
    assert_eq!(info.spk.to_text(), v["spk_text"].as_str().unwrap());
    assert_eq!(info.cert.to_text(), v["cert_text"].as_str().unwrap());
    // 3. The user pk text is alg, owner and the first two numbers of message 3.
    let sk_text = info.mysk.to_text();
    let lines: Vec<&str> = sk_text.lines().collect();
    assert_eq!(
        info.mypk.to_text(),
        format!("rsa\nalice\n{}\n{}\n", lines[2], lines[3])
    );
    // 4. The digest and the signature agree.
    let digest = HashAlg::Sha1.digest(&[info.mypk.to_text().as_bytes(), b"mysigner 0"]);
    assert_eq!(hex(&digest), v["cert_digest_sha1"].as_str().unwrap());
    let (PkAlg::Rsa { n, ek }, Signature::Rsa(val)) = (&info.spk.alg, &info.cert.sig) else {
        panic!("expected rsa");
    };
    assert_eq!(val.modpow(ek, n), BigUint::from_bytes_be(&digest));
    // 5. pkhash(spk).
    assert_eq!(pkhash(&info.spk), v["spk_pkhash"].as_str().unwrap());
    // 6. Sizes.
    assert_eq!(
        registries::auth::bigtext::encode(&info.alpha),
        v["alpha_text"].as_str().unwrap()
    );
    assert_eq!(info.alpha.bits(), v["alpha_bits"].as_u64().unwrap());
    assert_eq!(info.p.bits(), v["p_bits"].as_u64().unwrap());
    let PkAlg::Rsa { n, ek } = &info.mypk.alg else {
        panic!("expected rsa");
    };
    assert_eq!(n.bits(), v["n_bits"].as_u64().unwrap());
    assert_eq!(*ek, BigUint::from(v["ek"].as_u64().unwrap()));
}

#[test]
fn ssl_record_vectors() {
    let v = json("ssl-records.json");
    for r in v["records"].as_array().unwrap() {
        let alg = r["alg"].as_str().unwrap();
        let secret = unhex(r["secret"].as_str().unwrap());
        let record = unhex(r["record"].as_str().unwrap());
        let cfg = SslConfig::parse(alg).unwrap();
        let mut opener = Opener::new(&cfg, &secret).unwrap();
        assert_eq!(Opener::record_size(&record), Some(record.len()), "{alg}");
        let data = opener.open(&record).unwrap();
        assert_eq!(data, r["data"].as_str().unwrap().as_bytes(), "{alg}");

        // A flipped bit anywhere in the body is caught.
        let mut bad = record.clone();
        *bad.last_mut().unwrap() ^= 1;
        let mut opener = Opener::new(&cfg, &secret).unwrap();
        assert!(opener.open(&bad).is_err(), "{alg}");
    }
}

#[test]
fn ssl_record_vector_rebuilt_by_our_sealer() {
    // RC4 with no padding is deterministic, so our sender must make Inferno's exact record.
    let v = json("ssl-records.json");
    let r = &v["records"][0];
    let secret = unhex(r["secret"].as_str().unwrap());
    let cfg = SslConfig::parse(r["alg"].as_str().unwrap()).unwrap();
    let mut sealer = registries::auth::ssl::Sealer::new(&cfg, &secret).unwrap();
    let mut out = Vec::new();
    sealer
        .seal(r["data"].as_str().unwrap().as_bytes(), &mut out)
        .unwrap();
    assert_eq!(hex(&out), r["record"].as_str().unwrap());
}

//! Key files (spec/infpk1.md §2): five framed messages holding the signer's public key, my
//! certificate, my secret key and the Diffie–Hellman parameters.

use super::AuthError;
use super::bigtext::{decode_dh, encode};
use super::cert::Certificate;
use super::keys::{PublicKey, SecretKey};
use super::msgio::{frame, split_records};
use num_bigint::BigUint;
use std::path::Path;

/// An Inferno authinfo: everything one party needs to run infpk1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    /// The signer's public key (`spk`).
    pub spk: PublicKey,
    /// The signer's certificate on my public key.
    pub cert: Certificate,
    /// My secret key.
    pub mysk: SecretKey,
    /// My public key, made from `mysk` (not stored in the file).
    pub mypk: PublicKey,
    /// Diffie–Hellman base.
    pub alpha: BigUint,
    /// Diffie–Hellman modulus.
    pub p: BigUint,
}

impl AuthInfo {
    /// Builds an authinfo from its parts; `mypk` is derived from `mysk`.
    pub fn new(
        spk: PublicKey,
        cert: Certificate,
        mysk: SecretKey,
        alpha: BigUint,
        p: BigUint,
    ) -> Self {
        let mypk = mysk.public();
        AuthInfo {
            spk,
            cert,
            mysk,
            mypk,
            alpha,
            p,
        }
    }

    /// Parses a key file's bytes (`readauthinfo`). Bytes after the fifth message are ignored.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuthError> {
        let recs = split_records(bytes, 5)?;
        let [spk, cert, sk, alpha, p] = recs.as_slice() else {
            return Err(AuthError::text("key file: wrong number of messages"));
        };
        let spk = PublicKey::parse(spk)?;
        let cert = Certificate::parse(cert)?;
        let mysk = SecretKey::parse(sk)?;
        let alpha = decode_dh(alpha)
            .ok_or_else(|| AuthError::text("key file: missing diffie hellman base"))?;
        let p =
            decode_dh(p).ok_or_else(|| AuthError::text("key file: missing diffie hellman mod"))?;
        if p <= BigUint::from(2u32) {
            return Err(AuthError::text("key file: missing diffie hellman mod"));
        }
        Ok(AuthInfo::new(spk, cert, mysk, alpha, p))
    }

    /// Reads a key file.
    pub fn read(path: &Path) -> Result<Self, AuthError> {
        let bytes = std::fs::read(path)?;
        Self::from_bytes(&bytes)
    }

    /// The canonical file bytes (Keyring's `writeauthinfo`); re-writing a file Inferno wrote
    /// gives identical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1500);
        out.extend(frame(self.spk.to_text().as_bytes()));
        out.extend(frame(self.cert.to_text().as_bytes()));
        out.extend(frame(self.mysk.to_text().as_bytes()));
        out.extend(frame(encode(&self.alpha).as_bytes()));
        out.extend(frame(encode(&self.p).as_bytes()));
        out
    }

    /// Writes the key file as a new file with mode 0600, as `writeauthinfo` does.
    pub fn write(&self, path: &Path) -> Result<(), AuthError> {
        use std::io::Write as _;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path)?;
        f.write_all(&self.to_bytes())?;
        Ok(())
    }
}

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

    /// Reads a key file. A file that group or others may read (it holds a secret key) is read
    /// all the same, as OpenSSH would not, but logged once per path as a warning naming the file.
    pub fn read(path: &Path) -> Result<Self, AuthError> {
        use std::io::Read as _;
        let mut f = std::fs::File::open(path)?;
        #[cfg(unix)]
        if let Ok(meta) = f.metadata() {
            warn_if_exposed(
                path,
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()),
            );
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
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
        // `mode` applies only to a file it creates; an overwritten one is made private too.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(&self.to_bytes())?;
        Ok(())
    }
}

/// Logs, once per path in this process, that a key file is readable by group or others.
#[cfg(unix)]
fn warn_if_exposed(path: &Path, mode: u32) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static WARNED: Mutex<Option<HashSet<std::path::PathBuf>>> = Mutex::new(None);
    if mode & 0o077 == 0 {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(path.to_path_buf())
    {
        tracing::warn!(
            "key file {} is accessible by others (mode {:04o}): it holds a secret key; \
             chmod 600 {}",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
}

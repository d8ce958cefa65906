//! keyset(2): signer thumbprints (infpk1.md §7.1) and finding keys by signer (§7.2).

use super::AuthError;
use super::authinfo::AuthInfo;
use super::hash::HashAlg;
use super::keys::PublicKey;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// keyset's `pkhash`: lowercase hex SHA-1 of the canonical public-key text.
pub fn pkhash(pk: &PublicKey) -> String {
    HashAlg::Sha1
        .digest(&[pk.to_text().as_bytes()])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One key file found by [`keys_for_signer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key file.
    pub path: PathBuf,
    /// The owner of the key (`mypk.owner`).
    pub owner: String,
    /// The signer named in its certificate.
    pub signer: String,
}

/// Seconds since 1970 UTC now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The host stand-in for Inferno's `/usr/<user>/keyring`: `$HOME/keyring` (there is no
/// `/usr/<user>` on a host system), or `./keyring` without `$HOME`.
pub fn default_keydir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join("keyring"))
        .unwrap_or_else(|| PathBuf::from("keyring"))
}

/// keyset's `keysforsigner`: every readable, unexpired key file in `dir` (default
/// [`default_keydir`]) whose certificate's signer is `signer` and whose signer key hashes to
/// `spkhash`, oldest file first. `user` is accepted for signature compatibility; on a host
/// it only matters through the default directory.
pub fn keys_for_signer(
    signer: Option<&str>,
    spkhash: Option<&str>,
    user: Option<&str>,
    dir: Option<&Path>,
) -> Result<Vec<KeyEntry>, AuthError> {
    let _ = user;
    if spkhash.is_some_and(|h| h.len() != 40) {
        return Err(AuthError::InvalidHash);
    }
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(default_keydir);
    let cant = |err| AuthError::CantOpen {
        dir: dir.display().to_string(),
        err,
    };
    let mut files = Vec::new();
    for ent in std::fs::read_dir(&dir).map_err(cant)? {
        let Ok(ent) = ent else { continue };
        let Ok(md) = ent.metadata() else { continue };
        if md.is_dir() {
            continue;
        }
        let mtime = md.modified().unwrap_or(UNIX_EPOCH);
        files.push((mtime, ent.file_name(), ent.path()));
    }
    // Inferno sorts newest first and then prepends each match, so the result is oldest
    // first; ties keep name order.
    files.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let now = now_secs();
    let mut out = Vec::new();
    for (_, _, path) in files {
        let Ok(info) = AuthInfo::read(&path) else {
            continue;
        };
        // keysforsigner uses `<`, where auth uses `<=` (§7.2).
        if info.cert.exp != 0 && u64::from(info.cert.exp) < now {
            continue;
        }
        if signer.is_some_and(|s| s != info.cert.signer) {
            continue;
        }
        if spkhash.is_some_and(|h| h != pkhash(&info.spk)) {
            continue;
        }
        out.push(KeyEntry {
            path,
            owner: info.mypk.owner,
            signer: info.cert.signer,
        });
    }
    Ok(out)
}

//! keyset(2): signer thumbprints (spec/infpk1.md §7.1) and finding keys by signer (§7.2).

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
        // Styx carries whole seconds, and Inferno compares nothing finer.
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        files.push((mtime, ent.path()));
    }
    // Inferno's Readdir->MTIME is a stable sort, newest first, of the directory in the host's
    // read order; keysforsigner then prepends each match. So the result is that order reversed:
    // oldest second first and, within one second, the file read last comes first (checked
    // against a live Inferno: spec/inferno-live-check.md §5.2).
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files.reverse();
    let now = now_secs();
    let mut out = Vec::new();
    for (_, path) in files {
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

//! registries(2) `Service.attach`'s authentication (spec/infpk1.md §7.3): pick a key by the
//! service's `auth`, `auth.crypt` and `auth.signer` attributes, then run the client side.

use super::alg::{Authenticated, client};
use super::keyset::{default_keydir, keys_for_signer, pkhash};
use super::{AuthError, AuthInfo};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWrite};

/// The result of [`authenticate`]: the fields of registries(2) `Attached`.
pub struct AttachAuth<S> {
    /// The connection, plain or ssl.
    pub stream: Authenticated<S>,
    /// pkhash of the local key file's signer (`None` without authentication).
    pub signerpkhash: Option<String>,
    /// Owner of the local key (`None` without authentication).
    pub localuser: Option<String>,
    /// The authenticated peer (`None` without authentication).
    pub remoteuser: Option<String>,
}

/// The service attributes that steer authentication.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthAttrs<'a> {
    /// `auth`: `infpk1` (or the old `auth`), or missing/empty/`none`.
    pub auth: Option<&'a str>,
    /// `auth.crypt`: the algorithm string (default `none`).
    pub crypt: Option<&'a str>,
    /// `auth.signer`: pkhash of the signer the service's key was certified by.
    pub signer: Option<&'a str>,
}

/// Whether `auth` asks for infpk1; `Err` for an unknown scheme.
pub fn wants_infpk1(auth: Option<&str>) -> Result<bool, AuthError> {
    match auth {
        None | Some("") | Some("none") => Ok(false),
        Some("infpk1") | Some("auth") => Ok(true),
        Some(other) => Err(AuthError::UnknownAuthType(crate::wire::quote(other))),
    }
}

/// Chooses the key file as Service.attach does. With `signer`, the oldest key in `keydir`
/// certified by that signer (and owned by `user`, if given); without it, `default` in the
/// key directory. (Inferno then ignores `keydir` and uses `/usr/<user>/keyring/default`; a
/// host has no such directory, so `keydir`, or [`default_keydir`], stands in for it.)
pub fn choose_key(
    signer: Option<&str>,
    user: Option<&str>,
    keydir: Option<&Path>,
) -> Result<PathBuf, AuthError> {
    match signer {
        Some(hash) => {
            let keys = match keys_for_signer(None, Some(hash), None, keydir) {
                Ok(k) => k,
                Err(e) => return Err(AuthError::NoMatchingKeys(Some(e.to_string()))),
            };
            if keys.is_empty() {
                return Err(AuthError::NoMatchingKeys(None));
            }
            let pick = match user {
                None => keys.into_iter().next(),
                Some(u) => keys.into_iter().find(|k| k.owner == u),
            };
            pick.map(|k| k.path).ok_or(AuthError::NoMatchingUser)
        }
        None => Ok(keydir
            .map(Path::to_path_buf)
            .unwrap_or_else(default_keydir)
            .join("default")),
    }
}

/// Authenticates `stream` as Service.attach would, given the service's attributes, the
/// local user (`None` = any) and the key directory (`None` = [`default_keydir`]).
/// Failures of the exchange itself come back as `cannot authenticate: <reason>`.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    attrs: AuthAttrs<'_>,
    user: Option<&str>,
    keydir: Option<&Path>,
) -> Result<AttachAuth<S>, AuthError> {
    if !wants_infpk1(attrs.auth)? {
        return Ok(AttachAuth {
            stream: Authenticated::Plain(stream),
            signerpkhash: None,
            localuser: None,
            remoteuser: None,
        });
    }
    let path = choose_key(attrs.signer, user, keydir)?;
    let info = AuthInfo::read(&path).map_err(|e| {
        AuthError::CannotAuthenticate(Box::new(AuthError::KeyText(format!(
            "can't read key file {}: {e}",
            path.display()
        ))))
    })?;
    let crypt = attrs.crypt.unwrap_or("none");
    let (stream, remote) = client(stream, crypt, &info)
        .await
        .map_err(|e| AuthError::CannotAuthenticate(Box::new(e)))?;
    Ok(AttachAuth {
        stream,
        signerpkhash: Some(pkhash(&info.spk)),
        localuser: Some(info.mypk.owner.clone()),
        remoteuser: Some(remote),
    })
}

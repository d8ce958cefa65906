//! `Auth->client` and `Auth->server` (spec/infpk1.md §5): infpk1, then the algorithm message,
//! then a plain or ssl-protected stream.

use super::msgio::{MAX_MSG, Msg, recv, send};
use super::protocol::authenticate;
use super::ssl::{SslConfig, SslStream};
use super::{AuthError, AuthInfo};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Inferno's default server list (`listen`/`styxlisten` without `-a`, §5.2): `none`, then
/// devssl's ciphers and hashes. `clear` is not in it.
pub const DEFAULT_SERVER_ALGS: &[&str] = &[
    "none",
    "descbc",
    "desecb",
    "des_56_cbc",
    "des_56_ecb",
    "des_40_cbc",
    "des_40_ecb",
    "rc4",
    "rc4_256",
    "rc4_128",
    "rc4_40",
    "ideacbc",
    "ideaecb",
    "md4",
    "md5",
    "sha1",
    "sha",
];

/// An authenticated connection: the raw stream (alg `none`) or ssl records over it.
/// Nothing was read past the last auth message, so no bytes are lost (§1.3).
pub enum Authenticated<S> {
    /// Alg `none`: the stream itself.
    Plain(S),
    /// Any other alg: ssl records.
    Ssl(Box<SslStream<S>>),
}

impl<S> Authenticated<S> {
    /// True when records are in use.
    pub fn is_ssl(&self) -> bool {
        matches!(self, Authenticated::Ssl(_))
    }

    /// The algorithm in use, in canonical form (`none`, `clear`, `sha1 rc4_256`, ...).
    pub fn alg(&self) -> String {
        match self {
            Authenticated::Plain(_) => "none".to_string(),
            Authenticated::Ssl(s) => s.config().to_string(),
        }
    }

    /// Wraps `inner` for `alg` (already split and joined) with `secret`.
    fn wrap(inner: S, alg: &str, secret: &[u8]) -> Result<Self, AuthError> {
        if alg.is_empty() || alg == "none" {
            return Ok(Authenticated::Plain(inner));
        }
        let cfg = SslConfig::parse(alg)?;
        Ok(Authenticated::Ssl(Box::new(SslStream::new(
            inner, &cfg, secret,
        )?)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Authenticated<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Authenticated::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Authenticated::Ssl(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Authenticated<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Authenticated::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Authenticated::Ssl(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Authenticated::Plain(s) => Pin::new(s).poll_flush(cx),
            Authenticated::Ssl(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Authenticated::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Authenticated::Ssl(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `Auth->client(alg, ai, fd)` (§5.1): runs infpk1, sends `alg` exactly as given (`none`
/// when empty) and returns the stream and the server's name. An alg name devssl would
/// refuse is refused before anything is sent.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    alg: &str,
    info: &AuthInfo,
) -> Result<(Authenticated<S>, String), AuthError> {
    let alg = if alg.is_empty() { "none" } else { alg };
    if alg != "none" {
        SslConfig::parse(alg)?;
    }
    let out = authenticate(&mut stream, info).await?;
    send(&mut stream, alg.as_bytes()).await?;
    Ok((
        Authenticated::wrap(stream, alg, &out.secret)?,
        out.remote_user,
    ))
}

/// Checks a client's algorithm message against `algs` (§5.2 steps 3–5) and returns the
/// string to switch ssl on with (`none` or empty means none). An empty `algs` accepts
/// anything, like a nil list in Inferno.
pub fn negotiate(payload: &[u8], algs: &[&str]) -> Result<String, AuthError> {
    let text = String::from_utf8_lossy(payload);
    let toks: Vec<&str> = text.split([' ', '/']).filter(|t| !t.is_empty()).collect();
    if !algs.is_empty()
        && let Some(bad) = toks.iter().find(|t| !algs.contains(t))
    {
        return Err(AuthError::UnsupportedAlg((*bad).to_string()));
    }
    Ok(toks.join(" "))
}

/// `Auth->server(algs, ai, fd, 0)` (§5.2): runs infpk1, reads the client's algorithm
/// message, checks it against `algs` (empty = accept anything; Inferno's default is
/// [`DEFAULT_SERVER_ALGS`]) and returns the stream and the client's name.
pub async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    algs: &[&str],
    info: &AuthInfo,
) -> Result<(Authenticated<S>, String), AuthError> {
    let out = authenticate(&mut stream, info).await?;
    let payload = match recv(&mut stream, MAX_MSG).await {
        Ok(Msg::Data(d)) => d,
        Ok(Msg::Error(t)) => return Err(AuthError::CantReadAlg(t)),
        Err(e) => return Err(AuthError::CantReadAlg(e.to_string())),
    };
    let alg = negotiate(&payload, algs)?;
    Ok((
        Authenticated::wrap(stream, &alg, &out.secret)?,
        out.remote_user,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(
            negotiate(b"sha1/rc4_256", DEFAULT_SERVER_ALGS).unwrap(),
            "sha1 rc4_256"
        );
        assert_eq!(negotiate(b"none", DEFAULT_SERVER_ALGS).unwrap(), "none");
        assert_eq!(negotiate(b"", DEFAULT_SERVER_ALGS).unwrap(), "");
        assert_eq!(
            negotiate(b"clear", DEFAULT_SERVER_ALGS)
                .unwrap_err()
                .to_string(),
            "unsupported client algorithm: clear"
        );
        assert_eq!(negotiate(b"clear", &["clear"]).unwrap(), "clear");
        assert_eq!(
            negotiate(b"md5  des_56_cbc", &[]).unwrap(),
            "md5 des_56_cbc"
        );
        assert!(negotiate(b"sha1", &["sha1 rc4_256"]).is_err());
    }
}

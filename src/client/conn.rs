//! Connections: any byte stream a registry or service can be reached over, and dialling one.

use super::error::{Error, Result};
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional byte stream: TCP, a Unix socket, an authenticated channel, an in-memory pipe.
pub trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

/// A connection of any kind, boxed.
pub type BoxConn = Box<dyn Conn>;

/// Dials an Inferno dial string (`tcp!host!port`, `net!$registry!registry`, `unix!/path`), as
/// Limbo's `sys->dial(addr, nil)` does: no default service. Errors read `cannot dial: ...`.
pub async fn dial(addr: &str) -> Result<BoxConn> {
    let stream = crate::net::dial(addr).await.map_err(Error::Dial)?;
    Ok(Box::new(stream))
}

/// Dials `addr`, runs infpk1 with `info` and pushes `alg` (empty: `none`), as Inferno's `mount
/// -k KEYFILE -C ALG` does before speaking 9P (spec/infpk1.md §9.3): the protected stream.
pub async fn dial_with_key(
    addr: &str,
    info: &crate::auth::AuthInfo,
    alg: &str,
) -> Result<crate::auth::Authenticated<BoxConn>> {
    let conn = dial(addr).await?;
    let (conn, _server) = crate::auth::client(conn, alg, info)
        .await
        .map_err(|e| Error::Auth(format!("cannot authenticate: {e}")))?;
    Ok(conn)
}

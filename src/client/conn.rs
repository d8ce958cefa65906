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
    let stream = crate::net::dial(addr)
        .await
        .map_err(|e| Error::Dial(e.to_string()))?;
    Ok(Box::new(stream))
}

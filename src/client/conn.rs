//! Connections: any byte stream a registry or service can be reached over, and dialling one.

use super::error::{Error, Result};
use crate::dial::Addr;
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional byte stream: TCP, a Unix socket, an authenticated channel, an in-memory pipe.
pub trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

/// A connection of any kind, boxed.
pub type BoxConn = Box<dyn Conn>;

/// Dials an Inferno dial string (`tcp!host!port`, `net!$registry!registry`, `unix!/path`), as
/// Limbo's `sys->dial(addr, nil)` does: no default service. Errors read `cannot dial: ...`.
pub async fn dial(addr: &str) -> Result<BoxConn> {
    let parsed = Addr::parse(addr, "").map_err(|e| Error::Dial(e.to_string()))?;
    match &parsed {
        Addr::Tcp { .. } => {
            let target = parsed
                .socket_addr_string()
                .ok_or_else(|| Error::Dial(addr.to_string()))?;
            let s = tokio::net::TcpStream::connect(&target)
                .await
                .map_err(|e| Error::Dial(format!("{parsed}: {e}")))?;
            // Registry traffic is small request/reply messages: do not let Nagle delay them.
            let _ = s.set_nodelay(true);
            Ok(Box::new(s))
        }
        #[cfg(unix)]
        Addr::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| Error::Dial(format!("{parsed}: {e}")))?;
            Ok(Box::new(s))
        }
        #[cfg(not(unix))]
        Addr::Unix(_) => Err(Error::Dial(format!("{parsed}: unix sockets unsupported"))),
    }
}

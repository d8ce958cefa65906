//! Dialling: Inferno's `sys->dial` for TCP and Unix-domain sockets.

use super::addr::{Addr, DialError};
use super::listen::Stream;
use tokio::net::TcpStream;

/// Dials an Inferno dial string (`tcp!host!port`, `net!$registry!registry`, `unix!/path`), as
/// Limbo's `sys->dial(addr, nil)` does: no default service.
pub async fn dial(addr: &str) -> Result<Stream, DialError> {
    let parsed = Addr::parse(addr, "")?;
    let failed = |e: std::io::Error| DialError::Connect {
        addr: parsed.to_string(),
        kind: e.kind(),
        why: e.to_string(),
    };
    match &parsed {
        Addr::Tcp { host, port } => Ok(Stream::Tcp(dial_tcp(host, *port).await.map_err(failed)?)),
        Addr::Unix(path) => Ok(Stream::Unix(
            tokio::net::UnixStream::connect(path)
                .await
                .map_err(failed)?,
        )),
    }
}

/// Connects to `host` (a name, an address, or `$attr` already resolved) and `port`, with Nagle
/// off (registry traffic is small request/reply messages that must not wait) and TCP keepalive
/// on (a registry whose host has gone is noticed within [`super::KEEPALIVE_DETECTION`]).
pub async fn dial_tcp(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let target = Addr::Tcp {
        host: host.to_string(),
        port,
    }
    .socket_addr_string()
    .unwrap_or_default();
    let s = TcpStream::connect(&target).await?;
    let _ = s.set_nodelay(true);
    super::set_keepalive(&s);
    Ok(s)
}

//! The TCP shim backend (spec/registry.md §8): the registries(2) operations over the three plain TCP
//! ports of Inferno::RegMgr::TCP instead of 9P.
//!
//! * `find`: one connection to the find port, the query line, the reply up to end of file;
//!   `services` is `find` with the empty query.
//! * `register`: a connection to the new port held open; the first line registers, updates are
//!   further lines, closing unregisters. The shim never answers on this port, and closes the
//!   connection when a registration fails, so to report success or failure as registries(2)
//!   does, `register` first opens the event port, and waits for either a change after which the
//!   service is listed (success) or the closing of its connection (failure; `duplicate service
//!   name` when the name is listed).
//! * `events`: a connection to the event port, read after its `READY` line.
//! * `unregister` of a service by name has no shim counterpart: [`Error::Unsupported`].

use super::error::{Error, Result};
use super::service::Service;
use crate::wire::{
    self, Diagnostic, MAX_EVENT_LINE, MAX_FIND_REPLY, READY, RecordReader, ShimPorts, unquote,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long `close` waits for the shim to confirm an unregistration by closing its side.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The diagnostic for an operation the shim cannot express.
pub const NO_UNREGISTER: &str =
    "the TCP shim cannot unregister a service by name: close the registration that made it";

/// A registry reached through a TCP shim.
#[derive(Debug, Clone)]
pub struct ShimClient {
    host: String,
    ports: ShimPorts,
}

/// Maps a failure to reach the shim.
fn dial_err(host: &str, port: u16, e: std::io::Error) -> Error {
    Error::Dial(crate::net::DialError::Connect {
        addr: format!("tcp!{host}!{port}"),
        kind: e.kind(),
        why: e.to_string(),
    })
}

impl ShimClient {
    /// A client of the shim at `host` and `ports`; checks that the event port answers `READY`.
    pub async fn connect(host: &str, ports: ShimPorts) -> Result<ShimClient> {
        let c = ShimClient {
            host: host.to_string(),
            ports,
        };
        drop(c.events().await?);
        Ok(c)
    }

    async fn dial(&self, port: u16) -> Result<TcpStream> {
        crate::net::dial_tcp(&self.host, port)
            .await
            .map_err(|e| dial_err(&self.host, port, e))
    }

    /// Every service: `find` with the empty query.
    pub async fn index(&self) -> Result<String> {
        self.find(String::new()).await
    }

    /// Sends `query` as one line to the find port and reads the reply to end of file.
    pub async fn find(&self, query: String) -> Result<String> {
        let mut s = self.dial(self.ports.find).await?;
        s.write_all(format!("{query}\n").as_bytes()).await?;
        let mut reply = Vec::new();
        let mut limited = (&mut s).take(MAX_FIND_REPLY as u64 + 1);
        limited.read_to_end(&mut reply).await?;
        if reply.len() > MAX_FIND_REPLY {
            return Err(Error::Protocol(format!(
                "find reply longer than {MAX_FIND_REPLY} bytes"
            )));
        }
        String::from_utf8(reply).map_err(|e| Error::Protocol(format!("find reply: {e}")))
    }

    /// Registers with `line` (`name [attr val]...`) and returns the held connection.
    pub async fn register(&self, line: String) -> Result<ShimReg> {
        let mut words = unquote(&line).into_iter();
        let name = words.next().unwrap_or_default();
        wire::check_name(&name).map_err(Error::Registry)?;
        let probe = probe_query(words.collect());
        // Watch first, so that the change our registration makes cannot be missed.
        let mut events = self.events().await?;
        let listed_before = self.listed(&name, &probe).await?;
        let mut conn = self.dial(self.ports.new).await?;
        conn.write_all(format!("{line}\n").as_bytes()).await?;
        let mut scratch = [0u8; 64];
        loop {
            tokio::select! {
                ev = events.next() => {
                    ev?;
                    // Before our change the name was someone else's: wait for the verdict
                    // (the shim closes our connection on a duplicate).
                    if !listed_before && self.listed(&name, &probe).await? {
                        return Ok(ShimReg { conn });
                    }
                }
                r = conn.read(&mut scratch) => {
                    // The shim says nothing on this port: any end or data means refusal.
                    let _ = r;
                    return Err(if self.listed(&name, &probe).await? {
                        Error::Registry(Diagnostic::Duplicate)
                    } else {
                        Error::Registry(Diagnostic::Other(
                            "registration refused: the shim closed the connection".into(),
                        ))
                    });
                }
            }
        }
    }

    /// Whether a service called `name` is listed now, looking with `probe` (a query it must
    /// match) rather than through the whole index.
    async fn listed(&self, name: &str, probe: &str) -> Result<bool> {
        Ok(Service::parse_all(&self.find(probe.to_string()).await?)
            .iter()
            .any(|s| s.addr == name))
    }

    /// Unregistering by name: not expressible over the shim.
    pub async fn unregister(&self, _name: &str) -> Result<()> {
        Err(Error::Unsupported(NO_UNREGISTER))
    }

    /// Connects to the event port and waits for `READY`.
    pub async fn events(&self) -> Result<ShimEvents> {
        let s = self.dial(self.ports.event).await?;
        let mut reader = RecordReader::new(s, MAX_EVENT_LINE);
        match reader.next_record().await? {
            Some(line) if format!("{}\n", String::from_utf8_lossy(&line)) == READY => {
                Ok(ShimEvents { reader })
            }
            Some(line) => Err(Error::BadEvent(format!(
                "expected READY, got {}",
                String::from_utf8_lossy(&line)
            ))),
            None => Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
        }
    }
}

/// A registration held through the shim: its open connection to the new port.
#[derive(Debug)]
pub struct ShimReg {
    conn: TcpStream,
}

impl ShimReg {
    /// Sends one update line. Fails if the shim has already closed the connection.
    pub async fn write(&mut self, data: String) -> Result<()> {
        let mut probe = [0u8; 1];
        match self.conn.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "the shim closed the registration",
                )));
            }
        }
        self.conn
            .write_all(format!("{data}\n").as_bytes())
            .await
            .map_err(Error::Io)
    }

    /// Closes the connection and waits (a while) until the shim closes its side, which it does
    /// after the registry has removed the service.
    pub async fn close(mut self) -> Result<()> {
        self.conn.shutdown().await?;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(CLOSE_WAIT, self.conn.read_to_end(&mut sink)).await;
        Ok(())
    }
}

/// The event port after `READY`.
#[derive(Debug)]
pub struct ShimEvents {
    reader: RecordReader<TcpStream>,
}

impl ShimEvents {
    /// The next change count; an error when the shim closes the connection.
    pub async fn next(&mut self) -> Result<u64> {
        let line = self
            .reader
            .next_record()
            .await?
            .ok_or_else(|| Error::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
        let text = String::from_utf8_lossy(&line);
        text.trim()
            .parse()
            .map_err(|_| Error::BadEvent(text.into_owned()))
    }
}

/// A query that the service registered with `words` (its attribute words) matches: its first
/// attribute with the last value given for it (the one the registry keeps), or the empty query.
fn probe_query(words: Vec<String>) -> String {
    let Ok(pairs) = wire::pairs(words) else {
        return String::new();
    };
    let Some((attr, _)) = pairs.first() else {
        return String::new();
    };
    let value = pairs
        .iter()
        .rev()
        .find(|(a, _)| a == attr)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    wire::format_pairs([(attr.as_str(), value)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_uses_the_kept_value() {
        let w = |s: &str| unquote(s);
        assert_eq!(probe_query(w("a 1 b 2 a 3")), "a 3");
        assert_eq!(probe_query(w("d 'x y'")), "d 'x y'");
        assert_eq!(probe_query(w("")), "");
        assert_eq!(probe_query(w("odd")), "");
    }
}

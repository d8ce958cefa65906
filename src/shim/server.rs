//! The shim server: the three ports' listeners and the protocol on each connection.

use super::lines::RecordReader;
use super::upstream::{Pool, Upstream};
use super::{MAX_LINE, READY, ShimPorts};
use crate::client::Attributes;
use crate::dial::Addr;
use crate::registry::RunningServer;
use crate::text::{format_event, pairs, unquote};
use futures_util::StreamExt;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why the shim cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A port could not be bound.
    #[error("shim: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
}

/// The addresses the shim's ports are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimAddrs {
    /// The registration port.
    pub new: SocketAddr,
    /// The query port.
    pub find: SocketAddr,
    /// The change notification port.
    pub event: SocketAddr,
}

impl ShimAddrs {
    /// The three ports.
    pub fn ports(&self) -> ShimPorts {
        ShimPorts {
            new: self.new.port(),
            find: self.find.port(),
            event: self.event.port(),
        }
    }
}

/// As dial strings: `new tcp!H!P find tcp!H!P event tcp!H!P`.
impl fmt::Display for ShimAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |a: &SocketAddr| format!("tcp!{}!{}", a.ip(), a.port());
        write!(
            f,
            "new {} find {} event {}",
            d(&self.new),
            d(&self.find),
            d(&self.event)
        )
    }
}

/// A shim that is accepting connections.
#[derive(Debug)]
pub struct RunningShim {
    addrs: ShimAddrs,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningShim {
    /// The bound addresses (port 0 replaced by the real port).
    pub fn local_addrs(&self) -> ShimAddrs {
        self.addrs
    }

    /// Stops accepting and drops every connection (their registrations go with them).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until every listener has stopped (normally: forever).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts the shim on `host` (a name or address; `*` is every address) and `ports`, in front of
/// `upstream`, attaching to it as `$USER`.
pub async fn start(
    upstream: Upstream,
    host: &str,
    ports: ShimPorts,
) -> Result<RunningShim, ShimError> {
    start_as(upstream, host, ports, None).await
}

/// As [`start`], attaching to the registry as `user`: the owner of the shim's registrations.
pub async fn start_as(
    upstream: Upstream,
    host: &str,
    ports: ShimPorts,
    user: Option<String>,
) -> Result<RunningShim, ShimError> {
    let pool = Arc::new(Pool::new(upstream, user));
    let new = bind(host, ports.new).await?;
    let find = bind(host, ports.find).await?;
    let event = bind(host, ports.event).await?;
    let addr = |l: &TcpListener, port| {
        l.local_addr().map_err(|source| ShimError::Listen {
            addr: format!("tcp!{host}!{port}"),
            source,
        })
    };
    let addrs = ShimAddrs {
        new: addr(&new, ports.new)?,
        find: addr(&find, ports.find)?,
        event: addr(&event, ports.event)?,
    };
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(accept_loop(new, Port::New, pool.clone(), stop_rx.clone()));
    tasks.spawn(accept_loop(find, Port::Find, pool.clone(), stop_rx.clone()));
    tasks.spawn(accept_loop(event, Port::Event, pool, stop_rx));
    Ok(RunningShim { addrs, stop, tasks })
}

/// The shim of `registry serve`: in front of `running`'s registry, on the host of its first
/// listener (`asked` is that listener as given on the command line; 127.0.0.1 when it is a Unix
/// socket). Unless `ports` is given the ports are 6701/6702/6703, or ephemeral when `asked` had
/// port 0 or is a Unix socket, so that tests never collide.
pub async fn serve_beside(
    running: &RunningServer,
    asked: Option<&Addr>,
    ports: Option<ShimPorts>,
) -> Result<RunningShim, ShimError> {
    let host = match running.local_addrs().first() {
        Some(Addr::Tcp { host, .. }) => host.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let ports = ports.unwrap_or(match asked {
        Some(Addr::Tcp { port: 0, .. }) => ShimPorts::EPHEMERAL,
        Some(Addr::Tcp { .. }) | None => ShimPorts::DEFAULT,
        // A Unix socket says nothing about TCP ports: do not take the well-known ones.
        Some(Addr::Unix(_)) => ShimPorts::EPHEMERAL,
    });
    start(Upstream::Local(running.registry().clone()), &host, ports).await
}

async fn bind(host: &str, port: u16) -> Result<TcpListener, ShimError> {
    let addr = Addr::Tcp {
        host: host.to_string(),
        port,
    };
    let sa = addr.socket_addr_string().unwrap_or_default();
    TcpListener::bind(&sa)
        .await
        .map_err(|source| ShimError::Listen {
            addr: addr.to_string(),
            source,
        })
}

#[derive(Debug, Clone, Copy)]
enum Port {
    New,
    Find,
    Event,
}

async fn accept_loop(
    listener: TcpListener,
    port: Port,
    pool: Arc<Pool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => None,
            a = listener.accept() => Some(a),
        };
        let (stream, _) = match accepted {
            None => break,
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!("shim: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let pool = pool.clone();
        conns.spawn(async move {
            let r = match port {
                Port::New => serve_new(&pool, stream).await,
                Port::Find => serve_find(&pool, stream).await,
                Port::Event => serve_event(&pool, stream).await,
            };
            if let Err(e) = r {
                tracing::debug!("shim: {port:?} connection ended: {e}");
            }
        });
    }
    conns.shutdown().await;
}

/// A record's words: the registry's text is UTF-8; anything else is taken as Latin-1-ish lossy.
fn words(rec: &[u8]) -> Vec<String> {
    unquote(&String::from_utf8_lossy(rec))
}

/// Why a connection ended early; only logged.
type ConnResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Port 6701: the first line registers, later lines update, the end of the connection
/// unregisters. Any failure closes the connection, which is how the client learns of it.
async fn serve_new(pool: &Pool, stream: TcpStream) -> ConnResult {
    let (rd, _wr) = stream.into_split();
    let mut lines = RecordReader::new(rd, MAX_LINE);
    let Some(first) = lines.next_record().await? else {
        return Ok(());
    };
    let mut w = words(&first).into_iter();
    let name = w.next().ok_or("bad syntax")?;
    let attrs = Attributes {
        attrs: pairs(w.collect())?,
    };
    let session = pool.session().await?;
    let mut held = session.registry().register(&name, &attrs, false).await?;
    let result: ConnResult = loop {
        tokio::select! {
            _ = session.lost() => break Err("registry connection lost".into()),
            rec = lines.next_record() => match rec {
                Ok(Some(rec)) => {
                    let update = match pairs(words(&rec)) {
                        Ok(p) => p,
                        Err(e) => break Err(e.into()),
                    };
                    if update.is_empty() {
                        continue;
                    }
                    if let Err(e) = held.update(&Attributes { attrs: update }).await {
                        break Err(e.into());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.into()),
            },
        }
    };
    // Wait until the registry has removed the service, so that a client that reconnects at
    // once can register the same name again.
    held.close().await?;
    result
}

/// Port 6702: one query line, the matching services, then close.
async fn serve_find(pool: &Pool, stream: TcpStream) -> ConnResult {
    let (rd, mut wr) = stream.into_split();
    let mut lines = RecordReader::new(rd, MAX_LINE);
    // A client that closes without a line gets every service, as Inferno's `read` then leaves
    // the find file's filter empty.
    let query = lines.next_record().await?.unwrap_or_default();
    let query = pairs(words(&query))?;
    let session = pool.session().await?;
    let found = session.registry().find(&query).await?;
    let mut reply = String::new();
    for svc in &found {
        use std::fmt::Write as _;
        let _ = writeln!(reply, "{svc}");
    }
    wr.write_all(reply.as_bytes()).await?;
    wr.shutdown().await?;
    Ok(())
}

/// Port 6703: `READY` once the event file is open (its counter captured), then one line per
/// coalesced change until either side ends. What the client sends is read and ignored.
async fn serve_event(pool: &Pool, stream: TcpStream) -> ConnResult {
    let (mut rd, mut wr) = stream.into_split();
    let session = pool.session().await?;
    let mut events = session.registry().events().await?;
    wr.write_all(READY.as_bytes()).await?;
    let mut scratch = [0u8; 512];
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(count)) => wr.write_all(format_event(count).as_bytes()).await?,
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            r = rd.read(&mut scratch) => match r {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
}

//! The shim server: the three ports' listeners and the protocol on each connection.

use super::limits::ShimLimits;
use super::upstream::{Pool, Upstream};
use crate::client::Attributes;
use crate::dial::Addr;
use crate::registry::RunningServer;
use crate::wire::{MAX_LINE, READY, RecordReader, ShimPorts};
use crate::wire::{format_event, pairs, unquote};
use futures_util::StreamExt;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
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

/// How a shim runs, beyond where it listens: whom it attaches to the registry as, and its
/// limits.
#[derive(Debug, Clone, Default)]
pub struct ShimConfig {
    /// The user to attach to the registry as, the owner of the shim's registrations; `None`:
    /// `$USER`.
    pub user: Option<String>,
    /// Connection cap and idle timeout.
    pub limits: ShimLimits,
}

/// Starts the shim on `host` (a name or address; `*` is every address) and `ports`, in front of
/// `upstream`, attaching to it as `$USER`, with the default [`ShimLimits`].
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
    let config = ShimConfig {
        user,
        ..ShimConfig::default()
    };
    start_with(upstream, host, ports, config).await
}

/// As [`start`], with another user or other limits.
pub async fn start_with(
    upstream: Upstream,
    host: &str,
    ports: ShimPorts,
    config: ShimConfig,
) -> Result<RunningShim, ShimError> {
    let pool = Arc::new(Pool::new(upstream, config.user));
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
    let listeners = Listeners { new, find, event };
    tasks.spawn(accept_loop(listeners, pool, config.limits, stop_rx));
    Ok(RunningShim { addrs, stop, tasks })
}

/// The shim of `registry serve`: in front of `running`'s registry, on the host of its first
/// listener (`asked` is that listener as given on the command line; 127.0.0.1 when it is a Unix
/// socket). Unless `ports` is given the ports are 6701/6702/6703, or ephemeral when `asked` had
/// port 0 or is a Unix socket, so that tests never collide. Default [`ShimLimits`].
pub async fn serve_beside(
    running: &RunningServer,
    asked: Option<&Addr>,
    ports: Option<ShimPorts>,
) -> Result<RunningShim, ShimError> {
    serve_beside_with(running, asked, ports, ShimLimits::default()).await
}

/// As [`serve_beside`], with other limits.
pub async fn serve_beside_with(
    running: &RunningServer,
    asked: Option<&Addr>,
    ports: Option<ShimPorts>,
    limits: ShimLimits,
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
    let config = ShimConfig { user: None, limits };
    start_with(
        Upstream::Local(running.registry().clone()),
        &host,
        ports,
        config,
    )
    .await
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

/// The shim's three listening sockets.
struct Listeners {
    new: TcpListener,
    find: TcpListener,
    event: TcpListener,
}

/// Accepts on the three ports from one loop, so that one count of free slots covers them all:
/// a slot is taken before accepting, as the 9P server does, so that a connection beyond the
/// cap waits in its port's backlog rather than in this process.
async fn accept_loop(
    l: Listeners,
    pool: Arc<Pool>,
    limits: ShimLimits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let slot = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        // Each accept is cancel-safe: the ports that lose the race keep their connections
        // queued.
        let (port, accepted) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            a = l.new.accept() => (Port::New, a),
            a = l.find.accept() => (Port::Find, a),
            a = l.event.accept() => (Port::Event, a),
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!("shim: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let pool = pool.clone();
        let find_idle = limits.find_idle_timeout;
        conns.spawn(async move {
            // Held until the connection ends: then the next one may be accepted.
            let _slot = slot;
            let r = match port {
                Port::New => serve_new(&pool, stream).await,
                Port::Find => serve_find(&pool, stream, find_idle).await,
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

/// Port 6702: one query line, the matching services, then close. A client that sends nothing
/// for `idle` while its query is incomplete is dropped; the reply has no time limit.
async fn serve_find(pool: &Pool, stream: TcpStream, idle: Option<Duration>) -> ConnResult {
    let (rd, mut wr) = stream.into_split();
    let mut lines = RecordReader::new(rd, MAX_LINE).with_idle_timeout(idle);
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

//! The shim server: the three ports' listeners and the protocol on each connection.

use super::backend::{Backend, Local};
use super::limits::ShimLimits;
use crate::net::{Accepting, Addr, AtCap, Listener, Stream};
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
use tokio::net::TcpStream;

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
    accepting: Accepting,
}

impl RunningShim {
    /// The bound addresses (port 0 replaced by the real port).
    pub fn local_addrs(&self) -> ShimAddrs {
        self.addrs
    }

    /// Stops accepting and drops every connection (their registrations go with them).
    pub async fn shutdown(self) {
        self.accepting.shutdown().await;
    }

    /// Runs until every listener has stopped (normally: forever).
    pub async fn wait(self) {
        self.accepting.wait().await;
    }
}

/// Builds and starts a shim: where it listens, whom it attaches to the registry as, its limits.
///
/// [`Builder::new`] fronts any [`Backend`]; [`Builder::beside`] fronts the registry of a running
/// `registry serve`, on that server's host.
#[derive(Clone)]
pub struct Builder {
    backend: Arc<dyn Backend>,
    host: String,
    ports: ShimPorts,
    limits: ShimLimits,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("host", &self.host)
            .field("ports", &self.ports)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A shim in front of `backend`, on 127.0.0.1 and the ports 6701/6702/6703, with the
    /// default [`ShimLimits`].
    pub fn new(backend: impl Backend) -> Builder {
        Builder {
            backend: Arc::new(backend),
            host: "127.0.0.1".to_string(),
            ports: ShimPorts::DEFAULT,
            limits: ShimLimits::default(),
        }
    }

    /// The shim of `registry serve`: in front of `running`'s registry, on the host of its first
    /// listener (`asked` is that listener as given on the command line; 127.0.0.1 when it is a
    /// Unix socket). The ports are 6701/6702/6703, or ephemeral when `asked` had port 0 or is a
    /// Unix socket, so that tests never collide; [`Builder::ports`] overrides them.
    pub fn beside(running: &RunningServer, asked: Option<&Addr>) -> Builder {
        let host = match running.local_addrs().first() {
            Some(Addr::Tcp { host, .. }) => host.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let ports = match asked {
            Some(Addr::Tcp { port: 0, .. }) => ShimPorts::EPHEMERAL,
            Some(Addr::Tcp { .. }) | None => ShimPorts::DEFAULT,
            // A Unix socket says nothing about TCP ports: do not take the well-known ones.
            Some(Addr::Unix(_)) => ShimPorts::EPHEMERAL,
        };
        Builder::new(Local::new(running.server().clone()))
            .host(host)
            .ports(ports)
    }

    /// Listen on `host`, a name or address; `*` is every address.
    pub fn host(mut self, host: impl Into<String>) -> Builder {
        self.host = host.into();
        self
    }

    /// Listen on these ports ([`ShimPorts::EPHEMERAL`]: let the system choose).
    pub fn ports(mut self, ports: ShimPorts) -> Builder {
        self.ports = ports;
        self
    }

    /// Enforce these limits.
    pub fn limits(mut self, limits: ShimLimits) -> Builder {
        self.limits = limits;
        self
    }

    /// Binds the three ports and starts accepting.
    pub async fn start(self) -> Result<RunningShim, ShimError> {
        let host = self.host.as_str();
        let new = bind(host, self.ports.new).await?;
        let find = bind(host, self.ports.find).await?;
        let event = bind(host, self.ports.event).await?;
        let addrs = ShimAddrs {
            new: socket_addr(&new)?,
            find: socket_addr(&find)?,
            event: socket_addr(&event)?,
        };
        let backend = self.backend;
        let rules = Arc::new(Rules {
            find: self.limits.find_deadline,
            new: self.limits.new_deadline,
            reply: self.limits.reply_deadline,
            budget: ReplyBudget::new(self.limits.reply_budget),
        });
        let mut accepting = Accepting::new();
        // A cap of its own for each port, so that connections to one (silent new-port sockets,
        // say) never shut the others out.
        for (listener, port, name) in [
            (new, Port::New, "shim new"),
            (find, Port::Find, "shim find"),
            (event, Port::Event, "shim event"),
        ] {
            let backend = backend.clone();
            let rules = rules.clone();
            accepting.spawn(
                name,
                vec![(listener, port)],
                self.limits.max_connections,
                AtCap::Wait,
                move |port, stream, peer| {
                    serve_port(backend.clone(), port, stream, peer, rules.clone())
                },
            );
        }
        Ok(RunningShim { addrs, accepting })
    }
}

async fn bind(host: &str, port: u16) -> Result<Listener, ShimError> {
    let addr = Addr::Tcp {
        host: host.to_string(),
        port,
    };
    Listener::bind(&addr)
        .await
        .map_err(|source| ShimError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// The bound address of a shim listener (always TCP).
fn socket_addr(l: &Listener) -> Result<SocketAddr, ShimError> {
    let addr = l.local_addr();
    let bad = || ShimError::Listen {
        addr: addr.to_string(),
        source: io::Error::other("not a TCP address"),
    };
    match addr {
        Addr::Tcp { host, port } => {
            let ip: std::net::IpAddr = host.parse().map_err(|_| bad())?;
            Ok(SocketAddr::new(ip, *port))
        }
        Addr::Unix(_) => Err(bad()),
    }
}

#[derive(Debug, Clone, Copy)]
enum Port {
    New,
    Find,
    Event,
}

/// What the ports allow a client: how long the new and find ports wait for its line, how long
/// a find reply may take to go, and the bytes all find replies may hold unsent.
#[derive(Debug)]
struct Rules {
    find: Option<Duration>,
    new: Option<Duration>,
    reply: Option<Duration>,
    budget: ReplyBudget,
}

/// The bytes of find replies in hand and not sent yet, against their cap.
#[derive(Debug)]
struct ReplyBudget {
    cap: usize,
    held: std::sync::atomic::AtomicUsize,
}

impl ReplyBudget {
    fn new(cap: usize) -> ReplyBudget {
        ReplyBudget {
            cap,
            held: Default::default(),
        }
    }

    /// Counts `n` bytes until the returned charge is dropped; `None` when that would pass the
    /// cap.
    fn charge(&self, n: usize) -> Option<Charge<'_>> {
        use std::sync::atomic::Ordering;
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|total| *total <= self.cap)
            })
            .ok()?;
        Some(Charge { budget: self, n })
    }
}

/// Bytes counted against a [`ReplyBudget`] while a reply is being sent.
struct Charge<'a> {
    budget: &'a ReplyBudget,
    n: usize,
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.budget
            .held
            .fetch_sub(self.n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Serves one connection on `port`, logging how it ended.
async fn serve_port(
    backend: Arc<dyn Backend>,
    port: Port,
    stream: Stream,
    peer: String,
    rules: Arc<Rules>,
) {
    let Stream::Tcp(stream) = stream else {
        return;
    };
    let r = match port {
        Port::New => serve_new(&*backend, stream, rules.new).await,
        Port::Find => serve_find(&*backend, stream, &rules).await,
        Port::Event => serve_event(&*backend, stream).await,
    };
    if let Err(e) = r {
        match e.downcast_ref::<LimitHit>() {
            Some(hit) => {
                crate::metrics::limit_hit(hit.limit());
                tracing::info!("shim: {peer}: {port:?} connection closed: {e}");
            }
            None => tracing::debug!("shim: {peer}: {port:?} connection ended: {e}"),
        }
    }
}

/// A limit closed the connection.
#[derive(Debug, thiserror::Error)]
enum LimitHit {
    /// A client's line did not come in time.
    #[error("no complete line within {0:?}")]
    LateLine(Duration, &'static str),
    /// A find client did not take its reply in time.
    #[error("reply of {1} bytes not taken within {0:?} (--shim-reply-deadline)")]
    LateReader(Duration, usize),
    /// A find reply would have passed the budget of unsent reply bytes.
    #[error(
        "reply of {0} bytes refused: find replies unsent would pass {1} bytes (--shim-reply-budget)"
    )]
    OverBudget(usize, usize),
}

impl LimitHit {
    /// The limit's name in the `registry_limit_hits` metric.
    fn limit(&self) -> &'static str {
        match self {
            LimitHit::LateLine(_, limit) => limit,
            LimitHit::LateReader(..) => "shim_reply_deadline",
            LimitHit::OverBudget(..) => "shim_reply_budget",
        }
    }
}

/// The next record of `lines`, within `deadline` when there is one (`limit` names it).
async fn line_within<R: tokio::io::AsyncRead + Unpin>(
    lines: &mut RecordReader<R>,
    deadline: Option<Duration>,
    limit: &'static str,
) -> Result<Option<Vec<u8>>, Box<dyn std::error::Error + Send + Sync>> {
    match deadline {
        Some(d) => match tokio::time::timeout(d, lines.next_record()).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(Box::new(LimitHit::LateLine(d, limit))),
        },
        None => Ok(lines.next_record().await?),
    }
}

/// A record's words: the registry's text is UTF-8; anything else is taken as Latin-1-ish lossy.
fn words(rec: &[u8]) -> Vec<String> {
    unquote(&String::from_utf8_lossy(rec))
}

/// Why a connection ended early; only logged.
type ConnResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Port 6701: the first line registers, later lines update, the end of the connection
/// unregisters. Any failure closes the connection, which is how the client learns of it.
async fn serve_new(
    backend: &dyn Backend,
    stream: TcpStream,
    deadline: Option<Duration>,
) -> ConnResult {
    let (rd, _wr) = stream.into_split();
    let mut lines = RecordReader::new(rd, MAX_LINE);
    let Some(first) = line_within(&mut lines, deadline, "shim_new_deadline").await? else {
        return Ok(());
    };
    let mut w = words(&first).into_iter();
    let name = w.next().ok_or("bad syntax")?;
    let attrs = pairs(w.collect())?;
    let mut held = backend.register(name, attrs).await?;
    let result: ConnResult = loop {
        tokio::select! {
            () = held.lost() => break Err("registry connection lost".into()),
            rec = lines.next_record() => match rec {
                Ok(Some(rec)) => {
                    let update = match pairs(words(&rec)) {
                        Ok(p) => p,
                        Err(e) => break Err(e.into()),
                    };
                    if update.is_empty() {
                        continue;
                    }
                    if let Err(e) = held.update(update).await {
                        break Err(e);
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

/// Port 6702: one query line, the matching services, then close. A client whose query is not
/// complete by its deadline is dropped, and so is one that does not take its reply in time or
/// whose reply would pass the budget of unsent reply bytes.
async fn serve_find(backend: &dyn Backend, stream: TcpStream, rules: &Rules) -> ConnResult {
    let (rd, mut wr) = stream.into_split();
    let mut lines = RecordReader::new(rd, MAX_LINE);
    // A client that closes without a line gets every service, as Inferno's `read` then leaves
    // the find file's filter empty.
    let query = line_within(&mut lines, rules.find, "shim_find_deadline")
        .await?
        .unwrap_or_default();
    let query = pairs(words(&query))?;
    let reply = backend.find(query).await?;
    let Some(_charge) = rules.budget.charge(reply.len()) else {
        return Err(Box::new(LimitHit::OverBudget(
            reply.len(),
            rules.budget.cap,
        )));
    };
    let send = async {
        wr.write_all(&reply).await?;
        wr.shutdown().await
    };
    match rules.reply {
        Some(d) => match tokio::time::timeout(d, send).await {
            Ok(r) => r?,
            Err(_) => return Err(Box::new(LimitHit::LateReader(d, reply.len()))),
        },
        None => send.await?,
    }
    Ok(())
}

/// Port 6703: `READY` once the event file is open (its counter captured), then one line per
/// coalesced change until either side ends. What the client sends is read and ignored.
async fn serve_event(backend: &dyn Backend, stream: TcpStream) -> ConnResult {
    let (mut rd, mut wr) = stream.into_split();
    let mut events = backend.changes().await?;
    wr.write_all(READY.as_bytes()).await?;
    let mut scratch = [0u8; 512];
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(count)) => wr.write_all(format_event(count).as_bytes()).await?,
                Some(Err(e)) => return Err(e),
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

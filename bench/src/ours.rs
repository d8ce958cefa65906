//! Our registry as a [`System`]: a `registry` server started as a child process (so that its
//! memory is its own), or any registry(4) server at a dial string, driven only through the public
//! registries(2) client over 9P.

use super::system::{BenchResult, Query, Svc, System};
use futures_util::StreamExt;
use registries::client::{Attributes, Changes, Events, Monitor, Registered, Registry};
use registries::net::Addr;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The hidden argument that makes `registry bench` serve a registry for its parent.
pub const CHILD_FLAG: &str = "--serve-child";

/// A registry(4) server reached over TCP.
pub struct Ours {
    /// `host:port` to connect to.
    addr: String,
    /// The child server, when we started it (killed on drop).
    child: Option<Child>,
}

impl Ours {
    /// Starts `registry bench --serve-child` (this executable) and reads the address it prints.
    pub async fn spawn() -> BenchResult<Ours> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["bench", CHILD_FLAG])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = child.stdout.take().ok_or("child server has no stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).await?;
        let dial = line
            .trim()
            .strip_prefix("listening ")
            .ok_or("child server did not start")?;
        let addr = Addr::parse(dial, "registry")?
            .socket_addr_string()
            .ok_or("child server gave no TCP address")?;
        Ok(Ours {
            addr,
            child: Some(child),
        })
    }

    /// A registry already running at dial string `dial` (its memory is not measured).
    pub fn at(dial: &str) -> BenchResult<Ours> {
        let addr = Addr::parse(dial, "registry")?
            .socket_addr_string()
            .ok_or_else(|| format!("{dial}: not a TCP address"))?;
        Ok(Ours { addr, child: None })
    }

    /// Where the server listens.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

/// A watcher of ours that sees each change: the change feed, or a `Monitor` on it.
pub enum OursChanges {
    /// `Registry::changes` with a query.
    Feed(Changes),
    /// A `Monitor`, whose first changes are the services already there.
    Monitor {
        /// The monitor.
        monitor: Box<Monitor>,
        /// Initial additions still to skip.
        initial: usize,
    },
}

impl System for Ours {
    type Conn = Registry;
    type Held = Registered;
    type Watch = Events;
    type Changes = OursChanges;

    fn label(&self) -> &'static str {
        "ours"
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    async fn connect(&self) -> BenchResult<Registry> {
        let s = tokio::net::TcpStream::connect(&self.addr).await?;
        s.set_nodelay(true)?;
        Ok(Registry::connect_stream(s, Some("bench")).await?)
    }

    async fn disconnect(&self, conn: Registry) -> BenchResult<()> {
        // The connection closes when its last handle goes; the server then drops its services.
        drop(conn);
        Ok(())
    }

    async fn register(&self, conn: &Registry, svc: &Svc) -> BenchResult<Registered> {
        Ok(conn
            .register(&svc.name, &Attributes::new(svc.attrs()), false)
            .await?)
    }

    async fn unregister(&self, held: Registered) -> BenchResult<()> {
        Ok(held.close().await?)
    }

    async fn find(&self, conn: &Registry, q: &Query) -> BenchResult<usize> {
        let found = match q {
            Query::Group(g) => conn.find(&[("group", g.as_str())]).await?,
            Query::All => conn.find(&[("proto", "*")]).await?,
        };
        Ok(found.len())
    }

    async fn watch(&self, conn: &Registry) -> BenchResult<Events> {
        Ok(conn.events().await?)
    }

    async fn next_event(w: &mut Events) -> BenchResult<()> {
        match w.next().await {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
            None => Err("event stream ended".into()),
        }
    }

    async fn watch_group(&self, conn: &Registry, group: &str) -> BenchResult<OursChanges> {
        Ok(OursChanges::Feed(
            conn.changes(&[("group", group)], None).await?,
        ))
    }

    async fn follow_all(&self, conn: &Registry) -> BenchResult<OursChanges> {
        let monitor = Monitor::new(conn, &[("proto", "*")]).await?;
        let initial = monitor.services().len();
        Ok(OursChanges::Monitor {
            monitor: Box::new(monitor),
            initial,
        })
    }

    async fn next_changes(w: &mut OursChanges) -> BenchResult<usize> {
        match w {
            OursChanges::Feed(c) => match c.next().await {
                Some(Ok(_)) => Ok(1),
                Some(Err(e)) => Err(e.into()),
                None => Err("change feed ended".into()),
            },
            OursChanges::Monitor { monitor, initial } => loop {
                match monitor.next().await {
                    Some(Ok(_)) if *initial > 0 => *initial -= 1,
                    Some(Ok(_)) => return Ok(1),
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err("monitor ended".into()),
                }
            },
        }
    }
}

/// The child side of [`Ours::spawn`]: serves a registry on a loopback port with the connection
/// limit raised (the default of 1,024 would queue scenario 5's 10,000 clients), prints
/// `listening ADDR`, and exits when the parent closes our standard input.
pub async fn serve_child() -> BenchResult<()> {
    use registries::registry::Server;
    use registries::styx::server::Limits;
    use tokio::io::AsyncReadExt;
    crate::raise_nofile();
    let limits = Limits {
        max_connections: 1 << 20,
        ..Limits::default()
    };
    let running = Server::builder()
        .server(Server::new().with_limits(limits))
        .listen_str("tcp!127.0.0.1!0")?
        .start()
        .await?;
    let addr = running
        .local_addrs()
        .first()
        .ok_or("no address")?
        .to_string();
    println!("listening {addr}");
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    running.shutdown().await;
    Ok(())
}

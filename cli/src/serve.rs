//! `registry serve`: serve a registry(4) over 9P2000 (Styx).

use crate::CmdResult;
use registries::net::Addr;
use registries::registry::http::{HttpConfig, RunningHttp};
use registries::registry::{
    DEFAULT_LISTEN, EtcdConfig, FeedLimits, Server, ServerAuth, ServerError,
};
use registries::styx::server::Limits;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Serve a registry(4) over 9P2000 (Styx), as Inferno's ndb/registry does.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry serve
      listen on tcp!127.0.0.1!6675 (service `registry`)
  registry serve --listen 'tcp!*!6675' --listen 'unix!/tmp/registry.sock'
      listen on every address and on a Unix socket
  registry serve --shim-ports 7701,7702,7703
      also serve the TCP shim of Inferno::RegMgr::TCP on other ports (default
      6701,6702,6703 on the first listener's host; ephemeral when its port is 0)
  registry serve --demo
      start with a few example services and print what to try next
  registry serve --auth server.keyfile
      require Inferno's infpk1 on every connection, as Inferno's `listen` does;
      clients then need `-k KEYFILE` (and the shim is off unless --shim-ports)
  registry serve --auth server.keyfile --alg sha1 --alg rc4_256
      accept only these algorithms (like `listen -a sha1 -a rc4_256`)
  registry serve --etcd 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379
      keep the catalog in etcd: every serve with the same endpoints and prefix
      serves one registry, and registrations outlive any one of them
  registry serve -f services.db
      start with the static services of an attrdb(6) file, e.g.
          service=net!click!1234
              description='snapshot service' auth=none")]
pub struct Args {
    /// Address to listen on, an Inferno dial string (tcp!HOST!PORT, tcp!*!PORT, unix!PATH).
    /// May be given several times.
    #[arg(long = "listen", short = 'l', value_name = "ADDR", default_value = DEFAULT_LISTEN,
          help_heading = "Listening")]
    listen: Vec<String>,
    /// attrdb(6) file of static services, owned by the user name `registry` (only a client
    /// attaching as `registry` can unregister them).
    #[arg(short = 'f', value_name = "DBFILE")]
    dbfile: Option<PathBuf>,
    /// Start with a few example services and print what to try next.
    #[arg(long)]
    demo: bool,
    /// Require Inferno's infpk1 authentication on every 9P connection, with this key file
    /// (made by `registry key issue`); the authenticated user owns what it registers. A bare
    /// name that is not a file here is looked up in $HOME/keyring.
    #[arg(long = "auth", value_name = "KEYFILE", help_heading = "Authentication")]
    auth: Option<PathBuf>,
    /// With --auth: an algorithm clients may ask for (repeatable, like `listen -a`); the one each
    /// connection chose is logged with REGISTRY_LOG=info. Default, as Inferno's `listen`: none
    /// descbc desecb des_56_cbc des_56_ecb des_40_cbc des_40_ecb rc4 rc4_256 rc4_128 rc4_40
    /// ideacbc ideaecb md4 md5 sha1 sha (not clear). Weak among them: none (neither MAC nor
    /// cipher), md4, md5, rc4_40 and rc4, the des and idea ciphers; `--alg sha1 --alg rc4_256`
    /// refuses them all, but then Inferno peers must ask for sha1/rc4_256.
    #[arg(
        long = "alg",
        value_name = "ALG",
        requires = "auth",
        help_heading = "Authentication"
    )]
    algs: Vec<String>,
    /// Most clients connected at once. At the cap a newcomer closes the oldest connection that
    /// has not attached (logged); with none, it waits in the listen backlog. Each takes one
    /// file descriptor, so the default is the open-file limit (raised to its hard limit at
    /// start) less 64 for listeners and files, and at least 1,024.
    #[arg(long = "max-connections", value_name = "N", help_heading = "9P limits")]
    max_connections: Option<usize>,
    /// Most fids one 9P connection may hold (each registration holds one); attach and walk
    /// beyond it fail with `too many fids`.
    #[arg(long = "max-fids", value_name = "N", default_value_t = Limits::default().max_fids,
          help_heading = "9P limits")]
    max_fids: usize,
    /// Largest 9P message a client may negotiate (Tversion's msize): a client gets the smaller of
    /// its offer and this. Inferno's clients offer 8216 and get it, as from Inferno's registry;
    /// ours offer 65560, which brings a long `index` or `find` in an eighth of the messages. A
    /// connection's requests hold at most about twice this per request it may run.
    #[arg(long = "msize", value_name = "BYTES", default_value_t = Limits::default().msize,
          value_parser = clap::value_parser!(u32).range(256..=16 << 20),
          help_heading = "9P limits")]
    msize: u32,
    /// Close a 9P connection that has not sent its Tversion and Tattach this many seconds after
    /// it was accepted, so that silent sockets cannot hold connection slots (0: never).
    #[arg(long = "handshake-timeout", value_name = "SECONDS", default_value = "30",
          value_parser = crate::opts::seconds, help_heading = "9P limits")]
    handshake_timeout: f64,
    /// Changes the change feed keeps for watchers that resume from a revision (`registry watch
    /// --from`, a reconnecting `watch`); older ones are compacted. 0 keeps none.
    #[arg(long = "history", value_name = "N", default_value_t = FeedLimits::DEFAULT_HISTORY,
          help_heading = "Change feed")]
    history: usize,
    /// Changes queued for one feed watcher that does not read them; past this it is told it fell
    /// behind and resynchronises, so a stalled reader costs bounded memory.
    #[arg(long = "feed-queue", value_name = "N", default_value_t = FeedLimits::DEFAULT_QUEUE,
          help_heading = "Change feed")]
    feed_queue: usize,
    /// No change feed: every attach name gives Inferno's tree, exactly as Inferno's registry
    /// does (clients then watch with `event` and `find`).
    #[arg(long = "no-feed", help_heading = "Change feed")]
    no_feed: bool,
    /// Keep the catalog in etcd (v3 API), at these client URLs (host:port or http://host:port,
    /// comma-separated or repeated): every `serve` with the same endpoints and prefix serves
    /// one catalog. Without it the catalog lives in this process.
    #[arg(
        long = "etcd",
        value_name = "URL,...",
        value_delimiter = ',',
        help_heading = "etcd"
    )]
    etcd: Vec<String>,
    /// With --etcd: the key prefix of this catalog (services are under PREFIXsvc/).
    #[arg(long = "etcd-prefix", value_name = "PREFIX", requires = "etcd",
          default_value = registries::registry::DEFAULT_PREFIX, help_heading = "etcd")]
    etcd_prefix: String,
    /// With --etcd: the TTL of this server's lease, in seconds: how long its non-persistent
    /// registrations outlive it when it dies.
    #[arg(
        long = "lease-ttl",
        value_name = "SECONDS",
        requires = "etcd",
        default_value_t = 10,
        help_heading = "etcd"
    )]
    lease_ttl: u64,
    /// With --etcd: how long a call to etcd keeps trying its members before the registry
    /// reports "registry store unavailable" (and how long start waits for etcd).
    #[arg(long = "etcd-timeout", value_name = "SECONDS", requires = "etcd", default_value = "5",
          value_parser = crate::opts::seconds, help_heading = "etcd")]
    etcd_timeout: f64,
    /// Serve a read-only HTTP side at ADDR (host:port, e.g. 127.0.0.1:6680): Prometheus metrics
    /// at /metrics, the catalog as JSON at /v1/services?attr=val..., the change feed as
    /// Server-Sent Events at /v1/changes?from=REV, and a live page at /. Off unless given;
    /// --demo turns it on at 127.0.0.1:6680.
    #[arg(long = "http", value_name = "ADDR", help_heading = "HTTP")]
    http: Option<std::net::SocketAddr>,
    /// With --auth: show the catalog over HTTP all the same (without it, HTTP readers, who do not
    /// authenticate, get only /metrics, which holds counts and no names).
    #[arg(long = "http-public", help_heading = "HTTP")]
    http_public: bool,
    /// Most HTTP connections open at once (each open page or event stream holds one); further
    /// ones wait in the listen backlog.
    #[arg(long = "http-max-connections", value_name = "N",
          default_value_t = HttpConfig::DEFAULT_MAX_CONNECTIONS, help_heading = "HTTP")]
    http_max_connections: usize,
    /// TCP shim ports NEW,FIND,EVENT (Inferno::RegMgr::TCP), on the host of the first listener.
    /// Default 6701,6702,6703, or ephemeral ports when the first listener has port 0.
    #[arg(
        long = "shim-ports",
        value_name = "NEW,FIND,EVENT",
        help_heading = "TCP shim"
    )]
    shim_ports: Option<registries::shim::ShimPorts>,
    /// Do not serve the TCP shim.
    #[arg(
        long = "no-shim",
        conflicts_with = "shim_ports",
        help_heading = "TCP shim"
    )]
    no_shim: bool,
    #[command(flatten, next_help_heading = "TCP shim")]
    shim_limits: crate::shim::LimitArgs,
}

/// Where `--demo` serves HTTP when `--http` is not given.
pub(crate) const DEMO_HTTP: &str = "127.0.0.1:6680";

impl Args {
    /// An empty registry with these options' limits, its catalog in etcd with --etcd.
    async fn registry(&self, limits: &Limits) -> Result<Server, ServerError> {
        let server = self.memory_registry(limits);
        if self.etcd.is_empty() {
            return Ok(server);
        }
        let mut cfg = EtcdConfig::new(self.etcd.clone());
        cfg.prefix = self.etcd_prefix.clone();
        cfg.lease_ttl = Duration::from_secs(self.lease_ttl.max(1));
        cfg.deadline = Duration::from_secs_f64(self.etcd_timeout.max(0.1));
        eprintln!("registry: connecting to etcd at {}", self.etcd.join(","));
        server.with_etcd(&cfg).await
    }

    fn memory_registry(&self, limits: &Limits) -> Server {
        let feed = FeedLimits {
            history: self.history,
            queue: self.feed_queue.max(1),
        };
        let server = Server::new()
            .with_limits(limits.clone())
            .with_feed_limits(feed);
        if self.no_feed {
            server.without_feed()
        } else {
            server
        }
    }
}

/// Descriptors kept for listeners, key and db files, logs: not given to connections.
const RESERVED_FDS: u64 = 64;

/// The connection limit when `--max-connections` is not given: what the open-file limit
/// `nofile` leaves after [`RESERVED_FDS`], never below the library's default.
fn default_max_connections(nofile: u64) -> usize {
    let floor = Limits::default().max_connections;
    let room = usize::try_from(nofile.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    room.clamp(floor, 1 << 20)
}

/// Runs `registry serve`: prints the bound addresses, then serves until interrupted.
pub async fn run(args: Args) -> CmdResult {
    let nofile = raise_nofile();
    let limits = Limits {
        max_connections: args
            .max_connections
            .unwrap_or_else(|| default_max_connections(nofile))
            .max(1),
        max_fids: args.max_fids.max(1),
        msize: args.msize,
        handshake_timeout: Some(args.handshake_timeout)
            .filter(|s| *s > 0.0)
            .map(std::time::Duration::from_secs_f64),
        ..Limits::default()
    };
    let mut b = Server::builder();
    for a in &args.listen {
        b = b.listen_str(a)?;
    }
    if let Some(f) = args.dbfile.clone() {
        b = b.static_file(f);
    }
    if let Some(keyfile) = &args.auth {
        let info = crate::opts::read_key(keyfile)?;
        let auth = if args.algs.is_empty() {
            ServerAuth::listen_default(info)
        } else {
            ServerAuth::new(info, args.algs.iter().cloned())
        };
        eprintln!(
            "registry: requiring infpk1 as {} (algorithms: {})",
            auth.info().mypk.owner,
            auth.algs().join(" ")
        );
        b = b.server_auth(auth);
    }
    let registry = args.registry(&limits).await?;
    let demo = args.demo.then(|| crate::demo::load(&registry));
    b = b.server(registry);
    let running = b.start().await?;
    for a in running.local_addrs() {
        eprintln!("registry: listening on {a}");
    }
    // The shim cannot authenticate: with --auth it would be a way around it, so it is only
    // served when asked for by --shim-ports.
    let shim_unasked_with_auth = args.auth.is_some() && args.shim_ports.is_none();
    if shim_unasked_with_auth && !args.no_shim {
        eprintln!("registry: no shim with --auth (it cannot authenticate; --shim-ports serves it)");
    } else if args.auth.is_some() && !args.no_shim {
        eprintln!("registry: warning: the shim does not authenticate; its clients bypass --auth");
    }
    let shim = if args.no_shim || shim_unasked_with_auth {
        None
    } else {
        let asked = args
            .listen
            .first()
            .and_then(|a| Addr::parse(a, "registry").ok());
        let limits = args.shim_limits.limits();
        let mut shim = registries::shim::Builder::beside(&running, asked.as_ref()).limits(limits);
        if let Some(ports) = args.shim_ports {
            shim = shim.ports(ports);
        }
        let shim = shim.start().await?;
        eprintln!("registry: shim {}", shim.local_addrs());
        Some(shim)
    };
    let http = start_http(&args, running.server()).await?;
    if let (Some(n), Some(first)) = (&demo, running.local_addrs().first()) {
        let run_as = crate::demo::how_to_run();
        eprint!(
            "{}",
            crate::demo::banner(first, *n, args.auth.is_some(), &run_as)
        );
        if let Some(h) = &http {
            eprintln!("Open http://{} to see the catalog live.", h.local_addr());
        }
    }
    tokio::signal::ctrl_c().await?;
    drop(http);
    // With --etcd, a clean stop takes this server's registrations away now, not a TTL later.
    running.server().close().await;
    if let Some(shim) = shim {
        shim.shutdown().await;
    }
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Starts the HTTP side when `--http` (or `--demo`) asks for it.
async fn start_http(
    args: &Args,
    server: &Server,
) -> Result<Option<RunningHttp>, Box<dyn std::error::Error + Send + Sync>> {
    let config = HttpConfig {
        show_catalog: args.auth.is_none() || args.http_public,
        max_connections: args.http_max_connections.max(1),
    };
    let addr = match (args.http, args.demo) {
        (Some(addr), _) => addr,
        (None, true) => DEMO_HTTP.parse().expect("a socket address"),
        (None, false) => return Ok(None),
    };
    let http = match RunningHttp::start(addr, server.clone(), config.clone()).await {
        Ok(h) => h,
        // The demo's port may be taken by another demo: any port will do for it.
        Err(e) if args.http.is_none() => {
            eprintln!("registry: cannot listen on {addr} ({e}); HTTP on another port");
            let any = std::net::SocketAddr::new(addr.ip(), 0);
            RunningHttp::start(any, server.clone(), config.clone()).await?
        }
        Err(e) => return Err(format!("cannot listen on {addr} for HTTP: {e}").into()),
    };
    let shown = if config.show_catalog {
        ""
    } else {
        " (metrics only: --auth hides the catalog; --http-public shows it)"
    };
    eprintln!("registry: http on http://{}{shown}", http.local_addr());
    Ok(Some(http))
}

/// Raises the soft open-file limit to the hard one (every connection costs a descriptor) and
/// returns the limit now in force, 0 when it cannot be read.
fn raise_nofile() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_connection_limit_follows_the_fd_limit() {
        assert_eq!(default_max_connections(0), 1024);
        assert_eq!(default_max_connections(1024), 1024);
        assert_eq!(default_max_connections(65_536), 65_472);
        assert_eq!(default_max_connections(u64::MAX), 1 << 20);
    }
}

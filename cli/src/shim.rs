//! `registry shim`: serve the TCP shim (6701/6702/6703) in front of a remote registry.

use crate::CmdResult;
use registries::auth::AuthInfo;
use registries::client::{self, Registry};
use registries::relay::Remote;
use registries::shim::{Builder, ShimLimits, ShimPorts};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The shim's limits on the command line (`registry shim` and `registry serve`).
#[derive(clap::Args)]
pub struct LimitArgs {
    /// Most shim connections served at once on each of its three ports; further ones wait in
    /// the listen backlog.
    #[arg(long = "shim-max-connections", value_name = "N",
          default_value_t = ShimLimits::DEFAULT_MAX_CONNECTIONS)]
    shim_max_connections: usize,
    /// Close a find-port (6702) connection whose query line is not complete this many seconds
    /// after it was accepted (decimals allowed; 0: never).
    #[arg(long = "shim-find-deadline", alias = "shim-idle-timeout", value_name = "SECONDS",
          default_value_t = ShimLimits::DEFAULT_FIND_DEADLINE.as_secs_f64(),
          value_parser = crate::opts::seconds)]
    shim_find_deadline: f64,
    /// Close a new-port (6701) connection whose first line (the registration) is not complete
    /// this many seconds after it was accepted (decimals allowed; 0: never).
    #[arg(long = "shim-new-deadline", value_name = "SECONDS",
          default_value_t = ShimLimits::DEFAULT_NEW_DEADLINE.as_secs_f64(),
          value_parser = crate::opts::seconds)]
    shim_new_deadline: f64,
    /// Close a find-port connection that has not taken its whole reply this many seconds after
    /// its query came in (decimals allowed; 0: never).
    #[arg(long = "shim-reply-deadline", value_name = "SECONDS",
          default_value_t = ShimLimits::DEFAULT_REPLY_DEADLINE.as_secs_f64(),
          value_parser = crate::opts::seconds)]
    shim_reply_deadline: f64,
    /// Most bytes of find replies held unsent at once, over all find-port connections (each
    /// reply counted in full); a find that would pass it is closed unanswered and logged.
    #[arg(long = "shim-reply-budget", value_name = "BYTES",
          default_value_t = ShimLimits::DEFAULT_REPLY_BUDGET)]
    shim_reply_budget: usize,
}

impl LimitArgs {
    /// The limits these options ask for.
    pub fn limits(&self) -> ShimLimits {
        ShimLimits {
            max_connections: self.shim_max_connections.max(1),
            find_deadline: deadline(self.shim_find_deadline),
            new_deadline: deadline(self.shim_new_deadline),
            reply_deadline: deadline(self.shim_reply_deadline),
            reply_budget: self.shim_reply_budget,
        }
    }
}

/// A deadline in seconds, 0 for none.
fn deadline(secs: f64) -> Option<Duration> {
    Some(secs).filter(|s| *s > 0.0).map(Duration::from_secs_f64)
}

/// Serve the TCP shim of Inferno::RegMgr::TCP (ports 6701 new, 6702 find, 6703 event) in front
/// of a registry reached over 9P, as Inferno's `listen` script does.
#[derive(clap::Args)]
#[command(after_help = "\
Protocol (spec/registry.md §8):
  new   (6701)  first line `name [attr val]...` registers, later lines update,
                closing the connection unregisters; a failure closes it
  find  (6702)  one query line `[attr val]...` (empty: all); reply: service lines
  event (6703)  `READY`, then one `%8.8d` line per change

Examples:
  registry shim -m 'tcp!inferno.example!6675'
      serve 127.0.0.1:6701-6703 in front of that registry
  registry shim -m 'tcp!127.0.0.1!6675' --listen 'tcp!*' --ports 7701,7702,7703
      every address, other ports
  registry shim -m reghost:6675 -k shim.keyfile -C sha1/rc4_256
      front a `registry serve --auth` registry; the key's user owns what
      the shim registers
  printf 'proto styx\\n' | nc 127.0.0.1 6702
      find the services with proto=styx")]
pub struct Args {
    /// The registry to front: an Inferno dial string or host:port (9P2000; auth none unless
    /// -k). Repeat for failover (front-ends of one `serve --etcd` catalog): a new connection uses
    /// the first that answers, in the order given. Default: as for the client commands (the
    /// environment variable `registry`, else localhost, port 6675).
    #[arg(short = 'm', long = "registry", short_alias = 'r', value_name = "ADDR")]
    registry: Vec<String>,
    /// Where to listen: `tcp!HOST` (`tcp!*`: every address) or a bare host; the ports are
    /// --ports.
    #[arg(
        long,
        short = 'l',
        value_name = "ADDR",
        default_value = "tcp!127.0.0.1"
    )]
    listen: String,
    /// Ports NEW,FIND,EVENT (0: let the system choose).
    #[arg(long, short = 'p', value_name = "NEW,FIND,EVENT", default_value_t = ShimPorts::DEFAULT)]
    ports: ShimPorts,
    /// User name to attach to the registry as (owner of the registrations); default $USER.
    /// Not with -k, where the key's user is the owner.
    #[arg(long, short = 'u', value_name = "USER", conflicts_with = "keyfile")]
    user: Option<String>,
    /// Authenticate every connection to the registry with Inferno's infpk1 using this key file,
    /// as `mount -k` does (needed for `registry serve --auth`); the registry then makes the
    /// key's user the owner of the shim's registrations. A bare name that is not a file here
    /// is looked up in the key directory ($HOME/keyring). Without -k, no authentication.
    #[arg(short = 'k', long = "key", value_name = "KEYFILE")]
    keyfile: Option<PathBuf>,
    /// The algorithms to protect each registry connection with after authenticating, as
    /// `mount -C` (e.g. sha1, rc4_256, sha1/rc4_256; default none). Needs -k.
    #[arg(short = 'C', long = "alg", value_name = "ALG", requires = "keyfile")]
    alg: Option<String>,
    #[command(flatten, next_help_heading = "Limits")]
    limits: LimitArgs,
}

/// Runs `registry shim`: prints the bound addresses, then serves until interrupted.
pub async fn run(args: Args) -> CmdResult {
    let mut addrs: Vec<String> = args
        .registry
        .iter()
        .map(|a| crate::opts::resolve_addr(a))
        .collect();
    if addrs.is_empty() {
        addrs.push(crate::opts::default_addr());
    }
    let registry = addrs.remove(0);
    let host = listen_host(&args.listen)?;
    let (upstream, owner) = match &args.keyfile {
        // Read once, before listening: a bad key file is a usage error, not a per-connection one.
        Some(keyfile) => {
            let key = crate::opts::read_key(keyfile)?;
            let owner = format!(" key {}", key.mypk.owner);
            let alg = args.alg.as_deref().unwrap_or("none");
            check_key(&registry, &key, alg).await?;
            (Remote::with_key(registry.clone(), key, alg), owner)
        }
        None => (Remote::new(registry.clone()), String::new()),
    };
    let upstream = addrs.iter().fold(upstream, |up, a| up.or(a.clone()));
    let shim = Builder::new(upstream.user(args.user))
        .host(host)
        .ports(args.ports)
        .limits(args.limits.limits())
        .start()
        .await?;
    eprintln!(
        "registry: shim {} registry {}{owner}",
        shim.local_addrs(),
        crate::opts::shell_word(&registry)
    );
    tokio::signal::ctrl_c().await?;
    shim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The host of `--listen`: `tcp!HOST` or a bare host (`*`: every address).
fn listen_host(listen: &str) -> Result<String, String> {
    match listen.split('!').collect::<Vec<_>>()[..] {
        [host] | ["tcp", host] if !host.is_empty() => Ok(host.to_string()),
        _ => Err(format!(
            "bad listen address {}: use tcp!HOST (the ports are --ports)",
            crate::opts::shell_word(listen)
        )),
    }
}

/// Tries the key once before serving, so that a key the registry refuses stops the command
/// at once instead of failing every shim connection later. A registry that cannot be reached
/// yet is only reported: the shim connects again for each client.
async fn check_key(registry: &str, key: &AuthInfo, alg: &str) -> Result<(), client::Error> {
    match Registry::connect_with_key(registry, key, alg).await {
        Ok(_) => Ok(()),
        Err(e @ (client::Error::Auth(_) | client::Error::UnknownAuth(_))) => Err(e),
        Err(e) => {
            eprintln!("registry: shim: cannot reach registry {registry} yet: {e}");
            Ok(())
        }
    }
}

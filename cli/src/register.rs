//! `registry register`: Register a service until interrupted, registering it again whenever the
//! registry comes back after a restart or a lost connection.

use crate::CmdResult;
use crate::opts::RegistryOpt;
use futures_util::StreamExt;
use registries::client::{self, Attributes, Registry};
use registries::manager::{CheckSpec, Config, Connector, Manager, ServiceHandle};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Register a service until interrupted.
///
/// Registers NAME with the attribute/value pairs, says so on standard error, and holds the
/// registration until SIGINT or SIGTERM; then it closes the registration, which removes the service
/// unless `--persist` was given, and exits 0. If the first registration fails (the registry
/// cannot be reached, or refuses, e.g. `duplicate service name`), it exits 1 with the reason.
///
/// If the connection to the registry is lost later (the registry restarted, the network failed),
/// it says `registry: lost registry: WHY; re-registering`, keeps trying to reconnect with a
/// growing delay (at most a second apart), registers the service again as soon as the registry
/// answers, and says `registry: registered NAME again`. A registry whose host has gone without
/// closing the connection is noticed by TCP keepalive within about a minute.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry register 'tcp!myhost!7001' proto styx description 'my files'
      registered until ^C; registered again whenever the registry comes back
  registry register -m 'tcp!reghost!6675' --persist 'tcp!myhost!80' proto http
      stays after this command ends (persist 1), until unregistered
  registry register -m 'tcp!reghost!6675' -k alice.keyfile 'tcp!myhost!7001' proto styx
      authenticate first: the key's user owns the registration
  registry register -m 'tcp!a!6675' -m 'tcp!b!6675' --heartbeat 5 'tcp!myhost!7001' proto styx
      through a, moving to b within seconds if a goes silent
  registry register --check http://127.0.0.1:8080/health 'tcp!myhost!8080' proto http
      listed only while GET /health answers 2xx (a sidecar for a service that knows nothing
      of the registry); --interval, --check-timeout, --fail-after, --pass-after")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// Keep the service registered after this command exits (appends `persist 1`).
    #[arg(long)]
    persist: bool,
    /// A health check: the service is listed only while it passes (`host:port` or a dial
    /// string: a TCP connect; `http://HOST:PORT/PATH`: a GET answering 2xx, 429 a warning;
    /// `exec:COMMAND ARGS`: exit 0, 1 a warning). Repeat for several: all must pass.
    #[arg(long = "check", value_name = "CHECK")]
    checks: Vec<String>,
    /// Seconds between two runs of each check.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = crate::opts::seconds)]
    interval: f64,
    /// Seconds a check may take; past it, it fails (an `exec:` command is killed).
    #[arg(long = "check-timeout", value_name = "SECONDS", default_value = "5", value_parser = crate::opts::seconds)]
    check_timeout: f64,
    /// Consecutive failures before the service is withdrawn.
    #[arg(long = "fail-after", value_name = "N", default_value = "1")]
    fail_after: u32,
    /// Consecutive passes before a withdrawn service is registered again.
    #[arg(long = "pass-after", value_name = "N", default_value = "1")]
    pass_after: u32,
    /// The service's name, usually the dial string that reaches it.
    name: String,
    /// Attribute/value pairs describing the service (after `--` when a word begins with `-`).
    #[arg(value_name = "ATTR VAL")]
    pairs: Vec<String>,
}

/// Runs `registry register`.
pub async fn run(args: Args) -> CmdResult {
    // Each pair is set in turn, as Inferno's grid/register sets each `-a attr val`: a new
    // attribute goes to the front of the list, and since the registry keeps attributes by
    // prepending what it is written, it then lists them in the order given here.
    let pairs = match crate::opts::arg_pairs(&args.pairs) {
        Ok(p) => p,
        Err(e) => return crate::opts::usage(e),
    };
    let mut attrs = Attributes::default();
    for (a, v) in pairs {
        attrs.set(a, v);
    }

    let mut stop = Stop::install()?;
    if !args.checks.is_empty() {
        return checked(&args, attrs, &mut stop).await;
    }
    // The first registration is made directly, so that a refusal is reported and ends the
    // command, as a one-shot registration would (the manager would quietly retry it).
    let registering = async {
        let (used, reg) = args.reg.open_which().await?;
        let registering = reg.register(&args.name, &attrs, args.persist);
        let held = args.reg.limit("register", registering).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((used, reg, held))
    };
    let (used, reg, registered) = tokio::select! {
        r = registering => r?,
        r = stop.wait() => { r?; return Err("interrupted".into()); }
    };
    if args.persist {
        eprintln!(
            "registry: registered {} to persist: it stays after this command ends (`registry \
             unregister {}` removes it); interrupt to stop",
            args.name,
            crate::opts::shell_word(&args.name)
        );
    } else {
        eprintln!(
            "registry: registered {}; interrupt to unregister",
            args.name
        );
    }
    if args.reg.keyfile.is_none() && std::env::var("USER").map_or(true, |u| u.is_empty()) {
        // The registry knows a client by the name it attaches as; without $USER that is `none`,
        // shared by every other client without it. Said after the first line, which scripts
        // read for "registered".
        eprintln!(
            "registry: warning: $USER is not set: registered as user none, whom any other \
             client without $USER may unregister (set USER, or authenticate with -k)"
        );
    }
    let why = tokio::select! {
        r = stop.wait() => {
            r?;
            registered.close().await?;
            return Ok(ExitCode::SUCCESS);
        }
        why = lost(&reg) => why,
    };
    // The connection is gone, and the registration with it.
    drop(registered);
    drop(reg);
    eprintln!("registry: lost registry: {why}; re-registering");

    // From now on the manager keeps the service registered; this task only reports what happens.
    let (tx, conns) = mpsc::unbounded_channel();
    // The registry just lost is tried last; each has --timeout to answer, so the manager's
    // attempt may take as long as all of them.
    let mut config = Config {
        heartbeat: args.reg.heartbeat(),
        ..Config::default()
    };
    if args.reg.timeout > 0.0 {
        let each = Duration::from_secs_f64(args.reg.timeout);
        config.connect_timeout = each * u32::try_from(args.reg.addrs().len()).unwrap_or(1);
    }
    let connector = watched(args.reg.connector(used + 1), tx);
    let mgr = Manager::with_config(connector, config);
    let mut kept = attrs.clone();
    if args.persist {
        // What `register(.., persist = true)` appends; the manager registers without it.
        kept.set("persist", "1");
    }
    let svc = mgr.register(args.name.clone(), kept);
    let result = report(&args.name, &svc, conns, &mut stop).await;
    // Unregister (unless persistent) before stopping the manager, and wait until the registry
    // has been told.
    let closed = svc.close().await;
    mgr.shutdown().await;
    result?;
    closed?;
    Ok(ExitCode::SUCCESS)
}

/// `register --check`: the manager registers the service while its checks pass, and withdraws it
/// while one is critical; this says so on standard error at each change, until interrupted.
async fn checked(args: &Args, mut attrs: Attributes, stop: &mut Stop) -> CmdResult {
    let mut specs = Vec::new();
    for text in &args.checks {
        let mut spec = match CheckSpec::parse(text) {
            Ok(s) => s,
            Err(e) => return crate::opts::usage(&e.to_string()),
        };
        spec.interval = Duration::from_secs_f64(args.interval.max(0.01));
        spec.timeout = Duration::from_secs_f64(args.check_timeout.max(0.01));
        spec.fail_after = args.fail_after.max(1);
        spec.pass_after = args.pass_after.max(1);
        specs.push(spec);
    }
    if args.persist {
        attrs.set("persist", "1");
    }
    let config = Config {
        heartbeat: args.reg.heartbeat(),
        ..Config::default()
    };
    let mgr = Manager::with_config(args.reg.connector(0), config);
    let mut svc = mgr.register_checked(args.name.clone(), attrs, specs);
    eprintln!(
        "registry: {}: registered while its checks pass; interrupt to unregister",
        args.name
    );
    let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = loop {
        tokio::select! {
            r = stop.wait() => break r.map_err(Into::into),
            c = svc.changed() => match c {
                Ok(true) => eprintln!("registry: registered {}", args.name),
                Ok(false) => eprintln!(
                    "registry: {} withdrawn (a check is critical, or the registry was lost)",
                    args.name
                ),
                Err(e) => break Err(e.into()),
            },
        }
    };
    let closed = svc.close().await;
    mgr.shutdown().await;
    result?;
    closed?;
    Ok(ExitCode::SUCCESS)
}

/// How often to check a registry without an `event` file (as the manager does).
const POLL: Duration = Duration::from_secs(1);

/// What the connections the manager makes are doing; they are numbered from 1 in the order
/// they were made.
#[derive(Debug)]
enum Conn {
    /// This connection is up.
    Up(u64),
    /// This connection is lost, for this reason.
    Lost(u64, String),
}

/// `connector`, telling `tx` about every connection it makes and about the loss of each: the
/// manager notices the same broken connection and reconnects, but does not say why.
fn watched(connector: Connector, tx: mpsc::UnboundedSender<Conn>) -> Connector {
    let made = Arc::new(AtomicU64::new(0));
    Connector::from_fn(move || {
        let (connector, tx, made) = (connector.clone(), tx.clone(), made.clone());
        async move {
            let reg = connector.connect().await?;
            let n = made.fetch_add(1, Ordering::Relaxed) + 1;
            let _ = tx.send(Conn::Up(n));
            let watched = reg.clone();
            tokio::spawn(async move {
                tokio::select! {
                    why = lost(&watched) => { let _ = tx.send(Conn::Lost(n, why)); }
                    // Nobody is listening any more (the command is ending): let go of it.
                    _ = tx.closed() => {}
                }
            });
            Ok(reg)
        }
    })
}

/// Says on standard error when the registration is lost and when it is made again, until
/// SIGINT or SIGTERM.
async fn report(
    name: &str,
    svc: &ServiceHandle,
    mut conns: mpsc::UnboundedReceiver<Conn>,
    stop: &mut Stop,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The newest connection made, the newest one lost, whether the service is registered and
    // on which connection (at least).
    let (mut newest, mut lost_upto, mut registered, mut on) = (0, 0, false, 0);
    loop {
        // Until a connection newer than every lost one is up, the handle may still say
        // "registered" about a lost connection: the manager has not noticed yet.
        let may_register = !registered && newest > lost_upto;
        tokio::select! {
            biased;
            r = stop.wait() => return Ok(r?),
            c = conns.recv() => match c {
                Some(Conn::Up(n)) => newest = newest.max(n),
                Some(Conn::Lost(n, why)) => {
                    lost_upto = lost_upto.max(n);
                    if registered && n >= on {
                        registered = false;
                        eprintln!("registry: lost registry: {why}; re-registering");
                    } else {
                        tracing::debug!("register: lost connection {n}: {why}");
                    }
                }
                None => return Err("registry manager has stopped".into()),
            },
            r = svc.wait_registered(), if may_register => {
                r?;
                registered = true;
                on = newest;
                eprintln!("registry: registered {name} again");
            }
        }
    }
}

/// Waits until the connection `reg` is lost, and says why.
async fn lost(reg: &Registry) -> String {
    match reg.events().await {
        Ok(mut events) => loop {
            match events.next().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return e.to_string(),
                None => return "connection closed".to_string(),
            }
        },
        // A registry without `event` (Inferno's older ones): ask it now and then instead.
        Err(client::Error::NoEvents(_)) => loop {
            tokio::time::sleep(POLL).await;
            if let Err(e @ (client::Error::Io(_) | client::Error::Mount(_))) = reg.services().await
            {
                return e.to_string();
            }
        },
        Err(e) => e.to_string(),
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made (so that a signal sent as soon as
/// the command reports success is not lost to the default action).
pub struct Stop {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Stop {
    /// Starts catching the signals.
    pub fn install() -> std::io::Result<Stop> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Stop {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    /// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => Ok(()),
                _ = self.term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    }
}

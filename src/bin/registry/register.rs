//! `registry register`: Register a service until interrupted.

use crate::CmdResult;
use crate::query::RegistryOpt;
use registries::client::Attributes;
use std::process::ExitCode;

/// Register a service until interrupted.
///
/// Registers NAME with the attribute/value pairs, says so on standard error, and holds the
/// registration until SIGINT or SIGTERM; then it closes the registration, which removes the service
/// unless `--persist` was given, and exits 0.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry register tcp!myhost!7001 proto styx description 'my files'
  registry register -m tcp!reghost!6675 --persist tcp!myhost!80 proto http")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// Keep the service registered after this command exits (appends `persist 1`).
    #[arg(long)]
    persist: bool,
    /// The service's name, usually the dial string that reaches it.
    name: String,
    /// Attribute/value pairs describing the service.
    #[arg(value_name = "ATTR VAL", allow_hyphen_values = true)]
    pairs: Vec<String>,
}

/// Runs `registry register`.
pub async fn run(args: Args) -> CmdResult {
    let attrs = Attributes::new(crate::query::arg_pairs(&args.pairs)?);
    let mut stop = Stop::install()?;
    let registering = async {
        let reg = args.reg.open().await?;
        reg.register(&args.name, &attrs, args.persist).await
    };
    let registered = tokio::select! {
        r = registering => r?,
        r = stop.wait() => { r?; return Err("interrupted".into()); }
    };
    eprintln!(
        "registry: registered {}; interrupt to unregister",
        args.name
    );
    stop.wait().await?;
    registered.close().await?;
    Ok(ExitCode::SUCCESS)
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

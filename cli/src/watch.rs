//! `registry watch`: Print services added, changed and removed.

use crate::CmdResult;
use crate::query::RegistryOpt;
use registries::client::Change;
use std::io::Write;
use std::process::ExitCode;

/// Print services added, changed and removed.
///
/// Watches the services matching the attribute/value pairs (all services without pairs) and
/// prints one line per difference: `+ ` for a service that appeared (first, the services already
/// there), `~ ` for one whose attributes changed, `- ` for one that went, each followed by the
/// service line in registry text format (for `-`, its last known attributes). Changes made in
/// quick succession are coalesced, as the registry's `event` file does. Runs until interrupted.
#[derive(clap::Args)]
#[command(after_help = "\
Output:
  + tcp!myhost!7001 proto styx       a service appeared
  ~ tcp!myhost!7001 load 5 proto styx its attributes changed
  - tcp!myhost!7001 load 5 proto styx it went

Examples:
  registry watch                     every service
  registry watch proto styx          services with proto=styx
  registry watch -m tcp!reghost!6675 auth '*'")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// Attribute/value pairs the services must match.
    #[arg(value_name = "ATTR VAL", allow_hyphen_values = true)]
    pairs: Vec<String>,
}

/// Runs `registry watch`.
pub async fn run(args: Args) -> CmdResult {
    let filter = crate::query::arg_pairs(&args.pairs)?;
    let mut stop = crate::register::Stop::install()?;
    let starting = async {
        let reg = args.reg.open().await?;
        reg.monitor(&filter).await
    };
    let mut monitor = tokio::select! {
        m = starting => m?,
        r = stop.wait() => { r?; return Ok(ExitCode::SUCCESS); }
    };
    loop {
        let change = tokio::select! {
            r = stop.wait() => { r?; return Ok(ExitCode::SUCCESS); }
            c = monitor.next() => c,
        };
        let line = match change {
            None => return Ok(ExitCode::SUCCESS),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Change::Added(s))) => format!("+ {s}"),
            Some(Ok(Change::Changed(s))) => format!("~ {s}"),
            Some(Ok(Change::Removed(s))) => format!("- {s}"),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
}

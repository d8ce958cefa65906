//! `registry watch`: Print services added, changed and removed, across restarts of the registry.

use crate::CmdResult;
use crate::opts::RegistryOpt;
use registries::client::{Change, Monitor, Service};
use registries::manager::Backoff;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// The first and the longest wait between two attempts to reach a lost registry.
const RETRY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// Print services added, changed and removed.
///
/// Watches the services matching the attribute/value pairs (all services without pairs) and
/// prints one line per difference: `+ ` for a service that appeared (first, the services already
/// there), `~ ` for one whose attributes changed, `- ` for one that went, each followed by the
/// service line in registry text format (for `-`, its last known attributes). Changes made in
/// quick succession are coalesced, as the registry's `event` file does. Runs until interrupted.
///
/// When the connection to the registry is lost, it says so on standard error, tries again with
/// a growing delay (at most 2 s apart, each attempt within --timeout), and once the registry
/// answers prints what changed while it was away, then goes on. A dead host is noticed by TCP
/// keepalive within about a minute.
#[derive(clap::Args)]
#[command(after_help = "\
Output:
  + tcp!myhost!7001 proto styx       a service appeared
  ~ tcp!myhost!7001 load 5 proto styx its attributes changed
  - tcp!myhost!7001 load 5 proto styx it went

  With --json, one object a line:
  {\"change\": \"added\", \"name\": \"tcp!myhost!7001\", \"attrs\": [[\"proto\", \"styx\"]]}
  (change: added, changed or removed; attributes in the service's order)

Examples:
  registry watch                     every service
  registry watch proto styx          services with proto=styx
  registry watch -m 'tcp!reghost!6675' auth '*'

Exit status: 0 interrupted, 1 failure, 2 usage, 3 no answer within --timeout at the start.")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// One JSON object a line instead of text.
    #[arg(long)]
    json: bool,
    /// Attribute/value pairs the services must match (after `--` when a word begins with `-`).
    #[arg(value_name = "ATTR VAL")]
    pairs: Vec<String>,
}

/// Runs `registry watch`.
pub async fn run(args: Args) -> CmdResult {
    let filter = crate::opts::arg_pairs(&args.pairs)?;
    let mut stop = crate::register::Stop::install()?;
    let starting = async {
        let reg = args.reg.open().await?;
        args.reg.limit("event", Monitor::new(&reg, &filter)).await
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
        match change {
            Some(Ok(c)) => print(&c, args.json)?,
            Some(Err(e)) => {
                eprintln!("registry: lost registry: {e}; reconnecting");
                let known = monitor.services().to_vec();
                monitor = tokio::select! {
                    m = reconnect(&args.reg, &filter, known) => m,
                    r = stop.wait() => { r?; return Ok(ExitCode::SUCCESS); }
                };
                eprintln!("registry: watching again");
            }
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Reaches the registry again, as often as it takes, and resumes from `known`.
async fn reconnect(opt: &RegistryOpt, filter: &[(&str, &str)], known: Vec<Service>) -> Monitor {
    let mut backoff = Backoff::new(RETRY.0, RETRY.1);
    loop {
        tokio::time::sleep(backoff.next_delay()).await;
        let attempt = async {
            let reg = opt.open().await?;
            opt.limit("event", Monitor::resume(&reg, filter, known.clone()))
                .await
        };
        match attempt.await {
            Ok(m) => return m,
            Err(e) => tracing::debug!("watch: reconnecting: {e}"),
        }
    }
}

/// Prints one change, as text or as JSON.
fn print(change: &Change, json: bool) -> std::io::Result<()> {
    let (sign, kind, svc) = match change {
        Change::Added(s) => ('+', "added", s),
        Change::Changed(s) => ('~', "changed", s),
        Change::Removed(s) => ('-', "removed", s),
    };
    let mut out = std::io::stdout().lock();
    if json {
        let v = crate::json::change(None, kind, &svc.addr, svc.attrs.iter());
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{sign} {svc}")?;
    }
    out.flush()
}

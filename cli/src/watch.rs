//! `registry watch`: Print services added, changed and removed, across restarts of the registry.

use crate::CmdResult;
use crate::opts::RegistryOpt;
use futures_util::StreamExt;
use registries::client::{Change, ChangeKind, Error, Monitor, Position, Registry, Service};
use registries::manager::Backoff;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// The first and the longest wait between two attempts to reach a lost registry.
const RETRY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// The exit status when `--from` asks for a revision the registry no longer keeps.
const EXIT_COMPACTED: u8 = 2;

/// Print services added, changed and removed.
///
/// Watches the services matching the attribute/value pairs (all services without pairs) and
/// prints one line per difference: `+ ` for a service that appeared (first, the services already
/// there), `~ ` for one whose attributes changed, `- ` for one that went, each followed by the
/// service line in registry text format (for `-`, its last known attributes). With a registry of
/// ours (which has a change feed) each line starts with the change's revision and every change
/// is reported; with a real Inferno registry changes made in quick succession are coalesced, as
/// its `event` file does. Runs until interrupted.
///
/// When the connection to the registry is lost, it says so on standard error, tries again with
/// a growing delay (at most 2 s apart, each attempt within --timeout), and once the registry
/// answers it continues from its last revision (losing nothing), or, when the registry cannot
/// resume (it restarted, or has no feed), prints what changed while it was away. A dead host is
/// noticed by TCP keepalive within about a minute.
#[derive(clap::Args)]
#[command(after_help = "\
Output:
  1765161041000007 + tcp!myhost!7001 proto styx         a service appeared (then: the revision)
  1765161041000008 ~ tcp!myhost!7001 load 5 proto styx  its attributes changed
  1765161041000009 - tcp!myhost!7001 load 5 proto styx  it went
  (no revision against a registry without a change feed, e.g. a real Inferno one). A revision is
  a number the registry gives each change (in memory: its start time in microseconds plus a
  count; with etcd: etcd's revision times 1,000,000); at the start the revision the listing is
  at is said on standard error, ready to copy.

  With --json, one object a line:
  {\"rev\": 1765161041000007, \"change\": \"added\", \"name\": \"tcp!myhost!7001\",
   \"attrs\": [[\"proto\", \"styx\"]], \"persist\": false}   (as serve --http's /v1/changes events)
  (change: added, changed or removed; attributes in the service's order; no rev without a feed)

Examples:
  registry watch                     every service
  registry watch proto styx          services with proto=styx
  registry watch --from 1765161041000008 --json
                                     every change from that revision on (one a script printed
                                     before, plus one), for a script that resumes
  registry watch -m 'tcp!reghost!6675' auth '*'

Exit status: 0 interrupted, 1 failure, 2 usage or --from older than the registry keeps,
3 no answer within --timeout at the start.")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// One JSON object a line instead of text.
    #[arg(long)]
    json: bool,
    /// Start with the changes whose revision is REV or later (no services listed first); needs a
    /// registry with a change feed.
    #[arg(long, value_name = "REV")]
    from: Option<u64>,
    /// Attribute/value pairs the services must match (after `--` when a word begins with `-`).
    #[arg(value_name = "ATTR VAL")]
    pairs: Vec<String>,
}

/// Runs `registry watch`.
pub async fn run(args: Args) -> CmdResult {
    let filter = match crate::opts::arg_pairs(&args.pairs) {
        Ok(f) => f,
        Err(e) => return crate::opts::usage(e),
    };
    let mut stop = crate::register::Stop::install()?;
    let watching = async {
        match args.from {
            Some(rev) => watch_from(&args, &filter, rev).await,
            None => watch(&args, &filter).await,
        }
    };
    tokio::select! {
        r = watching => r,
        r = stop.wait() => { r?; Ok(ExitCode::SUCCESS) }
    }
}

/// Watches through a [`Monitor`], resuming it after every lost connection.
async fn watch(args: &Args, filter: &[(&str, &str)]) -> CmdResult {
    let reg = args.reg.open().await?;
    let mut monitor = args.reg.limit("event", Monitor::new(&reg, filter)).await?;
    if let Some(rev) = monitor.revision() {
        // What a script resumes from (`--from REV+1`), before any change is printed.
        eprintln!("registry: watching from revision {rev}");
    }
    loop {
        match monitor.next().await {
            Some(Ok(c)) => {
                let (kind, svc) = match c {
                    Change::Added(s) => (ChangeKind::Added, s),
                    Change::Changed(s) => (ChangeKind::Changed, s),
                    Change::Removed(s) => (ChangeKind::Removed, s),
                };
                print(monitor.revision(), kind, &svc, args.json)?;
            }
            Some(Err(e)) => {
                eprintln!("registry: lost registry: {e}; reconnecting");
                monitor = reconnect(&args.reg, filter, monitor.position()).await;
                eprintln!("registry: watching again");
            }
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Reaches the registry again, as often as it takes, and resumes from `from`.
async fn reconnect(opt: &RegistryOpt, filter: &[(&str, &str)], from: Position) -> Monitor {
    let mut backoff = Backoff::new(RETRY.0, RETRY.1);
    loop {
        let reg = reopen(opt, &mut backoff).await;
        match opt
            .limit("event", Monitor::resume(&reg, filter, from.clone()))
            .await
        {
            Ok(m) => return m,
            Err(e) => tracing::debug!("watch: resuming: {e}"),
        }
    }
}

/// Prints the changes from revision `rev` on, straight from the change feed, resuming from the
/// last one after a lost connection.
async fn watch_from(args: &Args, filter: &[(&str, &str)], rev: u64) -> CmdResult {
    let mut next = rev;
    let mut reg = args.reg.open().await?;
    loop {
        let opened = args
            .reg
            .limit("feed", reg.changes(filter, Some(next)))
            .await;
        let mut changes = match opened {
            Ok(c) => c,
            Err(e) => return refused(e, next),
        };
        while let Some(ev) = changes.next().await {
            match ev {
                Ok(ev) => {
                    print(Some(ev.revision), ev.kind, &ev.service, args.json)?;
                    next = ev.revision + 1;
                }
                Err(e) => {
                    eprintln!("registry: lost registry: {e}; reconnecting");
                    break;
                }
            }
        }
        reg = reopen(&args.reg, &mut Backoff::new(RETRY.0, RETRY.1)).await;
        eprintln!("registry: watching again from revision {next}");
    }
}

/// What to say when the feed cannot start at `rev`: too old (exit 2), no feed, or other.
fn refused(e: Box<dyn std::error::Error + Send + Sync>, rev: u64) -> CmdResult {
    match e.downcast_ref::<Error>() {
        Some(Error::Compacted { oldest }) => {
            eprintln!(
                "registry: revision {rev} is older than anything this registry keeps (its oldest \
                 is {oldest}): either it was never issued here or it has been dropped; \
                 `registry watch` prints each change's revision"
            );
            Ok(ExitCode::from(EXIT_COMPACTED))
        }
        Some(Error::NoFeed(_)) => Err(
            "this registry has no change feed (a real Inferno registry?): --from needs one".into(),
        ),
        _ => Err(e),
    }
}

/// A new connection to the registry, as often as it takes, waiting as `backoff` says before
/// each attempt.
async fn reopen(opt: &RegistryOpt, backoff: &mut Backoff) -> Registry {
    loop {
        tokio::time::sleep(backoff.next_delay()).await;
        match opt.open().await {
            Ok(reg) => return reg,
            Err(e) => tracing::debug!("watch: reconnecting: {e}"),
        }
    }
}

/// Prints one change, as text or as JSON; `rev` when the registry numbers its changes.
fn print(rev: Option<u64>, kind: ChangeKind, svc: &Service, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let v = crate::json::change(rev, kind.word(), &svc.addr, svc.attrs.iter());
        writeln!(out, "{v}")?;
    } else {
        let sign = match kind {
            ChangeKind::Added => '+',
            ChangeKind::Changed => '~',
            ChangeKind::Removed => '-',
        };
        match rev {
            Some(rev) => writeln!(out, "{rev} {sign} {svc}")?,
            None => writeln!(out, "{sign} {svc}")?,
        }
    }
    out.flush()
}

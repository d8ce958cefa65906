//! `registry attach`: find a service and attach to it, joining it to stdin and stdout.

use crate::CmdResult;
use crate::opts::RegistryOpt;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// How long the service may go on answering after standard input has ended, before the
/// command exits anyway (like socat's `-t`): long enough for replies to what was sent.
const LINGER: Duration = Duration::from_secs(2);

/// Find a service and attach to it, joining it to stdin and stdout.
///
/// Looks up the services matching the attribute/value pairs, takes the first, and attaches to
/// it as registries(2) `Service.attach(user, keydir)` does: dials its address, then
/// authenticates as its `auth` attribute asks (none, or Inferno's infpk1 with `auth.crypt` and
/// a key chosen by `auth.signer` from the key directory). Then it copies standard input to the
/// service and the service to standard output until the service closes the connection or,
/// after standard input ends, the service stops answering. Who it attached as goes to
/// standard error.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry attach proto echo
      talk to the first service with proto=echo
  registry attach -m 'tcp!reghost!6675' --keydir ~/keyring -u alice proto styx auth infpk1
      attach to an authenticated service with alice's key certified by the service's signer
  registry attach -m 'tcp!reghost!6675' -k alice.keyfile -C sha1 proto styx
      authenticate to the registry itself too (-k/-C are for the registry connection)")]
pub struct Args {
    #[command(flatten)]
    reg: RegistryOpt,
    /// Local user whose key to use when the service names a signer (default: the oldest key
    /// certified by that signer).
    #[arg(short = 'u', long = "user", value_name = "USER")]
    user: Option<String>,
    /// Key directory to choose the service's key from (default $HOME/keyring).
    #[arg(long = "keydir", value_name = "DIR")]
    keydir: Option<PathBuf>,
    /// Attribute/value pairs the service must match (after `--` when a word begins with `-`).
    #[arg(value_name = "ATTR VAL")]
    pairs: Vec<String>,
}

/// Runs `registry attach`.
pub async fn run(args: Args) -> CmdResult {
    let filter = match crate::opts::arg_pairs(&args.pairs) {
        Ok(f) => f,
        Err(e) => return crate::opts::usage(e),
    };
    let reg = args.reg.open().await?;
    let found = args.reg.limit("find", reg.find(&filter)).await?;
    let Some(svc) = found.first() else {
        return Err("no matching service".into());
    };
    if found.len() > 1 {
        eprintln!(
            "registry: {} services match; attaching to the first",
            found.len()
        );
    }
    let attaching = svc.attach(args.user.as_deref(), args.keydir.as_deref());
    let attached = args.reg.limit(&svc.addr, attaching).await?;
    match (&attached.localuser, &attached.remoteuser) {
        (Some(local), Some(remote)) => {
            eprintln!(
                "registry: attached to {} as {local} (peer {remote})",
                svc.addr
            )
        }
        _ => eprintln!("registry: attached to {}", svc.addr),
    }
    // The registry connection is no longer needed.
    drop(reg);
    relay(attached.fd).await?;
    Ok(ExitCode::SUCCESS)
}

/// Copies standard input to `conn` and `conn` to standard output. Ends when `conn` closes, or
/// (after half-closing `conn`) [`LINGER`] after standard input has ended.
async fn relay(conn: registries::client::BoxConn) -> std::io::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut input = stdin_chunks();
    let to_service = async {
        while let Some(chunk) = input.recv().await {
            wr.write_all(&chunk?).await?;
            wr.flush().await?;
        }
        wr.shutdown().await
    };
    let to_stdout = async {
        let mut out = tokio::io::stdout();
        let mut buf = vec![0u8; 8192];
        loop {
            let n = rd.read(&mut buf).await?;
            let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
                return Ok::<(), std::io::Error>(());
            };
            out.write_all(data).await?;
            out.flush().await?;
        }
    };
    tokio::pin!(to_stdout);
    tokio::select! {
        r = to_service => {
            r?;
            match tokio::time::timeout(LINGER, &mut to_stdout).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
        r = &mut to_stdout => r,
    }
}

/// Standard input in chunks, read on a thread of its own: a blocked read of a terminal must
/// not keep the process alive once the service has gone (tokio's stdin would, at runtime
/// shutdown). The channel closes at end of input.
fn stdin_chunks() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 8192];
        loop {
            let msg = match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => Ok(buf.get(..n).unwrap_or_default().to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = msg.is_err();
            if tx.blocking_send(msg).is_err() || failed {
                break;
            }
        }
    });
    rx
}

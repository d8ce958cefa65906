//! `registry mount`: a registry as a directory of this host, through FUSE, as Inferno programs
//! see it after `mount`: `cat index`, `echo ... >&3` on an open `new`, `find` written and read
//! on one descriptor, `event` reads that wait.

mod errno;
mod fs;
mod link;
mod signals;

use crate::CmdResult;
use crate::opts::RegistryOpt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Set in the environment of the process `-d` starts, which mounts in the foreground.
const FOREGROUND_ENV: &str = "REGISTRY_MOUNT_FOREGROUND";
/// How long `-d` waits for its mount to appear.
const DAEMON_WAIT: Duration = Duration::from_secs(15);

/// Mount a registry at a directory of this host through FUSE, as Inferno's `mount` does: each
/// open is a 9P open of its own (an open `new` is a registration, gone when the file is
/// closed), nothing is cached.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  registry mount -m 'tcp!reghost!registry' /mnt/registry &
  cat /mnt/registry/index
  exec 3<>/mnt/registry/new; echo 'tcp!myhost!7001 proto styx' >&3   # registered until fd 3 closes
  python3 -c 'import os; f=os.open(\"/mnt/registry/find\", os.O_RDWR); \\
      os.write(f, b\"proto styx\"); print(os.pread(f, 8192, 0).decode())'
  fusermount3 -u /mnt/registry                                        # or ^C / SIGTERM

A blocked read of `event` ends with EINTR when a signal comes for its process (^C on `cat
event`, a trapped signal in a script): the read is flushed.
When the registry goes away operations fail with EIO (logged) and the mount reconnects on the
next use once it is back; registrations held through the old connection are gone.")]
pub struct Args {
    #[command(flatten)]
    registry: RegistryOpt,
    /// Run in the background once the mount is ready (its log still goes to standard error).
    /// Says which process it is on standard error; when standard output is not a terminal, also
    /// prints the process id alone there, for scripts (`pid=$(registry mount -d ...)`).
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,
    /// Let other users than the one mounting use the mount (FUSE's allow_other; for users other
    /// than root it needs user_allow_other in /etc/fuse.conf).
    #[arg(long = "allow-other")]
    allow_other: bool,
    /// The directory to mount the registry at.
    dir: PathBuf,
}

/// Runs `registry mount`.
pub async fn run(a: Args) -> CmdResult {
    check_dir(&a.dir)?;
    if a.daemon && std::env::var_os(FOREGROUND_ENV).is_none() {
        return daemon(&a.dir).await;
    }
    let link = a
        .registry
        .limit("the registry", link::Link::connect(a.registry.clone()))
        .await?;
    let fs = fs::RegistryFs::new(link, tokio::runtime::Handle::current());
    let source = a.registry.addrs().join(",");
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName(source.clone()),
        fuser::MountOption::Subtype("registry".into()),
        fuser::MountOption::NoAtime,
    ];
    if a.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    let dir = a.dir.clone();
    let session = tokio::task::spawn_blocking(move || fuser::spawn_mount2(fs, &dir, &config))
        .await?
        .map_err(|e| format!("cannot mount at {}: {e}", a.dir.display()))?;
    eprintln!("registry: mounted {source} at {}", a.dir.display());

    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ended_outside = async {
        while !session.guard.is_finished() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        () = ended_outside => {
            eprintln!("registry: {} was unmounted", a.dir.display());
            return Ok(ExitCode::SUCCESS);
        }
    }
    let how = unmount(&a.dir);
    tokio::task::spawn_blocking(move || match how {
        // Unmounted: the session ends by itself.
        Some(_) => session.join(),
        None => session.umount_and_join(),
    })
    .await?
    .map_err(|e| format!("cannot unmount {}: {e}", a.dir.display()))?;
    eprintln!(
        "registry: unmounted {}{}",
        a.dir.display(),
        how.unwrap_or("")
    );
    Ok(ExitCode::SUCCESS)
}

/// Unmounts `dir` with fusermount3 (which works for any user); a mount still in use (a shell
/// inside it, a descriptor open) is detached lazily rather than left in place. Says which, or
/// `None` when fusermount3 could not (then fuser unmounts it itself).
fn unmount(dir: &Path) -> Option<&'static str> {
    let run = |lazy: bool| {
        let mut c = std::process::Command::new("fusermount3");
        c.arg("-u").arg("-q");
        if lazy {
            c.arg("-z");
        }
        c.arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if run(false) {
        Some("")
    } else if run(true) {
        Some(" (lazily: it was in use)")
    } else {
        None
    }
}

/// Refuses a mount point that is not a directory, and says how to clear a stale mount (one
/// whose server died) rather than failing with "Transport endpoint is not connected".
fn check_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{}: not a directory", dir.display())),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(format!(
            "{}: a stale FUSE mount (the process that served it is gone): clear it with \
             `fusermount3 -u {}`",
            dir.display(),
            dir.display()
        )),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

/// `-d`: starts this command again in the foreground in a session of its own, waits until its
/// mount is there, and leaves it running.
async fn daemon(dir: &Path) -> CmdResult {
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .env(FOREGROUND_ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe; the child detaches from the terminal's session.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let target = std::fs::canonicalize(dir)?;
    let start = Instant::now();
    while start.elapsed() < DAEMON_WAIT {
        if let Some(status) = child.try_wait()? {
            return Err(format!("registry mount stopped before mounting ({status})").into());
        }
        if is_mounted(&target) {
            let pid = child.id().unwrap_or(0);
            eprintln!(
                "registry mount: running in the background as process {pid}; stop it with \
                 `fusermount3 -u {}` or `kill {pid}`",
                crate::opts::shell_word(&dir.to_string_lossy())
            );
            if !std::io::stdout().is_terminal() {
                println!("{pid}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.start_kill();
    Err(format!("no mount at {} within {DAEMON_WAIT:?}", dir.display()).into())
}

/// Whether a FUSE mount is at `dir` (from /proc/self/mountinfo: the type is `fuse`, or
/// `fuse.registry` when fusermount3 made it).
fn is_mounted(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy().replace(' ', "\\040");
    info.lines().any(|l| {
        let mut f = l.split(' ');
        f.nth(4) == Some(want.as_str())
            && l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("fuse ") || t.starts_with("fuse."))
    })
}

//! `registry mount` on a real FUSE mount (Debian's fuse3, /dev/fuse): the shell and Python see
//! registry(4)'s files, a registration lives as long as the descriptor that opened `new`, `find`
//! is written and read on one descriptor, a waiting `event` read ends on a signal, the
//! registries(2) client works on the directory, the mount outlives its registry going away, an
//! `--auth` registry mounts with a key, and a stale mount point is explained.

mod process;

use process::Running;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

const LONG: Duration = Duration::from_secs(30);

/// Whether FUSE can be used here; without it the tests skip, except in CI where they must run.
fn fuse_available(test: &str) -> bool {
    let ok = Path::new("/dev/fuse").exists()
        && std::process::Command::new("fusermount3")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("REGISTRY_REQUIRE_PEERS").is_none(),
            "{test}: /dev/fuse or fusermount3 missing (Debian: apt-get install fuse3)"
        );
        eprintln!("{test}: /dev/fuse or fusermount3 missing; skipped");
    }
    ok
}

fn key(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spec/vectors/keys/set1")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `registry serve` on `port` (0: any): it and its dial string.
async fn serve(port: u16, extra: &[&str]) -> (Running, String) {
    let listen = format!("tcp!127.0.0.1!{port}");
    let mut args = vec!["serve", "--listen", &listen, "--no-shim"];
    args.extend_from_slice(extra);
    let (srv, line) = Running::start(&args, "listening on").await;
    let addr = format!("tcp!127.0.0.1!{}", Running::port_of(&line));
    (srv, addr)
}

/// `registry mount -m ADDR EXTRA DIR`, once it says it is mounted.
async fn mount(addr: &str, extra: &[&str], dir: &Path) -> Running {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["mount", "-m", addr];
    args.extend_from_slice(extra);
    args.push(dir);
    Running::start_with(
        None,
        &[("REGISTRY_LOG", "info")],
        &args,
        "registry: mounted",
    )
    .await
    .0
}

/// Runs `sh -c SCRIPT`; its status and standard output.
async fn sh(script: &str) -> (i32, String) {
    let out = tokio::time::timeout(
        LONG,
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("sh -c {script:?} hangs"))
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Waits until `cat DIR/index` prints `want`.
async fn index_becomes(dir: &Path, want: &str) {
    let script = format!("cat '{}/index'", dir.display());
    let start = Instant::now();
    loop {
        let (code, out) = sh(&script).await;
        if code == 0 && out == want {
            return;
        }
        assert!(
            start.elapsed() < LONG,
            "index is {out:?} (status {code}), not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mounted(dir: &Path) -> bool {
    let want = std::fs::canonicalize(dir).unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.to_str().unwrap()))
}

#[tokio::test]
async fn the_shell_and_python_see_registry_semantics() {
    if !fuse_available("the_shell_and_python_see_registry_semantics") {
        return;
    }
    let (_srv, addr) = serve(0, &[]).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("reg");
    std::fs::create_dir(&dir).unwrap();
    let mut m = mount(&addr, &[], &dir).await;
    let d = dir.display().to_string();

    let (code, ls) = sh(&format!("ls '{d}'")).await;
    assert_eq!((code, ls.as_str()), (0, "event\nfind\nindex\nnew\n"));
    index_becomes(&dir, "").await;

    // A registration held by fd 3 of a shell: there while it lives, gone when it dies.
    let mut holder = Command::new("sh")
        .args([
            "-c",
            &format!(
                "exec 3<>'{d}/new' && echo 'tcp!x!1 proto styx' >&3 && echo held && exec sleep 60"
            ),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(
        LONG,
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(line, "held\n");
    index_becomes(&dir, "tcp!x!1 proto styx\n").await;
    let (_, file) = sh(&format!("cat '{d}/tcp!x!1'")).await;
    assert_eq!(file, "tcp!x!1 proto styx\n");
    let (_, st) = sh(&format!("stat -c '%U %a %F' '{d}/tcp!x!1'")).await;
    assert_eq!(st, "root 644 regular empty file\n");

    // find, written and read on one descriptor.
    let py = format!(
        "import os; f = os.open('{d}/find', os.O_RDWR); os.write(f, b'proto styx'); \
         print(os.pread(f, 8192, 0).decode(), end='')"
    );
    let found = Command::new("python3")
        .args(["-c", &py])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&found.stdout),
        "tcp!x!1 proto styx\n"
    );

    holder.kill().await.unwrap();
    index_becomes(&dir, "").await;

    // A waiting event read: ended by a signal that kills its process...
    let start = Instant::now();
    let (code, _) = sh(&format!("timeout 1 cat '{d}/event'")).await;
    assert_eq!(code, 124);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    // ... or by one its process catches (EINTR, then the handler runs).
    let py = format!(
        "import os, signal\n\
         def stop(*a): raise TimeoutError()\n\
         signal.signal(signal.SIGALRM, stop); signal.alarm(1)\n\
         f = os.open('{d}/event', os.O_RDONLY)\n\
         try: os.read(f, 64)\n\
         except TimeoutError: print('interrupted')\n"
    );
    let caught = tokio::time::timeout(LONG, Command::new("python3").args(["-c", &py]).output())
        .await
        .expect("a caught signal does not end the read")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&caught.stdout), "interrupted\n");
    // ... and answered by a change.
    let reader = tokio::spawn({
        let d = d.clone();
        async move { sh(&format!("head -c 9 '{d}/event'")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _) = sh(&format!("exec 3<>'{d}/new' && echo 'tcp!y!1 a b' >&3")).await;
    assert_eq!(code, 0);
    let (code, ev) = tokio::time::timeout(LONG, reader).await.unwrap().unwrap();
    assert_eq!(code, 0);
    assert_eq!(ev.len(), 9, "{ev:?}");

    // The registries(2) client on the directory, as on Inferno's name space.
    let on_dir = registries::Registry::new(&dir).await.unwrap();
    let held = on_dir
        .register(
            "tcp!z!1",
            &registries::Attributes::new([("via", "fuse")]),
            false,
        )
        .await
        .unwrap();
    let over_9p = registries::Registry::open(&addr).await.unwrap();
    assert_eq!(over_9p.find(&[("via", "fuse")]).await.unwrap().len(), 1);
    assert_eq!(
        on_dir.find(&[("via", "fuse")]).await.unwrap()[0].addr,
        "tcp!z!1"
    );
    drop(held);
    let start = Instant::now();
    while !over_9p.find(&[("via", "fuse")]).await.unwrap().is_empty() {
        assert!(
            start.elapsed() < LONG,
            "the registration through the mount outlived its open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    drop(on_dir);
    // SIGTERM unmounts cleanly.
    // SAFETY: kill(2) with a pid this test started.
    unsafe { libc::kill(m.pid() as libc::pid_t, libc::SIGTERM) };
    assert!(m.wait().await.success());
    assert!(!mounted(&dir));
}

#[tokio::test]
async fn the_mount_outlives_its_registry_going_away() {
    if !fuse_available("the_mount_outlives_its_registry_going_away") {
        return;
    }
    let (mut srv, addr) = serve(0, &[]).await;
    let port: u16 = addr.rsplit('!').next().unwrap().parse().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reg");
    std::fs::create_dir(&dir).unwrap();
    let m = mount(&addr, &[], &dir).await;
    index_becomes(&dir, "").await;
    srv.kill9().await;
    // Fails at once with EIO, and does not hang the shell.
    let start = Instant::now();
    let (code, _) = sh(&format!("cat '{}/index'", dir.display())).await;
    assert_ne!(code, 0);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    // Back with the registry.
    let _srv = loop {
        if let Ok(s) = tokio::time::timeout(Duration::from_secs(5), serve(port, &[])).await {
            break s;
        }
    };
    index_becomes(&dir, "").await;
    let (code, _) = sh(&format!(
        "exec 3<>'{}/new' && echo 'tcp!b!1 k v' >&3",
        dir.display()
    ))
    .await;
    assert_eq!(code, 0);
    m.wait_said("reconnected to the registry").await;
    let _ = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(&dir)
        .status();
}

#[tokio::test]
async fn an_authenticated_registry_mounts_with_a_key_and_a_stale_mount_is_explained() {
    if !fuse_available("an_authenticated_registry_mounts_with_a_key") {
        return;
    }
    let server_key = key("server.keyfile");
    let (_srv, addr) = serve(0, &["--auth", &server_key]).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reg");
    std::fs::create_dir(&dir).unwrap();
    let alice = key("alice.keyfile");
    let mut m = mount(&addr, &["-k", &alice, "-C", "sha1/rc4_256"], &dir).await;
    let d = dir.display().to_string();
    let (code, _) = sh(&format!(
        "exec 3<>'{d}/new' && echo 'tcp!a!1 proto styx' >&3 && cat '{d}/index' > '{d}/../seen'"
    ))
    .await;
    assert_eq!(code, 0);
    let seen = std::fs::read_to_string(tmp.path().join("seen")).unwrap();
    assert_eq!(seen, "tcp!a!1 proto styx\n");

    // Killed, the mount leaves a stale mount point; mounting there says how to clear it.
    m.kill9().await;
    let out = tokio::time::timeout(
        LONG,
        Command::new(env!("CARGO_BIN_EXE_registry"))
            .args(["mount", "-m", &addr, "-k", &alice, &d])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("fusermount3 -u {d}")), "{err}");
    let cleared = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(cleared.success());
}

#[tokio::test]
async fn with_d_the_command_returns_once_the_mount_is_ready() {
    if !fuse_available("with_d_the_command_returns_once_the_mount_is_ready") {
        return;
    }
    let (_srv, addr) = serve(0, &[]).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reg");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.display().to_string();
    // The background process keeps standard error (its log), so only the exit is waited for.
    let mut parent = Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["mount", "-d", "-m", &addr, &d])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(LONG, parent.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let mut printed = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut parent.stdout.take().unwrap(), &mut printed)
        .await
        .unwrap();
    let pid: i32 = printed.trim().parse().unwrap();
    assert!(mounted(&dir), "not mounted when -d returned");
    index_becomes(&dir, "").await;
    // SAFETY: kill(2) with the pid the command printed.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let start = Instant::now();
    while mounted(&dir) {
        assert!(start.elapsed() < LONG, "still mounted after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

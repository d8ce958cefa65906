//! `registry serve` as a child process, for tests that kill and restart it.
// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `registry` command with `args`: killed when dropped, standard input empty, and the
/// environment variable `registry` removed so that no test reaches another registry than the
/// one it names.
pub fn registry(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry"));
    c.args(args)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .env_remove("registry");
    c
}

/// Starts `registry serve --listen ADDR --no-shim` and returns it with the port it bound, or
/// `None` if it could not start (e.g. the port is not free again yet). The child is killed when
/// dropped; its standard error is read to the end in the background.
pub async fn serve(addr: &str) -> Option<(Child, u16)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["serve", "--listen", addr, "--no-shim"])
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), err.next_line());
    let line = first.await.expect("registry serve said nothing").unwrap()?;
    let port = line
        .split_whitespace()
        .last()?
        .rsplit('!')
        .next()?
        .parse()
        .ok()?;
    tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
    Some((child, port))
}

/// A running `registry` process and everything it has said on standard error. Killed when
/// dropped.
pub struct Running {
    _child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Generous bound that only keeps a broken build from hanging the test run.
const HANG: Duration = Duration::from_secs(60);

impl Running {
    /// Starts `registry ARGS` and reads its standard error until a line containing `want`,
    /// which is returned; the rest is collected in the background, so the process never blocks
    /// on it.
    pub async fn start(args: &[&str], want: &str) -> (Running, String) {
        Running::start_in(None, args, want).await
    }

    /// As [`Running::start`], in directory `dir` when given.
    pub async fn start_in(
        dir: Option<&std::path::Path>,
        args: &[&str],
        want: &str,
    ) -> (Running, String) {
        Running::start_with(dir, &[], args, want).await
    }

    /// As [`Running::start_in`], with these environment variables set.
    pub async fn start_with(
        dir: Option<&std::path::Path>,
        envs: &[(&str, &str)],
        args: &[&str],
        want: &str,
    ) -> (Running, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_registry"));
        command.args(args).kill_on_drop(true).stderr(Stdio::piped());
        command.envs(envs.iter().copied());
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let first = tokio::time::timeout(HANG, async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{args:?} ended before printing {want:?}"));
                stderr.lock().unwrap().push(line.clone());
                if line.contains(want) {
                    return line;
                }
            }
        });
        let line = first
            .await
            .expect("the process never said what it was waited for");
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        (
            Running {
                _child: child,
                stderr,
            },
            line,
        )
    }

    /// The port of the 9P address in a `registry: listening on tcp!HOST!PORT` line.
    pub fn port_of(line: &str) -> &str {
        let addr = line.strip_prefix("registry: listening on ").expect(line);
        addr.rsplit('!').next().unwrap()
    }

    /// Kills the process with SIGKILL (a machine lost, as far as its peers can tell) and waits
    /// for it to end.
    pub async fn kill9(&mut self) {
        self._child.kill().await.expect("kill -9");
    }

    /// Waits for the process to end (within the hang bound) and returns how it ended.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(HANG, self._child.wait())
            .await
            .expect("the process did not end")
            .unwrap()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self._child.id().expect("still running")
    }

    /// Everything said on standard error so far, one line each.
    pub fn said(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until the process has said `needle` on standard error (log lines may trail
    /// whatever the test did to cause them).
    pub async fn wait_said(&self, needle: &str) {
        let found = tokio::time::timeout(HANG, async {
            while !self.said().contains(needle) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "never said {needle:?}: {}", self.said());
    }
}

/// `registry serve --etcd ENDPOINTS --etcd-prefix PREFIX --lease-ttl TTL` on a free port, no shim:
/// it and its 9P address.
pub async fn etcd_front_end(endpoints: &str, prefix: &str, ttl: u64) -> (Running, String) {
    let ttl = ttl.to_string();
    let args = [
        "serve",
        "--etcd",
        endpoints,
        "--etcd-prefix",
        prefix,
        "--lease-ttl",
        &ttl,
        "--no-shim",
        "--listen",
        "tcp!127.0.0.1!0",
    ];
    let (running, line) = Running::start(&args, "listening on").await;
    let addr = format!("tcp!127.0.0.1!{}", Running::port_of(&line));
    (running, addr)
}

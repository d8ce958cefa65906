//! `registry serve` as a child process, for tests that kill and restart it.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
